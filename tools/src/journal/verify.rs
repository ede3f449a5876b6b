//! `verify`: is this journal whole, and if not, where exactly is it not?
//!
//! The first thing to run after a crash. Every segment of every shard is read with the journal's
//! own reader (the checks recovery makes: headers, checksums, sequence continuity, torn tail or
//! corruption), every record is decoded with the engine's codec, and every snapshot file is verified
//! with the `SnapshotStore`; the newest complete snapshot set is also restored into engines, which
//! checks its contents the way recovery would use them. The journal cannot see the loss of whole
//! segments at its end; comparing its last sequence with the newest snapshot's catches that too.
//!
//! The verdict is the exit status: 0 when the venue will start by itself (a torn tail is what a
//! crash leaves and recovery truncates it), 1 when it will not (or a snapshot it depends on is
//! unusable). Each shard's first problem is printed with its segment, offset and sequence.

use super::dump::symbol_of;
use super::progress::Progress;
use super::records::{Damage, ShardRecords, Stop};
use super::snapshots::{self, StoreReport};
use super::venue::{list, Venue};
use super::{ToolError, EXIT_DAMAGED, EXIT_OK};
use crate::out;
use crate::script::time::format_rfc3339;
use simex_engine::SymbolId;
use simex_journal::segment::list_segments;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::PathBuf;

/// What reading one shard found.
#[derive(Debug, Default)]
struct ShardScan {
    segments: usize,
    records: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
    damage: Option<Damage>,
    /// Symbols the shard has events for but does not own under the assignment used.
    foreign_symbols: BTreeSet<SymbolId>,
    temporaries: Vec<PathBuf>,
    quarantined: Vec<PathBuf>,
}

