//! Random command streams that exercise the whole engine.
//!
//! A [`StreamGenerator`] produces commands from a seed: orders of every kind and time in force
//! around a drifting mid price in three instruments with different grids (AAPL, BTC-USD, EUR-USD),
//! cancels and replaces of orders it has seen accepted (and of ids that no longer exist), mass
//! cancels, reference price moves (some pushing resting orders out of the band), deposits and
//! withdrawals, halts, risk-limit changes and jumps in time that expire DAY and GTD orders;
//! conditional orders (stops, take-profits, trailing stops, some OCO-linked) and brackets. Now and
//! then it sends something wrong on purpose. With `with_reference_data` it also sends reference
//! quotes and trades. It learns order ids by observing the events, so the
//! same seed yields the same stream for any correct engine.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use simex_engine::*;
use std::collections::BTreeMap;

pub const PORTFOLIOS: u32 = 6;

struct SymbolModel {
    symbol_id: SymbolId,
    mid_ticks: i64,
    /// Typical order quantity in lots and the instrument's minimum.
    qty_unit_lots: i64,
    qty_min_lots: i64,
}

pub struct StreamGenerator {
    rng: ChaCha8Rng,
    symbols: Vec<SymbolModel>,
    /// (portfolio, order id) of every order seen accepted, most recent last (bounded).
    known_orders: Vec<(PortfolioId, OrderId)>,
    /// Orders open as far as the events tell: id -> (portfolio, price, open quantity).
    open_orders: BTreeMap<OrderId, (PortfolioId, i64, i64)>,
    /// The last conditional order seen accepted per portfolio (to link OCO pairs to).
    last_conditional: BTreeMap<PortfolioId, OrderId>,
    now_ns: i64,
    setup: Vec<CommandBody>,
    /// Whether half the price moves are reference quotes and trades (see `with_reference_data`).
    reference_data: bool,
}

impl StreamGenerator {
    pub fn new(seed: u64, instruments: &InstrumentTable) -> StreamGenerator {
        let model = |name: &str, mid_ticks: i64, qty_unit_lots: i64| {
            let instrument = instruments.by_symbol(name).expect("default instrument");
            SymbolModel {
                symbol_id: instrument.symbol_id,
                mid_ticks,
                qty_unit_lots,
                qty_min_lots: instrument.qty_min_lots,
            }
        };
        let symbols =
            vec![model("AAPL", 15_000, 10), model("BTC-USD", 6_000_000, 100_000), model("EUR-USD", 108_000, 10_000)];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut setup = Vec::new();
        for portfolio_id in 0..PORTFOLIOS {
            let cash_micros = rng.gen_range(20_000..200_000) * 1_000_000;
            setup.push(CommandBody::CreatePortfolio { portfolio_id, cash_micros });
        }
        for symbol in &symbols {
            setup.push(CommandBody::SetReferencePrice { symbol_id: symbol.symbol_id, price_ticks: symbol.mid_ticks });
        }
        setup.reverse();
        StreamGenerator {
            rng,
            symbols,
            known_orders: Vec::new(),
            open_orders: BTreeMap::new(),
            last_conditional: BTreeMap::new(),
            now_ns: 1_767_623_400 * NANOS_PER_SECOND,
            setup,
            reference_data: false,
        }
    }

    /// A generator whose price moves are, half the time, reference quotes (5 bps around the mid,
    /// sizes sometimes unknown) and reference trades near the mid, so that orders also trade with
    /// simulated liquidity and resting orders fill on trade-through. Streams without it are
    /// unchanged.
    pub fn with_reference_data(mut self) -> StreamGenerator {
        self.reference_data = true;
        self
    }

