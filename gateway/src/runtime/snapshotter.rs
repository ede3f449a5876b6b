//! Periodic snapshot sets of the running venue, taken at one consistent cut of every shard.
//!
//! Shards share the ledger, so a set is only consistent if every shard stops between two commands
//! while the ledger is read. The snapshotter thread does this with a barrier:
//!
//! 1. it raises `requested` to a new generation and wakes the shards;
//! 2. each shard, between two commands, serializes its engine (an in-memory copy, no I/O), hands the
//!    bytes over an SPSC ring, counts itself in `arrived` and waits for `released`;
//! 3. when every shard has arrived, the snapshotter serializes the ledger and raises `released`; the
//!    shards carry on. The pause lasts as long as the slowest engine's serialization plus the
//!    ledger's (measured by the runtime benchmark's snapshot case);
//! 4. off the barrier, the snapshotter waits until each shard's journal is durable up to the
//!    sequence its snapshot holds (a snapshot must never hold state the journal could lose), writes
//!    the set and prunes journal segments no complete set needs any more.
//!
//! Writing a snapshot can fail (a full disk): that is logged and the venue goes on, since the
//! journal still holds everything; nothing is pruned unless a newer set verified.

use super::clock::Clock;
use super::journal::Durable;
use super::ledger::SharedLedger;
use super::shard::ShardEngine;
use super::snapshots::{SnapshotSettings, Stores};
use super::wait::{Idle, WaitStrategy, Waker};
use simex_engine::ledger_snapshot_bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How often the snapshotter looks at the record counts and the clock.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// The barrier the snapshotter and the shards meet at.
#[derive(Default)]
pub(super) struct Barrier {
    requested: AtomicU64,
    released: AtomicU64,
    arrived: AtomicUsize,
    exited: AtomicUsize,
    snapshotter: OnceLock<Thread>,
}

impl Barrier {
    fn wake_snapshotter(&self) {
        if let Some(thread) = self.snapshotter.get() {
            thread.unpark();
        }
    }
}

/// One shard's engine snapshot, handed from the shard to the snapshotter.
pub(super) struct ShardPart {
    generation: u64,
    last_seq: u64,
    bytes: Vec<u8>,
}

/// The shard's end of the barrier.
pub(super) struct ShardSide {
    barrier: Arc<Barrier>,
    parts: rtrb::Producer<ShardPart>,
    handled: u64,
}

impl ShardSide {
    /// Whether the snapshotter waits for this shard (one atomic load; checked between commands).
    pub fn is_requested(&self) -> bool {
        self.barrier.requested.load(Ordering::Acquire) != self.handled
    }

    /// Serializes the engine, hands it over and waits until the snapshotter has read the ledger.
    pub fn take_part(&mut self, engine: &ShardEngine, waker: &Waker, wait: WaitStrategy) {
        let generation = self.barrier.requested.load(Ordering::Acquire);
        self.handled = generation;
        let part = ShardPart { generation, last_seq: engine.last_seq(), bytes: engine.snapshot_bytes() };
        if self.parts.push(part).is_err() {
            // The snapshotter has not taken the previous part: it abandoned that generation. This
            // shard does not take part in this one either; the snapshotter sees the part missing.
            tracing::warn!("snapshot part ring full; skipping this snapshot");
        }
        self.barrier.arrived.fetch_add(1, Ordering::AcqRel);
        self.barrier.wake_snapshotter();
        let mut idle = Idle::new(wait);
        let released = || self.barrier.released.load(Ordering::Acquire) >= generation;
        while !released() {
            idle.wait(waker, released);
        }
    }

    /// The shard has left its loop: it will not take part in any further barrier.
    pub fn exit(&self) {
        self.barrier.exited.fetch_add(1, Ordering::AcqRel);
        self.barrier.wake_snapshotter();
    }
}

/// The snapshotter thread's state.
pub(super) struct Snapshotter {
    pub settings: SnapshotSettings,
    pub stores: Stores,
    pub barrier: Arc<Barrier>,
    pub parts: Vec<rtrb::Consumer<ShardPart>>,
    pub durable: Vec<Arc<Durable>>,
    pub shard_wakers: Vec<Arc<OnceLock<Waker>>>,
    pub ledger: SharedLedger,
    pub clock: Clock,
    pub stop: Arc<AtomicBool>,
    /// Set by [`super::Runtime::request_snapshot`]: take a set now (if anything was journaled).
    pub requested: Arc<AtomicBool>,
    /// Records (over all shards) the set recovery started from holds: the count goes on from there,
    /// so a venue restarted often still snapshots every `every_records`.
    pub records_at_last_set: u64,
}

/// Builds the barrier, the shards' ends and the snapshot part rings.
pub(super) fn barrier(shards: usize) -> (Arc<Barrier>, Vec<ShardSide>, Vec<rtrb::Consumer<ShardPart>>) {
    let barrier = Arc::new(Barrier::default());
    let mut sides = Vec::with_capacity(shards);
    let mut consumers = Vec::with_capacity(shards);
    for _ in 0..shards {
        let (parts, consumer) = rtrb::RingBuffer::new(1);
        sides.push(ShardSide { barrier: barrier.clone(), parts, handled: 0 });
        consumers.push(consumer);
    }
    (barrier, sides, consumers)
}

