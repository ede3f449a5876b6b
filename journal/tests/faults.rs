//! Fault injection: each kind of damage is reported with its exact kind, segment, offset and
//! sequence; torn tails are cut by recovery and appending continues; mid-log corruption is refused
//! unless allowed; and no damage ever makes the reader return a record that was not written.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use simex_journal::format::{frame_len_bytes, SegmentHeader, SEGMENT_HEADER_LEN};
use simex_journal::{
    recover, scan, Durability, JournalWriter, Problem, ProblemKind, ReadError, RecoveryError, RecoveryOptions, TornTail,
};
use std::fs;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const SEGMENT: u64 = 4096;
const RECORDS: u64 = 600;

/// A pristine journal of `RECORDS` records and a fresh copy of it to damage.
struct Fixture {
    _pristine_dir: TempDir,
    pristine: PathBuf,
    copy_dir: TempDir,
    records: Vec<Rec>,
    /// (segment path in the copy, frame offset, frame length) of each record.
    locations: Vec<(PathBuf, u64, u64)>,
    segments: Vec<PathBuf>,
}

impl Fixture {
    fn new(records: u64) -> Fixture {
        let pristine_dir = tempfile::tempdir().expect("tempdir");
        let pristine = pristine_dir.path().to_path_buf();
        let records = recs(1..=records);
        drop(write_journal(&pristine, &records, SEGMENT));
        let copy_dir = tempfile::tempdir().expect("tempdir");
        common::copy_dir(&pristine, copy_dir.path());
        let locations = locations(copy_dir.path());
        let segments = segment_paths(copy_dir.path());
        Fixture { _pristine_dir: pristine_dir, pristine, copy_dir, records, locations, segments }
    }

    fn root(&self) -> &Path {
        self.copy_dir.path()
    }

    /// Puts the copy back to the pristine journal.
    fn reset(&self) {
        fs::remove_dir_all(self.root()).expect("remove");
        copy_dir(&self.pristine, self.root());
    }

    fn first_seq_of(&self, segment: &Path) -> u64 {
        self.locations.iter().position(|(path, _, _)| path == segment).expect("segment has records") as u64 + 1
    }

    /// Offset just after the last frame of `segment`.
    fn end_of_data(&self, segment: &Path) -> u64 {
        let (_, offset, len) = self.locations.iter().rev().find(|(path, _, _)| path == segment).expect("records");
        offset + len
    }

    fn location(&self, seq: u64) -> (PathBuf, u64, u64) {
        self.locations[seq as usize - 1].clone()
    }

    fn last_segment(&self) -> &PathBuf {
        self.segments.last().expect("segments")
    }
}

fn options(allow_corruption: bool) -> RecoveryOptions {
    RecoveryOptions { epoch: Some(EPOCH), allow_corruption, scan_from_seq: None }
}

fn problem(segment_path: &Path, offset_bytes: u64, seq: u64, kind: ProblemKind) -> Problem {
    Problem { segment_path: segment_path.to_path_buf(), offset_bytes, seq, kind }
}

fn torn(segment_path: &Path, offset_bytes: u64, seq: u64, kind: ProblemKind) -> TornTail {
    TornTail { segment_path: segment_path.to_path_buf(), offset_bytes, seq, kind }
}

/// Recovers a torn tail ending before `seq`, checks the warning, then appends the rest of the records
/// again and reads back the whole stream.
fn recover_and_finish(fx: &Fixture, expected: &TornTail) {
    let (recovered, logs) = capture_logs(|| recover(fx.root(), SHARD, &options(false)));
    let recovered = recovered.expect("a torn tail is recovered");
    assert_eq!(recovered.torn_tail.as_ref(), Some(expected));
    assert_eq!(recovered.next_seq(), Some(expected.seq));
    assert!(logs.contains("WARN"), "{logs}");
    assert!(logs.contains(&expected.segment_path.display().to_string()), "{logs}");
    assert!(logs.contains(&format!("offset_bytes={}", expected.offset_bytes)), "{logs}");
    assert!(logs.contains(&format!("seq={}", expected.seq)), "{logs}");

    let report = scan(fx.root(), SHARD, Some(EPOCH)).expect("scan");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.last_seq, Some(expected.seq - 1));

    let mut writer = JournalWriter::open_for_append(&recovered, config(SEGMENT, Durability::Sync)).expect("reopen");
    append_all(&mut writer, &fx.records[expected.seq as usize - 1..], 25);
    drop(writer);
    assert_eq!(read_clean(fx.root()), fx.records);
}