fn scan_shard(venue: &Venue, shard: u32, progress: &mut Progress, done_bytes: u64) -> Result<ShardScan, ToolError> {
    let dir = simex_journal::shard_dir(&venue.root, shard);
    let (_, temporaries) = list_segments(&dir)?;
    let mut quarantined: Vec<PathBuf> = fs::read_dir(&dir)
        .map_err(|e| ToolError::io("list", &dir, &e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains(".seg.corrupt")))
        .collect();
    quarantined.sort();
    let mut records = ShardRecords::open(&venue.root, shard, None, None)?;
    progress.start_part(&format!("shard {shard}"), done_bytes);
    let mut scan = ShardScan { segments: records.segments(), temporaries, quarantined, ..ShardScan::default() };
    loop {
        match records.next_event() {
            Ok(Some(record)) => {
                scan.records += 1;
                scan.first_seq.get_or_insert(record.event.seq);
                scan.first_ns.get_or_insert(record.event.timestamp_ns);
                scan.last_seq = Some(record.event.seq);
                scan.last_ns = Some(record.event.timestamp_ns);
                if let Some(symbol_id) = symbol_of(&record.event.body) {
                    if venue.shard_of(symbol_id) != shard && venue.instruments.get(symbol_id).is_some() {
                        scan.foreign_symbols.insert(symbol_id);
                    }
                }
                progress.record(records.position_bytes(&record));
            }
            Ok(None) => break,
            Err(Stop::Io(e)) => return Err(e),
            Err(Stop::Damage(damage)) => {
                scan.damage = Some(damage);
                break;
            }
        }
    }
    Ok(scan)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn snapshot_summary(report: Option<&StoreReport>) -> String {
    let Some(report) = report.filter(|r| !r.files.is_empty()) else { return "no snapshots".to_string() };
    let valid = report.valid().count();
    let mut text = plural(report.files.len(), "snapshot", "snapshots");
    if let Some(newest) = report.newest_valid() {
        text.push_str(&format!(" (newest at sequence {})", newest.last_seq));
    }
    if valid < report.files.len() {
        text.push_str(&format!(", {} not verifying", report.files.len() - valid));
    }
    text
}

/// Runs `verify` and prints its report; returns the exit status.
pub fn run(venue: &Venue, out: &mut dyn Write) -> Result<u8, ToolError> {
    out!(
        out,
        "journal {}: {} ({}), instruments: {}",
        venue.root.display(),
        plural(venue.shards.len(), "shard", "shards"),
        list(&venue.shards),
        venue.instruments_source
    )?;
    let owners: Vec<String> =
        venue.shards.iter().map(|&k| format!("shard {k}: {}", venue.owned_symbols(k).join(" "))).collect();
    out!(out, "symbols ({}): {}", venue.assignment_source, owners.join("; "))?;
    let mut problems = 0usize;
    // Problems that make the venue's recovery refuse to start (the rest are about snapshots or files).
    let mut refusals = 0usize;
    let mut torn = 0usize;
    for missing in venue.missing_shards() {
        out!(out, "shard {missing}: PROBLEM: the directory shard-{missing} is missing (its journal is gone)")?;
        problems += 1;
    }

    let (ledger_report, shard_reports) = snapshots::check_all(venue)?;
    let total_bytes: u64 = venue.shards.iter().map(|&k| venue.segment_bytes(k)).sum();
    let mut progress = Progress::bytes("verify", total_bytes);
    let mut scans = BTreeMap::new();
    let mut done_bytes = 0;
    for &shard in &venue.shards {
        scans.insert(shard, scan_shard(venue, shard, &mut progress, done_bytes)?);
        done_bytes += venue.segment_bytes(shard);
    }
    progress.finish();

    for &shard in &venue.shards {
        let scan = &scans[&shard];
        let report = shard_reports.get(&shard);
        let range = match (scan.first_seq, scan.last_seq, scan.first_ns, scan.last_ns) {
            (Some(a), Some(b), Some(t0), Some(t1)) => {
                format!("sequences {a}..{b}, {} .. {}", format_rfc3339(t0), format_rfc3339(t1))
            }
            _ => "no records".to_string(),
        };
        out!(
            out,
            "shard {shard}: {}, {range}, {}, {}",
            plural(scan.records as usize, "record", "records"),
            plural(scan.segments, "segment", "segments"),
            snapshot_summary(report)
        )?;
        let mut clean = true;
        match &scan.damage {
            Some(damage) if damage.is_torn_tail() => {
                out!(out, "  TORN TAIL: {damage}")?;
                torn += 1;
                clean = false;
            }
            Some(damage) => {
                out!(out, "  PROBLEM: {damage}")?;
                problems += 1;
                refusals += 1;
                clean = false;
            }
            None => {}
        }
        // The sequence the journal's valid part ends at (the record before the damage, if any).
        let journal_end = match &scan.damage {
            Some(damage) => damage.seq().saturating_sub(1),
            None => scan.last_seq.unwrap_or(0),
        };
        if let Some(report) = report {
            for file in &report.files {
                if let Err(why) = &file.result {
                    out!(out, "  warning: {why} (recovery skips it and uses an older snapshot or the journal)")?;
                    clean = false;
                }
            }
            if let Some(newest) = report.newest_valid() {
                if newest.last_seq > journal_end && scan.damage.as_ref().is_none_or(Damage::is_torn_tail) {
                    let lost = if scan.damage.is_some() {
                        "records the snapshot includes are damaged (recovery would cut them)"
                    } else {
                        "segments at the end of the journal are missing"
                    };
                    out!(
                        out,
                        "  PROBLEM: snapshot {} includes records up to sequence {} but the journal's valid records end \
                         at {journal_end}: {lost}",
                        newest.path.display(),
                        newest.last_seq,
                    )?;
                    problems += 1;
                    clean = false;
                }
            }
        }
        if let Some(first) = scan.first_seq.filter(|&first| first > 1) {
            let covered = report.is_some_and(|r| r.valid().any(|s| s.last_seq + 1 >= first));
            if !covered {
                out!(
                    out,
                    "  PROBLEM: the journal starts at sequence {first} and no snapshot that verifies covers records \
                     1..{}",
                    first - 1
                )?;
                problems += 1;
                clean = false;
            }
        }
        if !scan.foreign_symbols.is_empty() {
            let names: Vec<String> =
                scan.foreign_symbols.iter().map(|&id| crate::script::render::symbol(&venue.instruments, id)).collect();
            out!(
                out,
                "  warning: events for {}, which this shard does not own under {}: state hashes will not match the                  venue's; put the venue's shard count and assignments in venue.toml",
                names.join(", "),
                venue.assignment_source
            )?;
            clean = false;
        }
        if !scan.temporaries.is_empty() {
            out!(
                out,
                "  note: {} (a segment whose creation did not finish; recovery deletes it)",
                plural(scan.temporaries.len(), "unfinished *.seg.tmp file", "unfinished *.seg.tmp files")
            )?;
        }
        if !scan.quarantined.is_empty() {
            out!(
                out,
                "  note: {} set aside by an earlier recovery that was allowed to cut corruption",
                plural(scan.quarantined.len(), "*.corrupt file", "*.corrupt files")
            )?;
        }
        if clean {
            out!(out, "  ok")?;
        }
    }

    out!(out, "ledger: {}", snapshot_summary(Some(&ledger_report)))?;
    for file in &ledger_report.files {
        if let Err(why) = &file.result {
            out!(out, "  warning: {why}")?;
        }
    }
    let engine_snapshots = shard_reports.values().any(|r| r.newest_valid().is_some());
    let sets = snapshots::sets(&ledger_report, &shard_reports, &venue.shards);
    match sets.first() {
        Some(set) => match snapshots::restore(venue, set) {
            Ok(_) => out!(
                out,
                "  newest snapshot set ({}) restores: ledger and {}",
                format_rfc3339(set.timestamp_ns),
                plural(set.shards.len(), "shard", "shards")
            )?,
            Err(why) => {
                out!(
                    out,
                    "  PROBLEM: the newest snapshot set ({}) does not restore: {why}",
                    format_rfc3339(set.timestamp_ns)
                )?;
                problems += 1;
            }
        },
        None if engine_snapshots => out!(
            out,
            "  note: no complete snapshot set (a ledger snapshot and one snapshot per shard with the same time); \
             replay starts from the journal"
        )?,
        None => {}
    }

    if refusals > 0 {
        out!(
            out,
            "result: {}: the venue will refuse to start (see docs/operations.md; --allow-corruption starts it by \
             cutting each damaged journal at its first problem, dropping the records after it)",
            plural(problems, "problem", "problems")
        )?;
        return Ok(EXIT_DAMAGED);
    }
    if problems > 0 {
        out!(out, "result: {}: see above before starting the venue", plural(problems, "problem", "problems"))?;
        return Ok(EXIT_DAMAGED);
    }
    if torn > 0 {
        out!(out, "result: torn tail (will be truncated on recovery); no corruption: the venue will start by itself")?;
    } else {
        out!(out, "result: clean")?;
    }
    Ok(EXIT_OK)
}
