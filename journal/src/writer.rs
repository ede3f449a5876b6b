//! Appending records to a shard's journal: batching, segment rolls and durability.
//!
//! The writer is owned by one thread. `append` encodes a frame into a buffer allocated once at start-up
//! (no allocation per record); `commit` writes the buffered batch with one `pwrite` and, unless the
//! durability is [`Durability::None`], makes it durable with one `fdatasync`. A record is durable, and
//! may be acknowledged, only once the `commit` that follows its `append` has returned `Ok`.
//!
//! A failed `fdatasync` is fatal. After an fsync error Linux may have marked the dirty pages clean
//! and dropped the error, so a retry can succeed without the data being on disk ("fsyncgate"). The
//! writer therefore never retries: it returns [`WriteError::SyncFailed`] once, is poisoned, and every
//! later call fails with [`WriteError::Poisoned`]. The process is expected to stop and recover from
//! what is on disk. A failed `write` poisons the writer too, since the file then holds an unknown
//! prefix of the batch.

use crate::error::{IoError, WriteError};
use crate::format::{
    frame_len_bytes, max_payload_bytes, FrameHeader, SegmentHeader, DEFAULT_SEGMENT_BYTES, FRAME_ALIGN_BYTES,
    FRAME_CRC_OFFSET, FRAME_HEADER_LEN, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES, SEGMENT_HEADER_LEN,
};
use crate::recovery::Recovered;
use crate::segment::{self, create_segment, list_segments, preallocate, shard_dir, sync_dir, CreateError};
use hdrhistogram::Histogram;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// When a commit is durable.
///
/// `Sync` and `Batch` behave identically here: each `commit` ends with an `fdatasync`. The difference
/// is in the caller, which decides when to acknowledge: with `Sync` it commits after every record
/// and acknowledges each one after its own commit; with `Batch` it appends a group of records (group
/// commit), commits once and acknowledges the whole group after that commit. `Batch` trades a little
/// latency for far fewer syncs. With `None` the writer never syncs records: a process crash loses
/// nothing (the data is in the page cache), a power loss or kernel crash loses an unknown suffix. It is
/// for backtests, tests and benchmarks. New segments are always fsynced when created (it is rare and
/// keeps the directory consistent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    Sync,
    Batch,
    None,
}

/// Writer settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalConfig {
    /// Size new segments are preallocated to; a multiple of 8 between 128 bytes and 4 GiB.
    pub segment_size_bytes: u64,
    /// Size of the batch buffer. A batch larger than it is written in several `pwrite`s (still one
    /// sync); a single record larger than it is written straight from the caller's slice.
    pub buffer_bytes: usize,
    pub durability: Durability,
}

impl Default for JournalConfig {
    fn default() -> JournalConfig {
        JournalConfig { segment_size_bytes: DEFAULT_SEGMENT_BYTES, buffer_bytes: 1 << 20, durability: Durability::Sync }
    }
}

impl JournalConfig {
    fn validate(&self) -> Result<(), WriteError> {
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&self.segment_size_bytes) {
            return Err(WriteError::InvalidConfig("segment_size_bytes must be between 128 bytes and 4 GiB"));
        }
        if self.segment_size_bytes % FRAME_ALIGN_BYTES as u64 != 0 {
            return Err(WriteError::InvalidConfig("segment_size_bytes must be a multiple of 8"));
        }
        if self.buffer_bytes < 4096 {
            return Err(WriteError::InvalidConfig("buffer_bytes must be at least 4096"));
        }
        Ok(())
    }
}

/// Longest sync latency recorded exactly: one minute.
const SYNC_NS_MAX: u64 = 60_000_000_000;

/// Counters since the writer was opened.
#[derive(Clone, Debug)]
pub struct WriterStats {
    /// Records appended.
    pub records: u64,
    /// Frame bytes appended (headers and padding included).
    pub bytes: u64,
    /// Commits that had at least one record.
    pub batches: u64,
    /// `fdatasync` calls on segments.
    pub syncs: u64,
    /// Segments created (the first one included).
    pub segments_created: u64,
    /// Latency of each `fdatasync`, in nanoseconds.
    pub sync_latency_ns: Histogram<u64>,
}

