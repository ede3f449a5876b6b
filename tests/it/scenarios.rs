//! Scenario tests: one small market story per rule, with the exact fills, cash and book expected.
//!
//! Prices are in ticks (AAPL: 0.01, so 15_000 is 150.00), quantities in lots (AAPL: one share),
//! money in micros. Every scenario also checks invariants after each command and replays its
//! events into a fresh engine when it ends (see `Harness`).

use simex_engine::*;
use simex_tests::harness::*;
use std::collections::BTreeSet;

const AAPL: &str = "AAPL";

/// Two portfolios with $100,000 each.
fn market() -> Harness {
    let mut h = Harness::new();
    h.portfolio(1, 100_000);
    h.portfolio(2, 100_000);
    h.portfolio(3, 100_000);
    assert_eq!(h.symbol(AAPL), AAPL_ID);
    h
}

/// AAPL's id in the default instrument table.
const AAPL_ID: SymbolId = 0;

fn buy(portfolio_id: PortfolioId, price_ticks: i64, qty_lots: i64) -> NewOrder {
    NewOrder::limit(portfolio_id, AAPL_ID, Side::Buy, price_ticks, qty_lots)
}

fn sell(portfolio_id: PortfolioId, price_ticks: i64, qty_lots: i64) -> NewOrder {
    NewOrder::limit(portfolio_id, AAPL_ID, Side::Sell, price_ticks, qty_lots)
}

// ---------------------------------------------------------------------------------------------
// Limit orders and priority
// ---------------------------------------------------------------------------------------------

#[test]
fn a_crossing_limit_fills_at_resting_prices_and_pays_exact_cash_and_fees() {
    let mut h = market();
    h.limit(1, AAPL, Side::Sell, 15_000, 10);
    h.limit(1, AAPL, Side::Sell, 15_010, 5);
    let events = h.order(buy(2, 15_020, 12));
    assert_eq!(fill_prices(&events), vec![(15_000, 10), (15_010, 2)]);
    assert_eq!(h.levels(AAPL, Side::Sell), vec![(15_010, 3)]);
    assert!(h.levels(AAPL, Side::Buy).is_empty(), "a fully filled taker does not rest");

    // 10 x 150.00 + 2 x 150.10 = 1800.20; taker fee 1 bp of each fill: 0.15 + 0.03002.
    let fees = 150_000 + 30_020;
    assert_eq!(h.account(2).cash_micros, 100_000 * DOLLAR - 1_800_200_000 - fees);
    assert_eq!(h.account(2).fees_paid_micros, fees);
    assert_eq!(h.account(1).cash_micros, 100_000 * DOLLAR + 1_800_200_000, "maker fee is 0 bp");
    assert_eq!(h.position(2, AAPL).qty_lots, 12);
    assert_eq!(h.position(1, AAPL).qty_lots, -12);
    assert_eq!(h.account(2).reserved_micros, 0);
    let f = fills(&events)[0];
    assert_eq!((f.taker_side, f.maker_portfolio_id, f.taker_portfolio_id), (Side::Buy, 1, 2));
}

#[test]
fn orders_at_one_price_fill_first_in_first_out() {
    let mut h = market();
    let first = h.limit(1, AAPL, Side::Sell, 15_000, 5);
    let second = h.limit(3, AAPL, Side::Sell, 15_000, 5);
    let third = h.limit(1, AAPL, Side::Sell, 15_000, 5);
    assert_eq!(h.queue(AAPL, Side::Sell), vec![first, second, third]);
    let events = h.order(buy(2, 15_000, 7));
    let makers: Vec<_> = fills(&events).iter().map(|f| (f.maker_order_id, f.qty_lots)).collect();
    assert_eq!(makers, vec![(first, 5), (second, 2)]);
    // The partly filled order keeps its place at the front.
    assert_eq!(h.queue(AAPL, Side::Sell), vec![second, third]);
    let events = h.order(buy(2, 15_000, 4));
    let makers: Vec<_> = fills(&events).iter().map(|f| (f.maker_order_id, f.qty_lots)).collect();
    assert_eq!(makers, vec![(second, 3), (third, 1)]);
}

#[test]
fn a_better_price_fills_before_an_earlier_order() {
    let mut h = market();
    h.limit(1, AAPL, Side::Buy, 14_990, 5);
    let better = h.limit(3, AAPL, Side::Buy, 15_000, 5);
    let events = h.order(sell(2, 14_990, 6));
    assert_eq!(fills(&events)[0].maker_order_id, better);
    assert_eq!(fill_prices(&events), vec![(15_000, 5), (14_990, 1)]);
    assert_eq!(h.levels(AAPL, Side::Buy), vec![(14_990, 4)]);
}

