//! Snapshot files: verified one by one, grouped into sets that restore together, and restored.
//!
//! A shard's engine snapshot does not contain portfolio money: that lives in the ledger all shards
//! share, which is snapshotted separately under the pseudo-shard [`LEDGER_SNAPSHOT_SHARD`]. A state
//! can therefore only be restored from a *set*: one ledger snapshot and one engine snapshot per
//! shard, all taken at the same moment. The files carry no link to each other except their header
//! timestamp, so a set is a ledger snapshot together with, for every shard, a snapshot with the same
//! `timestamp_ns`. `simex-journal snapshot` writes sets that way; the ledger snapshot's sequence
//! (its file name) is the sum of the shards' sequences, which grows with every record so the
//! newest set sorts last.
//!
//! Each file is checked with `SnapshotStore::verify` (header, shard, epoch, name, length, payload
//! checksum). The ledger's snapshots carry the epoch of shard 0's journal.

use super::venue::{Venue, LEDGER_SNAPSHOT_SHARD};
use super::{catch_engine, ToolError};
use simex::runtime::{AtomicLedger, ShardEngine, SharedLedger};
use simex_engine::restore_ledger;
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

/// A ledger snapshot and one engine snapshot per shard, taken at the same moment.
#[derive(Debug)]
pub struct SnapshotSet<'a> {
    pub timestamp_ns: i64,
    pub ledger: &'a Snapshot,
    pub shards: BTreeMap<u32, &'a Snapshot>,
}

/// Every complete set, newest first.
pub fn sets<'a>(
    ledger: &'a StoreReport,
    shards: &'a BTreeMap<u32, StoreReport>,
    shard_ids: &[u32],
) -> Vec<SnapshotSet<'a>> {
    let mut found = Vec::new();
    for ledger_snapshot in ledger.valid().collect::<Vec<_>>().into_iter().rev() {
        let timestamp_ns = ledger_snapshot.timestamp_ns;
        let mut members = BTreeMap::new();
        for &shard in shard_ids {
            let member =
                shards.get(&shard).and_then(|report| report.valid().filter(|s| s.timestamp_ns == timestamp_ns).last());
            match member {
                Some(snapshot) => {
                    members.insert(shard, snapshot);
                }
                None => break,
            }
        }
        if members.len() == shard_ids.len() {
            found.push(SnapshotSet { timestamp_ns, ledger: ledger_snapshot, shards: members });
        }
    }
    found
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
    let mut ledger = new_ledger();
    let restored = catch_engine(|| restore_ledger(&mut ledger, &set.ledger.bytes))
        .and_then(|result| result.map_err(|e| e.to_string()));
    restored.map_err(|e| format!("ledger snapshot {}: {e}", set.ledger.path.display()))?;
    let mut engines = BTreeMap::new();
    for (&shard, snapshot) in &set.shards {
        let config = venue.engine_config(shard);
        let built = catch_engine(|| {
            ShardEngine::from_snapshot(config, venue.instruments.clone(), ledger.clone(), &snapshot.bytes)
        })
        .and_then(|result| result.map_err(|e| e.to_string()));
        let engine = built.map_err(|e| format!("snapshot {}: {e}", snapshot.path.display()))?;
        engines.insert(shard, engine);
    }
    Ok((ledger, engines))
}
