//! Conditional and linked orders: scripted price paths with exact fills and cash, then properties
//! over random streams (OCO legs never both fire, trailing stops never loosen, fills only at prices
//! the book offered, replay agrees).
//!
//! Prices are AAPL ticks (0.01); the reference starts at 150.00. Reference prices are reference
//! trades: they trigger like book trades.

use proptest::prelude::*;
use simex_engine::*;
use simex_tests::harness::*;
use simex_tests::stream::StreamGenerator;
use std::collections::{BTreeMap, BTreeSet};

const AAPL: &str = "AAPL";
const AAPL_ID: SymbolId = 0;

fn market() -> Harness {
    let mut h = Harness::new();
    for portfolio_id in 1..=3 {
        h.portfolio(portfolio_id, 100_000);
    }
    h.run(CommandBody::SetReferencePrice { symbol_id: AAPL_ID, price_ticks: 15_000 });
    h
}

fn buy(portfolio_id: PortfolioId, price_ticks: i64, qty_lots: i64) -> NewOrder {
    NewOrder::limit(portfolio_id, AAPL_ID, Side::Buy, price_ticks, qty_lots)
}

fn sell(portfolio_id: PortfolioId, price_ticks: i64, qty_lots: i64) -> NewOrder {
    NewOrder::limit(portfolio_id, AAPL_ID, Side::Sell, price_ticks, qty_lots)
}

fn market_order(portfolio_id: PortfolioId, side: Side, qty_lots: i64) -> NewOrder {
    NewOrder::market(portfolio_id, AAPL_ID, side, qty_lots)
}

fn print(h: &mut Harness, price_ticks: i64) -> Vec<Event> {
    h.run(CommandBody::SetReferencePrice { symbol_id: AAPL_ID, price_ticks })
}

/// Places a conditional order that must be accepted; returns its id.
fn wait(h: &mut Harness, order: NewOrder) -> OrderId {
    let events = h.order(order);
    conditional_ids(&events).first().copied().unwrap_or_else(|| panic!("not accepted: {events:?}"))
}

fn conditional_ids(events: &[Event]) -> Vec<OrderId> {
    events
        .iter()
        .filter_map(|e| match e.body {
            EventBody::ConditionalAccepted(c) => Some(c.order_id),
            _ => None,
        })
        .collect()
}

/// (order id, trade price) of every trigger.
fn triggers(events: &[Event]) -> Vec<(OrderId, i64)> {
    events
        .iter()
        .filter_map(|e| match e.body {
            EventBody::OrderTriggered { order_id, price_ticks, .. } => Some((order_id, price_ticks)),
            _ => None,
        })
        .collect()
}

/// Takes a long position of `qty_lots` at 150.00 for `portfolio_id` from portfolio 3.
fn own(h: &mut Harness, portfolio_id: PortfolioId, qty_lots: i64) {
    h.place(sell(3, 15_000, qty_lots));
    let events = h.order(buy(portfolio_id, 15_000, qty_lots));
    assert_eq!(fill_prices(&events), vec![(15_000, qty_lots)]);
}

#[test]
fn a_stop_gapped_through_fills_after_the_gap_not_at_the_stop() {
    let mut h = market();
    own(&mut h, 1, 10);
    let cash_before = h.account(1).cash_micros;
    let stop = wait(&mut h, market_order(1, Side::Sell, 10).triggered_at(TriggerKind::Stop, 14_900));
    assert_eq!(h.account(1).reserved_micros, 0, "a waiting stop holds nothing");
    h.limit(2, AAPL, Side::Buy, 14_800, 6);
    h.limit(2, AAPL, Side::Buy, 14_700, 10);
    assert!(triggers(&print(&mut h, 14_950)).is_empty());

    // The price gaps from 149.50 to 148.50: the stop at 149.00 fires and sells into the bids.
    let events = print(&mut h, 14_850);
    assert_eq!(triggers(&events), vec![(stop, 14_850)]);
    assert_eq!(fill_prices(&events), vec![(14_800, 6), (14_700, 4)]);
    assert!(h.engine.conditional_order(stop).is_none() && h.engine.order(stop).is_none());
    // 6 x 148.00 + 4 x 147.00 = 1476.00, less the 1 bp taker fee (0.1476).
    assert_eq!(h.account(1).cash_micros, cash_before + 1_476 * DOLLAR - 147_600);
    assert_eq!(h.position(1, AAPL).qty_lots, 0);
}