impl Snapshotter {
    /// Takes sets until stopped; returns itself so that the runtime can write the last set at
    /// shutdown.
    pub fn run(mut self) -> Snapshotter {
        let _ = self.barrier.snapshotter.set(std::thread::current());
        let mut generation = 0u64;
        let mut last_records = self.records_at_last_set;
        let mut last_at = Instant::now();
        while !self.stop.load(Ordering::Acquire) && self.barrier.exited.load(Ordering::Acquire) == 0 {
            std::thread::park_timeout(POLL_EVERY);
            let records = self.records() - last_records;
            let by_count = self.settings.every_records > 0 && records >= self.settings.every_records;
            let by_time = self.settings.every_ms > 0
                && records > 0
                && last_at.elapsed() >= Duration::from_millis(self.settings.every_ms);
            // A request waits until something is durable to snapshot (with `none` or `batch`
            // durability the journal may still be catching up with what clients were told).
            let by_request = records > 0 && self.requested.swap(false, Ordering::AcqRel);
            if !(by_count || by_time || by_request) {
                continue;
            }
            generation += 1;
            last_at = Instant::now();
            match self.take_set(generation) {
                Some(Some(set_records)) => last_records = set_records,
                Some(None) => {}
                None => break,
            }
        }
        self.records_at_last_set = last_records;
        self
    }

    /// Writes a set of the stopped venue (every shard joined, every journal writer done) unless
    /// nothing was journaled since the last one, so that the next start replays nothing.
    pub fn write_final_set(&self, engines: &[ShardEngine]) {
        let records: u64 = engines.iter().map(|e| e.last_seq()).sum();
        if !self.settings.on_shutdown || records == self.records_at_last_set {
            return;
        }
        let parts: Vec<(u32, u64, Vec<u8>)> =
            engines.iter().map(|e| (u32::from(e.shard_id()), e.last_seq(), e.snapshot_bytes())).collect();
        let ledger_bytes = ledger_snapshot_bytes(&self.ledger);
        let _ = self.write(self.clock.now_ns(), &parts, &ledger_bytes, Duration::ZERO);
    }

    /// Records journaled durably over all shards.
    fn records(&self) -> u64 {
        self.durable.iter().map(|d| d.seq()).sum()
    }

    /// Takes and writes one set; returns the records it holds (`Some(None)` if it could not be
    /// written), or `None` when the shards are stopping and it was abandoned.
    fn take_set(&mut self, generation: u64) -> Option<Option<u64>> {
        let shards = self.parts.len();
        let started = Instant::now();
        self.barrier.arrived.store(0, Ordering::Release);
        self.barrier.requested.store(generation, Ordering::Release);
        for waker in self.shard_wakers.iter().filter_map(|w| w.get()) {
            waker.wake();
        }
        while self.barrier.arrived.load(Ordering::Acquire) < shards {
            if self.barrier.exited.load(Ordering::Acquire) > 0 {
                self.release(generation);
                return None;
            }
            std::thread::park_timeout(Duration::from_millis(1));
        }
        let timestamp_ns = self.clock.now_ns();
        let ledger_bytes = ledger_snapshot_bytes(&self.ledger);
        self.release(generation);
        let paused = started.elapsed();

        let mut parts = Vec::with_capacity(shards);
        for (shard, ring) in self.parts.iter_mut().enumerate() {
            match ring.pop() {
                Ok(part) if part.generation == generation => parts.push((shard as u32, part.last_seq, part.bytes)),
                _ => {
                    tracing::warn!(shard, "a shard's snapshot part is missing; skipping this snapshot");
                    return Some(None);
                }
            }
        }
        // A snapshot may only hold what the journal has made durable.
        for (durable, (_, last_seq, _)) in self.durable.iter().zip(&parts) {
            while durable.seq() < *last_seq {
                std::thread::park_timeout(Duration::from_millis(1));
            }
        }
        let written = self.write(timestamp_ns, &parts, &ledger_bytes, paused);
        Some(written.then(|| parts.iter().map(|(_, seq, _)| seq).sum()))
    }

    /// Writes a set and prunes the journal; failures are logged (the journal still has it all).
    /// Whether the set was written.
    fn write(&self, timestamp_ns: i64, parts: &[(u32, u64, Vec<u8>)], ledger_bytes: &[u8], paused: Duration) -> bool {
        let bytes: usize = parts.iter().map(|(_, _, b)| b.len()).sum::<usize>() + ledger_bytes.len();
        if let Err(error) = self.stores.write_set(timestamp_ns, parts, ledger_bytes) {
            tracing::error!(%error, "writing a snapshot set failed; the journal still holds every record");
            return false;
        }
        let pruned = match self.settings.prune.then(|| self.stores.prune_journals()) {
            None => 0,
            Some(Ok(pruned)) => pruned,
            Some(Err(error)) => {
                tracing::error!(%error, "pruning the journal after a snapshot failed");
                0
            }
        };
        tracing::info!(
            timestamp_ns,
            bytes,
            paused_us = paused.as_micros() as u64,
            pruned_segments = pruned,
            "wrote a snapshot set"
        );
        true
    }

    fn release(&self, generation: u64) {
        self.barrier.released.store(generation, Ordering::Release);
        for waker in self.shard_wakers.iter().filter_map(|w| w.get()) {
            waker.wake();
        }
    }
}
