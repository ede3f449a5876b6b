//! Scenario scripts: JSON lines a person writes, turned into engine commands.
//!
//! A script is how an operator reproduces an incident and how golden tests are written, so it is
//! written in the units people use: symbols by name, prices, quantities and money as decimal text
//! (`"150.25"`, `10`, `"0.00000001"`). This module turns one line into one engine [`CommandBody`]
//! in two stages, because the two stages fail differently:
//!
//! 1. [`parse_line`] checks the line as text: valid JSON, a known `type`, only the fields that type
//!    takes, well-formed values. A failure is a [`ScriptError`]: the script itself is wrong and the
//!    run stops with the line number (a scenario that goes on after a line it could not read would
//!    reproduce something other than what its author meant).
//! 2. [`translate`] converts the values against the instrument table and the engine's current
//!    state: decimals to ticks, lots and micros, exactly (`150.255` on a `0.01` tick is never
//!    rounded), symbol names to ids, client order ids to order ids. A value the engine would refuse
//!    becomes the engine's own [`RejectReason`] (`price_not_on_tick`, `quantity_not_on_lot`,
//!    `unknown_symbol`, ...), which the runner puts in the event stream like any other rejection:
//!    a client sending such an order gets a rejection, not a crash, and so does a script.
//!
//! Numbers are never read through `f64`: a JSON number is taken as its source text (serde_json's
//! `RawValue`) and parsed by [`Decimal::parse`]. Exponent notation (`1e2`) is refused with a
//! message rather than expanded, as it is almost always a number that went through a float
//! somewhere upstream.

pub mod render;
pub mod run;
pub mod state;
pub mod time;

use serde::Deserialize;
use serde_json::value::RawValue;
use simex_engine::decimal::{Decimal, DecimalError, Step, SCALE_MAX};
use simex_engine::{
    ClientOrderId, CommandBody, Engine, Event, EventBody, Instrument, InstrumentTable, NewOrder, OrderId, OrderKind,
    PortfolioId, RejectReason, RiskLimits, SelfTradePolicy, Side, TimeInForce, TriggerKind, NO_PORTFOLIO,
};
use std::collections::HashMap;

use self::time::When;

/// One micro-unit of money: money in scripts has at most six decimals.
pub const MICRO: Step = Step { mantissa: 1, scale: 6 };

/// Every `type` a script line may have, in the order the documentation lists them.
pub const LINE_TYPES: [&str; 14] = [
    "create_portfolio",
    "deposit",
    "withdraw",
    "risk_limits",
    "order",
    "cancel",
    "replace",
    "mass_cancel",
    "reference_price",
    "reference_quote",
    "reference_trade",
    "halt",
    "resume",
    "advance_time",
];

/// A line the runner cannot read: the script is wrong, not the scenario it describes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

/// A decimal value exactly as the script wrote it, checked to be a well-formed decimal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecimalText(String);

/// Why a [`DecimalText`] is not a whole number of steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffGrid {
    /// Not a multiple of the step (`150.255` on a `0.01` tick).
    NotOnGrid,
    /// Too large for the engine's `i64`.
    TooLarge,
}