    /// Learns the ids of accepted orders.
    pub fn observe(&mut self, events: &[Event]) {
        for event in events {
            match event.body {
                EventBody::OrderAccepted(a) => {
                    self.known_orders.push((a.portfolio_id, a.order_id));
                    self.open_orders.insert(a.order_id, (a.portfolio_id, a.price_ticks, a.qty_lots));
                }
                EventBody::ConditionalAccepted(c) => {
                    self.known_orders.push((c.portfolio_id, c.order_id));
                    self.last_conditional.insert(c.portfolio_id, c.order_id);
                }
                EventBody::OrderCancelled { order_id, .. } => {
                    self.open_orders.remove(&order_id);
                }
                EventBody::OrderReplaced { order_id, price_ticks, qty_lots, .. } => {
                    if let Some(entry) = self.open_orders.get_mut(&order_id) {
                        entry.1 = price_ticks;
                        entry.2 = qty_lots;
                    }
                }
                EventBody::Fill(fill) => {
                    for order_id in [fill.maker_order_id, fill.taker_order_id] {
                        if let Some(entry) = self.open_orders.get_mut(&order_id) {
                            entry.2 -= fill.qty_lots;
                            if entry.2 == 0 {
                                self.open_orders.remove(&order_id);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if self.known_orders.len() > 512 {
            self.known_orders.drain(..256);
        }
    }

    pub fn next_command(&mut self) -> Command {
        let body = match self.setup.pop() {
            Some(body) => body,
            None => self.next_body(),
        };
        self.now_ns += if self.rng.gen_ratio(1, 500) {
            // Hours pass: DAY and GTD orders expire.
            self.rng.gen_range(1..30) * 3_600 * NANOS_PER_SECOND
        } else {
            self.rng.gen_range(0..2_000_000)
        };
        Command { timestamp_ns: self.now_ns, body }
    }

    fn next_body(&mut self) -> CommandBody {
        let roll = self.rng.gen_range(0..1000);
        let portfolio_id = self.portfolio();
        match roll {
            0..=539 => CommandBody::NewOrder(self.new_order(portfolio_id)),
            540..=599 => {
                let order = self.new_order(portfolio_id);
                CommandBody::NewOrder(self.conditional(order))
            }
            600..=619 => {
                let mut entry = self.new_order(portfolio_id);
                if self.rng.gen_ratio(1, 4) {
                    entry = self.conditional(entry);
                    entry.oco_order_id = 0;
                }
                let symbol = self.symbol_index(entry.symbol_id);
                let mid = self.symbols[symbol].mid_ticks;
                let step = (mid / 200).max(1);
                let (above, below) = (mid + step * self.rng.gen_range(1..4), mid - step * self.rng.gen_range(1..4));
                let (take_profit, stop_loss) = if entry.side == Side::Buy { (above, below) } else { (below, above) };
                CommandBody::NewBracket {
                    entry,
                    take_profit_price_ticks: if self.rng.gen_ratio(1, 6) { 0 } else { take_profit },
                    stop_loss_trigger_ticks: if self.rng.gen_ratio(1, 6) { 0 } else { stop_loss },
                    stop_loss_limit_ticks: if self.rng.gen_ratio(1, 3) { stop_loss } else { 0 },
                }
            }
            620..=719 => {
                let (owner, order_id) = self.known_order();
                // Mostly the owner; sometimes another portfolio, which must not learn the order exists.
                let portfolio_id = if self.rng.gen_ratio(9, 10) { owner } else { portfolio_id };
                CommandBody::Cancel { portfolio_id, order_id }
            }
            720..=869 => {
                let (owner, order_id) = self.known_order();
                let symbol = self.rng.gen_range(0..self.symbols.len());
                let (price_ticks, qty_lots) = match self.open_orders.get(&order_id).copied() {
                    Some((_, price, open)) => match self.rng.gen_range(0..10) {
                        // Smaller: keeps time priority.
                        0..=2 => (price, (open / 2).max(1)),
                        3 => (price, open + self.rng.gen_range(1..5)),
                        4 => (price, open),
                        5 => (price + self.rng.gen_range(-3..=3), open),
                        _ => (self.price(symbol), self.qty(symbol)),
                    },
                    None => (self.price(symbol), self.qty(symbol)),
                };
                CommandBody::Replace { portfolio_id: owner, order_id, price_ticks, qty_lots }
            }
            870..=872 => {
                let symbol_id =
                    if self.rng.gen() { Some(self.symbols[self.rng.gen_range(0..3)].symbol_id) } else { None };
                CommandBody::MassCancel { portfolio_id, symbol_id }
            }
            873..=949 => {
                let index = self.rng.gen_range(0..self.symbols.len());
                let symbol = &mut self.symbols[index];
                // A drift of up to about 1%, sometimes a jump of 15% that leaves orders outside the band.
                let step = symbol.mid_ticks / 100;
                let jump = if self.rng.gen_ratio(1, 20) { symbol.mid_ticks * 15 / 100 } else { 0 };
                let delta = self.rng.gen_range(-step..=step) + if self.rng.gen() { jump } else { -jump };
                symbol.mid_ticks = (symbol.mid_ticks + delta).max(100);
                let (symbol_id, mid_ticks, unit_lots) = (symbol.symbol_id, symbol.mid_ticks, symbol.qty_unit_lots);
                if self.reference_data && self.rng.gen() {
                    let half_spread_ticks = (mid_ticks / 4_000).max(1);
                    if self.rng.gen() {
                        CommandBody::ReferenceQuote {
                            symbol_id,
                            bid_price_ticks: mid_ticks - half_spread_ticks,
                            bid_qty_lots: unit_lots * self.rng.gen_range(0..8),
                            ask_price_ticks: mid_ticks + half_spread_ticks,
                            ask_qty_lots: unit_lots * self.rng.gen_range(0..8),
                        }
                    } else {
                        let offset_ticks = self.rng.gen_range(-4 * half_spread_ticks..=4 * half_spread_ticks);
                        let qty_lots = unit_lots * self.rng.gen_range(1..30);
                        CommandBody::ReferenceTrade { symbol_id, price_ticks: mid_ticks + offset_ticks, qty_lots }
                    }
                } else {
                    CommandBody::SetReferencePrice { symbol_id, price_ticks: mid_ticks }
                }
            }
            950..=974 => {
                let delta_micros = self.rng.gen_range(-50_000i64..50_000) * 1_000_000;
                CommandBody::AdjustCash { portfolio_id, delta_micros }
            }
            975..=984 => {
                let symbol_id = self.symbols[self.rng.gen_range(0..3)].symbol_id;
                CommandBody::SetHalted { symbol_id, halted: self.rng.gen_ratio(1, 8) }
            }
            985..=992 => {
                let limits = RiskLimits {
                    order_notional_max_micros: self.rng.gen_range(1_000..100_000) * 1_000_000,
                    gross_exposure_max_micros: self.rng.gen_range(10_000..1_000_000) * 1_000_000,
                    open_orders_max: self.rng.gen_range(1..40),
                    daily_loss_max_micros: self.rng.gen_range(1..5_000) * 1_000_000,
                };
                CommandBody::SetRiskLimits { portfolio_id, limits }
            }
            993..=995 => {
                CommandBody::CreatePortfolio { portfolio_id: self.rng.gen_range(0..PORTFOLIOS + 2), cash_micros: 1 }
            }
            _ => CommandBody::AdvanceTime,
        }
    }

    fn portfolio(&mut self) -> PortfolioId {
        if self.rng.gen_ratio(1, 100) {
            PORTFOLIOS + 7
        } else {
            self.rng.gen_range(0..PORTFOLIOS)
        }
    }

    fn known_order(&mut self) -> (PortfolioId, OrderId) {
        if !self.open_orders.is_empty() && self.rng.gen_ratio(4, 5) {
            let index = self.rng.gen_range(0..self.open_orders.len());
            let (&order_id, &(portfolio_id, _, _)) = self.open_orders.iter().nth(index).expect("index in range");
            return (portfolio_id, order_id);
        }
        if self.known_orders.is_empty() || self.rng.gen_ratio(1, 20) {
            return (self.rng.gen_range(0..PORTFOLIOS), self.rng.gen_range(0..1_000));
        }
        // Favour recent orders: they are the ones most likely still open.
        let len = self.known_orders.len();
        let back = self.rng.gen_range(0..len.min(40));
        self.known_orders[len - 1 - back]
    }

    fn price(&mut self, symbol: usize) -> i64 {
        let mid = self.symbols[symbol].mid_ticks;
        let spread = (mid / 200).max(5);
        let price = if self.rng.gen_ratio(1, 50) {
            // Outside the band, or not positive.
            if self.rng.gen() {
                mid * 2
            } else {
                self.rng.gen_range(-2..=0)
            }
        } else {
            mid + self.rng.gen_range(-spread..=spread)
        };
        if self.rng.gen_ratio(1, 10) {
            // Cluster on a few prices so that levels hold several orders.
            mid + (price - mid) / 4 * 4
        } else {
            price
        }
    }

    /// Mostly passive (buys below the mid, sells above), so that books build depth; sometimes anywhere.
    fn order_price(&mut self, symbol: usize, side: Side) -> i64 {
        let price = self.price(symbol);
        let mid = self.symbols[symbol].mid_ticks;
        if price <= 0 || self.rng.gen_ratio(1, 4) {
            return price;
        }
        let distance = (price - mid).abs() + 1;
        match side {
            Side::Buy => mid - distance,
            Side::Sell => mid + distance,
        }
    }

    fn qty(&mut self, symbol: usize) -> i64 {
        let model = &self.symbols[symbol];
        match self.rng.gen_range(0..100) {
            0 => 0,
            1 => model.qty_min_lots - 1,
            2 => model.qty_unit_lots * 10_000_000,
            _ => (model.qty_unit_lots * self.rng.gen_range(1..20) / 10).max(model.qty_min_lots),
        }
    }

    fn symbol_index(&self, symbol_id: SymbolId) -> usize {
        self.symbols.iter().position(|s| s.symbol_id == symbol_id).unwrap_or(0)
    }

    /// Turns an order into a stop, take-profit or trailing stop near the mid price, sometimes
    /// OCO-linked to the portfolio's last conditional order, sometimes malformed.
    fn conditional(&mut self, order: NewOrder) -> NewOrder {
        let symbol = self.symbol_index(order.symbol_id);
        let mid = self.symbols[symbol].mid_ticks;
        let step = (mid / 400).max(1);
        let trigger_price_ticks = mid + step * self.rng.gen_range(-6..=6);
        let mut order = match self.rng.gen_range(0..10) {
            0..=3 => order.triggered_at(TriggerKind::Stop, trigger_price_ticks),
            4..=6 => order.triggered_at(TriggerKind::TakeProfit, trigger_price_ticks),
            7 => NewOrder { kind: OrderKind::Market, ..order }.trailing_ticks(step * self.rng.gen_range(1..5)),
            8 => NewOrder { kind: OrderKind::Market, ..order }.trailing_bps(self.rng.gen_range(1..300)),
            // Malformed: no trigger price, or both trails.
            _ => NewOrder { trail_ticks: 1, trail_bps: 1, ..order.triggered_at(TriggerKind::TrailingStop, 0) },
        };
        if self.rng.gen_ratio(1, 3) {
            order.oco_order_id = self.last_conditional.get(&order.portfolio_id).copied().unwrap_or(0);
        }
        order
    }

    fn new_order(&mut self, portfolio_id: PortfolioId) -> NewOrder {
        let symbol = self.rng.gen_range(0..self.symbols.len());
        let symbol_id = if self.rng.gen_ratio(1, 200) { 999 } else { self.symbols[symbol].symbol_id };
        let side = if self.rng.gen() { Side::Buy } else { Side::Sell };
        let kind = if self.rng.gen_ratio(1, 8) { OrderKind::Market } else { OrderKind::Limit };
        let time_in_force = match self.rng.gen_range(0..20) {
            0..=9 => TimeInForce::Gtc,
            10..=11 => TimeInForce::Day,
            12..=13 => TimeInForce::Gtd,
            14..=17 => TimeInForce::Ioc,
            _ => TimeInForce::Fok,
        };
        let expire_at_ns = self.now_ns + self.rng.gen_range(-1_000_000i64..3 * 3_600 * NANOS_PER_SECOND);
        let client_order_id = match self.rng.gen_range(0..4) {
            0 => ClientOrderId::NONE,
            _ => ClientOrderId::from_text(&format!("c{}", self.rng.gen_range(0..30))).expect("short ascii id"),
        };
        let self_trade_policy = match self.rng.gen_range(0..8) {
            0 => SelfTradePolicy::CancelIncoming,
            1 => SelfTradePolicy::CancelBoth,
            2 => SelfTradePolicy::CancelResting,
            _ => SelfTradePolicy::Default,
        };
        NewOrder {
            portfolio_id,
            symbol_id,
            side,
            kind,
            price_ticks: self.order_price(symbol, side),
            qty_lots: self.qty(symbol),
            time_in_force,
            expire_at_ns,
            client_order_id,
            post_only: self.rng.gen_ratio(1, 10),
            self_trade_policy,
            ..NewOrder::limit(portfolio_id, symbol_id, side, 0, 0)
        }
    }
}
