//! The JSON the API speaks: request bodies, their conversion to engine commands, and responses.
//! Field names follow the simtrade-style API (`ticker`, `shares`, `limit_price`, ...).

use super::error::ApiError;
use super::numbers::{self, Num, RawNumber};
use crate::history::{OrderRecord, OrderState, TradeRecord};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use simex_engine::decimal::Step;
use simex_engine::{
    ClientOrderId, CommandBody, InstrumentTable, NewOrder, OrderId, OrderKind, PortfolioId, SelfTradePolicy, Side,
    TimeInForce, TriggerKind, BASIS_POINTS_PER_UNIT,
};

/// `POST /api/portfolios/{id}/trades`, and each element of a batch.
///
/// `type` is `market`, `limit`, `stop`, `stop_limit`, `take_profit`, `take_profit_limit` or
/// `trailing_stop`; without it, the fields sent decide (`trail_*`: trailing stop, `stop_price`:
/// stop or stop-limit, `limit_price`: limit, else market). `take_profit` and/or `stop_loss` make
/// the order a bracket's entry; `oco` links a new conditional order with a waiting one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradeRequest {
    pub ticker: String,
    pub side: String,
    pub shares: RawNumber,
    #[serde(default, rename = "type")]
    pub order_type: Option<String>,
    #[serde(default)]
    pub limit_price: Option<RawNumber>,
    /// `gtc`, `day`, `gtd` (with `expire_at`), `ioc` or `fok`.
    #[serde(default)]
    pub time_in_force: Option<String>,
    /// RFC 3339 time a `gtd` order expires at.
    #[serde(default)]
    pub expire_at: Option<String>,
    #[serde(default)]
    pub client_order_id: Option<String>,
    #[serde(default)]
    pub post_only: Option<bool>,
    /// The trigger price of a stop, stop-limit, take-profit or take-profit-limit (alias
    /// `trigger_price`).
    #[serde(default, alias = "trigger_price")]
    pub stop_price: Option<RawNumber>,
    /// A trailing stop's distance in price units (a whole number of ticks).
    #[serde(default)]
    pub trail_amount: Option<RawNumber>,
    /// A trailing stop's distance in percent of the best price, in steps of 0.01 (one basis point).
    #[serde(default)]
    pub trail_percent: Option<RawNumber>,
    /// The bracket's take-profit: a price, or `{"limit_price": p}`.
    #[serde(default)]
    pub take_profit: Option<Box<RawValue>>,
    /// The bracket's stop-loss: a trigger price, or `{"stop_price": p, "limit_price": q}` (a
    /// stop-limit when `limit_price` is given).
    #[serde(default)]
    pub stop_loss: Option<Box<RawValue>>,
    /// The id of a waiting conditional order (same portfolio and symbol) to link with.
    #[serde(default)]
    pub oco: Option<Box<RawValue>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TakeProfitLeg {
    limit_price: RawNumber,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StopLossLeg {
    #[serde(alias = "trigger_price")]
    stop_price: RawNumber,
    #[serde(default)]
    limit_price: Option<RawNumber>,
}

/// What an order type becomes in the engine: the order it is (or becomes when it fires) and its
/// trigger.
fn order_type(name: &str) -> Option<(OrderKind, TriggerKind)> {
    Some(match name {
        "market" => (OrderKind::Market, TriggerKind::None),
        "limit" => (OrderKind::Limit, TriggerKind::None),
        "stop" => (OrderKind::Market, TriggerKind::Stop),
        "stop_limit" => (OrderKind::Limit, TriggerKind::Stop),
        "take_profit" => (OrderKind::Market, TriggerKind::TakeProfit),
        "take_profit_limit" => (OrderKind::Limit, TriggerKind::TakeProfit),
        "trailing_stop" => (OrderKind::Market, TriggerKind::TrailingStop),
        _ => return None,
    })
}

/// The API name of an order's type (the inverse of [`order_type`]).
pub fn order_type_name(kind: OrderKind, trigger: TriggerKind) -> &'static str {
    match (kind, trigger) {
        // A delayed order (the latency model) is a book order in flight.
        (OrderKind::Market, TriggerKind::None | TriggerKind::Delayed) => "market",
        (OrderKind::Limit, TriggerKind::None | TriggerKind::Delayed) => "limit",
        (OrderKind::Market, TriggerKind::Stop) => "stop",
        (OrderKind::Limit, TriggerKind::Stop) => "stop_limit",
        (OrderKind::Market, TriggerKind::TakeProfit) => "take_profit",
        (OrderKind::Limit, TriggerKind::TakeProfit) => "take_profit_limit",
        (_, TriggerKind::TrailingStop) => "trailing_stop",
    }
}

