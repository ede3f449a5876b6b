//! What can go wrong, as types: what a reader found wrong in the bytes ([`ProblemKind`], located by
//! [`Problem`] or [`TornTail`]) and the errors of each operation.
//!
//! Damage is data, not an exception: a scan reports it in its [`crate::ScanReport`], and only the
//! operations that cannot go on past it (reading a record, recovering without permission to drop
//! records, appending after a failed sync) turn it into an `Err`.

use crate::format::HeaderFault;
use std::fmt;
use std::io;
use std::path::PathBuf;
use thiserror::Error;

/// What is wrong at one place in a journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The segment file is shorter than a segment header.
    HeaderTooShort { len_bytes: u64 },
    /// The segment does not start with the segment magic.
    HeaderBadMagic,
    /// The segment's format version is not one this code reads.
    HeaderUnsupportedVersion { found: u16 },
    /// The segment header's checksum does not verify.
    HeaderChecksum,
    /// The header's checksum verifies but a field is impossible (header length, capacity, reserved).
    HeaderLayout,
    /// The header belongs to another shard.
    WrongShard { expected: u32, found: u32 },
    /// The segment belongs to another incarnation of the journal: it is stale.
    StaleEpoch { expected: u64, found: u64 },
    /// The file name says one first sequence, the header another.
    NameMismatch { name_seq: u64, header_seq: u64 },
    /// The segment starts after the sequence the previous one ended at: a segment is missing.
    MissingSegment { expected_seq: u64, found_seq: u64 },
    /// The segment starts before the sequence the previous one ended at.
    OverlappingSegment { expected_seq: u64, found_seq: u64 },
    /// A frame's checksum does not verify (torn write, zeroed or flipped bytes).
    RecordChecksum,
    /// A frame claims a length that cannot fit in its segment.
    RecordLength { payload_len_bytes: u32 },
    /// The file ends inside a frame.
    RecordTruncated,
    /// A frame verifies but its reserved fields are not zero.
    RecordReserved,
    /// A frame verifies but carries the wrong sequence.
    SequenceMismatch { expected: u64, found: u64 },
    /// Non-zero bytes after the end-of-data marker (a zero length at a frame boundary).
    GarbageAfterEnd,
}

impl ProblemKind {
    pub(crate) fn from_header_fault(fault: HeaderFault) -> ProblemKind {
        match fault {
            HeaderFault::TooShort { len_bytes } => ProblemKind::HeaderTooShort { len_bytes },
            HeaderFault::BadMagic => ProblemKind::HeaderBadMagic,
            HeaderFault::UnsupportedVersion { found } => ProblemKind::HeaderUnsupportedVersion { found },
            HeaderFault::BadChecksum => ProblemKind::HeaderChecksum,
            HeaderFault::BadLayout => ProblemKind::HeaderLayout,
        }
    }

    /// Damage a crash in the middle of a write can leave at the end of the last segment. Anything else
    /// (a bad segment header, a verified frame with the wrong sequence) is corruption wherever it is.
    pub fn can_be_torn_write(self) -> bool {
        matches!(
            self,
            ProblemKind::RecordChecksum
                | ProblemKind::RecordLength { .. }
                | ProblemKind::RecordTruncated
                | ProblemKind::GarbageAfterEnd
        )
    }

    /// The problem concerns a whole segment (its header or its place in the sequence), not a record.
    pub fn is_segment_level(self) -> bool {
        matches!(
            self,
            ProblemKind::HeaderTooShort { .. }
                | ProblemKind::HeaderBadMagic
                | ProblemKind::HeaderUnsupportedVersion { .. }
                | ProblemKind::HeaderChecksum
                | ProblemKind::HeaderLayout
                | ProblemKind::WrongShard { .. }
                | ProblemKind::StaleEpoch { .. }
                | ProblemKind::NameMismatch { .. }
                | ProblemKind::MissingSegment { .. }
                | ProblemKind::OverlappingSegment { .. }
        )
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ProblemKind::HeaderTooShort { len_bytes } => {
                write!(f, "segment file of {len_bytes} bytes is shorter than its header")
            }
            ProblemKind::HeaderBadMagic => write!(f, "segment header has the wrong magic"),
            ProblemKind::HeaderUnsupportedVersion { found } => {
                write!(f, "segment format version {found} is not supported")
            }
            ProblemKind::HeaderChecksum => write!(f, "segment header checksum mismatch"),
            ProblemKind::HeaderLayout => write!(f, "segment header has an impossible field"),
            ProblemKind::WrongShard { expected, found } => {
                write!(f, "segment of shard {found}, expected shard {expected}")
            }
            ProblemKind::StaleEpoch { expected, found } => {
                write!(f, "stale segment of epoch {found}, journal epoch is {expected}")
            }
            ProblemKind::NameMismatch { name_seq, header_seq } => {
                write!(f, "file name says first sequence {name_seq}, header says {header_seq}")
            }
            ProblemKind::MissingSegment { expected_seq, found_seq } => {
                write!(f, "missing segment: records {expected_seq}..{found_seq} are absent")
            }
            ProblemKind::OverlappingSegment { expected_seq, found_seq } => {
                write!(f, "segment starts at sequence {found_seq}, before the expected {expected_seq}")
            }
            ProblemKind::RecordChecksum => write!(f, "record checksum mismatch"),
            ProblemKind::RecordLength { payload_len_bytes } => {
                write!(f, "record length {payload_len_bytes} does not fit in the segment")
            }
            ProblemKind::RecordTruncated => write!(f, "the file ends inside a record"),
            ProblemKind::RecordReserved => write!(f, "record reserved fields are not zero"),
            ProblemKind::SequenceMismatch { expected, found } => {
                write!(f, "record has sequence {found}, expected {expected}")
            }
            ProblemKind::GarbageAfterEnd => write!(f, "non-zero bytes after the end of data"),
        }
    }
}

