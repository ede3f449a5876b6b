//! Engine events as JSON lines a person can read and a program can diff.
//!
//! The engine speaks integers: `price_ticks`, `qty_lots`, `*_micros`, symbol ids. An operator reading
//! an incident wants `"AAPL"`, `"150.25"` and `"1502.500000"`. Every event line therefore carries
//! both: the decimal text, written exactly with the instrument's tick and lot ([`Step::format`]) or
//! with six decimals for money ([`format_micros`]), and next to it the raw integer the engine used,
//! so that nothing is lost and a value can be searched for in an engine journal.
//!
//! Field order is fixed (an [`Obj`] keeps keys in the order they are put), so golden files stay
//! stable and diffs show real changes only. serde_json's map type sorts keys, and its
//! `preserve_order` feature would change map behaviour for every crate in the workspace, hence
//! the small ordered object here.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;
use simex_engine::decimal::{format_micros, Step};
use simex_engine::{
    CancelReason, ClientOrderId, Event, EventBody, Instrument, InstrumentTable, PortfolioId, RejectReason, RiskLimits,
    SymbolId, NO_PORTFOLIO,
};

use super::time::format_rfc3339;

/// A JSON object that keeps its keys in insertion order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Obj(Vec<(&'static str, Node)>);

/// A JSON value whose objects keep their key order.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Value(Value),
    Obj(Obj),
    List(Vec<Node>),
}

impl Obj {
    pub fn new() -> Obj {
        Obj::default()
    }

    /// Adds `key` (builder style).
    pub fn put(mut self, key: &'static str, value: impl Into<Node>) -> Obj {
        self.push(key, value);
        self
    }

    pub fn push(&mut self, key: &'static str, value: impl Into<Node>) {
        self.0.push((key, value.into()));
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The keys and values in the order they were put.
    pub fn entries(&self) -> &[(&'static str, Node)] {
        &self.0
    }

    /// Compact one-line JSON.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("an Obj always serializes")
    }

    /// Indented JSON.
    pub fn to_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("an Obj always serializes")
    }
}

impl Serialize for Obj {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Value(value) => value.serialize(serializer),
            Node::Obj(obj) => obj.serialize(serializer),
            Node::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

impl From<Obj> for Node {
    fn from(obj: Obj) -> Node {
        Node::Obj(obj)
    }
}

impl From<Vec<Node>> for Node {
    fn from(items: Vec<Node>) -> Node {
        Node::List(items)
    }
}

impl From<Vec<Obj>> for Node {
    fn from(items: Vec<Obj>) -> Node {
        Node::List(items.into_iter().map(Node::Obj).collect())
    }
}

impl<T: Into<Node>> From<Option<T>> for Node {
    fn from(value: Option<T>) -> Node {
        value.map_or(Node::Value(Value::Null), Into::into)
    }
}

macro_rules! scalar_nodes {
    ($($t:ty),*) => {$(
        impl From<$t> for Node {
            fn from(value: $t) -> Node {
                Node::Value(Value::from(value))
            }
        }
    )*};
}
scalar_nodes!(i64, u64, u32, u16, bool, String, &str);

/// The snake_case name serde gives an engine enum value (`Side::Buy` is `"buy"`).
pub fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        other => format!("{other:?}"),
    }
}

/// A portfolio id, or null for the engine's "no portfolio" (rejections of commands naming none).
pub fn portfolio(portfolio_id: PortfolioId) -> Node {
    if portfolio_id == NO_PORTFOLIO {
        Node::Value(Value::Null)
    } else {
        portfolio_id.into()
    }
}

/// A client order id as text, or null for none.
pub fn client_order_id(id: ClientOrderId) -> Node {
    (!id.is_none()).then(|| id.as_text().to_string()).into()
}

/// Formats prices and quantities of one instrument, or raw integers for an unknown symbol id.
#[derive(Clone, Copy)]
pub struct Units<'a> {
    instrument: Option<&'a Instrument>,
}

