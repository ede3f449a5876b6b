//! Segment files: their names, their creation, and walking the frames in a segment's bytes.
//!
//! The frame walk is a pure function of the bytes ([`step`]) so that the reader, the scanner and the
//! fuzzer share one piece of code that decides what is a record, what is the end of data and what is
//! damage. It never panics and never reads outside the slice, whatever the bytes say.

use crate::error::{IoError, ProblemKind};
use crate::format::{
    frame_len_bytes, FrameHeader, SegmentHeader, FRAME_ALIGN_BYTES, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Extension of segment files.
pub const SEGMENT_EXTENSION: &str = "seg";
/// Suffix of a segment being created; a leftover one is deleted by recovery.
pub const TEMP_SUFFIX: &str = ".tmp";
/// Suffix given to segments set aside by a recovery that was allowed to drop corrupt records.
pub const QUARANTINE_SUFFIX: &str = ".corrupt";
const NAME_DIGITS: usize = 20;

/// `<root>/shard-<shard>`.
pub fn shard_dir(root: &Path, shard: u32) -> PathBuf {
    root.join(format!("shard-{shard}"))
}

/// `00000000000000000001.seg` for a segment whose first record is sequence 1.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:0NAME_DIGITS$}.{SEGMENT_EXTENSION}")
}

/// The first sequence a segment file name stands for, or `None` if it is not a segment name.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A segment file found in a shard directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentFile {
    pub first_seq: u64,
    pub path: PathBuf,
}

/// The segment files of a shard directory in sequence order, and the leftover temporary files.
pub fn list_segments(dir: &Path) -> Result<(Vec<SegmentFile>, Vec<PathBuf>), IoError> {
    let mut segments = Vec::new();
    let mut temporaries = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| IoError::new("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| IoError::new("list", dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if let Some(first_seq) = parse_segment_file_name(&name) {
            segments.push(SegmentFile { first_seq, path: entry.path() });
        } else if name.strip_suffix(TEMP_SUFFIX).and_then(parse_segment_file_name).is_some() {
            temporaries.push(entry.path());
        }
    }
    segments.sort_by_key(|segment| segment.first_seq);
    temporaries.sort();
    Ok((segments, temporaries))
}

/// Makes the file `len_bytes` long with real blocks behind it where the file system supports it, so
/// that appends do not fail for lack of space and the unwritten tail reads as zeros.
pub fn preallocate(file: &File, len_bytes: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        if let Ok(len) = libc::off_t::try_from(len_bytes) {
            // SAFETY: `posix_fallocate` takes plain integers; the descriptor is open for writing and
            // stays valid for the call because `file` is borrowed for its duration.
            let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
            match rc {
                0 => return Ok(()),
                libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS => {}
                errno => return Err(io::Error::from_raw_os_error(errno)),
            }
        }
    }
    if file.metadata()?.len() < len_bytes {
        file.set_len(len_bytes)?;
    }
    Ok(())
}

/// fsyncs a directory so that the names created, renamed or removed in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), IoError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| IoError::new("fsync directory", dir, e))
}

pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Why creating a segment failed: a sync failure is fatal to a writer, other I/O errors are not
/// (nothing has been written to the journal yet).
pub enum CreateError {
    Io(IoError),
    Sync(IoError),
}

/// Creates segment `first_seq` of `dir`: preallocates a temporary file, writes the header, fsyncs
/// it, renames it into place and fsyncs the directory. A segment under its final name therefore
/// always has a complete header. Returns the file, open for reading and writing, and its path.
pub fn create_segment(dir: &Path, header: &SegmentHeader) -> Result<(File, PathBuf), CreateError> {
    let name = segment_file_name(header.first_seq);
    let path = dir.join(&name);
    let temp = dir.join(format!("{name}{TEMP_SUFFIX}"));
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |e: io::Error| CreateError::Io(IoError::new(op, p, e))
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(io("create", &temp))?;
    preallocate(&file, header.capacity_bytes).map_err(io("preallocate", &temp))?;
    file.write_all_at(&header.encode(), 0).map_err(io("write header", &temp))?;
    file.sync_all().map_err(|e| CreateError::Sync(IoError::new("fsync", &temp, e)))?;
    fs::rename(&temp, &path).map_err(io("rename", &temp))?;
    sync_dir(dir).map_err(CreateError::Sync)?;
    Ok((file, path))
}

/// What is at a frame boundary of a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A valid record with the expected sequence; the next frame starts at `next_offset`.
    Record { header: FrameHeader, payload: Range<usize>, next_offset: usize },
    /// The end of data: a zero length (or the end of the file) with nothing but zeros after it.
    End,
    /// Damage at this boundary.
    Bad(ProblemKind),
}

