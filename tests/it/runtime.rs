//! The sharded runtime: round trips under every wait strategy, cross-shard cash under concurrency,
//! backpressure, and shutdown that loses nothing.
//!
//! Every test runs with the `park` or `spin-then-yield` strategy or few threads, so tests sharing a
//! 2-core machine do not starve each other.

use simex::runtime::{
    AtomicLedger, Response, Runtime, RuntimeConfig, ShardEngine, SharedLedger, SubmitError, Submitter, TappedEvent,
    Ticket, WaitStrategy,
};
use simex_engine::*;
use std::collections::{BTreeMap, HashMap};

const DOLLAR: i64 = 1_000_000;
const AAPL: SymbolId = 0;
const MSFT: SymbolId = 1;

fn config(shards: usize, submitters: usize, wait: WaitStrategy) -> RuntimeConfig {
    RuntimeConfig { shards, submitters, wait, taps: vec!["journal".into()], ..RuntimeConfig::default() }
}

/// Polls until the command with `ticket` is done on `shards` shards; returns its events.
fn wait_done(submitter: &mut Submitter, ticket: Ticket, shards: usize) -> Vec<Event> {
    let (mut events, mut done) = (Vec::new(), 0);
    while done < shards {
        match submitter.poll() {
            Some(Response::Event { ticket: t, event, .. }) if t == ticket => events.push(event),
            Some(Response::Done { ticket: t, .. }) if t == ticket => done += 1,
            Some(other) => panic!("response for another command: {other:?}"),
            None => std::thread::yield_now(),
        }
    }
    events
}

fn run(submitter: &mut Submitter, command: CommandBody) -> Vec<Event> {
    let shards = match submitter.route(&command) {
        simex::runtime::Route::Shard(_) => 1,
        simex::runtime::Route::AllShards => submitter.shards(),
    };
    let ticket = loop {
        match submitter.submit(command) {
            Ok(ticket) => break ticket,
            Err(SubmitError::Busy) => std::thread::yield_now(),
        }
    };
    wait_done(submitter, ticket, shards)
}

fn drain_tap(tap: &mut simex::runtime::EventTap) -> Vec<TappedEvent> {
    let mut events = Vec::new();
    while let Some(event) = tap.poll() {
        events.push(event);
    }
    events
}

/// Rebuilds every shard from the tapped events alone, with a fresh shared ledger; returns the
/// engines and the ledger. Shard 0 (portfolio commands) is replayed first; the rest are deltas,
/// which commute.
fn replay(config: &RuntimeConfig, tapped: &[TappedEvent]) -> (Vec<ShardEngine>, SharedLedger) {
    let instruments = InstrumentTable::default_table();
    let ledger = SharedLedger(AtomicLedger::new(config.portfolios_max));
    let shard_of_symbol = config.shard_of_symbols(&instruments).unwrap();
    let mut engines: Vec<ShardEngine> = (0..config.shards)
        .map(|shard| {
            let engine_config = EngineConfig {
                shard_id: shard as u16,
                owned_symbols: Some(RuntimeConfig::symbols_of(&shard_of_symbol, shard)),
                ..config.engine.clone()
            };
            Engine::with_ledger(engine_config, instruments.clone(), ledger.clone())
        })
        .collect();
    let mut by_shard: BTreeMap<u16, Vec<Event>> = BTreeMap::new();
    for tapped in tapped {
        by_shard.entry(tapped.shard).or_default().push(tapped.event);
    }
    for (shard, events) in by_shard {
        for event in events {
            engines[usize::from(shard)].replay(&event);
        }
    }
    (engines, ledger)
}

