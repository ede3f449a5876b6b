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
/// restores and that the journals continue, then the records after it, in shard order.
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
    // Each journal's tail first: a torn tail is cut, mid-log corruption refuses (unless allowed).
    let new_epoch = clock.now_ns() as u64;
    let mut journals = Vec::with_capacity(engine_configs.len());
    for engine_config in &engine_configs {
        let shard = engine_config.shard_id;
        let fail = |message: String| RecoveryFailure::Journal { shard, message };
        let shard_dir = simex_journal::shard_dir(&settings.root, u32::from(shard));
        let has_segments = std::fs::read_dir(&shard_dir)
            .map(|entries| entries.flatten().any(|e| e.path().extension().is_some_and(|x| x == "seg")))
            .unwrap_or(false);
        let mut warnings = Vec::new();
        let journal = if has_segments {
            let options = RecoveryOptions { epoch: None, allow_corruption: settings.allow_corruption };
            let report =
                simex_journal::recover(&settings.root, u32::from(shard), &options).map_err(|e| fail(e.to_string()))?;
            if let Some(torn) = &report.torn_tail {
                warnings.push(format!("truncated a torn tail: {torn}"));
            }
            if let Some(problem) = &report.corruption {
                warnings.push(format!("cut the journal at corruption (allowed): {problem}"));
            }
            let writer = JournalWriter::open_for_append(&report, config.clone()).map_err(|e| fail(e.to_string()))?;
            (writer, Some(report))
        } else {
            let writer = JournalWriter::create(&settings.root, u32::from(shard), new_epoch, config.clone())
                .map_err(|e| fail(e.to_string()))?;
            (writer, None)
        };
        journals.push((journal, warnings));
    }

    let epochs: Vec<(u32, u64)> =
        journals.iter().zip(&engine_configs).map(|(((w, _), _), c)| (u32::from(c.shard_id), w.epoch())).collect();
    let keep = settings.snapshots.as_ref().map_or(2, |s| s.keep.max(2));
    let stores = Stores::open(&settings.root, &epochs, keep).map_err(|e| RecoveryFailure::Snapshots(e.to_string()))?;
    let verified = stores.verified().map_err(|e| RecoveryFailure::Snapshots(e.to_string()))?;
    let mut set_warnings = Vec::new();
    for path in stores.remove_incomplete(&verified) {
        set_warnings.push(format!("removed {} (its snapshot set was never completed)", path.display()));
    }

    // The newest set every journal continues and that restores.
    let last_seqs: Vec<u64> =
        journals.iter().map(|((_, report), _)| report.as_ref().and_then(|r| r.last_seq()).unwrap_or(0)).collect();
    let config_of = |shard: u32| engine_configs[shard as usize].clone();
    let mut start = None;
    for set in verified.sets() {
        let behind = set.shards.iter().find(|(&shard, member)| member.last_seq > last_seqs[shard as usize]);
        if let Some((shard, member)) = behind {
            set_warnings.push(format!(
                "not using the snapshot set of {} ns: it holds shard {shard} up to record {}, its journal ends at {}",
                set.timestamp_ns, member.last_seq, last_seqs[*shard as usize]
            ));
            continue;
        }
        match restore_set(&set, config_of, instruments, portfolios_max) {
            Ok((ledger, engines)) => {
                start = Some((ledger, engines));
                break;
            }
            Err(why) => set_warnings.push(format!("not using the snapshot set of {} ns: {why}", set.timestamp_ns)),
        }
    }
    let (ledger, mut engines) = match start {
        Some((ledger, engines)) => (ledger, engines.into_values().map(Some).collect::<Vec<_>>()),
        None => (SharedLedger(AtomicLedger::new(portfolios_max)), engine_configs.iter().map(|_| None).collect()),
    };

    // Replay what follows, shard 0 first: it holds the portfolio commands, and every other shard's
    // effect on the shared ledger is a commutative delta.
    let mut recovered = Vec::with_capacity(journals.len());
    for (index, ((writer, report), mut warnings)) in journals.into_iter().enumerate() {
        let engine_config = engine_configs[index].clone();
        let shard = engine_config.shard_id;
        if index == 0 {
            warnings.append(&mut set_warnings);
        }
        let fail = |message: String| RecoveryFailure::Journal { shard, message };
        let (mut engine, snapshot_seq) = match engines[index].take() {
            Some(engine) => {
                let seq = engine.last_seq();
                (engine, Some(seq))
            }
            None => (Engine::with_ledger(engine_config, instruments.clone(), ledger.clone()), None),
        };
        let mut records = 0u64;
        if let Some(report) = &report {
            let from_seq = snapshot_seq.map_or(1, |seq| seq + 1);
            let mut reader = JournalReader::open_from(&settings.root, u32::from(shard), report.epoch, from_seq)
                .map_err(|e| fail(e.to_string()))?;
            while let Some(record) = reader.next_record().map_err(|e| match e {
                simex_journal::ReadError::SeqNotAvailable { first_available, .. } => fail(format!(
                    "the journal starts at record {first_available} (older segments were pruned) and no snapshot \
                     set restores the state before it"
                )),
                other => fail(other.to_string()),
            })? {
                let event = decode_event(record.record_type, record.seq, record.timestamp_ns, record.payload)
                    .map_err(|e| RecoveryFailure::Record { shard, seq: record.seq, message: e.to_string() })?;
                engine.replay(&event);
                records += 1;
            }
        }
        recovered.push(RecoveredShard { engine, writer, snapshot_seq, records, warnings });
    }
    Ok(Recovered { ledger, shards: recovered, stores })
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
    pub events: rtrb::Consumer<JournalEntry>,
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