impl DecimalText {
    /// Reads a JSON string (`"150.25"`) or number (`150.25`) from its source text.
    fn from_raw(field: &str, raw: &RawValue) -> Result<DecimalText, String> {
        let source = raw.get();
        let text = if source.starts_with('"') {
            serde_json::from_str::<String>(source).map_err(|e| format!("`{field}`: {e}"))?
        } else if source.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            source.to_string()
        } else {
            return Err(format!("`{field}` must be a decimal number or a string holding one, not {source}"));
        };
        DecimalText::parse(field, &text)
    }

    pub fn parse(field: &str, text: &str) -> Result<DecimalText, String> {
        let unsigned = text.trim_start_matches(['+', '-']);
        if text.contains(['e', 'E']) && unsigned.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "`{field}`: {text} is in exponent notation, which is not accepted; write the digits out (100, not 1e2)"
            ));
        }
        let normalized = normalize(text);
        match Decimal::parse(&normalized) {
            Ok(_) | Err(DecimalError::TooLong | DecimalError::Overflow) => {
                Ok(DecimalText(normalized))
            }
            Err(error) => Err(format!(
                "`{field}`: {text:?} is {error} (expected digits with an optional sign and decimal point, like \"150.25\")"
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number of `step`s this value is, exactly.
    pub fn to_steps(&self, step: Step) -> Result<i64, OffGrid> {
        match Decimal::parse(&self.0).and_then(|d| d.to_steps(step)) {
            Ok(steps) => Ok(steps),
            Err(DecimalError::NotOnGrid) => Err(OffGrid::NotOnGrid),
            // More significant fractional digits than any step has: cannot be on the grid.
            Err(DecimalError::TooLong) if fraction_digits(&self.0) > SCALE_MAX as usize => Err(OffGrid::NotOnGrid),
            Err(_) => Err(OffGrid::TooLarge),
        }
    }
}

/// Drops leading zeros of the integer part and trailing zeros of the fraction: the same value,
/// and only significant digits count against the parser's length limits.
fn normalize(text: &str) -> String {
    let (sign, body) = match text.as_bytes().first() {
        Some(b'-' | b'+') => text.split_at(1),
        _ => ("", text),
    };
    if !body.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return text.to_string();
    }
    let (int_part, frac_part) = match body.split_once('.') {
        Some((int_part, frac_part)) if !int_part.is_empty() && !frac_part.is_empty() => (int_part, Some(frac_part)),
        Some(_) => return text.to_string(),
        None => (body, None),
    };
    if int_part.is_empty() {
        return text.to_string();
    }
    let int_part = match int_part.trim_start_matches('0') {
        "" => "0",
        trimmed => trimmed,
    };
    let sign = if sign == "+" { "" } else { sign };
    match frac_part.map(|f| f.trim_end_matches('0')) {
        Some(frac) if !frac.is_empty() => format!("{sign}{int_part}.{frac}"),
        _ => format!("{sign}{int_part}"),
    }
}

fn fraction_digits(text: &str) -> usize {
    text.split_once('.').map_or(0, |(_, frac)| frac.len())
}

/// Which order a cancel or replace line means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRef {
    /// The engine's order id, as printed in `order_accepted`.
    Id(OrderId),
    /// The client order id the order was entered with, within the line's portfolio.
    Client(ClientOrderId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub portfolio: PortfolioId,
    pub symbol: String,
    pub side: Side,
    pub kind: OrderKind,
    pub price: Option<DecimalText>,
    pub qty: DecimalText,
    pub tif: TimeInForce,
    pub expire_at_ns: i64,
    pub client_order_id: ClientOrderId,
    pub post_only: bool,
    pub stp: SelfTradePolicy,
    pub trigger: TriggerKind,
    pub trigger_price: Option<DecimalText>,
    /// A trailing stop's distance as a price difference.
    pub trail: Option<DecimalText>,
    pub trail_bps: i64,
    /// The client order id of the waiting conditional order to OCO-link with.
    pub oco_with: Option<ClientOrderId>,
    /// Bracket exits: with either, the line is a bracket whose entry is this order.
    pub take_profit: Option<DecimalText>,
    pub stop_loss: Option<DecimalText>,
    pub stop_loss_limit: Option<DecimalText>,
}

/// What one script line asks for, checked as text but not yet against the instruments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    CreatePortfolio {
        portfolio: PortfolioId,
        cash: DecimalText,
    },
    Deposit {
        portfolio: PortfolioId,
        amount: DecimalText,
    },
    Withdraw {
        portfolio: PortfolioId,
        amount: DecimalText,
    },
    /// Limits not named keep their current value.
    RiskLimits {
        portfolio: PortfolioId,
        order_notional_max: Option<DecimalText>,
        gross_exposure_max: Option<DecimalText>,
        open_orders_max: Option<u32>,
        daily_loss_max: Option<DecimalText>,
    },
    Order(OrderLine),
    Cancel {
        portfolio: PortfolioId,
        order: OrderRef,
    },
    /// A price or quantity not named keeps the order's current one.
    Replace {
        portfolio: PortfolioId,
        order: OrderRef,
        price: Option<DecimalText>,
        qty: Option<DecimalText>,
    },
    MassCancel {
        portfolio: PortfolioId,
        symbol: Option<String>,
    },
    ReferencePrice {
        symbol: String,
        price: DecimalText,
    },
    /// Sizes absent are 0 (not given).
    ReferenceQuote {
        symbol: String,
        bid: DecimalText,
        bid_qty: Option<DecimalText>,
        ask: DecimalText,
        ask_qty: Option<DecimalText>,
    },
    ReferenceTrade {
        symbol: String,
        price: DecimalText,
        qty: DecimalText,
    },
    Halt {
        symbol: String,
        halted: bool,
    },
    AdvanceTime,
}

/// A parsed script line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the script file.
    pub number: usize,
    pub when: When,
    pub action: Action,
}

/// Every field any line may carry; which ones a given `type` takes is checked after reading.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object with a \"type\" field")]
struct RawLine {
    #[serde(rename = "type")]
    line_type: String,
    at: Option<String>,
    at_ns: Option<i64>,
    by: Option<String>,
    /// Free text for the reader; ignored.
    #[allow(dead_code)]
    comment: Option<String>,
    portfolio: Option<PortfolioId>,
    symbol: Option<String>,
    side: Option<Side>,
    kind: Option<OrderKind>,
    price: Option<Box<RawValue>>,
    qty: Option<Box<RawValue>>,
    cash: Option<Box<RawValue>>,
    amount: Option<Box<RawValue>>,
    tif: Option<TimeInForce>,
    expire_at: Option<String>,
    expire_at_ns: Option<i64>,
    client_order_id: Option<String>,
    order_id: Option<OrderId>,
    post_only: Option<bool>,
    stp: Option<SelfTradePolicy>,
    order_notional_max: Option<Box<RawValue>>,
    gross_exposure_max: Option<Box<RawValue>>,
    open_orders_max: Option<u32>,
    daily_loss_max: Option<Box<RawValue>>,
    bid: Option<Box<RawValue>>,
    bid_qty: Option<Box<RawValue>>,
    ask: Option<Box<RawValue>>,
    ask_qty: Option<Box<RawValue>>,
    trigger: Option<TriggerKind>,
    trigger_price: Option<Box<RawValue>>,
    trail: Option<Box<RawValue>>,
    trail_bps: Option<u16>,
    oco_with: Option<String>,
    take_profit: Option<Box<RawValue>>,
    stop_loss: Option<Box<RawValue>>,
    stop_loss_limit: Option<Box<RawValue>>,
}

