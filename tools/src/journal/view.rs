//! The rebuilt state as an operator looks at it: portfolios with their money and positions, the top
//! of every book, and the hashes that say whether two states are the same.
//!
//! A [`View`] is read from the engines and the shared ledger through their public queries only, in
//! a fixed order (portfolio id, symbol id, best price first), and holds plain values, so two views
//! can be compared field by field ([`diff`]). Text output is for reading at a terminal; JSON output
//! carries the same values as decimal text next to the engine's raw integers, as the scenario
//! runner's output does.

use super::point::Point;
use super::progress::Progress;
use super::replay::{resolve, Replayer, Target};
use super::venue::Venue;
use super::{ToolError, EXIT_OK};
use crate::out;
use crate::script::render::{self, Obj, Units};
use crate::script::time::format_rfc3339;
use simex_engine::decimal::format_micros;
use simex_engine::{Account, InstrumentTable, Position, Side, SymbolId};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;

/// Where one shard's engine stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardPoint {
    pub shard: u32,
    pub last_seq: u64,
    pub last_timestamp_ns: Option<i64>,
    pub state_hash: u64,
    pub snapshot_seq: Option<u64>,
    pub replayed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    pub price_ticks: i64,
    pub qty_lots: i64,
    pub orders: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BookView {
    pub reference_ticks: Option<i64>,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortfolioView {
    pub account: Account,
    pub positions: BTreeMap<SymbolId, Position>,
}

/// The venue's state at a point.
#[derive(Clone, Debug)]
pub struct View {
    pub point: String,
    pub shards: Vec<ShardPoint>,
    pub combined_hash: u64,
    pub portfolios: BTreeMap<u32, PortfolioView>,
    /// Books with orders or a reference price; `depth` levels a side.
    pub books: BTreeMap<SymbolId, BookView>,
}

/// Reads the state of `replayer` (as advanced to `target`), with `depth` levels per book side.
pub fn capture(replayer: &Replayer, target: &Target, depth: usize) -> View {
    let shards = replayer
        .shards
        .iter()
        .map(|s| ShardPoint {
            shard: s.shard,
            last_seq: s.engine.last_seq(),
            last_timestamp_ns: s.last_timestamp_ns,
            state_hash: s.engine.state_hash(),
            snapshot_seq: s.snapshot_seq,
            replayed: s.replayed,
        })
        .collect();
    let mut portfolios: BTreeMap<u32, PortfolioView> = replayer
        .accounts()
        .into_iter()
        .map(|(id, account)| (id, PortfolioView { account, positions: BTreeMap::new() }))
        .collect();
    let mut books = BTreeMap::new();
    for shard in &replayer.shards {
        for ((portfolio_id, symbol_id), position) in shard.engine.positions() {
            if let Some(portfolio) = portfolios.get_mut(&portfolio_id) {
                portfolio.positions.entry(symbol_id).or_insert(position);
            }
        }
        for instrument in shard.engine.instruments().iter() {
            let symbol_id = instrument.symbol_id;
            let levels = |side| -> Vec<Level> {
                shard
                    .engine
                    .levels(symbol_id, side, depth)
                    .iter()
                    .map(|l| Level { price_ticks: l.price_ticks, qty_lots: l.qty_lots, orders: l.order_count })
                    .collect()
            };
            let book = BookView {
                reference_ticks: shard.engine.reference_price(symbol_id),
                bids: levels(Side::Buy),
                asks: levels(Side::Sell),
            };
            if book != BookView::default() {
                books.entry(symbol_id).or_insert(book);
            }
        }
    }
    View { point: target.description.clone(), shards, combined_hash: replayer.combined_hash(), portfolios, books }
}

fn hex(hash: u64) -> String {
    format!("{hash:016x}")
}

fn time_or_dash(ns: Option<i64>) -> String {
    ns.map_or_else(|| "-".to_string(), format_rfc3339)
}

fn origin(shard: &ShardPoint) -> String {
    match shard.snapshot_seq {
        Some(seq) => format!("snapshot at sequence {seq} + {} records", shard.replayed),
        None => format!("{} records from the start", shard.replayed),
    }
}

fn level_text(units: Units, level: Option<&Level>) -> String {
    match level {
        None => "(none)".to_string(),
        Some(l) => format!(
            "{} x {} ({} order{})",
            units.price(l.price_ticks),
            units.qty(l.qty_lots),
            l.orders,
            if l.orders == 1 { "" } else { "s" }
        ),
    }
}

/// The view as text for a terminal.
pub fn text(instruments: &InstrumentTable, view: &View) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "state at {}", view.point);
    for s in &view.shards {
        let _ = writeln!(
            out,
            "  shard {}: last sequence {} at {}, state hash {} ({})",
            s.shard,
            s.last_seq,
            time_or_dash(s.last_timestamp_ns),
            hex(s.state_hash),
            origin(s)
        );
    }
    let _ = writeln!(out, "  combined hash {}", hex(view.combined_hash));
    let _ = writeln!(out);
    let _ = writeln!(out, "portfolios ({})", view.portfolios.len());
    for (id, p) in &view.portfolios {
        let a = &p.account;
        let _ = writeln!(
            out,
            "  portfolio {id}: cash {}  reserved {}  margin {}  available {}  fees {}  realized {}  open orders {}",
            format_micros(a.cash_micros),
            format_micros(a.reserved_micros),
            format_micros(a.margin_micros),
            format_micros(a.available_micros()),
            format_micros(a.fees_paid_micros),
            format_micros(a.realized_pnl_micros),
            a.open_orders
        );
        for (&symbol_id, position) in &p.positions {
            let units = Units::of(instruments, symbol_id);
            let avg = instruments
                .get(symbol_id)
                .and_then(|i| crate::script::state::avg_price(i, position))
                .unwrap_or_else(|| "-".to_string());
            let _ = writeln!(
                out,
                "    {:<8} qty {}  avg {}  cost {}  realized {}  fees {}  margin {}  open buy {}  open sell {}",
                render::symbol(instruments, symbol_id),
                units.qty(position.qty_lots),
                avg,
                format_micros(position.cost_basis_micros),
                format_micros(position.realized_pnl_micros),
                format_micros(position.fees_micros),
                format_micros(position.margin_micros),
                units.qty(position.open_buy_lots),
                units.qty(position.open_sell_lots),
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "books ({})", view.books.len());
    for (&symbol_id, book) in &view.books {
        let units = Units::of(instruments, symbol_id);
        let reference = book.reference_ticks.map_or_else(|| "-".to_string(), |r| units.price(r));
        let _ = writeln!(out, "  {} (reference {reference})", render::symbol(instruments, symbol_id));
        let rows = book.bids.len().max(book.asks.len());
        if rows == 0 {
            let _ = writeln!(out, "    (empty)");
        }
        for i in 0..rows {
            let _ = writeln!(
                out,
                "    bid {:<36} ask {}",
                level_text(units, book.bids.get(i)),
                level_text(units, book.asks.get(i))
            );
        }
    }
    out
}

fn level_objs(units: Units, levels: &[Level]) -> Vec<Obj> {
    levels
        .iter()
        .map(|l| {
            Obj::new()
                .price(units, "price", "price_ticks", l.price_ticks)
                .qty(units, "qty", "qty_lots", l.qty_lots)
                .put("orders", l.orders)
        })
        .collect()
}

fn shard_obj(s: &ShardPoint) -> Obj {
    let obj = Obj::new().put("shard", s.shard).put("last_seq", s.last_seq);
    let obj = match s.last_timestamp_ns {
        Some(ns) => obj.time("at", "at_ns", ns),
        None => obj.put("at", None::<String>).put("at_ns", None::<i64>),
    };
    obj.put("state_hash", hex(s.state_hash)).put("snapshot_seq", s.snapshot_seq).put("replayed", s.replayed)
}

/// The view as one JSON document.
pub fn json(instruments: &InstrumentTable, view: &View) -> Obj {
    let portfolios: Vec<Obj> = view
        .portfolios
        .iter()
        .map(|(id, p)| {
            let a = &p.account;
            let positions: Vec<Obj> = p
                .positions
                .iter()
                .map(|(&symbol_id, position)| {
                    let units = Units::of(instruments, symbol_id);
                    Obj::new()
                        .put("symbol", render::symbol(instruments, symbol_id))
                        .qty(units, "qty", "qty_lots", position.qty_lots)
                        .put(
                            "avg_price",
                            instruments.get(symbol_id).and_then(|i| crate::script::state::avg_price(i, position)),
                        )
                        .money("cost_basis", "cost_basis_micros", position.cost_basis_micros)
                        .money("realized_pnl", "realized_pnl_micros", position.realized_pnl_micros)
                        .money("fees", "fees_micros", position.fees_micros)
                        .money("margin", "margin_micros", position.margin_micros)
                        .qty(units, "open_buy_qty", "open_buy_lots", position.open_buy_lots)
                        .qty(units, "open_sell_qty", "open_sell_lots", position.open_sell_lots)
                        .qty(units, "reserved_qty", "reserved_lots", position.reserved_lots)
                })
                .collect();
            Obj::new()
                .put("portfolio", *id)
                .money("cash", "cash_micros", a.cash_micros)
                .money("reserved", "reserved_micros", a.reserved_micros)
                .money("margin", "margin_micros", a.margin_micros)
                .money("available", "available_micros", a.available_micros())
                .money("fees_paid", "fees_paid_micros", a.fees_paid_micros)
                .money("realized_pnl", "realized_pnl_micros", a.realized_pnl_micros)
                .money("gross_exposure", "gross_exposure_micros", a.gross_exposure_micros)
                .put("open_orders", a.open_orders)
                .put("limits", render::limits(&a.limits))
                .put("positions", positions)
        })
        .collect();
    let books: Vec<Obj> = view
        .books
        .iter()
        .map(|(&symbol_id, book)| {
            let units = Units::of(instruments, symbol_id);
            Obj::new()
                .put("symbol", render::symbol(instruments, symbol_id))
                .put("reference_price", book.reference_ticks.map(|r| units.price(r)))
                .put("reference_price_ticks", book.reference_ticks)
                .put("bids", level_objs(units, &book.bids))
                .put("asks", level_objs(units, &book.asks))
        })
        .collect();
    Obj::new()
        .put("point", view.point.clone())
        .put("shards", view.shards.iter().map(shard_obj).collect::<Vec<_>>())
        .put("combined_hash", hex(view.combined_hash))
        .put("portfolios", portfolios)
        .put("books", books)
}

/// One difference between two views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// What changed: `portfolio 3`, `portfolio 3 AAPL`, `book AAPL`, `shard 0`, `venue`.
    pub subject: String,
    pub field: String,
    pub a: String,
    pub b: String,
    /// `b - a` for numbers, with its sign.
    pub delta: Option<String>,
}

