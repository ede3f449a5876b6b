//! The sharded runtime: the engine on pinned threads, fed by disruptor rings, answering through SPSC
//! rings. Everything about threads, pinning, rings and the clock is here, wired in [`Runtime::start`].
//!
//! ```text
//!  Submitter 0 ──disruptor SP ring──┐                      ┌──rtrb──► Submitter 0 (responses)
//!  Submitter 1 ──disruptor SP ring──┼─► shard k thread ────┼──rtrb──► Submitter 1 (responses)
//!      ...            (one per       │   poll, stamp time,  ├──rtrb──► tap "journal" (every event)
//!                   submitter×shard) │   engine.apply()     └──rtrb──► latency hand-over
//! ```
//!
//! - **Sharding.** Each symbol belongs to one shard (`RuntimeConfig::assignments`, else round-robin
//!   by symbol id). Orders for a symbol go to its shard; cancels and replaces to the shard encoded in
//!   the order id; portfolio commands to shard 0; a mass cancel across symbols to every shard.
//! - **Rings.** One single-producer disruptor ring per (submitter, shard): single-producer rings
//!   avoid the compare-and-swap on one shared cursor that every claim on a multi-producer ring
//!   costs. The shard polls its rings in its own loop with `EventPoller`, so it owns its thread.
//! - **Money across shards.** All shards share one [`AtomicLedger`]: reservations are
//!   compare-and-swap, everything else commutative deltas, and events record every outcome.
//! - **Shutdown.** Drop every `Submitter`, then call [`Runtime::shutdown`]: each shard drains its
//!   rings, sends the last results and stops; the shards are joined in order. Nothing accepted is
//!   lost.

mod clock;
mod config;
mod journal;
mod latency;
mod ledger;
mod message;
mod occupancy;
mod shard;
mod snapshots;
mod snapshotter;
mod submitter;
mod wait;

pub use clock::Clock;
pub use config::{ConfigError, RuntimeConfig};
pub use journal::{Durable, JournalSettings, RecoveryFailure};
pub use latency::{
    new_histogram, write_interval_log, write_tagged_interval_log, Interval, Stage, StageHistograms, TaggedInterval,
    LATENCY_NS_MAX,
};
pub use ledger::{AtomicLedger, SharedLedger};
pub use message::{InboundSlot, Response, Stamps, TappedEvent, Ticket};
pub use occupancy::{RingCount, RingGauge, RingKind, RingOccupancy};
pub use shard::ShardEngine;
pub use simex_journal::Durability;
pub use snapshots::{complete_sets, restore_set, SnapshotSet, SnapshotSettings, Stores, LEDGER_SNAPSHOT_SHARD};
pub use submitter::{Route, SubmitError, Submitter};
pub use wait::{Idle, WaitStrategy, Waker};

use disruptor::{build_single_producer, BusySpin};
use journal::{recover_shards, WriterThread};
use occupancy::{counted_ring, Rx};
use shard::{ShardJournal, ShardThread};
use simex_engine::{Engine, EngineConfig, InstrumentTable};
use snapshotter::Snapshotter;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

/// A running set of shards.
pub struct Runtime {
    shards: Vec<JoinHandle<ShardEngine>>,
    writers: Vec<JoinHandle<simex_journal::JournalWriter>>,
    snapshotter: Option<SnapshotterHandle>,
    recovery: Vec<ShardRecovery>,
    ledger: Arc<AtomicLedger>,
    latency_in: Vec<rtrb::Consumer<StageHistograms>>,
    latency_return: Vec<rtrb::Producer<StageHistograms>>,
    latency_by_shard: Vec<StageHistograms>,
    clock: Clock,
    wait: WaitStrategy,
    rings: Vec<RingGauge>,
}

/// The snapshot thread, and the flags that stop it and ask it for a set.
struct SnapshotterHandle {
    thread: JoinHandle<Snapshotter>,
    stop: Arc<AtomicBool>,
    requested: Arc<AtomicBool>,
}

/// What recovery found for one shard on start.
#[derive(Clone, Debug)]
pub struct ShardRecovery {
    pub shard: u16,
    /// The sequence of the snapshot the shard was restored from, if any.
    pub snapshot_seq: Option<u64>,
    /// Journal records replayed (after the snapshot, if any).
    pub records: u64,
    /// The shard's state hash after recovery.
    pub state_hash: u64,
    /// Torn tails truncated, corruption cut (when allowed).
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("recovery failed: {0}")]
    Recovery(#[from] RecoveryFailure),
}

/// What `Runtime::start` hands back: the runtime, one submitter per producer thread, the taps.
pub struct Started {
    pub runtime: Runtime,
    pub submitters: Vec<Submitter>,
    pub taps: Vec<EventTap>,
}