impl RawLine {
    /// The names of the fields present, other than `type` and `comment`.
    fn present(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        let mut note = |name: &'static str, present: bool| {
            if present {
                names.push(name);
            }
        };
        note("at", self.at.is_some());
        note("at_ns", self.at_ns.is_some());
        note("by", self.by.is_some());
        note("portfolio", self.portfolio.is_some());
        note("symbol", self.symbol.is_some());
        note("side", self.side.is_some());
        note("kind", self.kind.is_some());
        note("price", self.price.is_some());
        note("qty", self.qty.is_some());
        note("cash", self.cash.is_some());
        note("amount", self.amount.is_some());
        note("tif", self.tif.is_some());
        note("expire_at", self.expire_at.is_some());
        note("expire_at_ns", self.expire_at_ns.is_some());
        note("client_order_id", self.client_order_id.is_some());
        note("order_id", self.order_id.is_some());
        note("post_only", self.post_only.is_some());
        note("stp", self.stp.is_some());
        note("order_notional_max", self.order_notional_max.is_some());
        note("gross_exposure_max", self.gross_exposure_max.is_some());
        note("open_orders_max", self.open_orders_max.is_some());
        note("daily_loss_max", self.daily_loss_max.is_some());
        note("bid", self.bid.is_some());
        note("bid_qty", self.bid_qty.is_some());
        note("ask", self.ask.is_some());
        note("ask_qty", self.ask_qty.is_some());
        note("trigger", self.trigger.is_some());
        note("trigger_price", self.trigger_price.is_some());
        note("trail", self.trail.is_some());
        note("trail_bps", self.trail_bps.is_some());
        note("oco_with", self.oco_with.is_some());
        note("take_profit", self.take_profit.is_some());
        note("stop_loss", self.stop_loss.is_some());
        note("stop_loss_limit", self.stop_loss_limit.is_some());
        names
    }
}

/// The fields a line of `line_type` may carry besides `type`, `at`, `at_ns` and `comment`.
fn fields_of(line_type: &str) -> Option<&'static [&'static str]> {
    Some(match line_type {
        "create_portfolio" => &["portfolio", "cash"],
        "deposit" | "withdraw" => &["portfolio", "amount"],
        "risk_limits" => {
            &["portfolio", "order_notional_max", "gross_exposure_max", "open_orders_max", "daily_loss_max"]
        }
        "order" => &[
            "portfolio",
            "symbol",
            "side",
            "kind",
            "price",
            "qty",
            "tif",
            "expire_at",
            "expire_at_ns",
            "client_order_id",
            "post_only",
            "stp",
            "trigger",
            "trigger_price",
            "trail",
            "trail_bps",
            "oco_with",
            "take_profit",
            "stop_loss",
            "stop_loss_limit",
        ],
        "cancel" => &["portfolio", "order_id", "client_order_id"],
        "replace" => &["portfolio", "order_id", "client_order_id", "price", "qty"],
        "mass_cancel" => &["portfolio", "symbol"],
        "reference_price" => &["symbol", "price"],
        "reference_quote" => &["symbol", "bid", "bid_qty", "ask", "ask_qty"],
        "reference_trade" => &["symbol", "price", "qty"],
        "halt" | "resume" => &["symbol"],
        "advance_time" => &["by"],
        _ => return None,
    })
}

/// Strips serde_json's " at line 1 column N" (the line is always 1 here) and reports the column.
fn json_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let message = match text.rfind(" at line ") {
        Some(index) => &text[..index],
        None => &text,
    };
    if error.column() > 0 {
        format!("column {}: {message}", error.column())
    } else {
        message.to_string()
    }
}

/// "a `cancel` line", "an `order` line".
fn a_line(line_type: &str) -> String {
    let article = if line_type.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} `{line_type}` line")
}

/// serde's message for an unknown field lists every field of every type; name only those the
/// line's type takes.
fn unknown_field_error(line: &str, error: &serde_json::Error) -> String {
    #[derive(Deserialize)]
    struct TypeOnly {
        #[serde(rename = "type")]
        line_type: String,
    }
    let message = json_error(error);
    let Some(rest) = error.to_string().strip_prefix("unknown field `").map(str::to_string) else {
        return message;
    };
    let Some((field, _)) = rest.split_once('`') else {
        return message;
    };
    let Ok(TypeOnly { line_type }) = serde_json::from_str::<TypeOnly>(line) else {
        return message;
    };
    match fields_of(&line_type) {
        Some(allowed) => format!(
            "column {}: unknown field `{field}`; {} takes {}, and at, at_ns, comment",
            error.column(),
            a_line(&line_type),
            allowed.join(", ")
        ),
        None => message,
    }
}

/// Reads one script line. `Ok(None)` for a blank line or a comment (first non-blank character
/// `#`).
pub fn parse_line(number: usize, text: &str) -> Result<Option<Line>, ScriptError> {
    // A byte order mark, as some editors write at the start of a file, is not content.
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let fail = |message: String| ScriptError { line: number, message };
    if !trimmed.starts_with('{') {
        return Err(fail("a line must be a JSON object with a \"type\" field, a comment (#) or blank".to_string()));
    }
    let raw: RawLine = serde_json::from_str(trimmed).map_err(|e| fail(unknown_field_error(trimmed, &e)))?;
    let Some(allowed) = fields_of(&raw.line_type) else {
        return Err(fail(format!("unknown type `{}`; expected one of {}", raw.line_type, LINE_TYPES.join(", "))));
    };
    for field in raw.present() {
        if !matches!(field, "at" | "at_ns") && !allowed.contains(&field) {
            return Err(fail(format!(
                "field `{field}` does not apply to {} (it takes {})",
                a_line(&raw.line_type),
                allowed.join(", ")
            )));
        }
    }
    let when = match (&raw.at, raw.at_ns, &raw.by) {
        (None, None, None) => When::Next,
        (Some(at), None, None) => When::At(time::parse_rfc3339(at).map_err(|e| fail(e.to_string()))?),
        (None, Some(at_ns), None) => When::At(at_ns),
        (None, None, Some(by)) => When::After(time::parse_duration(by).map_err(|e| fail(e.to_string()))?),
        _ => return Err(fail("give at most one of `at`, `at_ns` and `by`".to_string())),
    };
    let action = action(&raw).map_err(fail)?;
    Ok(Some(Line { number, when, action }))
}

