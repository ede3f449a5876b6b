//! The gateway core: one thread that owns the venue's `Submitter` and event tap, and bridges the
//! async gateways to them.
//!
//! A handler sends a [`CoreRequest`] (a batch of commands and a oneshot reply) over a channel.
//! The core submits each command, collects its events from the response ring until every shard it
//! went to said `Done`, folds the tap into the read model, and only then replies, so a client that
//! reads its history right after a command sees that command in it. A command refused by a full
//! ring is answered [`Outcome::Busy`] and nothing of it happened.
//!
//! The core never spins for long: with nothing in flight it blocks on the request channel (waking
//! every millisecond to fold tapped events from other submitters); with commands in flight it
//! backs off, then yields for up to [`YIELD_WHILE_IN_FLIGHT`], then parks for short intervals,
//! since the response rings have no waker for it (spin, then yield, then park).

use crate::history::{LevelChange, MemoryHistory};
use crate::runtime::{EventTap, Response, Route, StageHistograms, SubmitError, Submitter, TappedEvent, Ticket};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use simex_engine::{CommandBody, Event};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How long the core yields, rather than parks, while commands are in flight and nothing arrives.
pub const YIELD_WHILE_IN_FLIGHT: Duration = Duration::from_micros(500);

/// What became of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The command's events, in order (several shards' events follow each other shard by shard).
    Done(Vec<Event>),
    /// The shard's ring was full: the command was not submitted.
    Busy,
}

pub struct CoreRequest {
    pub commands: Vec<CommandBody>,
    pub reply: tokio::sync::oneshot::Sender<Vec<Outcome>>,
}

/// A cloneable handle on the core thread.
#[derive(Clone)]
pub struct CoreHandle {
    requests: Sender<CoreRequest>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CoreError {
    #[error("the venue is busy")]
    Busy,
    #[error("the venue is stopping")]
    Stopped,
}

impl CoreHandle {
    /// Runs `commands` and waits for their outcomes, in order.
    pub async fn execute(&self, commands: Vec<CommandBody>) -> Result<Vec<Outcome>, CoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        match self.requests.try_send(CoreRequest { commands, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(CoreError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(CoreError::Stopped),
        }
        answer.await.map_err(|_| CoreError::Stopped)
    }

    /// Runs one command; `Busy` if its ring was full.
    pub async fn execute_one(&self, command: CommandBody) -> Result<Vec<Event>, CoreError> {
        match self.execute(vec![command]).await?.pop() {
            Some(Outcome::Done(events)) => Ok(events),
            Some(Outcome::Busy) => Err(CoreError::Busy),
            None => Err(CoreError::Stopped),
        }
    }
}

/// The events folded in one go (all of a command's events arrive together), and the book level
/// changes they made, as broadcast.
#[derive(Debug, Default)]
pub struct Fold {
    pub events: Vec<TappedEvent>,
    /// In event order; see [`crate::history::LevelChange`].
    pub levels: Vec<LevelChange>,
}

pub type FoldedEvents = Arc<Fold>;

/// Tapped events folded under one write lock, so readers are not starved under load.
const TAP_FOLD_MAX: usize = 65_536;

/// How often the core hands its submitter's latency histograms over to `/metrics`.
const LATENCY_HANDOVER_INTERVAL: Duration = Duration::from_secs(1);

/// Requests queued for the core before handlers are told `busy`.
const REQUESTS_QUEUED_MAX: usize = 4096;

/// Starts the core thread. It stops when every handle is dropped and nothing is in flight, and
/// returns the submitter and tap.
pub fn spawn(
    submitter: Submitter,
    tap: EventTap,
    history: MemoryHistory,
    events: broadcast::Sender<FoldedEvents>,
    latency: Arc<Mutex<StageHistograms>>,
) -> (CoreHandle, std::thread::JoinHandle<(Submitter, EventTap)>) {
    let (requests, receiver) = crossbeam_channel::bounded(REQUESTS_QUEUED_MAX);
    // From here on the core folds every event, and publishes the book changes it makes.
    let core = Core {
        submitter,
        tap,
        history,
        events,
        latency,
        latency_handed_at: Instant::now(),
        receiver,
        in_flight: HashMap::new(),
        requests: HashMap::new(),
        next: 0,
    };
    let handle = std::thread::Builder::new()
        .name("simex-gateway-core".into())
        .spawn(move || core.run())
        .expect("spawning the gateway core");
    (CoreHandle { requests }, handle)
}

struct InFlight {
    request: u64,
    index: usize,
    dones_expected: usize,
    events: Vec<Event>,
}

struct Pending {
    outcomes: Vec<Option<Outcome>>,
    remaining: usize,
    reply: tokio::sync::oneshot::Sender<Vec<Outcome>>,
}

struct Core {
    submitter: Submitter,
    tap: EventTap,
    history: MemoryHistory,
    /// Every fold's events, for subscribers (`/ws`); sending never blocks.
    events: broadcast::Sender<FoldedEvents>,
    /// Where the submitter's egress and round-trip histograms are merged for `/metrics`.
    latency: Arc<Mutex<StageHistograms>>,
    latency_handed_at: Instant,
    receiver: Receiver<CoreRequest>,
    in_flight: HashMap<Ticket, InFlight>,
    requests: HashMap<u64, Pending>,
    next: u64,
}

impl Core {
    fn run(mut self) -> (Submitter, EventTap) {
        let backoff = crossbeam_utils::Backoff::new();
        let mut disconnected = false;
        // Since when nothing has happened while commands are in flight.
        let mut idle_since: Option<Instant> = None;
        loop {
            let mut worked = false;
            while let Ok(request) = self.receiver.try_recv() {
                self.accept(request);
                worked = true;
            }
            let mut finished = Vec::new();
            while let Some(response) = self.submitter.poll() {
                worked = true;
                self.on_response(response, &mut finished);
            }
            worked |= self.fold_tap();
            for request in finished {
                if let Some(pending) = self.requests.remove(&request) {
                    let outcomes = pending.outcomes.into_iter().map(|o| o.unwrap_or(Outcome::Busy)).collect();
                    let _ = pending.reply.send(outcomes);
                }
            }
            self.hand_over_latency();
            if worked {
                backoff.reset();
                idle_since = None;
                continue;
            }
            if self.in_flight.is_empty() {
                idle_since = None;
                if disconnected {
                    return (self.submitter, self.tap);
                }
                match self.receiver.recv_timeout(Duration::from_millis(1)) {
                    Ok(request) => self.accept(request),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => disconnected = true,
                }
            } else if !backoff.is_completed() {
                backoff.snooze();
            } else if idle_since.get_or_insert_with(Instant::now).elapsed() < YIELD_WHILE_IN_FLIGHT {
                // An answer is usually tens of microseconds away: yielding catches it sooner than
                // a park would, and leaves the core to the shard and the HTTP workers.
                std::thread::yield_now();
            } else {
                std::thread::park_timeout(Duration::from_micros(50));
            }
        }
    }

