//! Writing and reading back: thousands of records across many small segments, reopening after a
//! clean stop and appending, records larger than the write buffer, and the writer's refusals.

mod common;

use common::*;
use simex_journal::format::{frame_len_bytes, SEGMENT_HEADER_LEN};
use simex_journal::{
    recover, scan, Durability, JournalConfig, JournalReader, JournalWriter, ReadError, RecoveryOptions, WriteError,
};
use std::fs;

const SMALL_SEGMENT: u64 = 4096;

#[test]
fn thousands_of_records_round_trip_across_many_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records = recs(1..=5000);
    let writer = write_journal(dir.path(), &records, SMALL_SEGMENT);
    assert_eq!(read_clean(dir.path()), records);

    let stats = writer.stats();
    let frame_bytes: u64 = records.iter().map(|r| frame_len_bytes(r.payload.len() as u64)).sum();
    assert_eq!(stats.records, 5000);
    assert_eq!(stats.bytes, frame_bytes);
    assert_eq!(stats.batches, 100);
    assert!(stats.segments_created > 100, "{} segments", stats.segments_created);
    // One sync per commit, plus one for each segment finished in the middle of a batch.
    assert!(stats.syncs >= stats.batches && stats.syncs <= stats.batches + stats.segments_created);
    assert_eq!(stats.sync_latency_ns.len(), stats.syncs);

    let report = scan(dir.path(), SHARD, Some(EPOCH)).expect("scan");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.segments as u64, stats.segments_created);
    assert_eq!(report.records, 5000);
    assert_eq!((report.first_seq, report.last_seq, report.next_seq), (Some(1), Some(5000), Some(5001)));
    assert_eq!(report.first_timestamp_ns, Some(records[0].timestamp_ns));
    assert_eq!(report.last_timestamp_ns, Some(records[4999].timestamp_ns));
    assert_eq!(report.epoch, Some(EPOCH));

    // Every segment is preallocated to its capacity and named by its first record.
    let locations = locations(dir.path());
    for path in segment_paths(dir.path()) {
        assert_eq!(fs::metadata(&path).expect("stat").len(), SMALL_SEGMENT);
        let first = locations.iter().position(|(p, _, _)| *p == path).expect("segment has records");
        assert_eq!(path.file_name().and_then(|n| n.to_str()), Some(format!("{:020}.seg", first + 1).as_str()));
        assert_eq!(locations[first].1, SEGMENT_HEADER_LEN as u64);
    }
}

#[test]
fn reopening_after_recovery_appends_after_the_last_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = recs(1..=1500);
    drop(write_journal(dir.path(), &first, SMALL_SEGMENT));

    let recovered = recover(
        dir.path(),
        SHARD,
        &RecoveryOptions { epoch: Some(EPOCH), allow_corruption: false, scan_from_seq: None },
    )
    .expect("recover");
    assert!(recovered.report.is_clean());
    assert_eq!((recovered.last_seq(), recovered.next_seq()), (Some(1500), Some(1501)));
    assert!(recovered.torn_tail.is_none() && recovered.corruption.is_none());
    let (tail_path, tail_offset) = recovered.append_position().expect("tail");
    let last = locations(dir.path()).pop().expect("records");
    assert_eq!((tail_path, tail_offset), (last.0.as_path(), last.1 + last.2));

    let mut writer =
        JournalWriter::open_for_append(&recovered, config(SMALL_SEGMENT, Durability::Sync)).expect("open for append");
    assert_eq!(writer.next_seq(), 1501);
    let second = recs(1501..=3000);
    append_all(&mut writer, &second, 1);
    drop(writer);

    let all: Vec<Rec> = first.into_iter().chain(second).collect();
    assert_eq!(read_clean(dir.path()), all);

    // A journal whose newest segment holds no record yet (a crash right after a roll, or right after
    // creation) reopens into that segment.
    drop(
        JournalWriter::create_from(dir.path(), 4, EPOCH, 77, config(SMALL_SEGMENT, Durability::Sync)).expect("create"),
    );
    let recovered = recover(dir.path(), 4, &RecoveryOptions::default()).expect("recover");
    assert_eq!((recovered.records(), recovered.next_seq()), (0, Some(77)));
    assert_eq!(recovered.append_position().map(|(_, offset)| offset), Some(SEGMENT_HEADER_LEN as u64));
    let mut writer = JournalWriter::open_for_append(&recovered, config(SMALL_SEGMENT, Durability::None)).expect("open");
    writer.append(1, 77, 0, b"first").expect("append");
    writer.commit().expect("commit");
    let report = scan(dir.path(), 4, Some(EPOCH)).expect("scan");
    assert_eq!((report.segments, report.first_seq, report.last_seq), (1, Some(77), Some(77)));
}

