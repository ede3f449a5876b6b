//! The final state document printed by `--state`: what each portfolio holds and what each book
//! shows once the script has run.
//!
//! Events say what happened; an operator reproducing an incident also wants to see where it left
//! things (is the cash right, what is still resting, at which price does the book stand) without
//! folding the events by hand. Everything here is read through the engine's public queries, in
//! a fixed order (portfolio id, symbol id, order id, best price first), so the document is
//! deterministic and fit for golden files. As in event lines, values are decimal text next to the
//! engine's raw integers.
//!
//! Two values are derived rather than stored by the engine, and are rounded toward zero:
//! - `avg_price`: |cost basis| / |quantity|, with six decimals or the tick's decimals if more;
//! - `unrealized_pnl`: the position's value at `mark_price` (the engine's reference price: the last
//!   `reference_price` set, else the last trade price) rounded down to the micro, minus its basis.

use std::collections::BTreeMap;

use simex_engine::decimal::format_scaled;
use simex_engine::{Engine, Instrument, Order, Position, Side, SymbolId, NANOS_PER_DAY};

use super::render::{self, client_order_id, name_of, Node, Obj, Units};

/// The state document. `now_ns` is the time of the last line (none for an empty script).
pub fn document(engine: &Engine, halted: &BTreeMap<SymbolId, bool>, now_ns: Option<i64>) -> Obj {
    let instruments = engine.instruments();
    let mut open_orders: BTreeMap<u32, Vec<Order>> = BTreeMap::new();
    for instrument in instruments.iter() {
        for side in [Side::Buy, Side::Sell] {
            for order in engine.book_orders(instrument.symbol_id, side) {
                open_orders.entry(order.portfolio_id).or_default().push(order);
            }
        }
    }
    let positions = engine.positions();
    let day = now_ns.map(|ns| ns.div_euclid(NANOS_PER_DAY));

    let mut portfolios = Vec::new();
    for (portfolio_id, account) in engine.ledger().iter() {
        let daily_pnl = match day {
            Some(day) if account.daily_pnl_day == day => account.daily_pnl_micros,
            _ => 0,
        };
        let held: Vec<Obj> = positions
            .iter()
            .filter(|((p, _), _)| *p == portfolio_id)
            .filter_map(|((_, symbol_id), position)| {
                let instrument = instruments.get(*symbol_id)?;
                Some(position_obj(instrument, position, engine.reference_price(*symbol_id)))
            })
            .collect();
        let mut orders = open_orders.remove(&portfolio_id).unwrap_or_default();
        orders.sort_by_key(|o| o.order_id);
        let orders: Vec<Obj> = orders.iter().map(|o| order_obj(engine, o)).collect();
        portfolios.push(
            Obj::new()
                .put("portfolio", portfolio_id)
                .money("cash", "cash_micros", account.cash_micros)
                .money("reserved", "reserved_micros", account.reserved_micros)
                .money("margin", "margin_micros", account.margin_micros)
                .money("available", "available_micros", account.available_micros())
                .money("fees_paid", "fees_paid_micros", account.fees_paid_micros)
                .money("realized_pnl", "realized_pnl_micros", account.realized_pnl_micros)
                .money("daily_pnl", "daily_pnl_micros", daily_pnl)
                .money("gross_exposure", "gross_exposure_micros", account.gross_exposure_micros)
                .put("open_order_count", account.open_orders)
                .put("limits", render::limits(&account.limits))
                .put("positions", held)
                .put("open_orders", orders),
        );
    }

    let mut books = Vec::new();
    for instrument in instruments.iter() {
        let symbol_id = instrument.symbol_id;
        let units = Units::of(instruments, symbol_id);
        let levels = |side| -> Vec<Obj> {
            engine
                .levels(symbol_id, side, usize::MAX)
                .iter()
                .map(|level| {
                    Obj::new()
                        .price(units, "price", "price_ticks", level.price_ticks)
                        .qty(units, "qty", "qty_lots", level.qty_lots)
                        .put("orders", level.order_count)
                })
                .collect()
        };
        let (bids, asks) = (levels(Side::Buy), levels(Side::Sell));
        let reference = engine.reference_price(symbol_id);
        let is_halted = halted.get(&symbol_id).copied().unwrap_or(false);
        if bids.is_empty() && asks.is_empty() && reference.is_none() && !is_halted {
            continue;
        }
        books.push(
            Obj::new()
                .put("symbol", instrument.symbol.clone())
                .put("halted", is_halted)
                .put("reference_price", reference.map(|r| units.price(r)))
                .put("reference_price_ticks", reference)
                .put("bids", bids)
                .put("asks", asks),
        );
    }

    let head = Obj::new();
    let head = match now_ns {
        Some(ns) => head.time("at", "at_ns", ns),
        None => head.put("at", Node::from(None::<String>)).put("at_ns", None::<i64>),
    };
    head.put("last_seq", engine.last_seq())
        .put("state_hash", format!("{:016x}", engine.state_hash()))
        .put("portfolios", portfolios)
        .put("books", books)
}

