//! Rebuilding the venue's state at a point of its history: engines for every shard sharing one
//! ledger, fed from the newest usable snapshot set and then the journal.
//!
//! # How a point becomes per-shard limits
//! Shards have their own sequences but share the venue clock, so a time is a consistent cut through
//! every shard: each replays the records stamped at or before it. A sequence belongs to one shard
//! (`--shard`); that shard replays up to it and the others up to the time of that record, which is
//! the state the venue was in just after it. See [`resolve`].
//!
//! # Order of replay
//! The venue recovers the same way: shard 0 first (portfolio creation, deposits and risk limits are
//! routed there), then the others. Everything else a shard does to the shared ledger is a
//! commutative delta recorded in its events, so the ledger does not depend on how the shards'
//! records interleaved. A [`Replayer`] can be advanced more than once (to compare two points it
//! replays to the earlier one, looks, and continues).
//!
//! # Damage
//! A torn tail is where the valid journal ends: replay stops there with a warning, as recovery
//! would. Corruption, an undecodable record or an event the engine refuses before the requested
//! point is an error naming the record; a point before it can still be replayed.

use super::point::Point;
use super::progress::Progress;
use super::records::{Damage, Located, ShardRecords, Stop};
use super::snapshots::{self, new_ledger};
use super::venue::Venue;
use super::{catch_engine, ToolError};
use crate::script::time::format_rfc3339;
use simex::runtime::{ShardEngine, SharedLedger};
use simex_engine::{Account, Ledger};
use std::collections::BTreeMap;

/// How far one shard replays: every record at or below both bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limit {
    pub max_seq: Option<u64>,
    pub max_time_ns: Option<i64>,
}

impl Limit {
    fn admits(&self, record: &Located) -> bool {
        self.max_seq.is_none_or(|max| record.event.seq <= max)
            && self.max_time_ns.is_none_or(|max| record.event.timestamp_ns <= max)
    }

    /// Whether a snapshot of this shard at `last_seq`, taken at `timestamp_ns`, lies within the limit.
    fn covers_snapshot(&self, last_seq: u64, timestamp_ns: i64) -> bool {
        self.max_seq.is_none_or(|max| last_seq <= max) && self.max_time_ns.is_none_or(|max| timestamp_ns <= max)
    }
}

/// A point resolved into a limit for every shard.
#[derive(Clone, Debug)]
pub struct Target {
    /// The point as an operator reads it: "sequence 120 of shard 0 (2026-...)", "end of the journal".
    pub description: String,
    pub limits: BTreeMap<u32, Limit>,
}

/// Resolves a point (`None`: the end of the journal) into per-shard limits. A sequence needs
/// `shard` unless the journal has only one shard; its record must be in the journal.
pub fn resolve(venue: &Venue, point: Option<Point>, shard: Option<u32>) -> Result<Target, ToolError> {
    let all = |limit: Limit| venue.shards.iter().map(|&k| (k, limit)).collect::<BTreeMap<_, _>>();
    match point {
        None => Ok(Target { description: "the end of the journal".to_string(), limits: all(Limit::default()) }),
        Some(Point::Time(ns)) => Ok(Target {
            description: format!("time {}", format_rfc3339(ns)),
            limits: all(Limit { max_seq: None, max_time_ns: Some(ns) }),
        }),
        Some(Point::Seq(seq)) => {
            let shard = match (shard, venue.shards.as_slice()) {
                (Some(k), _) => venue.select_shards(Some(k))?[0],
                (None, [only]) => *only,
                (None, _) => {
                    return Err(ToolError::usage(format!(
                        "the journal has {} shards: say which shard sequence {seq} is in with --shard, or give a time",
                        venue.shards.len()
                    )))
                }
            };
            let at_ns = if seq == 0 { i64::MIN } else { record_time(venue, shard, seq)? };
            let mut limits = all(Limit { max_seq: None, max_time_ns: Some(at_ns) });
            limits.insert(shard, Limit { max_seq: Some(seq), max_time_ns: None });
            let when = if seq == 0 { "before the first record".to_string() } else { format_rfc3339(at_ns) };
            Ok(Target { description: format!("sequence {seq} of shard {shard} ({when})"), limits })
        }
    }
}

/// The timestamp of record `seq` of `shard`.
fn record_time(venue: &Venue, shard: u32, seq: u64) -> Result<i64, ToolError> {
    let mut records = ShardRecords::open(&venue.root, shard, venue.epoch(shard), Some(seq))?;
    match records.next_event() {
        Ok(Some(record)) if record.event.seq == seq => Ok(record.event.timestamp_ns),
        Ok(_) => Err(ToolError::usage(format!("sequence {seq} is past the end of shard {shard}'s journal"))),
        Err(Stop::Io(e)) => Err(e),
        Err(Stop::Damage(damage @ Damage::Unavailable { .. })) => {
            Err(ToolError::usage(format!("shard {shard}: {damage}")))
        }
        Err(Stop::Damage(damage)) => Err(ToolError::damaged(format!(
            "shard {shard}: sequence {seq} cannot be reached, the journal is damaged before it: {damage}"
        ))),
    }
}

