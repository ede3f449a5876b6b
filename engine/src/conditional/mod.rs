//! Conditional orders (stops, take-profits, trailing stops) waiting off-book for their trigger,
//! and the links between orders (OCO pairs, bracket exits and their entry).
//!
//! # Why a separate store
//! A waiting conditional order is not in the book: it holds no cash, no lots and no place in a
//! queue, and the book's invariants (every open order rests at its price, holds its reservation)
//! do not apply to it. It lives here until it fires; then the engine sends it to the book as a new
//! order with the same id, checked again like any order.
//!
//! # Indexes
//! Per symbol, fixed triggers sit in two ordered sets keyed by trigger price: `rising` (fire when a
//! print is at or above the trigger: buy stops, sell take-profits) and `falling` (at or below: sell
//! stops, buy take-profits). A print visits only the orders that fire: `O(log n + fired)`.
//! Trailing stops are in [`trail::TrailBook`]s (per symbol, side and trail unit), whose cost is
//! described there. Nothing is scanned per print. Delayed orders (the latency model, which fire on
//! time, not price) sit in one set keyed by execution time: `O(log n + due)` per command.
//!
//! # Links
//! - OCO: each leg names the other (`oco_order_id`); when one fires or ends, the engine cancels the
//!   other.
//! - Bracket exits name their entry (`parent_order_id`) and wait with quantity 0; every fill of the
//!   entry adds its quantity to each exit (`on_parent_fill`), and an exit is indexed from its first
//!   lot. `children` maps a live entry to its exits; the entry leaving (filled, cancelled) drops the
//!   entry from it. It is derived state: a snapshot rebuilds it from the exits.
//!
//! State changes only through the engine's `evolve`; `collect` (which orders a print fires) only
//! reads, so deciding cannot drift from replay.

pub(crate) mod trail;

use crate::event::AcceptedConditional;
use crate::types::{OrderId, PortfolioId, Side, SymbolId, TriggerKind};
use std::collections::{BTreeMap, BTreeSet};
use trail::TrailBook;

/// Whether an order fires on a print at or above its trigger (else at or below).
pub(crate) fn fires_rising(trigger: TriggerKind, side: Side) -> bool {
    matches!(
        (trigger, side),
        (TriggerKind::Stop, Side::Buy) | (TriggerKind::TakeProfit, Side::Sell) | (TriggerKind::TrailingStop, Side::Buy)
    )
}

#[derive(Debug, Clone)]
struct SymbolTriggers {
    /// (trigger, id): fire when a print is at or above the trigger.
    rising: BTreeSet<(i64, OrderId)>,
    /// (trigger, id): fire when a print is at or below the trigger.
    falling: BTreeSet<(i64, OrderId)>,
    /// Buys in ticks, buys in bps, sells in ticks, sells in bps.
    trails: [TrailBook; 4],
}

impl SymbolTriggers {
    fn new() -> SymbolTriggers {
        SymbolTriggers {
            rising: BTreeSet::new(),
            falling: BTreeSet::new(),
            trails: [
                TrailBook::new(false, false),
                TrailBook::new(false, true),
                TrailBook::new(true, false),
                TrailBook::new(true, true),
            ],
        }
    }

    fn trail_book(&mut self, c: &AcceptedConditional) -> (&mut TrailBook, i64) {
        let (index, trail) = trail_index(c);
        (&mut self.trails[index], trail)
    }
}

fn trail_index(c: &AcceptedConditional) -> (usize, i64) {
    let side_index = if c.side == Side::Sell { 2 } else { 0 };
    if c.trail_bps > 0 {
        (side_index + 1, c.trail_bps)
    } else {
        (side_index, c.trail_ticks)
    }
}

/// Every waiting conditional order of a shard, indexed for triggering.
#[derive(Debug, Clone)]
pub(crate) struct ConditionalBook {
    orders: BTreeMap<OrderId, AcceptedConditional>,
    symbols: Vec<SymbolTriggers>,
    /// Live entry -> its exits (0 = none). See the module documentation.
    children: BTreeMap<OrderId, [OrderId; 2]>,
    /// (execution time, id) of every delayed order.
    delayed: BTreeSet<(i64, OrderId)>,
}

