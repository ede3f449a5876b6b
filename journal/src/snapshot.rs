//! Snapshots: opaque state bytes as of a journal sequence, stored so that a crash at any moment leaves
//! either the old set of snapshots or the new one, and pruning of the journal they make redundant.
//!
//! A snapshot is written to `snapshot-<last_seq>.snap.tmp`, fsynced, renamed into place and the
//! directory fsynced, so a file under a final name is complete. It still may rot, so readers verify
//! both checksums and fall back to an older snapshot when the newest does not verify.
//!
//! **Pruning rule.** A journal segment is deleted only if every record in it is at or before the
//! *older* of the two newest snapshots that verify (and at or before the sequence the caller
//! passes). Recovery therefore still works if the newest snapshot turns out to be corrupt: the older
//! one verifies and the journal still holds every record after it. The newest segment is never
//! deleted, segments go strictly from the oldest (no gaps are made), and a segment whose header or
//! whose successor's header does not match this journal stops the pruning.

use crate::error::{IoError, SnapshotError, SnapshotFault};
use crate::format::{SegmentHeader, SnapshotHeader, SEGMENT_HEADER_LEN, SNAPSHOT_HEADER_LEN};
use crate::segment::{list_segments, shard_dir, sync_dir};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".tmp";
const NAME_DIGITS: usize = 20;

/// `snapshot-00000000000000001000.snap` for a snapshot that includes records up to 1000.
pub fn snapshot_file_name(last_seq: u64) -> String {
    format!("{PREFIX}{last_seq:0NAME_DIGITS$}{SUFFIX}")
}

fn parse_snapshot_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `<root>/snapshots/shard-<shard>`.
pub fn snapshot_dir(root: &Path, shard: u32) -> PathBuf {
    root.join("snapshots").join(format!("shard-{shard}"))
}

/// Snapshot store settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotConfig {
    /// Verified snapshots kept when a new one is written; at least 2.
    pub keep: usize,
}

impl Default for SnapshotConfig {
    fn default() -> SnapshotConfig {
        SnapshotConfig { keep: 2 }
    }
}

/// A snapshot file, by name (not yet verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub last_seq: u64,
    pub path: PathBuf,
}

/// A verified snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The last journal record the state includes; replay continues at `last_seq + 1`.
    pub last_seq: u64,
    pub timestamp_ns: i64,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// What [`SnapshotStore::prune_segments_before`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Segments whose records were all at or before this sequence could go; `None` when fewer than two
    /// snapshots verify, and nothing was deleted.
    pub bound_seq: Option<u64>,
    pub deleted: Vec<PathBuf>,
}

/// The snapshots of one shard, in `<root>/snapshots/shard-<shard>/`.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    root: PathBuf,
    dir: PathBuf,
    shard: u32,
    epoch: u64,
    config: SnapshotConfig,
}