fn required<T: Clone>(value: &Option<T>, field: &str, line_type: &str) -> Result<T, String> {
    value.clone().ok_or_else(|| format!("{} needs `{field}`", a_line(line_type)))
}

fn decimal(value: &Option<Box<RawValue>>, field: &str) -> Result<Option<DecimalText>, String> {
    value.as_deref().map(|raw| DecimalText::from_raw(field, raw)).transpose()
}

fn required_decimal(value: &Option<Box<RawValue>>, field: &str, line_type: &str) -> Result<DecimalText, String> {
    decimal(value, field)?.ok_or_else(|| format!("{} needs `{field}`", a_line(line_type)))
}

fn client_order_id(text: &str) -> Result<ClientOrderId, String> {
    ClientOrderId::from_text(text)
        .ok_or_else(|| format!("client_order_id {text:?} must be 1 to 16 printable ASCII characters"))
}

fn order_ref(raw: &RawLine) -> Result<OrderRef, String> {
    match (raw.order_id, &raw.client_order_id) {
        (Some(id), None) => Ok(OrderRef::Id(id)),
        (None, Some(text)) => Ok(OrderRef::Client(client_order_id(text)?)),
        _ => Err(format!("{} needs exactly one of `order_id` and `client_order_id`", a_line(&raw.line_type))),
    }
}

fn action(raw: &RawLine) -> Result<Action, String> {
    let line_type = raw.line_type.as_str();
    let portfolio = || required(&raw.portfolio, "portfolio", line_type);
    let symbol = || required(&raw.symbol, "symbol", line_type);
    Ok(match line_type {
        "create_portfolio" => {
            Action::CreatePortfolio { portfolio: portfolio()?, cash: required_decimal(&raw.cash, "cash", line_type)? }
        }
        "deposit" => {
            Action::Deposit { portfolio: portfolio()?, amount: required_decimal(&raw.amount, "amount", line_type)? }
        }
        "withdraw" => {
            Action::Withdraw { portfolio: portfolio()?, amount: required_decimal(&raw.amount, "amount", line_type)? }
        }
        "risk_limits" => {
            let action = Action::RiskLimits {
                portfolio: portfolio()?,
                order_notional_max: decimal(&raw.order_notional_max, "order_notional_max")?,
                gross_exposure_max: decimal(&raw.gross_exposure_max, "gross_exposure_max")?,
                open_orders_max: raw.open_orders_max,
                daily_loss_max: decimal(&raw.daily_loss_max, "daily_loss_max")?,
            };
            if raw.order_notional_max.is_none()
                && raw.gross_exposure_max.is_none()
                && raw.open_orders_max.is_none()
                && raw.daily_loss_max.is_none()
            {
                return Err("a `risk_limits` line needs at least one limit".to_string());
            }
            action
        }
        "order" => {
            let kind = raw.kind.unwrap_or(OrderKind::Limit);
            let price = decimal(&raw.price, "price")?;
            match (kind, &price) {
                (OrderKind::Limit, None) => return Err("a limit order needs `price`".to_string()),
                (OrderKind::Market, Some(_)) => return Err("a market order takes no `price`".to_string()),
                _ => {}
            }
            let expire_at_ns = match (&raw.expire_at, raw.expire_at_ns) {
                (None, None) => 0,
                (Some(at), None) => time::parse_rfc3339(at).map_err(|e| e.to_string())?,
                (None, Some(at_ns)) => at_ns,
                (Some(_), Some(_)) => return Err("give at most one of `expire_at` and `expire_at_ns`".to_string()),
            };
            Action::Order(OrderLine {
                portfolio: portfolio()?,
                symbol: symbol()?,
                side: required(&raw.side, "side", line_type)?,
                kind,
                price,
                qty: required_decimal(&raw.qty, "qty", line_type)?,
                tif: raw.tif.unwrap_or(match kind {
                    OrderKind::Limit => TimeInForce::Gtc,
                    OrderKind::Market => TimeInForce::Ioc,
                }),
                expire_at_ns,
                client_order_id: raw
                    .client_order_id
                    .as_deref()
                    .map(client_order_id)
                    .transpose()?
                    .unwrap_or(ClientOrderId::NONE),
                post_only: raw.post_only.unwrap_or(false),
                stp: raw.stp.unwrap_or_default(),
                trigger: raw.trigger.unwrap_or_default(),
                trigger_price: decimal(&raw.trigger_price, "trigger_price")?,
                trail: decimal(&raw.trail, "trail")?,
                trail_bps: raw.trail_bps.map_or(0, i64::from),
                oco_with: raw.oco_with.as_deref().map(client_order_id).transpose()?,
                take_profit: decimal(&raw.take_profit, "take_profit")?,
                stop_loss: decimal(&raw.stop_loss, "stop_loss")?,
                stop_loss_limit: decimal(&raw.stop_loss_limit, "stop_loss_limit")?,
            })
        }
        "cancel" => Action::Cancel { portfolio: portfolio()?, order: order_ref(raw)? },
        "replace" => {
            let price = decimal(&raw.price, "price")?;
            let qty = decimal(&raw.qty, "qty")?;
            if price.is_none() && qty.is_none() {
                return Err("a `replace` line needs `price`, `qty` or both".to_string());
            }
            Action::Replace { portfolio: portfolio()?, order: order_ref(raw)?, price, qty }
        }
        "mass_cancel" => Action::MassCancel { portfolio: portfolio()?, symbol: raw.symbol.clone() },
        "reference_price" => {
            Action::ReferencePrice { symbol: symbol()?, price: required_decimal(&raw.price, "price", line_type)? }
        }
        "reference_quote" => Action::ReferenceQuote {
            symbol: symbol()?,
            bid: required_decimal(&raw.bid, "bid", line_type)?,
            bid_qty: decimal(&raw.bid_qty, "bid_qty")?,
            ask: required_decimal(&raw.ask, "ask", line_type)?,
            ask_qty: decimal(&raw.ask_qty, "ask_qty")?,
        },
        "reference_trade" => Action::ReferenceTrade {
            symbol: symbol()?,
            price: required_decimal(&raw.price, "price", line_type)?,
            qty: required_decimal(&raw.qty, "qty", line_type)?,
        },
        "halt" => Action::Halt { symbol: symbol()?, halted: true },
        "resume" => Action::Halt { symbol: symbol()?, halted: false },
        "advance_time" => Action::AdvanceTime,
        other => unreachable!("type {other} was checked against fields_of"),
    })
}

