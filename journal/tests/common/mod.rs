//! Shared by the integration tests: a deterministic record stream, writing it, reading it back, and
//! copying journals so that each fault is injected into a fresh copy.
#![allow(dead_code)]

use simex_journal::{Durability, JournalConfig, JournalReader, JournalWriter, ReadError};
use std::fs;
use std::path::{Path, PathBuf};

pub const SHARD: u32 = 3;
pub const EPOCH: u64 = 7;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub seq: u64,
    pub record_type: u16,
    pub timestamp_ns: i64,
    pub payload: Vec<u8>,
}

/// Record `seq` of the test stream: lengths from 1 to 300 bytes, contents that depend on the sequence.
pub fn rec(seq: u64) -> Rec {
    let len = 1 + (seq.wrapping_mul(2_654_435_761) % 300) as usize;
    let payload = (0..len).map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i as u8) | 1).collect();
    Rec { seq, record_type: (seq % 5) as u16, timestamp_ns: 1_700_000_000_000_000_000 + seq as i64 * 1_000, payload }
}

pub fn recs(seqs: std::ops::RangeInclusive<u64>) -> Vec<Rec> {
    seqs.map(rec).collect()
}

pub fn config(segment_size_bytes: u64, durability: Durability) -> JournalConfig {
    JournalConfig { segment_size_bytes, buffer_bytes: 8192, durability }
}

/// Appends `records`, committing every `batch` records and at the end.
pub fn append_all(writer: &mut JournalWriter, records: &[Rec], batch: usize) {
    for (i, r) in records.iter().enumerate() {
        writer.append(r.record_type, r.seq, r.timestamp_ns, &r.payload).expect("append");
        if (i + 1) % batch == 0 {
            writer.commit().expect("commit");
        }
    }
    writer.commit().expect("commit");
}

/// A new journal at `root` holding `records` (which start at 1), in segments of `segment_size_bytes`.
pub fn write_journal(root: &Path, records: &[Rec], segment_size_bytes: u64) -> JournalWriter {
    let mut writer = JournalWriter::create(root, SHARD, EPOCH, config(segment_size_bytes, Durability::Batch))
        .expect("create journal");
    append_all(&mut writer, records, 50);
    writer
}

/// Every record of the journal, or the error the reader stopped at with the records before it.
pub fn read_all(root: &Path) -> (Vec<Rec>, Option<ReadError>) {
    let mut reader = JournalReader::open(root, SHARD, Some(EPOCH)).expect("open reader");
    let mut out = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(r)) => out.push(Rec {
                seq: r.seq,
                record_type: r.record_type,
                timestamp_ns: r.timestamp_ns,
                payload: r.payload.to_vec(),
            }),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

pub fn read_clean(root: &Path) -> Vec<Rec> {
    let (records, error) = read_all(root);
    assert!(error.is_none(), "unexpected read error: {error:?}");
    records
}

/// Where each record is: (segment path, frame offset, frame length), in sequence order.
pub fn locations(root: &Path) -> Vec<(PathBuf, u64, u64)> {
    let mut reader = JournalReader::open(root, SHARD, Some(EPOCH)).expect("open reader");
    let mut out = Vec::new();
    while let Some(r) = reader.next_record().expect("clean journal") {
        let frame_len = simex_journal::format::frame_len_bytes(r.payload.len() as u64);
        let offset = r.offset_bytes;
        out.push((reader.segment_path().expect("segment").to_path_buf(), offset, frame_len));
    }
    out
}

pub fn segment_paths(root: &Path) -> Vec<PathBuf> {
    JournalReader::open(root, SHARD, None).expect("open").segments().iter().map(|s| s.path.clone()).collect()
}

pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// The same file in another copy of a journal.
pub fn moved(path: &Path, from_root: &Path, to_root: &Path) -> PathBuf {
    to_root.join(path.strip_prefix(from_root).expect("inside root"))
}

pub fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = fs::OpenOptions::new().write(true).open(path).expect("open");
    file.write_all_at(bytes, offset).expect("write");
}

pub fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let mut bytes = fs::read(path).expect("read");
    bytes[offset as usize] ^= 1 << bit;
    fs::write(path, bytes).expect("write");
}

/// Runs `f` with a subscriber that collects every log line, and returns them too.
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    use std::sync::{Arc, Mutex};
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink(Arc::new(Mutex::new(Vec::new())));
    let make = sink.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || make.clone()).with_ansi(false).finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let logs = String::from_utf8_lossy(&sink.0.lock().expect("lock")).into_owned();
    (out, logs)
}