/// One basis point as a step of a percentage: `trail_percent` `1.25` is 125 bps.
const PERCENT_BPS_STEP: Step = Step { mantissa: 1, scale: 2 };

fn not_for(field: &str, type_name: &str) -> ApiError {
    ApiError::invalid("invalid_field", format!("a {type_name} order takes no {field}"))
}

impl TradeRequest {
    /// The engine command this request asks for, on `portfolio_id`: a `NewOrder`, or a
    /// `NewBracket` when it has a take-profit or stop-loss.
    pub fn to_command(
        &self,
        portfolio_id: PortfolioId,
        instruments: &InstrumentTable,
    ) -> Result<CommandBody, ApiError> {
        let entry = self.to_new_order(portfolio_id, instruments)?;
        if self.take_profit.is_none() && self.stop_loss.is_none() {
            return Ok(CommandBody::NewOrder(entry));
        }
        if self.oco.is_some() {
            return Err(ApiError::invalid("invalid_bracket", "a bracket's exits are linked already; it takes no oco"));
        }
        let instrument =
            instruments.get(entry.symbol_id).ok_or_else(|| ApiError::internal("order of no instrument"))?;
        let take_profit_price_ticks = match &self.take_profit {
            Some(raw) if raw.get().trim_start().starts_with('{') => {
                let leg: TakeProfitLeg = leg(raw, "take_profit")?;
                numbers::price_ticks(&leg.limit_price, "take_profit.limit_price", instrument)?
            }
            Some(raw) => numbers::price_ticks(raw, "take_profit", instrument)?,
            None => 0,
        };
        let (stop_loss_trigger_ticks, stop_loss_limit_ticks) = match &self.stop_loss {
            Some(raw) if raw.get().trim_start().starts_with('{') => {
                let leg: StopLossLeg = leg(raw, "stop_loss")?;
                let trigger = numbers::price_ticks(&leg.stop_price, "stop_loss.stop_price", instrument)?;
                let limit = match &leg.limit_price {
                    Some(raw) => numbers::price_ticks(raw, "stop_loss.limit_price", instrument)?,
                    None => 0,
                };
                (trigger, limit)
            }
            Some(raw) => (numbers::price_ticks(raw, "stop_loss", instrument)?, 0),
            None => (0, 0),
        };
        if take_profit_price_ticks < 0
            || stop_loss_trigger_ticks < 0
            || stop_loss_limit_ticks < 0
            || (self.take_profit.is_some() && take_profit_price_ticks == 0)
            || (self.stop_loss.is_some() && stop_loss_trigger_ticks == 0)
        {
            return Err(ApiError::invalid("price_not_positive", "a bracket's exit prices must be positive"));
        }
        Ok(CommandBody::NewBracket { entry, take_profit_price_ticks, stop_loss_trigger_ticks, stop_loss_limit_ticks })
    }