#[test]
fn commands_round_trip_under_every_wait_strategy() {
    for wait in [WaitStrategy::Park, WaitStrategy::SpinThenYield, WaitStrategy::Spin] {
        let mut started = Runtime::start(config(2, 1, wait), InstrumentTable::default_table()).unwrap();
        let submitter = &mut started.submitters[0];
        for portfolio_id in [1, 2] {
            let events = run(submitter, CommandBody::CreatePortfolio { portfolio_id, cash_micros: 100_000 * DOLLAR });
            assert!(matches!(events[..], [Event { body: EventBody::PortfolioCreated { .. }, .. }]));
        }
        for symbol_id in [AAPL, MSFT] {
            run(submitter, CommandBody::NewOrder(NewOrder::limit(1, symbol_id, Side::Sell, 15_000, 10)));
            let events = run(submitter, CommandBody::NewOrder(NewOrder::limit(2, symbol_id, Side::Buy, 15_000, 4)));
            let fill = events.iter().find_map(|e| match e.body {
                EventBody::Fill(fill) => Some(fill),
                _ => None,
            });
            let fill = fill.unwrap_or_else(|| panic!("{wait:?}: no fill in {events:?}"));
            assert_eq!((fill.symbol_id, fill.qty_lots, fill.price_ticks), (symbol_id, 4, 15_000));
            // Order ids carry their shard.
            assert_eq!(fill.maker_order_id >> 48, u64::from(symbol_id));
        }
        // A mass cancel across symbols reaches both shards.
        let events = run(submitter, CommandBody::MassCancel { portfolio_id: 1, symbol_id: None });
        assert_eq!(events.iter().filter(|e| matches!(e.body, EventBody::OrderCancelled { .. })).count(), 2);
        assert!(submitter.latency().get(simex::runtime::Stage::RoundTrip).len() >= 7);

        let ledger = started.runtime.ledger();
        drop(started.submitters);
        let engines = started.runtime.shutdown();
        for engine in &engines {
            engine.check_invariants();
        }
        let account = ledger.account(2).unwrap();
        assert_eq!(account.cash_micros, 100_000 * DOLLAR - 2 * (600 * DOLLAR + 60_000));
        assert_eq!(engines.len(), 2);
    }
}

#[test]
fn one_portfolio_trading_on_every_shard_at_once_never_over_reserves_and_replays_exactly() {
    let config = config(2, 3, WaitStrategy::Park);
    let mut started = Runtime::start(config.clone(), InstrumentTable::default_table()).unwrap();
    let ledger = started.runtime.ledger();
    let mut submitters = std::mem::take(&mut started.submitters);
    let mut setup = submitters.pop().unwrap();
    run(&mut setup, CommandBody::CreatePortfolio { portfolio_id: 1, cash_micros: 20_000 * DOLLAR });
    run(&mut setup, CommandBody::CreatePortfolio { portfolio_id: 2, cash_micros: 100_000_000 * DOLLAR });
    for symbol_id in [AAPL, MSFT] {
        for price in [10_000, 10_010, 10_020] {
            run(&mut setup, CommandBody::NewOrder(NewOrder::limit(2, symbol_id, Side::Sell, price, 5_000)));
        }
    }

    // Two threads, one per shard, spend portfolio 1's cash concurrently: resting bids reserve it,
    // crossing bids spend it, sells of what was bought and cancels give it back.
    let sampler_stop = std::sync::atomic::AtomicBool::new(false);
    let (minimum_available, accepted) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut minimum = i64::MAX;
            while !sampler_stop.load(std::sync::atomic::Ordering::Relaxed) {
                minimum = minimum.min(ledger.0.available_micros(1));
                std::thread::yield_now();
            }
            minimum
        });
        let workers: Vec<_> = submitters
            .iter_mut()
            .zip([AAPL, MSFT])
            .map(|(submitter, symbol_id)| {
                scope.spawn(move || {
                    let mut rng_state = u64::from(symbol_id) * 7919 + 17;
                    let mut next = move || {
                        rng_state ^= rng_state << 13;
                        rng_state ^= rng_state >> 7;
                        rng_state ^= rng_state << 17;
                        rng_state
                    };
                    let (mut accepted, mut open) = (0usize, Vec::new());
                    for _ in 0..3_000 {
                        let roll = next() % 10;
                        let command = if roll < 6 {
                            let price = 9_980 + (next() % 40) as i64;
                            CommandBody::NewOrder(NewOrder::limit(
                                1,
                                symbol_id,
                                Side::Buy,
                                price,
                                1 + (next() % 30) as i64,
                            ))
                        } else if roll < 8 && !open.is_empty() {
                            let order_id = open.swap_remove((next() as usize) % open.len());
                            CommandBody::Cancel { portfolio_id: 1, order_id }
                        } else {
                            let order = NewOrder::limit(1, symbol_id, Side::Sell, 10_000, 1 + (next() % 10) as i64);
                            CommandBody::NewOrder(order.with_tif(TimeInForce::Ioc))
                        };
                        for event in run(submitter, command) {
                            if let EventBody::OrderAccepted(a) = event.body {
                                accepted += 1;
                                open.push(a.order_id);
                            }
                        }
                    }
                    accepted
                })
            })
            .collect();
        let accepted: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
        sampler_stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (sampler.join().unwrap(), accepted)
    });
    assert!(minimum_available >= 0, "portfolio 1 was over-reserved: available fell to {minimum_available}");
    println!("orders accepted: {accepted}, lowest available seen: {minimum_available}");
    assert!(accepted > 200, "the stress accepted too few orders to mean anything: {accepted}");

    drop(submitters);
    drop(setup);
    let mut tapped = Vec::new();
    let engines = {
        let runtime = started.runtime;
        let handle = std::thread::spawn(move || runtime.shutdown());
        while !handle.is_finished() {
            tapped.extend(drain_tap(&mut started.taps[0]));
        }
        tapped.extend(drain_tap(&mut started.taps[0]));
        handle.join().unwrap()
    };
    let live_account = ledger.account(1).unwrap();
    assert_eq!(live_account.available_micros(), ledger.0.available_micros(1), "no update was lost");
    assert!(live_account.reserved_micros >= 0 && live_account.available_micros() >= 0);

    let (replayed, replayed_ledger) = replay(&config, &tapped);
    for (live, replayed) in engines.iter().zip(&replayed) {
        live.check_invariants();
        assert_eq!(live.state_hash(), replayed.state_hash(), "a shard replays to a different state");
    }
    for portfolio_id in [1, 2] {
        assert_eq!(ledger.account(portfolio_id), replayed_ledger.account(portfolio_id), "portfolio {portfolio_id}");
    }
}

