//! `snapshot`: replays the whole journal and writes a fresh snapshot set.
//!
//! Useful before pruning by hand, after a recovery that replayed a long journal, or to check that a
//! journal's state can be snapshotted and restored at all. The set is one engine snapshot per shard
//! (`Engine::snapshot_bytes`) and one of the shared ledger with the set's manifest (under the
//! pseudo-shard 65535), written exactly as the venue writes its own sets (`simex::runtime::Stores`:
//! temporary file, fsync, rename, directory fsync; a shard whose newest snapshot is already at its
//! last sequence keeps it), stamped with the time of the newest record replayed.
//!
//! Before writing, the engines must pass `check_invariants`: a journal cut in the middle of a
//! command (a torn tail between an accepted order and its fills) leaves a state no snapshot may
//! hold, and restoring would refuse it. Run this only while the venue is stopped.

use super::progress::Progress;
use super::replay::{resolve, Replayer};
use super::venue::Venue;
use super::{catch_engine, ToolError, EXIT_OK};
use crate::out;
use crate::script::time::format_rfc3339;
use simex::runtime::Stores;
use simex_engine::ledger_snapshot_bytes;
use simex_journal::snapshot::snapshot_file_name;
use simex_journal::{SnapshotConfig, SnapshotError};
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
    let stores = Stores::open(&venue.root, &epochs, SnapshotConfig::default().keep).map_err(store_error)?;
    let parts: Vec<(u32, u64, Vec<u8>)> =
        replayer.shards.iter().map(|s| (s.shard, s.engine.last_seq(), s.engine.snapshot_bytes())).collect();
    let members =
        stores.write_set(timestamp_ns, &parts, &ledger_snapshot_bytes(&replayer.ledger)).map_err(store_error)?;
    for (member, shard) in members.iter().zip(&replayer.shards) {
        let written = if member.timestamp_ns == timestamp_ns { "wrote" } else { "kept" };
        out!(
            out,
            "{written} {} (shard {}, sequence {}, state hash {:016x})",
            stores.shards[&member.shard].dir().join(snapshot_file_name(member.last_seq)).display(),
            member.shard,
            member.last_seq,
            shard.engine.state_hash()
        )?;
    }
    let seq_sum: u64 = members.iter().map(|m| m.last_seq).sum();
    out!(
        out,
        "wrote {} (ledger and set manifest, {} accounts)",
        stores.ledger.dir().join(snapshot_file_name(seq_sum)).display(),
        replayer.accounts().len()
    )?;
    out!(out, "snapshot set at {}: combined hash {:016x}", format_rfc3339(timestamp_ns), replayer.combined_hash())?;
    Ok(EXIT_OK)
}