/// What the runner does for a line: give the engine a command, or record a rejection that the
/// engine would have made had it seen the value as the script wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Command(CommandBody),
    Reject { portfolio_id: PortfolioId, order_id: OrderId, client_order_id: ClientOrderId, reason: RejectReason },
}

/// Client order id to order id, learned from `order_accepted` events. The engine keeps such a map
/// but does not expose it; an entry is trusted only while [`Engine::order`] confirms the order is
/// still open with that client id (the engine frees a client id when its order ends).
#[derive(Debug, Default, Clone)]
pub struct ClientIds {
    by_client: HashMap<(PortfolioId, ClientOrderId), OrderId>,
}

impl ClientIds {
    pub fn record(&mut self, event: &Event) {
        let (portfolio_id, client_order_id, order_id) = match &event.body {
            EventBody::OrderAccepted(a) => (a.portfolio_id, a.client_order_id, a.order_id),
            EventBody::ConditionalAccepted(c) => (c.portfolio_id, c.client_order_id, c.order_id),
            _ => return,
        };
        if !client_order_id.is_none() {
            self.by_client.insert((portfolio_id, client_order_id), order_id);
        }
    }

    /// The open order of `portfolio_id` entered with `client_order_id`, if there is one.
    pub fn resolve(
        &self,
        engine: &Engine,
        portfolio_id: PortfolioId,
        client_order_id: ClientOrderId,
    ) -> Option<OrderId> {
        let order_id = *self.by_client.get(&(portfolio_id, client_order_id))?;
        let owner = match (engine.order(order_id), engine.conditional_order(order_id)) {
            (Some(order), _) => (order.portfolio_id, order.client_order_id),
            (None, Some(waiting)) => (waiting.portfolio_id, waiting.client_order_id),
            (None, None) => return None,
        };
        (owner == (portfolio_id, client_order_id)).then_some(order_id)
    }
}

fn instrument<'a>(instruments: &'a InstrumentTable, symbol: &str) -> Option<&'a Instrument> {
    instruments.by_symbol(symbol)
}