fn signed(text: String) -> String {
    if text.starts_with('-') {
        text
    } else {
        format!("+{text}")
    }
}

struct Changes(Vec<Change>);

impl Changes {
    fn text(&mut self, subject: &str, field: &str, a: String, b: String) {
        if a != b {
            self.0.push(Change { subject: subject.to_string(), field: field.to_string(), a, b, delta: None });
        }
    }

    fn number(&mut self, subject: &str, field: &str, a: i64, b: i64, format: impl Fn(i64) -> String) {
        if a != b {
            self.0.push(Change {
                subject: subject.to_string(),
                field: field.to_string(),
                a: format(a),
                b: format(b),
                delta: b.checked_sub(a).map(|d| signed(format(d))),
            });
        }
    }
}

/// What differs from `a` to `b`: shard positions and hashes, every account field, every position
/// field, and the book levels both views captured.
pub fn diff(instruments: &InstrumentTable, a: &View, b: &View) -> Vec<Change> {
    let mut changes = Changes(Vec::new());
    changes.text("venue", "combined hash", hex(a.combined_hash), hex(b.combined_hash));
    for (sa, sb) in a.shards.iter().zip(&b.shards) {
        let subject = format!("shard {}", sa.shard);
        changes.number(&subject, "last sequence", sa.last_seq as i64, sb.last_seq as i64, |v| v.to_string());
        changes.text(&subject, "state hash", hex(sa.state_hash), hex(sb.state_hash));
    }
    let ids: BTreeSet<u32> = a.portfolios.keys().chain(b.portfolios.keys()).copied().collect();
    for id in ids {
        let subject = format!("portfolio {id}");
        let (pa, pb) = (a.portfolios.get(&id), b.portfolios.get(&id));
        let (Some(pa), Some(pb)) = (pa, pb) else {
            let exists = |p: Option<&PortfolioView>| {
                p.map_or("(none)".to_string(), |p| format!("cash {}", format_micros(p.account.cash_micros)))
            };
            changes.text(&subject, "account", exists(pa), exists(pb));
            continue;
        };
        let (x, y) = (&pa.account, &pb.account);
        let money = |v: i64| format_micros(v);
        changes.number(&subject, "cash", x.cash_micros, y.cash_micros, money);
        changes.number(&subject, "reserved", x.reserved_micros, y.reserved_micros, money);
        changes.number(&subject, "margin", x.margin_micros, y.margin_micros, money);
        changes.number(&subject, "available", x.available_micros(), y.available_micros(), money);
        changes.number(&subject, "fees paid", x.fees_paid_micros, y.fees_paid_micros, money);
        changes.number(&subject, "realized pnl", x.realized_pnl_micros, y.realized_pnl_micros, money);
        changes.number(&subject, "gross exposure", x.gross_exposure_micros, y.gross_exposure_micros, money);
        changes.number(&subject, "open orders", i64::from(x.open_orders), i64::from(y.open_orders), |v| v.to_string());
        let symbols: BTreeSet<SymbolId> = pa.positions.keys().chain(pb.positions.keys()).copied().collect();
        for symbol_id in symbols {
            let subject = format!("portfolio {id} {}", render::symbol(instruments, symbol_id));
            let units = Units::of(instruments, symbol_id);
            let (p, q) = (
                pa.positions.get(&symbol_id).copied().unwrap_or_default(),
                pb.positions.get(&symbol_id).copied().unwrap_or_default(),
            );
            changes.number(&subject, "qty", p.qty_lots, q.qty_lots, |v| units.qty(v));
            changes.number(&subject, "cost basis", p.cost_basis_micros, q.cost_basis_micros, money);
            changes.number(&subject, "realized pnl", p.realized_pnl_micros, q.realized_pnl_micros, money);
            changes.number(&subject, "fees", p.fees_micros, q.fees_micros, money);
            changes.number(&subject, "margin", p.margin_micros, q.margin_micros, money);
            changes.number(&subject, "open buy", p.open_buy_lots, q.open_buy_lots, |v| units.qty(v));
            changes.number(&subject, "open sell", p.open_sell_lots, q.open_sell_lots, |v| units.qty(v));
        }
    }
    let symbols: BTreeSet<SymbolId> = a.books.keys().chain(b.books.keys()).copied().collect();
    for symbol_id in symbols {
        let subject = format!("book {}", render::symbol(instruments, symbol_id));
        let units = Units::of(instruments, symbol_id);
        let (ba, bb) = (
            a.books.get(&symbol_id).cloned().unwrap_or_default(),
            b.books.get(&symbol_id).cloned().unwrap_or_default(),
        );
        let reference = |r: Option<i64>| r.map_or_else(|| "-".to_string(), |r| units.price(r));
        changes.text(&subject, "reference price", reference(ba.reference_ticks), reference(bb.reference_ticks));
        for (side, la, lb) in [("bid", &ba.bids, &bb.bids), ("ask", &ba.asks, &bb.asks)] {
            for i in 0..la.len().max(lb.len()) {
                changes.text(
                    &subject,
                    &format!("{side} {}", i + 1),
                    level_text(units, la.get(i)),
                    level_text(units, lb.get(i)),
                );
            }
        }
    }
    changes.0
}

