//! The shard state machine: `apply(command) -> events`, `replay(event)`, `state_hash()`,
//! `check_invariants()`.
//!
//! # Decide, then evolve
//! Every state change goes through one function, [`Engine::evolve`], which applies one event. Live
//! processing *decides* (validates a command, runs risk checks, walks the book) and emits events;
//! each emitted event is evolved at once, so the next decision sees its effect. Replay evolves
//! journaled events without deciding anything. Live and replayed state therefore cannot drift apart:
//! they are produced by the same code from the same events. The only difference is the ledger: a
//! reservation that live processing obtained with a checked `try_reserve` is re-applied with
//! `force_reserve` on replay (`Mode`).
//!
//! # Matching
//! An accepted order joins its side of the book at once (at the tail of its level), then trades
//! against the opposite side while prices cross; a remainder that may not rest (IOC, FOK, market)
//! is then cancelled. Between commands the book is never crossed. Trades happen at the resting
//! order's price. Depending on the instrument's liquidity mode an order also trades with simulated
//! liquidity derived from reference prices, and reference trades fill resting orders they go
//! through; those decisions live in `sim` (see `docs/simulation.md`).
//!
//! # Determinism
//! No clock (time is `Command::timestamp_ns`, asserted monotonic), no randomness, no iteration over a
//! hash map where order could reach an event or the state hash.

mod triggers;

use crate::book::{FastBook, LevelView, OrderBook};
use crate::command::{Command, CommandBody, NewOrder};
use crate::conditional::ConditionalBook;
use crate::event::{AcceptedConditional, AcceptedOrder, CancelReason, Event, EventBody, Fill, RejectReason};
use crate::instrument::{Instrument, InstrumentTable};
use crate::ledger::{Account, Ledger, LocalLedger, CASH_MICROS_MAX};
use crate::order::{Handle, Order, OrderStore, NIL};
use crate::position::Position;
use crate::risk::RiskLimits;
use crate::sim::{LiquidityMode, MarketState, SIMULATED_ORDER_ID};
use crate::types::{
    ClientOrderId, OrderId, OrderKind, PortfolioId, SelfTradePolicy, Side, SymbolId, TimeInForce, TriggerKind,
    BASIS_POINTS_PER_UNIT, NANOS_PER_DAY,
};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Portfolio id used in rejections of commands that name no portfolio.
pub const NO_PORTFOLIO: PortfolioId = PortfolioId::MAX;
/// Order ids carry the shard id in their top 16 bits, so they are unique across shards.
pub const ORDER_ID_SHARD_SHIFT: u32 = 48;
pub(crate) const ORDER_COUNTER_MASK: u64 = (1 << ORDER_ID_SHARD_SHIFT) - 1;

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub shard_id: u16,
    /// The most open orders this shard holds; a new order beyond it is rejected `book_full`.
    pub orders_max: u32,
    /// Applied when an order asks for `SelfTradePolicy::Default`.
    pub self_trade_policy: SelfTradePolicy,
    /// Limits of a new portfolio.
    pub default_limits: RiskLimits,
    /// The symbols this shard owns; `None` owns every instrument.
    pub owned_symbols: Option<Vec<SymbolId>>,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            shard_id: 0,
            orders_max: 1 << 20,
            self_trade_policy: SelfTradePolicy::CancelResting,
            default_limits: RiskLimits::default(),
            owned_symbols: None,
        }
    }
}

/// How `check_new_order` treats an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CheckMode {
    /// A new order for the book: every check, and the reservation is kept.
    Book,
    /// A conditional order being accepted: the checks that do not depend on where the price will
    /// be when it fires (no band, no post-only), and the reservation is given back at once.
    Conditional,
    /// A conditional order firing: every check except the duplicate client id (it is its own), and
    /// it keeps its order id.
    Fire(OrderId),
}

/// Whether ledger reservations are being decided (live) or re-applied from events (replay).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Live,
    Replay,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SymbolState {
    pub(crate) owned: bool,
    pub(crate) halted: bool,
    /// 0 when unknown.
    pub(crate) reference_ticks: i64,
    /// 0 before the first trade.
    pub(crate) last_trade_ticks: i64,
    /// The outside market as the reference feed describes it (see `sim`).
    pub(crate) market: MarketState,
}

/// One shard's matching engine, risk checks and positions.
///
/// The fields are visible to the crate for one reason: `snapshot` builds an engine from a snapshot
/// (construction, like `with_ledger`). After construction, state changes only in `evolve`.
pub struct Engine<B: OrderBook = FastBook, L: Ledger = LocalLedger> {
    pub(crate) config: EngineConfig,
    pub(crate) instruments: InstrumentTable,
    pub(crate) symbols: Vec<SymbolState>,
    pub(crate) books: Vec<B>,
    pub(crate) orders: OrderStore,
    pub(crate) positions: FxHashMap<(PortfolioId, SymbolId), Position>,
    /// Head of each portfolio's list of open orders in this shard, indexed by portfolio id.
    pub(crate) portfolio_heads: Vec<Handle>,
    pub(crate) client_order_ids: FxHashMap<(PortfolioId, ClientOrderId), OrderId>,
    /// (expiry, order id) of DAY and GTD orders; entries of orders gone are skipped when popped.
    pub(crate) expiries: BinaryHeap<Reverse<(i64, OrderId)>>,
    pub(crate) ledger: L,
    pub(crate) last_seq: u64,
    pub(crate) last_timestamp_ns: i64,
    pub(crate) order_counter: u64,
    pub(crate) last_trade_id: u64,
    /// Timestamp of the event being emitted or replayed.
    pub(crate) now_ns: i64,
    /// Conditional orders waiting for their trigger, and order links.
    pub(crate) conditionals: ConditionalBook,
    /// Scratch for the orders one print fires (decide only, not state).
    fired_scratch: Vec<OrderId>,
    /// A trigger loop is running (decide only): fills inside it do not start another.
    triggering: bool,
}

impl Engine<FastBook, LocalLedger> {
    /// An engine with the fast book and its own ledger.
    pub fn new(config: EngineConfig, instruments: InstrumentTable) -> Self {
        Engine::with_ledger(config, instruments, LocalLedger::new())
    }
}

impl<B: OrderBook, L: Ledger> Engine<B, L> {
    pub fn with_ledger(config: EngineConfig, instruments: InstrumentTable, ledger: L) -> Self {
        let orders_max = config.orders_max as usize;
        let instruments_len = instruments.len();
        let mut symbols = vec![SymbolState::default(); instruments.len()];
        match &config.owned_symbols {
            None => symbols.iter_mut().for_each(|s| s.owned = true),
            Some(owned) => {
                for &symbol_id in owned {
                    symbols[usize::from(symbol_id)].owned = true;
                }
            }
        }
        let books = (0..instruments.len())
            .map(|i| if symbols[i].owned { B::with_capacity(orders_max) } else { B::with_capacity(0) })
            .collect();
        let mut positions = FxHashMap::default();
        positions.reserve(4096);
        let mut client_order_ids = FxHashMap::default();
        client_order_ids.reserve(orders_max.min(1 << 16));
        Engine {
            config,
            instruments,
            symbols,
            books,
            orders: OrderStore::with_capacity(orders_max),
            positions,
            portfolio_heads: Vec::new(),
            client_order_ids,
            expiries: BinaryHeap::with_capacity(orders_max.min(1 << 16)),
            ledger,
            last_seq: 0,
            last_timestamp_ns: i64::MIN,
            order_counter: 0,
            last_trade_id: 0,
            now_ns: 0,
            conditionals: ConditionalBook::new(instruments_len),
            fired_scratch: Vec::new(),
            triggering: false,
        }
    }

    // ----------------------------------------------------------------------------------------
    // Queries
    // ----------------------------------------------------------------------------------------

    pub fn instruments(&self) -> &InstrumentTable {
        &self.instruments
    }

    pub fn ledger(&self) -> &L {
        &self.ledger
    }