/// Converts a parsed line to what the runner hands the engine, against the engine's current state.
pub fn translate(action: &Action, engine: &Engine, client_ids: &ClientIds) -> Input {
    let instruments = engine.instruments();
    let reject = |portfolio_id, order_id, client_order_id, reason| Input::Reject {
        portfolio_id,
        order_id,
        client_order_id,
        reason,
    };
    let invalid_amount = |portfolio_id| reject(portfolio_id, 0, ClientOrderId::NONE, RejectReason::InvalidAmount);
    let money = |text: &DecimalText| text.to_steps(MICRO).ok();
    match action {
        Action::CreatePortfolio { portfolio, cash } => match money(cash) {
            Some(cash_micros) => Input::Command(CommandBody::CreatePortfolio { portfolio_id: *portfolio, cash_micros }),
            None => invalid_amount(*portfolio),
        },
        Action::Deposit { portfolio, amount } | Action::Withdraw { portfolio, amount } => match money(amount) {
            Some(micros) if micros > 0 => Input::Command(CommandBody::AdjustCash {
                portfolio_id: *portfolio,
                delta_micros: if matches!(action, Action::Withdraw { .. }) { -micros } else { micros },
            }),
            _ => invalid_amount(*portfolio),
        },
        Action::RiskLimits { portfolio, order_notional_max, gross_exposure_max, open_orders_max, daily_loss_max } => {
            let mut limits: RiskLimits = engine.account(*portfolio).map(|account| account.limits).unwrap_or_default();
            for (value, target) in [
                (order_notional_max, &mut limits.order_notional_max_micros),
                (gross_exposure_max, &mut limits.gross_exposure_max_micros),
                (daily_loss_max, &mut limits.daily_loss_max_micros),
            ] {
                if let Some(text) = value {
                    match money(text) {
                        Some(micros) => *target = micros,
                        None => return invalid_amount(*portfolio),
                    }
                }
            }
            if let Some(open_orders_max) = open_orders_max {
                limits.open_orders_max = *open_orders_max;
            }
            Input::Command(CommandBody::SetRiskLimits { portfolio_id: *portfolio, limits })
        }
        Action::Order(order) => {
            let rejected = |reason| reject(order.portfolio, 0, order.client_order_id, reason);
            let Some(instrument) = instrument(instruments, &order.symbol) else {
                return rejected(RejectReason::UnknownSymbol);
            };
            // Quantity first, then price: the order in which the engine checks them.
            let qty_lots = match order.qty.to_steps(instrument.lot) {
                Ok(lots) => lots,
                Err(OffGrid::NotOnGrid) => return rejected(RejectReason::QuantityNotOnLot),
                Err(OffGrid::TooLarge) => return rejected(RejectReason::QuantityTooLarge),
            };
            let ticks = |price: &Option<DecimalText>| match price {
                None => Ok(0),
                Some(price) => match price.to_steps(instrument.tick) {
                    Ok(ticks) => Ok(ticks),
                    Err(OffGrid::NotOnGrid) => Err(rejected(RejectReason::PriceNotOnTick)),
                    Err(OffGrid::TooLarge) => Err(rejected(RejectReason::PriceOutsideBand)),
                },
            };
            let prices = [
                &order.price,
                &order.trigger_price,
                &order.trail,
                &order.take_profit,
                &order.stop_loss,
                &order.stop_loss_limit,
            ]
            .map(ticks);
            let [price_ticks, trigger_price_ticks, trail_ticks, take_profit, stop_loss, stop_loss_limit] =
                match prices.iter().find_map(|p| p.err()) {
                    Some(rejection) => return rejection,
                    None => prices.map(|p| p.unwrap_or(0)),
                };
            // A link to an order that is not waiting: the engine answers `invalid_trigger`.
            let oco_order_id = match order.oco_with {
                None => 0,
                Some(client_order_id) => {
                    client_ids.resolve(engine, order.portfolio, client_order_id).unwrap_or(u64::MAX)
                }
            };
            let new = NewOrder {
                portfolio_id: order.portfolio,
                symbol_id: instrument.symbol_id,
                side: order.side,
                kind: order.kind,
                price_ticks,
                qty_lots,
                time_in_force: order.tif,
                expire_at_ns: order.expire_at_ns,
                client_order_id: order.client_order_id,
                post_only: order.post_only,
                self_trade_policy: order.stp,
                trigger: order.trigger,
                trigger_price_ticks,
                trail_ticks,
                trail_bps: order.trail_bps,
                oco_order_id,
            };
            if order.take_profit.is_some() || order.stop_loss.is_some() || order.stop_loss_limit.is_some() {
                Input::Command(CommandBody::NewBracket {
                    entry: new,
                    take_profit_price_ticks: take_profit,
                    stop_loss_trigger_ticks: stop_loss,
                    stop_loss_limit_ticks: stop_loss_limit,
                })
            } else {
                Input::Command(CommandBody::NewOrder(new))
            }
        }
        Action::Cancel { portfolio, order } => match resolve(order, *portfolio, engine, client_ids) {
            Ok(order_id) => Input::Command(CommandBody::Cancel { portfolio_id: *portfolio, order_id }),
            Err(unknown) => unknown,
        },
        Action::Replace { portfolio, order, price, qty } => {
            let order_id = match resolve(order, *portfolio, engine, client_ids) {
                Ok(order_id) => order_id,
                Err(unknown) => return unknown,
            };
            let replace = |price_ticks, qty_lots| {
                Input::Command(CommandBody::Replace { portfolio_id: *portfolio, order_id, price_ticks, qty_lots })
            };
            // Someone else's or a finished order: the engine answers `unknown_order`.
            let Some(current) = engine.order(order_id).filter(|o| o.portfolio_id == *portfolio) else {
                return replace(0, 0);
            };
            let Some(instrument) = instruments.get(current.symbol_id) else {
                return replace(0, 0);
            };
            let rejected = |reason| reject(*portfolio, order_id, current.client_order_id, reason);
            let qty_lots = match qty.as_ref().map(|q| q.to_steps(instrument.lot)) {
                None => current.open_lots,
                Some(Ok(lots)) => lots,
                Some(Err(OffGrid::NotOnGrid)) => return rejected(RejectReason::QuantityNotOnLot),
                Some(Err(OffGrid::TooLarge)) => return rejected(RejectReason::QuantityTooLarge),
            };
            let price_ticks = match price.as_ref().map(|p| p.to_steps(instrument.tick)) {
                None => current.price_ticks,
                Some(Ok(ticks)) => ticks,
                Some(Err(OffGrid::NotOnGrid)) => return rejected(RejectReason::PriceNotOnTick),
                Some(Err(OffGrid::TooLarge)) => return rejected(RejectReason::PriceOutsideBand),
            };
            replace(price_ticks, qty_lots)
        }
        Action::MassCancel { portfolio, symbol } => {
            let symbol_id = match symbol {
                None => None,
                Some(name) => match instrument(instruments, name) {
                    Some(instrument) => Some(instrument.symbol_id),
                    None => return reject(*portfolio, 0, ClientOrderId::NONE, RejectReason::UnknownSymbol),
                },
            };
            Input::Command(CommandBody::MassCancel { portfolio_id: *portfolio, symbol_id })
        }
        Action::ReferencePrice { symbol, price } => {
            let rejected = |reason| reject(NO_PORTFOLIO, 0, ClientOrderId::NONE, reason);
            let Some(instrument) = instrument(instruments, symbol) else {
                return rejected(RejectReason::UnknownSymbol);
            };
            match price.to_steps(instrument.tick) {
                Ok(price_ticks) => {
                    Input::Command(CommandBody::SetReferencePrice { symbol_id: instrument.symbol_id, price_ticks })
                }
                Err(OffGrid::NotOnGrid) => rejected(RejectReason::PriceNotOnTick),
                Err(OffGrid::TooLarge) => rejected(RejectReason::PriceOutsideBand),
            }
        }
        Action::ReferenceQuote { symbol, bid, bid_qty, ask, ask_qty } => {
            let rejected = |reason| reject(NO_PORTFOLIO, 0, ClientOrderId::NONE, reason);
            let Some(instrument) = instrument(instruments, symbol) else {
                return rejected(RejectReason::UnknownSymbol);
            };
            let price = |text: &DecimalText| match text.to_steps(instrument.tick) {
                Ok(ticks) => Ok(ticks),
                Err(OffGrid::NotOnGrid) => Err(RejectReason::PriceNotOnTick),
                Err(OffGrid::TooLarge) => Err(RejectReason::PriceOutsideBand),
            };
            let size = |text: &Option<DecimalText>| match text.as_ref().map(|t| t.to_steps(instrument.lot)) {
                None => Ok(0),
                Some(Ok(lots)) => Ok(lots),
                Some(Err(OffGrid::NotOnGrid)) => Err(RejectReason::QuantityNotOnLot),
                Some(Err(OffGrid::TooLarge)) => Err(RejectReason::QuantityTooLarge),
            };
            match (price(bid), size(bid_qty), price(ask), size(ask_qty)) {
                (Ok(bid_price_ticks), Ok(bid_qty_lots), Ok(ask_price_ticks), Ok(ask_qty_lots)) => {
                    Input::Command(CommandBody::ReferenceQuote {
                        symbol_id: instrument.symbol_id,
                        bid_price_ticks,
                        bid_qty_lots,
                        ask_price_ticks,
                        ask_qty_lots,
                    })
                }
                (Err(reason), ..) | (_, Err(reason), ..) | (_, _, Err(reason), _) | (.., Err(reason)) => {
                    rejected(reason)
                }
            }
        }
        Action::ReferenceTrade { symbol, price, qty } => {
            let rejected = |reason| reject(NO_PORTFOLIO, 0, ClientOrderId::NONE, reason);
            let Some(instrument) = instrument(instruments, symbol) else {
                return rejected(RejectReason::UnknownSymbol);
            };
            let price_ticks = match price.to_steps(instrument.tick) {
                Ok(ticks) => ticks,
                Err(OffGrid::NotOnGrid) => return rejected(RejectReason::PriceNotOnTick),
                Err(OffGrid::TooLarge) => return rejected(RejectReason::PriceOutsideBand),
            };
            match qty.to_steps(instrument.lot) {
                Ok(qty_lots) => Input::Command(CommandBody::ReferenceTrade {
                    symbol_id: instrument.symbol_id,
                    price_ticks,
                    qty_lots,
                }),
                Err(OffGrid::NotOnGrid) => rejected(RejectReason::QuantityNotOnLot),
                Err(OffGrid::TooLarge) => rejected(RejectReason::QuantityTooLarge),
            }
        }
        Action::Halt { symbol, halted } => match instrument(instruments, symbol) {
            Some(instrument) => {
                Input::Command(CommandBody::SetHalted { symbol_id: instrument.symbol_id, halted: *halted })
            }
            None => reject(NO_PORTFOLIO, 0, ClientOrderId::NONE, RejectReason::UnknownSymbol),
        },
        Action::AdvanceTime => Input::Command(CommandBody::AdvanceTime),
    }
}