    /// Merges the submitter's histograms into the shared ones, at most once per interval.
    fn hand_over_latency(&mut self) {
        if self.latency_handed_at.elapsed() < LATENCY_HANDOVER_INTERVAL {
            return;
        }
        self.latency_handed_at = Instant::now();
        let taken = self.submitter.take_latency();
        self.latency.lock().unwrap_or_else(|p| p.into_inner()).add(&taken);
    }

    fn accept(&mut self, request: CoreRequest) {
        let id = self.next;
        self.next += 1;
        let count = request.commands.len();
        let mut pending = Pending { outcomes: vec![None; count], remaining: count, reply: request.reply };
        for (index, command) in request.commands.into_iter().enumerate() {
            let dones_expected = match self.submitter.route(&command) {
                Route::Shard(_) => 1,
                Route::AllShards => self.submitter.shards(),
            };
            match self.submitter.submit(command) {
                Ok(ticket) => {
                    self.in_flight.insert(ticket, InFlight { request: id, index, dones_expected, events: Vec::new() });
                }
                Err(SubmitError::Busy) => {
                    pending.outcomes[index] = Some(Outcome::Busy);
                    pending.remaining -= 1;
                }
            }
        }
        if pending.remaining == 0 {
            let outcomes = pending.outcomes.into_iter().map(|o| o.unwrap_or(Outcome::Busy)).collect();
            let _ = pending.reply.send(outcomes);
        } else {
            self.requests.insert(id, pending);
        }
    }

    fn on_response(&mut self, response: Response, finished: &mut Vec<u64>) {
        match response {
            Response::Event { ticket, event, .. } => {
                if let Some(flight) = self.in_flight.get_mut(&ticket) {
                    flight.events.push(event);
                }
            }
            Response::Done { ticket, .. } => {
                let Some(flight) = self.in_flight.get_mut(&ticket) else { return };
                flight.dones_expected -= 1;
                if flight.dones_expected > 0 {
                    return;
                }
                let Some(flight) = self.in_flight.remove(&ticket) else { return };
                if let Some(pending) = self.requests.get_mut(&flight.request) {
                    pending.outcomes[flight.index] = Some(Outcome::Done(flight.events));
                    pending.remaining -= 1;
                    if pending.remaining == 0 {
                        finished.push(flight.request);
                    }
                }
            }
        }
    }

    /// Folds everything waiting in the tap into the read model; whether there was anything.
    fn fold_tap(&mut self) -> bool {
        let Some(first) = self.tap.poll() else { return false };
        let mut folded = Vec::new();
        let levels;
        // Book level changes are recorded only while someone follows `/ws`.
        let broadcast = self.events.receiver_count() > 0;
        {
            let mut model = self.history.write();
            model.record_level_changes(broadcast);
            model.apply(first.shard, &first.event);
            folded.push(first);
            for _ in 0..TAP_FOLD_MAX {
                let Some(tapped) = self.tap.poll() else { break };
                model.apply(tapped.shard, &tapped.event);
                folded.push(tapped);
            }
            levels = model.take_level_changes();
        }
        if broadcast {
            let _ = self.events.send(Arc::new(Fold { events: folded, levels }));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core that cannot take the request answers `Busy` at once (which the HTTP layer sends as
    /// 503 `busy`), and a stopped core answers `Stopped`.
    #[test]
    fn a_full_request_queue_is_busy_and_a_gone_core_is_stopped() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (requests, receiver) = crossbeam_channel::bounded(1);
        let handle = CoreHandle { requests };
        let (reply, _answer) = tokio::sync::oneshot::channel();
        handle.requests.try_send(CoreRequest { commands: Vec::new(), reply }).unwrap();
        let busy = runtime.block_on(handle.execute_one(CommandBody::AdvanceTime));
        assert_eq!(busy, Err(CoreError::Busy));
        let error = crate::http::error::ApiError::from(CoreError::Busy);
        assert_eq!((error.status.as_u16(), error.code.as_str()), (503, "busy"));
        drop(receiver);
        let stopped = runtime.block_on(handle.execute_one(CommandBody::AdvanceTime));
        assert_eq!(stopped, Err(CoreError::Stopped));
    }
}
