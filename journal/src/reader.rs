//! Reading a shard's journal in order, checking everything on the way.
//!
//! The reader loads one segment file at a time into a buffer it reuses, checks its header (magic,
//! version, checksum, shard, epoch, name, continuity with the previous segment) and hands out records
//! that borrow their payload from that buffer: no copy, no allocation per record. Every record it
//! returns has a verified checksum and exactly the sequence after the previous one; at the first
//! thing that is not so it stops with an error that says where and what. Whether damage is a torn
//! tail or corruption is decided here too, because it needs to know what comes after.

use crate::error::{IoError, Problem, ProblemKind, ReadError, TornTail};
use crate::format::{SegmentHeader, SEGMENT_HEADER_LEN};
use crate::segment::{self, list_segments, shard_dir, SegmentFile, Step, FIRST_FRAME_OFFSET};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One record, borrowed from the reader's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub seq: u64,
    pub record_type: u16,
    pub timestamp_ns: i64,
    /// Offset of the record's frame in its segment file.
    pub offset_bytes: u64,
    pub payload: &'a [u8],
}

/// Where the valid part of the journal ends: appending continues here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TailPosition {
    pub segment_path: PathBuf,
    pub header: SegmentHeader,
    /// Offset just after the last valid frame of the segment.
    pub offset_bytes: u64,
}

#[derive(Debug)]
struct Current {
    index: usize,
    header: SegmentHeader,
    offset: usize,
}

/// How the reader stopped, kept so that calls after the end repeat it.
#[derive(Debug)]
enum Finished {
    Clean,
    Failed(ReadError),
}

impl Finished {
    fn repeat(&self) -> Result<Option<Record<'static>>, ReadError> {
        match self {
            Finished::Clean => Ok(None),
            Finished::Failed(ReadError::Io(e)) => Err(ReadError::Io(e.duplicate())),
            Finished::Failed(ReadError::Corrupt(p)) => Err(ReadError::Corrupt(p.clone())),
            Finished::Failed(ReadError::TornTail(t)) => Err(ReadError::TornTail(t.clone())),
            Finished::Failed(ReadError::SeqNotAvailable { requested, first_available }) => {
                Err(ReadError::SeqNotAvailable { requested: *requested, first_available: *first_available })
            }
        }
    }
}

/// Iterates the records of one shard's journal in sequence order.
///
/// ```no_run
/// # fn main() -> Result<(), simex_journal::ReadError> {
/// let mut reader = simex_journal::JournalReader::open("/var/lib/simex".as_ref(), 0, Some(7))?;
/// while let Some(record) = reader.next_record()? {
///     println!("{} {} bytes", record.seq, record.payload.len());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct JournalReader {
    shard: u32,
    epoch: Option<u64>,
    from_seq: Option<u64>,
    segments: Vec<SegmentFile>,
    next_index: usize,
    current: Option<Current>,
    buffer: Vec<u8>,
    expected_seq: Option<u64>,
    tail: Option<TailPosition>,
    finished: Option<Finished>,
}

impl JournalReader {
    /// A reader over every record of `<root>/shard-<shard>`. With `epoch: None` the epoch of the first
    /// segment is taken as the journal's; callers that know the epoch should pass it, so that a stale
    /// first segment is caught too.
    pub fn open(root: &Path, shard: u32, epoch: Option<u64>) -> Result<JournalReader, ReadError> {
        let dir = shard_dir(root, shard);
        let (segments, _temporaries) = list_segments(&dir)?;
        Ok(JournalReader {
            shard,
            epoch,
            from_seq: None,
            segments,
            next_index: 0,
            current: None,
            buffer: Vec::new(),
            expected_seq: None,
            tail: None,
            finished: None,
        })
    }

    /// A reader that starts at record `from_seq` (replay after a snapshot). Segments that end before
    /// it are skipped without being read; the first record returned is `from_seq`, or the reader
    /// fails with [`ReadError::SeqNotAvailable`] if the journal starts after it.
    pub fn open_from(root: &Path, shard: u32, epoch: Option<u64>, from_seq: u64) -> Result<JournalReader, ReadError> {
        let mut reader = JournalReader::open(root, shard, epoch)?;
        let skip = reader.segments.iter().skip(1).take_while(|next| next.first_seq <= from_seq).count();
        reader.next_index = skip;
        reader.from_seq = Some(from_seq);
        if let Some(first) = reader.segments.get(skip) {
            if first.first_seq > from_seq {
                let error = ReadError::SeqNotAvailable { requested: from_seq, first_available: first.first_seq };
                reader.finished = Some(Finished::Failed(error));
            }
        }
        Ok(reader)
    }

    /// The segment files the reader will read, in order.
    pub fn segments(&self) -> &[SegmentFile] {
        &self.segments
    }

    /// The epoch being checked: the one given, or the one of the first segment read.
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// Path of the segment the last record came from.
    pub fn segment_path(&self) -> Option<&Path> {
        self.current.as_ref().map(|current| self.segments[current.index].path.as_path())
    }

    /// The sequence the next record must have, once known.
    pub fn expected_seq(&self) -> Option<u64> {
        self.expected_seq
    }

