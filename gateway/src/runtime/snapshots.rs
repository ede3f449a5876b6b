//! Snapshot sets: the venue's state at one moment, written so recovery replays only what came after.
//!
//! A shard's engine snapshot does not hold portfolio money: that lives in the ledger all shards
//! share. A state is therefore restored from a *set*: one ledger snapshot (under the pseudo-shard
//! [`LEDGER_SNAPSHOT_SHARD`]) and one engine snapshot per shard, all taken at one cut. The ledger
//! snapshot's payload begins with the set's *manifest*, naming each member by shard, sequence and
//! timestamp, followed by the ledger bytes. The ledger snapshot is written last, so it is the set's
//! commit record: shard snapshots no manifest names are the remains of a set a crash interrupted, and
//! recovery removes them. A shard that journaled nothing since the previous set keeps its snapshot
//! file, which both manifests name. The ledger snapshot's sequence (its file name) is the sum of the
//! members' sequences, which grows with every record, so the newest set sorts last.
//!
//! **Pruning.** After a set is written, each shard's journal segments are pruned up to that shard's
//! sequence in the *older* of the two newest complete sets (and `SnapshotStore` bounds it again by
//! its own two newest snapshots). Recovery thus still finds every record it needs if the newest set
//! turns out not to restore.

use super::ledger::{AtomicLedger, SharedLedger};
use super::shard::ShardEngine;
use bytemuck::{Pod, Zeroable};
use simex_engine::{restore_ledger, EngineConfig, InstrumentTable};
use simex_journal::{Snapshot, SnapshotConfig, SnapshotError, SnapshotStore};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The snapshot store id under which the shared ledger's snapshots are kept.
pub const LEDGER_SNAPSHOT_SHARD: u32 = 65_535;

/// When the venue writes snapshot sets. A set is written when either limit is reached and at least
/// one record was journaled since the last set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotSettings {
    /// Records (over all shards) between two sets; 0 disables this trigger.
    pub every_records: u64,
    /// Milliseconds between two sets; 0 disables this trigger.
    pub every_ms: u64,
    /// Complete sets kept (at least 2).
    pub keep: usize,
    /// Delete journal segments that complete sets make redundant. Off keeps the whole journal (for
    /// audit, or to replay from the first record); snapshots then only shorten recovery.
    pub prune: bool,
    /// Write a set at a clean shutdown, so that the next start replays nothing.
    pub on_shutdown: bool,
}

impl Default for SnapshotSettings {
    /// Every 500,000 records or 10 minutes: recovery replays at most about 500,000 records after the
    /// newest set (about a second at the replay rates in benches/README.md), and a quiet venue still
    /// gets a fresh set regularly. A set of a book of a thousand orders pauses the shards for well
    /// under a millisecond.
    fn default() -> SnapshotSettings {
        SnapshotSettings { every_records: 500_000, every_ms: 600_000, keep: 2, prune: true, on_shutdown: true }
    }
}

/// One member of a set, as the manifest names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub shard: u32,
    pub last_seq: u64,
    pub timestamp_ns: i64,
}

const MANIFEST_MAGIC: [u8; 8] = *b"SMXSET\0\0";
const MANIFEST_VERSION: u32 = 1;

/// Manifest layout, little-endian: this header, then `members` entries, then the ledger bytes.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct ManifestHeader {
    magic: [u8; 8],
    version: u32,
    members: u32,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct ManifestEntry {
    shard: u32,
    reserved: u32,
    last_seq: u64,
    timestamp_ns: i64,
}

/// The ledger snapshot's payload: the manifest, then the ledger bytes.
pub fn ledger_payload(members: &[Member], ledger_bytes: &[u8]) -> Vec<u8> {
    let header = ManifestHeader {
        magic: MANIFEST_MAGIC,
        version: MANIFEST_VERSION.to_le(),
        members: (members.len() as u32).to_le(),
    };
    let entry_len = std::mem::size_of::<ManifestEntry>();
    let mut out = Vec::with_capacity(std::mem::size_of::<ManifestHeader>() + members.len() * entry_len);
    out.extend_from_slice(bytemuck::bytes_of(&header));
    for member in members {
        let entry = ManifestEntry {
            shard: member.shard.to_le(),
            reserved: 0,
            last_seq: member.last_seq.to_le(),
            timestamp_ns: member.timestamp_ns.to_le(),
        };
        out.extend_from_slice(bytemuck::bytes_of(&entry));
    }
    out.extend_from_slice(ledger_bytes);
    out
}

