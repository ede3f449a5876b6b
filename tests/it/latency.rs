//! The latency model: an order accepted under it waits (as a `delayed` conditional order) until
//! its execution time, meets the prices of that time, is checked again for risk, can be cancelled
//! in flight, and survives snapshots and replay. Delays are drawn from a seed, so the same seed and
//! commands give the same events.

use simex_engine::instrument::DEFAULT_INSTRUMENTS_TOML;
use simex_engine::*;
use simex_tests::harness::*;
use simex_tests::stream::StreamGenerator;

const AAPL: &str = "AAPL";
/// AAPL's modelled delay in these tests: 5 ms, no jitter.
const DELAY_NS: i64 = 5_000_000;

/// The default table with AAPL's latency set by `settings` (TOML lines).
fn instruments(settings: &str) -> InstrumentTable {
    let text = DEFAULT_INSTRUMENTS_TOML.replacen("adv = \"50000000\"", &format!("adv = \"50000000\"\n{settings}"), 1);
    InstrumentTable::from_toml(&text).expect("valid table")
}

fn venue() -> Harness {
    let mut h: Harness = Harness::with(EngineConfig::default(), instruments("latency_us = 5000"));
    h.portfolio(1, 1_000_000);
    h.portfolio(2, 1_000_000);
    h
}

fn quote(h: &mut Harness, bid_ticks: i64, ask_ticks: i64) -> Vec<Event> {
    let symbol_id = h.symbol(AAPL);
    h.run(CommandBody::ReferenceQuote {
        symbol_id,
        bid_price_ticks: bid_ticks,
        bid_qty_lots: 10_000,
        ask_price_ticks: ask_ticks,
        ask_qty_lots: 10_000,
    })
}

fn delayed(events: &[Event]) -> AcceptedConditional {
    match events {
        [Event { body: EventBody::ConditionalAccepted(c), .. }] if c.trigger == TriggerKind::Delayed => *c,
        other => panic!("expected one delayed acceptance, got {other:?}"),
    }
}

#[test]
fn a_delayed_market_order_meets_the_price_of_its_execution_time_not_of_its_acceptance() {
    let mut h = venue();
    quote(&mut h, 14_999, 15_000);
    let aapl = h.symbol(AAPL);
    let accepted_at_ns = h.now_ns + 1_000;
    let c = delayed(&h.order(NewOrder::market(1, aapl, Side::Buy, 100)));
    assert_eq!(c.execute_at_ns, accepted_at_ns + DELAY_NS);
    assert_eq!((c.kind, c.qty_lots, c.time_in_force), (OrderKind::Market, 100, TimeInForce::Ioc));
    assert_eq!(h.account(1).reserved_micros, 0, "nothing is held in flight");
    // The market moves while the order is in flight.
    h.now_ns = accepted_at_ns + 2_000_000;
    quote(&mut h, 15_049, 15_050);
    // A command 1 ns before the execution time sends nothing.
    let early = h.run_at(c.execute_at_ns - 1, CommandBody::AdvanceTime);
    assert!(early.is_empty(), "{early:?}");
    // The first command at or after it sends the order before its own effect: a quote arriving at
    // the execution time is not seen by the order.
    let events = h.run_at(
        c.execute_at_ns,
        CommandBody::ReferenceQuote {
            symbol_id: aapl,
            bid_price_ticks: 15_099,
            bid_qty_lots: 10_000,
            ask_price_ticks: 15_100,
            ask_qty_lots: 10_000,
        },
    );
    assert!(
        matches!(events[0].body, EventBody::OrderTriggered { order_id, qty_lots: 100, .. } if order_id == c.order_id),
        "{events:?}"
    );
    assert!(matches!(events[1].body, EventBody::OrderAccepted(a) if a.order_id == c.order_id));
    // The ask at the execution time, plus the square-root impact of 100 shares (rounded up to a tick).
    assert_eq!(fill_prices(&events), vec![(15_051, 100)], "the ask at the execution time");
    assert!(matches!(events.last().unwrap().body, EventBody::ReferenceQuoteSet { .. }));
    assert_eq!(h.position(1, AAPL).qty_lots, 100);
}

#[test]
fn a_delayed_limit_order_rests_after_its_delay_and_time_priority_starts_then() {
    let mut h = venue();
    let aapl = h.symbol(AAPL);
    let first = delayed(&h.order(NewOrder::limit(1, aapl, Side::Buy, 14_000, 10)));
    // Nothing rests while it is in flight.
    assert!(h.levels(AAPL, Side::Buy).is_empty());
    h.run_at(first.execute_at_ns, CommandBody::AdvanceTime);
    assert_eq!(h.levels(AAPL, Side::Buy), vec![(14_000, 10)]);
    assert_eq!(h.queue(AAPL, Side::Buy), vec![first.order_id]);
    assert!(h.account(1).reserved_micros > 0, "a resting order holds its cash");
    assert!(h.engine.conditional_order(first.order_id).is_none());
}