#[test]
fn a_truncated_tail_is_cut_and_appending_continues() {
    let fx = Fixture::new(RECORDS);
    let (path, offset, len) = fx.location(RECORDS);
    assert_eq!(&path, fx.last_segment());
    let file = fs::OpenOptions::new().write(true).open(&path).expect("open");
    file.set_len(offset + len / 2).expect("truncate");
    drop(file);

    let expected = torn(&path, offset, RECORDS, ProblemKind::RecordTruncated);
    let report = scan(fx.root(), SHARD, Some(EPOCH)).expect("scan");
    assert_eq!(report.torn_tail.as_ref(), Some(&expected));
    assert_eq!((report.problem.as_ref(), report.records, report.next_seq), (None, RECORDS - 1, Some(RECORDS)));
    let (records, error) = read_all(fx.root());
    assert_eq!(records, fx.records[..RECORDS as usize - 1]);
    assert!(matches!(error, Some(ReadError::TornTail(t)) if t == expected));

    recover_and_finish(&fx, &expected);
    assert_eq!(fs::metadata(&path).expect("stat").len(), SEGMENT, "reopening preallocates again");
}

#[test]
fn a_file_cut_inside_a_frame_header_is_a_torn_tail() {
    let fx = Fixture::new(RECORDS);
    let (path, offset, _) = fx.location(RECORDS);
    fs::OpenOptions::new().write(true).open(&path).expect("open").set_len(offset + 5).expect("truncate");
    let expected = torn(&path, offset, RECORDS, ProblemKind::RecordTruncated);
    assert_eq!(scan(fx.root(), SHARD, Some(EPOCH)).expect("scan").torn_tail, Some(expected.clone()));
    recover_and_finish(&fx, &expected);
}

#[test]
fn a_zeroed_tail_is_a_torn_tail_or_a_clean_end() {
    let fx = Fixture::new(RECORDS);
    let (path, offset, len) = fx.location(RECORDS);

    // The payload of the last record zeroed: its checksum fails.
    write_at(&path, offset + 32, &vec![0; len as usize - 32]);
    let expected = torn(&path, offset, RECORDS, ProblemKind::RecordChecksum);
    assert_eq!(scan(fx.root(), SHARD, Some(EPOCH)).expect("scan").torn_tail, Some(expected.clone()));
    recover_and_finish(&fx, &expected);

    // Only its header zeroed: a zero length followed by bytes.
    fx.reset();
    write_at(&path, offset, &[0; 32]);
    let expected = torn(&path, offset, RECORDS, ProblemKind::GarbageAfterEnd);
    assert_eq!(scan(fx.root(), SHARD, Some(EPOCH)).expect("scan").torn_tail, Some(expected.clone()));
    recover_and_finish(&fx, &expected);

    // The whole frame zeroed: indistinguishable from never written, a clean end one record earlier.
    fx.reset();
    write_at(&path, offset, &vec![0; len as usize]);
    let report = scan(fx.root(), SHARD, Some(EPOCH)).expect("scan");
    assert!(report.is_clean());
    assert_eq!((report.last_seq, report.next_seq), (Some(RECORDS - 1), Some(RECORDS)));
}

