//! The small value types every other module speaks in.
//!
//! Units are in the names: `price_ticks` (whole ticks of the instrument), `qty_lots` (whole lots),
//! `*_micros` (millionths of the account currency), `*_ns` (nanoseconds since the Unix epoch).

use serde::{Deserialize, Serialize};

/// Dense index of an instrument in the instrument table (also its shard-wide identity).
pub type SymbolId = u16;
/// Dense index of a portfolio; assigned by the venue when the portfolio is created.
pub type PortfolioId = u32;
/// Venue-assigned order identity, unique per shard and never reused.
pub type OrderId = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// +1 for a buy, -1 for a sell: the sign of the position change a fill makes.
    pub fn sign(self) -> i64 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }

    /// Whether a resting order at `resting_price_ticks` can trade with an incoming order of this side
    /// limited at `limit_price_ticks`.
    pub fn crosses(self, limit_price_ticks: i64, resting_price_ticks: i64) -> bool {
        match self {
            Side::Buy => resting_price_ticks <= limit_price_ticks,
            Side::Sell => resting_price_ticks >= limit_price_ticks,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    Limit,
    Market,
}

/// What makes a conditional order fire. A triggered order becomes the `OrderKind` it names: a market
/// (stop-market, take-profit, trailing stop) or a limit at its `price_ticks` (stop-limit,
/// take-profit-limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// Not conditional: the order goes to the book at once.
    #[default]
    None,
    /// Fires when a trade prints at or beyond `trigger_price_ticks` against the position: a buy stop
    /// at or above it, a sell stop at or below it.
    Stop,
    /// Fires when a trade prints at or beyond `trigger_price_ticks` in the position's favour (market
    /// if touched): a buy at or below it, a sell at or above it.
    TakeProfit,
    /// A stop that follows the best price printed since acceptance at a distance of `trail_ticks`
    /// or `trail_bps`, and only ever tightens.
    TrailingStop,
    /// An order in flight under its instrument's latency model: accepted now, sent to the book at
    /// its `execute_at_ns` (see `docs/simulation.md`). Only the engine creates it; a new order that
    /// asks for it is rejected `invalid_trigger`.
    Delayed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    /// Good till cancelled.
    Gtc,
    /// Expires at the instrument's next session close after acceptance.
    Day,
    /// Good till the order's `expire_at_ns`.
    Gtd,
    /// Immediate or cancel: fills what it can at once, the rest is cancelled.
    Ioc,
    /// Fill or kill: fills completely at once or not at all, and leaves no trace in the book.
    Fok,
}

impl TimeInForce {
    /// Whether an unfilled remainder may rest in the book.
    pub fn rests(self) -> bool {
        matches!(self, TimeInForce::Gtc | TimeInForce::Day | TimeInForce::Gtd)
    }
}

/// What happens when an incoming order would trade with a resting order of the same portfolio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SelfTradePolicy {
    /// Use the engine's configured default.
    #[default]
    Default,
    /// Cancel the resting order and keep matching (the venue default).
    CancelResting,
    /// Cancel the rest of the incoming order.
    CancelIncoming,
    /// Cancel both.
    CancelBoth,
    /// Let the orders trade with each other, as venues without self-trade prevention do. For
    /// benchmarks and for replaying command streams recorded elsewhere.
    Allow,
}

/// Whether a fill's side added liquidity to the book or took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liquidity {
    Maker,
    Taker,
}

/// A fixed-width client order id (ASCII, zero-padded); all zeroes means "none".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ClientOrderId(pub [u8; 16]);

impl ClientOrderId {
    pub const NONE: ClientOrderId = ClientOrderId([0; 16]);

    /// Builds an id from text of 1 to 16 printable ASCII characters.
    pub fn from_text(text: &str) -> Option<ClientOrderId> {
        let bytes = text.as_bytes();
        if bytes.is_empty() || bytes.len() > 16 || !bytes.iter().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let mut id = [0u8; 16];
        id[..bytes.len()].copy_from_slice(bytes);
        Some(ClientOrderId(id))
    }

    pub fn is_none(&self) -> bool {
        self.0 == [0; 16]
    }

    pub fn as_text(&self) -> &str {
        let length = self.0.iter().position(|&b| b == 0).unwrap_or(16);
        // Constructed only from ASCII in `from_text` or from zeroes.
        std::str::from_utf8(&self.0[..length]).unwrap_or("")
    }
}

impl Serialize for ClientOrderId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_none() {
            serializer.serialize_none()
        } else {
            serializer.serialize_str(self.as_text())
        }
    }
}

impl<'de> Deserialize<'de> for ClientOrderId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        match text {
            None => Ok(ClientOrderId::NONE),
            Some(text) => ClientOrderId::from_text(&text)
                .ok_or_else(|| serde::de::Error::custom("client_order_id must be 1 to 16 printable ASCII characters")),
        }
    }
}

pub const NANOS_PER_MICRO: i64 = 1_000;
pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
pub const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SECOND;
pub const MICROS_PER_UNIT: i64 = 1_000_000;
pub const BASIS_POINTS_PER_UNIT: i64 = 10_000;