/// Every event of every shard, for one consumer (the journal writer, persistence, market data).
pub struct EventTap {
    pub name: String,
    rings: Vec<Rx<TappedEvent>>,
    next: usize,
}

impl EventTap {
    /// The next event from any shard. Events of one shard arrive in sequence order.
    pub fn poll(&mut self) -> Option<TappedEvent> {
        let rings = self.rings.len();
        for offset in 0..rings {
            let index = (self.next + offset) % rings;
            if let Ok(event) = self.rings[index].pop() {
                self.next = (index + 1) % rings;
                return Some(event);
            }
        }
        None
    }

    /// Whether every shard has stopped and every event was read.
    pub fn is_finished(&self) -> bool {
        self.rings.iter().all(|ring| ring.is_abandoned() && ring.is_empty())
    }
}

impl Runtime {
    /// Starts the shard threads and wires their rings; the one place the runtime is assembled.
    pub fn start(config: RuntimeConfig, instruments: InstrumentTable) -> Result<Started, StartError> {
        let shard_of_symbol: Arc<[u16]> = config.shard_of_symbols(&instruments)?.into();
        // Read the allowed cores once, before anything is pinned: afterwards this thread's own
        // affinity would be all that `get_core_ids` reports.
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let wait = effective_wait(&config, cores.len());
        let clock = Clock::start();

        let shards = config.shards;
        let mut submitter_rings: Vec<Vec<_>> = (0..config.submitters).map(|_| Vec::with_capacity(shards)).collect();
        let mut submitter_responses: Vec<Vec<_>> = (0..config.submitters).map(|_| Vec::with_capacity(shards)).collect();
        let mut tap_rings: Vec<Vec<_>> = config.taps.iter().map(|_| Vec::with_capacity(shards)).collect();
        let mut submitter_counts: Vec<Vec<_>> = (0..config.submitters).map(|_| Vec::with_capacity(shards)).collect();
        let mut gauges = Vec::new();
        let mut wakers = Vec::with_capacity(shards);
        let mut threads = Vec::with_capacity(shards);
        let mut writers = Vec::new();
        let engine_configs: Vec<EngineConfig> = (0..shards)
            .map(|shard| EngineConfig {
                shard_id: shard as u16,
                owned_symbols: Some(RuntimeConfig::symbols_of(&shard_of_symbol, shard)),
                ..config.engine.clone()
            })
            .collect();
        let mut recovery = Vec::new();
        let mut stores = None;
        let (ledger, mut engines): (SharedLedger, Vec<(ShardEngine, Option<simex_journal::JournalWriter>)>) =
            match &config.journal {
                Some(settings) => {
                    let recovered =
                        recover_shards(settings, engine_configs, &instruments, config.portfolios_max, clock)?;
                    stores = Some(recovered.stores);
                    let engines = recovered
                        .shards
                        .into_iter()
                        .map(|shard| {
                            recovery.push(ShardRecovery {
                                shard: shard.engine.shard_id(),
                                snapshot_seq: shard.snapshot_seq,
                                records: shard.records,
                                state_hash: shard.engine.state_hash(),
                                warnings: shard.warnings,
                            });
                            (shard.engine, Some(shard.writer))
                        })
                        .collect();
                    (recovered.ledger, engines)
                }
                None => {
                    let shared = SharedLedger(AtomicLedger::new(config.portfolios_max));
                    let engines = engine_configs
                        .into_iter()
                        .map(|c| (Engine::with_ledger(c, instruments.clone(), shared.clone()), None))
                        .collect();
                    (shared, engines)
                }
            };
        for warning in recovery.iter().flat_map(|r| r.warnings.iter().map(move |w| (r.shard, w))) {
            tracing::warn!(shard = warning.0, "{}", warning.1);
        }
        engines.reverse();
        let (mut latency_in, mut latency_return) = (Vec::new(), Vec::new());
        let snapshot_settings = config.journal.as_ref().and_then(|j| j.snapshots.clone());
        let (barrier, sides, parts) = snapshotter::barrier(shards);
        let mut sides = sides.into_iter();
        let mut durables = Vec::with_capacity(shards);

        for shard in 0..shards {
            let mut pollers = Vec::with_capacity(config.submitters);
            let mut poller_counts = Vec::with_capacity(config.submitters);
            let mut responders = Vec::with_capacity(config.submitters);
            let shard_id = shard as u16;
            for submitter in 0..config.submitters {
                let (poller, builder) =
                    build_single_producer(config.inbound_ring_slots, InboundSlot::default, BusySpin).new_event_poller();
                pollers.push(poller);
                submitter_rings[submitter].push(builder.build());
                let count = Arc::new(RingCount::default());
                poller_counts.push(count.clone());
                submitter_counts[submitter].push(count.clone());
                gauges.push(RingGauge {
                    kind: RingKind::Inbound,
                    shard: shard_id,
                    peer: submitter.to_string(),
                    capacity_slots: config.inbound_ring_slots as u64,
                    count,
                });
                let (responder, responses, gauge) =
                    counted_ring(config.outbound_ring_slots, RingKind::Responses, shard_id, submitter.to_string());
                responders.push(responder);
                submitter_responses[submitter].push(responses);
                gauges.push(gauge);
            }
            let mut taps = Vec::with_capacity(config.taps.len());
            for (rings, name) in tap_rings.iter_mut().zip(&config.taps) {
                let (tap, consumer, gauge) =
                    counted_ring(config.outbound_ring_slots, RingKind::Tap, shard_id, name.clone());
                taps.push(tap);
                rings.push(consumer);
                gauges.push(gauge);
            }
            let (latency_out, latency_collected) = rtrb::RingBuffer::new(4);
            let (mut latency_spare_in, latency_spare) = rtrb::RingBuffer::new(4);
            for _ in 0..2 {
                let _ = latency_spare_in.push(StageHistograms::default());
            }
            latency_in.push(latency_collected);
            latency_return.push(latency_spare_in);

            let (engine, journal_writer) = engines.pop().expect("one engine per shard");
            let waker = Arc::new(OnceLock::new());
            wakers.push(waker.clone());
            let journal = journal_writer.map(|writer| {
                let (events, consumer, gauge) =
                    counted_ring(config.outbound_ring_slots, RingKind::Journal, shard_id, "journal".into());
                gauges.push(gauge);
                let durable = Durable::new(engine.last_seq(), waker.clone());
                let gate = config.journal.as_ref().is_some_and(|j| j.durability == simex_journal::Durability::Sync);
                let thread = WriterThread {
                    shard_id: shard as u16,
                    writer,
                    events: consumer,
                    durable: durable.clone(),
                    wait,
                    waker: Arc::new(OnceLock::new()),
                };
                let handle = std::thread::Builder::new()
                    .name(format!("simex-journal-{shard}"))
                    .spawn(move || thread.run())
                    .expect("spawning a journal writer thread");
                writers.push(handle);
                durables.push(durable.clone());
                ShardJournal { events, durable, gate }
            });
            let thread = ShardThread {
                shard_id: shard as u16,
                engine,
                pollers,
                poller_counts,
                responders,
                taps,
                latency_out,
                latency_spare,
                latency_interval_ns: config.latency_interval_ms as i64 * 1_000_000,
                wait,
                core: (config.pin && !cores.is_empty()).then(|| cores[shard % cores.len()]),
                clock,
                snapshots: sides.next().filter(|_| journal.is_some() && snapshot_settings.is_some()),
                waker,
                journal,
            };
            let handle = std::thread::Builder::new()
                .name(format!("simex-shard-{shard}"))
                .spawn(move || thread.run())
                .expect("spawning a shard thread");
            threads.push(handle);
        }

        let snapshotter = match (snapshot_settings, stores) {
            (Some(settings), Some(stores)) => {
                let stop = Arc::new(AtomicBool::new(false));
                let requested = Arc::new(AtomicBool::new(false));
                let thread = Snapshotter {
                    settings,
                    stores,
                    barrier,
                    parts,
                    durable: durables,
                    shard_wakers: wakers.clone(),
                    ledger: ledger.clone(),
                    clock,
                    stop: stop.clone(),
                    requested: requested.clone(),
                    records_at_last_set: recovery.iter().filter_map(|r| r.snapshot_seq).sum(),
                };
                let handle = std::thread::Builder::new()
                    .name("simex-snapshots".to_string())
                    .spawn(move || thread.run())
                    .expect("spawning the snapshot thread");
                Some(SnapshotterHandle { thread: handle, stop, requested })
            }
            _ => None,
        };
        let submitters = submitter_rings
            .into_iter()
            .zip(submitter_responses)
            .zip(submitter_counts)
            .enumerate()
            .map(|(id, ((rings, responses), ring_counts))| Submitter {
                id: id as u16,
                rings,
                ring_counts,
                wakers: wakers.clone(),
                responses,
                shard_of_symbol: shard_of_symbol.clone(),
                next_ticket: 0,
                next_response_ring: 0,
                clock,
                latency: StageHistograms::default(),
            })
            .collect();
        let taps = config
            .taps
            .iter()
            .zip(tap_rings)
            .map(|(name, rings)| EventTap { name: name.clone(), rings, next: 0 })
            .collect();
        let runtime = Runtime {
            shards: threads,
            writers,
            snapshotter,
            recovery,
            ledger: ledger.0,
            latency_in,
            latency_return,
            latency_by_shard: (0..shards).map(|_| StageHistograms::default()).collect(),
            clock,
            wait,
            rings: gauges,
        };
        Ok(Started { runtime, submitters, taps })
    }

