//! Verifying a journal ([`scan`]) and bringing it back to a state a writer can append to after a
//! crash ([`recover`]).
//!
//! The rule that separates the two kinds of damage: a crash can only tear the *end* of the journal,
//! because the writer syncs a segment before it moves to the next one and creates every segment under
//! a temporary name. So damage in the last segment with no valid frame after it is a torn tail, which
//! recovery cuts off (those records were never acknowledged under `Sync`/`Batch` durability, since
//! acknowledgement waits for the sync), while damage followed by valid records, or a segment that is
//! missing, stale or has a bad header, is corruption of acknowledged data, which recovery refuses to
//! paper over unless told to.

use crate::error::{IoError, Problem, ReadError, RecoveryError, TornTail};
use crate::reader::{JournalReader, TailPosition};
use crate::segment::{list_segments, shard_dir, sync_dir, QUARANTINE_SUFFIX};
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

/// What a scan of one shard's journal found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// The epoch checked: the one asked for, or the first segment's.
    pub epoch: Option<u64>,
    /// Segment files in the shard directory.
    pub segments: usize,
    /// Valid records before the end or the first damage.
    pub records: u64,
    pub payload_bytes: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The sequence the next record appended after the valid part must have.
    pub next_seq: Option<u64>,
    pub first_timestamp_ns: Option<i64>,
    pub last_timestamp_ns: Option<i64>,
    /// Damage at the very end with nothing valid after it.
    pub torn_tail: Option<TornTail>,
    /// Damage that is not a torn tail: mid-log corruption, a missing, stale or corrupt segment.
    pub problem: Option<Problem>,
    /// Segments whose creation never finished (`*.seg.tmp`); they hold no records.
    pub temporary_files: Vec<PathBuf>,
}

impl ScanReport {
    /// No damage at all.
    pub fn is_clean(&self) -> bool {
        self.torn_tail.is_none() && self.problem.is_none()
    }
}

/// Reads and checks every record of `<root>/shard-<shard>`. Never panics, whatever the files hold:
/// damage is reported, only I/O errors are errors.
pub fn scan(root: &Path, shard: u32, epoch: Option<u64>) -> Result<ScanReport, IoError> {
    scan_with_tail(root, shard, epoch, None).map(|(report, _tail)| report)
}

/// Scans from the segment that holds `from_seq` (every segment, if `None` or if the journal starts
/// after it). Records before `from_seq` in that segment are checked but not counted.
fn scan_with_tail(
    root: &Path,
    shard: u32,
    epoch: Option<u64>,
    from_seq: Option<u64>,
) -> Result<(ScanReport, Option<TailPosition>), IoError> {
    let (segments, temporary_files) = list_segments(&shard_dir(root, shard))?;
    let from_seq = from_seq.filter(|&from| segments.first().is_some_and(|first| first.first_seq <= from));
    let opened = match from_seq {
        Some(from) => JournalReader::open_from(root, shard, epoch, from),
        None => JournalReader::open(root, shard, epoch),
    };
    let mut reader = opened.map_err(|error| match error {
        ReadError::Io(e) => e,
        other => unreachable!("opening a reader only lists files: {other}"),
    })?;
    let mut report = ScanReport { segments: reader.segments().len(), temporary_files, ..ScanReport::default() };
    loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                report.records += 1;
                report.payload_bytes += record.payload.len() as u64;
                report.first_seq.get_or_insert(record.seq);
                report.first_timestamp_ns.get_or_insert(record.timestamp_ns);
                report.last_seq = Some(record.seq);
                report.last_timestamp_ns = Some(record.timestamp_ns);
            }
            Ok(None) => break,
            Err(ReadError::Io(e)) => return Err(e),
            Err(ReadError::Corrupt(problem)) => {
                report.next_seq = Some(problem.seq);
                report.problem = Some(problem);
                break;
            }
            Err(ReadError::TornTail(torn)) => {
                report.next_seq = Some(torn.seq);
                report.torn_tail = Some(torn);
                break;
            }
            Err(ReadError::SeqNotAvailable { .. }) => unreachable!("the reader starts within the journal"),
        }
    }
    report.epoch = reader.epoch();
    if report.next_seq.is_none() {
        report.next_seq = reader.expected_seq();
    }
    Ok((report, reader.tail().cloned()))
}

/// How [`recover`] treats what it finds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryOptions {
    /// The journal's epoch, if known (it should be: it is in the snapshot and the configuration).
    pub epoch: Option<u64>,
    /// Cut the journal at mid-log corruption instead of refusing. The records after it are dropped
    /// (the damaged segment is copied, and the later ones moved, to `*.corrupt` files first).
    pub allow_corruption: bool,
    /// Check only from the segment holding this record on: the records before it are covered by a
    /// snapshot, so start-up time does not grow with the journal. Damage before it goes unseen here
    /// (`scan` and `simex-journal verify` check every record). The report's counts start there too.
    pub scan_from_seq: Option<u64>,
}

/// The journal after recovery: what was found, what was done, and where appending continues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    pub root: PathBuf,
    pub shard: u32,
    pub epoch: Option<u64>,
    /// The scan before any repair.
    pub report: ScanReport,
    /// The torn tail that was cut off.
    pub torn_tail: Option<TornTail>,
    /// The corruption the journal was cut at (only with `allow_corruption`).
    pub corruption: Option<Problem>,
    /// Files set aside (`*.corrupt`) or removed (leftover temporary files, a cut segment header).
    pub quarantined: Vec<PathBuf>,
    pub removed: Vec<PathBuf>,
    pub(crate) tail: Option<TailPosition>,
}