/// A change as a text line: `portfolio 3 cash: 1000.000000 -> 998.500000 (-1.500000)`.
pub fn change_line(change: &Change) -> String {
    let delta = change.delta.as_ref().map_or_else(String::new, |d| format!(" ({d})"));
    format!("{} {}: {} -> {}{delta}", change.subject, change.field, change.a, change.b)
}

pub fn change_obj(change: &Change) -> Obj {
    Obj::new()
        .put("subject", change.subject.clone())
        .put("field", change.field.clone())
        .put("a", change.a.clone())
        .put("b", change.b.clone())
        .put("delta", change.delta.clone())
}

/// Options of `replay`.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub shard: Option<u32>,
    pub depth: usize,
    pub json: bool,
    /// Start from the newest usable snapshot set (else replay every record from the start).
    pub use_snapshots: bool,
}

/// Rebuilds the state at `point` (`None`: the end of the journal).
pub fn rebuild(
    venue: &Venue,
    point: Option<Point>,
    options: &ReplayOptions,
    err: &mut dyn Write,
) -> Result<View, ToolError> {
    let target = resolve(venue, point, options.shard)?;
    let total_bytes: u64 = venue.shards.iter().map(|&k| venue.segment_bytes(k)).sum();
    let mut replayer = Replayer::new(venue, &target, options.use_snapshots, Progress::bytes("replay", total_bytes))?;
    replayer.advance(&target)?;
    for warning in &replayer.warnings {
        out!(err, "simex-journal: warning: {warning}")?;
    }
    Ok(capture(&replayer, &target, options.depth))
}

