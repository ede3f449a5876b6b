//! One shard thread: poll the inbound rings, apply each command to the engine, send the results.
//!
//! The loop owns everything it touches (the engine, the ring ends, its histograms), so the hot path
//! takes no lock and allocates nothing: commands are copied out of preallocated ring slots, events go
//! into a reused buffer and are copied into preallocated SPSC ring slots. Rings are polled in turn,
//! at most `POLL_BATCH` commands from each per pass, so one busy submitter cannot starve another.
//!
//! The shard stamps each command with the venue clock when it dequeues it, never earlier than the
//! previous command's, so the engine's time is monotonic whatever order submitters' clocks read in.
//!
//! A panic in a shard aborts the process: the venue is crash-only, and recovery is the journal's
//! job. Leaving submitters to spin against a dead shard would be worse.

use super::clock::Clock;
use super::journal::{Durable, JournalEntry};
use super::latency::{Stage, StageHistograms};
use super::ledger::SharedLedger;
use super::message::{InboundSlot, Response, Stamps, TappedEvent};
use super::occupancy::{RingCount, Tx};
use super::snapshotter::ShardSide;
use super::wait::{Idle, WaitStrategy, Waker};
use disruptor::{EventPoller, Polling, SingleProducerBarrier};
use simex_engine::{Command, Engine, Event, FastBook};
use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

/// Most commands taken from one ring before the next ring is polled.
const POLL_BATCH: u64 = 64;
/// Commands between two reads of the clock for the latency hand-over.
const HANDOVER_CHECK_EVERY: u32 = 1024;

pub type ShardEngine = Engine<FastBook, SharedLedger>;

pub(super) struct ShardThread {
    pub shard_id: u16,
    pub engine: ShardEngine,
    pub pollers: Vec<EventPoller<InboundSlot, SingleProducerBarrier>>,
    /// The occupancy count of each poller's ring (its consumer side).
    pub poller_counts: Vec<Arc<RingCount>>,
    /// Indexed by submitter.
    pub responders: Vec<Tx<Response>>,
    pub taps: Vec<Tx<TappedEvent>>,
    pub latency_out: rtrb::Producer<StageHistograms>,
    pub latency_spare: rtrb::Consumer<StageHistograms>,
    pub latency_interval_ns: i64,
    pub wait: WaitStrategy,
    pub core: Option<core_affinity::CoreId>,
    pub clock: Clock,
    pub waker: Arc<OnceLock<Waker>>,
    pub journal: Option<ShardJournal>,
    /// This shard's end of the snapshot barrier (with a journal and snapshots configured).
    pub snapshots: Option<ShardSide>,
}

/// The shard's end of its journal writer.
pub(super) struct ShardJournal {
    pub events: Tx<JournalEntry>,
    pub durable: Arc<Durable>,
    /// Hold responses until their events are durable (`sync` durability).
    pub gate: bool,
}

/// A response waiting for the journal.
#[derive(Clone, Copy)]
struct Pending {
    required_seq: u64,
    submitter: u16,
    response: Response,
}

/// Responses held at most for the journal; when full, the shard stops taking commands until the
/// journal catches up.
const PENDING_MAX: usize = 1 << 16;

/// Aborts the process if the shard thread unwinds.
struct AbortOnPanic(u16);

impl Drop for AbortOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("simex: shard {} panicked; aborting (recovery is the journal's job)", self.0);
            std::process::abort();
        }
    }
}

