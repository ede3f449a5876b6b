//! What travels on the rings: commands in, results out. Plain `Copy` data, so publishing is a copy
//! into a preallocated slot and nothing allocates.

use simex_engine::{CommandBody, Event};

/// Identifies one submitted command: the submitter's id in the top 16 bits, its counter below.
pub type Ticket = u64;

/// One slot of a shard's inbound disruptor ring.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
pub struct InboundSlot {
    pub ticket: Ticket,
    /// Index of the submitter, and so of the response ring the results go to.
    pub submitter: u16,
    /// When the submitter handed the command over (venue clock).
    pub ingress_ns: i64,
    /// `None` only in never-written slots.
    pub command: Option<CommandBody>,
}

/// The moments an order's life is stamped at, for per-stage latency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamps {
    pub ingress_ns: i64,
    pub dequeue_ns: i64,
    pub decided_ns: i64,
}

/// A result sent back to the submitter of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// One event the command caused, in sequence order.
    Event { ticket: Ticket, shard: u16, event: Event },
    /// The shard has finished the command; `events` were sent before this.
    Done { ticket: Ticket, shard: u16, events: u32, stamps: Stamps },
}

impl Response {
    pub fn ticket(&self) -> Ticket {
        match *self {
            Response::Event { ticket, .. } | Response::Done { ticket, .. } => ticket,
        }
    }
}

/// An event as seen by a tap (the journal writer, persistence, market data): every event of a
/// shard, whoever caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TappedEvent {
    pub shard: u16,
    pub event: Event,
}