    /// The engine order this request asks for (a bracket's entry), on `portfolio_id`.
    pub fn to_new_order(&self, portfolio_id: PortfolioId, instruments: &InstrumentTable) -> Result<NewOrder, ApiError> {
        let instrument = instruments
            .by_symbol(&self.ticker)
            .ok_or_else(|| ApiError::invalid("unknown_symbol", format!("unknown ticker {:?}", self.ticker)))?;
        let side = parse_side(&self.side)?;
        let qty_lots = numbers::qty_lots(&self.shares, "shares", instrument)?;
        let type_name = match self.order_type.as_deref().map(str::to_ascii_lowercase) {
            Some(name) => name,
            None if self.trail_amount.is_some() || self.trail_percent.is_some() => "trailing_stop".into(),
            None if self.stop_price.is_some() && self.limit_price.is_some() => "stop_limit".into(),
            None if self.stop_price.is_some() => "stop".into(),
            None if self.limit_price.is_some() => "limit".into(),
            None => "market".into(),
        };
        let (kind, trigger) = order_type(&type_name)
            .ok_or_else(|| ApiError::invalid("invalid_order_type", format!("unknown order type {type_name:?}")))?;
        let price_ticks = match (kind, &self.limit_price) {
            (OrderKind::Limit, Some(raw)) => numbers::price_ticks(raw, "limit_price", instrument)?,
            (OrderKind::Limit, None) => {
                return Err(ApiError::invalid("missing_limit_price", format!("a {type_name} order needs limit_price")))
            }
            (OrderKind::Market, Some(_)) => return Err(not_for("limit_price", &type_name)),
            (OrderKind::Market, None) => 0,
        };
        let trigger_price_ticks = match (trigger, &self.stop_price) {
            (TriggerKind::Stop | TriggerKind::TakeProfit, Some(raw)) => {
                numbers::price_ticks(raw, "stop_price", instrument)?
            }
            (TriggerKind::Stop | TriggerKind::TakeProfit, None) => {
                return Err(ApiError::invalid("missing_stop_price", format!("a {type_name} order needs stop_price")))
            }
            (_, Some(_)) => return Err(not_for("stop_price", &type_name)),
            (_, None) => 0,
        };
        let (trail_ticks, trail_bps) = match (trigger, &self.trail_amount, &self.trail_percent) {
            (TriggerKind::TrailingStop, Some(raw), None) => {
                let ticks = numbers::price_ticks(raw, "trail_amount", instrument)?;
                if ticks <= 0 {
                    return Err(ApiError::invalid("invalid_trail", "trail_amount must be positive"));
                }
                (ticks, 0)
            }
            (TriggerKind::TrailingStop, None, Some(raw)) => {
                let bps = numbers::to_steps(raw, "trail_percent", PERCENT_BPS_STEP).map_err(|e| {
                    if e.code == "price_not_on_tick" {
                        ApiError::invalid("invalid_trail", "trail_percent has more than two decimals")
                    } else {
                        e
                    }
                })?;
                if !(1..BASIS_POINTS_PER_UNIT).contains(&bps) {
                    return Err(ApiError::invalid("invalid_trail", "trail_percent must be above 0 and below 100"));
                }
                (0, bps)
            }
            (TriggerKind::TrailingStop, Some(_), Some(_)) => {
                return Err(ApiError::invalid("invalid_trail", "send trail_amount or trail_percent, not both"))
            }
            (TriggerKind::TrailingStop, None, None) => {
                return Err(ApiError::invalid(
                    "missing_trail",
                    "a trailing_stop order needs trail_amount or trail_percent",
                ))
            }
            (_, Some(_), _) => return Err(not_for("trail_amount", &type_name)),
            (_, _, Some(_)) => return Err(not_for("trail_percent", &type_name)),
            (_, None, None) => (0, 0),
        };
        let oco_order_id = match &self.oco {
            Some(_) if trigger == TriggerKind::None => {
                return Err(ApiError::invalid("invalid_oco", "oco links conditional orders; this order has no trigger"))
            }
            Some(raw) => parse_order_id(raw)?,
            None => 0,
        };
        let time_in_force = match self.time_in_force.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None if kind == OrderKind::Market => TimeInForce::Ioc,
            None => TimeInForce::Gtc,
            Some("gtc") => TimeInForce::Gtc,
            Some("day") => TimeInForce::Day,
            Some("gtd") => TimeInForce::Gtd,
            Some("ioc") => TimeInForce::Ioc,
            Some("fok") => TimeInForce::Fok,
            Some(other) => {
                return Err(ApiError::invalid("invalid_time_in_force", format!("unknown time in force {other:?}")))
            }
        };
        let expire_at_ns = match &self.expire_at {
            Some(text) => parse_time_ns(text, "expire_at")?,
            None => 0,
        };
        let client_order_id = match &self.client_order_id {
            Some(text) => ClientOrderId::from_text(text).ok_or_else(|| {
                ApiError::invalid(
                    "invalid_client_order_id",
                    "client_order_id must be 1 to 16 printable ASCII characters",
                )
            })?,
            None => ClientOrderId::NONE,
        };
        Ok(NewOrder {
            portfolio_id,
            symbol_id: instrument.symbol_id,
            side,
            kind,
            price_ticks,
            qty_lots,
            time_in_force,
            expire_at_ns,
            client_order_id,
            post_only: self.post_only.unwrap_or(false),
            self_trade_policy: SelfTradePolicy::Default,
            trigger,
            trigger_price_ticks,
            trail_ticks,
            trail_bps,
            oco_order_id,
        })
    }
}

