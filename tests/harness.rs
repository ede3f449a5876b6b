//! A scenario harness around one engine.
//!
//! Every command goes through [`Harness::run`], which advances time by a microsecond, applies the
//! command, asserts `check_invariants()`, and keeps the events. [`Harness::assert_replay`] rebuilds
//! a fresh engine from those events alone and compares state hashes; it also runs when the harness
//! is dropped, so no scenario can forget it.

use simex_engine::*;

pub const DOLLAR: i64 = 1_000_000;
/// 2026-01-05 14:30:00 UTC, a Monday during the US session.
pub const START_NS: i64 = 1_767_623_400 * NANOS_PER_SECOND;

pub struct Harness<B: OrderBook = FastBook> {
    pub engine: Engine<B, LocalLedger>,
    config: EngineConfig,
    instruments: InstrumentTable,
    pub now_ns: i64,
    pub events: Vec<Event>,
}

impl Harness<FastBook> {
    pub fn new() -> Harness<FastBook> {
        Harness::with(EngineConfig::default(), InstrumentTable::default_table())
    }
}

impl Default for Harness<FastBook> {
    fn default() -> Self {
        Harness::new()
    }
}

impl<B: OrderBook> Harness<B> {
    pub fn with(config: EngineConfig, instruments: InstrumentTable) -> Harness<B> {
        Harness {
            engine: Engine::with_ledger(config.clone(), instruments.clone(), LocalLedger::new()),
            config,
            instruments,
            now_ns: START_NS,
            events: Vec::new(),
        }
    }

    pub fn symbol(&self, name: &str) -> SymbolId {
        self.instruments.by_symbol(name).unwrap_or_else(|| panic!("no instrument {name}")).symbol_id
    }

    /// Applies a command one microsecond after the previous one; returns its events.
    pub fn run(&mut self, body: CommandBody) -> Vec<Event> {
        self.now_ns += 1_000;
        self.run_at(self.now_ns, body)
    }

    pub fn run_at(&mut self, timestamp_ns: i64, body: CommandBody) -> Vec<Event> {
        self.now_ns = timestamp_ns;
        let mut out = Vec::new();
        self.engine.apply(&Command { timestamp_ns, body }, &mut out);
        self.engine.check_invariants();
        self.events.extend_from_slice(&out);
        out
    }

    pub fn portfolio(&mut self, portfolio_id: PortfolioId, dollars: i64) {
        let events = self.run(CommandBody::CreatePortfolio { portfolio_id, cash_micros: dollars * DOLLAR });
        assert!(matches!(events[..], [Event { body: EventBody::PortfolioCreated { .. }, .. }]));
    }

    pub fn order(&mut self, order: NewOrder) -> Vec<Event> {
        self.run(CommandBody::NewOrder(order))
    }

    /// Places an order that must be accepted; returns its id.
    pub fn place(&mut self, order: NewOrder) -> OrderId {
        let events = self.order(order);
        accepted_id(&events).unwrap_or_else(|| panic!("order not accepted: {events:?}"))
    }

    pub fn limit(
        &mut self,
        portfolio_id: PortfolioId,
        symbol: &str,
        side: Side,
        price_ticks: i64,
        qty_lots: i64,
    ) -> OrderId {
        let symbol_id = self.symbol(symbol);
        self.place(NewOrder::limit(portfolio_id, symbol_id, side, price_ticks, qty_lots))
    }

    pub fn cancel(&mut self, portfolio_id: PortfolioId, order_id: OrderId) -> Vec<Event> {
        self.run(CommandBody::Cancel { portfolio_id, order_id })
    }

    pub fn account(&self, portfolio_id: PortfolioId) -> Account {
        self.engine.account(portfolio_id).expect("portfolio exists")
    }

    pub fn position(&self, portfolio_id: PortfolioId, symbol: &str) -> Position {
        self.engine.position(portfolio_id, self.symbol(symbol))
    }

    /// (price, qty) of the levels of one side, best first.
    pub fn levels(&self, symbol: &str, side: Side) -> Vec<(i64, i64)> {
        self.engine.levels(self.symbol(symbol), side, usize::MAX).iter().map(|l| (l.price_ticks, l.qty_lots)).collect()
    }

    /// Order ids of one side in priority order.
    pub fn queue(&self, symbol: &str, side: Side) -> Vec<OrderId> {
        self.engine.book_orders(self.symbol(symbol), side).iter().map(|o| o.order_id).collect()
    }

    /// Rebuilds a fresh engine from the events alone and compares state hashes.
    pub fn assert_replay(&self) {
        let mut replayed: Engine<B, LocalLedger> =
            Engine::with_ledger(self.config.clone(), self.instruments.clone(), LocalLedger::new());
        for event in &self.events {
            replayed.replay(event);
        }
        replayed.check_invariants();
        assert_eq!(replayed.state_hash(), self.engine.state_hash(), "replayed state differs from live state");
    }
}

impl<B: OrderBook> Drop for Harness<B> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_replay();
        }
    }
}

pub fn accepted_id(events: &[Event]) -> Option<OrderId> {
    events.iter().find_map(|e| match e.body {
        EventBody::OrderAccepted(a) => Some(a.order_id),
        _ => None,
    })
}

pub fn fills(events: &[Event]) -> Vec<Fill> {
    events
        .iter()
        .filter_map(|e| match e.body {
            EventBody::Fill(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// (price, qty) of every fill.
pub fn fill_prices(events: &[Event]) -> Vec<(i64, i64)> {
    fills(events).iter().map(|f| (f.price_ticks, f.qty_lots)).collect()
}

pub fn rejection(events: &[Event]) -> Option<RejectReason> {
    events.iter().find_map(|e| match e.body {
        EventBody::Rejected { reason, .. } => Some(reason),
        _ => None,
    })
}

/// (order id, reason) of every cancellation.
pub fn cancels(events: &[Event]) -> Vec<(OrderId, CancelReason)> {
    events
        .iter()
        .filter_map(|e| match e.body {
            EventBody::OrderCancelled { order_id, reason, .. } => Some((order_id, reason)),
            _ => None,
        })
        .collect()
}