#[test]
fn a_stop_limit_becomes_a_limit_at_its_price_and_rests_the_rest() {
    let mut h = market();
    let stop = wait(&mut h, buy(1, 15_150, 10).triggered_at(TriggerKind::Stop, 15_100));
    h.limit(2, AAPL, Side::Sell, 15_120, 4);
    h.limit(2, AAPL, Side::Sell, 15_200, 5);
    let events = print(&mut h, 15_100);
    assert_eq!(triggers(&events), vec![(stop, 15_100)]);
    assert_eq!(fill_prices(&events), vec![(15_120, 4)]);
    let resting = h.engine.order(stop).expect("the rest rests under the same id");
    assert_eq!((resting.price_ticks, resting.open_lots), (15_150, 6));
    assert_eq!(h.levels(AAPL, Side::Buy), vec![(15_150, 6)]);
}

#[test]
fn a_take_profit_fires_when_the_price_reaches_it_in_the_positions_favour() {
    let mut h = market();
    own(&mut h, 1, 10);
    let take_profit = wait(&mut h, market_order(1, Side::Sell, 10).triggered_at(TriggerKind::TakeProfit, 15_200));
    h.limit(2, AAPL, Side::Buy, 15_190, 10);
    assert!(triggers(&print(&mut h, 14_000)).is_empty(), "a fall does not take profit");
    assert!(triggers(&print(&mut h, 15_199)).is_empty());
    let events = print(&mut h, 15_210);
    assert_eq!(triggers(&events), vec![(take_profit, 15_210)]);
    assert_eq!(fill_prices(&events), vec![(15_190, 10)]);
    assert_eq!(h.position(1, AAPL).qty_lots, 0);
}

#[test]
fn a_trailing_stop_follows_the_high_never_loosens_and_fires_on_the_pullback() {
    let mut h = market();
    own(&mut h, 1, 10);
    let trail = wait(&mut h, market_order(1, Side::Sell, 10).trailing_ticks(100));
    assert_eq!(h.engine.trailing_stop_ticks(trail), Some(14_900));
    print(&mut h, 15_300);
    assert_eq!(h.engine.trailing_stop_ticks(trail), Some(15_200));
    print(&mut h, 15_250);
    assert_eq!(h.engine.trailing_stop_ticks(trail), Some(15_200), "a fall never loosens it");
    print(&mut h, 15_201);
    // A book trade moves it too.
    h.limit(2, AAPL, Side::Sell, 15_400, 1);
    h.order(buy(3, 15_400, 1));
    assert_eq!(h.engine.trailing_stop_ticks(trail), Some(15_300));
    h.limit(2, AAPL, Side::Buy, 15_250, 10);
    let events = print(&mut h, 15_300);
    assert_eq!(triggers(&events), vec![(trail, 15_300)]);
    assert_eq!(fill_prices(&events), vec![(15_250, 10)]);

    // In basis points: 1% of the low for a buy.
    let buy_trail = wait(&mut h, market_order(3, Side::Buy, 1).trailing_bps(100));
    assert_eq!(h.engine.trailing_stop_ticks(buy_trail), Some(15_300 + 153));
    print(&mut h, 15_000);
    assert_eq!(h.engine.trailing_stop_ticks(buy_trail), Some(15_150));
}