#[test]
fn damage_followed_by_valid_records_is_corruption_and_is_refused() {
    let fx = Fixture::new(RECORDS);
    let seq = 300;
    let (path, offset, _) = fx.location(seq);
    flip_bit(&path, offset + 32, 3);
    let expected = problem(&path, offset, seq, ProblemKind::RecordChecksum);

    let report = scan(fx.root(), SHARD, Some(EPOCH)).expect("scan");
    assert_eq!((report.problem.as_ref(), report.torn_tail.as_ref()), (Some(&expected), None));
    assert_eq!((report.records, report.last_seq), (seq - 1, Some(seq - 1)));
    let (records, error) = read_all(fx.root());
    assert_eq!(records, fx.records[..seq as usize - 1]);
    assert!(matches!(error, Some(ReadError::Corrupt(p)) if p == expected));

    let before: Vec<Vec<u8>> = fx.segments.iter().map(|p| fs::read(p).expect("read")).collect();
    match recover(fx.root(), SHARD, &options(false)) {
        Err(RecoveryError::Corruption(found)) => assert_eq!(found, expected),
        other => panic!("expected corruption, got {other:?}"),
    }
    let after: Vec<Vec<u8>> = fx.segments.iter().map(|p| fs::read(p).expect("read")).collect();
    assert!(before == after, "a refused recovery changes nothing");
    let error = recover(fx.root(), SHARD, &options(false)).expect_err("corrupt").to_string();
    assert!(error.contains(&path.display().to_string()) && error.contains(&format!("offset {offset}")), "{error}");
    assert!(error.contains(&format!("expected sequence {seq}")) && error.contains("checksum"), "{error}");

    // Allowed: cut there, set the damaged segment's copy and every later segment aside, and go on.
    let (recovered, logs) = capture_logs(|| recover(fx.root(), SHARD, &options(true)));
    let recovered = recovered.expect("allowed");
    assert!(logs.contains("mid-log corruption"), "{logs}");
    assert_eq!(recovered.corruption.as_ref(), Some(&expected));
    assert_eq!(recovered.next_seq(), Some(seq));
    let later = fx.segments.iter().filter(|p| **p > path).count();
    assert_eq!(recovered.quarantined.len(), 1 + later);
    assert!(recovered.quarantined.iter().all(|p| p.to_string_lossy().contains(".seg.corrupt")));
    let report = scan(fx.root(), SHARD, Some(EPOCH)).expect("scan");
    assert!(report.is_clean());
    assert_eq!(report.last_seq, Some(seq - 1));
    let mut writer = JournalWriter::open_for_append(&recovered, config(SEGMENT, Durability::None)).expect("reopen");
    append_all(&mut writer, &fx.records[seq as usize - 1..], 100);
    drop(writer);
    assert_eq!(read_clean(fx.root()), fx.records);
}

#[test]
fn damage_in_the_last_segment_with_records_after_it_is_corruption() {
    let fx = Fixture::new(RECORDS);
    let first = fx.first_seq_of(fx.last_segment());
    assert!(first < RECORDS - 2, "the last segment holds several records");
    let (path, offset, _) = fx.location(first);
    write_at(&path, offset + 36, &[0xAA; 4]);
    let report = scan(fx.root(), SHARD, Some(EPOCH)).expect("scan");
    assert_eq!(report.problem, Some(problem(&path, offset, first, ProblemKind::RecordChecksum)));
    assert_eq!(report.torn_tail, None);
}

#[test]
fn a_missing_segment_is_detected() {
    let fx = Fixture::new(RECORDS);
    let missing = fx.segments[4].clone();
    let next = fx.segments[5].clone();
    let (missing_first, next_first) = (fx.first_seq_of(&missing), fx.first_seq_of(&next));
    fs::remove_file(&missing).expect("remove");
    let kind = ProblemKind::MissingSegment { expected_seq: missing_first, found_seq: next_first };
    let expected = problem(&next, 0, missing_first, kind);
    let report = scan(fx.root(), SHARD, Some(EPOCH)).expect("scan");
    assert_eq!(report.problem, Some(expected.clone()));
    assert_eq!(report.last_seq, Some(missing_first - 1));
    assert!(matches!(recover(fx.root(), SHARD, &options(false)), Err(RecoveryError::Corruption(p)) if p == expected));
}

