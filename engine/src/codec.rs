//! The binary encoding of events, as the journal stores them.
//!
//! # Why it lives here
//! The journal must be able to read back every event the engine can emit, for as long as the files
//! are kept. Keeping the wire layouts next to the types they encode means a change to an event is
//! made, and reviewed, together with its encoding; the round-trip tests then catch a field that was
//! added to one and not the other.
//!
//! # Format
//! An event is a `u16` record type and a fixed-size payload. The sequence number and timestamp are
//! not in the payload: the journal's frame carries them (they are the same for every event type and
//! the frame needs them anyway). Each type's payload is a `#[repr(C)]` [`bytemuck::Pod`] struct:
//!
//! - integers are little-endian whatever the host, so files move between machines;
//! - there is no implicit padding: every gap is an explicit `_pad` field that must be zero;
//! - there are no `bool` or enum fields (an arbitrary byte is not a valid `bool` or enum, so such a
//!   struct could not be `Pod`): booleans are a `u8` that must be 0 or 1, enums are small codes;
//! - every payload is a multiple of 8 bytes, so frames that start 8-byte aligned stay aligned.
//!
//! | type | event | payload bytes |
//! | ---: | --- | ---: |
//! | 0 | (reserved: never an event, so a zeroed frame does not decode as one) | |
//! | 1 | `PortfolioCreated` | 16 |
//! | 2 | `CashAdjusted` | 16 |
//! | 3 | `RiskLimitsSet` | 32 |
//! | 4 | `OrderAccepted` | 80 |
//! | 5 | `Rejected` | 32 |
//! | 6 | `Fill` | 80 |
//! | 7 | `OrderCancelled` | 24 |
//! | 8 | `OrderReplaced` | 40 |
//! | 9 | `ReferencePriceSet` | 16 |
//! | 10 | `HaltedSet` | 8 |
//! | 11 | `ReferenceQuoteSet` | 40 |
//! | 12 | `ReferenceTradePrinted` | 24 |
//! | 13 | `ConditionalAccepted` | 112 |
//! | 14 | `OrderTriggered` | 32 |
//!
//! A `Fill` whose maker or taker order id is 0 has the simulated market on that side (its portfolio
//! is `NO_PORTFOLIO`); the layout is the same.
//!
//! Enum codes (all start at 1, so that a zeroed field is never a valid code):
//!
//! | enum | codes |
//! | --- | --- |
//! | `Side` | 1 buy, 2 sell |
//! | `OrderKind` | 1 limit, 2 market |
//! | `TimeInForce` | 1 GTC, 2 DAY, 3 GTD, 4 IOC, 5 FOK |
//! | `SelfTradePolicy` | 1 default, 2 cancel resting, 3 cancel incoming, 4 cancel both, 5 allow |
//! | `TriggerKind` | 1 stop, 2 take-profit, 3 trailing stop, 4 delayed (`none` is never encoded) |
//! | `RejectReason`, `CancelReason` | their own stable codes (`code()`), as `u16` |
//!
//! These numbers are part of the journal format: never renumber one, only add. The codes are not
//! the enums' Rust discriminants, which the state hash uses and which may stay as they are.
//!
//! # Decoding is validation
//! [`decode_event`] accepts exactly the bytes [`encode_event`] produces and nothing else: an unknown
//! type, a wrong length, an unknown code, a `bool` that is not 0 or 1 and non-zero padding are all
//! errors. So every payload has one encoding, and `encode(decode(bytes)) == bytes` whenever decoding
//! succeeds (the `event_decode` fuzz target checks this). Decoding never panics. It checks the
//! encoding, not the meaning: whether an event makes sense in a state is for `Engine::replay`.

use crate::event::{AcceptedConditional, AcceptedOrder, CancelReason, Event, EventBody, Fill, RejectReason};
use crate::risk::RiskLimits;
use crate::types::{ClientOrderId, OrderKind, SelfTradePolicy, Side, TimeInForce, TriggerKind};
use bytemuck::{Pod, Zeroable};
use std::mem::size_of;

/// Record types of the events (see the table in the module documentation).
pub mod record_type {
    pub const PORTFOLIO_CREATED: u16 = 1;
    pub const CASH_ADJUSTED: u16 = 2;
    pub const RISK_LIMITS_SET: u16 = 3;
    pub const ORDER_ACCEPTED: u16 = 4;
    pub const REJECTED: u16 = 5;
    pub const FILL: u16 = 6;
    pub const ORDER_CANCELLED: u16 = 7;
    pub const ORDER_REPLACED: u16 = 8;
    pub const REFERENCE_PRICE_SET: u16 = 9;
    pub const HALTED_SET: u16 = 10;
    pub const REFERENCE_QUOTE_SET: u16 = 11;
    pub const REFERENCE_TRADE_PRINTED: u16 = 12;
    pub const CONDITIONAL_ACCEPTED: u16 = 13;
    pub const ORDER_TRIGGERED: u16 = 14;

    /// Every event record type, in numeric order.
    pub const ALL: [u16; 14] = [
        PORTFOLIO_CREATED,
        CASH_ADJUSTED,
        RISK_LIMITS_SET,
        ORDER_ACCEPTED,
        REJECTED,
        FILL,
        ORDER_CANCELLED,
        ORDER_REPLACED,
        REFERENCE_PRICE_SET,
        HALTED_SET,
        REFERENCE_QUOTE_SET,
        REFERENCE_TRADE_PRINTED,
        CONDITIONAL_ACCEPTED,
        ORDER_TRIGGERED,
    ];
}

/// Why a payload does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("unknown event record type {0}")]
    UnknownRecordType(u16),
    #[error("record type {record_type}: payload of {actual} bytes, expected {expected}")]
    WrongLength { record_type: u16, expected: usize, actual: usize },
    #[error("record type {record_type}: field {field} holds invalid code {code}")]
    InvalidCode { record_type: u16, field: &'static str, code: u16 },
    #[error("record type {record_type}: padding is not zero")]
    NonZeroPadding { record_type: u16 },
}

// ---------------------------------------------------------------------------------------------
// Wire layouts
// ---------------------------------------------------------------------------------------------

