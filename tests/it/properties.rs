//! Invariants over random command streams (proptest).
//!
//! Beyond `check_invariants()` (book never crossed, reservations equal what open orders require,
//! available cash never negative, positions net to zero), these tests keep independent models built
//! from the events alone and compare the engine with them after every command:
//! - cash: starting cash plus adjustments, minus what each buyer paid, plus what each seller got,
//!   minus fees; for every fill the buyer pays exactly what the seller receives plus both fees;
//! - time priority: within each level, orders appear in the order they joined it;
//! - limit prices: no fill is worse than the taker's limit (or a market order's protection price);
//! - reservations: zero for a portfolio with no open orders;
//! - replay: the event stream rebuilds the same state hash.

use proptest::prelude::*;
use simex_engine::*;
use simex_tests::harness::Harness;
use simex_tests::stream::StreamGenerator;
use std::collections::HashMap;

#[derive(Default)]
struct Models {
    cash_micros: HashMap<PortfolioId, i64>,
    /// Sequence number at which each open order joined its level.
    joined_seq: HashMap<OrderId, u64>,
    /// Limit (or protection) price and side of each order seen accepted.
    limits: HashMap<OrderId, (Side, i64)>,
}

impl Models {
    fn observe(&mut self, events: &[Event]) {
        for event in events {
            match event.body {
                EventBody::PortfolioCreated { portfolio_id, cash_micros } => {
                    self.cash_micros.insert(portfolio_id, cash_micros);
                }
                EventBody::CashAdjusted { portfolio_id, delta_micros } => {
                    *self.cash_micros.get_mut(&portfolio_id).expect("known portfolio") += delta_micros;
                }
                EventBody::OrderAccepted(a) => {
                    self.joined_seq.insert(a.order_id, event.seq);
                    self.limits.insert(a.order_id, (a.side, a.price_ticks));
                }
                EventBody::OrderReplaced { order_id, priority_kept, price_ticks, .. } => {
                    if !priority_kept {
                        self.joined_seq.insert(order_id, event.seq);
                    }
                    let side = self.limits[&order_id].0;
                    self.limits.insert(order_id, (side, price_ticks));
                }
                EventBody::Fill(fill) => {
                    let (buyer, seller, buyer_fee, seller_fee) = match fill.taker_side {
                        Side::Buy => (
                            fill.taker_portfolio_id,
                            fill.maker_portfolio_id,
                            fill.taker_fee_micros,
                            fill.maker_fee_micros,
                        ),
                        Side::Sell => (
                            fill.maker_portfolio_id,
                            fill.taker_portfolio_id,
                            fill.maker_fee_micros,
                            fill.taker_fee_micros,
                        ),
                    };
                    let buyer_pays = fill.notional_micros + buyer_fee;
                    let seller_gets = fill.notional_micros - seller_fee;
                    assert_eq!(buyer_pays, seller_gets + buyer_fee + seller_fee);
                    *self.cash_micros.get_mut(&buyer).expect("buyer") -= buyer_pays;
                    *self.cash_micros.get_mut(&seller).expect("seller") += seller_gets;
                    let (taker_side, taker_limit) = self.limits[&fill.taker_order_id];
                    assert!(
                        taker_side.crosses(taker_limit, fill.price_ticks),
                        "fill {fill:?} beyond the taker's limit {taker_limit}"
                    );
                    let (_, maker_limit) = self.limits[&fill.maker_order_id];
                    assert_eq!(maker_limit, fill.price_ticks, "a fill happens at the resting order's price");
                }
                _ => {}
            }
        }
    }

    fn check(&self, harness: &Harness) {
        for (&portfolio_id, &cash_micros) in &self.cash_micros {
            let account = harness.account(portfolio_id);
            assert_eq!(account.cash_micros, cash_micros, "portfolio {portfolio_id} cash differs from the event model");
            if account.open_orders == 0 {
                assert_eq!(account.reserved_micros, 0, "portfolio {portfolio_id} reserves cash with no open order");
            }
        }
        for symbol in ["AAPL", "BTC-USD", "EUR-USD"] {
            for side in [Side::Buy, Side::Sell] {
                let orders = harness.engine.book_orders(harness.symbol(symbol), side);
                for pair in orders.windows(2) {
                    if pair[0].price_ticks == pair[1].price_ticks {
                        assert!(
                            self.joined_seq[&pair[0].order_id] < self.joined_seq[&pair[1].order_id],
                            "{symbol} {side:?} level {} is not in time priority",
                            pair[0].price_ticks
                        );
                    }
                }
            }
        }
    }
}

fn run_stream(seed: u64, commands: usize) {
    let mut harness = Harness::new();
    let mut generator = StreamGenerator::new(seed, &InstrumentTable::default_table());
    let mut models = Models::default();
    for _ in 0..commands {
        let command = generator.next_command();
        let events = harness.run_at(command.timestamp_ns, command.body);
        for pair in events.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq + 1);
        }
        generator.observe(&events);
        models.observe(&events);
        models.check(&harness);
    }
    // Dropping the harness replays its events and compares state hashes.
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn invariants_hold_over_random_streams(seed in any::<u64>(), commands in 1usize..600) {
        run_stream(seed, commands);
    }
}

#[test]
fn a_long_stream_keeps_every_invariant() {
    run_stream(7, 20_000);
}

#[test]
fn two_replays_of_one_stream_agree() {
    let mut harness = Harness::new();
    let mut generator = StreamGenerator::new(11, &InstrumentTable::default_table());
    for _ in 0..3_000 {
        let command = generator.next_command();
        let events = harness.run_at(command.timestamp_ns, command.body);
        generator.observe(&events);
    }
    let replay = || {
        let mut engine = Engine::new(EngineConfig::default(), InstrumentTable::default_table());
        for event in &harness.events {
            engine.replay(event);
        }
        engine.state_hash()
    };
    assert_eq!(replay(), replay());
    assert_eq!(replay(), harness.engine.state_hash());
}