/// One shard being replayed.
pub struct ShardReplay {
    pub shard: u32,
    pub engine: ShardEngine,
    records: ShardRecords,
    pending: Option<Located>,
    stopped: Option<Damage>,
    /// The snapshot the engine was restored from.
    pub snapshot_seq: Option<u64>,
    /// Records replayed after the snapshot (or from the start).
    pub replayed: u64,
    /// Time of the last record replayed.
    pub last_timestamp_ns: Option<i64>,
}

/// Engines for every shard and the ledger they share, at some point of the journal.
pub struct Replayer<'v> {
    venue: &'v Venue,
    pub ledger: SharedLedger,
    pub shards: Vec<ShardReplay>,
    /// Time of the snapshot set the state started from, if any.
    pub snapshot_time_ns: Option<i64>,
    /// Things the operator should know (a torn tail, a snapshot that could not be used).
    pub warnings: Vec<String>,
    progress: Progress,
}

impl<'v> Replayer<'v> {
    /// Engines at the newest snapshot set that lies within `target` (unless `use_snapshots` is
    /// false), else empty engines at the start of the journal. Nothing is replayed yet.
    pub fn new(venue: &'v Venue, target: &Target, use_snapshots: bool, progress: Progress) -> Result<Self, ToolError> {
        let mut warnings = Vec::new();
        if use_snapshots {
            let (ledger_report, shard_reports) = snapshots::check_all(venue)?;
            for set in snapshots::sets(&ledger_report, &shard_reports, &venue.shards) {
                let fits = set.shards.iter().all(|(shard, snapshot)| {
                    target.limits.get(shard).is_some_and(|l| l.covers_snapshot(snapshot.last_seq, set.timestamp_ns))
                });
                if !fits {
                    continue;
                }
                let (ledger, mut engines) = match snapshots::restore(venue, &set) {
                    Ok(restored) => restored,
                    Err(why) => {
                        warnings
                            .push(format!("not using the snapshot set of {}: {why}", format_rfc3339(set.timestamp_ns)));
                        continue;
                    }
                };
                let mut shards = Vec::new();
                let mut usable = true;
                for (&shard, snapshot) in &set.shards {
                    let records =
                        ShardRecords::open(&venue.root, shard, venue.epoch(shard), Some(snapshot.last_seq + 1))?;
                    let engine = engines.remove(&shard).expect("one engine per shard of the set");
                    let mut replay = ShardReplay::new(shard, engine, records, Some(snapshot.last_seq));
                    let unavailable = match replay.peek() {
                        Err(Stop::Io(e)) => return Err(e),
                        Err(Stop::Damage(damage @ Damage::Unavailable { .. })) => Some(damage),
                        _ => None,
                    };
                    if let Some(damage) = unavailable {
                        warnings.push(format!(
                            "not using the snapshot set of {}: shard {shard}: {damage}",
                            format_rfc3339(set.timestamp_ns)
                        ));
                        usable = false;
                        break;
                    }
                    shards.push(replay);
                }
                if usable {
                    return Ok(Replayer {
                        venue,
                        ledger,
                        shards,
                        snapshot_time_ns: Some(set.timestamp_ns),
                        warnings,
                        progress,
                    });
                }
            }
        }
        let ledger = new_ledger();
        let mut shards = Vec::new();
        for &shard in &venue.shards {
            let engine =
                ShardEngine::with_ledger(venue.engine_config(shard), venue.instruments.clone(), ledger.clone());
            let records = ShardRecords::open(&venue.root, shard, venue.epoch(shard), None)?;
            let mut replay = ShardReplay::new(shard, engine, records, None);
            if let Ok(Some(first)) = replay.peek() {
                if first.event.seq != 1 {
                    return Err(ToolError::damaged(format!(
                        "shard {shard}'s journal starts at sequence {} (older segments were pruned) and no snapshot \
                         set can stand in for records 1..{}{}",
                        first.event.seq,
                        first.event.seq - 1,
                        if warnings.is_empty() { String::new() } else { format!(" ({})", warnings.join("; ")) }
                    )));
                }
            }
            shards.push(replay);
        }
        Ok(Replayer { venue, ledger, shards, snapshot_time_ns: None, warnings, progress })
    }

    /// Replays every shard up to its limit in `target`, shard 0 first.
    pub fn advance(&mut self, target: &Target) -> Result<(), ToolError> {
        let mut done_bytes = 0;
        for replay in &mut self.shards {
            let limit = target.limits.get(&replay.shard).copied().unwrap_or_default();
            self.progress.start_part(&format!("shard {}", replay.shard), done_bytes);
            done_bytes += replay.records.total_bytes();
            if let Some(warning) = replay.advance(limit, &mut self.progress)? {
                if !self.warnings.contains(&warning) {
                    self.warnings.push(warning);
                }
            }
        }
        self.progress.finish();
        Ok(())
    }

