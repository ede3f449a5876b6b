//! The journal in the running venue: recovery on start, one writer thread per shard, and the
//! durability gate that keeps results from clients until their records are durable.
//!
//! - **Recovery.** Each shard's journal is recovered (`simex_journal::recover`: a torn tail is cut
//!   with a warning, mid-log corruption refuses to start unless `allow_corruption`), then replayed
//!   into the shard's engine through the codec. Shard 0 is replayed first: it holds the portfolio
//!   commands, and every other shard's effect on the shared ledger is a commutative delta.
//! - **Writing.** A shard copies each event into an SPSC ring to its writer thread. The writer drains
//!   what is there (group commit), appends it, commits (`fdatasync` unless durability is `none`) and
//!   publishes the last durable sequence. An `fdatasync` failure is fatal: the process aborts rather
//!   than retry after EIO.
//! - **The gate.** With `sync` durability the shard holds every response until the journal has made
//!   its event durable (`durable_seq`), so no client ever sees an acknowledgement or a fill the
//!   journal could lose. With `batch` and `none` responses go out at once.

use super::clock::Clock;
use super::ledger::{AtomicLedger, SharedLedger};
use super::shard::ShardEngine;
use super::snapshots::{restore_set, SnapshotSettings, Stores};
use super::wait::{Idle, WaitStrategy, Waker};
use simex_engine::codec::{decode_event, encode_event, PAYLOAD_MAX};
use simex_engine::{Engine, EngineConfig, Event, InstrumentTable};
use simex_journal::{Durability, JournalConfig, JournalReader, JournalWriter, RecoveryOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Where and how the venue journals.
#[derive(Clone, Debug)]
pub struct JournalSettings {
    pub root: PathBuf,
    pub durability: Durability,
    pub segment_size_bytes: u64,
    /// Start even if a journal is corrupt in the middle (cutting it there). Off by default.
    pub allow_corruption: bool,
    /// Periodic snapshot sets; `None` writes none (recovery still uses any it finds).
    pub snapshots: Option<SnapshotSettings>,
}

impl JournalSettings {
    pub fn new(root: impl Into<PathBuf>) -> JournalSettings {
        JournalSettings {
            root: root.into(),
            durability: Durability::Sync,
            segment_size_bytes: 64 << 20,
            allow_corruption: false,
            snapshots: Some(SnapshotSettings::default()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryFailure {
    #[error("journal of shard {shard}: {message}")]
    Journal { shard: u16, message: String },
    #[error("journal of shard {shard}: record {seq}: {message}")]
    Record { shard: u16, seq: u64, message: String },
    #[error("snapshots: {0}")]
    Snapshots(String),
}

/// What recovery rebuilt for one shard.
pub struct RecoveredShard {
    pub engine: ShardEngine,
    pub writer: JournalWriter,
    /// The sequence of the snapshot the engine was restored from.
    pub snapshot_seq: Option<u64>,
    /// Records replayed from the journal (after the snapshot, if any).
    pub records: u64,
    pub warnings: Vec<String>,
}

/// What recovery rebuilt: the shared ledger and every shard.
pub struct Recovered {
    pub ledger: SharedLedger,
    pub shards: Vec<RecoveredShard>,
    /// The snapshot stores, for the snapshotter to write to.
    pub stores: Stores,
}

/// Recovers every shard's journal into engines sharing one ledger: from the newest snapshot set that
/// every journal continues and that restores, then the records after it, in shard order.
///
/// Each journal's tail is checked (a torn tail cut, mid-log corruption refused unless allowed) from
/// the record after the set's member on, so start-up time follows the records after the snapshot,
/// not the journal's length. Without a usable set every record is checked and replayed.
pub fn recover_shards(
    settings: &JournalSettings,
    engine_configs: Vec<EngineConfig>,
    instruments: &InstrumentTable,
    portfolios_max: usize,
    clock: Clock,
) -> Result<Recovered, RecoveryFailure> {
    let config = JournalConfig {
        segment_size_bytes: settings.segment_size_bytes,
        durability: settings.durability,
        ..JournalConfig::default()
    };
    let root = &settings.root;
    let new_epoch = clock.now_ns() as u64;
    let shard_ids: Vec<u16> = engine_configs.iter().map(|c| c.shard_id).collect();
    let found_epochs: Vec<Option<u64>> =
        shard_ids.iter().map(|&k| simex_journal::segment::first_epoch(root, u32::from(k))).collect();
    let epochs: Vec<(u32, u64)> =
        shard_ids.iter().zip(&found_epochs).map(|(&k, e)| (u32::from(k), e.unwrap_or(new_epoch))).collect();
    let keep = settings.snapshots.as_ref().map_or(2, |s| s.keep.max(2));
    let snapshots_failed = |e: simex_journal::SnapshotError| RecoveryFailure::Snapshots(e.to_string());
    let stores = Stores::open(root, &epochs, keep).map_err(snapshots_failed)?;
    let verified = stores.verified().map_err(snapshots_failed)?;
    let mut set_warnings: Vec<String> = stores
        .remove_incomplete(&verified)
        .into_iter()
        .map(|path| format!("removed {} (its snapshot set was never completed)", path.display()))
        .collect();

    // Candidates, newest first; `None` is "from the first record".
    let sets = verified.sets();
    let candidates = sets.iter().map(Some).chain(std::iter::once(None));
    for candidate in candidates {
        let member_seq = |shard: u16| candidate.map_or(0, |set| set.shards[&u32::from(shard)].last_seq);
        let mut journals = Vec::with_capacity(shard_ids.len());
        let mut unusable = None;
        for (&shard, epoch) in shard_ids.iter().zip(&found_epochs) {
            let fail = |message: String| RecoveryFailure::Journal { shard, message };
            let Some(epoch) = epoch else {
                if member_seq(shard) > 0 {
                    unusable = Some(format!("shard {shard} has no journal"));
                }
                journals.push(None);
                continue;
            };
            let options = RecoveryOptions {
                epoch: Some(*epoch),
                allow_corruption: settings.allow_corruption,
                scan_from_seq: candidate.map(|_| member_seq(shard) + 1),
            };
            let report = simex_journal::recover(root, u32::from(shard), &options).map_err(|e| fail(e.to_string()))?;
            let journal_last = report.next_seq().map_or(0, |next| next.saturating_sub(1));
            let journal_first = simex_journal::segment::list_segments(&simex_journal::shard_dir(root, shard.into()))
                .ok()
                .and_then(|(segments, _)| segments.first().map(|s| s.first_seq))
                .unwrap_or(1);
            if member_seq(shard) > journal_last {
                unusable = Some(format!(
                    "it holds shard {shard} up to record {}, its journal ends at {journal_last}",
                    member_seq(shard)
                ));
            } else if candidate.is_some() && journal_first > member_seq(shard) + 1 {
                unusable = Some(format!(
                    "shard {shard}'s journal starts at record {journal_first}, after the set's {}",
                    member_seq(shard)
                ));
            }
            journals.push(Some(report));
        }
        let restored = match (candidate, &unusable) {
            (Some(set), None) => {
                match restore_set(set, |k| engine_configs[k as usize].clone(), instruments, portfolios_max) {
                    Ok((ledger, engines)) => Some((ledger, engines.into_values().map(Some).collect::<Vec<_>>())),
                    Err(why) => {
                        unusable = Some(why);
                        None
                    }
                }
            }
            (None, _) => None,
            (Some(_), Some(_)) => None,
        };
        if let (Some(set), Some(why)) = (candidate, &unusable) {
            set_warnings.push(format!("not using the snapshot set of {} ns: {why}", set.timestamp_ns));
            continue;
        }
        let (ledger, mut engines) = restored.unwrap_or_else(|| {
            (SharedLedger(AtomicLedger::new(portfolios_max)), engine_configs.iter().map(|_| None).collect())
        });
        let mut recovered = Vec::with_capacity(shard_ids.len());
        // Shard 0 first: it holds the portfolio commands, and every other shard's effect on the
        // shared ledger is a commutative delta.
        for (index, report) in journals.into_iter().enumerate() {
            let engine_config = engine_configs[index].clone();
            let shard = engine_config.shard_id;
            let fail = |message: String| RecoveryFailure::Journal { shard, message };
            let mut warnings = if index == 0 { std::mem::take(&mut set_warnings) } else { Vec::new() };
            let (mut engine, snapshot_seq) = match engines[index].take() {
                Some(engine) => {
                    let seq = engine.last_seq();
                    (engine, Some(seq))
                }
                None => (Engine::with_ledger(engine_config, instruments.clone(), ledger.clone()), None),
            };
            let (writer, records) = match report {
                Some(report) => {
                    if let Some(torn) = &report.torn_tail {
                        warnings.push(format!("truncated a torn tail: {torn}"));
                    }
                    if let Some(problem) = &report.corruption {
                        warnings.push(format!("cut the journal at corruption (allowed): {problem}"));
                    }
                    let records = replay_journal(root, shard, report.epoch, snapshot_seq, &mut engine)?;
                    let writer =
                        JournalWriter::open_for_append(&report, config.clone()).map_err(|e| fail(e.to_string()))?;
                    (writer, records)
                }
                None => {
                    let writer = JournalWriter::create(root, u32::from(shard), new_epoch, config.clone())
                        .map_err(|e| fail(e.to_string()))?;
                    (writer, 0)
                }
            };
            recovered.push(RecoveredShard { engine, writer, snapshot_seq, records, warnings });
        }
        return Ok(Recovered { ledger, shards: recovered, stores });
    }
    unreachable!("the last candidate, the journal from its first record, is always used")
}

/// Replays a shard's journal after `snapshot_seq` (from its first record without one) into `engine`;
/// returns the records replayed.
fn replay_journal(
    root: &std::path::Path,
    shard: u16,
    epoch: Option<u64>,
    snapshot_seq: Option<u64>,
    engine: &mut ShardEngine,
) -> Result<u64, RecoveryFailure> {
    let fail = |message: String| RecoveryFailure::Journal { shard, message };
    let from_seq = snapshot_seq.map_or(1, |seq| seq + 1);
    let mut reader =
        JournalReader::open_from(root, u32::from(shard), epoch, from_seq).map_err(|e| fail(e.to_string()))?;
    let mut records = 0u64;
    while let Some(record) = reader.next_record().map_err(|e| match e {
        simex_journal::ReadError::SeqNotAvailable { first_available, .. } => fail(format!(
            "the journal starts at record {first_available} (older segments were pruned) and no snapshot set \
             restores the state before it"
        )),
        other => fail(other.to_string()),
    })? {
        let event = decode_event(record.record_type, record.seq, record.timestamp_ns, record.payload)
            .map_err(|e| RecoveryFailure::Record { shard, seq: record.seq, message: e.to_string() })?;
        engine.replay(&event);
        records += 1;
    }
    Ok(records)
}

/// The last sequence of a shard known durable, and who to wake when it moves.
pub struct Durable {
    seq: AtomicU64,
    pub(super) shard_waker: Arc<OnceLock<Waker>>,
}

impl Durable {
    pub fn new(seq: u64, shard_waker: Arc<OnceLock<Waker>>) -> Arc<Durable> {
        Arc::new(Durable { seq: AtomicU64::new(seq), shard_waker })
    }

    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }
}

/// One event on its way to the journal, and whether it is the last of its command.
#[derive(Clone, Copy, Debug)]
pub struct JournalEntry {
    pub event: Event,
    pub last_of_command: bool,
}

/// The journal writer thread of one shard.
pub(super) struct WriterThread {
    pub shard_id: u16,
    pub writer: JournalWriter,
    pub events: super::occupancy::Rx<JournalEntry>,
    pub durable: Arc<Durable>,
    pub wait: WaitStrategy,
    pub waker: Arc<OnceLock<Waker>>,
}

/// Most records in one group commit.
const BATCH_RECORDS_MAX: usize = 4096;

impl WriterThread {
    pub fn run(mut self) -> JournalWriter {
        let waker = self.waker.get_or_init(Waker::for_current_thread);
        let mut idle = Idle::new(self.wait);
        let mut payload = [0u8; PAYLOAD_MAX];
        loop {
            // A batch ends only at a command boundary, so a commit never makes half a command durable
            // (the shard pushes all of a command's events at once, so the rest is moments away).
            let mut batch = 0usize;
            let mut last_seq = None;
            let mut at_boundary = true;
            loop {
                if batch >= BATCH_RECORDS_MAX && at_boundary {
                    break;
                }
                let Ok(JournalEntry { event, last_of_command }) = self.events.pop() else {
                    if at_boundary || self.events.is_abandoned() {
                        break;
                    }
                    std::hint::spin_loop();
                    continue;
                };
                at_boundary = last_of_command;
                let (record_type, len) = encode_event(&event.body, &mut payload);
                if let Err(error) = self.writer.append(record_type, event.seq, event.timestamp_ns, &payload[..len]) {
                    fatal(self.shard_id, &error);
                }
                last_seq = Some(event.seq);
                batch += 1;
            }
            if let Some(seq) = last_seq {
                if let Err(error) = self.writer.commit() {
                    fatal(self.shard_id, &error);
                }
                self.durable.seq.store(seq, Ordering::Release);
                if let Some(shard) = self.durable.shard_waker.get() {
                    shard.wake();
                }
                idle.reset();
                continue;
            }
            if self.events.is_abandoned() && self.events.is_empty() {
                return self.writer;
            }
            let events = &self.events;
            idle.wait(waker, || !events.is_empty() || events.is_abandoned());
        }
    }
}

/// Journal failures are not retried: after a failed `fdatasync` the page cache may have dropped the
/// data, and carrying on would acknowledge what is not on disk.
fn fatal(shard: u16, error: &dyn std::fmt::Display) -> ! {
    eprintln!("simex: journal of shard {shard} failed: {error}; aborting (restart recovers from the journal)");
    std::process::abort();
}