#[test]
fn oco_legs_never_both_fire() {
    let mut h = market();
    own(&mut h, 1, 10);
    let take_profit = wait(&mut h, sell(1, 15_200, 10).triggered_at(TriggerKind::TakeProfit, 15_200));
    let stop = NewOrder { oco_order_id: take_profit, ..market_order(1, Side::Sell, 10) };
    let stop = wait(&mut h, stop.triggered_at(TriggerKind::Stop, 14_800));
    assert_eq!(h.engine.conditional_order(take_profit).unwrap().oco_order_id, stop);
    h.limit(2, AAPL, Side::Buy, 14_700, 10);
    let events = print(&mut h, 14_750);
    assert_eq!(triggers(&events), vec![(stop, 14_750)]);
    assert_eq!(cancels(&events), vec![(take_profit, CancelReason::Linked)]);
    assert_eq!(fill_prices(&events), vec![(14_700, 10)]);
    assert!(triggers(&print(&mut h, 15_300)).is_empty());

    // A third order cannot join a linked pair, and cancelling one leg cancels the other.
    let a = wait(&mut h, buy(2, 14_000, 1).triggered_at(TriggerKind::TakeProfit, 14_000));
    let b = wait(&mut h, NewOrder { oco_order_id: a, ..buy(2, 16_000, 1) }.triggered_at(TriggerKind::Stop, 16_000));
    let third = NewOrder { oco_order_id: a, ..buy(2, 16_000, 1) }.triggered_at(TriggerKind::Stop, 16_000);
    assert_eq!(rejection(&h.order(third)), Some(RejectReason::InvalidTrigger));
    let events = h.cancel(2, b);
    assert_eq!(cancels(&events), vec![(b, CancelReason::User), (a, CancelReason::Linked)]);
}

#[test]
fn a_bracket_entry_filled_in_a_gap_then_exits_at_the_take_profit() {
    let mut h = market();
    h.limit(2, AAPL, Side::Sell, 15_250, 10);
    let events = h.run(CommandBody::NewBracket {
        entry: market_order(1, Side::Buy, 10).triggered_at(TriggerKind::Stop, 15_100),
        take_profit_price_ticks: 15_400,
        stop_loss_trigger_ticks: 14_900,
        stop_loss_limit_ticks: 0,
    });
    let [entry, take_profit, stop_loss] = conditional_ids(&events)[..] else { panic!("{events:?}") };
    assert_eq!(h.engine.conditional_order(take_profit).unwrap().qty_lots, 0, "exits wait for the entry");

    // The price gaps to 151.50: the entry fires and buys at the first ask, 152.50.
    let events = print(&mut h, 15_150);
    assert_eq!(triggers(&events), vec![(entry, 15_150)]);
    assert_eq!(fill_prices(&events), vec![(15_250, 10)]);
    assert_eq!(h.engine.conditional_order(take_profit).unwrap().qty_lots, 10);
    assert_eq!(h.engine.conditional_order(stop_loss).unwrap().qty_lots, 10);

    h.limit(3, AAPL, Side::Buy, 15_400, 10);
    let cash_before = h.account(1).cash_micros;
    let events = print(&mut h, 15_400);
    assert_eq!(triggers(&events), vec![(take_profit, 15_400)]);
    assert_eq!(cancels(&events), vec![(stop_loss, CancelReason::Linked)]);
    // The take-profit is a limit at 154.00 and meets the resting bid: it is the taker.
    assert_eq!(fill_prices(&events), vec![(15_400, 10)]);
    assert_eq!(h.account(1).cash_micros, cash_before + 1_540 * DOLLAR - 154_000);
    assert_eq!(h.position(1, AAPL).qty_lots, 0);
    assert!(h.engine.conditional_orders().is_empty());
}