impl<'a> Units<'a> {
    pub fn of(instruments: &'a InstrumentTable, symbol_id: SymbolId) -> Units<'a> {
        Units { instrument: instruments.get(symbol_id) }
    }

    pub fn of_instrument(instrument: &'a Instrument) -> Units<'a> {
        Units { instrument: Some(instrument) }
    }

    fn format(step: Option<Step>, steps: i64) -> String {
        match step {
            Some(step) => step.format(steps).to_string(),
            None => steps.to_string(),
        }
    }

    pub fn price(&self, ticks: i64) -> String {
        Units::format(self.instrument.map(|i| i.tick), ticks)
    }

    pub fn qty(&self, lots: i64) -> String {
        Units::format(self.instrument.map(|i| i.lot), lots)
    }
}

/// The symbol name of `symbol_id` (`#<id>` for one the table does not have).
pub fn symbol(instruments: &InstrumentTable, symbol_id: SymbolId) -> String {
    instruments.get(symbol_id).map_or_else(|| format!("#{symbol_id}"), |i| i.symbol.clone())
}

impl Obj {
    /// `key` as decimal text and `raw_key` as ticks.
    pub fn price(self, units: Units, key: &'static str, raw_key: &'static str, ticks: i64) -> Obj {
        self.put(key, units.price(ticks)).put(raw_key, ticks)
    }

    /// `key` as decimal text and `raw_key` as lots.
    pub fn qty(self, units: Units, key: &'static str, raw_key: &'static str, lots: i64) -> Obj {
        self.put(key, units.qty(lots)).put(raw_key, lots)
    }

    /// `key` as decimal text with six places and `raw_key` as micros.
    pub fn money(self, key: &'static str, raw_key: &'static str, micros: i64) -> Obj {
        self.put(key, format_micros(micros)).put(raw_key, micros)
    }

    /// A timestamp as RFC 3339 under `key` and as nanoseconds under `raw_key`; both null for
    /// `i64::MAX`, the engine's "never".
    pub fn time(self, key: &'static str, raw_key: &'static str, ns: i64) -> Obj {
        if ns == i64::MAX {
            self.put(key, Node::Value(Value::Null)).put(raw_key, Node::Value(Value::Null))
        } else {
            self.put(key, format_rfc3339(ns)).put(raw_key, ns)
        }
    }
}

/// Risk limits with decimal money; `daily_loss_max` is null when unlimited (`i64::MAX`).
pub fn limits(limits: &RiskLimits) -> Obj {
    let obj = Obj::new()
        .money("order_notional_max", "order_notional_max_micros", limits.order_notional_max_micros)
        .money("gross_exposure_max", "gross_exposure_max_micros", limits.gross_exposure_max_micros)
        .put("open_orders_max", limits.open_orders_max);
    if limits.daily_loss_max_micros == i64::MAX {
        obj.put("daily_loss_max", Node::Value(Value::Null)).put("daily_loss_max_micros", Node::Value(Value::Null))
    } else {
        obj.money("daily_loss_max", "daily_loss_max_micros", limits.daily_loss_max_micros)
    }
}

/// The `type` of an event line: the engine's own (serde) name of the event.
pub fn event_type(body: &EventBody) -> &'static str {
    match body {
        EventBody::PortfolioCreated { .. } => "portfolio_created",
        EventBody::CashAdjusted { .. } => "cash_adjusted",
        EventBody::RiskLimitsSet { .. } => "risk_limits_set",
        EventBody::OrderAccepted(_) => "order_accepted",
        EventBody::ConditionalAccepted(_) => "conditional_accepted",
        EventBody::OrderTriggered { .. } => "order_triggered",
        EventBody::Rejected { .. } => "rejected",
        EventBody::Fill(_) => "fill",
        EventBody::OrderCancelled { .. } => "order_cancelled",
        EventBody::OrderReplaced { .. } => "order_replaced",
        EventBody::ReferencePriceSet { .. } => "reference_price_set",
        EventBody::HaltedSet { .. } => "halted_set",
        EventBody::ReferenceQuoteSet { .. } => "reference_quote_set",
        EventBody::ReferenceTradePrinted { .. } => "reference_trade_printed",
    }
}

/// One event as an output line. `line` is the script line that caused it.
pub fn event(instruments: &InstrumentTable, line: usize, event: &Event) -> Obj {
    let head = Obj::new()
        .put("seq", event.seq)
        .time("at", "at_ns", event.timestamp_ns)
        .put("line", line as u64)
        .put("type", event_type(&event.body));
    event_fields(instruments, head, &event.body)
}

/// The fields of an event body, appended to `head` (which names the event: sequence, time, type and
/// whatever else the caller wants first). Shared by the scenario runner and the journal tool, so an
/// event reads the same wherever it is printed.
pub fn event_fields(instruments: &InstrumentTable, head: Obj, body: &EventBody) -> Obj {
    let symbol = |symbol_id| symbol(instruments, symbol_id);
    let units = |symbol_id| Units::of(instruments, symbol_id);
    match *body {
        EventBody::PortfolioCreated { portfolio_id, cash_micros } => {
            head.put("portfolio", portfolio(portfolio_id)).money("cash", "cash_micros", cash_micros)
        }
        EventBody::CashAdjusted { portfolio_id, delta_micros } => {
            head.put("portfolio", portfolio(portfolio_id)).money("delta", "delta_micros", delta_micros)
        }
        EventBody::RiskLimitsSet { portfolio_id, limits: set } => {
            head.put("portfolio", portfolio(portfolio_id)).put("limits", limits(&set))
        }
        EventBody::OrderAccepted(a) => head
            .put("order_id", a.order_id)
            .put("portfolio", portfolio(a.portfolio_id))
            .put("symbol", symbol(a.symbol_id))
            .put("side", name_of(&a.side))
            .put("kind", name_of(&a.kind))
            .price(units(a.symbol_id), "price", "price_ticks", a.price_ticks)
            .qty(units(a.symbol_id), "qty", "qty_lots", a.qty_lots)
            .put("tif", name_of(&a.time_in_force))
            .time("expire_at", "expire_at_ns", a.expire_at_ns)
            .put("client_order_id", client_order_id(a.client_order_id))
            .put("post_only", a.post_only)
            .put("stp", name_of(&a.self_trade_policy))
            .money("reserved_cash", "reserved_cash_micros", a.reserved_cash_micros)
            .qty(units(a.symbol_id), "reserved_qty", "reserved_lots", a.reserved_lots),
        EventBody::ConditionalAccepted(c) => {
            let obj = head
                .put("order_id", c.order_id)
                .put("portfolio", portfolio(c.portfolio_id))
                .put("symbol", symbol(c.symbol_id))
                .put("side", name_of(&c.side))
                .put("kind", name_of(&c.kind))
                .price(units(c.symbol_id), "price", "price_ticks", c.price_ticks)
                .qty(units(c.symbol_id), "qty", "qty_lots", c.qty_lots)
                .put("tif", name_of(&c.time_in_force))
                .time("expire_at", "expire_at_ns", c.expire_at_ns)
                .put("client_order_id", client_order_id(c.client_order_id))
                .put("stp", name_of(&c.self_trade_policy))
                .put("trigger", name_of(&c.trigger))
                .price(units(c.symbol_id), "trigger_price", "trigger_price_ticks", c.trigger_price_ticks);
            let obj = if c.trail_bps > 0 {
                obj.put("trail_bps", c.trail_bps as u64)
            } else {
                obj.price(units(c.symbol_id), "trail", "trail_ticks", c.trail_ticks)
            };
            let obj = obj
                .put("parent_order_id", (c.parent_order_id != 0).then_some(c.parent_order_id))
                .put("oco_order_id", (c.oco_order_id != 0).then_some(c.oco_order_id));
            if c.trigger == simex_engine::TriggerKind::Delayed {
                obj.time("execute_at", "execute_at_ns", c.execute_at_ns).put("post_only", c.post_only)
            } else {
                obj
            }
        }
        EventBody::OrderTriggered { order_id, portfolio_id, symbol_id, price_ticks, qty_lots } => head
            .put("order_id", order_id)
            .put("portfolio", portfolio(portfolio_id))
            .put("symbol", symbol(symbol_id))
            .price(units(symbol_id), "price", "price_ticks", price_ticks)
            .qty(units(symbol_id), "qty", "qty_lots", qty_lots),
        EventBody::Rejected { portfolio_id, order_id, client_order_id: coid, reason } => head
            .put("portfolio", portfolio(portfolio_id))
            .put("order_id", (order_id != 0).then_some(order_id))
            .put("client_order_id", client_order_id(coid))
            .put("reason", reject_reason(reason)),
        EventBody::Fill(f) => head
            .put("trade_id", f.trade_id)
            .put("symbol", symbol(f.symbol_id))
            .price(units(f.symbol_id), "price", "price_ticks", f.price_ticks)
            .qty(units(f.symbol_id), "qty", "qty_lots", f.qty_lots)
            .money("notional", "notional_micros", f.notional_micros)
            .put("taker_side", name_of(&f.taker_side))
            .put("maker_order_id", f.maker_order_id)
            .put("maker_portfolio", portfolio(f.maker_portfolio_id))
            .money("maker_fee", "maker_fee_micros", f.maker_fee_micros)
            .put("taker_order_id", f.taker_order_id)
            .put("taker_portfolio", portfolio(f.taker_portfolio_id))
            .money("taker_fee", "taker_fee_micros", f.taker_fee_micros),
        EventBody::OrderCancelled { order_id, portfolio_id, symbol_id, qty_lots, reason } => head
            .put("order_id", order_id)
            .put("portfolio", portfolio(portfolio_id))
            .put("symbol", symbol(symbol_id))
            .qty(units(symbol_id), "qty", "qty_lots", qty_lots)
            .put("reason", cancel_reason(reason)),
        EventBody::OrderReplaced {
            order_id,
            portfolio_id,
            symbol_id,
            price_ticks,
            qty_lots,
            priority_kept,
            reserved_cash_micros,
        } => head
            .put("order_id", order_id)
            .put("portfolio", portfolio(portfolio_id))
            .put("symbol", symbol(symbol_id))
            .price(units(symbol_id), "price", "price_ticks", price_ticks)
            .qty(units(symbol_id), "qty", "qty_lots", qty_lots)
            .put("priority_kept", priority_kept)
            .money("reserved_cash", "reserved_cash_micros", reserved_cash_micros),
        EventBody::ReferencePriceSet { symbol_id, price_ticks } => {
            head.put("symbol", symbol(symbol_id)).price(units(symbol_id), "price", "price_ticks", price_ticks)
        }
        EventBody::HaltedSet { symbol_id, halted } => head.put("symbol", symbol(symbol_id)).put("halted", halted),
        EventBody::ReferenceQuoteSet { symbol_id, bid_price_ticks, bid_qty_lots, ask_price_ticks, ask_qty_lots } => {
            head.put("symbol", symbol(symbol_id))
                .price(units(symbol_id), "bid", "bid_price_ticks", bid_price_ticks)
                .qty(units(symbol_id), "bid_qty", "bid_qty_lots", bid_qty_lots)
                .price(units(symbol_id), "ask", "ask_price_ticks", ask_price_ticks)
                .qty(units(symbol_id), "ask_qty", "ask_qty_lots", ask_qty_lots)
        }
        EventBody::ReferenceTradePrinted { symbol_id, price_ticks, qty_lots } => head
            .put("symbol", symbol(symbol_id))
            .price(units(symbol_id), "price", "price_ticks", price_ticks)
            .qty(units(symbol_id), "qty", "qty_lots", qty_lots),
    }
}

pub fn reject_reason(reason: RejectReason) -> String {
    name_of(&reason)
}

pub fn cancel_reason(reason: CancelReason) -> String {
    name_of(&reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_their_key_order() {
        let obj = Obj::new()
            .put("zeta", 1u64)
            .put("alpha", "a")
            .put("nested", Obj::new().put("y", true).put("b", Option::<u64>::None));
        assert_eq!(obj.to_line(), r#"{"zeta":1,"alpha":"a","nested":{"y":true,"b":null}}"#);
    }

    #[test]
    fn values_are_exact_decimal_text_next_to_raw_integers() {
        let table = InstrumentTable::default_table();
        let btc = table.by_symbol("BTC-USD").unwrap().symbol_id;
        let obj = Obj::new()
            .price(Units::of(&table, btc), "price", "price_ticks", 6_000_001)
            .qty(Units::of(&table, btc), "qty", "qty_lots", 1)
            .money("fee", "fee_micros", -1);
        assert_eq!(
            obj.to_line(),
            r#"{"price":"60000.01","price_ticks":6000001,"qty":"0.00000001","qty_lots":1,"fee":"-0.000001","fee_micros":-1}"#
        );
    }
}