/// Decides what is at `offset` (a frame boundary) of `data`, a whole segment file whose header says
/// it holds `capacity_bytes`, where the next record must have sequence `expected_seq`.
pub fn step(data: &[u8], offset: usize, expected_seq: u64, capacity_bytes: u64) -> Step {
    let Some(rest) = data.get(offset..) else { return Step::Bad(ProblemKind::RecordTruncated) };
    let Some(header) = FrameHeader::decode(rest) else {
        // Fewer bytes than a frame header: zeros are the end of data; anything else is a cut frame,
        // or garbage if no frame could fit there anyway.
        return if is_all_zero(rest) {
            Step::End
        } else if offset as u64 + frame_len_bytes(1) > capacity_bytes {
            Step::Bad(ProblemKind::GarbageAfterEnd)
        } else {
            Step::Bad(ProblemKind::RecordTruncated)
        };
    };
    if header.payload_len_bytes == 0 {
        return if is_all_zero(rest) { Step::End } else { Step::Bad(ProblemKind::GarbageAfterEnd) };
    }
    let frame_len = frame_len_bytes(u64::from(header.payload_len_bytes));
    let end = offset as u64 + frame_len;
    if end > capacity_bytes {
        return Step::Bad(ProblemKind::RecordLength { payload_len_bytes: header.payload_len_bytes });
    }
    if end > data.len() as u64 {
        return Step::Bad(ProblemKind::RecordTruncated);
    }
    // `end` is at most `data.len()`, so it fits in usize.
    let end = end as usize;
    let frame = &data[offset..end];
    if FrameHeader::checksum(frame) != header.crc32c {
        return Step::Bad(ProblemKind::RecordChecksum);
    }
    if !header.reserved_zero {
        return Step::Bad(ProblemKind::RecordReserved);
    }
    if header.seq != expected_seq {
        return Step::Bad(ProblemKind::SequenceMismatch { expected: expected_seq, found: header.seq });
    }
    let payload_start = offset + FRAME_HEADER_LEN;
    Step::Record { header, payload: payload_start..payload_start + header.payload_len_bytes as usize, next_offset: end }
}

/// Is there a frame after the damaged one at `bad_offset` that verifies and could belong to this
/// journal (a sequence from `expected_seq` on, no further than the bytes left could hold)? If so, the
/// damage is followed by records and is mid-log corruption, not a torn tail.
///
/// A payload that itself contains the bytes of a valid frame can make a torn tail look like
/// corruption; that errs on the side of refusing to drop records.
pub fn valid_frame_after(data: &[u8], bad_offset: usize, expected_seq: u64, capacity_bytes: u64) -> bool {
    let limit = (data.len() as u64).min(capacity_bytes);
    let min_frame = frame_len_bytes(1);
    let mut offset = bad_offset.saturating_add(FRAME_ALIGN_BYTES);
    while (offset as u64).saturating_add(FRAME_HEADER_LEN as u64) <= limit {
        if let Some(header) = data.get(offset..).and_then(FrameHeader::decode) {
            let max_seq = expected_seq.saturating_add((limit - offset as u64) / min_frame + 1);
            let end = offset as u64 + frame_len_bytes(u64::from(header.payload_len_bytes));
            if header.payload_len_bytes != 0
                && header.reserved_zero
                && (expected_seq..=max_seq).contains(&header.seq)
                && end <= limit
                && FrameHeader::checksum(&data[offset..end as usize]) == header.crc32c
            {
                return true;
            }
        }
        offset += FRAME_ALIGN_BYTES;
    }
    false
}

pub fn is_all_zero(bytes: &[u8]) -> bool {
    bytes.chunks(4096).all(|chunk| chunk.iter().fold(0u8, |acc, &b| acc | b) == 0)
}

/// The first frame boundary of a segment.
pub const FIRST_FRAME_OFFSET: usize = SEGMENT_HEADER_LEN;

/// The epoch of a shard's journal, from its first segment's header; `None` if it has no segment or
/// that header does not read (recovery then reports why).
pub fn first_epoch(root: &Path, shard: u32) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    let (segments, _) = list_segments(&shard_dir(root, shard)).ok()?;
    let first = segments.first()?;
    let mut bytes = [0u8; crate::format::SEGMENT_HEADER_LEN];
    fs::File::open(&first.path).and_then(|file| file.read_exact_at(&mut bytes, 0)).ok()?;
    crate::format::SegmentHeader::decode(&bytes).ok().map(|header| header.epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(segment_file_name(1), "00000000000000000001.seg");
        assert_eq!(parse_segment_file_name("00000000000000000001.seg"), Some(1));
        assert_eq!(parse_segment_file_name(&segment_file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_file_name("99999999999999999999.seg"), None);
        assert_eq!(parse_segment_file_name("1.seg"), None);
        assert_eq!(parse_segment_file_name("00000000000000000001.seg.tmp"), None);
        assert_eq!(parse_segment_file_name("+0000000000000000001.seg"), None);
    }

    #[test]
    fn step_never_reads_past_the_slice() {
        let mut data = vec![0u8; 256];
        data[64] = 200;
        assert_eq!(step(&data, 64, 1, 4096), Step::Bad(ProblemKind::RecordTruncated));
        assert_eq!(step(&data, 64, 1, 128), Step::Bad(ProblemKind::RecordLength { payload_len_bytes: 200 }));
        assert_eq!(step(&data, 300, 1, 4096), Step::Bad(ProblemKind::RecordTruncated));
        assert_eq!(step(&data, 256, 1, 4096), Step::End);
        data[64] = 0;
        assert_eq!(step(&data, 64, 1, 4096), Step::End);
        data[255] = 1;
        assert_eq!(step(&data, 64, 1, 4096), Step::Bad(ProblemKind::GarbageAfterEnd));
        assert_eq!(step(&data, 240, 1, 4096), Step::Bad(ProblemKind::RecordTruncated));
        assert_eq!(step(&data, 240, 1, 256), Step::Bad(ProblemKind::GarbageAfterEnd));
    }
}
