//! One shard's journal as a stream of engine events, each with the place it came from.
//!
//! The journal's reader checks frames (checksums, sequence continuity, segment headers) and says
//! whether damage is a torn tail or corruption; the codec checks that a verified payload is an
//! event. Every command of the tool needs both, and needs to say *where* when either fails, so this
//! module puts them together: a [`Located`] event knows its segment file and offset, and a [`Damage`]
//! knows the segment, offset, sequence and what is wrong. It also refuses a record whose time goes
//! back, which the journal does not check and the engine would assert on.

use super::ToolError;
use simex_engine::{codec, CodecError, Event};
use simex_journal::{JournalReader, Problem, ReadError, TornTail};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An event read from the journal, with its place.
#[derive(Clone, Debug)]
pub struct Located {
    pub shard: u32,
    pub segment: Arc<Path>,
    /// Offset of the record's frame in its segment file.
    pub offset_bytes: u64,
    pub record_type: u16,
    pub payload_bytes: usize,
    pub event: Event,
}

/// Why a shard's stream stopped before its end.
#[derive(Clone, Debug)]
pub enum Damage {
    /// What a crash during a write leaves: recovery truncates it.
    Torn(TornTail),
    /// Mid-log corruption, or a missing, stale or corrupt segment: recovery refuses to start.
    Corrupt(Problem),
    /// The frame verifies but its payload is not an event this engine knows.
    Undecodable { segment: PathBuf, offset_bytes: u64, seq: u64, record_type: u16, error: CodecError },
    /// The record's time is before the previous record's: the engine cannot replay it.
    TimeBackwards { segment: PathBuf, offset_bytes: u64, seq: u64, previous_ns: i64, found_ns: i64 },
    /// Reading was asked to start at a sequence the journal no longer has (pruned).
    Unavailable { requested: u64, first_available: u64 },
}

impl Damage {
    pub fn is_torn_tail(&self) -> bool {
        matches!(self, Damage::Torn(_))
    }

    /// The sequence where the damage is: the record that could not be read.
    pub fn seq(&self) -> u64 {
        match self {
            Damage::Torn(torn) => torn.seq,
            Damage::Corrupt(problem) => problem.seq,
            Damage::Undecodable { seq, .. } | Damage::TimeBackwards { seq, .. } => *seq,
            Damage::Unavailable { requested, .. } => *requested,
        }
    }

    /// The segment file, if the damage is in one.
    pub fn segment(&self) -> Option<&Path> {
        match self {
            Damage::Torn(torn) => Some(&torn.segment_path),
            Damage::Corrupt(problem) => Some(&problem.segment_path),
            Damage::Undecodable { segment, .. } | Damage::TimeBackwards { segment, .. } => Some(segment),
            Damage::Unavailable { .. } => None,
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |f: &mut fmt::Formatter<'_>, segment: &Path, offset: u64, seq: u64| {
            write!(f, "segment {}, offset {offset}, sequence {seq}: ", segment.display())
        };
        match self {
            Damage::Torn(t) => {
                at(f, &t.segment_path, t.offset_bytes, t.seq)?;
                write!(f, "{} (torn tail: will be truncated on recovery)", t.kind)
            }
            Damage::Corrupt(p) => {
                at(f, &p.segment_path, p.offset_bytes, p.seq)?;
                write!(f, "{} (mid-log corruption: the venue will refuse to start)", p.kind)
            }
            Damage::Undecodable { segment, offset_bytes, seq, record_type, error } => {
                at(f, segment, *offset_bytes, *seq)?;
                write!(f, "record of type {record_type} does not decode as an event: {error}")
            }
            Damage::TimeBackwards { segment, offset_bytes, seq, previous_ns, found_ns } => {
                at(f, segment, *offset_bytes, *seq)?;
                write!(
                    f,
                    "time goes backwards: {} is before the previous record's {}",
                    crate::script::time::format_rfc3339(*found_ns),
                    crate::script::time::format_rfc3339(*previous_ns)
                )
            }
            Damage::Unavailable { requested, first_available } => write!(
                f,
                "sequence {requested} is no longer in the journal, which starts at {first_available} (older segments \
                 were pruned after a snapshot)"
            ),
        }
    }
}

/// How reading stopped early: damage in the journal, or an I/O error.
#[derive(Debug)]
pub enum Stop {
    Damage(Damage),
    Io(ToolError),
}