impl SnapshotStore {
    /// Opens (creating it if needed) the snapshot directory and deletes unfinished snapshot files.
    pub fn open(root: &Path, shard: u32, epoch: u64, config: SnapshotConfig) -> Result<SnapshotStore, SnapshotError> {
        if config.keep < 2 {
            return Err(SnapshotError::InvalidConfig("keep at least 2 snapshots"));
        }
        let dir = snapshot_dir(root, shard);
        fs::create_dir_all(&dir).map_err(|e| IoError::new("create directory", &dir, e))?;
        sync_dir(root)?;
        sync_dir(&root.join("snapshots"))?;
        let mut removed = false;
        for entry in fs::read_dir(&dir).map_err(|e| IoError::new("list", &dir, e))? {
            let entry = entry.map_err(|e| IoError::new("list", &dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.strip_suffix(TEMP_SUFFIX).and_then(parse_snapshot_file_name).is_some() {
                tracing::warn!(file = %entry.path().display(), "removing a snapshot whose writing did not finish");
                fs::remove_file(entry.path()).map_err(|e| IoError::new("remove", entry.path(), e))?;
                removed = true;
            }
        }
        if removed {
            sync_dir(&dir)?;
        }
        Ok(SnapshotStore { root: root.to_path_buf(), dir, shard, epoch, config })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a snapshot of the state after record `last_seq` durably (temporary file, fsync, rename,
    /// directory fsync), then deletes snapshots older than the newest `keep` that verify.
    pub fn write(&self, last_seq: u64, timestamp_ns: i64, bytes: &[u8]) -> Result<SnapshotInfo, SnapshotError> {
        let name = snapshot_file_name(last_seq);
        let path = self.dir.join(&name);
        let temp = self.dir.join(format!("{name}{TEMP_SUFFIX}"));
        let header = SnapshotHeader {
            shard: self.shard,
            epoch: self.epoch,
            last_seq,
            timestamp_ns,
            payload_len_bytes: bytes.len() as u64,
            payload_crc32c: crc32c::crc32c(bytes),
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(|e| IoError::new("create", &temp, e))?;
        file.write_all(&header.encode())
            .and_then(|()| file.write_all(bytes))
            .map_err(|e| IoError::new("write", &temp, e))?;
        file.sync_all().map_err(|e| SnapshotError::SyncFailed(IoError::new("fsync", &temp, e)))?;
        drop(file);
        fs::rename(&temp, &path).map_err(|e| IoError::new("rename", &temp, e))?;
        sync_dir(&self.dir).map_err(SnapshotError::SyncFailed)?;
        self.prune_snapshots()?;
        Ok(SnapshotInfo { last_seq, path })
    }

    /// The snapshot files, oldest first, by name only.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let mut snapshots = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| IoError::new("list", &self.dir, e))? {
            let entry = entry.map_err(|e| IoError::new("list", &self.dir, e))?;
            if let Some(last_seq) = entry.file_name().to_str().and_then(parse_snapshot_file_name) {
                snapshots.push(SnapshotInfo { last_seq, path: entry.path() });
            }
        }
        snapshots.sort_by_key(|snapshot| snapshot.last_seq);
        Ok(snapshots)
    }

    /// Reads a snapshot and checks everything: header, shard, epoch, name, length, payload checksum.
    pub fn verify(&self, info: &SnapshotInfo) -> Result<Snapshot, SnapshotError> {
        let mut bytes = fs::read(&info.path).map_err(|e| IoError::new("read", &info.path, e))?;
        let corrupt = |fault| SnapshotError::Corrupt { path: info.path.clone(), fault };
        let header = SnapshotHeader::decode(&bytes).map_err(|fault| corrupt(SnapshotFault::Header(fault)))?;
        if header.shard != self.shard {
            return Err(corrupt(SnapshotFault::WrongShard { expected: self.shard, found: header.shard }));
        }
        if header.epoch != self.epoch {
            return Err(corrupt(SnapshotFault::WrongEpoch { expected: self.epoch, found: header.epoch }));
        }
        if header.last_seq != info.last_seq {
            return Err(corrupt(SnapshotFault::NameMismatch { name_seq: info.last_seq, header_seq: header.last_seq }));
        }
        let file_bytes = (bytes.len() - SNAPSHOT_HEADER_LEN) as u64;
        if header.payload_len_bytes != file_bytes {
            return Err(corrupt(SnapshotFault::LengthMismatch { header_bytes: header.payload_len_bytes, file_bytes }));
        }
        if crc32c::crc32c(&bytes[SNAPSHOT_HEADER_LEN..]) != header.payload_crc32c {
            return Err(corrupt(SnapshotFault::PayloadChecksum));
        }
        bytes.drain(..SNAPSHOT_HEADER_LEN);
        Ok(Snapshot { last_seq: header.last_seq, timestamp_ns: header.timestamp_ns, path: info.path.clone(), bytes })
    }

    /// The newest snapshot that verifies; corrupt or unreadable newer ones are skipped with a warning.
    pub fn latest_valid(&self) -> Result<Option<Snapshot>, SnapshotError> {
        Ok(self.newest_valid(1)?.pop())
    }

    /// Up to `count` verified snapshots, newest first.
    fn newest_valid(&self, count: usize) -> Result<Vec<Snapshot>, SnapshotError> {
        let mut valid = Vec::new();
        for info in self.list()?.iter().rev() {
            if valid.len() == count {
                break;
            }
            match self.verify(info) {
                Ok(snapshot) => valid.push(snapshot),
                Err(error) => {
                    tracing::warn!(snapshot = %info.path.display(), %error, "skipping a snapshot that does not verify")
                }
            }
        }
        Ok(valid)
    }

    /// Deletes the snapshot files older than the newest `keep` that verify (none if fewer verify).
    fn prune_snapshots(&self) -> Result<(), SnapshotError> {
        let kept = self.newest_valid(self.config.keep)?;
        if kept.len() < self.config.keep {
            return Ok(());
        }
        let Some(oldest_kept) = kept.last().map(|snapshot| snapshot.last_seq) else { return Ok(()) };
        let mut removed = false;
        for info in self.list()?.into_iter().filter(|info| info.last_seq < oldest_kept) {
            fs::remove_file(&info.path).map_err(|e| IoError::new("remove", &info.path, e))?;
            removed = true;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Deletes the journal segments (of `<root>/shard-<shard>`) that recovery can no longer need: those
    /// whose records are all at or before both `snapshot_seq` and the older of the two newest
    /// snapshots that verify. See the module documentation for why the older one.
    pub fn prune_segments_before(&self, snapshot_seq: u64) -> Result<PruneReport, SnapshotError> {
        let valid = self.newest_valid(2)?;
        let [_, older] = valid.as_slice() else { return Ok(PruneReport::default()) };
        let bound_seq = snapshot_seq.min(older.last_seq);
        let journal_dir = shard_dir(&self.root, self.shard);
        let (segments, _) = list_segments(&journal_dir)?;
        let mut report = PruneReport { bound_seq: Some(bound_seq), deleted: Vec::new() };
        for pair in segments.windows(2) {
            let (segment, next) = (&pair[0], &pair[1]);
            // The segment's last record is the one before its successor's first.
            if next.first_seq > bound_seq.saturating_add(1) {
                break;
            }
            let ours = |path: &Path, first_seq: u64| {
                self.read_segment_header(path)
                    .is_some_and(|h| h.shard == self.shard && h.epoch == self.epoch && h.first_seq == first_seq)
            };
            if !ours(&segment.path, segment.first_seq) || !ours(&next.path, next.first_seq) {
                tracing::warn!(segment = %segment.path.display(), "not pruning past a segment that does not verify");
                break;
            }
            fs::remove_file(&segment.path).map_err(|e| IoError::new("remove", &segment.path, e))?;
            report.deleted.push(segment.path.clone());
        }
        if !report.deleted.is_empty() {
            sync_dir(&journal_dir)?;
        }
        Ok(report)
    }

    fn read_segment_header(&self, path: &Path) -> Option<SegmentHeader> {
        let mut bytes = [0u8; SEGMENT_HEADER_LEN];
        File::open(path).and_then(|file| file.read_exact_at(&mut bytes, 0)).ok()?;
        SegmentHeader::decode(&bytes).ok()
    }
}
