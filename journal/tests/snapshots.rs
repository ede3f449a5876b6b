//! Snapshots: durable writes, verification, fallback from a corrupt newest snapshot to the older one,
//! retention, and pruning of journal segments only below the older of the two newest snapshots.

mod common;

use common::*;
use simex_journal::format::{HeaderFault, SNAPSHOT_HEADER_LEN};
use simex_journal::{
    recover, scan, JournalReader, RecoveryOptions, SnapshotConfig, SnapshotError, SnapshotFault, SnapshotStore,
};
use std::fs;

fn store(root: &std::path::Path) -> SnapshotStore {
    SnapshotStore::open(root, SHARD, EPOCH, SnapshotConfig::default()).expect("open store")
}

fn state(seq: u64) -> Vec<u8> {
    (0..1000 + seq as usize).map(|i| (i as u64 ^ seq) as u8).collect()
}

#[test]
fn snapshots_are_written_durably_and_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    assert_eq!(store.dir(), dir.path().join("snapshots").join(format!("shard-{SHARD}")));
    assert_eq!(store.latest_valid().expect("latest"), None);
    for seq in [100, 200, 300] {
        let info = store.write(seq, seq as i64 * 10, &state(seq)).expect("write");
        assert_eq!(info.path.file_name().and_then(|n| n.to_str()), Some(format!("snapshot-{seq:020}.snap").as_str()));
    }
    let latest = store.latest_valid().expect("latest").expect("a snapshot");
    assert_eq!((latest.last_seq, latest.timestamp_ns, latest.bytes.clone()), (300, 3000, state(300)));
    // Two are kept by default.
    let kept: Vec<u64> = store.list().expect("list").iter().map(|s| s.last_seq).collect();
    assert_eq!(kept, vec![200, 300]);
    assert_eq!(fs::read_dir(store.dir()).expect("dir").count(), 2, "no temporary file is left");

    let three = SnapshotStore::open(dir.path(), SHARD, EPOCH, SnapshotConfig { keep: 3 }).expect("open");
    three.write(400, 0, &state(400)).expect("write");
    three.write(500, 0, &state(500)).expect("write");
    let kept: Vec<u64> = three.list().expect("list").iter().map(|s| s.last_seq).collect();
    assert_eq!(kept, vec![300, 400, 500]);
    assert!(matches!(
        SnapshotStore::open(dir.path(), SHARD, EPOCH, SnapshotConfig { keep: 1 }),
        Err(SnapshotError::InvalidConfig(_))
    ));
}

#[test]
fn a_corrupt_newest_snapshot_falls_back_to_the_older_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    store.write(100, 1, &state(100)).expect("write");
    let newest = store.write(200, 2, &state(200)).expect("write");

    flip_bit(&newest.path, SNAPSHOT_HEADER_LEN as u64 + 500, 0);
    let (latest, logs) = capture_logs(|| store.latest_valid());
    let latest = latest.expect("latest").expect("the older snapshot");
    assert_eq!((latest.last_seq, latest.bytes), (100, state(100)));
    assert!(logs.contains("WARN") && logs.contains(&newest.path.display().to_string()), "{logs}");
    assert!(matches!(
        store.verify(&newest),
        Err(SnapshotError::Corrupt { fault: SnapshotFault::PayloadChecksum, path }) if path == newest.path
    ));

    // Every other kind of damage is caught the same way.
    type Damage<'a> = &'a dyn Fn(&std::path::Path);
    let cases: [(Damage, SnapshotFault); 3] = [
        (&|p| flip_bit(p, 30, 1), SnapshotFault::Header(HeaderFault::BadChecksum)),
        (&|p| flip_bit(p, 2, 1), SnapshotFault::Header(HeaderFault::BadMagic)),
        (
            &|p| fs::OpenOptions::new().write(true).open(p).expect("open").set_len(1000).expect("truncate"),
            SnapshotFault::LengthMismatch { header_bytes: 1200, file_bytes: 1000 - SNAPSHOT_HEADER_LEN as u64 },
        ),
    ];
    for (damage, fault) in cases {
        let newest = store.write(200, 2, &state(200)).expect("rewrite");
        damage(&newest.path);
        assert!(matches!(store.verify(&newest), Err(SnapshotError::Corrupt { fault: f, .. }) if f == fault));
        assert_eq!(store.latest_valid().expect("latest").map(|s| s.last_seq), Some(100));
    }

    // A snapshot of another epoch is not this journal's.
    let other = SnapshotStore::open(dir.path(), SHARD, EPOCH + 1, SnapshotConfig::default()).expect("open");
    assert_eq!(other.latest_valid().expect("latest"), None);
    let info = store.list().expect("list").remove(0);
    assert!(matches!(
        other.verify(&info),
        Err(SnapshotError::Corrupt { fault: SnapshotFault::WrongEpoch { expected: 8, found: 7 }, .. })
    ));

    // Writing a new one keeps the two newest that verify, so the corrupt one does not push out 100.
    store.write(300, 3, &state(300)).expect("write");
    let names: Vec<u64> = store.list().expect("list").iter().map(|s| s.last_seq).collect();
    assert_eq!(names, vec![100, 200, 300]);
    store.write(400, 4, &state(400)).expect("write");
    let names: Vec<u64> = store.list().expect("list").iter().map(|s| s.last_seq).collect();
    assert_eq!(names, vec![300, 400]);
}