    pub fn shard_id(&self) -> u16 {
        self.config.shard_id
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn account(&self, portfolio_id: PortfolioId) -> Option<Account> {
        self.ledger.account(portfolio_id)
    }

    pub fn position(&self, portfolio_id: PortfolioId, symbol_id: SymbolId) -> Position {
        self.positions.get(&(portfolio_id, symbol_id)).copied().unwrap_or_default()
    }

    /// Every (portfolio, symbol) with a position or open orders, sorted.
    pub fn positions(&self) -> Vec<((PortfolioId, SymbolId), Position)> {
        let mut all: Vec<_> = self.positions.iter().map(|(k, v)| (*k, *v)).collect();
        all.sort_unstable_by_key(|(k, _)| *k);
        all
    }

    pub fn order(&self, order_id: OrderId) -> Option<&Order> {
        self.orders.find(order_id).map(|h| self.orders.get(h))
    }

    pub fn open_order_count(&self) -> usize {
        self.orders.len()
    }

    /// A conditional order waiting for its trigger.
    pub fn conditional_order(&self, order_id: OrderId) -> Option<AcceptedConditional> {
        self.conditionals.get(order_id).copied()
    }

    /// Every conditional order waiting for its trigger, by id.
    pub fn conditional_orders(&self) -> Vec<AcceptedConditional> {
        self.conditionals.iter().copied().collect()
    }

    /// A waiting trailing stop's current stop price.
    pub fn trailing_stop_ticks(&self, order_id: OrderId) -> Option<i64> {
        self.conditionals.trailing_stop_ticks(order_id)
    }

    /// Up to `depth` levels of one side, best first.
    pub fn levels(&self, symbol_id: SymbolId, side: Side, depth: usize) -> Vec<LevelView> {
        let mut levels = Vec::new();
        if let Some(book) = self.books.get(usize::from(symbol_id)) {
            book.levels(side, |level| {
                levels.push(level);
                levels.len() < depth
            });
        }
        levels
    }

    /// The open orders of one side in priority order.
    pub fn book_orders(&self, symbol_id: SymbolId, side: Side) -> Vec<Order> {
        let mut orders = Vec::new();
        self.books[usize::from(symbol_id)].scan(side, |_, handle| {
            orders.push(*self.orders.get(handle));
            true
        });
        orders
    }

    pub fn best_price(&self, symbol_id: SymbolId, side: Side) -> Option<i64> {
        self.books.get(usize::from(symbol_id))?.best(side).map(|(price, _)| price)
    }

    /// The price band's anchor: the last `SetReferencePrice` or reference trade; else the reference
    /// quote's mid; else the last trade in the book.
    pub fn reference_price(&self, symbol_id: SymbolId) -> Option<i64> {
        let state = self.symbols.get(usize::from(symbol_id))?;
        match (state.reference_ticks, state.market.mark_ticks(), state.last_trade_ticks) {
            (0, None, 0) => None,
            (0, None, last) => Some(last),
            (0, Some(mark), _) => Some(mark),
            (reference, _, _) => Some(reference),
        }
    }

    /// What this shard knows of the outside market in a symbol (see `sim`).
    pub fn market(&self, symbol_id: SymbolId) -> Option<MarketState> {
        self.symbols.get(usize::from(symbol_id)).map(|s| s.market)
    }

    // ----------------------------------------------------------------------------------------
    // Live processing
    // ----------------------------------------------------------------------------------------

    /// Applies one command and appends its events to `out` (which the caller owns and clears).
    pub fn apply(&mut self, command: &Command, out: &mut Vec<Event>) {
        assert!(
            command.timestamp_ns >= self.last_timestamp_ns,
            "time went backwards: {} after {}",
            command.timestamp_ns,
            self.last_timestamp_ns
        );
        self.last_timestamp_ns = command.timestamp_ns;
        self.now_ns = command.timestamp_ns;
        self.expire_due(out);
        self.execute_due(out);
        match command.body {
            CommandBody::CreatePortfolio { portfolio_id, cash_micros } => {
                self.decide_create_portfolio(portfolio_id, cash_micros, out)
            }
            CommandBody::AdjustCash { portfolio_id, delta_micros } => {
                self.decide_adjust_cash(portfolio_id, delta_micros, out)
            }
            CommandBody::SetRiskLimits { portfolio_id, limits } => {
                if self.ledger.account(portfolio_id).is_none() {
                    self.reject(out, portfolio_id, 0, ClientOrderId::NONE, RejectReason::UnknownPortfolio)
                } else if !limits.is_valid() {
                    self.reject(out, portfolio_id, 0, ClientOrderId::NONE, RejectReason::InvalidAmount)
                } else {
                    self.emit(out, EventBody::RiskLimitsSet { portfolio_id, limits })
                }
            }
            CommandBody::NewOrder(order) => self.decide_new_order(&order, out),
            CommandBody::NewBracket {
                entry,
                take_profit_price_ticks,
                stop_loss_trigger_ticks,
                stop_loss_limit_ticks,
            } => self.decide_bracket(
                &entry,
                take_profit_price_ticks,
                stop_loss_trigger_ticks,
                stop_loss_limit_ticks,
                out,
            ),
            CommandBody::Cancel { portfolio_id, order_id } => match self.owned_order(portfolio_id, order_id) {
                Some(handle) => self.cancel(out, handle, CancelReason::User),
                None if self.owned_conditional(portfolio_id, order_id) => {
                    self.cancel_conditional(out, order_id, CancelReason::User)
                }
                None => self.reject(out, portfolio_id, order_id, ClientOrderId::NONE, RejectReason::UnknownOrder),
            },
            CommandBody::Replace { portfolio_id, order_id, price_ticks, qty_lots } => {
                self.decide_replace(portfolio_id, order_id, price_ticks, qty_lots, out)
            }
            CommandBody::MassCancel { portfolio_id, symbol_id } => {
                self.decide_mass_cancel(portfolio_id, symbol_id, out)
            }
            CommandBody::SetReferencePrice { symbol_id, price_ticks } => {
                if !self.owns(symbol_id) {
                    self.reject(out, NO_PORTFOLIO, 0, ClientOrderId::NONE, RejectReason::UnknownSymbol)
                } else if price_ticks <= 0 {
                    self.reject(out, NO_PORTFOLIO, 0, ClientOrderId::NONE, RejectReason::PriceNotPositive)
                } else {
                    self.emit(out, EventBody::ReferencePriceSet { symbol_id, price_ticks });
                    self.on_trade_price(symbol_id, price_ticks, out);
                }
            }
            CommandBody::SetHalted { symbol_id, halted } => {
                if self.owns(symbol_id) {
                    self.emit(out, EventBody::HaltedSet { symbol_id, halted })
                } else {
                    self.reject(out, NO_PORTFOLIO, 0, ClientOrderId::NONE, RejectReason::UnknownSymbol)
                }
            }
            CommandBody::ReferenceQuote { symbol_id, bid_price_ticks, bid_qty_lots, ask_price_ticks, ask_qty_lots } => {
                self.decide_reference_quote(
                    symbol_id,
                    [bid_price_ticks, bid_qty_lots, ask_price_ticks, ask_qty_lots],
                    out,
                )
            }
            CommandBody::ReferenceTrade { symbol_id, price_ticks, qty_lots } => {
                self.decide_reference_trade(symbol_id, price_ticks, qty_lots, out)
            }
            CommandBody::AdvanceTime => {}
        }
        self.compact_expiries();
    }

    pub(crate) fn owns(&self, symbol_id: SymbolId) -> bool {
        self.symbols.get(usize::from(symbol_id)).is_some_and(|s| s.owned)
    }

    pub(crate) fn instrument(&self, symbol_id: SymbolId) -> &Instrument {
        self.instruments.get(symbol_id).expect("symbol id checked before use")
    }

    fn owned_order(&self, portfolio_id: PortfolioId, order_id: OrderId) -> Option<Handle> {
        let handle = self.orders.find(order_id)?;
        // A portfolio never learns that another portfolio's order exists.
        (self.orders.get(handle).portfolio_id == portfolio_id).then_some(handle)
    }

    fn owned_conditional(&self, portfolio_id: PortfolioId, order_id: OrderId) -> bool {
        self.conditionals.get(order_id).is_some_and(|c| c.portfolio_id == portfolio_id)
    }

    pub(crate) fn emit(&mut self, out: &mut Vec<Event>, body: EventBody) {
        let event = Event { seq: self.last_seq + 1, timestamp_ns: self.now_ns, body };
        self.evolve(&event, Mode::Live);
        out.push(event);
    }

    pub(crate) fn reject(
        &mut self,
        out: &mut Vec<Event>,
        portfolio_id: PortfolioId,
        order_id: OrderId,
        client_order_id: ClientOrderId,
        reason: RejectReason,
    ) {
        self.emit(out, EventBody::Rejected { portfolio_id, order_id, client_order_id, reason });
    }

    pub(crate) fn cancel(&mut self, out: &mut Vec<Event>, handle: Handle, reason: CancelReason) {
        let order = self.orders.get(handle);
        let order_id = order.order_id;
        let body = EventBody::OrderCancelled {
            order_id,
            portfolio_id: order.portfolio_id,
            symbol_id: order.symbol_id,
            qty_lots: order.open_lots,
            reason,
        };
        let children = self.conditionals.children_of(order_id);
        self.emit(out, body);
        self.cancel_unfilled_children(out, children);
    }

    /// Cancels a waiting conditional order, then its OCO peer and the exits that never got a lot.
    fn cancel_conditional(&mut self, out: &mut Vec<Event>, order_id: OrderId, reason: CancelReason) {
        let c = *self.conditionals.get(order_id).expect("cancelled conditional order is waiting");
        let children = self.conditionals.children_of(order_id);
        self.emit(
            out,
            EventBody::OrderCancelled {
                order_id,
                portfolio_id: c.portfolio_id,
                symbol_id: c.symbol_id,
                qty_lots: c.qty_lots,
                reason,
            },
        );
        if c.oco_order_id != 0 && self.conditionals.get(c.oco_order_id).is_some() {
            self.cancel_conditional(out, c.oco_order_id, CancelReason::Linked);
        }
        self.cancel_unfilled_children(out, children);
    }

    /// An entry ended: exits that never got a lot have nothing to protect. Exits that did stay,
    /// sized to what the entry filled.
    fn cancel_unfilled_children(&mut self, out: &mut Vec<Event>, children: [OrderId; 2]) {
        for child_id in children {
            if self.conditionals.get(child_id).is_some_and(|c| c.qty_lots == 0) {
                self.cancel_conditional(out, child_id, CancelReason::ParentClosed);
            }
        }
    }

    fn expire_due(&mut self, out: &mut Vec<Event>) {
        while let Some(&Reverse((expire_at_ns, order_id))) = self.expiries.peek() {
            if expire_at_ns > self.now_ns {
                break;
            }
            self.expiries.pop();
            if let Some(handle) = self.orders.find(order_id) {
                if self.orders.get(handle).expire_at_ns == expire_at_ns {
                    self.cancel(out, handle, CancelReason::Expired);
                }
            } else if self.conditionals.get(order_id).is_some_and(|c| c.expire_at_ns == expire_at_ns) {
                self.cancel_conditional(out, order_id, CancelReason::Expired);
            }
        }
    }

    /// Drops entries of orders that are gone once they outnumber the live ones, so the heap stays
    /// bounded under cancel churn without allocating.
    fn compact_expiries(&mut self) {
        if self.expiries.len() > 2 * (self.orders.len() + self.conditionals.len()) + 1024 {
            let (orders, conditionals) = (&self.orders, &self.conditionals);
            self.expiries.retain(|Reverse((expire_at_ns, order_id))| {
                orders.find(*order_id).is_some_and(|h| orders.get(h).expire_at_ns == *expire_at_ns)
                    || conditionals.get(*order_id).is_some_and(|c| c.expire_at_ns == *expire_at_ns)
            });
        }
    }

    fn decide_create_portfolio(&mut self, portfolio_id: PortfolioId, cash_micros: i64, out: &mut Vec<Event>) {
        if !(0..=CASH_MICROS_MAX).contains(&cash_micros)
            || portfolio_id == NO_PORTFOLIO
            || portfolio_id as usize >= crate::ledger::PORTFOLIOS_MAX
        {
            return self.reject(out, portfolio_id, 0, ClientOrderId::NONE, RejectReason::InvalidAmount);
        }
        if self.ledger.account(portfolio_id).is_some() {
            return self.reject(out, portfolio_id, 0, ClientOrderId::NONE, RejectReason::PortfolioExists);
        }
        self.emit(out, EventBody::PortfolioCreated { portfolio_id, cash_micros });
    }

    fn decide_adjust_cash(&mut self, portfolio_id: PortfolioId, delta_micros: i64, out: &mut Vec<Event>) {
        if self.ledger.account(portfolio_id).is_none() {
            return self.reject(out, portfolio_id, 0, ClientOrderId::NONE, RejectReason::UnknownPortfolio);
        }
        let cash_micros = self.ledger.account(portfolio_id).map_or(0, |a| a.cash_micros);
        if delta_micros == 0 || cash_micros.saturating_add(delta_micros) > CASH_MICROS_MAX {
            return self.reject(out, portfolio_id, 0, ClientOrderId::NONE, RejectReason::InvalidAmount);
        }
        if !self.ledger.try_adjust_cash(portfolio_id, delta_micros) {
            return self.reject(out, portfolio_id, 0, ClientOrderId::NONE, RejectReason::InsufficientCash);
        }
        self.emit(out, EventBody::CashAdjusted { portfolio_id, delta_micros });
    }

    /// Validates a new order; on success returns what the `OrderAccepted` event will carry, with
    /// the ledger's reservation and open-order count already taken.
    fn check_new_order(&mut self, new: &NewOrder, mode: CheckMode) -> Result<AcceptedOrder, RejectReason> {
        let account = self.ledger.account(new.portfolio_id).ok_or(RejectReason::UnknownPortfolio)?;
        if !self.owns(new.symbol_id) {
            return Err(RejectReason::UnknownSymbol);
        }
        let state = self.symbols[usize::from(new.symbol_id)];
        if state.halted {
            return Err(RejectReason::SymbolHalted);
        }
        let instrument = self.instrument(new.symbol_id);
        if new.qty_lots <= 0 {
            return Err(RejectReason::QuantityNotPositive);
        }
        if new.qty_lots < instrument.qty_min_lots {
            return Err(RejectReason::QuantityBelowMinimum);
        }
        if new.qty_lots > instrument.qty_max_lots {
            return Err(RejectReason::QuantityTooLarge);
        }
        if new.post_only && (new.kind == OrderKind::Market || !new.time_in_force.rests()) {
            return Err(RejectReason::InvalidTimeInForce);
        }
        let expire_at_ns = match (new.kind, new.time_in_force) {
            (OrderKind::Market, _) => i64::MAX,
            (_, TimeInForce::Day) => instrument.next_session_close_ns(self.now_ns),
            (_, TimeInForce::Gtd) if new.expire_at_ns <= self.now_ns => return Err(RejectReason::ExpireTimeInPast),
            (_, TimeInForce::Gtd) => new.expire_at_ns,
            _ => i64::MAX,
        };
        let opposite_best = self.books[usize::from(new.symbol_id)].best(new.side.opposite()).map(|(p, _)| p);
        let reference = self.reference_price(new.symbol_id);
        let price_ticks = match new.kind {
            OrderKind::Limit => {
                if new.price_ticks <= 0 {
                    return Err(RejectReason::PriceNotPositive);
                }
                if let Some(reference) = reference.filter(|_| mode != CheckMode::Conditional) {
                    if !instrument.within_band(new.price_ticks, reference) {
                        return Err(RejectReason::PriceOutsideBand);
                    }
                }
                if new.post_only && opposite_best.is_some_and(|best| new.side.crosses(new.price_ticks, best)) {
                    return Err(RejectReason::PostOnlyWouldTake);
                }
                new.price_ticks
            }
            // A market order may trade up to the band edge around the reference (or, with no
            // reference yet, around the opposite touch); with neither it cannot trade at all.
            OrderKind::Market => match reference.or(opposite_best) {
                Some(anchor) => instrument.band_edge_ticks(anchor, new.side == Side::Buy),
                None => 1,
            },
        };
        if !new.client_order_id.is_none()
            && !matches!(mode, CheckMode::Fire(_))
            && self.client_order_ids.contains_key(&(new.portfolio_id, new.client_order_id))
        {
            return Err(RejectReason::DuplicateClientOrderId);
        }
        let notional_micros =
            instrument.notional_ceil_micros(price_ticks, new.qty_lots).ok_or(RejectReason::QuantityTooLarge)?;
        if notional_micros > account.limits.order_notional_max_micros {
            return Err(RejectReason::OrderNotionalTooLarge);
        }
        let position = self.position(new.portfolio_id, new.symbol_id);
        let (reserved_lots, reduces_risk) = match new.side {
            Side::Buy => {
                if position.qty_lots + position.open_buy_lots + new.qty_lots > instrument.position_max_lots {
                    return Err(RejectReason::PositionLimitExceeded);
                }
                (0, position.qty_lots < 0 && position.open_buy_lots + new.qty_lots <= -position.qty_lots)
            }
            Side::Sell => {
                let reserved_lots = new.qty_lots.min(position.free_long_lots());
                if reserved_lots < new.qty_lots && !instrument.short_allowed {
                    return Err(RejectReason::ShortNotAllowed);
                }
                if position.qty_lots - position.open_sell_lots - new.qty_lots < -instrument.position_max_lots {
                    return Err(RejectReason::PositionLimitExceeded);
                }
                (reserved_lots, reserved_lots == new.qty_lots)
            }
        };
        if !reduces_risk {
            let day = self.now_ns.div_euclid(NANOS_PER_DAY);
            if account.daily_loss_micros(day) >= account.limits.daily_loss_max_micros {
                return Err(RejectReason::DailyLossLimitBreached);
            }
            if account.gross_exposure_micros.saturating_add(notional_micros) > account.limits.gross_exposure_max_micros
            {
                return Err(RejectReason::GrossExposureExceeded);
            }
        }
        let full = match mode {
            CheckMode::Conditional => self.conditionals.len() >= self.config.orders_max as usize,
            CheckMode::Book | CheckMode::Fire(_) => self.orders.is_full(),
        };
        if full {
            return Err(RejectReason::BookFull);
        }
        let reserved_cash_micros = required_cash(instrument, new.side, price_ticks, new.qty_lots, reserved_lots);
        if !self.ledger.try_open_order(new.portfolio_id) {
            return Err(RejectReason::OpenOrdersLimitExceeded);
        }
        if !self.ledger.try_reserve(new.portfolio_id, reserved_cash_micros) {
            self.ledger.close_order(new.portfolio_id);
            return Err(RejectReason::InsufficientBuyingPower);
        }
        if mode == CheckMode::Conditional {
            // Checked, not held: a conditional order reserves when it fires.
            self.ledger.release(new.portfolio_id, reserved_cash_micros);
            self.ledger.close_order(new.portfolio_id);
        }
        Ok(AcceptedOrder {
            order_id: match mode {
                CheckMode::Fire(order_id) => order_id,
                CheckMode::Book | CheckMode::Conditional => self.next_order_id(),
            },
            portfolio_id: new.portfolio_id,
            symbol_id: new.symbol_id,
            side: new.side,
            kind: new.kind,
            price_ticks,
            qty_lots: new.qty_lots,
            time_in_force: if new.kind == OrderKind::Market && new.time_in_force != TimeInForce::Fok {
                TimeInForce::Ioc
            } else {
                new.time_in_force
            },
            expire_at_ns,
            client_order_id: new.client_order_id,
            post_only: new.post_only,
            self_trade_policy: match new.self_trade_policy {
                SelfTradePolicy::Default => self.config.self_trade_policy,
                policy => policy,
            },
            reserved_cash_micros,
            reserved_lots,
        })
    }

    fn next_order_id(&self) -> OrderId {
        (u64::from(self.config.shard_id) << ORDER_ID_SHARD_SHIFT) | (self.order_counter + 1)
    }

    fn decide_new_order(&mut self, new: &NewOrder, out: &mut Vec<Event>) {
        let Some(order_id) = self.accept_new(new, out) else { return };
        // A conditional or delayed order waits off-book; a book order trades now.
        if let Some(handle) = self.orders.find(order_id) {
            self.match_incoming(out, handle);
        }
    }

    /// Accepts a new order the way it asks to be taken, or rejects it: a conditional order waits
    /// for its trigger, a book order of an instrument with a latency model waits for its execution
    /// time, any other book order joins the book (its matching is the caller's). Returns the id of
    /// the accepted order.
    fn accept_new(&mut self, new: &NewOrder, out: &mut Vec<Event>) -> Option<OrderId> {
        let waiting = |c: AcceptedConditional| (c.order_id, EventBody::ConditionalAccepted(c));
        let accepted = if new.trigger != TriggerKind::None {
            self.check_conditional(new).map(waiting)
        } else if self.delays(new.symbol_id) {
            self.check_delayed(new).map(waiting)
        } else {
            self.check_new_order(new, CheckMode::Book).map(|a| (a.order_id, EventBody::OrderAccepted(a)))
        };
        match accepted {
            Ok((order_id, body)) => {
                self.emit(out, body);
                Some(order_id)
            }
            Err(reason) => {
                self.reject(out, new.portfolio_id, 0, new.client_order_id, reason);
                None
            }
        }
    }

    /// Trades an order that has just joined the book (or moved in it) against the opposite side and
    /// simulated liquidity (per the instrument's liquidity mode), then cancels a remainder that may
    /// not rest; then lets the last trade price fire triggers.
    ///
    /// In `hybrid` mode the book is taken first at prices at least as good as the simulated touch,
    /// then simulated liquidity, then the rest of the book; in `simulated` mode simulated liquidity
    /// first, then the book (so that a remainder never rests crossed); in `book` mode, and for FOK
    /// orders, only the book.
    fn match_incoming(&mut self, out: &mut Vec<Event>, handle: Handle) {
        let (trade_id_before, symbol_id) = (self.last_trade_id, self.orders.get(handle).symbol_id);
        self.match_incoming_book(out, handle);
        if self.last_trade_id != trade_id_before {
            let price_ticks = self.symbols[usize::from(symbol_id)].last_trade_ticks;
            self.on_trade_price(symbol_id, price_ticks, out);
        }
    }

    fn match_incoming_book(&mut self, out: &mut Vec<Event>, handle: Handle) {
        let taker = *self.orders.get(handle);
        if taker.time_in_force == TimeInForce::Fok && !self.fok_fillable(&taker) {
            return self.cancel(out, handle, CancelReason::FokUnfillable);
        }
        let mut exhausted = false;
        match self.simulated_touch(&taker) {
            None => {
                if !self.match_book(out, handle, None) {
                    return;
                }
            }
            Some((mode, touch)) => {
                if mode == LiquidityMode::Hybrid && !self.match_book(out, handle, Some(touch.price_ticks)) {
                    return;
                }
                exhausted = self.match_simulated(out, handle, touch);
                if !self.match_book(out, handle, None) {
                    return;
                }
            }
        }
        if self.orders.get(handle).open_lots == 0 {
            return;
        }
        let reason = match (taker.kind, taker.time_in_force) {
            (_, TimeInForce::Ioc) if exhausted => CancelReason::LiquidityExhausted,
            (OrderKind::Market, _) => CancelReason::NoLiquidity,
            (_, TimeInForce::Ioc) => CancelReason::IocRemainder,
            (_, TimeInForce::Fok) => unreachable!("a fillable FOK order fills completely"),
            _ => return,
        };
        self.cancel(out, handle, reason);
    }

    /// Trades against the opposite side of the book while prices cross (and, with `price_cap_ticks`,
    /// are at least as good as it). Returns false if self-trade prevention cancelled the order.
    fn match_book(&mut self, out: &mut Vec<Event>, handle: Handle, price_cap_ticks: Option<i64>) -> bool {
        let taker = *self.orders.get(handle);
        let book_index = usize::from(taker.symbol_id);
        let instrument_fees = {
            let instrument = self.instrument(taker.symbol_id);
            (instrument.maker_fee_bps, instrument.taker_fee_bps)
        };
        loop {
            let open_lots = self.orders.get(handle).open_lots;
            if open_lots == 0 {
                return true;
            }
            let Some((price_ticks, maker_handle)) = self.books[book_index].best(taker.side.opposite()) else {
                return true;
            };
            if !taker.side.crosses(taker.price_ticks, price_ticks)
                || price_cap_ticks.is_some_and(|cap| !taker.side.crosses(cap, price_ticks))
            {
                return true;
            }
            let maker = *self.orders.get(maker_handle);
            if maker.portfolio_id == taker.portfolio_id && taker.self_trade_policy != SelfTradePolicy::Allow {
                match taker.self_trade_policy {
                    SelfTradePolicy::CancelIncoming => {
                        self.cancel(out, handle, CancelReason::SelfTrade);
                        return false;
                    }
                    SelfTradePolicy::CancelBoth => {
                        self.cancel(out, maker_handle, CancelReason::SelfTrade);
                        self.cancel(out, handle, CancelReason::SelfTrade);
                        return false;
                    }
                    SelfTradePolicy::CancelResting | SelfTradePolicy::Default | SelfTradePolicy::Allow => {
                        self.cancel(out, maker_handle, CancelReason::SelfTrade);
                        continue;
                    }
                }
            }
            let qty_lots = open_lots.min(maker.open_lots);
            let notional_micros = self
                .instrument(taker.symbol_id)
                .notional_floor_micros(price_ticks, qty_lots)
                .expect("a trade is smaller than the orders that were checked");
            let fill = Fill {
                trade_id: self.last_trade_id + 1,
                symbol_id: taker.symbol_id,
                maker_order_id: maker.order_id,
                maker_portfolio_id: maker.portfolio_id,
                taker_order_id: taker.order_id,
                taker_portfolio_id: taker.portfolio_id,
                taker_side: taker.side,
                price_ticks,
                qty_lots,
                notional_micros,
                maker_fee_micros: fee_micros(notional_micros, instrument_fees.0),
                taker_fee_micros: fee_micros(notional_micros, instrument_fees.1),
            };
            self.emit(out, EventBody::Fill(fill));
        }
    }

    /// Whether a FOK order can fill completely now, counting only what self-trade prevention lets
    /// it trade with.
    fn fok_fillable(&self, taker: &Order) -> bool {
        let stops_at_self =
            matches!(taker.self_trade_policy, SelfTradePolicy::CancelIncoming | SelfTradePolicy::CancelBoth);
        let mut available_lots = 0i64;
        let orders = &self.orders;
        self.books[usize::from(taker.symbol_id)].scan(taker.side.opposite(), |price_ticks, handle| {
            if !taker.side.crosses(taker.price_ticks, price_ticks) {
                return false;
            }
            let resting = orders.get(handle);
            if resting.portfolio_id == taker.portfolio_id {
                return !stops_at_self;
            }
            available_lots += resting.open_lots;
            available_lots < taker.open_lots
        });
        available_lots >= taker.open_lots
    }

    fn decide_replace(
        &mut self,
        portfolio_id: PortfolioId,
        order_id: OrderId,
        price_ticks: i64,
        qty_lots: i64,
        out: &mut Vec<Event>,
    ) {
        if self.owned_conditional(portfolio_id, order_id) {
            let client_order_id = self.conditionals.get(order_id).map_or(ClientOrderId::NONE, |c| c.client_order_id);
            return self.reject(out, portfolio_id, order_id, client_order_id, RejectReason::NotReplaceable);
        }
        match self.check_replace(portfolio_id, order_id, price_ticks, qty_lots) {
            Err(reason) => {
                let client_order_id = self.order(order_id).map_or(ClientOrderId::NONE, |o| o.client_order_id);
                let client_order_id =
                    if reason == RejectReason::UnknownOrder { ClientOrderId::NONE } else { client_order_id };
                self.reject(out, portfolio_id, order_id, client_order_id, reason)
            }
            Ok((handle, priority_kept, reserved_cash_micros)) => {
                let symbol_id = self.orders.get(handle).symbol_id;
                self.emit(
                    out,
                    EventBody::OrderReplaced {
                        order_id,
                        portfolio_id,
                        symbol_id,
                        price_ticks,
                        qty_lots,
                        priority_kept,
                        reserved_cash_micros,
                    },
                );
                if !priority_kept {
                    self.match_incoming(out, handle);
                }
            }
        }
    }

    fn check_replace(
        &mut self,
        portfolio_id: PortfolioId,
        order_id: OrderId,
        price_ticks: i64,
        qty_lots: i64,
    ) -> Result<(Handle, bool, i64), RejectReason> {
        let handle = self.owned_order(portfolio_id, order_id).ok_or(RejectReason::UnknownOrder)?;
        let order = *self.orders.get(handle);
        let instrument = self.instrument(order.symbol_id);
        if self.symbols[usize::from(order.symbol_id)].halted {
            return Err(RejectReason::SymbolHalted);
        }
        if qty_lots <= 0 {
            return Err(RejectReason::QuantityNotPositive);
        }
        if qty_lots < instrument.qty_min_lots {
            return Err(RejectReason::QuantityBelowMinimum);
        }
        if qty_lots > instrument.qty_max_lots {
            return Err(RejectReason::QuantityTooLarge);
        }
        if price_ticks <= 0 {
            return Err(RejectReason::PriceNotPositive);
        }
        if price_ticks == order.price_ticks && qty_lots == order.open_lots {
            return Err(RejectReason::ReplaceNoChange);
        }
        if let Some(reference) = self.reference_price(order.symbol_id) {
            if !instrument.within_band(price_ticks, reference) {
                return Err(RejectReason::PriceOutsideBand);
            }
        }
        let opposite_best = self.best_price(order.symbol_id, order.side.opposite());
        if order.post_only && opposite_best.is_some_and(|best| order.side.crosses(price_ticks, best)) {
            return Err(RejectReason::PostOnlyWouldTake);
        }
        let account = self.ledger.account(portfolio_id).expect("an order's portfolio exists");
        let notional_micros =
            instrument.notional_ceil_micros(price_ticks, qty_lots).ok_or(RejectReason::QuantityTooLarge)?;
        if notional_micros > account.limits.order_notional_max_micros {
            return Err(RejectReason::OrderNotionalTooLarge);
        }
        let position = self.position(portfolio_id, order.symbol_id);
        let added_lots = qty_lots - order.open_lots;
        let reserved_lots = replaced_reserved_lots(&order, &position, qty_lots);
        match order.side {
            Side::Buy if position.qty_lots + position.open_buy_lots + added_lots > instrument.position_max_lots => {
                return Err(RejectReason::PositionLimitExceeded)
            }
            Side::Sell if position.qty_lots - position.open_sell_lots - added_lots < -instrument.position_max_lots => {
                return Err(RejectReason::PositionLimitExceeded)
            }
            Side::Sell if reserved_lots < qty_lots && !instrument.short_allowed => {
                return Err(RejectReason::ShortNotAllowed)
            }
            _ => {}
        }
        let required = required_cash(instrument, order.side, price_ticks, qty_lots, reserved_lots);
        let additional = (required - order.reserved_cash_micros).max(0);
        if additional > 0 && !self.ledger.try_reserve(portfolio_id, additional) {
            return Err(RejectReason::InsufficientBuyingPower);
        }
        let priority_kept = price_ticks == order.price_ticks && qty_lots < order.open_lots;
        Ok((handle, priority_kept, additional))
    }

    fn decide_mass_cancel(&mut self, portfolio_id: PortfolioId, symbol_id: Option<SymbolId>, out: &mut Vec<Event>) {
        if self.ledger.account(portfolio_id).is_none() {
            return self.reject(out, portfolio_id, 0, ClientOrderId::NONE, RejectReason::UnknownPortfolio);
        }
        if symbol_id.is_some_and(|s| !self.owns(s)) {
            return self.reject(out, portfolio_id, 0, ClientOrderId::NONE, RejectReason::UnknownSymbol);
        }
        let mut handle = self.portfolio_heads.get(portfolio_id as usize).copied().unwrap_or(NIL);
        while handle != NIL {
            let order = *self.orders.get(handle);
            if symbol_id.is_none_or(|s| s == order.symbol_id) {
                self.cancel(out, handle, CancelReason::User);
            }
            handle = order.portfolio_next;
        }
        for order_id in self.conditionals.ids_of(portfolio_id, symbol_id) {
            // An OCO peer or an exit may have gone with an order cancelled before it.
            if self.conditionals.get(order_id).is_some() {
                self.cancel_conditional(out, order_id, CancelReason::User);
            }
        }
    }

    // ----------------------------------------------------------------------------------------
    // Evolve: the one place state changes
    // ----------------------------------------------------------------------------------------

    /// Rebuilds state from a journaled event. Events must come in sequence order.
    pub fn replay(&mut self, event: &Event) {
        assert!(event.timestamp_ns >= self.last_timestamp_ns, "replayed time went backwards");
        self.last_timestamp_ns = event.timestamp_ns;
        self.now_ns = event.timestamp_ns;
        self.evolve(event, Mode::Replay);
    }

    fn evolve(&mut self, event: &Event, mode: Mode) {
        assert_eq!(event.seq, self.last_seq + 1, "event sequence gap");
        self.last_seq = event.seq;
        match event.body {
            EventBody::PortfolioCreated { portfolio_id, cash_micros } => {
                let created = self.ledger.create(portfolio_id, cash_micros, self.config.default_limits);
                assert!(created || (mode == Mode::Replay && !self.ledger.is_exclusive()));
            }
            EventBody::CashAdjusted { portfolio_id, delta_micros } => {
                if mode == Mode::Replay {
                    self.ledger.force_adjust_cash(portfolio_id, delta_micros);
                }
            }
            EventBody::RiskLimitsSet { portfolio_id, limits } => self.ledger.set_limits(portfolio_id, limits),
            EventBody::OrderAccepted(accepted) => self.evolve_accepted(&accepted, mode),
            EventBody::ConditionalAccepted(accepted) => self.evolve_conditional_accepted(&accepted),
            EventBody::OrderTriggered { order_id, .. } => {
                let c = self.conditionals.remove(order_id);
                if !c.client_order_id.is_none() {
                    self.client_order_ids.remove(&(c.portfolio_id, c.client_order_id));
                }
            }
            EventBody::Rejected { .. } => {}
            EventBody::Fill(fill) => self.evolve_fill(&fill, event.timestamp_ns),
            EventBody::OrderCancelled { order_id, .. } => match self.orders.find(order_id) {
                Some(handle) => self.close_order(handle),
                None => {
                    let c = self.conditionals.remove(order_id);
                    self.conditionals.parent_ended(order_id);
                    if !c.client_order_id.is_none() {
                        self.client_order_ids.remove(&(c.portfolio_id, c.client_order_id));
                    }
                }
            },
            EventBody::OrderReplaced {
                order_id, price_ticks, qty_lots, priority_kept, reserved_cash_micros, ..
            } => self.evolve_replaced(order_id, price_ticks, qty_lots, priority_kept, reserved_cash_micros, mode),
            EventBody::ReferencePriceSet { symbol_id, price_ticks } => {
                self.symbols[usize::from(symbol_id)].reference_ticks = price_ticks;
                self.conditionals.observe_trade(symbol_id, price_ticks);
            }
            EventBody::HaltedSet { symbol_id, halted } => self.symbols[usize::from(symbol_id)].halted = halted,
            EventBody::ReferenceQuoteSet {
                symbol_id,
                bid_price_ticks,
                bid_qty_lots,
                ask_price_ticks,
                ask_qty_lots,
            } => {
                let market = &mut self.symbols[usize::from(symbol_id)].market;
                (market.bid_ticks, market.bid_lots) = (bid_price_ticks, bid_qty_lots);
                (market.ask_ticks, market.ask_lots) = (ask_price_ticks, ask_qty_lots);
            }
            EventBody::ReferenceTradePrinted { symbol_id, price_ticks, qty_lots } => {
                let state = &mut self.symbols[usize::from(symbol_id)];
                state.market.last_trade_ticks = price_ticks;
                state.reference_ticks = price_ticks;
                self.advance_queues(symbol_id, price_ticks, qty_lots);
                self.conditionals.observe_trade(symbol_id, price_ticks);
            }
        }
    }

    fn evolve_accepted(&mut self, accepted: &AcceptedOrder, mode: Mode) {
        if mode == Mode::Replay {
            self.ledger.force_open_order(accepted.portfolio_id);
            self.ledger.force_reserve(accepted.portfolio_id, accepted.reserved_cash_micros);
        }
        // A fired conditional order keeps the (older) id it was accepted with.
        self.order_counter = self.order_counter.max(accepted.order_id & ORDER_COUNTER_MASK);
        let mut order = Order::from_accepted(accepted);
        order.queue_ahead_lots = self.queue_ahead_on_joining(accepted.symbol_id, accepted.side, accepted.price_ticks);
        let portfolio_index = accepted.portfolio_id as usize;
        if self.portfolio_heads.len() <= portfolio_index {
            self.portfolio_heads.resize(portfolio_index + 1, NIL);
        }
        // The list runs by order id, newest first. A fired conditional order joins with its older
        // id, after the newer orders (a walk over those only), so the list stays in id order and a
        // snapshot can rebuild it from ids alone.
        let mut previous = NIL;
        let mut next = self.portfolio_heads[portfolio_index];
        while next != NIL && self.orders.get(next).order_id > accepted.order_id {
            previous = next;
            next = self.orders.get(next).portfolio_next;
        }
        order.portfolio_prev = previous;
        order.portfolio_next = next;
        let handle = self.orders.insert(order);
        if next != NIL {
            self.orders.get_mut(next).portfolio_prev = handle;
        }
        if previous == NIL {
            self.portfolio_heads[portfolio_index] = handle;
        } else {
            self.orders.get_mut(previous).portfolio_next = handle;
        }

        let position = self.positions.entry((accepted.portfolio_id, accepted.symbol_id)).or_default();
        match accepted.side {
            Side::Buy => position.open_buy_lots += accepted.qty_lots,
            Side::Sell => position.open_sell_lots += accepted.qty_lots,
        }
        position.reserved_lots += accepted.reserved_lots;
        if !accepted.client_order_id.is_none() {
            self.client_order_ids.insert((accepted.portfolio_id, accepted.client_order_id), accepted.order_id);
        }
        if accepted.expire_at_ns != i64::MAX {
            self.expiries.push(Reverse((accepted.expire_at_ns, accepted.order_id)));
        }
        self.books[usize::from(accepted.symbol_id)].insert(
            handle,
            accepted.side,
            accepted.price_ticks,
            accepted.qty_lots,
        );
    }

    fn evolve_fill(&mut self, fill: &Fill, timestamp_ns: i64) {
        self.last_trade_id = fill.trade_id;
        self.symbols[usize::from(fill.symbol_id)].last_trade_ticks = fill.price_ticks;
        let day = timestamp_ns.div_euclid(NANOS_PER_DAY);
        // Exits grow before an entry that fills completely is forgotten (the simulated market has
        // no order, so no exits).
        for order_id in [fill.maker_order_id, fill.taker_order_id] {
            if order_id != SIMULATED_ORDER_ID {
                self.conditionals.on_parent_fill(order_id, fill.qty_lots);
            }
        }
        // The simulated market has no order: its side only moves its net position.
        for (order_id, fee, side) in [
            (fill.maker_order_id, fill.maker_fee_micros, fill.taker_side.opposite()),
            (fill.taker_order_id, fill.taker_fee_micros, fill.taker_side),
        ] {
            if order_id == SIMULATED_ORDER_ID {
                self.symbols[usize::from(fill.symbol_id)].market.counterparty_lots += side.sign() * fill.qty_lots;
            } else {
                let handle = self.orders.find(order_id).expect("a filled order is open");
                self.settle_side(handle, fill, fee, day);
            }
        }
        self.conditionals.observe_trade(fill.symbol_id, fill.price_ticks);
    }

    fn evolve_conditional_accepted(&mut self, accepted: &AcceptedConditional) {
        self.order_counter = self.order_counter.max(accepted.order_id & ORDER_COUNTER_MASK);
        if !accepted.client_order_id.is_none() {
            self.client_order_ids.insert((accepted.portfolio_id, accepted.client_order_id), accepted.order_id);
        }
        if accepted.expire_at_ns != i64::MAX {
            self.expiries.push(Reverse((accepted.expire_at_ns, accepted.order_id)));
        }
        self.conditionals.insert(*accepted, accepted.trigger_price_ticks);
    }

    /// Books one side of a fill: the order's open quantity and reservation, the position, margin,
    /// and the ledger.
    fn settle_side(&mut self, handle: Handle, fill: &Fill, fee: i64, day: i64) {
        let order = *self.orders.get(handle);
        let qty_lots = fill.qty_lots;
        assert!(qty_lots > 0 && qty_lots <= order.open_lots, "fill larger than the open quantity");
        let instrument = self.instruments.get(order.symbol_id).expect("order's instrument");
        let open_after = order.open_lots - qty_lots;
        let key = (order.portfolio_id, order.symbol_id);
        let position = self.positions.get_mut(&key).expect("an open order has a position entry");

        // The order's reservation after the fill; what it held beyond that is released (a buy) or
        // moves to the position's margin (a sell's short part).
        let reserved_lots_used = match order.side {
            Side::Buy => 0,
            Side::Sell => qty_lots.min(order.reserved_lots),
        };
        let reserved_lots_after = order.reserved_lots - reserved_lots_used;
        let required_after = required_cash(instrument, order.side, order.price_ticks, open_after, reserved_lots_after);
        let freed_micros = order.reserved_cash_micros - required_after;
        assert!(freed_micros >= 0, "a fill cannot need more reservation");

        let exposure_before = position.short_exposure_lots();
        position.reserved_lots -= reserved_lots_used;
        match order.side {
            Side::Buy => position.open_buy_lots -= qty_lots,
            Side::Sell => position.open_sell_lots -= qty_lots,
        }
        let effect = position.apply_trade(order.side.sign(), qty_lots, fill.notional_micros);
        position.fees_micros += fee;
        let exposure_after = position.short_exposure_lots();

        // A sell that deepens the short exposure also locks its share of the proceeds (net of the
        // fee) besides the initial margin, so selling short never raises buying power.
        let (mut release_reserved, mut to_margin, mut release_margin, mut lock_proceeds) = (0i64, 0i64, 0i64, 0i64);
        match order.side {
            Side::Buy => release_reserved = freed_micros,
            Side::Sell if exposure_after > 0 => {
                to_margin = freed_micros;
                let deepened_lots = exposure_after - exposure_before;
                lock_proceeds = mul_div(fill.notional_micros - fee, deepened_lots, qty_lots);
            }
            Side::Sell => release_reserved = freed_micros,
        }
        if exposure_after == 0 {
            release_margin = position.margin_micros;
        } else if exposure_after < exposure_before {
            release_margin = mul_div(position.margin_micros, exposure_before - exposure_after, exposure_before);
        }
        position.margin_micros += to_margin + lock_proceeds - release_margin;

        let cash_delta = match order.side {
            Side::Buy => -(fill.notional_micros + fee),
            Side::Sell => fill.notional_micros - fee,
        };
        let portfolio_id = order.portfolio_id;
        self.ledger.release(portfolio_id, release_reserved);
        self.ledger.reserve_to_margin(portfolio_id, to_margin);
        self.ledger.release_margin(portfolio_id, release_margin);
        self.ledger.settle(portfolio_id, cash_delta, fee, effect.realized_pnl_micros, day);
        self.ledger.lock_margin(portfolio_id, lock_proceeds);
        self.ledger.add_gross_exposure(portfolio_id, effect.gross_exposure_delta_micros);

        let stored = self.orders.get_mut(handle);
        stored.open_lots = open_after;
        stored.filled_lots += qty_lots;
        stored.reserved_cash_micros = required_after;
        stored.reserved_lots = reserved_lots_after;
        if stored.queue_ahead_lots < 0 {
            stored.queue_ahead_lots = (stored.queue_ahead_lots + qty_lots).min(0);
        }
        if open_after == 0 {
            assert_eq!(required_after, 0);
            self.books[usize::from(order.symbol_id)].remove(handle, order.side, order.price_ticks, qty_lots);
            self.forget_order(handle);
        } else {
            self.books[usize::from(order.symbol_id)].reduce(handle, order.side, order.price_ticks, qty_lots);
        }
    }

    /// Removes an open order from the book, releasing everything it holds.
    fn close_order(&mut self, handle: Handle) {
        let order = *self.orders.get(handle);
        self.books[usize::from(order.symbol_id)].remove(handle, order.side, order.price_ticks, order.open_lots);
        let position = self.positions.get_mut(&(order.portfolio_id, order.symbol_id)).expect("order's position");
        match order.side {
            Side::Buy => position.open_buy_lots -= order.open_lots,
            Side::Sell => position.open_sell_lots -= order.open_lots,
        }
        let exposure_before = position.short_exposure_lots();
        position.reserved_lots -= order.reserved_lots;
        let exposure_after = position.short_exposure_lots();
        // Giving back reserved lots can only lower the short exposure.
        let release_margin = if exposure_after == 0 {
            position.margin_micros
        } else {
            mul_div(position.margin_micros, exposure_before - exposure_after, exposure_before)
        };
        position.margin_micros -= release_margin;
        self.ledger.release_margin(order.portfolio_id, release_margin);
        self.ledger.release(order.portfolio_id, order.reserved_cash_micros);
        self.forget_order(handle);
    }

    /// Drops a finished order (out of the book already) from the store and every index.
    fn forget_order(&mut self, handle: Handle) {
        let order = self.orders.remove(handle);
        self.conditionals.parent_ended(order.order_id);
        self.ledger.close_order(order.portfolio_id);
        if order.portfolio_prev != NIL {
            self.orders.get_mut(order.portfolio_prev).portfolio_next = order.portfolio_next;
        } else {
            self.portfolio_heads[order.portfolio_id as usize] = order.portfolio_next;
        }
        if order.portfolio_next != NIL {
            self.orders.get_mut(order.portfolio_next).portfolio_prev = order.portfolio_prev;
        }
        if !order.client_order_id.is_none() {
            self.client_order_ids.remove(&(order.portfolio_id, order.client_order_id));
        }
        let key = (order.portfolio_id, order.symbol_id);
        if self
            .positions
            .get(&key)
            .is_some_and(|p| p.is_flat_and_idle() && p.realized_pnl_micros == 0 && p.fees_micros == 0)
        {
            self.positions.remove(&key);
        }
    }

    fn evolve_replaced(
        &mut self,
        order_id: OrderId,
        price_ticks: i64,
        qty_lots: i64,
        priority_kept: bool,
        reserved_cash_micros: i64,
        mode: Mode,
    ) {
        let handle = self.orders.find(order_id).expect("replaced order is open");
        let order = *self.orders.get(handle);
        if mode == Mode::Replay {
            self.ledger.force_reserve(order.portfolio_id, reserved_cash_micros);
        }
        let instrument = self.instruments.get(order.symbol_id).expect("order's instrument");
        let position = self.positions.get_mut(&(order.portfolio_id, order.symbol_id)).expect("order's position");
        let reserved_lots = replaced_reserved_lots(&order, position, qty_lots);
        let required = required_cash(instrument, order.side, price_ticks, qty_lots, reserved_lots);
        let held = order.reserved_cash_micros + reserved_cash_micros;
        assert!(held >= required, "replace reserved too little");
        let exposure_before = position.short_exposure_lots();
        position.reserved_lots += reserved_lots - order.reserved_lots;
        match order.side {
            Side::Buy => position.open_buy_lots += qty_lots - order.open_lots,
            Side::Sell => position.open_sell_lots += qty_lots - order.open_lots,
        }
        let exposure_after = position.short_exposure_lots();
        let release_margin = if exposure_after == 0 {
            position.margin_micros
        } else if exposure_after < exposure_before {
            mul_div(position.margin_micros, exposure_before - exposure_after, exposure_before)
        } else {
            0
        };
        position.margin_micros -= release_margin;
        self.ledger.release_margin(order.portfolio_id, release_margin);
        self.ledger.release(order.portfolio_id, held - required);

        let book = &mut self.books[usize::from(order.symbol_id)];
        if priority_kept {
            book.reduce(handle, order.side, order.price_ticks, order.open_lots - qty_lots);
        } else {
            book.remove(handle, order.side, order.price_ticks, order.open_lots);
            book.insert(handle, order.side, price_ticks, qty_lots);
        }
        let queue_ahead_lots = if priority_kept {
            order.queue_ahead_lots
        } else {
            self.queue_ahead_on_joining(order.symbol_id, order.side, price_ticks)
        };
        let stored = self.orders.get_mut(handle);
        stored.price_ticks = price_ticks;
        stored.open_lots = qty_lots;
        stored.reserved_cash_micros = required;
        stored.reserved_lots = reserved_lots;
        stored.queue_ahead_lots = queue_ahead_lots;
    }

    // ----------------------------------------------------------------------------------------
    // State hash and invariants
    // ----------------------------------------------------------------------------------------

    /// A hash of the full logical state, independent of data-structure layout: two engines that
    /// went through the same events have the same hash whatever book implementation they use.
    pub fn state_hash(&self) -> u64 {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut put = |value: i64| hasher.update(&value.to_le_bytes());
        put(self.last_seq as i64);
        put(self.order_counter as i64);
        put(self.last_trade_id as i64);
        for (index, state) in self.symbols.iter().enumerate() {
            if !state.owned {
                continue;
            }
            put(index as i64);
            put(i64::from(state.halted));
            put(state.reference_ticks);
            put(state.last_trade_ticks);
            let m = state.market;
            for value in [m.bid_ticks, m.bid_lots, m.ask_ticks, m.ask_lots, m.last_trade_ticks, m.counterparty_lots] {
                put(value);
            }
            for side in [Side::Buy, Side::Sell] {
                put(-1);
                self.books[index].scan(side, |_, handle| {
                    let o = self.orders.get(handle);
                    for value in [
                        o.order_id as i64,
                        i64::from(o.portfolio_id),
                        o.side as i64,
                        o.kind as i64,
                        o.price_ticks,
                        o.open_lots,
                        o.filled_lots,
                        o.time_in_force as i64,
                        o.expire_at_ns,
                        i64::from_le_bytes(o.client_order_id.0[..8].try_into().expect("8 bytes")),
                        i64::from_le_bytes(o.client_order_id.0[8..].try_into().expect("8 bytes")),
                        i64::from(o.post_only),
                        o.self_trade_policy as i64,
                        o.reserved_cash_micros,
                        o.reserved_lots,
                        o.queue_ahead_lots,
                    ] {
                        put(value);
                    }
                    true
                });
            }
        }
        for ((portfolio_id, symbol_id), p) in self.positions() {
            for value in [
                i64::from(portfolio_id),
                i64::from(symbol_id),
                p.qty_lots,
                p.cost_basis_micros,
                p.reserved_lots,
                p.open_buy_lots,
                p.open_sell_lots,
                p.margin_micros,
                p.realized_pnl_micros,
                p.fees_micros,
            ] {
                put(value);
            }
        }
        put(-2);
        for c in self.conditionals.iter() {
            for value in [
                c.order_id as i64,
                i64::from(c.portfolio_id),
                i64::from(c.symbol_id),
                c.side as i64,
                c.kind as i64,
                c.price_ticks,
                c.qty_lots,
                c.time_in_force as i64,
                c.expire_at_ns,
                i64::from_le_bytes(c.client_order_id.0[..8].try_into().expect("8 bytes")),
                i64::from_le_bytes(c.client_order_id.0[8..].try_into().expect("8 bytes")),
                c.self_trade_policy as i64,
                c.trigger as i64,
                c.trigger_price_ticks,
                c.trail_ticks,
                c.trail_bps,
                c.parent_order_id as i64,
                c.oco_order_id as i64,
            ] {
                put(value);
            }
            if c.trigger == TriggerKind::Delayed {
                put(c.execute_at_ns);
                put(i64::from(c.post_only));
            }
        }
        put(-3);
        for (order_id, best_ticks) in self.conditionals.trailing_bests() {
            put(order_id as i64);
            put(best_ticks);
        }
        if self.ledger.is_exclusive() {
            self.ledger.for_each_account(&mut |portfolio_id, a| {
                for value in a.hash_words(portfolio_id) {
                    put(value);
                }
            });
        }
        hasher.digest()
    }

    /// Asserts every invariant of the state. Cost is linear in the state; tests call it after every
    /// command.
    pub fn check_invariants(&self) {
        for (index, state) in self.symbols.iter().enumerate() {
            if state.owned {
                self.books[index].check(|handle| self.orders.get(handle).open_lots);
            }
        }
        if let Err(violation) = self.verify_invariants() {
            panic!("invariant violated: {violation}");
        }
    }

    /// The invariants [`Engine::check_invariants`] asserts, except the books' internal links, as a
    /// result: the first violation found. It never panics and its arithmetic is checked (sums are
    /// `i128`), so it can also judge a state that did not come from `evolve`: a restored snapshot is
    /// accepted only if it passes (see `snapshot`).
    pub(crate) fn verify_invariants(&self) -> Result<(), String> {
        macro_rules! ensure {
            ($condition:expr, $($message:tt)+) => {
                if !$condition {
                    return Err(format!($($message)+));
                }
            };
        }
        /// What the open orders of one (portfolio, symbol) add up to.
        #[derive(Default, Debug)]
        struct OpenSums {
            buy_lots: i128,
            sell_lots: i128,
            reserved_lots: i128,
        }
        let mut expected: FxHashMap<(PortfolioId, SymbolId), OpenSums> = FxHashMap::default();
        let mut reserved_by_portfolio: FxHashMap<PortfolioId, (i128, u64)> = FxHashMap::default();
        let mut resting_count = 0usize;
        let mut resting = Vec::new();
        for (index, state) in self.symbols.iter().enumerate() {
            if !state.owned {
                continue;
            }
            let book = &self.books[index];
            if let (Some((bid, _)), Some((ask, _))) = (book.best(Side::Buy), book.best(Side::Sell)) {
                ensure!(bid < ask, "book {index} crossed: bid {bid} >= ask {ask}");
            }
            let instrument = self.instruments.get(index as SymbolId).ok_or_else(|| format!("no instrument {index}"))?;
            for side in [Side::Buy, Side::Sell] {
                resting.clear();
                book.scan(side, |price_ticks, handle| {
                    resting.push((price_ticks, handle));
                    true
                });
                resting_count += resting.len();
                for &(price_ticks, handle) in &resting {
                    let o = self.orders.get(handle);
                    ensure!(
                        (o.side, o.price_ticks, o.symbol_id as usize) == (side, price_ticks, index),
                        "order {} is filed under the wrong side, price or symbol",
                        o.order_id
                    );
                    ensure!(o.open_lots > 0 && o.time_in_force.rests(), "order {} may not rest", o.order_id);
                    ensure!(
                        o.reserved_lots >= 0 && (o.side == Side::Sell || o.reserved_lots == 0),
                        "order {} holds impossible reserved lots",
                        o.order_id
                    );
                    ensure!(
                        checked_required_cash(instrument, o.side, o.price_ticks, o.open_lots, o.reserved_lots)
                            == Some(o.reserved_cash_micros),
                        "order {} holds the wrong reservation",
                        o.order_id
                    );
                    let sums = expected.entry((o.portfolio_id, o.symbol_id)).or_default();
                    match o.side {
                        Side::Buy => sums.buy_lots += i128::from(o.open_lots),
                        Side::Sell => sums.sell_lots += i128::from(o.open_lots),
                    }
                    sums.reserved_lots += i128::from(o.reserved_lots);
                    let totals = reserved_by_portfolio.entry(o.portfolio_id).or_default();
                    totals.0 += i128::from(o.reserved_cash_micros);
                    totals.1 += 1;
                    if !o.client_order_id.is_none() {
                        ensure!(
                            self.client_order_ids.get(&(o.portfolio_id, o.client_order_id)) == Some(&o.order_id),
                            "order {} is missing from the client order id index",
                            o.order_id
                        );
                    }
                }
            }
        }
        ensure!(resting_count == self.orders.len(), "an order is open but not in a book");
        ensure!(
            self.client_order_ids.len() <= self.orders.len() + self.conditionals.len(),
            "the client order id index holds closed orders"
        );
        self.conditionals.verify()?;
        for c in self.conditionals.iter() {
            ensure!(self.owns(c.symbol_id), "conditional order {} is in a symbol the shard does not own", c.order_id);
            ensure!(self.ledger.account(c.portfolio_id).is_some(), "conditional order {} has no portfolio", c.order_id);
            ensure!(self.orders.find(c.order_id).is_none(), "order {} is both waiting and in the book", c.order_id);
            if !c.client_order_id.is_none() {
                ensure!(
                    self.client_order_ids.get(&(c.portfolio_id, c.client_order_id)) == Some(&c.order_id),
                    "conditional order {} is missing from the client order id index",
                    c.order_id
                );
            }
        }
        for parent_order_id in self.conditionals.parents() {
            ensure!(
                self.orders.find(parent_order_id).is_some() || self.conditionals.get(parent_order_id).is_some(),
                "entry {parent_order_id} has ended but still has exits registered"
            );
        }

        // The simulated market is the counterparty of simulated fills: its net position counts too.
        let mut net_by_symbol: FxHashMap<SymbolId, i128> = FxHashMap::default();
        for (index, state) in self.symbols.iter().enumerate() {
            ensure!(
                state.owned || state.market == MarketState::default(),
                "symbol {index} is not owned but has a market"
            );
            if state.market.counterparty_lots != 0 {
                net_by_symbol.insert(index as SymbolId, i128::from(state.market.counterparty_lots));
            }
        }
        let mut margin_by_portfolio: FxHashMap<PortfolioId, i128> = FxHashMap::default();
        let mut gross_by_portfolio: FxHashMap<PortfolioId, i128> = FxHashMap::default();
        for (key, position) in &self.positions {
            let wanted = expected.remove(key).unwrap_or_default();
            ensure!(
                (
                    i128::from(position.open_buy_lots),
                    i128::from(position.open_sell_lots),
                    i128::from(position.reserved_lots)
                ) == (wanted.buy_lots, wanted.sell_lots, wanted.reserved_lots),
                "position {key:?} open quantities"
            );
            ensure!(position.reserved_lots >= 0 && position.margin_micros >= 0, "position {key:?} is negative");
            ensure!((position.qty_lots == 0) == (position.cost_basis_micros == 0), "position {key:?} basis");
            ensure!(position.qty_lots.signum() == position.cost_basis_micros.signum(), "position {key:?} basis sign");
            let short_exposure_lots = (i128::from(position.reserved_lots) - i128::from(position.qty_lots)).max(0);
            ensure!(
                short_exposure_lots > 0 || position.margin_micros == 0,
                "position {key:?} holds margin with no short exposure"
            );
            *net_by_symbol.entry(key.1).or_default() += i128::from(position.qty_lots);
            *margin_by_portfolio.entry(key.0).or_default() += i128::from(position.margin_micros);
            *gross_by_portfolio.entry(key.0).or_default() += i128::from(position.cost_basis_micros).abs();
        }
        ensure!(expected.is_empty(), "open orders without a position entry: {:?}", expected.keys().collect::<Vec<_>>());
        for (symbol_id, net) in net_by_symbol {
            ensure!(net == 0, "positions in symbol {symbol_id} do not net to zero");
        }
        if self.ledger.is_exclusive() {
            let check = |portfolio_id: PortfolioId, account: &Account| -> Result<(), String> {
                let (reserved, open) = reserved_by_portfolio.get(&portfolio_id).copied().unwrap_or_default();
                ensure!(i128::from(account.reserved_micros) == reserved, "portfolio {portfolio_id} reserved cash");
                ensure!(u64::from(account.open_orders) == open, "portfolio {portfolio_id} open orders");
                ensure!(
                    i128::from(account.margin_micros) == margin_by_portfolio.get(&portfolio_id).copied().unwrap_or(0),
                    "portfolio {portfolio_id} margin"
                );
                ensure!(
                    i128::from(account.gross_exposure_micros)
                        == gross_by_portfolio.get(&portfolio_id).copied().unwrap_or(0),
                    "portfolio {portfolio_id} gross exposure"
                );
                let available = i128::from(account.cash_micros)
                    - i128::from(account.reserved_micros)
                    - i128::from(account.margin_micros);
                ensure!(available >= 0, "portfolio {portfolio_id} available cash is negative");
                Ok(())
            };
            let mut violation = None;
            self.ledger.for_each_account(&mut |portfolio_id, account| {
                if violation.is_none() {
                    violation = check(portfolio_id, account).err();
                }
            });
            if let Some(violation) = violation {
                return Err(violation);
            }
        }
        Ok(())
    }
}

/// The cash an order must hold: a buy, the cost of its open quantity at its limit price rounded up
/// plus the larger of the two fees on that; a sell, the initial margin on the part of its open
/// quantity that its reserved long lots do not cover. Monotonic in the open quantity, and the drop
/// for any `q` lots is at least what a fill of `q` lots debits (trades round down, this rounds up).
pub fn required_cash(instrument: &Instrument, side: Side, price_ticks: i64, open_lots: i64, reserved_lots: i64) -> i64 {
    match side {
        Side::Buy => {
            let notional = instrument.notional_ceil_micros(price_ticks, open_lots).expect("checked at acceptance");
            let fee_bps = instrument.maker_fee_bps.max(instrument.taker_fee_bps);
            notional + ceil_bps(notional, fee_bps)
        }
        Side::Sell => {
            let short_lots = open_lots - reserved_lots;
            debug_assert!(short_lots >= 0);
            let notional = instrument.notional_ceil_micros(price_ticks, short_lots).expect("checked at acceptance");
            ceil_bps(notional, instrument.initial_margin_bps)
        }
    }
}

/// [`required_cash`] with every step checked: `None` where that would panic or overflow (a price
/// that is not positive, more reserved lots than open ones, a notional beyond `i64`). Equal to
/// `required_cash` wherever that returns. For judging states that did not come from `evolve`.
pub(crate) fn checked_required_cash(
    instrument: &Instrument,
    side: Side,
    price_ticks: i64,
    open_lots: i64,
    reserved_lots: i64,
) -> Option<i64> {
    if price_ticks <= 0 || open_lots < 0 {
        return None;
    }
    match side {
        Side::Buy => {
            let notional = instrument.notional_ceil_micros(price_ticks, open_lots)?;
            let fee_bps = instrument.maker_fee_bps.max(instrument.taker_fee_bps);
            notional.checked_add(checked_ceil_bps(notional, fee_bps)?)
        }
        Side::Sell => {
            let short_lots = open_lots.checked_sub(reserved_lots).filter(|&lots| lots >= 0)?;
            let notional = instrument.notional_ceil_micros(price_ticks, short_lots)?;
            checked_ceil_bps(notional, instrument.initial_margin_bps)
        }
    }
}

/// Long lots a sell holds after a replace to `qty_lots`: what it held plus what is free, capped.
fn replaced_reserved_lots(order: &Order, position: &Position, qty_lots: i64) -> i64 {
    match order.side {
        Side::Buy => 0,
        Side::Sell => qty_lots.min(order.reserved_lots + position.free_long_lots()),
    }
}

/// A fee of `bps` on `notional`, rounded down to the micro.
pub fn fee_micros(notional_micros: i64, bps: i64) -> i64 {
    let fee = i128::from(notional_micros) * i128::from(bps) / i128::from(BASIS_POINTS_PER_UNIT);
    i64::try_from(fee).expect("a fee is smaller than its notional")
}

fn ceil_bps(value: i64, bps: i64) -> i64 {
    let product = i128::from(value) * i128::from(bps);
    let divisor = i128::from(BASIS_POINTS_PER_UNIT);
    i64::try_from((product + divisor - 1) / divisor).expect("a share of an i64 fits")
}

fn checked_ceil_bps(value: i64, bps: i64) -> Option<i64> {
    let product = i128::from(value).checked_mul(i128::from(bps))?;
    let divisor = i128::from(BASIS_POINTS_PER_UNIT);
    i64::try_from(product.checked_add(divisor - 1)? / divisor).ok()
}

fn mul_div(value: i64, numerator: i64, denominator: i64) -> i64 {
    i64::try_from(i128::from(value) * i128::from(numerator) / i128::from(denominator)).expect("a part fits")
}
