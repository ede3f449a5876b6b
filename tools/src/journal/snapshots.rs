//! Snapshot files: verified one by one, grouped into sets that restore together, and restored.
//!
//! A state is restored from a *set*: one ledger snapshot (pseudo-shard [`LEDGER_SNAPSHOT_SHARD`]) and
//! one engine snapshot per shard with the same header timestamp. What a set is, and how one is
//! restored, is the venue's own definition (`simex::runtime`'s snapshot sets), used here unchanged,
//! so the tool restores exactly what the venue would. This module adds the per-file report.
//!
//! Each file is checked with `SnapshotStore::verify` (header, shard, epoch, name, length, payload
//! checksum). The ledger's snapshots carry the epoch of shard 0's journal.

use super::venue::{Venue, LEDGER_SNAPSHOT_SHARD};
use super::{catch_engine, ToolError};
pub use simex::runtime::SnapshotSet;
use simex::runtime::{complete_sets, restore_set, AtomicLedger, ShardEngine, SharedLedger};
use simex_journal::format::{HeaderFault, SnapshotHeader, SNAPSHOT_HEADER_LEN};
use simex_journal::{snapshot_dir, Snapshot, SnapshotConfig, SnapshotError, SnapshotFault, SnapshotStore};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Portfolio ids the rebuilt shared ledger holds, as the venue's default `portfolios_max`.
pub const PORTFOLIOS_MAX: usize = 1 << 16;

/// One snapshot file and whether it verifies.
#[derive(Debug)]
pub struct SnapshotCheck {
    pub path: PathBuf,
    pub last_seq: u64,
    pub result: Result<Snapshot, String>,
}

/// The snapshot files of one store.
#[derive(Debug, Default)]
pub struct StoreReport {
    pub files: Vec<SnapshotCheck>,
}

impl StoreReport {
    /// Verified snapshots, oldest first.
    pub fn valid(&self) -> impl Iterator<Item = &Snapshot> {
        self.files.iter().filter_map(|check| check.result.as_ref().ok())
    }

    pub fn newest_valid(&self) -> Option<&Snapshot> {
        self.valid().last()
    }
}

/// Verifies every snapshot of store `shard` (a shard id or [`LEDGER_SNAPSHOT_SHARD`]) against
/// `epoch` (when unknown, the epoch the files themselves carry). A missing directory is an empty
/// report; the store is opened only if the directory exists, so nothing is created.
pub fn check_store(root: &Path, shard: u32, epoch: Option<u64>) -> Result<StoreReport, ToolError> {
    let dir = snapshot_dir(root, shard);
    if !dir.is_dir() {
        return Ok(StoreReport::default());
    }
    let epoch = epoch.or_else(|| first_header_epoch(&dir)).unwrap_or(0);
    let store = SnapshotStore::open(root, shard, epoch, SnapshotConfig::default()).map_err(snapshot_error)?;
    let mut report = StoreReport::default();
    for info in store.list().map_err(snapshot_error)? {
        let result = store.verify(&info).map_err(|e| describe(&e));
        report.files.push(SnapshotCheck { path: info.path, last_seq: info.last_seq, result });
    }
    Ok(report)
}

/// A snapshot that does not verify, in words: which file and what is wrong with it.
fn describe(error: &SnapshotError) -> String {
    let SnapshotError::Corrupt { path, fault } = error else { return error.to_string() };
    let what = match *fault {
        SnapshotFault::Header(HeaderFault::TooShort { len_bytes }) => {
            format!("the file of {len_bytes} bytes is shorter than a snapshot header")
        }
        SnapshotFault::Header(HeaderFault::BadMagic) => "the header has the wrong magic".to_string(),
        SnapshotFault::Header(HeaderFault::UnsupportedVersion { found }) => {
            format!("snapshot format version {found} is not supported")
        }
        SnapshotFault::Header(HeaderFault::BadChecksum) => "header checksum mismatch".to_string(),
        SnapshotFault::Header(HeaderFault::BadLayout) => "the header has an impossible field".to_string(),
        SnapshotFault::WrongShard { expected, found } => {
            format!("snapshot of shard {found}, expected shard {expected}")
        }
        SnapshotFault::WrongEpoch { expected, found } => {
            format!("stale snapshot of epoch {found}, the journal's epoch is {expected}")
        }
        SnapshotFault::NameMismatch { name_seq, header_seq } => {
            format!("file name says sequence {name_seq}, header says {header_seq}")
        }
        SnapshotFault::LengthMismatch { header_bytes, file_bytes } => {
            format!("the header says {header_bytes} bytes of state, the file holds {file_bytes}")
        }
        SnapshotFault::PayloadChecksum => "payload checksum mismatch".to_string(),
    };
    format!("snapshot {}: {what}", path.display())
}

fn snapshot_error(error: simex_journal::SnapshotError) -> ToolError {
    match error {
        simex_journal::SnapshotError::Io(e) => e.into(),
        other => ToolError::damaged(other.to_string()),
    }
}

/// The epoch in the header of the first snapshot file of `dir` that has a readable header.
fn first_header_epoch(dir: &Path) -> Option<u64> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect();
    names.sort();
    names.iter().rev().find_map(|path| {
        let mut bytes = [0u8; SNAPSHOT_HEADER_LEN];
        File::open(path).and_then(|mut f| f.read_exact(&mut bytes)).ok()?;
        SnapshotHeader::decode(&bytes).ok().map(|h| h.epoch)
    })
}

/// Every complete set, newest first.
pub fn sets<'a>(
    ledger: &'a StoreReport,
    shards: &'a BTreeMap<u32, StoreReport>,
    shard_ids: &[u32],
) -> Vec<SnapshotSet<'a>> {
    let ledger: Vec<&Snapshot> = ledger.valid().collect();
    let shards = shards.iter().map(|(&k, report)| (k, report.valid().collect())).collect();
    complete_sets(&ledger, &shards, shard_ids)
}

/// Reads and verifies the ledger's and every shard's snapshots.
pub fn check_all(venue: &Venue) -> Result<(StoreReport, BTreeMap<u32, StoreReport>), ToolError> {
    let ledger_epoch = venue.shards.first().and_then(|&first| venue.epoch(first));
    let ledger = check_store(&venue.root, LEDGER_SNAPSHOT_SHARD, ledger_epoch)?;
    let mut shards = BTreeMap::new();
    for &shard in &venue.shards {
        shards.insert(shard, check_store(&venue.root, shard, venue.epoch(shard))?);
    }
    Ok((ledger, shards))
}

/// A fresh shared ledger, as the venue creates it.
pub fn new_ledger() -> SharedLedger {
    SharedLedger(AtomicLedger::new(PORTFOLIOS_MAX))
}

/// Builds the shared ledger and every shard's engine from a set. The error says which file refused.
pub fn restore(venue: &Venue, set: &SnapshotSet) -> Result<(SharedLedger, BTreeMap<u32, ShardEngine>), String> {
    catch_engine(|| restore_set(set, |shard| venue.engine_config(shard), &venue.instruments, PORTFOLIOS_MAX))
        .and_then(|result| result)
}