impl ConditionalBook {
    pub(crate) fn new(symbol_count: usize) -> ConditionalBook {
        ConditionalBook {
            orders: BTreeMap::new(),
            symbols: (0..symbol_count).map(|_| SymbolTriggers::new()).collect(),
            children: BTreeMap::new(),
            delayed: BTreeSet::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.orders.len()
    }

    pub(crate) fn get(&self, order_id: OrderId) -> Option<&AcceptedConditional> {
        self.orders.get(&order_id)
    }

    /// Every waiting order, by id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &AcceptedConditional> + '_ {
        self.orders.values()
    }

    /// The waiting orders of a portfolio (optionally in one symbol), by id.
    pub(crate) fn ids_of(&self, portfolio_id: PortfolioId, symbol_id: Option<SymbolId>) -> Vec<OrderId> {
        self.orders
            .values()
            .filter(|c| c.portfolio_id == portfolio_id && symbol_id.is_none_or(|s| s == c.symbol_id))
            .map(|c| c.order_id)
            .collect()
    }

    /// The exits of an entry (0 = none); none once the entry has ended.
    pub(crate) fn children_of(&self, parent_order_id: OrderId) -> [OrderId; 2] {
        self.children.get(&parent_order_id).copied().unwrap_or_default()
    }

    /// A trailing stop's current stop price.
    pub(crate) fn trailing_stop_ticks(&self, order_id: OrderId) -> Option<i64> {
        let c = self.orders.get(&order_id)?;
        let (index, _) = trail_index(c);
        self.symbols[usize::from(c.symbol_id)].trails[index].stop_ticks(order_id)
    }

    /// Stores an accepted order. `best_ticks` is a trailing stop's best price so far (its
    /// `trigger_price_ticks` when just accepted; a snapshot's stored best when restored).
    pub(crate) fn insert(&mut self, c: AcceptedConditional, best_ticks: i64) {
        let previous = self.orders.insert(c.order_id, c);
        assert!(previous.is_none(), "conditional order id reused");
        if c.oco_order_id != 0 {
            if let Some(peer) = self.orders.get_mut(&c.oco_order_id) {
                peer.oco_order_id = c.order_id;
            }
        }
        if c.parent_order_id != 0 {
            let slots = self.children.entry(c.parent_order_id).or_default();
            let free = slots.iter_mut().find(|slot| **slot == 0).expect("an entry has at most two exits");
            *free = c.order_id;
        }
        if c.qty_lots > 0 {
            self.index(&c, best_ticks);
        }
    }

    fn index(&mut self, c: &AcceptedConditional, best_ticks: i64) {
        let triggers = &mut self.symbols[usize::from(c.symbol_id)];
        match c.trigger {
            TriggerKind::Delayed => {
                self.delayed.insert((c.execute_at_ns, c.order_id));
            }
            TriggerKind::TrailingStop => {
                let (book, trail) = triggers.trail_book(c);
                book.insert(c.order_id, best_ticks, trail);
            }
            _ if fires_rising(c.trigger, c.side) => {
                triggers.rising.insert((c.trigger_price_ticks, c.order_id));
            }
            _ => {
                triggers.falling.insert((c.trigger_price_ticks, c.order_id));
            }
        }
    }

    /// Takes an order out (it fired or ended). Its own exits stay registered: an entry that fired
    /// lives on in the book under the same id.
    pub(crate) fn remove(&mut self, order_id: OrderId) -> AcceptedConditional {
        let c = self.orders.remove(&order_id).expect("removed conditional order is waiting");
        if c.oco_order_id != 0 {
            if let Some(peer) = self.orders.get_mut(&c.oco_order_id) {
                peer.oco_order_id = 0;
            }
        }
        if c.qty_lots > 0 {
            let triggers = &mut self.symbols[usize::from(c.symbol_id)];
            let removed = match c.trigger {
                TriggerKind::Delayed => self.delayed.remove(&(c.execute_at_ns, order_id)),
                TriggerKind::TrailingStop => {
                    let (book, trail) = triggers.trail_book(&c);
                    book.remove(order_id, trail)
                }
                _ if fires_rising(c.trigger, c.side) => triggers.rising.remove(&(c.trigger_price_ticks, order_id)),
                _ => triggers.falling.remove(&(c.trigger_price_ticks, order_id)),
            };
            assert!(removed, "conditional order {order_id} was not indexed");
        }
        c
    }