/// A bracket leg given as an object.
fn leg<T: serde::de::DeserializeOwned>(raw: &RawValue, field: &str) -> Result<T, ApiError> {
    serde_json::from_str(raw.get()).map_err(|e| ApiError::invalid("invalid_field", format!("{field}: {e}")))
}

/// An order id given as a JSON number or a string of digits.
fn parse_order_id(raw: &RawValue) -> Result<OrderId, ApiError> {
    let text = raw.get().trim();
    let digits = serde_json::from_str::<String>(text).unwrap_or_else(|_| text.to_string());
    match digits.parse::<OrderId>() {
        Ok(id) if id > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(id),
        _ => Err(ApiError::invalid("invalid_oco", "oco must be the id of a waiting conditional order")),
    }
}

pub fn parse_side(text: &str) -> Result<Side, ApiError> {
    match text.to_ascii_lowercase().as_str() {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        _ => Err(ApiError::invalid("invalid_side", format!("side must be buy or sell, not {text:?}"))),
    }
}

pub fn parse_time_ns(text: &str, field: &str) -> Result<i64, ApiError> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ApiError::invalid("invalid_time", format!("{field} must be an RFC 3339 time")))?;
    i64::try_from(at.unix_timestamp_nanos())
        .map_err(|_| ApiError::invalid("invalid_time", format!("{field} is out of range")))
}

/// RFC 3339 text of a venue timestamp.
pub fn format_time(timestamp_ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(timestamp_ns))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