#[test]
fn a_stale_segment_from_another_epoch_is_rejected() {
    let fx = Fixture::new(RECORDS);
    // The same records written by another incarnation of the journal: same layout, epoch 8.
    let other = tempfile::tempdir().expect("tempdir");
    let mut writer = JournalWriter::create(other.path(), SHARD, 8, config(SEGMENT, Durability::None)).expect("create");
    append_all(&mut writer, &recs(1..=RECORDS + 200), 50);
    drop(writer);

    let victim = fx.segments[6].clone();
    fs::copy(moved(&victim, fx.root(), other.path()), &victim).expect("copy");
    let seq = fx.first_seq_of(&victim);
    let expected = problem(&victim, 0, seq, ProblemKind::StaleEpoch { expected: EPOCH, found: 8 });
    for epoch in [Some(EPOCH), None] {
        let report = scan(fx.root(), SHARD, epoch).expect("scan");
        assert_eq!(report.problem, Some(expected.clone()));
        assert_eq!(report.last_seq, Some(seq - 1));
    }

    // A stale segment after the end of the journal.
    fx.reset();
    let theirs = segment_paths(other.path());
    let after = theirs.iter().find(|p| p.file_name() > fx.last_segment().file_name()).expect("a later segment");
    let stale = fx.last_segment().with_file_name(after.file_name().expect("name"));
    fs::copy(after, &stale).expect("copy");
    let report = scan(fx.root(), SHARD, Some(EPOCH)).expect("scan");
    assert_eq!(
        report.problem,
        Some(problem(&stale, 0, RECORDS + 1, ProblemKind::StaleEpoch { expected: EPOCH, found: 8 }))
    );
    assert_eq!(report.records, RECORDS);
}

#[test]
fn a_corrupt_segment_header_is_detected() {
    let fx = Fixture::new(RECORDS);
    let victim = fx.segments[2].clone();
    let seq = fx.first_seq_of(&victim);
    let cases: [(u64, &[u8], ProblemKind); 4] = [
        (17, &[0xFF], ProblemKind::HeaderChecksum),
        (0, b"X", ProblemKind::HeaderBadMagic),
        (8, &[2, 0], ProblemKind::HeaderUnsupportedVersion { found: 2 }),
        (60, &[0, 0, 0, 0], ProblemKind::HeaderChecksum),
    ];
    for (offset, bytes, kind) in cases {
        fx.reset();
        write_at(&victim, offset, bytes);
        let report = scan(fx.root(), SHARD, Some(EPOCH)).expect("scan");
        assert_eq!(report.problem, Some(problem(&victim, 0, seq, kind)), "bytes at {offset}");
        assert_eq!(report.records, seq - 1);
    }

    // A valid header of another shard, and a header that disagrees with the file name.
    fx.reset();
    let header = SegmentHeader::decode(&fs::read(&victim).expect("read")).expect("valid");
    write_at(&victim, 0, &SegmentHeader { shard: SHARD + 1, ..header }.encode());
    let report = scan(fx.root(), SHARD, Some(EPOCH)).expect("scan");
    assert_eq!(
        report.problem,
        Some(problem(&victim, 0, seq, ProblemKind::WrongShard { expected: SHARD, found: SHARD + 1 }))
    );
    fx.reset();
    let last = fx.last_segment();
    let last_first = fx.first_seq_of(last);
    let renamed = last.with_file_name(simex_journal::segment_file_name(last_first + 5));
    fs::rename(last, &renamed).expect("rename");
    let report = scan(fx.root(), SHARD, Some(EPOCH)).expect("scan");
    let kind = ProblemKind::NameMismatch { name_seq: last_first + 5, header_seq: last_first };
    assert_eq!(report.problem, Some(problem(&renamed, 0, last_first, kind)));

    // Recovery refuses a corrupt header; allowed, it sets that segment and the later ones aside.
    fx.reset();
    write_at(&victim, 20, &[0x55]);
    assert!(matches!(recover(fx.root(), SHARD, &options(false)), Err(RecoveryError::Corruption(_))));
    let recovered = recover(fx.root(), SHARD, &options(true)).expect("allowed");
    assert_eq!(recovered.quarantined.len(), fx.segments.len() - 2);
    assert_eq!(recovered.next_seq(), Some(seq));
    let mut writer = JournalWriter::open_for_append(&recovered, config(SEGMENT, Durability::None)).expect("reopen");
    append_all(&mut writer, &fx.records[seq as usize - 1..], 100);
    drop(writer);
    assert_eq!(read_clean(fx.root()), fx.records);
}