/// Damage with valid records after it (or damage that no crash can explain): mid-log corruption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub segment_path: PathBuf,
    /// Offset of the damaged frame (or of the end-of-data marker) in the segment; 0 for a bad header.
    pub offset_bytes: u64,
    /// The sequence expected at that place.
    pub seq: u64,
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {} (expected sequence {}): {}",
            self.segment_path.display(),
            self.offset_bytes,
            self.seq,
            self.kind
        )
    }
}

/// Damage at the very end of the journal with nothing valid after it: what a crash during a write
/// leaves. Recovery cuts the journal there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub segment_path: PathBuf,
    pub offset_bytes: u64,
    /// The sequence of the record that was being written.
    pub seq: u64,
    pub kind: ProblemKind,
}

impl fmt::Display for TornTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {} (sequence {}): {}",
            self.segment_path.display(),
            self.offset_bytes,
            self.seq,
            self.kind
        )
    }
}

/// An I/O error with the file it happened on.
#[derive(Debug, Error)]
#[error("{op} {path}: {source}")]
pub struct IoError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl IoError {
    pub(crate) fn new(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> IoError {
        IoError { op, path: path.into(), source }
    }

    pub(crate) fn duplicate(&self) -> IoError {
        IoError {
            op: self.op,
            path: self.path.clone(),
            source: io::Error::new(self.source.kind(), self.source.to_string()),
        }
    }
}

/// Errors of [`crate::JournalReader`].
#[derive(Debug, Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("journal corrupt: {0}")]
    Corrupt(Problem),
    #[error("journal has a torn tail (recover it first): {0}")]
    TornTail(TornTail),
    #[error("sequence {requested} is not in the journal, which starts at {first_available}")]
    SeqNotAvailable { requested: u64, first_available: u64 },
}

/// Errors of [`crate::recover`].
#[derive(Debug, Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Io(#[from] IoError),
    /// Mid-log corruption, refused because `allow_corruption` was not set.
    #[error("mid-log corruption, refusing to drop the records after it: {0}")]
    Corruption(Problem),
}

/// Errors of [`crate::JournalWriter`].
#[derive(Debug, Error)]
pub enum WriteError {
    #[error(transparent)]
    Io(#[from] IoError),
    /// `fdatasync` (or the fsync of a new segment) failed. Fatal: the kernel may already have dropped
    /// the dirty pages, so retrying could report success for data that is gone. The writer is
    /// poisoned; the journal must be recovered from disk.
    #[error("sync failed, the writer is poisoned: {0}")]
    SyncFailed(IoError),
    /// An earlier call failed in a way that leaves the file's contents unknown.
    #[error("the writer is poisoned by an earlier failure")]
    Poisoned,
    #[error("records must have a payload (a zero length marks the end of data)")]
    EmptyPayload,
    #[error("payload of {payload_len_bytes} bytes exceeds the {max_payload_bytes} bytes a segment can hold")]
    RecordTooLarge { payload_len_bytes: usize, max_payload_bytes: u64 },
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    #[error("a journal already exists in {0}")]
    AlreadyExists(PathBuf),
    #[error("cannot append: {0}")]
    CannotAppend(String),
}

/// Errors of [`crate::SnapshotStore`].
#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("snapshot {path} is corrupt: {fault:?}")]
    Corrupt { path: PathBuf, fault: SnapshotFault },
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    #[error("sync failed: {0}")]
    SyncFailed(IoError),
}

/// Why a snapshot file was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotFault {
    Header(HeaderFault),
    WrongShard {
        expected: u32,
        found: u32,
    },
    WrongEpoch {
        expected: u64,
        found: u64,
    },
    NameMismatch {
        name_seq: u64,
        header_seq: u64,
    },
    /// The file holds a different number of bytes than the header says.
    LengthMismatch {
        header_bytes: u64,
        file_bytes: u64,
    },
    PayloadChecksum,
}