/// The order id a cancel or replace means, or the rejection for a client id with no open order.
fn resolve(
    order: &OrderRef,
    portfolio_id: PortfolioId,
    engine: &Engine,
    client_ids: &ClientIds,
) -> Result<OrderId, Input> {
    match order {
        OrderRef::Id(order_id) => Ok(*order_id),
        OrderRef::Client(client_order_id) => {
            client_ids.resolve(engine, portfolio_id, *client_order_id).ok_or(Input::Reject {
                portfolio_id,
                order_id: 0,
                client_order_id: *client_order_id,
                reason: RejectReason::UnknownOrder,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simex_engine::EngineConfig;

    fn parse(text: &str) -> Result<Action, String> {
        parse_line(7, text).map(|line| line.expect("not a comment").action).map_err(|e| e.to_string())
    }

    fn engine() -> Engine {
        Engine::new(EngineConfig { orders_max: 64, ..EngineConfig::default() }, InstrumentTable::default_table())
    }

    fn order_input(line: &str) -> Input {
        translate(&parse(line).unwrap(), &engine(), &ClientIds::default())
    }

    fn new_order(input: Input) -> NewOrder {
        match input {
            Input::Command(CommandBody::NewOrder(order)) => order,
            other => panic!("not a new order: {other:?}"),
        }
    }

    fn rejection(input: Input) -> RejectReason {
        match input {
            Input::Reject { reason, .. } => reason,
            other => panic!("not a rejection: {other:?}"),
        }
    }

    const AAPL_BUY: &str = r#"{"type":"order","portfolio":1,"symbol":"AAPL","side":"buy""#;

    #[test]
    fn prices_and_quantities_convert_exactly_from_strings_and_numbers() {
        for (price, qty) in
            [(r#""150.25""#, r#""10""#), ("150.25", "10"), ("150.250", "10.0"), (r#""0150.2500""#, r#""+10""#)]
        {
            let order = new_order(order_input(&format!(r#"{AAPL_BUY},"price":{price},"qty":{qty}}}"#)));
            assert_eq!((order.price_ticks, order.qty_lots), (15025, 10), "{price} {qty}");
        }
        let btc = new_order(order_input(
            r#"{"type":"order","portfolio":1,"symbol":"BTC-USD","side":"sell","price":"60000.01","qty":"0.00000001"}"#,
        ));
        assert_eq!((btc.price_ticks, btc.qty_lots), (6_000_001, 1));
        // A number with more digits than an f64 holds is still exact.
        let btc = new_order(order_input(
            r#"{"type":"order","portfolio":1,"symbol":"BTC-USD","side":"sell","price":90071992547409.93,"qty":0.12345678}"#,
        ));
        assert_eq!((btc.price_ticks, btc.qty_lots), (9_007_199_254_740_993, 12_345_678));
    }

    #[test]
    fn off_grid_values_become_engine_rejections_not_rounding() {
        for price in [r#""150.255""#, "150.255", r#""150.2500001""#] {
            let input = order_input(&format!(r#"{AAPL_BUY},"price":{price},"qty":10}}"#));
            assert_eq!(rejection(input), RejectReason::PriceNotOnTick, "{price}");
        }
        let input = order_input(&format!(r#"{AAPL_BUY},"price":"150","qty":"1.5"}}"#));
        assert_eq!(rejection(input), RejectReason::QuantityNotOnLot);
        let input = order_input(&format!(r#"{AAPL_BUY},"price":"0.0000000000000000000000001","qty":1}}"#));
        assert_eq!(rejection(input), RejectReason::PriceNotOnTick);
        let input = order_input(&format!(r#"{AAPL_BUY},"price":"150","qty":"99999999999999999999"}}"#));
        assert_eq!(rejection(input), RejectReason::QuantityTooLarge);
        let input = order_input(r#"{"type":"order","portfolio":1,"symbol":"NOPE","side":"buy","price":1,"qty":1}"#);
        assert_eq!(rejection(input), RejectReason::UnknownSymbol);
    }

    #[test]
    fn money_has_six_decimals() {
        let create = |cash: &str| {
            translate(
                &parse(&format!(r#"{{"type":"create_portfolio","portfolio":1,"cash":{cash}}}"#)).unwrap(),
                &engine(),
                &ClientIds::default(),
            )
        };
        assert_eq!(
            create(r#""100000.000001""#),
            Input::Command(CommandBody::CreatePortfolio { portfolio_id: 1, cash_micros: 100_000_000_001 })
        );
        assert_eq!(rejection(create("0.0000001")), RejectReason::InvalidAmount);
    }

    #[test]
    fn exponents_and_non_numbers_are_script_errors() {
        for (value, needle) in [
            ("1e2", "exponent"),
            ("1.5E+2", "exponent"),
            (r#""1e2""#, "exponent"),
            (r#""abc""#, "not a decimal number"),
            (r#""""#, "not a decimal number"),
            ("true", "must be a decimal number"),
            ("[1]", "must be a decimal number"),
        ] {
            let error = parse(&format!(r#"{AAPL_BUY},"price":{value},"qty":1}}"#)).unwrap_err();
            assert!(error.starts_with("line 7: "), "{error}");
            assert!(error.contains(needle), "{value}: {error}");
        }
    }

    #[test]
    fn malformed_lines_name_the_problem() {
        for (line, needle) in [
            ("{", "EOF"),
            (r#"{"type":"order","pirce":1}"#, "unknown field `pirce`"),
            (r#"{"type":"buy"}"#, "unknown type `buy`"),
            (r#"{"portfolio":1}"#, "missing field `type`"),
            (r#"[1,2]"#, "a JSON object"),
            (r#"{"type":"cancel","portfolio":1,"order_id":1,"price":1}"#, "`price` does not apply to a `cancel` line"),
            (r#"{"type":"cancel","portfolio":1}"#, "exactly one of `order_id` and `client_order_id`"),
            (r#"{"type":"order","portfolio":1,"symbol":"AAPL","side":"buy","qty":1}"#, "needs `price`"),
            (r#"{"type":"order","portfolio":1,"symbol":"AAPL","side":"up","price":1,"qty":1}"#, "unknown variant `up`"),
            (r#"{"type":"advance_time","at":"2026-01-05T14:30:00Z","by":"1s"}"#, "at most one"),
            (r#"{"type":"advance_time","at":"yesterday"}"#, "RFC 3339"),
            (r#"{"type":"deposit","portfolio":1,"amount":1,"amount":2}"#, "duplicate field"),
            (
                r#"{"type":"order","portfolio":1,"symbol":"AAPL","side":"buy","price":1,"qty":1,"client_order_id":"this-is-far-too-long"}"#,
                "1 to 16 printable",
            ),
        ] {
            let error = parse(line).unwrap_err();
            assert!(error.contains(needle), "{line}: {error}");
        }
        assert_eq!(parse_line(1, "   "), Ok(None));
        assert_eq!(parse_line(1, "# a comment"), Ok(None));
    }

    #[test]
    fn defaults_are_those_documented() {
        let order = new_order(order_input(&format!(r#"{AAPL_BUY},"price":150,"qty":1}}"#)));
        assert_eq!(order.kind, OrderKind::Limit);
        assert_eq!(order.time_in_force, TimeInForce::Gtc);
        assert_eq!(order.self_trade_policy, SelfTradePolicy::Default);
        let order = new_order(order_input(&format!(r#"{AAPL_BUY},"kind":"market","qty":1}}"#)));
        assert_eq!((order.time_in_force, order.price_ticks), (TimeInForce::Ioc, 0));
    }

    #[test]
    fn normalize_keeps_the_value() {
        for (text, normal) in [
            ("150.2500", "150.25"),
            ("000150", "150"),
            ("+1.0", "1"),
            ("-0.10", "-0.1"),
            ("0.0", "0"),
            ("1.", "1."),
            ("abc", "abc"),
        ] {
            assert_eq!(normalize(text), normal);
        }
    }
}
