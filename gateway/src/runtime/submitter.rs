//! The in-process API: a [`Submitter`] puts commands on shard rings and reads back their results.
//!
//! # Contract
//! - One `Submitter` per producer thread (it is `Send`, not `Sync`). Each holds its own
//!   single-producer ring into every shard, so submitters never contend with each other.
//! - `submit` routes a command to the shard that owns it (its symbol's shard, the shard encoded in an
//!   order id, shard 0 for portfolio commands, every shard for a mass cancel across symbols or a
//!   time advance) and returns a [`Ticket`] at once.
//! - If the ring is full after a short bounded backoff, `submit` returns [`SubmitError::Busy`] and
//!   the command was not accepted: nothing of it happens. It never blocks on a full ring (broadcasts
//!   excepted, see `submit`).
//! - Results come back through `poll`: the command's events, then a `Done` from each shard it went
//!   to, in the order the shard processed them.
//!
//! ```
//! use simex::runtime::{Runtime, RuntimeConfig, Response};
//! use simex_engine::{CommandBody, InstrumentTable};
//!
//! let mut started = Runtime::start(RuntimeConfig::default(), InstrumentTable::default_table()).unwrap();
//! let submitter = &mut started.submitters[0];
//! let ticket = submitter.submit(CommandBody::CreatePortfolio { portfolio_id: 1, cash_micros: 1_000_000 }).unwrap();
//! let done = loop {
//!     match submitter.poll() {
//!         Some(Response::Done { ticket: t, events, .. }) if t == ticket => break events,
//!         _ => std::thread::yield_now(),
//!     }
//! };
//! assert_eq!(done, 1);
//! drop(started.submitters);
//! started.runtime.shutdown();
//! ```

use super::clock::Clock;
use super::latency::{Stage, StageHistograms};
use super::message::{InboundSlot, Response, Ticket};
use super::occupancy::{RingCount, Rx};
use super::wait::Waker;
use crossbeam_utils::Backoff;
use disruptor::{Producer, SingleConsumerBarrier, SingleProducer};
use simex_engine::engine::ORDER_ID_SHARD_SHIFT;
use simex_engine::{CommandBody, Event};
use std::sync::{Arc, OnceLock};

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The shard's ring stayed full: retry later. Nothing was submitted.
    #[error("busy: the shard's inbound ring is full")]
    Busy,
}

/// Where a command goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Shard(usize),
    AllShards,
}

pub struct Submitter {
    pub(super) id: u16,
    pub(super) rings: Vec<SingleProducer<InboundSlot, SingleConsumerBarrier>>,
    pub(super) wakers: Vec<Arc<OnceLock<Waker>>>,
    pub(super) responses: Vec<Rx<Response>>,
    /// The occupancy count of each shard ring (its producer side).
    pub(super) ring_counts: Vec<Arc<RingCount>>,
    pub(super) shard_of_symbol: Arc<[u16]>,
    pub(super) next_ticket: u64,
    pub(super) next_response_ring: usize,
    pub(super) clock: Clock,
    pub(super) latency: StageHistograms,
}

impl Submitter {
    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn shards(&self) -> usize {
        self.rings.len()
    }

    /// The shard (or shards) a command belongs to.
    pub fn route(&self, command: &CommandBody) -> Route {
        let of_symbol = |symbol_id: u16| {
            Route::Shard(usize::from(self.shard_of_symbol.get(usize::from(symbol_id)).copied().unwrap_or(0)))
        };
        let of_order = |order_id: u64| {
            let shard = (order_id >> ORDER_ID_SHARD_SHIFT) as usize;
            // An id from no shard is unknown everywhere; shard 0 says so.
            Route::Shard(if shard < self.rings.len() { shard } else { 0 })
        };
        match *command {
            CommandBody::NewOrder(order) | CommandBody::NewBracket { entry: order, .. } => of_symbol(order.symbol_id),
            CommandBody::Cancel { order_id, .. } | CommandBody::Replace { order_id, .. } => of_order(order_id),
            CommandBody::MassCancel { symbol_id: Some(symbol_id), .. }
            | CommandBody::SetReferencePrice { symbol_id, .. }
            | CommandBody::SetHalted { symbol_id, .. }
            | CommandBody::ReferenceQuote { symbol_id, .. }
            | CommandBody::ReferenceTrade { symbol_id, .. } => of_symbol(symbol_id),
            CommandBody::MassCancel { symbol_id: None, .. } | CommandBody::AdvanceTime => Route::AllShards,
            CommandBody::CreatePortfolio { .. }
            | CommandBody::AdjustCash { .. }
            | CommandBody::SetRiskLimits { .. } => Route::Shard(0),
        }
    }