fn position_obj(instrument: &Instrument, position: &Position, mark: Option<i64>) -> Obj {
    let units = Units::of_instrument(instrument);
    let unrealized = mark.and_then(|mark| unrealized_pnl_micros(instrument, position, mark));
    let obj = Obj::new()
        .put("symbol", instrument.symbol.clone())
        .qty(units, "qty", "qty_lots", position.qty_lots)
        .put("avg_price", avg_price(instrument, position))
        .money("cost_basis", "cost_basis_micros", position.cost_basis_micros)
        .put("mark_price", mark.map(|m| units.price(m)))
        .put("mark_price_ticks", mark);
    let obj = match unrealized {
        Some(micros) => obj.money("unrealized_pnl", "unrealized_pnl_micros", micros),
        None => obj.put("unrealized_pnl", None::<String>).put("unrealized_pnl_micros", None::<i64>),
    };
    obj.money("realized_pnl", "realized_pnl_micros", position.realized_pnl_micros)
        .money("fees", "fees_micros", position.fees_micros)
        .money("margin", "margin_micros", position.margin_micros)
        .qty(units, "open_buy_qty", "open_buy_lots", position.open_buy_lots)
        .qty(units, "open_sell_qty", "open_sell_lots", position.open_sell_lots)
        .qty(units, "reserved_qty", "reserved_lots", position.reserved_lots)
}

fn order_obj(engine: &Engine, order: &Order) -> Obj {
    let instruments = engine.instruments();
    let units = Units::of(instruments, order.symbol_id);
    Obj::new()
        .put("order_id", order.order_id)
        .put("client_order_id", client_order_id(order.client_order_id))
        .put("symbol", render::symbol(instruments, order.symbol_id))
        .put("side", name_of(&order.side))
        .put("kind", name_of(&order.kind))
        .price(units, "price", "price_ticks", order.price_ticks)
        .qty(units, "open_qty", "open_lots", order.open_lots)
        .qty(units, "filled_qty", "filled_lots", order.filled_lots)
        .put("tif", name_of(&order.time_in_force))
        .time("expire_at", "expire_at_ns", order.expire_at_ns)
        .put("post_only", order.post_only)
        .put("stp", name_of(&order.self_trade_policy))
        .money("reserved_cash", "reserved_cash_micros", order.reserved_cash_micros)
        .qty(units, "reserved_qty", "reserved_lots", order.reserved_lots)
}

/// |cost basis| / |qty| as decimal text, rounded toward zero to max(6, tick decimals) places;
/// `None` when flat.
pub fn avg_price(instrument: &Instrument, position: &Position) -> Option<String> {
    if position.qty_lots == 0 {
        return None;
    }
    let scale = instrument.tick.scale.max(6);
    // price = basis_micros / 10^6 / (qty_lots * lot_mantissa / 10^lot_scale); in units of 10^-scale:
    // basis_micros * 10^(lot_scale + scale - 6) / (qty_lots * lot_mantissa).
    let numerator = i128::from(position.cost_basis_micros)
        .abs()
        .checked_mul(10i128.checked_pow(instrument.lot.scale + scale - 6)?)?;
    let denominator = i128::from(position.qty_lots).abs() * i128::from(instrument.lot.mantissa);
    let mut text = String::new();
    format_scaled(&mut text, numerator / denominator, scale).ok()?;
    Some(text)
}

/// The position's value at `mark_ticks` (rounded down to the micro) minus its cost basis.
pub fn unrealized_pnl_micros(instrument: &Instrument, position: &Position, mark_ticks: i64) -> Option<i64> {
    if position.qty_lots == 0 {
        return Some(0);
    }
    let value = instrument.notional_floor_micros(mark_ticks, position.qty_lots.abs())?;
    let signed_value = if position.qty_lots > 0 { value } else { -value };
    signed_value.checked_sub(position.cost_basis_micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use simex_engine::InstrumentTable;

    #[test]
    fn average_price_is_rounded_toward_zero() {
        let table = InstrumentTable::default_table();
        let aapl = table.by_symbol("AAPL").unwrap();
        let long = Position {
            qty_lots: 3,
            cost_basis_micros: 450_760_000, // 150.25 + 150.25 + 150.26
            ..Position::default()
        };
        assert_eq!(avg_price(aapl, &long).as_deref(), Some("150.253333"));
        let short = Position { qty_lots: -3, cost_basis_micros: -450_760_000, ..Position::default() };
        assert_eq!(avg_price(aapl, &short).as_deref(), Some("150.253333"));
        assert_eq!(avg_price(aapl, &Position::default()), None);
        let btc = table.by_symbol("BTC-USD").unwrap();
        let sats = Position {
            qty_lots: 1,
            cost_basis_micros: 600, // one satoshi at 60000.01 is 600.0001 micros, rounded down
            ..Position::default()
        };
        assert_eq!(avg_price(btc, &sats).as_deref(), Some("60000.000000"));
    }

    #[test]
    fn unrealized_pnl_is_value_at_mark_minus_basis() {
        let table = InstrumentTable::default_table();
        let aapl = table.by_symbol("AAPL").unwrap();
        let long = Position { qty_lots: 10, cost_basis_micros: 1_502_500_000, ..Position::default() };
        assert_eq!(unrealized_pnl_micros(aapl, &long, 15100), Some(7_500_000));
        let short = Position { qty_lots: -10, cost_basis_micros: -1_502_500_000, ..Position::default() };
        assert_eq!(unrealized_pnl_micros(aapl, &short, 15100), Some(-7_500_000));
    }
}