#[test]
fn a_cut_segment_header_at_the_end_is_a_torn_tail() {
    let fx = Fixture::new(RECORDS);
    let last = fx.last_segment().clone();
    let first = fx.first_seq_of(&last);
    fs::OpenOptions::new().write(true).open(&last).expect("open").set_len(40).expect("truncate");
    let expected = torn(&last, 0, first, ProblemKind::HeaderTooShort { len_bytes: 40 });
    assert_eq!(scan(fx.root(), SHARD, Some(EPOCH)).expect("scan").torn_tail, Some(expected.clone()));

    // The cut segment holds no record: recovery removes it and appending starts it again.
    let recovered = recover(fx.root(), SHARD, &options(false)).expect("recover");
    assert_eq!(recovered.torn_tail, Some(expected));
    assert_eq!(recovered.removed, vec![last.clone()]);
    assert!(!last.exists());
    assert_eq!((recovered.last_seq(), recovered.next_seq()), (Some(first - 1), Some(first)));
    let mut writer = JournalWriter::open_for_append(&recovered, config(SEGMENT, Durability::Sync)).expect("reopen");
    append_all(&mut writer, &fx.records[first as usize - 1..], 10);
    drop(writer);
    assert_eq!(read_clean(fx.root()), fx.records);
}

#[test]
fn unfinished_segment_files_are_removed_by_recovery() {
    let fx = Fixture::new(100);
    let temp = fx.root().join(format!("shard-{SHARD}")).join(format!("{}.tmp", simex_journal::segment_file_name(101)));
    fs::write(&temp, [1u8; 100]).expect("write");
    let report = scan(fx.root(), SHARD, Some(EPOCH)).expect("scan");
    assert!(report.is_clean());
    assert_eq!(report.temporary_files, vec![temp.clone()]);
    let recovered = recover(fx.root(), SHARD, &options(false)).expect("recover");
    assert_eq!(recovered.removed, vec![temp.clone()]);
    assert!(!temp.exists());
}

/// Where a flipped bit landed, and what it must be reported as.
fn expected_for_flip(fx: &Fixture, segment_index: usize, offset: u64) -> (Problem, bool, Vec<ProblemKind>) {
    let path = &fx.segments[segment_index];
    let is_last_segment = segment_index + 1 == fx.segments.len();
    let first = fx.first_seq_of(path);
    if offset < SEGMENT_HEADER_LEN as u64 {
        let kinds = match offset {
            0..8 => vec![ProblemKind::HeaderBadMagic],
            8..10 => vec![],
            _ => vec![ProblemKind::HeaderChecksum],
        };
        return (problem(path, 0, first, ProblemKind::HeaderChecksum), false, kinds);
    }
    let end = fx.end_of_data(path);
    if offset >= end {
        let last_seq_here = fx.locations.iter().rposition(|(p, _, _)| p == path).expect("records") as u64 + 1;
        return (
            problem(path, end, last_seq_here + 1, ProblemKind::GarbageAfterEnd),
            is_last_segment,
            vec![ProblemKind::GarbageAfterEnd],
        );
    }
    let seq = fx
        .locations
        .iter()
        .position(|(p, start, len)| p == path && (*start..start + len).contains(&offset))
        .expect("inside a frame") as u64
        + 1;
    let (_, start, _) = fx.location(seq);
    let torn = is_last_segment && seq == RECORDS;
    let kinds = if offset < start + 4 {
        vec![ProblemKind::RecordChecksum, ProblemKind::GarbageAfterEnd]
    } else {
        vec![ProblemKind::RecordChecksum]
    };
    (problem(path, start, seq, ProblemKind::RecordChecksum), torn, kinds)
}