    /// An entry's fill of `qty_lots`: its exits grow by as much.
    pub(crate) fn on_parent_fill(&mut self, parent_order_id: OrderId, qty_lots: i64) {
        let Some(children) = self.children.get(&parent_order_id).copied() else {
            return;
        };
        for child_id in children {
            let Some(child) = self.orders.get_mut(&child_id) else {
                continue;
            };
            child.qty_lots += qty_lots;
            let child = *child;
            if child.qty_lots == qty_lots {
                self.index(&child, child.trigger_price_ticks);
            }
        }
    }

    /// An entry ended (filled, cancelled or refused when it fired).
    pub(crate) fn parent_ended(&mut self, parent_order_id: OrderId) {
        if !self.children.is_empty() {
            self.children.remove(&parent_order_id);
        }
    }

    /// Registers exits with their entries again after a restore; `is_live` says whether an entry
    /// is still open (in the book or waiting).
    pub(crate) fn rebuild_children(&mut self, is_live: impl Fn(OrderId) -> bool) -> Result<(), String> {
        self.children.clear();
        for c in self.orders.values() {
            if c.parent_order_id != 0 && is_live(c.parent_order_id) {
                let slots = self.children.entry(c.parent_order_id).or_default();
                let free = slots.iter_mut().find(|slot| **slot == 0);
                *free.ok_or_else(|| format!("entry {} has more than two exits", c.parent_order_id))? = c.order_id;
            }
        }
        Ok(())
    }

    /// Restores the entry an exit belongs to (a snapshot files exits before their links).
    pub(crate) fn set_parent(&mut self, order_id: OrderId, parent_order_id: OrderId) {
        if let Some(c) = self.orders.get_mut(&order_id) {
            c.parent_order_id = parent_order_id;
        }
    }

    /// A trade printed: trailing stops behind it move up to it. Called from `evolve` for every
    /// trade price (book fills and reference trades).
    pub(crate) fn observe_trade(&mut self, symbol_id: SymbolId, price_ticks: i64) {
        if self.orders.is_empty() {
            return;
        }
        for book in &mut self.symbols[usize::from(symbol_id)].trails {
            if book.len() > 0 {
                book.observe(price_ticks);
            }
        }
    }

    /// Whether any order of the symbol may fire (cheap, for the common case of none).
    pub(crate) fn has_triggers(&self, symbol_id: SymbolId) -> bool {
        !self.orders.is_empty()
            && self
                .symbols
                .get(usize::from(symbol_id))
                .is_some_and(|t| !t.rising.is_empty() || !t.falling.is_empty() || t.trails.iter().any(|b| b.len() > 0))
    }

    /// Whether any delayed order waits (cheap: every command asks).
    pub(crate) fn has_delayed(&self) -> bool {
        !self.delayed.is_empty()
    }

    /// The delayed orders due at `now_ns`, by execution time then id. Changes nothing.
    pub(crate) fn collect_due(&self, now_ns: i64, due: &mut Vec<OrderId>) {
        due.clear();
        due.extend(self.delayed.iter().take_while(|(execute_at_ns, _)| *execute_at_ns <= now_ns).map(|(_, id)| *id));
    }