    /// Submits a command; see the module doc for the contract.
    ///
    /// A command for every shard (a mass cancel across symbols, a time advance) waits for room in
    /// each ring rather than being applied by some shards and refused by others.
    pub fn submit(&mut self, command: CommandBody) -> Result<Ticket, SubmitError> {
        let ticket = (u64::from(self.id) << 48) | self.next_ticket;
        match self.route(&command) {
            Route::Shard(shard) => {
                if !self.publish(shard, ticket, command, false) {
                    return Err(SubmitError::Busy);
                }
            }
            Route::AllShards => {
                for shard in 0..self.rings.len() {
                    self.publish(shard, ticket, command, true);
                }
            }
        }
        self.next_ticket += 1;
        Ok(ticket)
    }

    fn publish(&mut self, shard: usize, ticket: Ticket, command: CommandBody, wait_for_room: bool) -> bool {
        let (submitter, clock) = (self.id, self.clock);
        let backoff = Backoff::new();
        loop {
            let published = self.rings[shard].try_publish(|slot| {
                *slot = InboundSlot { ticket, submitter, ingress_ns: clock.now_ns(), command: Some(command) };
            });
            if published.is_ok() {
                self.ring_counts[shard].produced(1);
                if let Some(waker) = self.wakers[shard].get() {
                    waker.wake();
                }
                return true;
            }
            if backoff.is_completed() && !wait_for_room {
                return false;
            }
            backoff.snooze();
        }
    }

    /// Submits one command and waits for it, returning its events: one command in flight, yielding
    /// while the ring is busy or the answer is not there. A command for every shard (a mass cancel
    /// of all symbols, `AdvanceTime`) is done once every shard said so; its events come shard by
    /// shard as they arrive. For tools, tests and the load driver, not for gateways (it allocates
    /// and blocks); answers to other tickets are dropped.
    pub fn execute(&mut self, command: CommandBody) -> Vec<Event> {
        let shards = match self.route(&command) {
            Route::Shard(_) => 1,
            Route::AllShards => self.shards(),
        };
        let ticket = loop {
            match self.submit(command) {
                Ok(ticket) => break ticket,
                Err(SubmitError::Busy) => std::thread::yield_now(),
            }
        };
        let (mut events, mut done) = (Vec::new(), 0);
        while done < shards {
            match self.poll() {
                Some(Response::Event { ticket: t, event, .. }) if t == ticket => events.push(event),
                Some(Response::Done { ticket: t, .. }) if t == ticket => done += 1,
                Some(_) => {}
                None => std::thread::yield_now(),
            }
        }
        events
    }

    /// The next result from any shard, if one is waiting. Records egress and round-trip latency.
    pub fn poll(&mut self) -> Option<Response> {
        let rings = self.responses.len();
        for offset in 0..rings {
            let index = (self.next_response_ring + offset) % rings;
            if let Ok(response) = self.responses[index].pop() {
                self.next_response_ring = (index + 1) % rings;
                if let Response::Done { stamps, .. } = response {
                    let now_ns = self.clock.now_ns();
                    self.latency.record(Stage::Egress, stamps.decided_ns, now_ns);
                    self.latency.record(Stage::RoundTrip, stamps.ingress_ns, now_ns);
                }
                return Some(response);
            }
        }
        None
    }

    /// Egress and round-trip latency seen by this submitter so far.
    pub fn latency(&self) -> &StageHistograms {
        &self.latency
    }

    /// Takes the latency recorded so far, leaving empty histograms (allocates: not for the hot path).
    pub fn take_latency(&mut self) -> StageHistograms {
        std::mem::take(&mut self.latency)
    }
}
