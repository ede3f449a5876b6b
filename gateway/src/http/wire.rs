//! The JSON the API speaks: request bodies, their conversion to engine commands, and responses.
//! Field names follow the simtrade-style API (`ticker`, `shares`, `limit_price`, ...).

use super::error::ApiError;
use super::numbers::{self, Num, RawNumber};
use crate::history::{OrderRecord, TradeRecord};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use simex_engine::{
    ClientOrderId, InstrumentTable, NewOrder, OrderKind, PortfolioId, SelfTradePolicy, Side, TimeInForce,
};

/// `POST /api/portfolios/{id}/trades`, and each element of a batch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradeRequest {
    pub ticker: String,
    pub side: String,
    pub shares: RawNumber,
    /// `market` (default without `limit_price`) or `limit` (default with it).
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
    #[serde(default)]
    pub stop_price: Option<RawNumber>,
    #[serde(default)]
    pub trail_amount: Option<RawNumber>,
    #[serde(default)]
    pub trail_percent: Option<RawNumber>,
    #[serde(default)]
    pub take_profit: Option<Box<RawValue>>,
    #[serde(default)]
    pub stop_loss: Option<Box<RawValue>>,
    #[serde(default)]
    pub oco: Option<Box<RawValue>>,
}

/// Order types the schema knows but the venue does not trade yet.
const CONDITIONAL_TYPES: [&str; 5] = ["stop", "stop_limit", "trailing_stop", "bracket", "oco"];

impl TradeRequest {
    /// The one place conditional and bracket orders are refused until the engine trades them.
    fn refuse_conditional(&self) -> Result<(), ApiError> {
        let field = [
            ("stop_price", self.stop_price.is_some()),
            ("trail_amount", self.trail_amount.is_some()),
            ("trail_percent", self.trail_percent.is_some()),
            ("take_profit", self.take_profit.is_some()),
            ("stop_loss", self.stop_loss.is_some()),
            ("oco", self.oco.is_some()),
        ]
        .into_iter()
        .find(|(_, present)| *present)
        .map(|(name, _)| name.to_string())
        .or_else(|| {
            self.order_type.as_deref().map(str::to_ascii_lowercase).filter(|t| CONDITIONAL_TYPES.contains(&t.as_str()))
        });
        match field {
            Some(field) => Err(ApiError::invalid(
                "unsupported_order_type",
                format!("{field}: conditional and bracket orders are not supported yet"),
            )),
            None => Ok(()),
        }
    }

    /// The engine order this request asks for, on `portfolio_id`.
    pub fn to_new_order(&self, portfolio_id: PortfolioId, instruments: &InstrumentTable) -> Result<NewOrder, ApiError> {
        self.refuse_conditional()?;
        let instrument = instruments
            .by_symbol(&self.ticker)
            .ok_or_else(|| ApiError::invalid("unknown_symbol", format!("unknown ticker {:?}", self.ticker)))?;
        let side = parse_side(&self.side)?;
        let qty_lots = numbers::qty_lots(&self.shares, "shares", instrument)?;
        let kind = match self.order_type.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None if self.limit_price.is_some() => OrderKind::Limit,
            None | Some("market") => OrderKind::Market,
            Some("limit") => OrderKind::Limit,
            Some(other) => {
                return Err(ApiError::invalid("invalid_order_type", format!("unknown order type {other:?}")))
            }
        };
        let price_ticks = match (kind, &self.limit_price) {
            (OrderKind::Limit, Some(raw)) => numbers::price_ticks(raw, "limit_price", instrument)?,
            (OrderKind::Limit, None) => {
                return Err(ApiError::invalid("missing_limit_price", "a limit order needs limit_price"))
            }
            (OrderKind::Market, Some(_)) => {
                return Err(ApiError::invalid("invalid_field", "a market order takes no limit_price"))
            }
            (OrderKind::Market, None) => 0,
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
            // Conditional fields are refused in `refuse_conditional` for now.
            ..NewOrder::limit(portfolio_id, instrument.symbol_id, side, 0, 0)
        })
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
}

impl OrderJson {
    pub fn new(order: &OrderRecord, instruments: &InstrumentTable) -> OrderJson {
        let instrument = instruments.get(order.symbol_id);
        let lots = |lots: i64| instrument.map_or(Num(lots.to_string()), |i| Num::steps(i.lot, lots));
        OrderJson {
            order_id: order.order_id,
            ticker: instrument.map(|i| i.symbol.clone()).unwrap_or_default(),
            side: side_text(order.side),
            order_type: match order.kind {
                OrderKind::Limit => "limit",
                OrderKind::Market => "market",
            },
            status: order.state.as_str(),
            shares: lots(order.qty_lots),
            filled_shares: lots(order.filled_lots),
            remaining_shares: lots(order.open_lots),
            limit_price: (order.kind == OrderKind::Limit).then(|| {
                instrument.map_or(Num(order.price_ticks.to_string()), |i| Num::steps(i.tick, order.price_ticks))
            }),
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> Result<NewOrder, ApiError> {
        let request: TradeRequest =
            serde_json::from_str(json).map_err(|e| ApiError::invalid("invalid_field", e.to_string()))?;
        request.to_new_order(1, &InstrumentTable::default_table())
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
        assert_eq!(code(r#"{"ticker":"AAPL","side":"buy","shares":1,"stop_price":140}"#), "unsupported_order_type");
        assert_eq!(code(r#"{"ticker":"AAPL","side":"buy","shares":1,"type":"bracket"}"#), "unsupported_order_type");
        assert_eq!(code(r#"{"ticker":"AAPL","side":"buy","shares":1,"colour":"red"}"#), "invalid_field");
        assert_eq!(code(r#"{"ticker":"AAPL","side":"buy","shares":1,"type":"limit"}"#), "missing_limit_price");
        assert_eq!(
            code(r#"{"ticker":"AAPL","side":"buy","shares":1,"time_in_force":"forever"}"#),
            "invalid_time_in_force"
        );
    }
}