#[test]
fn partial_entry_fills_size_the_exits_and_an_unfilled_entry_takes_its_exits_with_it() {
    let mut h = market();
    let events = h.run(CommandBody::NewBracket {
        entry: buy(1, 15_000, 10),
        take_profit_price_ticks: 15_300,
        stop_loss_trigger_ticks: 14_800,
        stop_loss_limit_ticks: 14_700,
    });
    let entry = accepted_id(&events).unwrap();
    let [take_profit, stop_loss] = conditional_ids(&events)[..] else { panic!("{events:?}") };
    h.order(sell(2, 15_000, 4));
    assert_eq!(h.engine.conditional_order(take_profit).unwrap().qty_lots, 4);
    h.order(sell(2, 15_000, 3));
    assert_eq!(h.engine.conditional_order(stop_loss).unwrap().qty_lots, 7);
    // Cancelling the entry leaves the exits that protect the 7 lots bought.
    assert_eq!(cancels(&h.cancel(1, entry)), vec![(entry, CancelReason::User)]);
    h.limit(3, AAPL, Side::Buy, 14_750, 20);
    let events = print(&mut h, 14_800);
    assert_eq!(triggers(&events), vec![(stop_loss, 14_800)]);
    assert_eq!(fill_prices(&events), vec![(14_750, 7)]);
    assert_eq!(h.position(1, AAPL).qty_lots, 0);

    // An entry that never filled takes its exits with it.
    let events = h.run(CommandBody::NewBracket {
        entry: buy(1, 14_000, 5),
        take_profit_price_ticks: 15_000,
        stop_loss_trigger_ticks: 13_500,
        stop_loss_limit_ticks: 0,
    });
    let entry = accepted_id(&events).unwrap();
    let exits = conditional_ids(&events);
    let events = h.cancel(1, entry);
    assert_eq!(
        cancels(&events),
        vec![(entry, CancelReason::User), (exits[0], CancelReason::ParentClosed), (exits[1], CancelReason::Linked)]
    );
}

#[test]
fn risk_is_checked_again_when_a_stop_fires() {
    let mut h = market();
    let stop = wait(&mut h, buy(1, 15_200, 600).triggered_at(TriggerKind::Stop, 15_100));
    // The stop was affordable when accepted (600 x 152 = 91,200); the cash is then withdrawn.
    h.run(CommandBody::AdjustCash { portfolio_id: 1, delta_micros: -50_000 * DOLLAR });
    let events = print(&mut h, 15_100);
    assert!(triggers(&events).is_empty());
    assert_eq!(rejection(&events), Some(RejectReason::InsufficientBuyingPower));
    assert_eq!(cancels(&events), vec![(stop, CancelReason::TriggerRejected)]);
    assert_eq!(h.account(1).reserved_micros, 0);

    // Accepting checks the order it will become: too large for the cash now is refused at once.
    assert_eq!(
        rejection(&h.order(buy(1, 15_200, 600).triggered_at(TriggerKind::Stop, 15_100))),
        Some(RejectReason::InsufficientBuyingPower)
    );
}

#[test]
fn fills_of_a_fired_stop_cascade_into_the_next_stop_in_a_fixed_order() {
    let mut h = market();
    own(&mut h, 1, 10);
    own(&mut h, 2, 10);
    let first = wait(&mut h, market_order(1, Side::Sell, 10).triggered_at(TriggerKind::Stop, 14_900));
    let second = wait(&mut h, market_order(2, Side::Sell, 10).triggered_at(TriggerKind::Stop, 14_800));
    h.limit(3, AAPL, Side::Buy, 14_850, 5);
    h.limit(3, AAPL, Side::Buy, 14_750, 5);
    h.limit(3, AAPL, Side::Buy, 14_700, 10);
    let events = print(&mut h, 14_890);
    // The first stop's last fill, 147.50, reaches the second stop at 148.00.
    assert_eq!(triggers(&events), vec![(first, 14_890), (second, 14_750)]);
    assert_eq!(fill_prices(&events), vec![(14_850, 5), (14_750, 5), (14_700, 10)]);
}

#[test]
fn orders_one_print_fires_go_in_acceptance_order_and_expire_like_any_order() {
    let mut h = market();
    let late = wait(&mut h, buy(1, 15_200, 1).triggered_at(TriggerKind::Stop, 15_050));
    let early_price_late_id = wait(&mut h, buy(2, 15_200, 1).triggered_at(TriggerKind::Stop, 15_020));
    let events = print(&mut h, 15_100);
    assert_eq!(triggers(&events), vec![(late, 15_100), (early_price_late_id, 15_100)]);

    // A halted symbol fires nothing; the first print after the resume does.
    let halted = wait(&mut h, buy(3, 15_300, 1).triggered_at(TriggerKind::Stop, 15_200));
    h.run(CommandBody::SetHalted { symbol_id: AAPL_ID, halted: true });
    assert!(triggers(&print(&mut h, 15_210)).is_empty());
    h.run(CommandBody::SetHalted { symbol_id: AAPL_ID, halted: false });
    assert_eq!(triggers(&print(&mut h, 15_220)), vec![(halted, 15_220)]);

    let gtd = NewOrder { time_in_force: TimeInForce::Gtd, expire_at_ns: h.now_ns + 10_000, ..buy(1, 15_300, 1) };
    let gtd = wait(&mut h, gtd.triggered_at(TriggerKind::Stop, 15_250));
    let at = h.now_ns + 20_000;
    let events = h.run_at(at, CommandBody::AdvanceTime);
    assert_eq!(cancels(&events), vec![(gtd, CancelReason::Expired)]);
}