#[test]
fn unfinished_snapshots_are_removed_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let temp = store.dir().join("snapshot-00000000000000000042.snap.tmp");
    fs::write(&temp, b"half written").expect("write");
    let store = SnapshotStore::open(dir.path(), SHARD, EPOCH, SnapshotConfig::default()).expect("reopen");
    assert!(!temp.exists());
    assert!(store.list().expect("list").is_empty());
}

#[test]
fn segments_are_pruned_only_below_the_older_of_the_two_newest_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records = recs(1..=600);
    drop(write_journal(dir.path(), &records, 4096));
    let all_segments = segment_paths(dir.path());
    let locations = locations(dir.path());
    let last_seq_of =
        |path: &std::path::Path| locations.iter().rposition(|(p, _, _)| p == path).expect("records") as u64 + 1;
    let store = store(dir.path());

    // One snapshot is not enough: if it were corrupt there would be nothing to fall back to.
    store.write(300, 0, &state(300)).expect("write");
    let report = store.prune_segments_before(300).expect("prune");
    assert_eq!((report.bound_seq, report.deleted.len()), (None, 0));

    // With two, only segments entirely at or before the older one (300) go, even when asked for 450.
    store.write(450, 0, &state(450)).expect("write");
    let report = store.prune_segments_before(450).expect("prune");
    assert_eq!(report.bound_seq, Some(300));
    assert!(!report.deleted.is_empty());
    for deleted in &report.deleted {
        assert!(last_seq_of(deleted) <= 300, "{} holds records after 300", deleted.display());
        assert!(!deleted.exists());
    }
    let remaining = segment_paths(dir.path());
    assert_eq!(remaining.len() + report.deleted.len(), all_segments.len());
    assert!(last_seq_of(&remaining[0]) > 300, "the first remaining segment is needed");
    assert_eq!(report.deleted, all_segments[..report.deleted.len()].to_vec(), "pruned from the oldest, no gap");

    // The journal is still valid and replays from either snapshot.
    let scanned = scan(dir.path(), SHARD, Some(EPOCH)).expect("scan");
    assert!(scanned.is_clean());
    assert_eq!(scanned.last_seq, Some(600));
    assert!(scanned.first_seq.expect("records") <= 301);
    flip_bit(&store.list().expect("list")[1].path, 100, 0);
    let fallback = store.latest_valid().expect("latest").expect("the older snapshot");
    assert_eq!(fallback.last_seq, 300);
    let mut reader = JournalReader::open_from(dir.path(), SHARD, Some(EPOCH), fallback.last_seq + 1).expect("open");
    let mut replayed = Vec::new();
    while let Some(record) = reader.next_record().expect("read") {
        replayed.push(record.seq);
    }
    assert_eq!(replayed, (301..=600).collect::<Vec<_>>());
    assert!(recover(dir.path(), SHARD, &RecoveryOptions::default()).expect("recover").report.is_clean());

    // 450 is corrupt: after a new snapshot at 500, the two newest that verify are 500 and 300, so the
    // bound stays at 300 and nothing more goes.
    store.write(500, 0, &state(500)).expect("write");
    let report = store.prune_segments_before(500).expect("prune");
    assert_eq!((report.bound_seq, report.deleted.len()), (Some(300), 0));

    // Snapshots past the end of the journal never delete its last segment.
    store.write(10_000, 0, b"late").expect("write");
    store.write(20_000, 0, b"later").expect("write");
    store.prune_segments_before(20_000).expect("prune");
    assert_eq!(segment_paths(dir.path()), vec![all_segments.last().expect("segments").clone()]);
    assert_eq!(scan(dir.path(), SHARD, Some(EPOCH)).expect("scan").last_seq, Some(600));
}
