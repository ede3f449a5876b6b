//! Arbitrary bytes as a segment file: the scanner and the reader never panic, every record they
//! return verifies and follows the previous one, and after a recovery allowed to drop corruption the
//! journal scans clean with the same valid prefix.
//!
//! The input is stored as the journal's only segment, under the name its header claims when that is
//! readable, so that the header checks past the checksum (shard, epoch, name) are reached too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simex_journal::format::{SegmentHeader, SEGMENT_HEADER_LEN};
use simex_journal::{recover, scan, segment_file_name, shard_dir, JournalReader, RecoveryOptions};
use std::path::PathBuf;
use std::sync::OnceLock;

const SHARD: u32 = 0;

/// One directory per process, on a memory file system when there is one.
fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base =
            if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let root = base.join(format!("simex-journal-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(shard_dir(&root, SHARD)).expect("fuzz directory");
        root
    })
}

fuzz_target!(|data: &[u8]| {
    let root = root();
    let dir = shard_dir(root, SHARD);
    for entry in std::fs::read_dir(&dir).expect("list") {
        std::fs::remove_file(entry.expect("entry").path()).expect("clean");
    }
    let header = SegmentHeader::decode(data).ok();
    let first_seq = header.map_or(1, |h| h.first_seq);
    std::fs::write(dir.join(segment_file_name(first_seq)), data).expect("write segment");

    let report = scan(root, SHARD, None).expect("scan");
    assert!(report.torn_tail.is_none() || report.problem.is_none());
    assert!(report.records == 0 || header.is_some());

    let mut reader = JournalReader::open(root, SHARD, None).expect("reader");
    let mut count = 0u64;
    let mut previous: Option<u64> = None;
    while let Ok(Some(record)) = reader.next_record() {
        assert!(!record.payload.is_empty());
        assert!(record.offset_bytes >= SEGMENT_HEADER_LEN as u64 && record.offset_bytes % 8 == 0);
        if let Some(previous) = previous {
            assert_eq!(record.seq, previous + 1);
        } else {
            assert_eq!(Some(record.seq), header.map(|h| h.first_seq));
        }
        previous = Some(record.seq);
        count += 1;
    }
    assert_eq!(count, report.records);
    assert_eq!(previous, report.last_seq);

    let options = RecoveryOptions { epoch: None, allow_corruption: true, scan_from_seq: None };
    let recovered = recover(root, SHARD, &options).expect("recover");
    assert_eq!(recovered.records(), report.records);
    let after = scan(root, SHARD, recovered.epoch).expect("scan after recovery");
    assert!(after.is_clean(), "{after:?}");
    assert_eq!((after.records, after.last_seq), (report.records, report.last_seq));
});
