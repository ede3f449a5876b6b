//! The venue's source of truth: an append-only, segmented, checksummed log of sequenced records per
//! shard, and the snapshots that let it be pruned.
//!
//! The journal knows nothing about orders. A record is a sequence number, a record type (`u16`), a
//! timestamp and opaque payload bytes; what they mean is the engine's business. What the journal
//! guarantees is that what it hands back after a crash is exactly a prefix of what was committed, that
//! every byte of it was checked, and that anything else (a torn last write, a flipped bit, a missing
//! or stale file) is reported precisely instead of being read as data.
//!
//! # Files
//!
//! ```text
//! <root>/shard-<k>/00000000000000000001.seg        segments, named by their first sequence (20 digits)
//! <root>/shard-<k>/00000000000000052311.seg
//! <root>/shard-<k>/<name>.seg.tmp                  a segment being created (deleted by recovery)
//! <root>/shard-<k>/<name>.seg.corrupt              set aside by recovery with allow_corruption
//! <root>/snapshots/shard-<k>/snapshot-<last_seq 20 digits>.snap
//! ```
//!
//! # Format (version 1)
//!
//! All integers are little-endian. Offsets are in bytes. The same tables are in `docs/journal.md`, and
//! `tests/layout.rs` checks both against the code.
//!
//! ## Segment header (64 bytes, at offset 0 of every segment)
//!
//! | offset | size | field | meaning |
//! | --- | --- | --- | --- |
//! | 0 | 8 | `magic` | `SMXJRNL\0` |
//! | 8 | 2 | `format_version` | 1 |
//! | 10 | 2 | `header_len_bytes` | 64 |
//! | 12 | 4 | `shard` | shard id (`u32`) |
//! | 16 | 8 | `epoch` | the journal's epoch (`u64`), chosen at creation; every segment carries it |
//! | 24 | 8 | `first_seq` | sequence of the segment's first record (`u64`), equal to the file name |
//! | 32 | 8 | `created_ns` | creation time, ns since the Unix epoch (`i64`) |
//! | 40 | 8 | `capacity_bytes` | size the segment was preallocated to (`u64`, multiple of 8, 128 B to 4 GiB) |
//! | 48 | 12 | `reserved` | zero |
//! | 60 | 4 | `header_crc32c` | CRC32C of bytes 0..60 |
//!
//! ## Frames (from offset 64, each at a multiple of 8)
//!
//! Each record is a 32-byte frame header, the payload, and zero padding up to a multiple of 8 bytes.
//!
//! | offset | size | field | meaning |
//! | --- | --- | --- | --- |
//! | 0 | 4 | `payload_len_bytes` | payload length (`u32`), at least 1; 0 marks the end of data |
//! | 4 | 2 | `record_type` | the caller's record type (`u16`) |
//! | 6 | 2 | `reserved0` | zero |
//! | 8 | 8 | `seq` | sequence (`u64`): exactly the previous record's plus one, across segments |
//! | 16 | 8 | `timestamp_ns` | the caller's timestamp (`i64`) |
//! | 24 | 4 | `crc32c` | CRC32C of the whole frame (header, payload, padding) with this field read as zero |
//! | 28 | 4 | `reserved1` | zero |
//! | 32 | n | payload | `payload_len_bytes` bytes |
//! | 32 + n | 0..7 | padding | zeros up to the next multiple of 8 |
//!
//! A frame never extends past `capacity_bytes`. Segments are preallocated (`posix_fallocate`, or
//! `set_len` where unsupported), so the unwritten part reads as zeros: a zero length at a frame
//! boundary, or fewer than 32 bytes left, is the end of data, and every byte after it must be zero.
//! The writer starts a new segment when the next frame does not fit in the current one.
//!
//! ## Snapshot file (64-byte header, then the snapshot bytes)
//!
//! | offset | size | field | meaning |
//! | --- | --- | --- | --- |
//! | 0 | 8 | `magic` | `SMXSNAP\0` |
//! | 8 | 2 | `format_version` | 1 |
//! | 10 | 2 | `header_len_bytes` | 64 |
//! | 12 | 4 | `shard` | shard id |
//! | 16 | 8 | `epoch` | the journal's epoch |
//! | 24 | 8 | `last_seq` | last journal record the state includes, equal to the file name |
//! | 32 | 8 | `timestamp_ns` | the caller's timestamp |
//! | 40 | 8 | `payload_len_bytes` | length of the snapshot bytes |
//! | 48 | 4 | `payload_crc32c` | CRC32C of the snapshot bytes |
//! | 52 | 8 | `reserved` | zero |
//! | 60 | 4 | `header_crc32c` | CRC32C of bytes 0..60 |
//!
//! # Writing, durability and recovery
//!
//! [`JournalWriter`] batches frames in a preallocated buffer and makes each [`JournalWriter::commit`]
//! durable with one `fdatasync` (see [`Durability`]); an `fdatasync` failure poisons it for good.
//! A segment is synced before the writer moves to the next one, and segments are created under a
//! temporary name, so a crash can only damage the end of the last segment: [`recover`] cuts such a
//! torn tail and refuses anything else (damage followed by valid records, a missing, stale or corrupt
//! segment) unless [`RecoveryOptions::allow_corruption`] is set. [`scan`] reports the same without
//! changing anything, and [`JournalReader`] iterates records with borrowed payloads.
//!
//! What the journal cannot see by itself: the loss of whole segments at its end (it looks like a
//! shorter journal). Compare [`ScanReport::last_seq`] with the newest snapshot's `last_seq` and with
//! what clients were told.

pub mod error;
pub mod format;
pub mod reader;
pub mod recovery;
pub mod segment;
pub mod snapshot;
pub mod writer;

pub use error::{
    IoError, Problem, ProblemKind, ReadError, RecoveryError, SnapshotError, SnapshotFault, TornTail, WriteError,
};
pub use reader::{JournalReader, Record};
pub use recovery::{recover, scan, Recovered, RecoveryOptions, ScanReport};
pub use segment::{segment_file_name, shard_dir};
pub use snapshot::{snapshot_dir, PruneReport, Snapshot, SnapshotConfig, SnapshotInfo, SnapshotStore};
pub use writer::{Durability, JournalConfig, JournalWriter, WriterStats};