pub fn side_text(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

#[derive(Debug, Serialize)]
pub struct FillJson {
    pub trade_id: u64,
    pub order_id: u64,
    pub ticker: String,
    pub side: &'static str,
    pub shares: Num,
    pub price: Num,
    pub fee: Num,
    pub executed_at: String,
}

impl FillJson {
    pub fn new(trade: &TradeRecord, instruments: &InstrumentTable) -> FillJson {
        let instrument = instruments.get(trade.symbol_id);
        FillJson {
            trade_id: trade.trade_id,
            order_id: trade.order_id,
            ticker: instrument.map(|i| i.symbol.clone()).unwrap_or_default(),
            side: side_text(trade.side),
            shares: instrument.map_or(Num(trade.qty_lots.to_string()), |i| Num::steps(i.lot, trade.qty_lots)),
            price: instrument.map_or(Num(trade.price_ticks.to_string()), |i| Num::steps(i.tick, trade.price_ticks)),
            fee: Num::money(trade.fee_micros),
            executed_at: format_time(trade.timestamp_ns),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct OrderJson {
    pub order_id: u64,
    pub ticker: String,
    pub side: &'static str,
    #[serde(rename = "type")]
    pub order_type: &'static str,
    pub status: &'static str,
    pub shares: Num,
    pub filled_shares: Num,
    pub remaining_shares: Num,
    pub limit_price: Option<Num>,
    pub time_in_force: &'static str,
    pub client_order_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Why an order that ended unfilled was cancelled (`user`, `linked`, `parent_closed`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<&'static str>,
    /// The trigger of a stop or take-profit; a trailing stop's current stop (it moves with the
    /// best price until the order fires).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<Num>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trail_amount: Option<Num>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trail_percent: Option<Num>,
    /// The best price a trailing stop has seen since it was accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trail_best_price: Option<Num>,
    /// The bracket entry this order is an exit of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_order_id: Option<u64>,
    /// The order this one is one-cancels-other linked with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oco_order_id: Option<u64>,
    /// When a conditional order fired, and the trade price that fired it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggered_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_trade_price: Option<Num>,
}

impl OrderJson {
    pub fn new(order: &OrderRecord, instruments: &InstrumentTable) -> OrderJson {
        let instrument = instruments.get(order.symbol_id);
        let lots = |lots: i64| instrument.map_or(Num(lots.to_string()), |i| Num::steps(i.lot, lots));
        let ticks = |ticks: i64| instrument.map_or(Num(ticks.to_string()), |i| Num::steps(i.tick, ticks));
        let conditional = !matches!(order.trigger, TriggerKind::None | TriggerKind::Delayed);
        let trailing = order.trigger == TriggerKind::TrailingStop;
        let in_flight = order.trigger == TriggerKind::Delayed && order.state == OrderState::WaitingTrigger;
        OrderJson {
            order_id: order.order_id,
            ticker: instrument.map(|i| i.symbol.clone()).unwrap_or_default(),
            side: side_text(order.side),
            order_type: order_type_name(order.kind, order.trigger),
            status: if in_flight { "pending" } else { order.state.as_str() },
            shares: lots(order.qty_lots),
            filled_shares: lots(order.filled_lots),
            remaining_shares: lots(order.open_lots),
            limit_price: (order.kind == OrderKind::Limit).then(|| ticks(order.price_ticks)),
            time_in_force: match order.time_in_force {
                TimeInForce::Gtc => "gtc",
                TimeInForce::Day => "day",
                TimeInForce::Gtd => "gtd",
                TimeInForce::Ioc => "ioc",
                TimeInForce::Fok => "fok",
            },
            client_order_id: (!order.client_order_id.is_none()).then(|| order.client_order_id.as_text().to_string()),
            created_at: format_time(order.created_ns),
            updated_at: format_time(order.updated_ns),
            cancel_reason: order.cancel_reason.map(crate::projection::batch::cancel_reason_name),
            stop_price: conditional.then(|| ticks(order.trigger_price_ticks)),
            trail_amount: (order.trail_ticks > 0).then(|| ticks(order.trail_ticks)),
            trail_percent: (order.trail_bps > 0).then(|| Num::scaled(i128::from(order.trail_bps), 2, 0)),
            trail_best_price: trailing.then(|| ticks(order.trail_best_ticks)),
            parent_order_id: (order.parent_order_id != 0).then_some(order.parent_order_id),
            oco_order_id: (order.oco_order_id != 0).then_some(order.oco_order_id),
            triggered_at: order.triggered.map(|(at_ns, _)| format_time(at_ns)),
            trigger_trade_price: order.triggered.map(|(_, price_ticks)| ticks(price_ticks)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> Result<NewOrder, ApiError> {
        match command(json)? {
            CommandBody::NewOrder(order) => Ok(order),
            CommandBody::NewBracket { entry, .. } => Ok(entry),
            other => panic!("{other:?}"),
        }
    }

    fn command(json: &str) -> Result<CommandBody, ApiError> {
        let request: TradeRequest =
            serde_json::from_str(json).map_err(|e| ApiError::invalid("invalid_field", e.to_string()))?;
        request.to_command(1, &InstrumentTable::default_table())
    }

    #[test]
    fn conditional_requests_convert_exactly() {
        let order =
            request(r#"{"ticker":"AAPL","side":"sell","shares":5,"type":"stop","stop_price":"149.50"}"#).unwrap();
        assert_eq!(
            (order.kind, order.trigger, order.trigger_price_ticks, order.time_in_force),
            (OrderKind::Market, TriggerKind::Stop, 14950, TimeInForce::Ioc)
        );
        // The type follows from the fields; trigger_price is stop_price.
        let order =
            request(r#"{"ticker":"AAPL","side":"sell","shares":5,"trigger_price":149.5,"limit_price":149}"#).unwrap();
        assert_eq!(
            (order.kind, order.trigger, order.trigger_price_ticks, order.price_ticks, order.time_in_force),
            (OrderKind::Limit, TriggerKind::Stop, 14950, 14900, TimeInForce::Gtc)
        );
        let order =
            request(r#"{"ticker":"AAPL","side":"buy","shares":1,"type":"take_profit_limit","stop_price":140,"limit_price":140.1}"#)
                .unwrap();
        assert_eq!((order.kind, order.trigger, order.price_ticks), (OrderKind::Limit, TriggerKind::TakeProfit, 14010));
        let order = request(r#"{"ticker":"AAPL","side":"sell","shares":1,"trail_amount":"1.25"}"#).unwrap();
        assert_eq!((order.trigger, order.trail_ticks, order.trail_bps), (TriggerKind::TrailingStop, 125, 0));
        let order = request(r#"{"ticker":"AAPL","side":"sell","shares":1,"trail_percent":"2.5"}"#).unwrap();
        assert_eq!((order.trail_ticks, order.trail_bps), (0, 250));
        let order = request(r#"{"ticker":"AAPL","side":"sell","shares":1,"stop_price":140,"oco":"7"}"#).unwrap();
        assert_eq!(order.oco_order_id, 7);
        let bracket = command(
            r#"{"ticker":"AAPL","side":"buy","shares":1,"limit_price":150,"take_profit":{"limit_price":"160"},"stop_loss":{"stop_price":140,"limit_price":139.5}}"#,
        )
        .unwrap();
        assert!(matches!(
            bracket,
            CommandBody::NewBracket {
                take_profit_price_ticks: 16000,
                stop_loss_trigger_ticks: 14000,
                stop_loss_limit_ticks: 13950,
                ..
            }
        ));
        let bracket = command(r#"{"ticker":"AAPL","side":"buy","shares":1,"stop_loss":"140"}"#).unwrap();
        assert!(matches!(
            bracket,
            CommandBody::NewBracket { take_profit_price_ticks: 0, stop_loss_trigger_ticks: 14000, .. }
        ));
    }

    #[test]
    fn bad_conditional_requests_get_their_codes() {
        let code = |json: &str| command(json).unwrap_err().code;
        let order = |fields: &str| format!(r#"{{"ticker":"AAPL","side":"sell","shares":1,{fields}}}"#);
        assert_eq!(code(&order(r#""type":"stop""#)), "missing_stop_price");
        assert_eq!(code(&order(r#""type":"stop_limit","stop_price":140"#)), "missing_limit_price");
        assert_eq!(code(&order(r#""type":"stop","stop_price":140,"limit_price":139"#)), "invalid_field");
        assert_eq!(code(&order(r#""type":"limit","limit_price":140,"stop_price":139"#)), "invalid_field");
        assert_eq!(code(&order(r#""stop_price":"140.001""#)), "price_not_on_tick");
        assert_eq!(code(&order(r#""trail_amount":1,"trail_percent":1"#)), "invalid_trail");
        assert_eq!(code(&order(r#""type":"trailing_stop""#)), "missing_trail");
        assert_eq!(code(&order(r#""trail_percent":0"#)), "invalid_trail");
        assert_eq!(code(&order(r#""trail_percent":100"#)), "invalid_trail");
        assert_eq!(code(&order(r#""trail_percent":"0.001""#)), "invalid_trail");
        assert_eq!(code(&order(r#""trail_amount":"0.005""#)), "price_not_on_tick");
        assert_eq!(code(&order(r#""trail_amount":0"#)), "invalid_trail");
        assert_eq!(code(&order(r#""type":"stop","stop_price":140,"trail_amount":1"#)), "invalid_field");
        assert_eq!(code(&order(r#""oco":5"#)), "invalid_oco");
        assert_eq!(code(&order(r#""stop_price":140,"oco":"x""#)), "invalid_oco");
        assert_eq!(code(&order(r#""stop_loss":{"limit_price":1}"#)), "invalid_field");
        assert_eq!(code(&order(r#""take_profit":0"#)), "price_not_positive");
        assert_eq!(code(&order(r#""take_profit":130,"stop_price":140,"oco":3"#)), "invalid_bracket");
    }

    #[test]
    fn trade_requests_convert_exactly() {
        let order = request(r#"{"ticker":"AAPL","side":"buy","shares":"10","limit_price":150.25}"#).unwrap();
        assert_eq!(
            (order.kind, order.price_ticks, order.qty_lots, order.time_in_force),
            (OrderKind::Limit, 15025, 10, TimeInForce::Gtc)
        );
        let order = request(r#"{"ticker":"AAPL","side":"SELL","shares":3}"#).unwrap();
        assert_eq!((order.kind, order.side, order.time_in_force), (OrderKind::Market, Side::Sell, TimeInForce::Ioc));
    }

    #[test]
    fn bad_requests_get_their_codes() {
        let code = |json: &str| request(json).unwrap_err().code;
        assert_eq!(code(r#"{"ticker":"NOPE","side":"buy","shares":1}"#), "unknown_symbol");
        assert_eq!(code(r#"{"ticker":"AAPL","side":"hold","shares":1}"#), "invalid_side");
        assert_eq!(code(r#"{"ticker":"AAPL","side":"buy","shares":1,"limit_price":"150.255"}"#), "price_not_on_tick");
        assert_eq!(code(r#"{"ticker":"AAPL","side":"buy","shares":1,"type":"bracket"}"#), "invalid_order_type");
        assert_eq!(code(r#"{"ticker":"AAPL","side":"buy","shares":1,"colour":"red"}"#), "invalid_field");
        assert_eq!(code(r#"{"ticker":"AAPL","side":"buy","shares":1,"type":"limit"}"#), "missing_limit_price");
        assert_eq!(
            code(r#"{"ticker":"AAPL","side":"buy","shares":1,"time_in_force":"forever"}"#),
            "invalid_time_in_force"
        );
    }
}
