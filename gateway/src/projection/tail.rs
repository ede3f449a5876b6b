//! Following one shard's live journal from a given sequence, without disturbing the writer.
//!
//! `simex_journal::JournalReader` reads whole segments and treats anything unfinished as damage,
//! which is right for recovery but not for a segment that is still being written. The tail keeps
//! the active segment open and reads only the bytes after its position, in chunks, checking each
//! frame with the journal's own `segment::step`. What a reader can meet in a live journal, and
//! what the tail does with it:
//!
//! - **A zero length at the position**: nothing more has been written yet. Wait.
//! - **A frame that does not verify yet** (its bytes are being written): wait and read it again. If
//!   it still does not verify after [`UNFINISHED_POLLS_MAX`] polls, or a newer segment exists, it is
//!   reported as corruption and the tail stays where it is (it never skips a record).
//! - **The end of a segment**: the writer moves to a new segment (named by its first sequence)
//!   when the next frame does not fit, so the tail moves on when that segment appears.
//! - **The journal pruned behind it**: the segment holding the next sequence is gone. Reported as
//!   [`TailError::Pruned`]; the records cannot be had any more.

use simex_journal::format::{frame_len_bytes, FrameHeader, SegmentHeader, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
use simex_journal::segment::{list_segments, shard_dir, step, SegmentFile, Step, FIRST_FRAME_OFFSET};
use simex_journal::ProblemKind;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes read from the segment at a time (more when one frame is larger).
const CHUNK_BYTES: usize = 256 << 10;
/// Polls a frame may stay unverifiable at the end of the active segment before it is reported.
pub const UNFINISHED_POLLS_MAX: u32 = 200;

/// What stops a tail. It keeps its position: after the cause is mended, polling goes on from there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TailError {
    #[error("shard {shard}: record {next_seq} was pruned from the journal, which now starts at {first_available}")]
    Pruned { shard: u32, next_seq: u64, first_available: u64 },
    #[error("shard {shard}: journal epoch is {found}, the projection follows epoch {expected}")]
    Epoch { shard: u32, expected: u64, found: u64 },
    #[error("shard {shard}: {path}: {message}")]
    Io { shard: u32, path: PathBuf, message: String },
    #[error("shard {shard}: {path} at offset {offset_bytes}, record {seq}: {kind:?}")]
    Corrupt { shard: u32, path: PathBuf, offset_bytes: u64, seq: u64, kind: ProblemKind },
}

/// One record read from the journal, its payload copied out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailRecord {
    pub seq: u64,
    pub record_type: u16,
    pub timestamp_ns: i64,
    pub payload: Vec<u8>,
}

struct OpenSegment {
    path: PathBuf,
    file: File,
    header: SegmentHeader,
    /// File offset of the next frame.
    offset_bytes: u64,
}

/// The reading position in one shard's journal.
pub struct ShardTail {
    root: PathBuf,
    shard: u32,
    epoch: Option<u64>,
    next_seq: u64,
    segment: Option<OpenSegment>,
    chunk: Vec<u8>,
    unfinished_polls: u32,
    last_timestamp_ns: Option<i64>,
    /// Records below this sequence are read (to find the position) but not returned.
    skip_below: u64,
}

impl ShardTail {
    /// A tail whose first record will be `next_seq`. With `epoch: None` the journal's epoch is
    /// learned from the first segment opened and held to from then on.
    pub fn new(root: &Path, shard: u32, epoch: Option<u64>, next_seq: u64) -> ShardTail {
        ShardTail {
            root: root.to_path_buf(),
            shard,
            epoch,
            next_seq,
            segment: None,
            chunk: Vec::new(),
            unfinished_polls: 0,
            last_timestamp_ns: None,
            skip_below: next_seq,
        }
    }

    pub fn shard(&self) -> u32 {
        self.shard
    }