#[test]
fn records_larger_than_the_buffer_are_written_directly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = JournalConfig { segment_size_bytes: 1 << 20, buffer_bytes: 4096, durability: Durability::Batch };
    let mut writer = JournalWriter::create(dir.path(), SHARD, EPOCH, config).expect("create");
    let mut expected = Vec::new();
    for seq in 1..=60u64 {
        let len = if seq % 3 == 0 { 50_000 + seq as usize } else { 100 };
        let payload: Vec<u8> = (0..len).map(|i| (i as u64 * seq) as u8).collect();
        writer.append(2, seq, seq as i64, &payload).expect("append");
        expected.push(Rec { seq, record_type: 2, timestamp_ns: seq as i64, payload });
        if seq % 7 == 0 {
            writer.commit().expect("commit");
        }
    }
    writer.commit().expect("commit");
    assert_eq!(read_clean(dir.path()), expected);
}

#[test]
fn a_journal_can_start_after_a_snapshot_and_be_read_from_any_sequence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(SMALL_SEGMENT, Durability::None);
    let mut writer = JournalWriter::create_from(dir.path(), SHARD, EPOCH, 1001, config).expect("create");
    let records = recs(1001..=2000);
    append_all(&mut writer, &records, 10);
    let report = scan(dir.path(), SHARD, None).expect("scan");
    assert_eq!((report.first_seq, report.last_seq), (Some(1001), Some(2000)));

    for from in [1001, 1002, 1500, 1999, 2000] {
        let mut reader = JournalReader::open_from(dir.path(), SHARD, Some(EPOCH), from).expect("open");
        let mut seqs = Vec::new();
        while let Some(record) = reader.next_record().expect("read") {
            assert_eq!(record.payload, rec(record.seq).payload.as_slice());
            seqs.push(record.seq);
        }
        assert_eq!(seqs, (from..=2000).collect::<Vec<_>>());
    }
    let mut reader = JournalReader::open_from(dir.path(), SHARD, Some(EPOCH), 1000).expect("open");
    assert!(matches!(reader.next_record(), Err(ReadError::SeqNotAvailable { requested: 1000, first_available: 1001 })));
}

#[test]
fn the_writer_refuses_what_it_cannot_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut writer =
        JournalWriter::create(dir.path(), SHARD, EPOCH, config(SMALL_SEGMENT, Durability::None)).expect("create");
    assert!(matches!(writer.append(0, 1, 0, b""), Err(WriteError::EmptyPayload)));
    assert!(matches!(
        writer.append(0, 1, 0, &[0u8; 4001]),
        Err(WriteError::RecordTooLarge { payload_len_bytes: 4001, max_payload_bytes: 4000 })
    ));
    writer.append(0, 1, 0, &[0u8; 4000]).expect("the largest payload fits");
    writer.commit().expect("commit");
    assert!(!writer.is_poisoned());

    assert!(matches!(
        JournalWriter::create(dir.path(), SHARD, EPOCH, config(SMALL_SEGMENT, Durability::None)),
        Err(WriteError::AlreadyExists(_))
    ));
    for bad in [64, 4100, 1 << 33] {
        assert!(matches!(
            JournalWriter::create(dir.path(), 9, EPOCH, config(bad, Durability::None)),
            Err(WriteError::InvalidConfig(_))
        ));
    }
}

#[test]
#[should_panic(expected = "journal sequence must be the previous one plus one")]
fn a_sequence_gap_is_a_bug() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut writer =
        JournalWriter::create(dir.path(), SHARD, EPOCH, config(SMALL_SEGMENT, Durability::None)).expect("create");
    writer.append(0, 1, 0, b"one").expect("append");
    let _ = writer.append(0, 3, 0, b"three");
}

#[test]
fn shards_are_independent_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    for shard in 0..3u32 {
        let mut writer =
            JournalWriter::create(dir.path(), shard, EPOCH, config(SMALL_SEGMENT, Durability::None)).expect("create");
        for seq in 1..=(100 * (u64::from(shard) + 1)) {
            writer.append(0, seq, 0, &shard.to_le_bytes()).expect("append");
        }
        writer.commit().expect("commit");
    }
    for shard in 0..3u32 {
        let report = scan(dir.path(), shard, Some(EPOCH)).expect("scan");
        assert!(report.is_clean());
        assert_eq!(report.records, 100 * (u64::from(shard) + 1));
        assert!(dir.path().join(format!("shard-{shard}")).is_dir());
    }
}
