//! `dump`: the journal's records as lines an operator can read, grep or feed to a program.
//!
//! Shards are merged in time order (then shard, then sequence), because an incident is read as one
//! story across symbols, not shard by shard. Events are rendered by the scenario runner's renderer
//! (`script::render`), so a fill reads the same in `simex-script` output and in a journal dump:
//! symbols by name, prices, quantities and money as exact decimal text. The text form drops the raw
//! integer twins (`price_ticks`, ...) and empty values for readability; `--json` keeps everything and
//! adds where the record is (segment file and offset).
//!
//! Filters narrow what is printed, not what is read: every record up to the last one wanted is read
//! and checked, so damage before it is reported (on standard error, with the exit status of
//! `verify`) instead of silently skipped.

use super::records::{Damage, Located, ShardRecords, Stop};
use super::venue::Venue;
use super::{ToolError, EXIT_DAMAGED, EXIT_OK};
use crate::out;
use crate::script::render::{self, Node, Obj};
use crate::script::time::format_rfc3339;
use serde_json::Value;
use simex_engine::codec::record_type;
use simex_engine::{EventBody, PortfolioId, SymbolId};
use std::collections::BTreeSet;
use std::io::Write;

/// Event type names (as in every output) and their record types.
pub const EVENT_TYPES: [(&str, u16); 14] = [
    ("portfolio_created", record_type::PORTFOLIO_CREATED),
    ("cash_adjusted", record_type::CASH_ADJUSTED),
    ("risk_limits_set", record_type::RISK_LIMITS_SET),
    ("order_accepted", record_type::ORDER_ACCEPTED),
    ("rejected", record_type::REJECTED),
    ("fill", record_type::FILL),
    ("order_cancelled", record_type::ORDER_CANCELLED),
    ("order_replaced", record_type::ORDER_REPLACED),
    ("reference_price_set", record_type::REFERENCE_PRICE_SET),
    ("halted_set", record_type::HALTED_SET),
    ("reference_quote_set", record_type::REFERENCE_QUOTE_SET),
    ("reference_trade_printed", record_type::REFERENCE_TRADE_PRINTED),
    ("conditional_accepted", record_type::CONDITIONAL_ACCEPTED),
    ("order_triggered", record_type::ORDER_TRIGGERED),
];

/// The name of a record type (`type 42` for one that is not an event).
pub fn type_name(record_type: u16) -> String {
    EVENT_TYPES
        .iter()
        .find(|(_, t)| *t == record_type)
        .map_or_else(|| format!("type {record_type}"), |(n, _)| n.to_string())
}

/// Record types from names given as `fill,order_accepted` (possibly repeated).
pub fn parse_types(names: &[String]) -> Result<BTreeSet<u16>, ToolError> {
    let mut types = BTreeSet::new();
    for name in names.iter().flat_map(|n| n.split(',')).map(str::trim).filter(|n| !n.is_empty()) {
        let Some((_, t)) = EVENT_TYPES.iter().find(|(n, _)| *n == name) else {
            let known: Vec<&str> = EVENT_TYPES.iter().map(|(n, _)| *n).collect();
            return Err(ToolError::usage(format!("unknown event type `{name}` (types: {})", known.join(", "))));
        };
        types.insert(*t);
    }
    Ok(types)
}

/// Which records to print.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub from_seq: Option<u64>,
    pub to_seq: Option<u64>,
    pub from_ns: Option<i64>,
    pub to_ns: Option<i64>,
    pub portfolio: Option<PortfolioId>,
    pub symbol: Option<SymbolId>,
    /// Record types; empty for all.
    pub types: BTreeSet<u16>,
    pub shard: Option<u32>,
}

/// The portfolios an event concerns (both sides of a fill).
pub fn portfolios_of(body: &EventBody) -> [Option<PortfolioId>; 2] {
    match *body {
        EventBody::PortfolioCreated { portfolio_id, .. }
        | EventBody::CashAdjusted { portfolio_id, .. }
        | EventBody::RiskLimitsSet { portfolio_id, .. }
        | EventBody::Rejected { portfolio_id, .. }
        | EventBody::OrderCancelled { portfolio_id, .. }
        | EventBody::OrderReplaced { portfolio_id, .. }
        | EventBody::OrderTriggered { portfolio_id, .. } => [Some(portfolio_id), None],
        EventBody::OrderAccepted(a) => [Some(a.portfolio_id), None],
        EventBody::ConditionalAccepted(c) => [Some(c.portfolio_id), None],
        EventBody::Fill(f) => [
            (!f.maker_is_simulated()).then_some(f.maker_portfolio_id),
            (!f.taker_is_simulated()).then_some(f.taker_portfolio_id),
        ],
        EventBody::ReferencePriceSet { .. }
        | EventBody::HaltedSet { .. }
        | EventBody::ReferenceQuoteSet { .. }
        | EventBody::ReferenceTradePrinted { .. } => [None, None],
    }
}