    pub fn venue(&self) -> &Venue {
        self.venue
    }

    /// Every account of the shared ledger, in portfolio order.
    pub fn accounts(&self) -> Vec<(u32, Account)> {
        let mut accounts = Vec::new();
        self.ledger.for_each_account(&mut |portfolio_id, account| accounts.push((portfolio_id, *account)));
        accounts
    }

    /// The hash of the whole venue state: each shard's `state_hash` (which, with a shared ledger,
    /// leaves money out) and then every account of the shared ledger.
    pub fn combined_hash(&self) -> u64 {
        combined_hash(
            &self.shards.iter().map(|s| (s.shard, s.engine.state_hash())).collect::<Vec<_>>(),
            &self.accounts(),
        )
    }
}

/// xxHash3 (64 bits) over little-endian `i64`s: for each shard in order, its id and state hash;
/// then for each account in portfolio order, the id, cash, reserved, margin, fees paid, realized
/// P&L, daily P&L and its day, gross exposure, open orders and the four risk limits. Documented in
/// `docs/operations.md` so it can be recomputed elsewhere.
pub fn combined_hash(shard_hashes: &[(u32, u64)], accounts: &[(u32, Account)]) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut put = |value: i64| hasher.update(&value.to_le_bytes());
    for &(shard, hash) in shard_hashes {
        put(i64::from(shard));
        put(hash as i64);
    }
    for (portfolio_id, a) in accounts {
        for value in a.hash_words(*portfolio_id) {
            put(value);
        }
    }
    hasher.digest()
}

impl ShardReplay {
    fn new(shard: u32, engine: ShardEngine, records: ShardRecords, snapshot_seq: Option<u64>) -> ShardReplay {
        ShardReplay {
            shard,
            engine,
            records,
            pending: None,
            stopped: None,
            snapshot_seq,
            replayed: 0,
            last_timestamp_ns: None,
        }
    }

    /// The next record without consuming it.
    fn peek(&mut self) -> Result<Option<&Located>, Stop> {
        if let Some(damage) = &self.stopped {
            return Err(Stop::Damage(damage.clone()));
        }
        if self.pending.is_none() {
            match self.records.next_event() {
                Ok(next) => self.pending = next,
                Err(Stop::Damage(damage)) => {
                    self.stopped = Some(damage.clone());
                    return Err(Stop::Damage(damage));
                }
                Err(stop) => return Err(stop),
            }
        }
        Ok(self.pending.as_ref())
    }

    /// Replays records while `limit` admits them. Returns a warning when the journal's valid part
    /// ends at a torn tail before the limit.
    fn advance(&mut self, limit: Limit, progress: &mut Progress) -> Result<Option<String>, ToolError> {
        loop {
            // Sequences are contiguous: once the engine is at the limit, the next record (possibly
            // damaged) need not be read.
            if limit.max_seq.is_some_and(|max| self.engine.last_seq() >= max) {
                return Ok(None);
            }
            let record = match self.peek() {
                Ok(Some(record)) => record,
                Ok(None) => return Ok(None),
                Err(Stop::Io(e)) => return Err(e),
                Err(Stop::Damage(damage)) => return self.damage_before(limit, damage),
            };
            if !limit.admits(record) {
                return Ok(None);
            }
            let record = self.pending.take().expect("peeked");
            let engine = &mut self.engine;
            catch_engine(|| engine.replay(&record.event)).map_err(|why| {
                ToolError::damaged(format!(
                    "shard {}: segment {}, offset {}, sequence {}: the engine cannot apply this {} event: {why}",
                    self.shard,
                    record.segment.display(),
                    record.offset_bytes,
                    record.event.seq,
                    crate::script::render::event_type(&record.event.body),
                ))
            })?;
            self.replayed += 1;
            self.last_timestamp_ns = Some(record.event.timestamp_ns);
            progress.record(self.records.position_bytes(&record));
        }
    }

    /// What reaching `damage` means for a replay to `limit`.
    fn damage_before(&self, limit: Limit, damage: Damage) -> Result<Option<String>, ToolError> {
        let shard = self.shard;
        if damage.is_torn_tail() {
            if limit.max_seq.is_some_and(|max| max >= damage.seq()) {
                return Err(ToolError::damaged(format!(
                    "shard {shard}: sequence {} is not in the valid journal, which ends before {}: {damage}",
                    limit.max_seq.unwrap_or_default(),
                    damage.seq()
                )));
            }
            return Ok(Some(format!("shard {shard}: replayed up to the torn tail: {damage}")));
        }
        Err(ToolError::damaged(format!(
            "shard {shard}: the journal is damaged before the requested point: {damage}; a point before sequence {} \
             can still be replayed (--shard {shard} --until {})",
            damage.seq(),
            damage.seq().saturating_sub(1)
        )))
    }
}