// ---------------------------------------------------------------------------------------------
// Properties over random streams (which include conditional orders, OCO links and brackets)
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Watch {
    /// OCO pairs seen accepted (lower id first).
    oco_pairs: BTreeSet<(OrderId, OrderId)>,
    fired: BTreeSet<OrderId>,
    /// The book price of each open order (what the book offered at it).
    book_price: BTreeMap<OrderId, i64>,
    /// The last stop price seen of each waiting trailing stop, and its side.
    trailing: BTreeMap<OrderId, (Side, i64)>,
}

impl Watch {
    fn observe(&mut self, events: &[Event]) {
        for event in events {
            match event.body {
                EventBody::ConditionalAccepted(c) if c.oco_order_id != 0 => {
                    self.oco_pairs.insert((c.oco_order_id.min(c.order_id), c.oco_order_id.max(c.order_id)));
                }
                EventBody::OrderTriggered { order_id, .. } => {
                    self.fired.insert(order_id);
                }
                EventBody::OrderAccepted(a) => {
                    self.book_price.insert(a.order_id, a.price_ticks);
                }
                EventBody::OrderReplaced { order_id, price_ticks, .. } => {
                    self.book_price.insert(order_id, price_ticks);
                }
                EventBody::Fill(fill) => {
                    // A trade happens at the resting order's price: what the book offered.
                    assert_eq!(Some(&fill.price_ticks), self.book_price.get(&fill.maker_order_id), "{fill:?}");
                }
                _ => {}
            }
        }
    }

    fn check(&mut self, engine: &Engine) {
        for &(a, b) in &self.oco_pairs {
            assert!(!(self.fired.contains(&a) && self.fired.contains(&b)), "both OCO legs {a} and {b} fired");
        }
        for c in engine.conditional_orders() {
            let Some(stop) = engine.trailing_stop_ticks(c.order_id) else { continue };
            if let Some(&(side, previous)) = self.trailing.get(&c.order_id) {
                match side {
                    Side::Sell => assert!(stop >= previous, "sell trailing stop {} loosened", c.order_id),
                    Side::Buy => assert!(stop <= previous, "buy trailing stop {} loosened", c.order_id),
                }
            }
            self.trailing.insert(c.order_id, (c.side, stop));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn oco_never_fires_both_trailing_never_loosens_and_fills_are_at_offered_prices(seed in any::<u64>()) {
        let instruments = InstrumentTable::default_table();
        let mut generator = StreamGenerator::new(seed, &instruments);
        let mut h: Harness = Harness::new();
        let mut watch = Watch::default();
        let mut fired = 0usize;
        for _ in 0..1_500 {
            let command = generator.next_command();
            let events = h.run_at(command.timestamp_ns, command.body);
            generator.observe(&events);
            watch.observe(&events);
            watch.check(&h.engine);
            fired += triggers(&events).len();
        }
        // The stream does exercise triggers (else this test could not fail).
        prop_assert!(fired > 0 && !watch.oco_pairs.is_empty());
        // Dropping the harness replays every event and compares state hashes.
    }
}

#[test]
fn the_same_commands_give_the_same_events() {
    let instruments = InstrumentTable::default_table();
    let run = || {
        let mut generator = StreamGenerator::new(42, &instruments);
        let mut h: Harness = Harness::new();
        for _ in 0..1_000 {
            let command = generator.next_command();
            let events = h.run_at(command.timestamp_ns, command.body);
            generator.observe(&events);
        }
        (h.events.clone(), h.engine.state_hash())
    };
    assert_eq!(run(), run());
}