    /// The orders a print at `price_ticks` fires, sorted by id (acceptance order). Changes nothing.
    pub(crate) fn collect(&self, symbol_id: SymbolId, price_ticks: i64, fired: &mut Vec<OrderId>) {
        fired.clear();
        let triggers = &self.symbols[usize::from(symbol_id)];
        fired.extend(triggers.rising.iter().take_while(|(trigger, _)| *trigger <= price_ticks).map(|(_, id)| *id));
        fired.extend(
            triggers.falling.iter().rev().take_while(|(trigger, _)| *trigger >= price_ticks).map(|(_, id)| *id),
        );
        for book in &triggers.trails {
            book.collect(price_ticks, fired);
        }
        fired.sort_unstable();
    }

    /// Each trailing stop's id and best price so far, in a layout-independent order (by id).
    pub(crate) fn trailing_bests(&self) -> Vec<(OrderId, i64)> {
        let mut bests = Vec::new();
        for triggers in &self.symbols {
            for book in &triggers.trails {
                book.for_each(|order_id, best_ticks, _| bests.push((order_id, best_ticks)));
            }
        }
        bests.sort_unstable();
        bests
    }

    /// That every waiting order is indexed exactly where it should be and the links agree.
    pub(crate) fn verify(&self) -> Result<(), String> {
        let (mut fixed, mut trailing) = (0usize, 0usize);
        for &(execute_at_ns, order_id) in &self.delayed {
            let c = self.orders.get(&order_id).ok_or(format!("delayed order {order_id} is not waiting"))?;
            if c.trigger != TriggerKind::Delayed || c.execute_at_ns != execute_at_ns || c.qty_lots <= 0 {
                return Err(format!("delayed order {order_id} is misfiled"));
            }
        }
        for (symbol_index, triggers) in self.symbols.iter().enumerate() {
            for (set, rising) in [(&triggers.rising, true), (&triggers.falling, false)] {
                for &(trigger, order_id) in set {
                    let c = self.orders.get(&order_id).ok_or(format!("indexed order {order_id} is not waiting"))?;
                    if (c.trigger_price_ticks, usize::from(c.symbol_id), fires_rising(c.trigger, c.side))
                        != (trigger, symbol_index, rising)
                        || c.trigger == TriggerKind::TrailingStop
                        || c.qty_lots <= 0
                    {
                        return Err(format!("conditional order {order_id} is misfiled"));
                    }
                    fixed += 1;
                }
            }
            for (index, book) in triggers.trails.iter().enumerate() {
                book.verify()?;
                let mut misfiled = None;
                book.for_each(|order_id, _, trail| {
                    let ok = self.orders.get(&order_id).is_some_and(|c| {
                        c.trigger == TriggerKind::TrailingStop
                            && usize::from(c.symbol_id) == symbol_index
                            && trail_index(c) == (index, trail)
                    });
                    if !ok {
                        misfiled = Some(order_id);
                    }
                });
                if let Some(order_id) = misfiled {
                    return Err(format!("trailing order {order_id} is misfiled"));
                }
                trailing += book.len();
            }
        }
        let indexed = self.orders.values().filter(|c| c.qty_lots > 0).count();
        if fixed + trailing + self.delayed.len() != indexed {
            let filed = fixed + trailing + self.delayed.len();
            return Err(format!("{indexed} conditional orders can fire but {filed} are indexed"));
        }
        for c in self.orders.values() {
            if c.trigger == TriggerKind::None || c.qty_lots < 0 {
                return Err(format!("conditional order {} is malformed", c.order_id));
            }
            if c.oco_order_id != 0 && self.orders.get(&c.oco_order_id).is_none_or(|p| p.oco_order_id != c.order_id) {
                return Err(format!("OCO link of order {} is one-sided", c.order_id));
            }
        }
        for (parent, children) in &self.children {
            for child in children.iter().filter(|&&id| id != 0) {
                if self.orders.get(child).is_some_and(|c| c.parent_order_id != *parent) {
                    return Err(format!("exit {child} is registered with entry {parent}, not its own"));
                }
            }
        }
        Ok(())
    }

    /// The live entries that have exits registered.
    pub(crate) fn parents(&self) -> impl Iterator<Item = OrderId> + '_ {
        self.children.keys().copied()
    }
}
