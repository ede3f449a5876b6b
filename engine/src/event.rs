//! Events: everything a shard decided, in order, numbered.
//!
//! Events are the source of truth. A shard's state is exactly the fold of its events (see
//! `Engine::replay`), so an event records every outcome that was decided against state outside the
//! shard (a cash reservation against the shared ledger) rather than leaving replay to decide again.

use crate::risk::RiskLimits;
use crate::types::{
    ClientOrderId, OrderId, OrderKind, PortfolioId, SelfTradePolicy, Side, SymbolId, TimeInForce, TriggerKind,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Per-shard sequence, exactly one more than the previous event's.
    pub seq: u64,
    /// The timestamp of the command that caused the event.
    pub timestamp_ns: i64,
    #[serde(flatten)]
    pub body: EventBody,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    PortfolioCreated {
        portfolio_id: PortfolioId,
        cash_micros: i64,
    },
    CashAdjusted {
        portfolio_id: PortfolioId,
        delta_micros: i64,
    },
    RiskLimitsSet {
        portfolio_id: PortfolioId,
        limits: RiskLimits,
    },
    /// An order passed every check. `reserved_cash_micros` and `reserved_lots` were taken at that moment.
    OrderAccepted(AcceptedOrder),
    /// A command was refused; nothing changed. `order_id` is 0 for a refused new order.
    Rejected {
        portfolio_id: PortfolioId,
        order_id: OrderId,
        client_order_id: ClientOrderId,
        reason: RejectReason,
    },
    /// A conditional order passed its checks and waits off-book for its trigger. Nothing is reserved
    /// until it fires (see `docs/orders.md`).
    ConditionalAccepted(AcceptedConditional),
    /// A conditional order's trigger fired on a trade at `price_ticks`. It leaves the conditional
    /// store; the next event is its `OrderAccepted` (same order id) or its rejection and cancel.
    OrderTriggered {
        order_id: OrderId,
        portfolio_id: PortfolioId,
        symbol_id: SymbolId,
        price_ticks: i64,
        qty_lots: i64,
    },
    Fill(Fill),
    OrderCancelled {
        order_id: OrderId,
        portfolio_id: PortfolioId,
        symbol_id: SymbolId,
        /// The open quantity that was cancelled.
        qty_lots: i64,
        reason: CancelReason,
    },
    /// A cancel-replace took effect. `reserved_cash_micros` is cash newly taken (0 if the order needs less).
    OrderReplaced {
        order_id: OrderId,
        portfolio_id: PortfolioId,
        symbol_id: SymbolId,
        price_ticks: i64,
        qty_lots: i64,
        priority_kept: bool,
        reserved_cash_micros: i64,
    },
    ReferencePriceSet {
        symbol_id: SymbolId,
        price_ticks: i64,
    },
    HaltedSet {
        symbol_id: SymbolId,
        halted: bool,
    },
    /// A reference quote was taken; the simulated market quotes it from now on.
    ReferenceQuoteSet {
        symbol_id: SymbolId,
        bid_price_ticks: i64,
        bid_qty_lots: i64,
        ask_price_ticks: i64,
        ask_qty_lots: i64,
    },
    /// A reference trade was taken: it is the symbol's last reference trade and its price band
    /// anchor from now on. Fills of resting orders it trades through follow as their own events.
    ReferenceTradePrinted {
        symbol_id: SymbolId,
        price_ticks: i64,
        qty_lots: i64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedOrder {
    pub order_id: OrderId,
    pub portfolio_id: PortfolioId,
    pub symbol_id: SymbolId,
    pub side: Side,
    pub kind: OrderKind,
    /// The limit price; for a market order, its protection price (the band edge it may not trade beyond).
    pub price_ticks: i64,
    pub qty_lots: i64,
    pub time_in_force: TimeInForce,
    /// When a DAY or GTD order expires; `i64::MAX` for none.
    pub expire_at_ns: i64,
    pub client_order_id: ClientOrderId,
    pub post_only: bool,
    pub self_trade_policy: SelfTradePolicy,
    pub reserved_cash_micros: i64,
    pub reserved_lots: i64,
}

/// A conditional order as accepted. `trigger` is never `TriggerKind::None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedConditional {
    pub order_id: OrderId,
    pub portfolio_id: PortfolioId,
    pub symbol_id: SymbolId,
    pub side: Side,
    /// What the order becomes when it fires: a market, or a limit at `price_ticks`.
    pub kind: OrderKind,
    /// The limit price once fired; 0 for a market.
    pub price_ticks: i64,
    /// 0 for a bracket exit whose entry has not filled yet: its quantity grows with the entry's fills.
    pub qty_lots: i64,
    pub time_in_force: TimeInForce,
    /// When the order expires, waiting or fired; `i64::MAX` for none.
    pub expire_at_ns: i64,
    pub client_order_id: ClientOrderId,
    pub self_trade_policy: SelfTradePolicy,
    pub trigger: TriggerKind,
    /// A stop's or take-profit's trigger price; a trailing stop's starting best price.
    pub trigger_price_ticks: i64,
    pub trail_ticks: i64,
    pub trail_bps: i64,
    /// The entry this order is an exit of (0 for none).
    pub parent_order_id: OrderId,
    /// The order this one cancels, and is cancelled by, when either fires or ends (0 for none).
    pub oco_order_id: OrderId,
    /// A delayed order's (`TriggerKind::Delayed`) time of execution; 0 for every other trigger.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub execute_at_ns: i64,
    /// A delayed order is post-only (it keeps its flag in flight); false for every other trigger.
    #[serde(default, skip_serializing_if = "is_false")]
    pub post_only: bool,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub trade_id: u64,
    // Either side may be the simulated market (`SIMULATED_ORDER_ID`, portfolio `NO_PORTFOLIO`): the
    // maker when an order takes simulated liquidity, the taker when the market trades through a
    // resting order. Its fee is always 0.
    pub symbol_id: SymbolId,
    pub maker_order_id: OrderId,
    pub maker_portfolio_id: PortfolioId,
    pub taker_order_id: OrderId,
    pub taker_portfolio_id: PortfolioId,
    pub taker_side: Side,
    pub price_ticks: i64,
    pub qty_lots: i64,
    /// Value of the trade rounded down to the micro; the buyer pays it, the seller receives it.
    pub notional_micros: i64,
    pub maker_fee_micros: i64,
    pub taker_fee_micros: i64,
}

/// Why a command was refused. Codes are stable: they are journaled and sent to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u16)]
pub enum RejectReason {
    UnknownPortfolio = 1,
    PortfolioExists = 2,
    UnknownSymbol = 3,
    SymbolHalted = 4,
    QuantityNotPositive = 5,
    QuantityNotOnLot = 6,
    QuantityBelowMinimum = 7,
    QuantityTooLarge = 8,
    PriceNotPositive = 9,
    PriceNotOnTick = 10,
    PriceOutsideBand = 11,
    OrderNotionalTooLarge = 12,
    InsufficientBuyingPower = 13,
    ShortNotAllowed = 14,
    PositionLimitExceeded = 15,
    GrossExposureExceeded = 16,
    OpenOrdersLimitExceeded = 17,
    DailyLossLimitBreached = 18,
    DuplicateClientOrderId = 19,
    PostOnlyWouldTake = 20,
    InvalidTimeInForce = 21,
    ExpireTimeInPast = 22,
    UnknownOrder = 23,
    BookFull = 24,
    InsufficientCash = 25,
    InvalidAmount = 26,
    ReplaceNoChange = 27,
    /// A reference quote with a price that is not positive, a crossed or locked quote, or a
    /// negative size.
    InvalidQuote = 28,
    /// A conditional order's trigger is missing or malformed: a trigger price that is not
    /// positive, a trail that is not exactly one of 1+ ticks or 1 to 9999 bps, a trailing stop with
    /// no price to trail, post-only or FOK on a conditional order, or an OCO link that is not to
    /// a waiting conditional order of the same portfolio and symbol with no link yet.
    InvalidTrigger = 29,
    /// Replace applies to orders in the book; a waiting conditional order is cancelled and sent
    /// again instead.
    NotReplaceable = 30,
}

impl Fill {
    /// Whether the simulated market is the maker (an order took simulated liquidity).
    pub fn maker_is_simulated(&self) -> bool {
        self.maker_order_id == crate::sim::SIMULATED_ORDER_ID
    }

    /// Whether the simulated market is the taker (it traded through a resting order).
    pub fn taker_is_simulated(&self) -> bool {
        self.taker_order_id == crate::sim::SIMULATED_ORDER_ID
    }
}

impl RejectReason {
    pub const ALL: [RejectReason; 30] = [
        RejectReason::UnknownPortfolio,
        RejectReason::PortfolioExists,
        RejectReason::UnknownSymbol,
        RejectReason::SymbolHalted,
        RejectReason::QuantityNotPositive,
        RejectReason::QuantityNotOnLot,
        RejectReason::QuantityBelowMinimum,
        RejectReason::QuantityTooLarge,
        RejectReason::PriceNotPositive,
        RejectReason::PriceNotOnTick,
        RejectReason::PriceOutsideBand,
        RejectReason::OrderNotionalTooLarge,
        RejectReason::InsufficientBuyingPower,
        RejectReason::ShortNotAllowed,
        RejectReason::PositionLimitExceeded,
        RejectReason::GrossExposureExceeded,
        RejectReason::OpenOrdersLimitExceeded,
        RejectReason::DailyLossLimitBreached,
        RejectReason::DuplicateClientOrderId,
        RejectReason::PostOnlyWouldTake,
        RejectReason::InvalidTimeInForce,
        RejectReason::ExpireTimeInPast,
        RejectReason::UnknownOrder,
        RejectReason::BookFull,
        RejectReason::InsufficientCash,
        RejectReason::InvalidAmount,
        RejectReason::ReplaceNoChange,
        RejectReason::InvalidQuote,
        RejectReason::InvalidTrigger,
        RejectReason::NotReplaceable,
    ];

    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn from_code(code: u16) -> Option<RejectReason> {
        RejectReason::ALL.iter().copied().find(|r| r.code() == code)
    }
}

/// Why an open order left the book without filling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u16)]
pub enum CancelReason {
    /// The owner cancelled it (also a mass cancel).
    User = 1,
    /// An IOC order's unfilled remainder.
    IocRemainder = 2,
    /// A FOK order that could not fill completely.
    FokUnfillable = 3,
    /// Self-trade prevention.
    SelfTrade = 4,
    /// A DAY or GTD order reached its expiry.
    Expired = 5,
    /// A market order's remainder with no more liquidity within its protection price.
    NoLiquidity = 6,
    /// The remainder of an IOC or market order beyond what simulated liquidity allows one order
    /// (a share of the displayed size or of the average daily volume).
    LiquidityExhausted = 7,
    /// The order's OCO peer fired or ended.
    Linked = 8,
    /// A conditional order fired but failed its risk checks; a `Rejected` with the reason precedes.
    TriggerRejected = 9,
    /// A bracket exit whose entry ended before any of it filled.
    ParentClosed = 10,
}

impl CancelReason {
    pub const ALL: [CancelReason; 10] = [
        CancelReason::User,
        CancelReason::IocRemainder,
        CancelReason::FokUnfillable,
        CancelReason::SelfTrade,
        CancelReason::Expired,
        CancelReason::NoLiquidity,
        CancelReason::LiquidityExhausted,
        CancelReason::Linked,
        CancelReason::TriggerRejected,
        CancelReason::ParentClosed,
    ];

    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn from_code(code: u16) -> Option<CancelReason> {
        CancelReason::ALL.iter().copied().find(|r| r.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_round_trip_and_are_unique() {
        for reason in RejectReason::ALL {
            assert_eq!(RejectReason::from_code(reason.code()), Some(reason));
        }
        for reason in CancelReason::ALL {
            assert_eq!(CancelReason::from_code(reason.code()), Some(reason));
        }
        assert_eq!(RejectReason::from_code(0), None);
        assert_eq!(RejectReason::from_code(RejectReason::ALL.len() as u16 + 1), None);
    }
}