    /// Where the valid part of the journal ends so far.
    pub(crate) fn tail(&self) -> Option<&TailPosition> {
        self.tail.as_ref()
    }

    /// The next record, `Ok(None)` at the clean end of the journal, or an error at the first damage.
    /// After the end or an error, every further call returns the same outcome.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        loop {
            if let Some(finished) = &self.finished {
                return finished.repeat();
            }
            let Some(current) = &self.current else {
                if self.next_index >= self.segments.len() {
                    self.finished = Some(Finished::Clean);
                    continue;
                }
                if let Err(error) = self.load_segment() {
                    self.finished = Some(Finished::Failed(error));
                }
                continue;
            };
            let (index, offset, capacity) = (current.index, current.offset, current.header.capacity_bytes);
            let expected = self.expected_seq.unwrap_or(current.header.first_seq);
            match segment::step(&self.buffer, offset, expected, capacity) {
                Step::Record { header, payload, next_offset } => {
                    self.expected_seq = Some(expected + 1);
                    if let Some(current) = &mut self.current {
                        current.offset = next_offset;
                    }
                    if let Some(tail) = &mut self.tail {
                        tail.offset_bytes = next_offset as u64;
                    }
                    if self.from_seq.is_some_and(|from| header.seq < from) {
                        continue;
                    }
                    return Ok(Some(Record {
                        seq: header.seq,
                        record_type: header.record_type,
                        timestamp_ns: header.timestamp_ns,
                        offset_bytes: offset as u64,
                        payload: &self.buffer[payload],
                    }));
                }
                Step::End => {
                    self.current = None;
                    self.expected_seq = Some(expected);
                }
                Step::Bad(kind) => {
                    let is_last = index + 1 == self.segments.len();
                    let torn = kind.can_be_torn_write()
                        && is_last
                        && !segment::valid_frame_after(&self.buffer, offset, expected, capacity);
                    let segment_path = self.segments[index].path.clone();
                    let offset_bytes = offset as u64;
                    let error = if torn {
                        ReadError::TornTail(TornTail { segment_path, offset_bytes, seq: expected, kind })
                    } else {
                        ReadError::Corrupt(Problem { segment_path, offset_bytes, seq: expected, kind })
                    };
                    self.finished = Some(Finished::Failed(error));
                }
            }
        }
    }

    /// Reads the next segment into the buffer and checks its header.
    fn load_segment(&mut self) -> Result<(), ReadError> {
        let index = self.next_index;
        self.next_index += 1;
        let SegmentFile { first_seq: name_seq, path } = &self.segments[index];
        let name_seq = *name_seq;
        self.buffer.clear();
        File::open(path)
            .and_then(|mut file| {
                // One allocation for the largest segment, then none: the buffer is reused.
                let len = file.metadata()?.len();
                self.buffer.reserve(usize::try_from(len).unwrap_or(0));
                file.read_to_end(&mut self.buffer)
            })
            .map_err(|e| IoError::new("read", path, e))?;
        let expected = self.expected_seq.unwrap_or(name_seq);
        let problem = |kind| Problem { segment_path: path.clone(), offset_bytes: 0, seq: expected, kind };
        let header = match SegmentHeader::decode(&self.buffer) {
            Ok(header) => header,
            Err(fault) => {
                let kind = ProblemKind::from_header_fault(fault);
                // A cut header can only be the newest segment of a journal cut short; it holds no
                // records, so nothing valid comes after it.
                if matches!(kind, ProblemKind::HeaderTooShort { .. }) && index + 1 == self.segments.len() {
                    return Err(ReadError::TornTail(TornTail {
                        segment_path: path.clone(),
                        offset_bytes: 0,
                        seq: expected,
                        kind,
                    }));
                }
                return Err(ReadError::Corrupt(problem(kind)));
            }
        };
        if header.shard != self.shard {
            return Err(ReadError::Corrupt(problem(ProblemKind::WrongShard {
                expected: self.shard,
                found: header.shard,
            })));
        }
        match self.epoch {
            Some(epoch) if epoch != header.epoch => {
                return Err(ReadError::Corrupt(problem(ProblemKind::StaleEpoch {
                    expected: epoch,
                    found: header.epoch,
                })));
            }
            Some(_) => {}
            None => self.epoch = Some(header.epoch),
        }
        if header.first_seq != name_seq {
            return Err(ReadError::Corrupt(problem(ProblemKind::NameMismatch {
                name_seq,
                header_seq: header.first_seq,
            })));
        }
        if let Some(expected_seq) = self.expected_seq {
            if header.first_seq > expected_seq {
                return Err(ReadError::Corrupt(problem(ProblemKind::MissingSegment {
                    expected_seq,
                    found_seq: header.first_seq,
                })));
            }
            if header.first_seq < expected_seq {
                return Err(ReadError::Corrupt(problem(ProblemKind::OverlappingSegment {
                    expected_seq,
                    found_seq: header.first_seq,
                })));
            }
        }
        if self.expected_seq.is_none() {
            self.expected_seq = Some(header.first_seq);
        }
        self.tail = Some(TailPosition { segment_path: path.clone(), header, offset_bytes: SEGMENT_HEADER_LEN as u64 });
        self.current = Some(Current { index, header, offset: FIRST_FRAME_OFFSET });
        Ok(())
    }
}