#[test]
fn an_order_in_flight_can_be_cancelled_and_then_never_executes() {
    let mut h = venue();
    quote(&mut h, 14_999, 15_000);
    let aapl = h.symbol(AAPL);
    let c = delayed(&h.order(NewOrder::market(1, aapl, Side::Buy, 100)));
    assert_eq!(cancels(&h.cancel(1, c.order_id)), vec![(c.order_id, CancelReason::User)]);
    let later = h.run_at(c.execute_at_ns + 1, CommandBody::AdvanceTime);
    assert!(later.is_empty(), "{later:?}");
    assert_eq!(h.position(1, AAPL).qty_lots, 0);
}

#[test]
fn risk_is_checked_again_at_execution() {
    let mut h = venue();
    quote(&mut h, 14_999, 15_000);
    let aapl = h.symbol(AAPL);
    // Two buys of 4_000 shares at up to 151.00 each fit the $1M portfolio alone, not together; both
    // pass the checks when accepted, since nothing is held in flight.
    let first = delayed(&h.order(NewOrder::limit(1, aapl, Side::Buy, 15_100, 4_000)));
    let second = delayed(&h.order(NewOrder::limit(1, aapl, Side::Buy, 15_100, 4_000)));
    let events = h.run_at(second.execute_at_ns, CommandBody::AdvanceTime);
    assert_eq!(fills(&events).iter().map(|f| f.qty_lots).sum::<i64>(), 4_000, "{events:?}");
    assert_eq!(rejection(&events), Some(RejectReason::InsufficientBuyingPower));
    assert_eq!(cancels(&events), vec![(second.order_id, CancelReason::TriggerRejected)]);
    assert!(first.execute_at_ns < second.execute_at_ns);
}

#[test]
fn a_post_only_order_keeps_its_flag_in_flight() {
    let mut h = venue();
    let aapl = h.symbol(AAPL);
    h.run(CommandBody::SetReferencePrice { symbol_id: aapl, price_ticks: 15_000 });
    // A sell at 150.00, then a post-only buy at 150.00: when the buy is accepted the sell is still
    // in flight, so the buy passes; the sell reaches the book first, and the buy, executed after
    // it, would take: it is refused then.
    let sell = delayed(&h.order(NewOrder::limit(2, aapl, Side::Sell, 15_000, 10)));
    let buy = NewOrder { post_only: true, ..NewOrder::limit(1, aapl, Side::Buy, 15_000, 10) };
    let c = delayed(&h.order(buy));
    assert!(c.post_only && sell.execute_at_ns < c.execute_at_ns);
    let events = h.run_at(c.execute_at_ns, CommandBody::AdvanceTime);
    assert_eq!(rejection(&events), Some(RejectReason::PostOnlyWouldTake), "{events:?}");
    assert_eq!(cancels(&events), vec![(c.order_id, CancelReason::TriggerRejected)]);
    assert!(fills(&events).is_empty());
    assert_eq!(h.levels(AAPL, Side::Sell), vec![(15_000, 10)]);
}

#[test]
fn a_new_order_may_not_ask_to_be_delayed_and_brackets_are_delayed_whole() {
    let mut h = Harness::new();
    h.portfolio(1, 1_000_000);
    let aapl = h.symbol(AAPL);
    let asked = NewOrder { trigger: TriggerKind::Delayed, ..NewOrder::limit(1, aapl, Side::Buy, 15_000, 1) };
    assert_eq!(rejection(&h.order(asked)), Some(RejectReason::InvalidTrigger));

    let mut h = venue();
    quote(&mut h, 14_999, 15_000);
    let events = h.run(CommandBody::NewBracket {
        entry: NewOrder::market(1, aapl, Side::Buy, 100),
        take_profit_price_ticks: 15_500,
        stop_loss_trigger_ticks: 14_500,
        stop_loss_limit_ticks: 0,
    });
    let [entry, take_profit, stop_loss] = [0, 1, 2].map(|i| match events[i].body {
        EventBody::ConditionalAccepted(c) => c,
        ref other => panic!("{other:?}"),
    });
    assert_eq!(entry.trigger, TriggerKind::Delayed);
    assert_eq!((take_profit.parent_order_id, stop_loss.parent_order_id), (entry.order_id, entry.order_id));
    let events = h.run_at(entry.execute_at_ns, CommandBody::AdvanceTime);
    assert_eq!(fill_prices(&events), vec![(15_001, 100)], "the ask and a tick of impact");
    // The exits grew to the entry's fill.
    assert_eq!(h.engine.conditional_order(take_profit.order_id).unwrap().qty_lots, 100);
    assert_eq!(h.engine.conditional_order(stop_loss.order_id).unwrap().qty_lots, 100);
}