#[test]
fn a_full_ring_answers_busy_and_nothing_of_a_busy_command_happens() {
    let config = RuntimeConfig { inbound_ring_slots: 2, ..config(1, 1, WaitStrategy::Park) };
    let mut started = Runtime::start(config, InstrumentTable::default_table()).unwrap();
    let submitter = &mut started.submitters[0];
    run(submitter, CommandBody::CreatePortfolio { portfolio_id: 1, cash_micros: 100_000 * DOLLAR });
    let (mut accepted, mut busy) = (Vec::new(), 0usize);
    for index in 0..5_000 {
        let order = NewOrder::limit(1, AAPL, Side::Buy, 10_000 - (index % 100), 1);
        match submitter.submit(CommandBody::NewOrder(order)) {
            Ok(ticket) => accepted.push(ticket),
            Err(SubmitError::Busy) => busy += 1,
        }
    }
    let mut done: HashMap<Ticket, u32> = HashMap::new();
    let mut orders_accepted = 0;
    while done.len() < accepted.len() {
        match submitter.poll() {
            Some(Response::Done { ticket, .. }) => *done.entry(ticket).or_default() += 1,
            Some(Response::Event { event: Event { body: EventBody::OrderAccepted(_), .. }, .. }) => {
                orders_accepted += 1
            }
            Some(_) => {}
            None => std::thread::yield_now(),
        }
    }
    for ticket in &accepted {
        assert_eq!(done.get(ticket), Some(&1), "every accepted command is answered exactly once");
    }
    assert_eq!(done.len(), accepted.len(), "a busy command was executed");
    println!("accepted {}, busy {busy}", accepted.len());
    drop(started.submitters);
    let engines = started.runtime.shutdown();
    assert_eq!(engines[0].open_order_count(), orders_accepted, "each accepted order rests exactly once");
}

#[test]
fn shutdown_drains_every_accepted_command() {
    let mut started =
        Runtime::start(config(2, 1, WaitStrategy::SpinThenYield), InstrumentTable::default_table()).unwrap();
    let mut submitter = started.submitters.pop().unwrap();
    let mut accepted = 0;
    for index in 0..20_000u32 {
        // Rejected (no such portfolio), but each one is decided and journaled: one event apiece.
        let order = NewOrder::limit(index % 50 + 1_000, (index % 2) as SymbolId, Side::Buy, 10_000, 1);
        if submitter.submit(CommandBody::NewOrder(order)).is_ok() {
            accepted += 1;
        }
    }
    drop(submitter);
    let runtime = started.runtime;
    let handle = std::thread::spawn(move || runtime.shutdown());
    let mut tapped = Vec::new();
    while !handle.is_finished() || !started.taps[0].is_finished() {
        match started.taps[0].poll() {
            Some(event) => tapped.push(event),
            None => std::thread::yield_now(),
        }
    }
    handle.join().unwrap();
    assert_eq!(tapped.len(), accepted, "every accepted command was applied before the shards stopped");
    assert!(tapped
        .iter()
        .all(|t| matches!(t.event.body, EventBody::Rejected { reason: RejectReason::UnknownPortfolio, .. })));
}
