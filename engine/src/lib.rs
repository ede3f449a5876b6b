//! # simex-engine
//!
//! The deterministic heart of simex: order books, matching, pre-trade risk, positions and the cash
//! ledger for one shard of symbols, as a pure state machine.
//!
//! - No threads, no I/O, no clock, no randomness: time arrives in each [`Command`].
//! - `Engine::apply(&command, &mut events)` decides and appends [`Event`]s to a buffer the caller
//!   owns; `Engine::replay(&event)` rebuilds state from events alone; `Engine::state_hash()` and
//!   `Engine::check_invariants()` make drift visible.
//! - Prices are integer ticks, quantities integer lots, money integer micro-units; there is no
//!   floating point in this crate (enforced by `clippy::float_arithmetic`).
//! - Business rejections are events with a [`RejectReason`]; a failed assertion is a bug.
//! - Persistence formats live with the types they encode: [`codec`] turns each event into a record
//!   type and a fixed-size payload for the journal (`encode_event`, `decode_event`), and
//!   [`snapshot`] turns a whole engine into bytes and back (`Engine::snapshot_bytes`,
//!   `Engine::from_snapshot`), so that recovery replays only the journal after the snapshot. Both
//!   decoders validate everything and never panic on bad bytes.
//!
//! ```
//! use simex_engine::*;
//!
//! let instruments = InstrumentTable::default_table();
//! let aapl = instruments.by_symbol("AAPL").unwrap().symbol_id;
//! let mut engine = Engine::new(EngineConfig::default(), instruments);
//! let mut events = Vec::new();
//! let at = |timestamp_ns| move |body| Command { timestamp_ns, body };
//! engine.apply(&at(1)(CommandBody::CreatePortfolio { portfolio_id: 1, cash_micros: 100_000_000_000 }), &mut events);
//! engine.apply(&at(2)(CommandBody::CreatePortfolio { portfolio_id: 2, cash_micros: 100_000_000_000 }), &mut events);
//! engine.apply(&at(3)(CommandBody::NewOrder(NewOrder::limit(1, aapl, Side::Buy, 15_000, 10))), &mut events);
//! engine.apply(&at(4)(CommandBody::NewOrder(NewOrder::market(2, aapl, Side::Sell, 4))), &mut events);
//! assert!(events.iter().any(|e| matches!(e.body, EventBody::Fill(f) if f.qty_lots == 4 && f.price_ticks == 15_000)));
//! engine.check_invariants();
//! ```
#![deny(clippy::float_arithmetic)]

pub mod book;
pub mod codec;
pub mod command;
pub(crate) mod conditional;
pub mod decimal;
pub mod engine;
pub mod event;
pub mod instrument;
pub mod ledger;
pub mod order;
pub mod position;
pub mod risk;
pub mod sim;
pub mod snapshot;
pub mod types;

pub use book::{FastBook, LevelView, OrderBook, ReferenceBook};
pub use codec::{decode_event, encode_event, CodecError, PAYLOAD_MAX};
pub use command::{Command, CommandBody, NewOrder};
pub use engine::{Engine, EngineConfig, NO_PORTFOLIO};
pub use event::{AcceptedConditional, AcceptedOrder, CancelReason, Event, EventBody, Fill, RejectReason};
pub use instrument::{AssetClass, Instrument, InstrumentTable};
pub use ledger::{Account, Ledger, LocalLedger};
pub use order::Order;
pub use position::Position;
pub use risk::RiskLimits;
pub use sim::{LiquidityMode, MarketState, SimParams, Valuation, SIMULATED_ORDER_ID};
pub use snapshot::{ledger_snapshot_bytes, restore_ledger, SnapshotError};
pub use types::*;