/// A shard's events in sequence order.
pub struct ShardRecords {
    shard: u32,
    reader: JournalReader,
    /// Segment paths and the bytes of all segments before each, for progress.
    starts: Vec<(PathBuf, u64)>,
    total_bytes: u64,
    current: Option<(Arc<Path>, u64)>,
    last_timestamp_ns: Option<i64>,
}

impl ShardRecords {
    /// Every record of `shard` (from `from_seq` on, if given), checking the segments' `epoch` if
    /// known.
    pub fn open(root: &Path, shard: u32, epoch: Option<u64>, from_seq: Option<u64>) -> Result<ShardRecords, ToolError> {
        let opened = match from_seq {
            None => JournalReader::open(root, shard, epoch),
            Some(seq) => JournalReader::open_from(root, shard, epoch, seq),
        };
        let reader = opened.map_err(|error| match error {
            ReadError::Io(e) => ToolError::from(e),
            other => ToolError::damaged(other.to_string()),
        })?;
        let mut starts = Vec::with_capacity(reader.segments().len());
        let mut total_bytes = 0;
        for segment in reader.segments() {
            starts.push((segment.path.clone(), total_bytes));
            total_bytes += fs::metadata(&segment.path).map(|m| m.len()).unwrap_or(0);
        }
        Ok(ShardRecords { shard, reader, starts, total_bytes, current: None, last_timestamp_ns: None })
    }

    pub fn shard(&self) -> u32 {
        self.shard
    }

    /// Bytes of all the shard's segment files.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Segment files in the shard.
    pub fn segments(&self) -> usize {
        self.starts.len()
    }

    /// The epoch of the journal, once its first segment was read.
    pub fn epoch(&self) -> Option<u64> {
        self.reader.epoch()
    }

    /// How far into the shard's bytes the last record was.
    pub fn position_bytes(&self, record: &Located) -> u64 {
        self.current.as_ref().map_or(0, |(_, start)| *start) + record.offset_bytes
    }

    /// The next event, `Ok(None)` at the clean end, or why reading stopped. After a stop every call
    /// returns the same stop again.
    pub fn next_event(&mut self) -> Result<Option<Located>, Stop> {
        let record = match self.reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(None),
            Err(ReadError::Io(e)) => return Err(Stop::Io(e.into())),
            Err(ReadError::TornTail(torn)) => return Err(Stop::Damage(Damage::Torn(torn))),
            Err(ReadError::Corrupt(problem)) => return Err(Stop::Damage(Damage::Corrupt(problem))),
            Err(ReadError::SeqNotAvailable { requested, first_available }) => {
                return Err(Stop::Damage(Damage::Unavailable { requested, first_available }))
            }
        };
        let (seq, record_type, timestamp_ns, offset_bytes) =
            (record.seq, record.record_type, record.timestamp_ns, record.offset_bytes);
        let decoded = codec::decode_event(record_type, seq, timestamp_ns, record.payload);
        let payload_bytes = record.payload.len();
        let segment = self.segment();
        let event = match decoded {
            Ok(event) => event,
            Err(error) => {
                let damage =
                    Damage::Undecodable { segment: segment.to_path_buf(), offset_bytes, seq, record_type, error };
                return Err(Stop::Damage(damage));
            }
        };
        if let Some(previous_ns) = self.last_timestamp_ns.filter(|&previous| timestamp_ns < previous) {
            let damage = Damage::TimeBackwards {
                segment: segment.to_path_buf(),
                offset_bytes,
                seq,
                previous_ns,
                found_ns: timestamp_ns,
            };
            return Err(Stop::Damage(damage));
        }
        self.last_timestamp_ns = Some(timestamp_ns);
        Ok(Some(Located { shard: self.shard, segment, offset_bytes, record_type, payload_bytes, event }))
    }

    /// The segment the last record came from, shared between the records of one segment.
    fn segment(&mut self) -> Arc<Path> {
        let path = self.reader.segment_path().unwrap_or(Path::new(""));
        match &self.current {
            Some((current, _)) if **current == *path => current.clone(),
            _ => {
                let start = self.starts.iter().find(|(p, _)| p == path).map_or(0, |(_, start)| *start);
                let current: Arc<Path> = Arc::from(path);
                self.current = Some((current.clone(), start));
                current
            }
        }
    }
}