    /// Asks the snapshot thread for a snapshot set now (if anything was journaled since the last);
    /// it is taken and written in the background. Does nothing without snapshots configured.
    pub fn request_snapshot(&self) {
        if let Some(snapshotter) = &self.snapshotter {
            snapshotter.requested.store(true, std::sync::atomic::Ordering::Release);
            snapshotter.thread.thread().unpark();
        }
    }

    /// What recovery found on start, per shard (empty without a journal).
    pub fn recovery(&self) -> &[ShardRecovery] {
        &self.recovery
    }

    /// A handle on the shared ledger (for reading accounts).
    pub fn ledger(&self) -> SharedLedger {
        SharedLedger(self.ledger.clone())
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The wait strategy in force (the configured one, unless it had to fall back).
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.wait
    }

    /// The rings' gauges: each (submitter, shard) inbound ring and each outbound ring (responses,
    /// taps, journal), to read later without holding the runtime (two counters per ring; no lock
    /// the shards use).
    pub fn ring_gauges(&self) -> Vec<RingGauge> {
        self.rings.clone()
    }

    /// Merges the histograms the shards have handed over since the last call and returns the
    /// totals so far, per shard (ring and match-and-risk stages).
    pub fn collect_latency(&mut self) -> &[StageHistograms] {
        for shard in 0..self.latency_in.len() {
            while let Ok(mut histograms) = self.latency_in[shard].pop() {
                self.latency_by_shard[shard].add(&histograms);
                histograms.reset();
                let _ = self.latency_return[shard].push(histograms);
            }
        }
        &self.latency_by_shard
    }