/// Execution times of orders accepted at the same instant under a seed.
fn execution_times(seed: u64) -> Vec<i64> {
    let table = instruments(&format!("latency_us = 1000\nlatency_jitter_us = 4000\nlatency_seed = {seed}"));
    let mut h: Harness = Harness::with(EngineConfig::default(), table);
    h.portfolio(1, 1_000_000);
    let aapl = h.symbol(AAPL);
    (0..32)
        .map(|_| {
            let at_ns = h.now_ns;
            let c = delayed(&h.run_at(at_ns, CommandBody::NewOrder(NewOrder::limit(1, aapl, Side::Buy, 10_000, 1))));
            c.execute_at_ns - at_ns
        })
        .collect()
}

#[test]
fn delays_are_drawn_from_the_seed_within_the_configured_range() {
    let delays = execution_times(7);
    assert_eq!(delays, execution_times(7), "the same seed gives the same delays");
    assert_ne!(delays, execution_times(8), "another seed gives other delays");
    assert!(delays.iter().all(|d| (1_000_000..=5_000_000).contains(d)), "{delays:?}");
    let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
    assert!(distinct.len() > 20, "jitter spreads the delays: {delays:?}");
}

#[test]
fn out_of_range_latency_settings_are_refused() {
    let text = DEFAULT_INSTRUMENTS_TOML.replacen("adv = \"50000000\"", "adv = \"50000000\"\nlatency_us = 60000001", 1);
    let error = InstrumentTable::from_toml(&text).unwrap_err().to_string();
    assert!(error.contains("latency_us"), "{error}");
}

/// Random streams with the latency model on in every instrument: invariants hold, the events
/// replay to the same state, snapshots taken with orders in flight restore the same future, and
/// two runs give the same events.
#[test]
fn random_streams_with_latency_replay_restore_and_repeat() {
    let mut text = DEFAULT_INSTRUMENTS_TOML.to_string();
    text =
        text.replace("[[instrument]]\n", "[[instrument]]\nlatency_us = 3\nlatency_jitter_us = 5\nlatency_seed = 11\n");
    let table = InstrumentTable::from_toml(&text).expect("valid table");
    let config = EngineConfig { shard_id: 1, orders_max: 4096, ..EngineConfig::default() };
    let run = |commands: usize| {
        let mut live = Engine::new(config.clone(), table.clone());
        let mut replayed = Engine::new(config.clone(), table.clone());
        let mut generator = StreamGenerator::new(5, &table).with_reference_data();
        let (mut all, mut events) = (Vec::new(), Vec::new());
        let (mut delayed_count, mut executed, mut restored_checks) = (0, 0, 0);
        let mut twin: Option<(Engine, usize)> = None;
        for index in 0..commands {
            if index % 500 == 250 && live.conditional_orders().iter().any(|c| c.trigger == TriggerKind::Delayed) {
                let bytes = live.snapshot_bytes();
                let restored = Engine::from_snapshot(config.clone(), table.clone(), LocalLedger::new(), &bytes)
                    .expect("snapshot restores");
                assert_eq!(restored.state_hash(), live.state_hash());
                twin = Some((restored, 200));
            }
            let command = generator.next_command();
            events.clear();
            live.apply(&command, &mut events);
            live.check_invariants();
            generator.observe(&events);
            for event in &events {
                replayed.replay(event);
                match event.body {
                    EventBody::ConditionalAccepted(c) if c.trigger == TriggerKind::Delayed => delayed_count += 1,
                    EventBody::OrderTriggered { .. } => executed += 1,
                    _ => {}
                }
            }
            if let Some((engine, left)) = &mut twin {
                let mut twin_events = Vec::new();
                engine.apply(&command, &mut twin_events);
                assert_eq!(twin_events, events, "a restored engine makes the same decisions");
                assert_eq!(engine.state_hash(), live.state_hash());
                restored_checks += 1;
                *left -= 1;
                if *left == 0 {
                    twin = None;
                }
            }
            all.extend_from_slice(&events);
        }
        assert_eq!(replayed.state_hash(), live.state_hash(), "replay of the events differs");
        assert!(
            delayed_count > 1_000 && executed > 500 && restored_checks > 1_000,
            "{delayed_count} {executed} {restored_checks}"
        );
        all
    };
    assert_eq!(run(12_000), run(12_000), "the same seed and commands give the same events");
}