/// Splits a ledger snapshot's payload into the manifest and the ledger bytes.
pub fn parse_ledger_payload(payload: &[u8]) -> Result<(Vec<Member>, &[u8]), String> {
    let header_len = std::mem::size_of::<ManifestHeader>();
    let entry_len = std::mem::size_of::<ManifestEntry>();
    let header: ManifestHeader = payload
        .get(..header_len)
        .map(bytemuck::pod_read_unaligned)
        .ok_or("the ledger snapshot is too short for a set manifest")?;
    if header.magic != MANIFEST_MAGIC || u32::from_le(header.version) != MANIFEST_VERSION {
        return Err("the ledger snapshot does not start with a set manifest of a known version".to_string());
    }
    let count = u32::from_le(header.members) as usize;
    let end = count
        .checked_mul(entry_len)
        .and_then(|n| n.checked_add(header_len))
        .filter(|&end| end <= payload.len())
        .ok_or("the set manifest runs past the end of the ledger snapshot")?;
    let members = payload[header_len..end]
        .chunks_exact(entry_len)
        .map(|chunk| {
            let entry: ManifestEntry = bytemuck::pod_read_unaligned(chunk);
            Member {
                shard: u32::from_le(entry.shard),
                last_seq: u64::from_le(entry.last_seq),
                timestamp_ns: i64::from_le(entry.timestamp_ns),
            }
        })
        .collect();
    Ok((members, &payload[end..]))
}

/// A ledger snapshot and the engine snapshot of every shard its manifest names.
#[derive(Debug)]
pub struct SnapshotSet<'a> {
    pub timestamp_ns: i64,
    pub ledger: &'a Snapshot,
    /// The ledger's own bytes (after the manifest).
    pub ledger_bytes: &'a [u8],
    pub shards: BTreeMap<u32, &'a Snapshot>,
}

/// Every complete set among verified snapshots (each list oldest first), newest set first: a ledger
/// snapshot whose manifest names exactly `shard_ids`, each member present and verified.
pub fn complete_sets<'a>(
    ledger: &[&'a Snapshot],
    shards: &BTreeMap<u32, Vec<&'a Snapshot>>,
    shard_ids: &[u32],
) -> Vec<SnapshotSet<'a>> {
    let mut found = Vec::new();
    for &ledger_snapshot in ledger.iter().rev() {
        let Ok((members, ledger_bytes)) = parse_ledger_payload(&ledger_snapshot.bytes) else { continue };
        if !members.iter().map(|m| m.shard).eq(shard_ids.iter().copied()) {
            continue;
        }
        let found_members: BTreeMap<u32, &Snapshot> = members
            .iter()
            .filter_map(|m| {
                let list = shards.get(&m.shard)?;
                let snapshot = list.iter().find(|s| s.last_seq == m.last_seq && s.timestamp_ns == m.timestamp_ns)?;
                Some((m.shard, *snapshot))
            })
            .collect();
        if found_members.len() == shard_ids.len() {
            found.push(SnapshotSet {
                timestamp_ns: ledger_snapshot.timestamp_ns,
                ledger: ledger_snapshot,
                ledger_bytes,
                shards: found_members,
            });
        }
    }
    found
}

/// Builds a fresh shared ledger and every shard's engine from a set. The error names the file that
/// refused.
pub fn restore_set(
    set: &SnapshotSet,
    engine_config: impl Fn(u32) -> EngineConfig,
    instruments: &InstrumentTable,
    portfolios_max: usize,
) -> Result<(SharedLedger, BTreeMap<u32, ShardEngine>), String> {
    let mut ledger = SharedLedger(AtomicLedger::new(portfolios_max));
    restore_ledger(&mut ledger, set.ledger_bytes)
        .map_err(|e| format!("ledger snapshot {}: {e}", set.ledger.path.display()))?;
    let mut engines = BTreeMap::new();
    for (&shard, snapshot) in &set.shards {
        let engine =
            ShardEngine::from_snapshot(engine_config(shard), instruments.clone(), ledger.clone(), &snapshot.bytes)
                .map_err(|e| format!("snapshot {}: {e}", snapshot.path.display()))?;
        engines.insert(shard, engine);
    }
    Ok((ledger, engines))
}

/// The snapshot stores of a venue: one per shard (with that shard's journal epoch) and the ledger's
/// (with shard 0's epoch).
pub struct Stores {
    pub shards: BTreeMap<u32, SnapshotStore>,
    pub ledger: SnapshotStore,
}

/// Verified snapshots of every store, oldest first.
pub struct Verified {
    pub ledger: Vec<Snapshot>,
    pub shards: BTreeMap<u32, Vec<Snapshot>>,
}

impl Verified {
    pub fn sets(&self) -> Vec<SnapshotSet<'_>> {
        let ledger: Vec<&Snapshot> = self.ledger.iter().collect();
        let shards = self.shards.iter().map(|(&k, list)| (k, list.iter().collect())).collect();
        let ids: Vec<u32> = self.shards.keys().copied().collect();
        complete_sets(&ledger, &shards, &ids)
    }
}