/// `PortfolioCreated` (cash) and `CashAdjusted` (delta).
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct PortfolioCashWire {
    micros: i64,
    portfolio_id: u32,
    _pad: u32,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct RiskLimitsWire {
    order_notional_max_micros: i64,
    gross_exposure_max_micros: i64,
    daily_loss_max_micros: i64,
    portfolio_id: u32,
    open_orders_max: u32,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct AcceptedWire {
    order_id: u64,
    price_ticks: i64,
    qty_lots: i64,
    expire_at_ns: i64,
    reserved_cash_micros: i64,
    reserved_lots: i64,
    client_order_id: [u8; 16],
    portfolio_id: u32,
    symbol_id: u16,
    side: u8,
    kind: u8,
    time_in_force: u8,
    post_only: u8,
    self_trade_policy: u8,
    _pad: [u8; 5],
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct RejectedWire {
    order_id: u64,
    client_order_id: [u8; 16],
    portfolio_id: u32,
    reason: u16,
    _pad: u16,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct FillWire {
    trade_id: u64,
    maker_order_id: u64,
    taker_order_id: u64,
    price_ticks: i64,
    qty_lots: i64,
    notional_micros: i64,
    maker_fee_micros: i64,
    taker_fee_micros: i64,
    maker_portfolio_id: u32,
    taker_portfolio_id: u32,
    symbol_id: u16,
    taker_side: u8,
    _pad: [u8; 5],
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct CancelledWire {
    order_id: u64,
    qty_lots: i64,
    portfolio_id: u32,
    symbol_id: u16,
    reason: u16,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct ReplacedWire {
    order_id: u64,
    price_ticks: i64,
    qty_lots: i64,
    reserved_cash_micros: i64,
    portfolio_id: u32,
    symbol_id: u16,
    priority_kept: u8,
    _pad: u8,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct ReferencePriceWire {
    price_ticks: i64,
    symbol_id: u16,
    _pad: [u8; 6],
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct HaltedWire {
    symbol_id: u16,
    halted: u8,
    _pad: [u8; 5],
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct ReferenceQuoteWire {
    bid_price_ticks: i64,
    bid_qty_lots: i64,
    ask_price_ticks: i64,
    ask_qty_lots: i64,
    symbol_id: u16,
    _pad: [u8; 6],
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct ConditionalWire {
    pub(crate) order_id: u64,
    pub(crate) price_ticks: i64,
    pub(crate) qty_lots: i64,
    pub(crate) expire_at_ns: i64,
    pub(crate) trigger_price_ticks: i64,
    pub(crate) trail_ticks: i64,
    pub(crate) trail_bps: i64,
    pub(crate) parent_order_id: u64,
    pub(crate) oco_order_id: u64,
    pub(crate) client_order_id: [u8; 16],
    pub(crate) portfolio_id: u32,
    pub(crate) symbol_id: u16,
    pub(crate) side: u8,
    pub(crate) kind: u8,
    pub(crate) time_in_force: u8,
    pub(crate) self_trade_policy: u8,
    pub(crate) trigger: u8,
    pub(crate) post_only: u8,
    pub(crate) _pad: [u8; 4],
    pub(crate) execute_at_ns: i64,
}

impl ConditionalWire {
    pub(crate) fn encode(c: &AcceptedConditional) -> ConditionalWire {
        ConditionalWire {
            order_id: c.order_id.to_le(),
            price_ticks: c.price_ticks.to_le(),
            qty_lots: c.qty_lots.to_le(),
            expire_at_ns: c.expire_at_ns.to_le(),
            trigger_price_ticks: c.trigger_price_ticks.to_le(),
            trail_ticks: c.trail_ticks.to_le(),
            trail_bps: c.trail_bps.to_le(),
            parent_order_id: c.parent_order_id.to_le(),
            oco_order_id: c.oco_order_id.to_le(),
            client_order_id: c.client_order_id.0,
            portfolio_id: c.portfolio_id.to_le(),
            symbol_id: c.symbol_id.to_le(),
            side: side_code(c.side),
            kind: kind_code(c.kind),
            time_in_force: time_in_force_code(c.time_in_force),
            self_trade_policy: self_trade_policy_code(c.self_trade_policy),
            trigger: trigger_code(c.trigger),
            post_only: u8::from(c.post_only),
            _pad: [0; 4],
            execute_at_ns: c.execute_at_ns.to_le(),
        }
    }

    /// The conditional order, or the name of the first field that holds an invalid code.
    pub(crate) fn decode(&self) -> Result<AcceptedConditional, (&'static str, u8)> {
        if self._pad != [0; 4] {
            return Err(("_pad", 0));
        }
        let code = |field: &'static str, code: u8| (field, code);
        Ok(AcceptedConditional {
            order_id: u64::from_le(self.order_id),
            portfolio_id: u32::from_le(self.portfolio_id),
            symbol_id: u16::from_le(self.symbol_id),
            side: side_from_code(self.side).ok_or(code("side", self.side))?,
            kind: kind_from_code(self.kind).ok_or(code("kind", self.kind))?,
            price_ticks: i64::from_le(self.price_ticks),
            qty_lots: i64::from_le(self.qty_lots),
            time_in_force: time_in_force_from_code(self.time_in_force)
                .ok_or(code("time_in_force", self.time_in_force))?,
            expire_at_ns: i64::from_le(self.expire_at_ns),
            client_order_id: ClientOrderId(self.client_order_id),
            self_trade_policy: self_trade_policy_from_code(self.self_trade_policy)
                .ok_or(code("self_trade_policy", self.self_trade_policy))?,
            trigger: trigger_from_code(self.trigger).ok_or(code("trigger", self.trigger))?,
            trigger_price_ticks: i64::from_le(self.trigger_price_ticks),
            trail_ticks: i64::from_le(self.trail_ticks),
            trail_bps: i64::from_le(self.trail_bps),
            parent_order_id: u64::from_le(self.parent_order_id),
            oco_order_id: u64::from_le(self.oco_order_id),
            execute_at_ns: i64::from_le(self.execute_at_ns),
            post_only: bool_from_code(self.post_only).ok_or(code("post_only", self.post_only))?,
        })
    }
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct ReferenceTradeWire {
    price_ticks: i64,
    qty_lots: i64,
    symbol_id: u16,
    _pad: [u8; 6],
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct TriggeredWire {
    order_id: u64,
    price_ticks: i64,
    qty_lots: i64,
    portfolio_id: u32,
    symbol_id: u16,
    _pad: u16,
}

const fn aligned(size: usize) -> bool {
    size % 8 == 0
}

const _: () = {
    assert!(size_of::<PortfolioCashWire>() == 16 && aligned(size_of::<PortfolioCashWire>()));
    assert!(size_of::<RiskLimitsWire>() == 32);
    assert!(size_of::<AcceptedWire>() == 80);
    assert!(size_of::<RejectedWire>() == 32);
    assert!(size_of::<FillWire>() == 80);
    assert!(size_of::<CancelledWire>() == 24);
    assert!(size_of::<ReplacedWire>() == 40);
    assert!(size_of::<ReferencePriceWire>() == 16);
    assert!(size_of::<HaltedWire>() == 8);
    assert!(size_of::<ReferenceQuoteWire>() == 40);
    assert!(size_of::<ReferenceTradeWire>() == 24);
    assert!(size_of::<ConditionalWire>() == 112);
    assert!(size_of::<TriggeredWire>() == 32);
};

/// The largest payload of any event: a buffer of this size holds every encoding.
pub const PAYLOAD_MAX: usize = 112;

/// The payload length of a record type, or `None` if it is not an event type.
pub fn payload_len(record_type: u16) -> Option<usize> {
    Some(match record_type {
        record_type::PORTFOLIO_CREATED | record_type::CASH_ADJUSTED => size_of::<PortfolioCashWire>(),
        record_type::RISK_LIMITS_SET => size_of::<RiskLimitsWire>(),
        record_type::ORDER_ACCEPTED => size_of::<AcceptedWire>(),
        record_type::REJECTED => size_of::<RejectedWire>(),
        record_type::FILL => size_of::<FillWire>(),
        record_type::ORDER_CANCELLED => size_of::<CancelledWire>(),
        record_type::ORDER_REPLACED => size_of::<ReplacedWire>(),
        record_type::REFERENCE_PRICE_SET => size_of::<ReferencePriceWire>(),
        record_type::HALTED_SET => size_of::<HaltedWire>(),
        record_type::REFERENCE_QUOTE_SET => size_of::<ReferenceQuoteWire>(),
        record_type::REFERENCE_TRADE_PRINTED => size_of::<ReferenceTradeWire>(),
        record_type::CONDITIONAL_ACCEPTED => size_of::<ConditionalWire>(),
        record_type::ORDER_TRIGGERED => size_of::<TriggeredWire>(),
        _ => return None,
    })
}

/// The record type an event body is encoded as.
pub fn record_type_of(body: &EventBody) -> u16 {
    match body {
        EventBody::PortfolioCreated { .. } => record_type::PORTFOLIO_CREATED,
        EventBody::CashAdjusted { .. } => record_type::CASH_ADJUSTED,
        EventBody::RiskLimitsSet { .. } => record_type::RISK_LIMITS_SET,
        EventBody::OrderAccepted(_) => record_type::ORDER_ACCEPTED,
        EventBody::Rejected { .. } => record_type::REJECTED,
        EventBody::Fill(_) => record_type::FILL,
        EventBody::OrderCancelled { .. } => record_type::ORDER_CANCELLED,
        EventBody::OrderReplaced { .. } => record_type::ORDER_REPLACED,
        EventBody::ReferencePriceSet { .. } => record_type::REFERENCE_PRICE_SET,
        EventBody::HaltedSet { .. } => record_type::HALTED_SET,
        EventBody::ReferenceQuoteSet { .. } => record_type::REFERENCE_QUOTE_SET,
        EventBody::ReferenceTradePrinted { .. } => record_type::REFERENCE_TRADE_PRINTED,
        EventBody::ConditionalAccepted(_) => record_type::CONDITIONAL_ACCEPTED,
        EventBody::OrderTriggered { .. } => record_type::ORDER_TRIGGERED,
    }
}

// ---------------------------------------------------------------------------------------------
// Codes (shared with the snapshot format)
// ---------------------------------------------------------------------------------------------

pub(crate) fn side_code(side: Side) -> u8 {
    match side {
        Side::Buy => 1,
        Side::Sell => 2,
    }
}

pub(crate) fn side_from_code(code: u8) -> Option<Side> {
    match code {
        1 => Some(Side::Buy),
        2 => Some(Side::Sell),
        _ => None,
    }
}

pub(crate) fn kind_code(kind: OrderKind) -> u8 {
    match kind {
        OrderKind::Limit => 1,
        OrderKind::Market => 2,
    }
}

pub(crate) fn kind_from_code(code: u8) -> Option<OrderKind> {
    match code {
        1 => Some(OrderKind::Limit),
        2 => Some(OrderKind::Market),
        _ => None,
    }
}

pub(crate) fn time_in_force_code(time_in_force: TimeInForce) -> u8 {
    match time_in_force {
        TimeInForce::Gtc => 1,
        TimeInForce::Day => 2,
        TimeInForce::Gtd => 3,
        TimeInForce::Ioc => 4,
        TimeInForce::Fok => 5,
    }
}

pub(crate) fn time_in_force_from_code(code: u8) -> Option<TimeInForce> {
    match code {
        1 => Some(TimeInForce::Gtc),
        2 => Some(TimeInForce::Day),
        3 => Some(TimeInForce::Gtd),
        4 => Some(TimeInForce::Ioc),
        5 => Some(TimeInForce::Fok),
        _ => None,
    }
}

pub(crate) fn self_trade_policy_code(policy: SelfTradePolicy) -> u8 {
    match policy {
        SelfTradePolicy::Default => 1,
        SelfTradePolicy::CancelResting => 2,
        SelfTradePolicy::CancelIncoming => 3,
        SelfTradePolicy::CancelBoth => 4,
        SelfTradePolicy::Allow => 5,
    }
}

pub(crate) fn self_trade_policy_from_code(code: u8) -> Option<SelfTradePolicy> {
    match code {
        1 => Some(SelfTradePolicy::Default),
        2 => Some(SelfTradePolicy::CancelResting),
        3 => Some(SelfTradePolicy::CancelIncoming),
        4 => Some(SelfTradePolicy::CancelBoth),
        5 => Some(SelfTradePolicy::Allow),
        _ => None,
    }
}

/// `TriggerKind::None` has no code: it is never part of a conditional order (0 decodes to nothing).
pub(crate) fn trigger_code(trigger: TriggerKind) -> u8 {
    match trigger {
        TriggerKind::None => 0,
        TriggerKind::Stop => 1,
        TriggerKind::TakeProfit => 2,
        TriggerKind::TrailingStop => 3,
        TriggerKind::Delayed => 4,
    }
}

pub(crate) fn trigger_from_code(code: u8) -> Option<TriggerKind> {
    match code {
        1 => Some(TriggerKind::Stop),
        2 => Some(TriggerKind::TakeProfit),
        3 => Some(TriggerKind::TrailingStop),
        4 => Some(TriggerKind::Delayed),
        _ => None,
    }
}

pub(crate) fn bool_from_code(code: u8) -> Option<bool> {
    match code {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

fn put<T: Pod>(out: &mut [u8], record_type: u16, wire: &T) -> (u16, usize) {
    let bytes = bytemuck::bytes_of(wire);
    assert!(
        out.len() >= bytes.len(),
        "event payload buffer of {} bytes is too small (PAYLOAD_MAX is {PAYLOAD_MAX})",
        out.len()
    );
    out[..bytes.len()].copy_from_slice(bytes);
    (record_type, bytes.len())
}

/// Writes the payload of `body` at the start of `out` and returns its record type and length.
/// Allocates nothing. The frame around it carries the event's sequence number and timestamp.
///
/// # Panics
/// If `out` is shorter than the payload; a buffer of [`PAYLOAD_MAX`] bytes always suffices.
pub fn encode_event(body: &EventBody, out: &mut [u8]) -> (u16, usize) {
    let record_type = record_type_of(body);
    match *body {
        EventBody::PortfolioCreated { portfolio_id, cash_micros: micros }
        | EventBody::CashAdjusted { portfolio_id, delta_micros: micros } => put(
            out,
            record_type,
            &PortfolioCashWire { micros: micros.to_le(), portfolio_id: portfolio_id.to_le(), _pad: 0 },
        ),
        EventBody::RiskLimitsSet { portfolio_id, limits } => put(
            out,
            record_type,
            &RiskLimitsWire {
                order_notional_max_micros: limits.order_notional_max_micros.to_le(),
                gross_exposure_max_micros: limits.gross_exposure_max_micros.to_le(),
                daily_loss_max_micros: limits.daily_loss_max_micros.to_le(),
                portfolio_id: portfolio_id.to_le(),
                open_orders_max: limits.open_orders_max.to_le(),
            },
        ),
        EventBody::OrderAccepted(a) => put(
            out,
            record_type,
            &AcceptedWire {
                order_id: a.order_id.to_le(),
                price_ticks: a.price_ticks.to_le(),
                qty_lots: a.qty_lots.to_le(),
                expire_at_ns: a.expire_at_ns.to_le(),
                reserved_cash_micros: a.reserved_cash_micros.to_le(),
                reserved_lots: a.reserved_lots.to_le(),
                client_order_id: a.client_order_id.0,
                portfolio_id: a.portfolio_id.to_le(),
                symbol_id: a.symbol_id.to_le(),
                side: side_code(a.side),
                kind: kind_code(a.kind),
                time_in_force: time_in_force_code(a.time_in_force),
                post_only: u8::from(a.post_only),
                self_trade_policy: self_trade_policy_code(a.self_trade_policy),
                _pad: [0; 5],
            },
        ),
        EventBody::Rejected { portfolio_id, order_id, client_order_id, reason } => put(
            out,
            record_type,
            &RejectedWire {
                order_id: order_id.to_le(),
                client_order_id: client_order_id.0,
                portfolio_id: portfolio_id.to_le(),
                reason: reason.code().to_le(),
                _pad: 0,
            },
        ),
        EventBody::Fill(f) => put(
            out,
            record_type,
            &FillWire {
                trade_id: f.trade_id.to_le(),
                maker_order_id: f.maker_order_id.to_le(),
                taker_order_id: f.taker_order_id.to_le(),
                price_ticks: f.price_ticks.to_le(),
                qty_lots: f.qty_lots.to_le(),
                notional_micros: f.notional_micros.to_le(),
                maker_fee_micros: f.maker_fee_micros.to_le(),
                taker_fee_micros: f.taker_fee_micros.to_le(),
                maker_portfolio_id: f.maker_portfolio_id.to_le(),
                taker_portfolio_id: f.taker_portfolio_id.to_le(),
                symbol_id: f.symbol_id.to_le(),
                taker_side: side_code(f.taker_side),
                _pad: [0; 5],
            },
        ),
        EventBody::OrderCancelled { order_id, portfolio_id, symbol_id, qty_lots, reason } => put(
            out,
            record_type,
            &CancelledWire {
                order_id: order_id.to_le(),
                qty_lots: qty_lots.to_le(),
                portfolio_id: portfolio_id.to_le(),
                symbol_id: symbol_id.to_le(),
                reason: reason.code().to_le(),
            },
        ),
        EventBody::OrderReplaced {
            order_id,
            portfolio_id,
            symbol_id,
            price_ticks,
            qty_lots,
            priority_kept,
            reserved_cash_micros,
        } => put(
            out,
            record_type,
            &ReplacedWire {
                order_id: order_id.to_le(),
                price_ticks: price_ticks.to_le(),
                qty_lots: qty_lots.to_le(),
                reserved_cash_micros: reserved_cash_micros.to_le(),
                portfolio_id: portfolio_id.to_le(),
                symbol_id: symbol_id.to_le(),
                priority_kept: u8::from(priority_kept),
                _pad: 0,
            },
        ),
        EventBody::ReferencePriceSet { symbol_id, price_ticks } => put(
            out,
            record_type,
            &ReferencePriceWire { price_ticks: price_ticks.to_le(), symbol_id: symbol_id.to_le(), _pad: [0; 6] },
        ),
        EventBody::HaltedSet { symbol_id, halted } => {
            put(out, record_type, &HaltedWire { symbol_id: symbol_id.to_le(), halted: u8::from(halted), _pad: [0; 5] })
        }
        EventBody::ReferenceQuoteSet { symbol_id, bid_price_ticks, bid_qty_lots, ask_price_ticks, ask_qty_lots } => {
            put(
                out,
                record_type,
                &ReferenceQuoteWire {
                    bid_price_ticks: bid_price_ticks.to_le(),
                    bid_qty_lots: bid_qty_lots.to_le(),
                    ask_price_ticks: ask_price_ticks.to_le(),
                    ask_qty_lots: ask_qty_lots.to_le(),
                    symbol_id: symbol_id.to_le(),
                    _pad: [0; 6],
                },
            )
        }
        EventBody::ReferenceTradePrinted { symbol_id, price_ticks, qty_lots } => put(
            out,
            record_type,
            &ReferenceTradeWire {
                price_ticks: price_ticks.to_le(),
                qty_lots: qty_lots.to_le(),
                symbol_id: symbol_id.to_le(),
                _pad: [0; 6],
            },
        ),
        EventBody::ConditionalAccepted(c) => put(out, record_type, &ConditionalWire::encode(&c)),
        EventBody::OrderTriggered { order_id, portfolio_id, symbol_id, price_ticks, qty_lots } => put(
            out,
            record_type,
            &TriggeredWire {
                order_id: order_id.to_le(),
                price_ticks: price_ticks.to_le(),
                qty_lots: qty_lots.to_le(),
                portfolio_id: portfolio_id.to_le(),
                symbol_id: symbol_id.to_le(),
                _pad: 0,
            },
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

fn read<T: Pod>(record_type: u16, payload: &[u8]) -> Result<T, CodecError> {
    bytemuck::try_pod_read_unaligned(payload).map_err(|_| CodecError::WrongLength {
        record_type,
        expected: size_of::<T>(),
        actual: payload.len(),
    })
}

/// Turns an `Option` from a code table into a `CodecError` naming the field.
struct Fields {
    record_type: u16,
}

impl Fields {
    fn code<T>(&self, field: &'static str, code: u8, decoded: Option<T>) -> Result<T, CodecError> {
        decoded.ok_or(CodecError::InvalidCode { record_type: self.record_type, field, code: u16::from(code) })
    }

    fn side(&self, field: &'static str, code: u8) -> Result<Side, CodecError> {
        self.code(field, code, side_from_code(code))
    }

    fn flag(&self, field: &'static str, code: u8) -> Result<bool, CodecError> {
        self.code(field, code, bool_from_code(code))
    }

    fn padding(&self, is_zero: bool) -> Result<(), CodecError> {
        if is_zero {
            Ok(())
        } else {
            Err(CodecError::NonZeroPadding { record_type: self.record_type })
        }
    }
}

/// Decodes one event from its record type, its frame's sequence number and timestamp, and its
/// payload. Accepts exactly what [`encode_event`] writes; never panics.
pub fn decode_event(record_type: u16, seq: u64, timestamp_ns: i64, payload: &[u8]) -> Result<Event, CodecError> {
    let fields = Fields { record_type };
    let body = match record_type {
        record_type::PORTFOLIO_CREATED | record_type::CASH_ADJUSTED => {
            let w: PortfolioCashWire = read(record_type, payload)?;
            fields.padding(w._pad == 0)?;
            let (portfolio_id, micros) = (u32::from_le(w.portfolio_id), i64::from_le(w.micros));
            if record_type == record_type::PORTFOLIO_CREATED {
                EventBody::PortfolioCreated { portfolio_id, cash_micros: micros }
            } else {
                EventBody::CashAdjusted { portfolio_id, delta_micros: micros }
            }
        }
        record_type::RISK_LIMITS_SET => {
            let w: RiskLimitsWire = read(record_type, payload)?;
            EventBody::RiskLimitsSet {
                portfolio_id: u32::from_le(w.portfolio_id),
                limits: RiskLimits {
                    order_notional_max_micros: i64::from_le(w.order_notional_max_micros),
                    gross_exposure_max_micros: i64::from_le(w.gross_exposure_max_micros),
                    open_orders_max: u32::from_le(w.open_orders_max),
                    daily_loss_max_micros: i64::from_le(w.daily_loss_max_micros),
                },
            }
        }
        record_type::ORDER_ACCEPTED => {
            let w: AcceptedWire = read(record_type, payload)?;
            fields.padding(w._pad == [0; 5])?;
            EventBody::OrderAccepted(AcceptedOrder {
                order_id: u64::from_le(w.order_id),
                portfolio_id: u32::from_le(w.portfolio_id),
                symbol_id: u16::from_le(w.symbol_id),
                side: fields.side("side", w.side)?,
                kind: fields.code("kind", w.kind, kind_from_code(w.kind))?,
                price_ticks: i64::from_le(w.price_ticks),
                qty_lots: i64::from_le(w.qty_lots),
                time_in_force: fields.code(
                    "time_in_force",
                    w.time_in_force,
                    time_in_force_from_code(w.time_in_force),
                )?,
                expire_at_ns: i64::from_le(w.expire_at_ns),
                client_order_id: ClientOrderId(w.client_order_id),
                post_only: fields.flag("post_only", w.post_only)?,
                self_trade_policy: fields.code(
                    "self_trade_policy",
                    w.self_trade_policy,
                    self_trade_policy_from_code(w.self_trade_policy),
                )?,
                reserved_cash_micros: i64::from_le(w.reserved_cash_micros),
                reserved_lots: i64::from_le(w.reserved_lots),
            })
        }
        record_type::REJECTED => {
            let w: RejectedWire = read(record_type, payload)?;
            fields.padding(w._pad == 0)?;
            let code = u16::from_le(w.reason);
            EventBody::Rejected {
                portfolio_id: u32::from_le(w.portfolio_id),
                order_id: u64::from_le(w.order_id),
                client_order_id: ClientOrderId(w.client_order_id),
                reason: RejectReason::from_code(code).ok_or(CodecError::InvalidCode {
                    record_type,
                    field: "reason",
                    code,
                })?,
            }
        }
        record_type::FILL => {
            let w: FillWire = read(record_type, payload)?;
            fields.padding(w._pad == [0; 5])?;
            EventBody::Fill(Fill {
                trade_id: u64::from_le(w.trade_id),
                symbol_id: u16::from_le(w.symbol_id),
                maker_order_id: u64::from_le(w.maker_order_id),
                maker_portfolio_id: u32::from_le(w.maker_portfolio_id),
                taker_order_id: u64::from_le(w.taker_order_id),
                taker_portfolio_id: u32::from_le(w.taker_portfolio_id),
                taker_side: fields.side("taker_side", w.taker_side)?,
                price_ticks: i64::from_le(w.price_ticks),
                qty_lots: i64::from_le(w.qty_lots),
                notional_micros: i64::from_le(w.notional_micros),
                maker_fee_micros: i64::from_le(w.maker_fee_micros),
                taker_fee_micros: i64::from_le(w.taker_fee_micros),
            })
        }
        record_type::ORDER_CANCELLED => {
            let w: CancelledWire = read(record_type, payload)?;
            let code = u16::from_le(w.reason);
            EventBody::OrderCancelled {
                order_id: u64::from_le(w.order_id),
                portfolio_id: u32::from_le(w.portfolio_id),
                symbol_id: u16::from_le(w.symbol_id),
                qty_lots: i64::from_le(w.qty_lots),
                reason: CancelReason::from_code(code).ok_or(CodecError::InvalidCode {
                    record_type,
                    field: "reason",
                    code,
                })?,
            }
        }
        record_type::ORDER_REPLACED => {
            let w: ReplacedWire = read(record_type, payload)?;
            fields.padding(w._pad == 0)?;
            EventBody::OrderReplaced {
                order_id: u64::from_le(w.order_id),
                portfolio_id: u32::from_le(w.portfolio_id),
                symbol_id: u16::from_le(w.symbol_id),
                price_ticks: i64::from_le(w.price_ticks),
                qty_lots: i64::from_le(w.qty_lots),
                priority_kept: fields.flag("priority_kept", w.priority_kept)?,
                reserved_cash_micros: i64::from_le(w.reserved_cash_micros),
            }
        }
        record_type::REFERENCE_PRICE_SET => {
            let w: ReferencePriceWire = read(record_type, payload)?;
            fields.padding(w._pad == [0; 6])?;
            EventBody::ReferencePriceSet {
                symbol_id: u16::from_le(w.symbol_id),
                price_ticks: i64::from_le(w.price_ticks),
            }
        }
        record_type::HALTED_SET => {
            let w: HaltedWire = read(record_type, payload)?;
            fields.padding(w._pad == [0; 5])?;
            EventBody::HaltedSet { symbol_id: u16::from_le(w.symbol_id), halted: fields.flag("halted", w.halted)? }
        }
        record_type::REFERENCE_QUOTE_SET => {
            let w: ReferenceQuoteWire = read(record_type, payload)?;
            fields.padding(w._pad == [0; 6])?;
            EventBody::ReferenceQuoteSet {
                symbol_id: u16::from_le(w.symbol_id),
                bid_price_ticks: i64::from_le(w.bid_price_ticks),
                bid_qty_lots: i64::from_le(w.bid_qty_lots),
                ask_price_ticks: i64::from_le(w.ask_price_ticks),
                ask_qty_lots: i64::from_le(w.ask_qty_lots),
            }
        }
        record_type::REFERENCE_TRADE_PRINTED => {
            let w: ReferenceTradeWire = read(record_type, payload)?;
            fields.padding(w._pad == [0; 6])?;
            EventBody::ReferenceTradePrinted {
                symbol_id: u16::from_le(w.symbol_id),
                price_ticks: i64::from_le(w.price_ticks),
                qty_lots: i64::from_le(w.qty_lots),
            }
        }
        record_type::CONDITIONAL_ACCEPTED => {
            let w: ConditionalWire = read(record_type, payload)?;
            match w.decode() {
                Ok(c) => EventBody::ConditionalAccepted(c),
                Err(("_pad", _)) => return Err(CodecError::NonZeroPadding { record_type }),
                Err((field, code)) => {
                    return Err(CodecError::InvalidCode { record_type, field, code: u16::from(code) })
                }
            }
        }
        record_type::ORDER_TRIGGERED => {
            let w: TriggeredWire = read(record_type, payload)?;
            fields.padding(w._pad == 0)?;
            EventBody::OrderTriggered {
                order_id: u64::from_le(w.order_id),
                portfolio_id: u32::from_le(w.portfolio_id),
                symbol_id: u16::from_le(w.symbol_id),
                price_ticks: i64::from_le(w.price_ticks),
                qty_lots: i64::from_le(w.qty_lots),
            }
        }
        _ => return Err(CodecError::UnknownRecordType(record_type)),
    };
    Ok(Event { seq, timestamp_ns, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted() -> AcceptedOrder {
        AcceptedOrder {
            order_id: (3 << 48) | 77,
            portfolio_id: 12,
            symbol_id: 4,
            side: Side::Sell,
            kind: OrderKind::Limit,
            price_ticks: 15_025,
            qty_lots: 40,
            time_in_force: TimeInForce::Gtd,
            expire_at_ns: 1_767_700_000_000_000_000,
            client_order_id: ClientOrderId::from_text("abc-123").expect("ascii"),
            post_only: true,
            self_trade_policy: SelfTradePolicy::CancelBoth,
            reserved_cash_micros: 1_234_567,
            reserved_lots: 15,
        }
    }

    fn fill() -> Fill {
        Fill {
            trade_id: 9_001,
            symbol_id: 2,
            maker_order_id: 5,
            maker_portfolio_id: 1,
            taker_order_id: 8,
            taker_portfolio_id: 2,
            taker_side: Side::Buy,
            price_ticks: 6_000_001,
            qty_lots: 250_000,
            notional_micros: 150_000_025,
            maker_fee_micros: 15_000,
            taker_fee_micros: 37_500,
        }
    }

    fn conditional() -> AcceptedConditional {
        AcceptedConditional {
            order_id: (3 << 48) | 78,
            portfolio_id: 12,
            symbol_id: 4,
            side: Side::Sell,
            kind: OrderKind::Limit,
            price_ticks: 14_900,
            qty_lots: 0,
            time_in_force: TimeInForce::Day,
            expire_at_ns: 1_767_700_000_000_000_000,
            client_order_id: ClientOrderId::from_text("tp-1").unwrap(),
            self_trade_policy: SelfTradePolicy::CancelBoth,
            trigger: TriggerKind::TakeProfit,
            trigger_price_ticks: 15_100,
            trail_ticks: 3,
            trail_bps: 0,
            parent_order_id: (3 << 48) | 77,
            oco_order_id: (3 << 48) | 79,
            execute_at_ns: 0,
            post_only: false,
        }
    }

    #[test]
    fn a_conditional_order_has_a_fixed_layout() {
        let mut buffer = [0u8; PAYLOAD_MAX];
        let (record_type, len) = encode_event(&EventBody::ConditionalAccepted(conditional()), &mut buffer);
        assert_eq!((record_type, len), (13, 112));
        assert_eq!(buffer[..8], ((3u64 << 48) | 78).to_le_bytes());
        assert_eq!(buffer[32..40], 15_100i64.to_le_bytes(), "trigger price after the expiry");
        assert_eq!(
            buffer[94..112],
            [2, 1, 2, 4, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            "side, kind, tif, policy, trigger, post-only, padding, execution time"
        );
        let mut bad = buffer;
        bad[98] = 0; // TriggerKind::None is not a conditional order
        assert!(matches!(
            decode_event(13, 1, 0, &bad[..112]),
            Err(CodecError::InvalidCode { field: "trigger", code: 0, .. })
        ));
        bad[98] = 2;
        bad[99] = 2;
        assert!(matches!(
            decode_event(13, 1, 0, &bad[..112]),
            Err(CodecError::InvalidCode { field: "post_only", code: 2, .. })
        ));
        bad[99] = 0;
        bad[103] = 1;
        assert!(matches!(decode_event(13, 1, 0, &bad[..112]), Err(CodecError::NonZeroPadding { .. })));
        let delayed = AcceptedConditional {
            trigger: TriggerKind::Delayed,
            execute_at_ns: 1_767_600_000_005_000_000,
            post_only: true,
            ..conditional()
        };
        let (_, len) = encode_event(&EventBody::ConditionalAccepted(delayed), &mut buffer);
        assert_eq!((buffer[98], buffer[99]), (4, 1), "delayed, post-only");
        assert_eq!(buffer[104..112], 1_767_600_000_005_000_000i64.to_le_bytes());
        assert_eq!(decode_event(13, 1, 0, &buffer[..len]).unwrap().body, EventBody::ConditionalAccepted(delayed));
    }

    /// One of every variant, with every enum value and both booleans somewhere.
    fn every_variant() -> Vec<EventBody> {
        let mut bodies = vec![
            EventBody::PortfolioCreated { portfolio_id: 0, cash_micros: 100_000_000_000 },
            EventBody::CashAdjusted { portfolio_id: u32::MAX, delta_micros: -5 },
            EventBody::RiskLimitsSet {
                portfolio_id: 7,
                limits: RiskLimits {
                    order_notional_max_micros: 1,
                    gross_exposure_max_micros: i64::MAX,
                    open_orders_max: 40,
                    daily_loss_max_micros: 5_000_000,
                },
            },
            EventBody::OrderAccepted(accepted()),
            EventBody::ConditionalAccepted(conditional()),
            EventBody::ConditionalAccepted(AcceptedConditional {
                trigger: TriggerKind::Delayed,
                execute_at_ns: 5,
                post_only: true,
                ..conditional()
            }),
            EventBody::ConditionalAccepted(AcceptedConditional {
                trigger: TriggerKind::TrailingStop,
                trail_ticks: 0,
                trail_bps: 150,
                kind: OrderKind::Market,
                price_ticks: 0,
                parent_order_id: 0,
                ..conditional()
            }),
            EventBody::ConditionalAccepted(AcceptedConditional { trigger: TriggerKind::Stop, ..conditional() }),
            EventBody::OrderTriggered { order_id: 9, portfolio_id: 4, symbol_id: 2, price_ticks: 10_050, qty_lots: 7 },
            EventBody::Fill(fill()),
            EventBody::Fill(Fill { taker_side: Side::Sell, ..fill() }),
            EventBody::OrderReplaced {
                order_id: 77,
                portfolio_id: 3,
                symbol_id: 1,
                price_ticks: 99,
                qty_lots: 3,
                priority_kept: true,
                reserved_cash_micros: 0,
            },
            EventBody::OrderReplaced {
                order_id: u64::MAX,
                portfolio_id: 3,
                symbol_id: u16::MAX,
                price_ticks: i64::MIN,
                qty_lots: i64::MAX,
                priority_kept: false,
                reserved_cash_micros: 17,
            },
            EventBody::ReferencePriceSet { symbol_id: 9, price_ticks: 108_000 },
            EventBody::HaltedSet { symbol_id: 1, halted: true },
            EventBody::HaltedSet { symbol_id: 1, halted: false },
            EventBody::ReferenceQuoteSet {
                symbol_id: 3,
                bid_price_ticks: 14_999,
                bid_qty_lots: 300,
                ask_price_ticks: 15_001,
                ask_qty_lots: 0,
            },
            EventBody::ReferenceTradePrinted { symbol_id: u16::MAX, price_ticks: 15_000, qty_lots: 100 },
            EventBody::Fill(Fill { maker_order_id: 0, maker_portfolio_id: u32::MAX, maker_fee_micros: 0, ..fill() }),
        ];
        for side in [Side::Buy, Side::Sell] {
            for kind in [OrderKind::Limit, OrderKind::Market] {
                for time_in_force in
                    [TimeInForce::Gtc, TimeInForce::Day, TimeInForce::Gtd, TimeInForce::Ioc, TimeInForce::Fok]
                {
                    for self_trade_policy in [
                        SelfTradePolicy::Default,
                        SelfTradePolicy::CancelResting,
                        SelfTradePolicy::CancelIncoming,
                        SelfTradePolicy::CancelBoth,
                        SelfTradePolicy::Allow,
                    ] {
                        bodies.push(EventBody::OrderAccepted(AcceptedOrder {
                            side,
                            kind,
                            time_in_force,
                            self_trade_policy,
                            post_only: false,
                            client_order_id: ClientOrderId::NONE,
                            ..accepted()
                        }));
                    }
                }
            }
        }
        for reason in RejectReason::ALL {
            bodies.push(EventBody::Rejected {
                portfolio_id: 2,
                order_id: 0,
                client_order_id: ClientOrderId([0xFF; 16]),
                reason,
            });
        }
        for reason in CancelReason::ALL {
            bodies.push(EventBody::OrderCancelled { order_id: 1, portfolio_id: 2, symbol_id: 3, qty_lots: 4, reason });
        }
        bodies
    }

    #[test]
    fn every_variant_round_trips() {
        let mut types_seen = Vec::new();
        for (index, body) in every_variant().into_iter().enumerate() {
            let mut buffer = [0xAAu8; PAYLOAD_MAX + 8];
            let (record_type, len) = encode_event(&body, &mut buffer);
            assert_eq!(Some(len), payload_len(record_type));
            assert_eq!(record_type, record_type_of(&body));
            assert!(len <= PAYLOAD_MAX && len % 8 == 0);
            let event = decode_event(record_type, index as u64 + 1, -3, &buffer[..len]).expect("decodes");
            assert_eq!(event, Event { seq: index as u64 + 1, timestamp_ns: -3, body });
            types_seen.push(record_type);
        }
        types_seen.sort_unstable();
        types_seen.dedup();
        assert_eq!(types_seen, record_type::ALL);
    }

    #[test]
    fn the_layout_is_fixed() {
        // Changing any of these bytes changes the journal format.
        let mut buffer = [0u8; PAYLOAD_MAX];
        let (record_type, len) = encode_event(&EventBody::OrderAccepted(accepted()), &mut buffer);
        let expected: [u8; 80] = [
            77, 0, 0, 0, 0, 0, 3, 0, // order_id
            0xB1, 0x3A, 0, 0, 0, 0, 0, 0, // price_ticks 15025
            40, 0, 0, 0, 0, 0, 0, 0, // qty_lots
            0x00, 0x40, 0x75, 0xC9, 0xC8, 0x21, 0x88, 0x18, // expire_at_ns
            0x87, 0xD6, 0x12, 0, 0, 0, 0, 0, // reserved_cash_micros 1234567
            15, 0, 0, 0, 0, 0, 0, 0, // reserved_lots
            b'a', b'b', b'c', b'-', b'1', b'2', b'3', 0, 0, 0, 0, 0, 0, 0, 0, 0, // client_order_id
            12, 0, 0, 0, // portfolio_id
            4, 0, // symbol_id
            2, 1, 3, 1, 4, // side, kind, time_in_force, post_only, self_trade_policy
            0, 0, 0, 0, 0, // padding
        ];
        assert_eq!((record_type, len), (4, 80));
        assert_eq!(1_767_700_000_000_000_000i64.to_le_bytes(), expected[24..32]);
        assert_eq!(buffer[..80], expected);

        let (record_type, len) = encode_event(&EventBody::HaltedSet { symbol_id: 0x0102, halted: true }, &mut buffer);
        assert_eq!((record_type, &buffer[..len]), (10, &[2u8, 1, 1, 0, 0, 0, 0, 0][..]));
        let (record_type, len) = encode_event(
            &EventBody::OrderCancelled {
                order_id: 1,
                portfolio_id: 2,
                symbol_id: 3,
                qty_lots: -1,
                reason: CancelReason::NoLiquidity,
            },
            &mut buffer,
        );
        assert_eq!(
            (record_type, &buffer[..len]),
            (7, &[1u8, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 2, 0, 0, 0, 3, 0, 6, 0][..])
        );
    }

    #[test]
    fn malformed_payloads_are_errors() {
        let mut buffer = [0u8; PAYLOAD_MAX];
        let (record_type, len) = encode_event(&EventBody::OrderAccepted(accepted()), &mut buffer);
        let good = buffer[..len].to_vec();
        assert!(decode_event(record_type, 1, 0, &good).is_ok());

        assert_eq!(decode_event(0, 1, 0, &good), Err(CodecError::UnknownRecordType(0)));
        assert_eq!(decode_event(15, 1, 0, &good), Err(CodecError::UnknownRecordType(15)));
        assert_eq!(
            decode_event(record_type, 1, 0, &good[..79]),
            Err(CodecError::WrongLength { record_type, expected: 80, actual: 79 })
        );
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(decode_event(record_type, 1, 0, &longer), Err(CodecError::WrongLength { .. })));
        assert!(matches!(decode_event(record_type, 1, 0, &[]), Err(CodecError::WrongLength { .. })));

        let with = |at: usize, value: u8| {
            let mut bytes = good.clone();
            bytes[at] = value;
            decode_event(record_type, 1, 0, &bytes)
        };
        assert_eq!(with(70, 0), Err(CodecError::InvalidCode { record_type, field: "side", code: 0 }));
        assert_eq!(with(70, 3), Err(CodecError::InvalidCode { record_type, field: "side", code: 3 }));
        assert_eq!(with(71, 9), Err(CodecError::InvalidCode { record_type, field: "kind", code: 9 }));
        assert_eq!(with(72, 6), Err(CodecError::InvalidCode { record_type, field: "time_in_force", code: 6 }));
        assert_eq!(with(73, 2), Err(CodecError::InvalidCode { record_type, field: "post_only", code: 2 }));
        assert_eq!(with(74, 0), Err(CodecError::InvalidCode { record_type, field: "self_trade_policy", code: 0 }));
        for at in 75..80 {
            assert_eq!(with(at, 1), Err(CodecError::NonZeroPadding { record_type }));
        }

        let (record_type, len) = encode_event(
            &EventBody::Rejected {
                portfolio_id: 1,
                order_id: 2,
                client_order_id: ClientOrderId::NONE,
                reason: RejectReason::BookFull,
            },
            &mut buffer,
        );
        let mut bytes = buffer[..len].to_vec();
        bytes[28] = 0;
        assert_eq!(
            decode_event(record_type, 1, 0, &bytes),
            Err(CodecError::InvalidCode { record_type, field: "reason", code: 0 })
        );
        bytes[28] = RejectReason::BookFull.code() as u8;
        bytes[30] = 1;
        assert_eq!(decode_event(record_type, 1, 0, &bytes), Err(CodecError::NonZeroPadding { record_type }));

        let (record_type, len) = encode_event(&EventBody::HaltedSet { symbol_id: 1, halted: false }, &mut buffer);
        let mut bytes = buffer[..len].to_vec();
        bytes[2] = 2;
        assert_eq!(
            decode_event(record_type, 1, 0, &bytes),
            Err(CodecError::InvalidCode { record_type, field: "halted", code: 2 })
        );
    }

    #[test]
    fn every_single_byte_change_is_rejected_or_decodes_to_its_own_encoding() {
        for body in every_variant() {
            let mut buffer = [0u8; PAYLOAD_MAX];
            let (record_type, len) = encode_event(&body, &mut buffer);
            for at in 0..len {
                for value in [0u8, 1, 2, 7, 0x80, 0xFF] {
                    let mut bytes = buffer[..len].to_vec();
                    bytes[at] = value;
                    if let Ok(event) = decode_event(record_type, 1, 0, &bytes) {
                        let mut again = [0u8; PAYLOAD_MAX];
                        assert_eq!(encode_event(&event.body, &mut again), (record_type, len));
                        assert_eq!(&again[..len], &bytes[..]);
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "too small")]
    fn a_short_buffer_is_a_caller_bug() {
        encode_event(&EventBody::Fill(fill()), &mut [0u8; 40]);
    }
}