impl ShardThread {
    /// Runs until every submitter is gone and every ring is drained; returns the engine.
    pub fn run(mut self) -> ShardEngine {
        let _abort = AbortOnPanic(self.shard_id);
        if let Some(core) = self.core {
            if !core_affinity::set_for_current(core) {
                tracing::warn!(shard = self.shard_id, core = core.id, "could not pin the shard thread");
            }
        }
        let waker_slot = self.waker.clone();
        let waker = waker_slot.get_or_init(Waker::for_current_thread);
        let mut idle = Idle::new(self.wait);
        let mut open = vec![true; self.pollers.len()];
        let mut open_count = self.pollers.len();
        let mut events: Vec<Event> = Vec::with_capacity(1024);
        let mut latency = StageHistograms::default();
        let mut last_timestamp_ns = i64::MIN;
        let mut next_handover_ns = self.clock.now_ns() + self.latency_interval_ns;
        let mut since_check = 0u32;
        let mut pending: VecDeque<Pending> = VecDeque::with_capacity(PENDING_MAX);

        while open_count > 0 {
            if let Some(snapshots) = self.snapshots.as_mut().filter(|s| s.is_requested()) {
                snapshots.take_part(&self.engine, waker, self.wait);
            }
            let mut worked = self.release(&mut pending);
            for (index, poller) in self.pollers.iter_mut().enumerate() {
                if !open[index] || pending.len() + 2 * POLL_BATCH as usize * 16 > PENDING_MAX {
                    continue;
                }
                match poller.take(POLL_BATCH) {
                    Ok(mut slots) => {
                        worked = true;
                        let mut taken = 0u64;
                        // One clock read per command: the moment one command is decided is the
                        // moment the next one in the batch leaves the queue.
                        let mut dequeue_ns = self.clock.now_ns();
                        for slot in &mut slots {
                            last_timestamp_ns = last_timestamp_ns.max(dequeue_ns);
                            let body = slot.command.expect("published slots carry a command");
                            events.clear();
                            self.engine.apply(&Command { timestamp_ns: last_timestamp_ns, body }, &mut events);
                            let decided_ns = self.clock.now_ns();
                            latency.record(Stage::Ring, slot.ingress_ns, dequeue_ns);
                            latency.record(Stage::MatchRisk, dequeue_ns, decided_ns);
                            let stamps = Stamps { ingress_ns: slot.ingress_ns, dequeue_ns, decided_ns };
                            dequeue_ns = decided_ns;
                            if let Some(journal) = &mut self.journal {
                                for (index, event) in events.iter().enumerate() {
                                    let last_of_command = index + 1 == events.len();
                                    push_waiting(&mut journal.events, JournalEntry { event: *event, last_of_command });
                                }
                            }
                            match &self.journal {
                                Some(journal) if journal.gate => hold_results(
                                    self.shard_id,
                                    slot,
                                    &events,
                                    stamps,
                                    self.engine.last_seq(),
                                    &mut pending,
                                    &mut self.taps,
                                ),
                                _ => send_results(
                                    self.shard_id,
                                    slot,
                                    &events,
                                    stamps,
                                    &mut self.responders[usize::from(slot.submitter)],
                                    &mut self.taps,
                                ),
                            }
                            since_check += 1;
                            taken += 1;
                        }
                        drop(slots);
                        self.poller_counts[index].consumed(taken);
                    }
                    Err(Polling::NoEvents) => {}
                    Err(Polling::Shutdown) => {
                        open[index] = false;
                        open_count -= 1;
                    }
                }
            }
            if worked {
                idle.reset();
            } else {
                let pollers = &self.pollers;
                let durable_seq = self.journal.as_ref().map_or(u64::MAX, |j| j.durable.seq());
                let releasable = pending.front().is_some_and(|p| p.required_seq <= durable_seq);
                let snapshots = &self.snapshots;
                let snapshot = || snapshots.as_ref().is_some_and(ShardSide::is_requested);
                idle.wait(waker, || releasable || snapshot() || pollers.iter().any(|p| p.has_available()));
                since_check = HANDOVER_CHECK_EVERY;
            }
            if since_check >= HANDOVER_CHECK_EVERY {
                since_check = 0;
                let now_ns = self.clock.now_ns();
                if now_ns >= next_handover_ns {
                    next_handover_ns = now_ns + self.latency_interval_ns;
                    self.hand_over(&mut latency);
                }
            }
        }
        if let Some(snapshots) = &self.snapshots {
            snapshots.exit();
        }
        // Every submitter is gone; the last results wait for the journal, then the journal ring is
        // closed (by dropping it) so the writer drains, commits and stops.
        while !pending.is_empty() {
            if !self.release(&mut pending) {
                std::thread::yield_now();
            }
        }
        self.hand_over(&mut latency);
        self.engine
    }

    /// Sends the held responses whose events are durable; whether any was sent.
    fn release(&mut self, pending: &mut VecDeque<Pending>) -> bool {
        let Some(journal) = &self.journal else { return false };
        let durable_seq = journal.durable.seq();
        let mut released = false;
        while let Some(front) = pending.front() {
            if front.required_seq > durable_seq {
                break;
            }
            let front = pending.pop_front().expect("front exists");
            push_waiting(&mut self.responders[usize::from(front.submitter)], front.response);
            released = true;
        }
        released
    }

    /// Gives the histograms recorded since the last hand-over to the collector, taking back an
    /// empty set; if the collector has not returned one yet, keeps recording into the current set.
    fn hand_over(&mut self, latency: &mut StageHistograms) {
        if latency.is_empty() || self.latency_out.is_full() {
            return;
        }
        let Ok(spare) = self.latency_spare.pop() else { return };
        let full = std::mem::replace(latency, spare);
        let _ = self.latency_out.push(full);
    }
}

/// Sends a command's events and its completion to its submitter, and every event to every tap.
fn send_results(
    shard: u16,
    slot: &InboundSlot,
    events: &[Event],
    stamps: Stamps,
    responder: &mut Tx<Response>,
    taps: &mut [Tx<TappedEvent>],
) {
    for event in events {
        push_waiting(responder, Response::Event { ticket: slot.ticket, shard, event: *event });
        for tap in taps.iter_mut() {
            push_waiting(tap, TappedEvent { shard, event: *event });
        }
    }
    let done = Response::Done { ticket: slot.ticket, shard, events: events.len() as u32, stamps };
    push_waiting(responder, done);
}

/// Like `send_results`, but holds the submitter's responses until the journal has them durable.
/// Taps get the events at once: they are downstream consumers, not clients.
fn hold_results(
    shard: u16,
    slot: &InboundSlot,
    events: &[Event],
    stamps: Stamps,
    last_seq: u64,
    pending: &mut VecDeque<Pending>,
    taps: &mut [Tx<TappedEvent>],
) {
    for event in events {
        let response = Response::Event { ticket: slot.ticket, shard, event: *event };
        pending.push_back(Pending { required_seq: event.seq, submitter: slot.submitter, response });
        for tap in taps.iter_mut() {
            push_waiting(tap, TappedEvent { shard, event: *event });
        }
    }
    let done = Response::Done { ticket: slot.ticket, shard, events: events.len() as u32, stamps };
    pending.push_back(Pending { required_seq: last_seq, submitter: slot.submitter, response: done });
}

/// Pushes into a result ring, waiting while it is full: results are never dropped while their
/// consumer exists. A consumer that stops reading stalls this shard; consumers (gateways, the journal
/// writer) drain their rings promptly and hold slow clients in bounded buffers of their own.
fn push_waiting<T>(ring: &mut Tx<T>, value: T) {
    let mut value = value;
    let backoff = crossbeam_utils::Backoff::new();
    loop {
        match ring.push(value) {
            Ok(()) => return,
            Err(rtrb::PushError::Full(returned)) => {
                if ring.is_abandoned() {
                    return;
                }
                value = returned;
                backoff.snooze();
            }
        }
    }
}