    /// The sequence of the next record this tail will return.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.max(self.skip_below)
    }

    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// Timestamp of the last record read.
    pub fn last_timestamp_ns(&self) -> Option<i64> {
        self.last_timestamp_ns
    }

    /// Appends up to `records_max` records that follow the position to `out`, and returns how many.
    /// Returns 0 when there is nothing new yet.
    pub fn poll(&mut self, records_max: usize, out: &mut Vec<TailRecord>) -> Result<usize, TailError> {
        self.read(records_max, &mut |record| out.push(record))
    }

    /// Moves over everything written so far without keeping it; returns how many records it passed.
    pub fn skip_to_end(&mut self) -> Result<u64, TailError> {
        let mut passed = 0u64;
        loop {
            let read = self.read(usize::MAX, &mut |_| passed += 1)?;
            if read == 0 {
                return Ok(passed);
            }
        }
    }

    fn read(&mut self, records_max: usize, emit: &mut dyn FnMut(TailRecord)) -> Result<usize, TailError> {
        let mut count = 0usize;
        while count < records_max {
            if self.segment.is_none() && !self.open_segment()? {
                break;
            }
            let before = self.next_seq;
            count += self.read_chunk(records_max - count, emit)?;
            if self.next_seq == before && !self.advance_segment()? {
                break;
            }
        }
        Ok(count)
    }

    fn segments(&self) -> Result<Vec<SegmentFile>, TailError> {
        let dir = shard_dir(&self.root, self.shard);
        match list_segments(&dir) {
            Ok((segments, _)) => Ok(segments),
            // A shard whose journal does not exist yet has nothing to read.
            Err(_) if !dir.exists() => Ok(Vec::new()),
            Err(e) => Err(TailError::Io { shard: self.shard, path: dir, message: e.to_string() }),
        }
    }

    /// Opens the segment holding `next_seq`, positioned on it. `Ok(false)` if there is none yet.
    fn open_segment(&mut self) -> Result<bool, TailError> {
        let segments = self.segments()?;
        let Some(first) = segments.first() else { return Ok(false) };
        if first.first_seq > self.next_seq {
            return Err(TailError::Pruned {
                shard: self.shard,
                next_seq: self.next_seq,
                first_available: first.first_seq,
            });
        }
        let holder = segments.iter().rev().find(|s| s.first_seq <= self.next_seq).expect("the first one qualifies");
        let segment = self.open_file(&holder.path)?;
        // Read from the segment's first record; those before `skip_below` are passed over.
        self.skip_below = self.skip_below.max(self.next_seq);
        self.next_seq = segment.header.first_seq;
        self.segment = Some(segment);
        Ok(true)
    }

    fn open_file(&mut self, path: &Path) -> Result<OpenSegment, TailError> {
        let io =
            |e: std::io::Error| TailError::Io { shard: self.shard, path: path.to_path_buf(), message: e.to_string() };
        let file = File::open(path).map_err(io)?;
        let mut bytes = [0u8; SEGMENT_HEADER_LEN];
        file.read_exact_at(&mut bytes, 0).map_err(io)?;
        let header = SegmentHeader::decode(&bytes).map_err(|fault| TailError::Io {
            shard: self.shard,
            path: path.to_path_buf(),
            message: format!("bad segment header: {fault:?}"),
        })?;
        if header.shard != self.shard {
            return Err(TailError::Io {
                shard: self.shard,
                path: path.to_path_buf(),
                message: format!("segment belongs to shard {}", header.shard),
            });
        }
        match self.epoch {
            Some(expected) if expected != header.epoch => {
                return Err(TailError::Epoch { shard: self.shard, expected, found: header.epoch });
            }
            Some(_) => {}
            None => self.epoch = Some(header.epoch),
        }
        Ok(OpenSegment { path: path.to_path_buf(), file, header, offset_bytes: FIRST_FRAME_OFFSET as u64 })
    }

    fn read_at(&self, segment: &OpenSegment, offset: u64, bytes: &mut [u8]) -> Result<(), TailError> {
        segment.file.read_exact_at(bytes, offset).map_err(|e| TailError::Io {
            shard: self.shard,
            path: segment.path.clone(),
            message: e.to_string(),
        })
    }

    /// Loads at least `bytes_min` bytes (and up to a chunk) from `offset` into the chunk buffer.
    fn load_chunk(&mut self, segment: &OpenSegment, offset: u64, bytes_min: u64) -> Result<(), TailError> {
        let left = segment.header.capacity_bytes.saturating_sub(offset);
        let len = (CHUNK_BYTES as u64).max(bytes_min).min(left) as usize;
        self.chunk.resize(len, 0);
        let mut chunk = std::mem::take(&mut self.chunk);
        let result = self.read_at(segment, offset, &mut chunk);
        self.chunk = chunk;
        result
    }

    /// Reads the records in one chunk from the position on.
    fn read_chunk(&mut self, records_max: usize, emit: &mut dyn FnMut(TailRecord)) -> Result<usize, TailError> {
        let segment = self.segment.take().expect("a segment is open");
        let result = self.read_chunk_of(&segment, records_max, emit);
        self.segment = Some(segment);
        let (count, new_offset) = result?;
        if let Some(segment) = &mut self.segment {
            segment.offset_bytes = new_offset;
        }
        Ok(count)
    }

    fn read_chunk_of(
        &mut self,
        segment: &OpenSegment,
        records_max: usize,
        emit: &mut dyn FnMut(TailRecord),
    ) -> Result<(usize, u64), TailError> {
        let base = segment.offset_bytes;
        let capacity = segment.header.capacity_bytes;
        if base + FRAME_HEADER_LEN as u64 > capacity {
            return Ok((0, base));
        }
        // Most polls find nothing new: look at the next frame's header before reading a chunk.
        let mut header = [0u8; FRAME_HEADER_LEN];
        self.read_at(segment, base, &mut header)?;
        if FrameHeader::decode(&header).is_none_or(|h| h.payload_len_bytes == 0) {
            return Ok((0, base));
        }
        self.load_chunk(segment, base, FRAME_HEADER_LEN as u64)?;
        let mut local = 0usize;
        let mut count = 0usize;
        while count < records_max {
            let Some(header) = self.chunk.get(local..).and_then(FrameHeader::decode) else {
                if local == 0 {
                    break;
                }
                // The next frame header starts in the next chunk.
                return Ok((count, base + local as u64));
            };
            if header.payload_len_bytes == 0 {
                break;
            }
            let frame_len = frame_len_bytes(u64::from(header.payload_len_bytes));
            if local as u64 + frame_len > self.chunk.len() as u64 && (base + local as u64 + frame_len) <= capacity {
                if local == 0 {
                    // A frame larger than a chunk: read it whole.
                    self.load_chunk(segment, base, frame_len)?;
                    continue;
                }
                return Ok((count, base + local as u64));
            }
            match step(&self.chunk, local, self.next_seq, capacity - base) {
                Step::Record { header, payload, next_offset } => {
                    self.unfinished_polls = 0;
                    self.next_seq += 1;
                    local = next_offset;
                    if header.seq < self.skip_below {
                        continue;
                    }
                    self.last_timestamp_ns = Some(header.timestamp_ns);
                    emit(TailRecord {
                        seq: header.seq,
                        record_type: header.record_type,
                        timestamp_ns: header.timestamp_ns,
                        payload: self.chunk[payload].to_vec(),
                    });
                    count += 1;
                }
                Step::End => break,
                Step::Bad(kind) => {
                    let at = OpenSegment {
                        path: segment.path.clone(),
                        file: segment.file.try_clone().map_err(|e| TailError::Io {
                            shard: self.shard,
                            path: segment.path.clone(),
                            message: e.to_string(),
                        })?,
                        header: segment.header,
                        offset_bytes: base + local as u64,
                    };
                    self.unfinished(&at, self.next_seq, kind)?;
                    break;
                }
            }
        }
        Ok((count, base + local as u64))
    }

    /// A frame that does not verify where the writer is still writing: wait for it, unless it has
    /// stayed bad too long or the journal has already moved on to a newer segment.
    fn unfinished(&mut self, segment: &OpenSegment, seq: u64, kind: ProblemKind) -> Result<(), TailError> {
        self.unfinished_polls += 1;
        let moved_on = self.segments()?.iter().any(|s| s.first_seq > segment.header.first_seq);
        if !kind.can_be_torn_write() || moved_on || self.unfinished_polls > UNFINISHED_POLLS_MAX {
            return Err(TailError::Corrupt {
                shard: self.shard,
                path: segment.path.clone(),
                offset_bytes: segment.offset_bytes,
                seq,
                kind,
            });
        }
        Ok(())
    }

    /// At the end of the data in the current segment: moves to the next segment if the journal has
    /// one starting at `next_seq`. Returns whether it moved.
    fn advance_segment(&mut self) -> Result<bool, TailError> {
        let Some(current) = &self.segment else { return Ok(false) };
        let current_first = current.header.first_seq;
        let segments = self.segments()?;
        let Some(next) = segments.iter().find(|s| s.first_seq > current_first) else { return Ok(false) };
        if next.first_seq != self.next_seq {
            // The writer syncs a segment before starting the next, so a newer segment that does not
            // continue where this one ends means this one is damaged (or its rest is unreadable).
            return Err(TailError::Corrupt {
                shard: self.shard,
                path: current.path.clone(),
                offset_bytes: current.offset_bytes,
                seq: self.next_seq,
                kind: ProblemKind::MissingSegment { expected_seq: self.next_seq, found_seq: next.first_seq },
            });
        }
        let path = next.path.clone();
        let segment = self.open_file(&path)?;
        self.segment = Some(segment);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simex_journal::{Durability, JournalConfig, JournalWriter};

    const EPOCH: u64 = 5;

    fn journal(name: &str) -> (PathBuf, JournalWriter) {
        let root = std::env::temp_dir().join(format!("simex-tail-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let config =
            JournalConfig { segment_size_bytes: 512, durability: Durability::None, ..JournalConfig::default() };
        let writer = JournalWriter::create(&root, 0, EPOCH, config).unwrap();
        (root, writer)
    }

    fn append(writer: &mut JournalWriter, count: u64) {
        for _ in 0..count {
            let seq = writer.next_seq();
            writer.append(1, seq, seq as i64 * 10, &seq.to_le_bytes()).unwrap();
        }
        writer.commit().unwrap();
    }

    fn seqs(records: &[TailRecord]) -> Vec<u64> {
        records.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn follows_appends_across_segment_rolls() {
        let (root, mut writer) = journal("rolls");
        let mut tail = ShardTail::new(&root, 0, None, 1);
        let mut out = Vec::new();
        assert_eq!(tail.poll(100, &mut out).unwrap(), 0, "an empty journal has nothing yet");
        append(&mut writer, 3);
        assert_eq!(tail.poll(100, &mut out).unwrap(), 3);
        assert_eq!(tail.poll(100, &mut out).unwrap(), 0);
        append(&mut writer, 40);
        assert!(list_segments(&shard_dir(&root, 0)).unwrap().0.len() > 2, "the writer rolled segments");
        while tail.poll(7, &mut out).unwrap() > 0 {}
        assert_eq!(seqs(&out), (1..=43).collect::<Vec<_>>());
        assert_eq!(out[5].payload, 6u64.to_le_bytes());
        assert_eq!(out[5].timestamp_ns, 60);
        assert_eq!((tail.next_seq(), tail.epoch()), (44, Some(EPOCH)));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn starts_at_the_given_sequence_and_counts_to_the_end() {
        let (root, mut writer) = journal("middle");
        append(&mut writer, 30);
        let mut out = Vec::new();
        let mut tail = ShardTail::new(&root, 0, Some(EPOCH), 17);
        tail.poll(100, &mut out).unwrap();
        assert_eq!(seqs(&out), (17..=30).collect::<Vec<_>>());
        let mut head = ShardTail::new(&root, 0, Some(EPOCH), 1);
        assert_eq!(head.skip_to_end().unwrap(), 30);
        assert_eq!(head.last_timestamp_ns(), Some(300));
        let mut other_epoch = ShardTail::new(&root, 0, Some(EPOCH + 1), 1);
        assert_eq!(other_epoch.poll(1, &mut out), Err(TailError::Epoch { shard: 0, expected: 6, found: EPOCH }));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn waits_for_a_frame_that_is_still_being_written() {
        let (root, mut writer) = journal("partial");
        append(&mut writer, 2);
        let mut out = Vec::new();
        let mut tail = ShardTail::new(&root, 0, None, 1);
        assert_eq!(tail.poll(100, &mut out).unwrap(), 2);
        // Half a frame where the next one goes: a length, but no checksum that verifies yet.
        let (segments, _) = list_segments(&shard_dir(&root, 0)).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&segments[0].path).unwrap();
        let next_frame = FIRST_FRAME_OFFSET as u64 + 2 * frame_len_bytes(8);
        file.write_all_at(&8u32.to_le_bytes(), next_frame).unwrap();
        for _ in 0..10 {
            assert_eq!(tail.poll(100, &mut out).unwrap(), 0, "an unfinished frame is waited for");
        }
        append(&mut writer, 1); // the writer completes the frame
        assert_eq!(tail.poll(100, &mut out).unwrap(), 1);
        assert_eq!(seqs(&out), vec![1, 2, 3]);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_frame_that_never_verifies_is_reported_not_skipped() {
        let (root, mut writer) = journal("stuck");
        append(&mut writer, 2);
        let (segments, _) = list_segments(&shard_dir(&root, 0)).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&segments[0].path).unwrap();
        file.write_all_at(&[0xFF], FIRST_FRAME_OFFSET as u64 + 32).unwrap(); // a flipped payload byte
        let mut out = Vec::new();
        let mut tail = ShardTail::new(&root, 0, None, 1);
        let mut outcome = Ok(0);
        for _ in 0..=UNFINISHED_POLLS_MAX {
            outcome = tail.poll(100, &mut out);
            if outcome.is_err() {
                break;
            }
        }
        assert!(matches!(outcome, Err(TailError::Corrupt { seq: 1, .. })), "{outcome:?}");
        assert!(out.is_empty());
        assert_eq!(tail.next_seq(), 1, "the tail stays at the bad record");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_journal_pruned_behind_the_tail_is_reported() {
        let (root, mut writer) = journal("pruned");
        append(&mut writer, 40);
        let (segments, _) = list_segments(&shard_dir(&root, 0)).unwrap();
        std::fs::remove_file(&segments[0].path).unwrap();
        let mut tail = ShardTail::new(&root, 0, None, 1);
        let error = tail.poll(100, &mut Vec::new()).unwrap_err();
        assert_eq!(error, TailError::Pruned { shard: 0, next_seq: 1, first_available: segments[1].first_seq });
        assert!(error.to_string().contains("pruned"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