impl WriterStats {
    fn new() -> WriterStats {
        WriterStats {
            records: 0,
            bytes: 0,
            batches: 0,
            syncs: 0,
            segments_created: 0,
            sync_latency_ns: Histogram::new_with_bounds(1, SYNC_NS_MAX, 3).expect("valid histogram bounds"),
        }
    }
}

fn fdatasync(file: &File) -> io::Result<()> {
    file.sync_data()
}

/// Appends records to one shard's journal. See the module documentation for the durability contract.
pub struct JournalWriter {
    dir: PathBuf,
    shard: u32,
    epoch: u64,
    config: JournalConfig,
    file: File,
    segment_path: PathBuf,
    capacity_bytes: u64,
    /// Where `buffer[0]` goes in the current segment.
    write_offset_bytes: u64,
    buffer: Vec<u8>,
    next_seq: u64,
    /// Bytes were written to the current segment since its last sync.
    unsynced: bool,
    batch_records: u64,
    poisoned: bool,
    sync: fn(&File) -> io::Result<()>,
    stats: WriterStats,
}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalWriter")
            .field("segment_path", &self.segment_path)
            .field("write_offset_bytes", &self.write_offset_bytes)
            .field("buffered_bytes", &self.buffer.len())
            .field("next_seq", &self.next_seq)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl JournalWriter {
    /// Creates a new journal for `shard` in `<root>/shard-<shard>`, whose first record will be
    /// sequence 1. Fails if the directory already holds segments.
    pub fn create(root: &Path, shard: u32, epoch: u64, config: JournalConfig) -> Result<JournalWriter, WriteError> {
        JournalWriter::create_from(root, shard, epoch, 1, config)
    }

    /// Like [`JournalWriter::create`], for a journal whose first record is `first_seq` (one that
    /// continues from a snapshot).
    pub fn create_from(
        root: &Path,
        shard: u32,
        epoch: u64,
        first_seq: u64,
        config: JournalConfig,
    ) -> Result<JournalWriter, WriteError> {
        config.validate()?;
        let dir = shard_dir(root, shard);
        fs::create_dir_all(&dir).map_err(|e| IoError::new("create directory", &dir, e))?;
        sync_dir(root)?;
        let (segments, temporaries) = list_segments(&dir)?;
        if !segments.is_empty() || !temporaries.is_empty() {
            return Err(WriteError::AlreadyExists(dir));
        }
        let header = new_header(shard, epoch, first_seq, &config);
        let (file, segment_path) = create_segment(&dir, &header).map_err(create_error)?;
        let mut writer = JournalWriter::new(
            dir,
            shard,
            epoch,
            config,
            file,
            segment_path,
            &header,
            SEGMENT_HEADER_LEN as u64,
            first_seq,
        );
        writer.stats.segments_created = 1;
        Ok(writer)
    }

    /// Opens the journal that [`crate::recover`] returned for appending after its last valid record.
    /// If recovery left no segment (an empty journal, or one cut before its first segment) a new
    /// segment is created at the next sequence.
    pub fn open_for_append(recovered: &Recovered, config: JournalConfig) -> Result<JournalWriter, WriteError> {
        config.validate()?;
        let cannot = |reason: &str| WriteError::CannotAppend(reason.to_owned());
        let epoch = recovered.epoch.ok_or_else(|| cannot("the journal's epoch is unknown"))?;
        let next_seq = recovered.next_seq().ok_or_else(|| cannot("the journal's next sequence is unknown"))?;
        if recovered.report.problem.is_some() && recovered.corruption.is_none() {
            return Err(cannot("the journal is corrupt"));
        }
        let dir = shard_dir(&recovered.root, recovered.shard);
        let (segments, _) = list_segments(&dir)?;
        let Some(tail) = &recovered.tail else {
            if !segments.is_empty() {
                return Err(cannot("segments exist but recovery found no valid one"));
            }
            let header = new_header(recovered.shard, epoch, next_seq, &config);
            fs::create_dir_all(&dir).map_err(|e| IoError::new("create directory", &dir, e))?;
            let (file, path) = create_segment(&dir, &header).map_err(create_error)?;
            let mut writer = JournalWriter::new(
                dir,
                recovered.shard,
                epoch,
                config,
                file,
                path,
                &header,
                SEGMENT_HEADER_LEN as u64,
                next_seq,
            );
            writer.stats.segments_created = 1;
            return Ok(writer);
        };
        if segments.last().map(|segment| &segment.path) != Some(&tail.segment_path) {
            return Err(cannot("the segments changed since recovery"));
        }
        let path = &tail.segment_path;
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| IoError::new("open", path, e))?;
        let mut header_bytes = [0u8; SEGMENT_HEADER_LEN];
        file.read_exact_at(&mut header_bytes, 0).map_err(|e| IoError::new("read header", path, e))?;
        if SegmentHeader::decode(&header_bytes) != Ok(tail.header) {
            return Err(cannot("the tail segment's header changed since recovery"));
        }
        let len = file.metadata().map_err(|e| IoError::new("stat", path, e))?.len();
        let mut next = [0u8; FRAME_HEADER_LEN];
        let readable = usize::try_from(len.saturating_sub(tail.offset_bytes)).unwrap_or(usize::MAX).min(next.len());
        file.read_exact_at(&mut next[..readable], tail.offset_bytes).map_err(|e| IoError::new("read", path, e))?;
        if !segment::is_all_zero(&next) {
            return Err(cannot("data was written after the recovered tail"));
        }
        if len < tail.header.capacity_bytes {
            preallocate(&file, tail.header.capacity_bytes).map_err(|e| IoError::new("preallocate", path, e))?;
        }
        Ok(JournalWriter::new(
            dir,
            recovered.shard,
            epoch,
            config,
            file,
            path.clone(),
            &tail.header,
            tail.offset_bytes,
            next_seq,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        dir: PathBuf,
        shard: u32,
        epoch: u64,
        config: JournalConfig,
        file: File,
        segment_path: PathBuf,
        header: &SegmentHeader,
        write_offset_bytes: u64,
        next_seq: u64,
    ) -> JournalWriter {
        let buffer = Vec::with_capacity(config.buffer_bytes);
        JournalWriter {
            dir,
            shard,
            epoch,
            config,
            file,
            segment_path,
            capacity_bytes: header.capacity_bytes,
            write_offset_bytes,
            buffer,
            next_seq,
            unsynced: false,
            batch_records: 0,
            poisoned: false,
            sync: fdatasync,
            stats: WriterStats::new(),
        }
    }

    /// Buffers one record. `seq` must be exactly the previous record's plus one (asserted: the
    /// sequence is the caller's invariant). The record is durable only after the next
    /// [`JournalWriter::commit`] returns `Ok`. May write earlier records of the batch, or roll to a
    /// new segment, when the buffer or the segment is full.
    pub fn append(&mut self, record_type: u16, seq: u64, timestamp_ns: i64, payload: &[u8]) -> Result<(), WriteError> {
        self.check_poisoned()?;
        assert_eq!(seq, self.next_seq, "journal sequence must be the previous one plus one");
        if payload.is_empty() {
            return Err(WriteError::EmptyPayload);
        }
        let max_payload = max_payload_bytes(self.config.segment_size_bytes);
        if payload.len() as u64 > max_payload {
            return Err(WriteError::RecordTooLarge {
                payload_len_bytes: payload.len(),
                max_payload_bytes: max_payload,
            });
        }
        let payload_len = payload.len() as u32;
        let frame_len = frame_len_bytes(u64::from(payload_len));
        if self.write_offset_bytes + self.buffer.len() as u64 + frame_len > self.capacity_bytes {
            self.roll(seq)?;
        }
        let header = FrameHeader::encode_unsealed(payload_len, record_type, seq, timestamp_ns);
        // `frame_len` is at most a segment (4 GiB), which fits in usize on the 64-bit hosts we run on.
        let frame_len = frame_len as usize;
        if frame_len > self.buffer.capacity() - self.buffer.len() {
            self.flush()?;
        }
        if frame_len <= self.buffer.capacity() {
            let start = self.buffer.len();
            self.buffer.extend_from_slice(&header);
            self.buffer.extend_from_slice(payload);
            self.buffer.resize(start + frame_len, 0);
            // The checksum field is still zero, so the CRC of the frame is its checksum.
            let crc = crc32c::crc32c(&self.buffer[start..]);
            self.buffer[start + FRAME_CRC_OFFSET..start + FRAME_CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
        } else {
            self.write_large(header, payload, frame_len)?;
        }
        self.next_seq += 1;
        self.batch_records += 1;
        self.stats.records += 1;
        self.stats.bytes += frame_len as u64;
        Ok(())
    }

    /// Writes the buffered records and, unless durability is `None`, `fdatasync`s them. When it returns
    /// `Ok`, every record appended so far is durable (per the durability policy) and may be
    /// acknowledged. A [`WriteError::SyncFailed`] is fatal: see the module documentation.
    pub fn commit(&mut self) -> Result<(), WriteError> {
        self.check_poisoned()?;
        if self.batch_records == 0 {
            return Ok(());
        }
        self.flush()?;
        if self.config.durability != Durability::None {
            self.sync_segment()?;
        }
        self.stats.batches += 1;
        self.batch_records = 0;
        Ok(())
    }

    /// The sequence the next appended record must have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Records appended since the last commit.
    pub fn pending_records(&self) -> u64 {
        self.batch_records
    }

    pub fn shard(&self) -> u32 {
        self.shard
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn durability(&self) -> Durability {
        self.config.durability
    }

    /// The segment records are currently appended to.
    pub fn segment_path(&self) -> &Path {
        &self.segment_path
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    fn check_poisoned(&self) -> Result<(), WriteError> {
        if self.poisoned {
            Err(WriteError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn io_failure(&mut self, op: &'static str, source: io::Error) -> WriteError {
        self.poisoned = true;
        WriteError::Io(IoError::new(op, &self.segment_path, source))
    }

    /// Writes the buffer to the current segment, without syncing.
    fn flush(&mut self) -> Result<(), WriteError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all_at(&self.buffer, self.write_offset_bytes) {
            return Err(self.io_failure("write", e));
        }
        self.write_offset_bytes += self.buffer.len() as u64;
        self.buffer.clear();
        self.unsynced = true;
        Ok(())
    }

    /// Writes a frame larger than the buffer straight to the segment (the buffer is empty).
    fn write_large(
        &mut self,
        mut header: [u8; FRAME_HEADER_LEN],
        payload: &[u8],
        frame_len: usize,
    ) -> Result<(), WriteError> {
        debug_assert!(self.buffer.is_empty());
        let padding = [0u8; FRAME_ALIGN_BYTES];
        let padding = &padding[..frame_len - FRAME_HEADER_LEN - payload.len()];
        let crc = crc32c::crc32c_append(crc32c::crc32c_append(crc32c::crc32c(&header), payload), padding);
        header[FRAME_CRC_OFFSET..FRAME_CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
        let offset = self.write_offset_bytes;
        let result = self
            .file
            .write_all_at(&header, offset)
            .and_then(|()| self.file.write_all_at(payload, offset + FRAME_HEADER_LEN as u64))
            .and_then(|()| self.file.write_all_at(padding, offset + (FRAME_HEADER_LEN + payload.len()) as u64));
        if let Err(e) = result {
            return Err(self.io_failure("write", e));
        }
        self.write_offset_bytes += frame_len as u64;
        self.unsynced = true;
        Ok(())
    }

    fn sync_segment(&mut self) -> Result<(), WriteError> {
        if !self.unsynced {
            return Ok(());
        }
        let started = Instant::now();
        if let Err(e) = (self.sync)(&self.file) {
            self.poisoned = true;
            return Err(WriteError::SyncFailed(IoError::new("fdatasync", &self.segment_path, e)));
        }
        self.stats.sync_latency_ns.saturating_record(started.elapsed().as_nanos().try_into().unwrap_or(u64::MAX));
        self.stats.syncs += 1;
        self.unsynced = false;
        Ok(())
    }

    /// Finishes the current segment (written and, unless durability is `None`, synced, so that only
    /// the last segment can ever have a torn tail) and starts a new one whose first record is `first_seq`.
    fn roll(&mut self, first_seq: u64) -> Result<(), WriteError> {
        self.flush()?;
        if self.config.durability != Durability::None {
            self.sync_segment()?;
        }
        let header = new_header(self.shard, self.epoch, first_seq, &self.config);
        let (file, path) = match create_segment(&self.dir, &header) {
            Ok(created) => created,
            Err(CreateError::Io(e)) => return Err(WriteError::Io(e)),
            Err(CreateError::Sync(e)) => {
                self.poisoned = true;
                return Err(WriteError::SyncFailed(e));
            }
        };
        self.file = file;
        self.segment_path = path;
        self.capacity_bytes = header.capacity_bytes;
        self.write_offset_bytes = SEGMENT_HEADER_LEN as u64;
        self.unsynced = false;
        self.stats.segments_created += 1;
        Ok(())
    }
}

fn new_header(shard: u32, epoch: u64, first_seq: u64, config: &JournalConfig) -> SegmentHeader {
    SegmentHeader { shard, epoch, first_seq, created_ns: segment::now_ns(), capacity_bytes: config.segment_size_bytes }
}

fn create_error(error: CreateError) -> WriteError {
    match error {
        CreateError::Io(e) => WriteError::Io(e),
        CreateError::Sync(e) => WriteError::SyncFailed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing_sync(_: &File) -> io::Result<()> {
        Err(io::Error::from_raw_os_error(libc::EIO))
    }

    fn config(durability: Durability) -> JournalConfig {
        JournalConfig { segment_size_bytes: 4096, buffer_bytes: 4096, durability }
    }

    #[test]
    fn a_failed_sync_poisons_the_writer_for_good() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = JournalWriter::create(dir.path(), 0, 1, config(Durability::Sync)).expect("create");
        writer.append(1, 1, 10, b"first").expect("append");
        writer.commit().expect("commit");
        writer.sync = failing_sync;
        writer.append(1, 2, 11, b"second").expect("append");
        let error = writer.commit().expect_err("sync fails");
        assert!(matches!(&error, WriteError::SyncFailed(e) if e.source.raw_os_error() == Some(libc::EIO)), "{error}");
        assert!(writer.is_poisoned());
        // Never retried, even once syncing would work again.
        writer.sync = fdatasync;
        assert!(matches!(writer.commit(), Err(WriteError::Poisoned)));
        assert!(matches!(writer.append(1, 3, 12, b"third"), Err(WriteError::Poisoned)));
        assert_eq!(writer.stats().syncs, 1);
    }

    #[test]
    fn a_failed_sync_while_rolling_poisons_the_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = JournalWriter::create(dir.path(), 0, 1, config(Durability::Batch)).expect("create");
        writer.sync = failing_sync;
        let payload = [7u8; 1000];
        let mut result = Ok(());
        for seq in 1..=8 {
            result = writer.append(1, seq, 0, &payload);
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(WriteError::SyncFailed(_))));
        assert!(matches!(writer.append(1, writer.next_seq(), 0, &payload), Err(WriteError::Poisoned)));
    }

    #[test]
    fn durability_none_never_syncs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = JournalWriter::create(dir.path(), 0, 1, config(Durability::None)).expect("create");
        writer.sync = failing_sync;
        for seq in 1..=100 {
            writer.append(1, seq, 0, &[1u8; 100]).expect("append");
            writer.commit().expect("commit never syncs");
        }
        assert_eq!(writer.stats().syncs, 0);
        assert_eq!(writer.stats().batches, 100);
        assert!(writer.stats().segments_created > 1);
    }
}