impl Stores {
    /// Opens (creating if needed) the stores of shards `epochs` (shard, journal epoch), in order.
    pub fn open(root: &Path, epochs: &[(u32, u64)], keep: usize) -> Result<Stores, SnapshotError> {
        let config = SnapshotConfig { keep };
        let mut shards = BTreeMap::new();
        for &(shard, epoch) in epochs {
            shards.insert(shard, SnapshotStore::open(root, shard, epoch, config.clone())?);
        }
        let ledger_epoch = epochs.first().map_or(0, |&(_, epoch)| epoch);
        let ledger = SnapshotStore::open(root, LEDGER_SNAPSHOT_SHARD, ledger_epoch, config)?;
        Ok(Stores { shards, ledger })
    }

    /// Reads and verifies every snapshot; those that do not verify are left out with a warning.
    pub fn verified(&self) -> Result<Verified, SnapshotError> {
        let read = |store: &SnapshotStore| -> Result<Vec<Snapshot>, SnapshotError> {
            let mut valid = Vec::new();
            for info in store.list()? {
                match store.verify(&info) {
                    Ok(snapshot) => valid.push(snapshot),
                    Err(error) => tracing::warn!(%error, "a snapshot does not verify; not using it"),
                }
            }
            Ok(valid)
        };
        let mut shards = BTreeMap::new();
        for (&shard, store) in &self.shards {
            shards.insert(shard, read(store)?);
        }
        Ok(Verified { ledger: read(&self.ledger)?, shards })
    }

    /// Removes shard snapshots that no ledger manifest names and that are newer than every named
    /// one: the remains of a set whose writing a crash interrupted. Left alone, they would count
    /// towards each store's `keep` and push out members of complete sets. Returns the files removed.
    pub fn remove_incomplete(&self, verified: &Verified) -> Vec<PathBuf> {
        let named: Vec<Member> =
            verified.ledger.iter().filter_map(|l| parse_ledger_payload(&l.bytes).ok()).flat_map(|(m, _)| m).collect();
        let mut removed = Vec::new();
        for (&shard, snapshots) in &verified.shards {
            let newest_named = named.iter().filter(|m| m.shard == shard).map(|m| m.last_seq).max();
            let orphans = snapshots.iter().filter(|s| {
                newest_named.is_none_or(|seq| s.last_seq > seq)
                    && !named.iter().any(|m| m.shard == shard && m.timestamp_ns == s.timestamp_ns)
            });
            for snapshot in orphans {
                match std::fs::remove_file(&snapshot.path) {
                    Ok(()) => removed.push(snapshot.path.clone()),
                    Err(error) => tracing::warn!(path = %snapshot.path.display(), %error, "could not remove"),
                }
            }
        }
        removed
    }

    /// Writes a set durably: each shard's snapshot (unless its newest verified snapshot is already at
    /// that sequence: then the manifest names that one), then the ledger's with the manifest, which
    /// completes the set. `shards` holds (shard, last sequence, engine snapshot bytes).
    pub fn write_set(
        &self,
        timestamp_ns: i64,
        shards: &[(u32, u64, Vec<u8>)],
        ledger_bytes: &[u8],
    ) -> Result<Vec<Member>, SnapshotError> {
        let mut members = Vec::with_capacity(shards.len());
        for (shard, last_seq, bytes) in shards {
            let store = self.shards.get(shard).expect("a store per shard");
            let existing = store.latest_valid()?.filter(|s| s.last_seq == *last_seq);
            let member_timestamp_ns = match existing {
                Some(snapshot) => snapshot.timestamp_ns,
                None => {
                    store.write(*last_seq, timestamp_ns, bytes)?;
                    timestamp_ns
                }
            };
            members.push(Member { shard: *shard, last_seq: *last_seq, timestamp_ns: member_timestamp_ns });
        }
        let seq_sum = members.iter().map(|m| m.last_seq).sum();
        self.ledger.write(seq_sum, timestamp_ns, &ledger_payload(&members, ledger_bytes))?;
        Ok(members)
    }

    /// Deletes journal segments that no complete set still needs (see the module documentation).
    /// Returns the number of segment files deleted.
    pub fn prune_journals(&self) -> Result<usize, SnapshotError> {
        let verified = self.verified()?;
        let sets = verified.sets();
        let Some(older) = sets.get(1) else { return Ok(0) };
        let mut deleted = 0;
        for (shard, store) in &self.shards {
            let Some(member) = older.shards.get(shard) else { continue };
            deleted += store.prune_segments_before(member.last_seq)?.deleted.len();
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_back_and_damage_is_an_error() {
        let members =
            [Member { shard: 0, last_seq: 10, timestamp_ns: 5 }, Member { shard: 1, last_seq: 0, timestamp_ns: -1 }];
        let payload = ledger_payload(&members, b"ledger");
        let (read, rest) = parse_ledger_payload(&payload).unwrap();
        assert_eq!(read, members);
        assert_eq!(rest, b"ledger");
        assert!(parse_ledger_payload(&payload[..20]).is_err());
        assert!(parse_ledger_payload(b"ledger bytes without a manifest").is_err());
        let mut huge = payload.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_ledger_payload(&huge).is_err());
    }
}
