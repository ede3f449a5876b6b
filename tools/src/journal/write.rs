//! `snapshot`: replays the whole journal and writes a fresh snapshot set.
//!
//! Useful before pruning by hand, after a recovery that replayed a long journal, or to check that a
//! journal's state can be snapshotted and restored at all. The set is one engine snapshot per shard
//! (`Engine::snapshot_bytes`) and one of the shared ledger (`ledger_snapshot_bytes`, under the
//! pseudo-shard 65535), all written through the journal's `SnapshotStore` (temporary file, fsync,
//! rename, directory fsync; older snapshots beyond the newest two are pruned) with the same
//! timestamp: the time of the newest record replayed. That shared timestamp is what makes them a
//! set (see `snapshots`). The ledger snapshot's sequence is the sum of the shards' sequences.
//!
//! Before writing, the engines must pass `check_invariants`: a journal cut in the middle of a
//! command (a torn tail between an accepted order and its fills) leaves a state no snapshot may
//! hold, and restoring would refuse it. Run this only while the venue is stopped.

use super::progress::Progress;
use super::replay::{resolve, Replayer};
use super::venue::{Venue, LEDGER_SNAPSHOT_SHARD};
use super::{catch_engine, ToolError, EXIT_OK};
use crate::out;
use crate::script::time::format_rfc3339;
use simex_engine::ledger_snapshot_bytes;
use simex_journal::{SnapshotConfig, SnapshotError, SnapshotStore};
use std::io::Write;

fn store_error(error: SnapshotError) -> ToolError {
    match error {
        SnapshotError::Io(e) => e.into(),
        other => ToolError { kind: super::ErrorKind::Io, message: other.to_string() },
    }
}

/// Runs `snapshot`. Returns the exit status.
pub fn run(venue: &Venue, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8, ToolError> {
    let mut epochs = Vec::new();
    for &shard in &venue.shards {
        let epoch = venue.epoch(shard).ok_or_else(|| {
            ToolError::usage(format!(
                "shard {shard} has no segment with a readable header, so its journal epoch is unknown; run verify"
            ))
        })?;
        epochs.push((shard, epoch));
    }
    let target = resolve(venue, None, None)?;
    let total_bytes: u64 = venue.shards.iter().map(|&k| venue.segment_bytes(k)).sum();
    let mut replayer = Replayer::new(venue, &target, true, Progress::bytes("replay", total_bytes))?;
    replayer.advance(&target)?;
    for warning in &replayer.warnings {
        out!(err, "simex-journal: warning: {warning}")?;
    }
    let newest_record_ns = replayer.shards.iter().filter_map(|s| s.last_timestamp_ns).max();
    let Some(timestamp_ns) = newest_record_ns.max(replayer.snapshot_time_ns) else {
        out!(out, "the journal holds no records: nothing to snapshot")?;
        return Ok(EXIT_OK);
    };
    for shard in &replayer.shards {
        catch_engine(|| shard.engine.check_invariants()).map_err(|why| {
            ToolError::damaged(format!(
                "shard {} at sequence {} is not a state a snapshot may hold (the journal probably ends in the middle of \
                 a command): {why}",
                shard.shard,
                shard.engine.last_seq()
            ))
        })?;
    }
    out!(out, "replayed {} up to {}", venue.root.display(), format_rfc3339(timestamp_ns))?;
    let mut seq_sum = 0u64;
    for (shard, (_, epoch)) in replayer.shards.iter().zip(&epochs) {
        let store =
            SnapshotStore::open(&venue.root, shard.shard, *epoch, SnapshotConfig::default()).map_err(store_error)?;
        let bytes = shard.engine.snapshot_bytes();
        let last_seq = shard.engine.last_seq();
        seq_sum += last_seq;
        let info = store.write(last_seq, timestamp_ns, &bytes).map_err(store_error)?;
        out!(
            out,
            "wrote {} (shard {}, sequence {last_seq}, {} bytes, state hash {:016x})",
            info.path.display(),
            shard.shard,
            bytes.len(),
            shard.engine.state_hash()
        )?;
    }
    let ledger_epoch = epochs.first().map_or(0, |(_, epoch)| *epoch);
    let store = SnapshotStore::open(&venue.root, LEDGER_SNAPSHOT_SHARD, ledger_epoch, SnapshotConfig::default())
        .map_err(store_error)?;
    let bytes = ledger_snapshot_bytes(&replayer.ledger);
    let info = store.write(seq_sum, timestamp_ns, &bytes).map_err(store_error)?;
    out!(out, "wrote {} (ledger, {} accounts, {} bytes)", info.path.display(), replayer.accounts().len(), bytes.len())?;
    out!(out, "snapshot set at {}: combined hash {:016x}", format_rfc3339(timestamp_ns), replayer.combined_hash())?;
    Ok(EXIT_OK)
}