    /// Waits for every shard to drain and stop (all submitters must have been dropped), joining them
    /// in order; returns their engines.
    pub fn shutdown(mut self) -> Vec<ShardEngine> {
        if let Some(snapshotter) = &self.snapshotter {
            snapshotter.stop.store(true, std::sync::atomic::Ordering::Release);
        }
        let engines: Vec<ShardEngine> = std::mem::take(&mut self.shards)
            .into_iter()
            .map(|handle| handle.join().expect("a shard panic aborts the process"))
            .collect();
        // The shards dropped their journal rings on the way out: each writer drains, commits, stops.
        for writer in std::mem::take(&mut self.writers) {
            writer.join().expect("a journal failure aborts the process");
        }
        if let Some(handle) = self.snapshotter.take() {
            let snapshotter = handle.thread.join().expect("the snapshot thread does not panic");
            snapshotter.write_final_set(&engines);
        }
        self.collect_latency();
        engines
    }
}

/// The configured wait strategy, or spin-then-yield with a warning when more threads would spin
/// than there are cores for them.
fn effective_wait(config: &RuntimeConfig, cores: usize) -> WaitStrategy {
    if config.wait == WaitStrategy::Spin && config.shards > cores {
        tracing::warn!(
            shards = config.shards,
            cores,
            "more spinning shard threads than allowed cores: falling back to spin-then-yield"
        );
        return WaitStrategy::SpinThenYield;
    }
    config.wait
}

#[cfg(test)]
mod tests {
    use super::*;
    use simex_engine::{CommandBody, NewOrder, Side};

    /// A submitter whose shard never polls: its ring fills, and then `submit` must answer `Busy`
    /// after a bounded wait instead of spinning forever.
    #[test]
    fn a_full_ring_answers_busy_without_blocking() {
        let (poller, builder) = build_single_producer(2, InboundSlot::default, BusySpin).new_event_poller();
        let (_responder, responses, _) = counted_ring(4, RingKind::Responses, 0, "0".into());
        let mut submitter = Submitter {
            id: 0,
            rings: vec![builder.build()],
            ring_counts: vec![Arc::new(RingCount::default())],
            wakers: vec![Arc::new(OnceLock::new())],
            responses: vec![responses],
            shard_of_symbol: vec![0u16; 16].into(),
            next_ticket: 0,
            next_response_ring: 0,
            clock: Clock::start(),
            latency: StageHistograms::default(),
        };
        let order = CommandBody::NewOrder(NewOrder::limit(1, 0, Side::Buy, 100, 1));
        assert_eq!(submitter.submit(order), Ok(0));
        assert_eq!(submitter.submit(order), Ok(1));
        assert_eq!(submitter.submit(order), Err(SubmitError::Busy));
        assert_eq!(submitter.submit(order), Err(SubmitError::Busy));
        drop(poller);
    }
}