/// The symbol an event concerns, if any (a rejection names none).
pub fn symbol_of(body: &EventBody) -> Option<SymbolId> {
    match *body {
        EventBody::OrderAccepted(a) => Some(a.symbol_id),
        EventBody::ConditionalAccepted(c) => Some(c.symbol_id),
        EventBody::Fill(f) => Some(f.symbol_id),
        EventBody::OrderTriggered { symbol_id, .. }
        | EventBody::OrderCancelled { symbol_id, .. }
        | EventBody::OrderReplaced { symbol_id, .. }
        | EventBody::ReferencePriceSet { symbol_id, .. }
        | EventBody::HaltedSet { symbol_id, .. }
        | EventBody::ReferenceQuoteSet { symbol_id, .. }
        | EventBody::ReferenceTradePrinted { symbol_id, .. } => Some(symbol_id),
        EventBody::PortfolioCreated { .. }
        | EventBody::CashAdjusted { .. }
        | EventBody::RiskLimitsSet { .. }
        | EventBody::Rejected { .. } => None,
    }
}

impl Filter {
    /// Whether a record is wanted (the sequence and time bounds included).
    pub fn wants(&self, record: &Located) -> bool {
        let event = &record.event;
        self.from_seq.is_none_or(|from| event.seq >= from)
            && self.to_seq.is_none_or(|to| event.seq <= to)
            && self.from_ns.is_none_or(|from| event.timestamp_ns >= from)
            && self.to_ns.is_none_or(|to| event.timestamp_ns <= to)
            && self.portfolio.is_none_or(|p| portfolios_of(&event.body).contains(&Some(p)))
            && self.symbol.is_none_or(|s| symbol_of(&event.body) == Some(s))
            && (self.types.is_empty() || self.types.contains(&record.record_type))
    }

    /// Whether no later record of the shard can be wanted (sequences and times only grow).
    fn past_end(&self, record: &Located) -> bool {
        self.to_seq.is_some_and(|to| record.event.seq > to)
            || self.to_ns.is_some_and(|to| record.event.timestamp_ns > to)
    }
}

/// A record as one JSON object: where it is, what it is, and the event's fields.
pub fn json_line(venue: &Venue, record: &Located) -> Obj {
    let event = &record.event;
    let head = Obj::new()
        .put("shard", record.shard)
        .put("seq", event.seq)
        .time("at", "at_ns", event.timestamp_ns)
        .put("type", render::event_type(&event.body));
    let segment = record.segment.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
    render::event_fields(&venue.instruments, head, &event.body)
        .put("segment", segment)
        .put("offset", record.offset_bytes)
}

/// A record as one text line: `<time> shard=<k> seq=<n> <type> key=value ...`.
pub fn text_line(venue: &Venue, record: &Located) -> String {
    let event = &record.event;
    let mut line = format!(
        "{} shard={} seq={} {}",
        format_rfc3339(event.timestamp_ns),
        record.shard,
        event.seq,
        render::event_type(&event.body)
    );
    let fields = render::event_fields(&venue.instruments, Obj::new(), &event.body);
    flatten(&mut line, "", &fields);
    line
}

/// Appends ` key=value` for every field a person reads: not the raw integer twins, not nulls.
fn flatten(line: &mut String, prefix: &str, obj: &Obj) {
    for (key, value) in obj.entries() {
        if ["_ticks", "_lots", "_micros", "_ns"].iter().any(|raw| key.ends_with(raw)) {
            continue;
        }
        match value {
            Node::Value(Value::Null) => {}
            Node::Value(Value::String(text)) => line.push_str(&format!(" {prefix}{key}={text}")),
            Node::Value(other) => line.push_str(&format!(" {prefix}{key}={other}")),
            Node::Obj(inner) => flatten(line, &format!("{prefix}{key}."), inner),
            Node::List(items) => line.push_str(&format!(" {prefix}{key}=[{} items]", items.len())),
        }
    }
}

struct Source {
    records: ShardRecords,
    head: Option<Located>,
}

/// Runs `dump`: matching records to `out`, damage to `err`. Returns the exit status.
pub fn run(
    venue: &Venue,
    filter: &Filter,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, ToolError> {
    let mut damaged: Vec<(u32, Damage)> = Vec::new();
    let mut sources = Vec::new();
    for shard in venue.select_shards(filter.shard)? {
        let records = ShardRecords::open(&venue.root, shard, None, filter.from_seq)?;
        sources.push(Source { records, head: None });
    }
    let advance = |source: &mut Source, damaged: &mut Vec<(u32, Damage)>| -> Result<(), ToolError> {
        source.head = match source.records.next_event() {
            Ok(Some(record)) if !filter.past_end(&record) => Some(record),
            Ok(_) => None,
            Err(Stop::Io(e)) => return Err(e),
            Err(Stop::Damage(damage)) => {
                damaged.push((source.records.shard(), damage));
                None
            }
        };
        Ok(())
    };
    for source in &mut sources {
        advance(source, &mut damaged)?;
    }
    loop {
        let next = sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.head.as_ref().map(|r| ((r.event.timestamp_ns, r.shard, r.event.seq), i)))
            .min();
        let Some((_, index)) = next else { break };
        let source = &mut sources[index];
        if let Some(record) = source.head.as_ref().filter(|r| filter.wants(r)) {
            if json {
                out!(out, "{}", json_line(venue, record).to_line())?;
            } else {
                out!(out, "{}", text_line(venue, record))?;
            }
        }
        advance(source, &mut damaged)?;
    }
    out.flush().map_err(ToolError::output)?;
    let mut status = EXIT_OK;
    for (shard, damage) in damaged {
        if damage.is_torn_tail() {
            out!(err, "simex-journal: warning: shard {shard}: the journal ends at a torn tail: {damage}")?;
        } else {
            out!(err, "simex-journal: shard {shard}: records after this were not read: {damage}")?;
            status = EXIT_DAMAGED;
        }
    }
    Ok(status)
}