#[test]
fn flipped_bits_anywhere_are_detected_and_never_read_as_data() {
    let fx = Fixture::new(RECORDS);
    let mut rng = ChaCha8Rng::seed_from_u64(0x5EED_F11B);
    let (mut torn_tails, mut problems) = (0, 0);
    for iteration in 0..400 {
        fx.reset();
        // Flips in the last segment's last record and tail are torn tails: aim there a quarter of the time.
        let segment_index =
            if iteration % 4 == 0 { fx.segments.len() - 1 } else { rng.gen_range(0..fx.segments.len()) };
        let path = fx.segments[segment_index].clone();
        let offset = if iteration % 4 == 0 {
            let (_, start, _) = fx.location(RECORDS);
            rng.gen_range(start..SEGMENT)
        } else {
            rng.gen_range(0..SEGMENT)
        };
        let bit = rng.gen_range(0..8);
        flip_bit(&path, offset, bit);

        let (expected, expect_torn, kinds) = expected_for_flip(&fx, segment_index, offset);
        let context = format!("flip of bit {bit} at {}:{offset}", path.display());
        let report = scan(fx.root(), SHARD, Some(EPOCH)).expect("scan");
        let (found_path, found_offset, found_seq, found_kind) = match (&report.problem, &report.torn_tail) {
            (Some(p), None) => {
                assert!(!expect_torn, "{context}: expected a torn tail, got {p}");
                problems += 1;
                (&p.segment_path, p.offset_bytes, p.seq, p.kind)
            }
            (None, Some(t)) => {
                assert!(expect_torn, "{context}: expected a problem, got torn tail {t}");
                torn_tails += 1;
                (&t.segment_path, t.offset_bytes, t.seq, t.kind)
            }
            other => panic!("{context}: not detected: {other:?}"),
        };
        assert_eq!(
            (found_path, found_offset, found_seq),
            (&expected.segment_path, expected.offset_bytes, expected.seq),
            "{context}"
        );
        if kinds.is_empty() {
            assert!(matches!(found_kind, ProblemKind::HeaderUnsupportedVersion { .. }), "{context}: {found_kind:?}");
        } else if offset >= SEGMENT_HEADER_LEN as u64 && kinds.len() == 2 {
            // A flip in the length field: the frame now ends elsewhere or the length reads as zero.
            assert!(
                kinds.contains(&found_kind) || matches!(found_kind, ProblemKind::RecordLength { .. }),
                "{context}: {found_kind:?}"
            );
        } else {
            assert!(kinds.contains(&found_kind), "{context}: {found_kind:?}");
        }
        // What was read before the damage is exactly what was written.
        let (records, error) = read_all(fx.root());
        assert!(error.is_some(), "{context}");
        assert_eq!(records, fx.records[..expected.seq as usize - 1], "{context}");
        assert_eq!(report.records, expected.seq - 1, "{context}");
    }
    assert!(torn_tails > 50 && problems > 200, "{torn_tails} torn tails, {problems} problems");
}

#[test]
fn frames_are_where_the_format_says() {
    let fx = Fixture::new(50);
    let mut expected_offset = SEGMENT_HEADER_LEN as u64;
    let mut segment = fx.locations[0].0.clone();
    for (i, (path, offset, len)) in fx.locations.iter().enumerate() {
        if *path != segment {
            assert!(expected_offset + len > SEGMENT, "a new segment starts only when the frame does not fit");
            segment = path.clone();
            expected_offset = SEGMENT_HEADER_LEN as u64;
        }
        assert_eq!(*offset, expected_offset);
        assert_eq!(*len, frame_len_bytes(fx.records[i].payload.len() as u64));
        expected_offset += len;
    }
}