#[test]
fn a_limit_remainder_rests_at_its_price() {
    let mut h = market();
    h.limit(1, AAPL, Side::Sell, 15_000, 3);
    let events = h.order(buy(2, 15_005, 10));
    assert_eq!(fill_prices(&events), vec![(15_000, 3)]);
    assert_eq!(h.levels(AAPL, Side::Buy), vec![(15_005, 7)]);
    assert!(h.levels(AAPL, Side::Sell).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Market orders
// ---------------------------------------------------------------------------------------------

#[test]
fn a_market_order_walks_the_book_and_cancels_what_it_cannot_fill() {
    let mut h = market();
    h.limit(1, AAPL, Side::Sell, 15_000, 5);
    h.limit(1, AAPL, Side::Sell, 15_100, 5);
    let events = h.order(NewOrder::market(2, h.symbol(AAPL), Side::Buy, 12));
    assert_eq!(fill_prices(&events), vec![(15_000, 5), (15_100, 5)]);
    let order_id = accepted_id(&events).unwrap();
    assert_eq!(cancels(&events), vec![(order_id, CancelReason::NoLiquidity)]);
    assert_eq!(h.account(2).reserved_micros, 0);
}

#[test]
fn a_market_order_into_an_empty_book_is_cancelled_for_no_liquidity() {
    let mut h = market();
    let events = h.order(NewOrder::market(2, h.symbol(AAPL), Side::Sell, 3));
    let order_id = accepted_id(&events).expect("accepted");
    assert_eq!(cancels(&events), vec![(order_id, CancelReason::NoLiquidity)]);
    assert!(fills(&events).is_empty());
}

#[test]
fn a_market_order_never_trades_beyond_the_band_around_the_reference_price() {
    let mut h = market();
    h.limit(1, AAPL, Side::Sell, 15_000, 5);
    h.limit(1, AAPL, Side::Sell, 16_400, 5);
    // The reference falls to 140.00: the band is 126.00 to 154.00.
    h.run(CommandBody::SetReferencePrice { symbol_id: h.symbol(AAPL), price_ticks: 14_000 });
    let events = h.order(NewOrder::market(2, h.symbol(AAPL), Side::Buy, 10));
    assert_eq!(fill_prices(&events), vec![(15_000, 5)]);
    assert_eq!(cancels(&events)[0].1, CancelReason::NoLiquidity);
    assert_eq!(h.levels(AAPL, Side::Sell), vec![(16_400, 5)]);
}

// ---------------------------------------------------------------------------------------------
// Time in force
// ---------------------------------------------------------------------------------------------

#[test]
fn ioc_fills_what_it_can_and_cancels_the_rest() {
    let mut h = market();
    h.limit(1, AAPL, Side::Sell, 15_000, 4);
    let events = h.order(buy(2, 15_000, 10).with_tif(TimeInForce::Ioc));
    assert_eq!(fill_prices(&events), vec![(15_000, 4)]);
    assert_eq!(cancels(&events)[0].1, CancelReason::IocRemainder);
    assert!(h.levels(AAPL, Side::Buy).is_empty());
}

#[test]
fn fok_fills_completely_or_leaves_no_trace() {
    let mut h = market();
    h.limit(1, AAPL, Side::Sell, 15_000, 4);
    h.limit(1, AAPL, Side::Sell, 15_010, 4);
    let asks_before = h.levels(AAPL, Side::Sell);
    let account_before = h.account(2);
    let events = h.order(buy(2, 15_010, 9).with_tif(TimeInForce::Fok));
    assert!(fills(&events).is_empty());
    assert_eq!(cancels(&events)[0].1, CancelReason::FokUnfillable);
    assert_eq!(h.levels(AAPL, Side::Sell), asks_before);
    assert_eq!(h.account(2), account_before);
    assert_eq!(h.engine.open_order_count(), 2);

    let events = h.order(buy(2, 15_010, 8).with_tif(TimeInForce::Fok));
    assert_eq!(fill_prices(&events), vec![(15_000, 4), (15_010, 4)]);
    assert!(cancels(&events).is_empty());
}

#[test]
fn gtd_orders_expire_at_their_time() {
    let mut h = market();
    let expire_at_ns = h.now_ns + 5 * NANOS_PER_SECOND;
    let order = NewOrder { time_in_force: TimeInForce::Gtd, expire_at_ns, ..buy(2, 15_000, 10) };
    let order_id = h.place(order);
    assert!(h.account(2).reserved_micros > 0);
    let events = h.run_at(expire_at_ns - 1, CommandBody::AdvanceTime);
    assert!(events.is_empty());
    let events = h.run_at(expire_at_ns, CommandBody::AdvanceTime);
    assert_eq!(cancels(&events), vec![(order_id, CancelReason::Expired)]);
    assert_eq!(h.account(2).reserved_micros, 0);
}

#[test]
fn expiry_happens_before_the_command_that_reveals_it() {
    let mut h = market();
    let expire_at_ns = h.now_ns + NANOS_PER_SECOND;
    h.place(NewOrder { time_in_force: TimeInForce::Gtd, expire_at_ns, ..sell(1, 15_000, 10) });
    // A buy arriving after the expiry must not trade with the expired order.
    let events = h.run_at(expire_at_ns + 1, CommandBody::NewOrder(buy(2, 15_000, 10)));
    assert_eq!(cancels(&events)[0].1, CancelReason::Expired);
    assert!(fills(&events).is_empty());
    assert_eq!(h.levels(AAPL, Side::Buy), vec![(15_000, 10)]);
}

#[test]
fn day_orders_expire_at_the_session_close_and_crypto_at_midnight() {
    let mut h = market();
    // START_NS is 14:30 UTC; AAPL closes 20:00 UTC, BTC-USD rolls at 00:00 UTC.
    let day = buy(2, 15_000, 1).with_tif(TimeInForce::Day);
    let aapl_order = h.place(day);
    let btc = h.symbol("BTC-USD");
    let btc_order = h.place(NewOrder::limit(2, btc, Side::Buy, 6_000_000, 100_000).with_tif(TimeInForce::Day));
    let close_ns = START_NS - START_NS.rem_euclid(NANOS_PER_DAY) + 20 * 3_600 * NANOS_PER_SECOND;
    assert!(h.run_at(close_ns - 1, CommandBody::AdvanceTime).is_empty());
    let events = h.run_at(close_ns, CommandBody::AdvanceTime);
    assert_eq!(cancels(&events), vec![(aapl_order, CancelReason::Expired)]);
    let midnight_ns = close_ns + 4 * 3_600 * NANOS_PER_SECOND;
    let events = h.run_at(midnight_ns, CommandBody::AdvanceTime);
    assert_eq!(cancels(&events), vec![(btc_order, CancelReason::Expired)]);
}

#[test]
fn post_only_orders_rest_or_are_rejected_if_they_would_take() {
    let mut h = market();
    h.limit(1, AAPL, Side::Sell, 15_000, 5);
    let resting = NewOrder { post_only: true, ..buy(2, 14_990, 5) };
    h.place(resting);
    let taking = NewOrder { post_only: true, ..buy(2, 15_000, 5) };
    assert_eq!(rejection(&h.order(taking)), Some(RejectReason::PostOnlyWouldTake));
    assert_eq!(h.levels(AAPL, Side::Buy), vec![(14_990, 5)]);
}

// ---------------------------------------------------------------------------------------------
// Cancel, replace, mass cancel
// ---------------------------------------------------------------------------------------------

#[test]
fn cancel_releases_the_reservation() {
    let mut h = market();
    let order_id = h.limit(2, AAPL, Side::Buy, 15_000, 10);
    // 1500.00 plus the larger fee rate (1 bp) on it, rounded up.
    assert_eq!(h.account(2).reserved_micros, 1_500_150_000);
    assert_eq!(h.account(2).available_micros(), 100_000 * DOLLAR - 1_500_150_000);
    let events = h.cancel(2, order_id);
    assert_eq!(cancels(&events), vec![(order_id, CancelReason::User)]);
    assert_eq!(h.account(2).reserved_micros, 0);
    assert_eq!(rejection(&h.cancel(2, order_id)), Some(RejectReason::UnknownOrder), "a second cancel is rejected");
}

#[test]
fn reducing_quantity_keeps_priority() {
    let mut h = market();
    let first = h.limit(1, AAPL, Side::Sell, 15_000, 10);
    let second = h.limit(3, AAPL, Side::Sell, 15_000, 10);
    let events = h.run(CommandBody::Replace { portfolio_id: 1, order_id: first, price_ticks: 15_000, qty_lots: 4 });
    assert!(matches!(events[0].body, EventBody::OrderReplaced { priority_kept: true, .. }));
    assert_eq!(h.queue(AAPL, Side::Sell), vec![first, second]);
    assert_eq!(h.levels(AAPL, Side::Sell), vec![(15_000, 14)]);
}

#[test]
fn increasing_quantity_or_changing_price_loses_priority() {
    let mut h = market();
    let first = h.limit(1, AAPL, Side::Sell, 15_000, 10);
    let second = h.limit(3, AAPL, Side::Sell, 15_000, 10);
    let events = h.run(CommandBody::Replace { portfolio_id: 1, order_id: first, price_ticks: 15_000, qty_lots: 11 });
    assert!(matches!(events[0].body, EventBody::OrderReplaced { priority_kept: false, .. }));
    assert_eq!(h.queue(AAPL, Side::Sell), vec![second, first]);

    h.run(CommandBody::Replace { portfolio_id: 3, order_id: second, price_ticks: 15_010, qty_lots: 10 });
    h.run(CommandBody::Replace { portfolio_id: 3, order_id: second, price_ticks: 15_000, qty_lots: 10 });
    assert_eq!(h.queue(AAPL, Side::Sell), vec![first, second], "back at the old price, behind the order that stayed");
}

#[test]
fn a_replace_to_a_crossing_price_trades_at_once() {
    let mut h = market();
    h.limit(1, AAPL, Side::Sell, 15_000, 5);
    let bid = h.limit(2, AAPL, Side::Buy, 14_900, 8);
    let events = h.run(CommandBody::Replace { portfolio_id: 2, order_id: bid, price_ticks: 15_000, qty_lots: 8 });
    assert_eq!(fill_prices(&events), vec![(15_000, 5)]);
    assert_eq!(h.levels(AAPL, Side::Buy), vec![(15_000, 3)]);
    assert_eq!(h.account(2).reserved_micros, required(&h, Side::Buy, 15_000, 3, 0));
}

#[test]
fn a_replace_that_needs_more_cash_than_available_changes_nothing() {
    let mut h = market();
    let bid = h.limit(2, AAPL, Side::Buy, 15_000, 600);
    let before = (h.account(2), h.levels(AAPL, Side::Buy));
    let events = h.run(CommandBody::Replace { portfolio_id: 2, order_id: bid, price_ticks: 15_000, qty_lots: 700 });
    assert_eq!(rejection(&events), Some(RejectReason::InsufficientBuyingPower));
    assert_eq!((h.account(2), h.levels(AAPL, Side::Buy)), before);
}

#[test]
fn mass_cancel_cancels_a_portfolios_orders_in_one_symbol_or_all() {
    let mut h = market();
    let btc = h.symbol("BTC-USD");
    h.limit(2, AAPL, Side::Buy, 14_900, 1);
    h.limit(2, AAPL, Side::Buy, 14_800, 1);
    h.place(NewOrder::limit(2, btc, Side::Buy, 6_000_000, 100_000));
    let other = h.limit(3, AAPL, Side::Buy, 14_900, 1);
    let events = h.run(CommandBody::MassCancel { portfolio_id: 2, symbol_id: Some(h.symbol(AAPL)) });
    assert_eq!(cancels(&events).len(), 2);
    assert_eq!(h.queue(AAPL, Side::Buy), vec![other]);
    let events = h.run(CommandBody::MassCancel { portfolio_id: 2, symbol_id: None });
    assert_eq!(cancels(&events).len(), 1);
    assert_eq!(h.account(2).reserved_micros, 0);
    assert_eq!(h.account(2).open_orders, 0);
}

// ---------------------------------------------------------------------------------------------
// Self-trade prevention
// ---------------------------------------------------------------------------------------------

fn self_trade(policy: SelfTradePolicy) -> (Harness, Vec<Event>, OrderId) {
    let mut h = market();
    let own = h.limit(2, AAPL, Side::Sell, 15_000, 5);
    h.limit(1, AAPL, Side::Sell, 15_010, 5);
    let order = NewOrder { self_trade_policy: policy, ..buy(2, 15_010, 8) };
    let events = h.order(order);
    (h, events, own)
}

#[test]
fn self_trade_default_cancels_the_resting_order_and_keeps_matching() {
    let (h, events, own) = self_trade(SelfTradePolicy::Default);
    assert_eq!(cancels(&events), vec![(own, CancelReason::SelfTrade)]);
    assert_eq!(fill_prices(&events), vec![(15_010, 5)]);
    assert_eq!(h.levels(AAPL, Side::Buy), vec![(15_010, 3)]);
}

#[test]
fn self_trade_cancel_incoming_cancels_the_new_order() {
    let (h, events, own) = self_trade(SelfTradePolicy::CancelIncoming);
    let incoming = accepted_id(&events).unwrap();
    assert_eq!(cancels(&events), vec![(incoming, CancelReason::SelfTrade)]);
    assert!(fills(&events).is_empty());
    assert_eq!(h.queue(AAPL, Side::Sell)[0], own);
}

#[test]
fn self_trade_cancel_both_cancels_both() {
    let (h, events, own) = self_trade(SelfTradePolicy::CancelBoth);
    let incoming = accepted_id(&events).unwrap();
    assert_eq!(cancels(&events), vec![(own, CancelReason::SelfTrade), (incoming, CancelReason::SelfTrade)]);
    assert_eq!(h.levels(AAPL, Side::Sell), vec![(15_010, 5)]);
}

#[test]
fn self_trade_allow_trades_with_itself() {
    let (h, events, _) = self_trade(SelfTradePolicy::Allow);
    assert_eq!(fill_prices(&events), vec![(15_000, 5), (15_010, 3)]);
    assert_eq!(h.position(2, AAPL).qty_lots, 3, "the self trade nets out");
}

#[test]
fn the_engine_default_policy_is_configurable() {
    let config = EngineConfig { self_trade_policy: SelfTradePolicy::CancelIncoming, ..EngineConfig::default() };
    let mut h: Harness = Harness::with(config, InstrumentTable::default_table());
    h.portfolio(2, 100_000);
    let own = h.limit(2, AAPL, Side::Sell, 15_000, 5);
    let events = h.order(buy(2, 15_000, 5));
    assert_eq!(cancels(&events)[0].1, CancelReason::SelfTrade);
    assert_eq!(h.queue(AAPL, Side::Sell), vec![own]);
}

// ---------------------------------------------------------------------------------------------
// Client order ids
// ---------------------------------------------------------------------------------------------

#[test]
fn client_order_ids_are_unique_among_open_orders_of_a_portfolio() {
    let mut h = market();
    let id = ClientOrderId::from_text("bot-1").unwrap();
    let first = h.place(NewOrder { client_order_id: id, ..buy(2, 14_900, 1) });
    let events = h.order(NewOrder { client_order_id: id, ..buy(2, 14_800, 1) });
    assert_eq!(rejection(&events), Some(RejectReason::DuplicateClientOrderId));
    // Another portfolio may use the same id.
    h.place(NewOrder { client_order_id: id, ..buy(3, 14_800, 1) });
    // Once the first order is closed, the id is free again.
    h.cancel(2, first);
    h.place(NewOrder { client_order_id: id, ..buy(2, 14_800, 1) });
}

// ---------------------------------------------------------------------------------------------
// Cash, fees, positions, margin
// ---------------------------------------------------------------------------------------------

fn required(h: &Harness, side: Side, price_ticks: i64, open_lots: i64, reserved_lots: i64) -> i64 {
    let instrument = h.engine.instruments().by_symbol(AAPL).unwrap();
    simex_engine::engine::required_cash(instrument, side, price_ticks, open_lots, reserved_lots)
}

#[test]
fn a_fill_at_a_better_price_releases_the_difference() {
    let mut h = market();
    h.limit(1, AAPL, Side::Sell, 15_000, 10);
    let events = h.order(buy(2, 15_100, 20));
    assert_eq!(fill_prices(&events), vec![(15_000, 10)]);
    // Left: 10 open at 151.00, reserved at that price; nothing held for the 10 bought at 150.00.
    assert_eq!(h.account(2).reserved_micros, 1_510_151_000);
    assert_eq!(h.account(2).cash_micros, 100_000 * DOLLAR - 1_500_000_000 - 150_000);
}

#[test]
fn maker_and_taker_fees_follow_the_instrument() {
    let mut h = market();
    let btc = h.symbol("BTC-USD");
    // 0.5 BTC at 60,000.00: notional 30,000.00; maker 5 bp = 15.00, taker 10 bp = 30.00.
    h.place(NewOrder::limit(1, btc, Side::Buy, 6_000_000, 50_000_000));
    let events = h.order(NewOrder::limit(2, btc, Side::Sell, 6_000_000, 50_000_000));
    let f = fills(&events)[0];
    assert_eq!(f.notional_micros, 30_000 * DOLLAR);
    assert_eq!((f.maker_fee_micros, f.taker_fee_micros), (15 * DOLLAR, 30 * DOLLAR));
    assert_eq!(h.account(1).cash_micros, 70_000 * DOLLAR - 15 * DOLLAR);
    assert_eq!(h.account(2).cash_micros, 130_000 * DOLLAR - 30 * DOLLAR);
}

#[test]
fn a_short_sale_holds_margin_until_covered_and_realizes_pnl() {
    let mut h = market();
    h.limit(2, AAPL, Side::Buy, 15_000, 10);
    // Portfolio 1 owns nothing: selling 10 opens a short. Held against it: 50% initial margin on
    // 1500.00, plus the proceeds net of the fee (1499.85), so shorting never adds buying power.
    let events = h.order(sell(1, 15_000, 10));
    assert_eq!(fill_prices(&events), vec![(15_000, 10)]);
    let account = h.account(1);
    assert_eq!(account.margin_micros, 750 * DOLLAR + 1_499_850_000);
    assert_eq!(account.cash_micros, 100_000 * DOLLAR + 1_500 * DOLLAR - 150_000);
    assert_eq!(account.available_micros(), 100_000 * DOLLAR - 750 * DOLLAR);
    assert_eq!(h.position(1, AAPL).qty_lots, -10);
    assert_eq!(h.position(1, AAPL).cost_basis_micros, -1_500 * DOLLAR);

    // Cover half at 149.00: half the margin is released, 5.00 realized.
    h.limit(3, AAPL, Side::Sell, 14_900, 10);
    let events = h.order(buy(1, 14_900, 5));
    assert_eq!(fill_prices(&events), vec![(14_900, 5)]);
    assert_eq!(h.account(1).margin_micros, (750 * DOLLAR + 1_499_850_000) / 2);
    assert_eq!(h.account(1).realized_pnl_micros, 5 * DOLLAR);
    h.order(buy(1, 14_900, 5));
    assert_eq!(h.account(1).margin_micros, 0);
    assert_eq!(h.account(1).realized_pnl_micros, 10 * DOLLAR);
    assert_eq!(h.position(1, AAPL).qty_lots, 0);
    // 1500 received, 1490 paid, taker fees 0.15 + 0.0745 + 0.0745.
    assert_eq!(h.account(1).cash_micros, 100_000 * DOLLAR + 10 * DOLLAR - 150_000 - 74_500 - 74_500);
}

#[test]
fn selling_what_is_owned_holds_the_lots_not_cash() {
    let mut h = market();
    h.limit(1, AAPL, Side::Sell, 15_000, 10);
    h.order(buy(2, 15_000, 10));
    let ask = h.limit(2, AAPL, Side::Sell, 15_100, 10);
    assert_eq!(h.position(2, AAPL).reserved_lots, 10);
    assert_eq!(h.account(2).reserved_micros, 0);
    // The same lots cannot be sold twice without shorting: the second sell holds margin instead.
    h.limit(2, AAPL, Side::Sell, 15_200, 4);
    assert_eq!(h.account(2).reserved_micros, required(&h, Side::Sell, 15_200, 4, 0));
    h.cancel(2, ask);
    assert_eq!(h.position(2, AAPL).reserved_lots, 0);
}

fn instruments_without_shorting() -> InstrumentTable {
    let text =
        simex_engine::instrument::DEFAULT_INSTRUMENTS_TOML.replace("short_allowed = true", "short_allowed = false");
    InstrumentTable::from_toml(&text).unwrap()
}

#[test]
fn short_sales_are_rejected_where_the_instrument_forbids_them() {
    let mut h: Harness = Harness::with(EngineConfig::default(), instruments_without_shorting());
    h.portfolio(1, 100_000);
    h.portfolio(2, 100_000);
    assert_eq!(rejection(&h.order(sell(1, 15_000, 1))), Some(RejectReason::ShortNotAllowed));
    h.limit(1, AAPL, Side::Buy, 15_000, 5);
    // Portfolio 2 cannot sell to it either, until it owns shares.
    assert_eq!(rejection(&h.order(sell(2, 15_000, 5))), Some(RejectReason::ShortNotAllowed));
}

// ---------------------------------------------------------------------------------------------
// Rejections: every reason
// ---------------------------------------------------------------------------------------------

/// Runs one command that must be rejected for `reason`, and checks that nothing changed but the
/// event sequence.
fn expect_rejected(h: &mut Harness, body: CommandBody, reason: RejectReason, seen: &mut BTreeSet<u16>) {
    let accounts: Vec<_> = (0..4).map(|p| h.engine.account(p)).collect();
    let (bids, asks) = (h.levels(AAPL, Side::Buy), h.levels(AAPL, Side::Sell));
    let events = h.run(body);
    assert_eq!(events.len(), 1, "a rejection is one event: {events:?}");
    assert_eq!(rejection(&events), Some(reason), "{body:?}");
    assert_eq!((0..4).map(|p| h.engine.account(p)).collect::<Vec<_>>(), accounts, "nothing half-happens");
    assert_eq!((h.levels(AAPL, Side::Buy), h.levels(AAPL, Side::Sell)), (bids, asks));
    seen.insert(reason.code());
}

#[test]
fn every_rejection_reason_is_produced_and_changes_nothing() {
    let mut seen = BTreeSet::new();
    let seen = &mut seen;
    let mut h = market();
    let aapl = h.symbol(AAPL);
    let btc = h.symbol("BTC-USD");
    h.run(CommandBody::SetReferencePrice { symbol_id: aapl, price_ticks: 15_000 });

    expect_rejected(&mut h, CommandBody::NewOrder(buy(99, 15_000, 1)), RejectReason::UnknownPortfolio, seen);
    expect_rejected(
        &mut h,
        CommandBody::CreatePortfolio { portfolio_id: 1, cash_micros: 5 },
        RejectReason::PortfolioExists,
        seen,
    );
    expect_rejected(
        &mut h,
        CommandBody::NewOrder(NewOrder { symbol_id: 999, ..buy(1, 15_000, 1) }),
        RejectReason::UnknownSymbol,
        seen,
    );
    expect_rejected(
        &mut h,
        CommandBody::SetReferencePrice { symbol_id: 999, price_ticks: 1 },
        RejectReason::UnknownSymbol,
        seen,
    );
    expect_rejected(&mut h, CommandBody::NewOrder(buy(1, 15_000, 0)), RejectReason::QuantityNotPositive, seen);
    expect_rejected(&mut h, CommandBody::NewOrder(buy(1, 15_000, -5)), RejectReason::QuantityNotPositive, seen);
    // BTC-USD's minimum is 0.00001 BTC = 1000 lots.
    expect_rejected(
        &mut h,
        CommandBody::NewOrder(NewOrder::limit(1, btc, Side::Buy, 6_000_000, 999)),
        RejectReason::QuantityBelowMinimum,
        seen,
    );
    expect_rejected(&mut h, CommandBody::NewOrder(buy(1, 15_000, 100_001)), RejectReason::QuantityTooLarge, seen);
    expect_rejected(&mut h, CommandBody::NewOrder(buy(1, 0, 1)), RejectReason::PriceNotPositive, seen);
    expect_rejected(&mut h, CommandBody::NewOrder(buy(1, -15_000, 1)), RejectReason::PriceNotPositive, seen);
    expect_rejected(&mut h, CommandBody::NewOrder(buy(1, 16_501, 1)), RejectReason::PriceOutsideBand, seen);
    expect_rejected(&mut h, CommandBody::NewOrder(sell(1, 13_499, 1)), RejectReason::PriceOutsideBand, seen);
    expect_rejected(&mut h, CommandBody::NewOrder(buy(1, 15_000, 1_000)), RejectReason::InsufficientBuyingPower, seen);
    expect_rejected(
        &mut h,
        CommandBody::NewOrder(NewOrder { post_only: true, ..buy(1, 15_000, 1).with_tif(TimeInForce::Ioc) }),
        RejectReason::InvalidTimeInForce,
        seen,
    );
    expect_rejected(
        &mut h,
        CommandBody::NewOrder(NewOrder { post_only: true, ..NewOrder::market(1, aapl, Side::Buy, 1) }),
        RejectReason::InvalidTimeInForce,
        seen,
    );
    let gtd_past = NewOrder { time_in_force: TimeInForce::Gtd, expire_at_ns: h.now_ns, ..buy(1, 15_000, 1) };
    expect_rejected(&mut h, CommandBody::NewOrder(gtd_past), RejectReason::ExpireTimeInPast, seen);
    expect_rejected(
        &mut h,
        CommandBody::Cancel { portfolio_id: 1, order_id: 12_345 },
        RejectReason::UnknownOrder,
        seen,
    );

    // Another portfolio's order is "unknown": its existence is not revealed.
    let resting = h.place(NewOrder { client_order_id: ClientOrderId::from_text("x").unwrap(), ..sell(2, 15_100, 1) });
    expect_rejected(
        &mut h,
        CommandBody::Cancel { portfolio_id: 1, order_id: resting },
        RejectReason::UnknownOrder,
        seen,
    );
    expect_rejected(
        &mut h,
        CommandBody::Replace { portfolio_id: 1, order_id: resting, price_ticks: 15_000, qty_lots: 1 },
        RejectReason::UnknownOrder,
        seen,
    );
    expect_rejected(
        &mut h,
        CommandBody::Replace { portfolio_id: 2, order_id: resting, price_ticks: 15_100, qty_lots: 1 },
        RejectReason::ReplaceNoChange,
        seen,
    );
    expect_rejected(
        &mut h,
        CommandBody::Replace { portfolio_id: 2, order_id: resting, price_ticks: 20_000, qty_lots: 1 },
        RejectReason::PriceOutsideBand,
        seen,
    );
    expect_rejected(
        &mut h,
        CommandBody::Replace { portfolio_id: 2, order_id: resting, price_ticks: 15_100, qty_lots: 0 },
        RejectReason::QuantityNotPositive,
        seen,
    );
    expect_rejected(
        &mut h,
        CommandBody::NewOrder(NewOrder {
            client_order_id: ClientOrderId::from_text("x").unwrap(),
            ..sell(2, 15_200, 1)
        }),
        RejectReason::DuplicateClientOrderId,
        seen,
    );
    expect_rejected(
        &mut h,
        CommandBody::NewOrder(NewOrder { post_only: true, ..buy(1, 15_100, 1) }),
        RejectReason::PostOnlyWouldTake,
        seen,
    );

    expect_rejected(
        &mut h,
        CommandBody::AdjustCash { portfolio_id: 1, delta_micros: -100_001 * DOLLAR },
        RejectReason::InsufficientCash,
        seen,
    );
    expect_rejected(
        &mut h,
        CommandBody::AdjustCash { portfolio_id: 1, delta_micros: 0 },
        RejectReason::InvalidAmount,
        seen,
    );
    expect_rejected(
        &mut h,
        CommandBody::CreatePortfolio { portfolio_id: 50, cash_micros: -1 },
        RejectReason::InvalidAmount,
        seen,
    );
    let too_rich = simex_engine::ledger::CASH_MICROS_MAX + 1;
    expect_rejected(
        &mut h,
        CommandBody::CreatePortfolio { portfolio_id: 50, cash_micros: too_rich },
        RejectReason::InvalidAmount,
        seen,
    );
    expect_rejected(
        &mut h,
        CommandBody::AdjustCash { portfolio_id: 1, delta_micros: too_rich - 100_000 * DOLLAR },
        RejectReason::InvalidAmount,
        seen,
    );
    let zero_limits = RiskLimits { open_orders_max: 0, ..RiskLimits::default() };
    expect_rejected(
        &mut h,
        CommandBody::SetRiskLimits { portfolio_id: 1, limits: zero_limits },
        RejectReason::InvalidAmount,
        seen,
    );

    // Halted: new orders and replaces are refused; cancels still work.
    h.run(CommandBody::SetHalted { symbol_id: aapl, halted: true });
    expect_rejected(&mut h, CommandBody::NewOrder(buy(1, 15_000, 1)), RejectReason::SymbolHalted, seen);
    expect_rejected(
        &mut h,
        CommandBody::Replace { portfolio_id: 2, order_id: resting, price_ticks: 15_200, qty_lots: 1 },
        RejectReason::SymbolHalted,
        seen,
    );
    h.run(CommandBody::SetHalted { symbol_id: aapl, halted: false });

    // Limits of one portfolio.
    let tight = RiskLimits {
        order_notional_max_micros: 1_000 * DOLLAR,
        gross_exposure_max_micros: 2_000 * DOLLAR,
        open_orders_max: 2,
        daily_loss_max_micros: 5 * DOLLAR,
    };
    h.run(CommandBody::SetRiskLimits { portfolio_id: 3, limits: tight });
    expect_rejected(&mut h, CommandBody::NewOrder(buy(3, 15_000, 7)), RejectReason::OrderNotionalTooLarge, seen);
    h.limit(3, AAPL, Side::Buy, 14_000, 6);
    h.limit(3, AAPL, Side::Buy, 14_000, 6);
    expect_rejected(&mut h, CommandBody::NewOrder(buy(3, 14_000, 1)), RejectReason::OpenOrdersLimitExceeded, seen);
    h.run(CommandBody::MassCancel { portfolio_id: 3, symbol_id: None });
    // Gross exposure: 12 shares held at 150 = 1800; another 6 at 150 would make 2700 > 2000.
    h.limit(2, AAPL, Side::Sell, 15_000, 12);
    h.order(buy(3, 15_000, 6));
    h.order(buy(3, 15_000, 6));
    expect_rejected(&mut h, CommandBody::NewOrder(buy(3, 14_000, 6)), RejectReason::GrossExposureExceeded, seen);
    // Reducing orders pass the exposure check. Sell 6 at 149.00 to portfolio 1: a loss of 6.00 + fee.
    h.limit(1, AAPL, Side::Buy, 14_900, 6);
    let events = h.order(sell(3, 14_900, 6));
    assert_eq!(fill_prices(&events), vec![(14_900, 6)]);
    expect_rejected(&mut h, CommandBody::NewOrder(buy(3, 14_000, 1)), RejectReason::DailyLossLimitBreached, seen);
    // After the loss limit, only risk-reducing orders are accepted...
    h.place(sell(3, 15_100, 6));
    // ...until the next UTC day.
    let next_day_ns = h.now_ns - h.now_ns.rem_euclid(NANOS_PER_DAY) + NANOS_PER_DAY + 1;
    h.run_at(next_day_ns, CommandBody::AdvanceTime);
    h.place(buy(3, 14_000, 1));

    // The order book's capacity.
    let mut small: Harness =
        Harness::with(EngineConfig { orders_max: 1, ..EngineConfig::default() }, InstrumentTable::default_table());
    small.portfolio(1, 100_000);
    small.limit(1, AAPL, Side::Buy, 14_000, 1);
    expect_rejected(&mut small, CommandBody::NewOrder(buy(1, 14_000, 1)), RejectReason::BookFull, seen);

    // Position limit (the instrument's max_position).
    let text = simex_engine::instrument::DEFAULT_INSTRUMENTS_TOML.replacen(
        "max_position = \"1000000\"",
        "max_position = \"100\"",
        1,
    );
    let mut limited: Harness = Harness::with(EngineConfig::default(), InstrumentTable::from_toml(&text).unwrap());
    limited.portfolio(1, 100_000);
    limited.limit(1, AAPL, Side::Buy, 14_000, 60);
    expect_rejected(&mut limited, CommandBody::NewOrder(buy(1, 14_000, 41)), RejectReason::PositionLimitExceeded, seen);
    expect_rejected(
        &mut limited,
        CommandBody::NewOrder(sell(1, 16_000, 101)),
        RejectReason::PositionLimitExceeded,
        seen,
    );

    // Shorting forbidden.
    let mut no_short: Harness = Harness::with(EngineConfig::default(), instruments_without_shorting());
    no_short.portfolio(1, 100_000);
    expect_rejected(&mut no_short, CommandBody::NewOrder(sell(1, 15_000, 1)), RejectReason::ShortNotAllowed, seen);

    // A notional that does not fit in 64 bits is "quantity too large", never a wrap.
    expect_rejected(
        &mut small,
        CommandBody::NewOrder(sell(1, i64::MAX / 2, 100_000)),
        RejectReason::QuantityTooLarge,
        seen,
    );

    // Conditional orders: a malformed trigger, and a replace of an order that is not in the book.
    let no_price = buy(1, 15_000, 1).triggered_at(TriggerKind::Stop, 0);
    expect_rejected(&mut h, CommandBody::NewOrder(no_price), RejectReason::InvalidTrigger, seen);
    let events = h.order(buy(1, 15_000, 1).triggered_at(TriggerKind::Stop, 15_500));
    let [Event { body: EventBody::ConditionalAccepted(waiting), .. }] = events[..] else {
        panic!("stop not accepted: {events:?}");
    };
    let waiting = waiting.order_id;
    expect_rejected(
        &mut h,
        CommandBody::Replace { portfolio_id: 1, order_id: waiting, price_ticks: 15_100, qty_lots: 1 },
        RejectReason::NotReplaceable,
        seen,
    );

    // Off-grid decimals never reach the engine: the conversion from text refuses them, and the
    // gateways report these two reasons.
    let instrument = h.engine.instruments().by_symbol(AAPL).unwrap().clone();
    assert_eq!(instrument.price_ticks_from_text("150.255"), Err(simex_engine::decimal::DecimalError::NotOnGrid));
    seen.insert(RejectReason::PriceNotOnTick.code());
    let btc_instrument = h.engine.instruments().by_symbol("BTC-USD").unwrap().clone();
    assert_eq!(btc_instrument.qty_lots_from_text("0.000000001"), Err(simex_engine::decimal::DecimalError::NotOnGrid));
    seen.insert(RejectReason::QuantityNotOnLot.code());
    let crossed = CommandBody::ReferenceQuote {
        symbol_id: AAPL_ID,
        bid_price_ticks: 15_001,
        bid_qty_lots: 1,
        ask_price_ticks: 15_000,
        ask_qty_lots: 1,
    };
    expect_rejected(&mut h, crossed, RejectReason::InvalidQuote, seen);

    let missing: Vec<_> = RejectReason::ALL.iter().filter(|r| !seen.contains(&r.code())).collect();
    assert!(missing.is_empty(), "no scenario produces {missing:?}");
}

#[test]
#[should_panic(expected = "time went backwards")]
fn time_going_backwards_is_a_caller_bug() {
    let mut h = market();
    let now = h.now_ns;
    h.run_at(now - 1, CommandBody::AdvanceTime);
}