/// `replay --until`: prints the state at a point.
pub fn run_state(
    venue: &Venue,
    point: Option<Point>,
    options: &ReplayOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, ToolError> {
    let view = rebuild(venue, point, options, err)?;
    if options.json {
        out!(out, "{}", json(&venue.instruments, &view).to_pretty())?;
    } else {
        write!(out, "{}", text(&venue.instruments, &view)).map_err(ToolError::output)?;
    }
    Ok(EXIT_OK)
}

/// `replay --diff A B`: prints what changed from one point to another.
pub fn run_diff(
    venue: &Venue,
    a: Point,
    b: Point,
    options: &ReplayOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, ToolError> {
    let view_a = rebuild(venue, Some(a), options, err)?;
    let view_b = rebuild(venue, Some(b), options, err)?;
    let changes = diff(&venue.instruments, &view_a, &view_b);
    if options.json {
        let doc = Obj::new()
            .put("a", view_a.point.clone())
            .put("b", view_b.point.clone())
            .put("a_combined_hash", hex(view_a.combined_hash))
            .put("b_combined_hash", hex(view_b.combined_hash))
            .put("changes", changes.iter().map(change_obj).collect::<Vec<_>>());
        out!(out, "{}", doc.to_pretty())?;
    } else {
        out!(out, "A: state at {}", view_a.point)?;
        out!(out, "B: state at {}", view_b.point)?;
        if changes.is_empty() {
            out!(out, "no differences")?;
        }
        for change in &changes {
            out!(out, "{}", change_line(change))?;
        }
    }
    Ok(EXIT_OK)
}