impl Recovered {
    /// Valid records left in the journal.
    pub fn records(&self) -> u64 {
        self.report.records
    }

    /// The last valid record.
    pub fn last_seq(&self) -> Option<u64> {
        self.report.last_seq
    }

    /// The sequence of the next record to append.
    pub fn next_seq(&self) -> Option<u64> {
        self.report.next_seq
    }

    /// The segment appending continues in, and at which offset.
    pub fn append_position(&self) -> Option<(&Path, u64)> {
        self.tail.as_ref().map(|tail| (tail.segment_path.as_path(), tail.offset_bytes))
    }
}

/// Brings `<root>/shard-<shard>` to a state a writer can append to ([`crate::JournalWriter::open_for_append`]):
/// cuts a torn tail (with a warning naming segment, offset and sequence), deletes unfinished segment
/// files, and refuses mid-log corruption with [`RecoveryError::Corruption`] unless
/// `options.allow_corruption`.
pub fn recover(root: &Path, shard: u32, options: &RecoveryOptions) -> Result<Recovered, RecoveryError> {
    let dir = shard_dir(root, shard);
    let (report, tail) = scan_with_tail(root, shard, options.epoch, options.scan_from_seq)?;
    let mut recovered = Recovered {
        root: root.to_path_buf(),
        shard,
        epoch: report.epoch.or(options.epoch),
        report,
        torn_tail: None,
        corruption: None,
        quarantined: Vec::new(),
        removed: Vec::new(),
        tail,
    };
    let mut dir_changed = false;
    for temp in recovered.report.temporary_files.clone() {
        tracing::warn!(file = %temp.display(), "removing a segment whose creation did not finish");
        fs::remove_file(&temp).map_err(|e| IoError::new("remove", &temp, e))?;
        recovered.removed.push(temp);
        dir_changed = true;
    }
    if let Some(problem) = recovered.report.problem.clone() {
        if !options.allow_corruption {
            return Err(RecoveryError::Corruption(problem));
        }
        tracing::warn!(
            segment = %problem.segment_path.display(),
            offset_bytes = problem.offset_bytes,
            seq = problem.seq,
            kind = %problem.kind,
            "mid-log corruption: cutting the journal here and dropping every record after it"
        );
        let (segments, _) = list_segments(&dir)?;
        let Some(bad_first_seq) =
            segments.iter().find(|segment| segment.path == problem.segment_path).map(|segment| segment.first_seq)
        else {
            let gone = std::io::Error::new(std::io::ErrorKind::NotFound, "segment disappeared during recovery");
            return Err(IoError::new("list", &problem.segment_path, gone).into());
        };
        if problem.kind.is_segment_level() {
            recovered.quarantined.push(quarantine(&problem.segment_path)?);
        } else {
            let copy = quarantine_path(&problem.segment_path);
            fs::copy(&problem.segment_path, &copy).map_err(|e| IoError::new("copy", &problem.segment_path, e))?;
            recovered.quarantined.push(copy);
            zero_tail(&problem.segment_path, problem.offset_bytes)?;
        }
        for later in segments.iter().filter(|segment| segment.first_seq > bad_first_seq) {
            recovered.quarantined.push(quarantine(&later.path)?);
        }
        recovered.corruption = Some(problem);
        dir_changed = true;
    } else if let Some(torn) = recovered.report.torn_tail.clone() {
        tracing::warn!(
            segment = %torn.segment_path.display(),
            offset_bytes = torn.offset_bytes,
            seq = torn.seq,
            kind = %torn.kind,
            "torn tail: truncating the journal at the record that was being written"
        );
        if torn.kind.is_segment_level() {
            fs::remove_file(&torn.segment_path).map_err(|e| IoError::new("remove", &torn.segment_path, e))?;
            recovered.removed.push(torn.segment_path.clone());
            dir_changed = true;
        } else {
            zero_tail(&torn.segment_path, torn.offset_bytes)?;
        }
        recovered.torn_tail = Some(torn);
    }
    if dir_changed {
        sync_dir(&dir)?;
    }
    Ok(recovered)
}

/// Zeroes a segment from `offset_bytes` to its end, keeping its length, and makes that durable.
fn zero_tail(path: &Path, offset_bytes: u64) -> Result<(), IoError> {
    let file = OpenOptions::new().write(true).open(path).map_err(|e| IoError::new("open", path, e))?;
    let len = file.metadata().map_err(|e| IoError::new("stat", path, e))?.len();
    file.set_len(offset_bytes)
        .and_then(|()| file.set_len(len.max(offset_bytes)))
        .map_err(|e| IoError::new("truncate", path, e))?;
    file.sync_all().map_err(|e| IoError::new("fsync", path, e))
}

/// `<segment>.corrupt`, or `<segment>.corrupt.<n>` if an earlier recovery already used that name.
fn quarantine_path(path: &Path) -> PathBuf {
    let with_suffix = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let mut candidate = with_suffix(QUARANTINE_SUFFIX);
    let mut n = 1;
    while candidate.exists() {
        candidate = with_suffix(&format!("{QUARANTINE_SUFFIX}.{n}"));
        n += 1;
    }
    candidate
}

fn quarantine(path: &Path) -> Result<PathBuf, IoError> {
    let target = quarantine_path(path);
    fs::rename(path, &target).map_err(|e| IoError::new("rename", path, e))?;
    Ok(target)
}
