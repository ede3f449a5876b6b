//! Simulated liquidity: reference quotes and trades, spread, square-root impact, slicing, liquidity
//! limits, trade-through fills of resting orders, liquidity modes, and their properties.
//!
//! Hand-computed figures use AAPL with an average daily volume of 1_000_000 shares, daily volatility
//! 200 bps (2%), impact coefficient Y = 7000 bps (0.7), taker fee 1 bp, maker fee 0. The impact cost of
//! the first C lots is E(C) = touch * Y * sigma * C * sqrt(C / ADV) in ticks times lots, rounded up;
//! slice k is priced at touch + ceil((E(C_k) - E(C_k-1)) / q_k) (see `docs/simulation.md`).

use proptest::prelude::*;
use simex_engine::instrument::DEFAULT_INSTRUMENTS_TOML;
use simex_engine::*;
use simex_tests::harness::*;
use simex_tests::stream::StreamGenerator;
use std::collections::HashMap;

const AAPL: &str = "AAPL";
const MSFT: &str = "MSFT";
const TSLA: &str = "TSLA";
const SPY: &str = "SPY";

/// The default table with AAPL's ADV at 1_000_000, MSFT without an ADV (so no impact: spread only),
/// TSLA in `book` mode, SPY in `simulated` mode and NVDA modelling queue position.
fn instruments() -> InstrumentTable {
    let text = DEFAULT_INSTRUMENTS_TOML
        .replacen("adv = \"50000000\"", "adv = \"1000000\"", 1)
        .replacen("adv = \"20000000\"\n", "", 1)
        .replacen("adv = \"100000000\"", "adv = \"100000000\"\nliquidity = \"book\"", 1)
        .replacen("adv = \"70000000\"", "adv = \"70000000\"\nliquidity = \"simulated\"", 1)
        .replacen("adv = \"200000000\"", "adv = \"200000000\"\nqueue_position = true", 1);
    InstrumentTable::from_toml(&text).expect("valid table")
}

fn market() -> Harness {
    let mut h = Harness::with(EngineConfig::default(), instruments());
    h.portfolio(1, 10_000_000);
    h.portfolio(2, 10_000_000);
    h
}

fn quote(h: &mut Harness, symbol: &str, bid: (i64, i64), ask: (i64, i64)) -> Vec<Event> {
    let symbol_id = h.symbol(symbol);
    h.run(CommandBody::ReferenceQuote {
        symbol_id,
        bid_price_ticks: bid.0,
        bid_qty_lots: bid.1,
        ask_price_ticks: ask.0,
        ask_qty_lots: ask.1,
    })
}

fn trade(h: &mut Harness, symbol: &str, price_ticks: i64, qty_lots: i64) -> Vec<Event> {
    let symbol_id = h.symbol(symbol);
    h.run(CommandBody::ReferenceTrade { symbol_id, price_ticks, qty_lots })
}

fn market_order(h: &mut Harness, portfolio_id: PortfolioId, symbol: &str, side: Side, qty_lots: i64) -> Vec<Event> {
    let symbol_id = h.symbol(symbol);
    h.order(NewOrder::market(portfolio_id, symbol_id, side, qty_lots))
}

fn limit(h: &mut Harness, portfolio_id: PortfolioId, symbol: &str, side: Side, price: i64, qty: i64) -> Vec<Event> {
    let symbol_id = h.symbol(symbol);
    h.order(NewOrder::limit(portfolio_id, symbol_id, side, price, qty))
}

#[test]
fn a_large_market_buy_pays_the_ask_plus_square_root_impact_in_slices() {
    let mut h = market();
    quote(&mut h, AAPL, (14_999, 5_000), (15_000, 5_000));
    let cash_before = h.account(1).cash_micros;
    let events = market_order(&mut h, 1, AAPL, Side::Buy, 10_000);
    // Slices of max(displayed 5_000, ceil(10_000 / 4)) = 5_000 lots.
    // E(5_000) = 15_000 * 0.7 * 0.02 * 5_000 * sqrt(0.005) = 74_246.2 -> 74_247 tick-lots;
    //   slice 1 = 15_000 + ceil(74_247 / 5_000 = 14.85) = 15_015.
    // E(10_000) = 15_000 * 0.7 * 0.02 * 10_000 * 0.1 = 210_000 exactly;
    //   slice 2 = 15_000 + ceil(135_753 / 5_000 = 27.15) = 15_028.
    // Average 150.215 against the law's 150.00 * (1 + 0.0014) = 150.21: rounding costs the taker half a tick.
    assert_eq!(fill_prices(&events), vec![(15_015, 5_000), (15_028, 5_000)]);
    let fills = fills(&events);
    assert!(fills.iter().all(|f| f.maker_is_simulated() && f.maker_portfolio_id == NO_PORTFOLIO));
    assert!(fills.iter().all(|f| f.maker_fee_micros == 0));
    // Notionals: 5_000 * 150.15 = 750_750 dollars, 5_000 * 150.28 = 751_400 dollars; fees 1 bp each.
    assert_eq!(fills[0].notional_micros, 750_750 * DOLLAR);
    assert_eq!(fills[1].notional_micros, 751_400 * DOLLAR);
    assert_eq!(fills[0].taker_fee_micros, 75_075_000);
    assert_eq!(fills[1].taker_fee_micros, 75_140_000);
    let paid = (750_750 + 751_400) * DOLLAR + 75_075_000 + 75_140_000;
    assert_eq!(h.account(1).cash_micros, cash_before - paid);
    assert_eq!(h.account(1).reserved_micros, 0);
    let position = h.position(1, AAPL);
    assert_eq!((position.qty_lots, position.cost_basis_micros), (10_000, (750_750 + 751_400) * DOLLAR));
    assert_eq!(h.engine.market(h.symbol(AAPL)).unwrap().counterparty_lots, -10_000);
}

#[test]
fn a_sell_pays_the_bid_minus_impact() {
    let mut h = market();
    quote(&mut h, AAPL, (14_999, 5_000), (15_000, 5_000));
    let events = market_order(&mut h, 1, AAPL, Side::Sell, 10_000);
    // E(5_000) on 14_999 = 74_241.3 -> 74_242: 14_999 - ceil(14.85) = 14_984.
    // E(10_000) = 209_986: 14_999 - ceil(135_744 / 5_000 = 27.15) = 14_971.
    assert_eq!(fill_prices(&events), vec![(14_984, 5_000), (14_971, 5_000)]);
    assert_eq!(h.position(1, AAPL).qty_lots, -10_000);
    assert!(h.position(1, AAPL).margin_micros > 0);
}

#[test]
fn with_only_trades_known_the_spread_is_modelled_per_asset_class() {
    let mut h = market();
    trade(&mut h, MSFT, 40_000, 100);
    // Equities: 2 bps; half of 2 bps of 400.00 is 0.04 = 4 ticks. MSFT has no ADV, so no impact,
    // and no displayed size, so 4 slices of 25 at the same price.
    let events = market_order(&mut h, 1, MSFT, Side::Buy, 100);
    assert_eq!(fill_prices(&events), vec![(40_004, 25); 4]);
    let events = market_order(&mut h, 2, MSFT, Side::Sell, 4);
    assert_eq!(fill_prices(&events), vec![(39_996, 1); 4]);
    // A trade also moves the price band's anchor.
    assert_eq!(h.engine.reference_price(h.symbol(MSFT)), Some(40_000));
    trade(&mut h, MSFT, 41_000, 1);
    assert_eq!(h.engine.reference_price(h.symbol(MSFT)), Some(41_000));
}

#[test]
fn an_ioc_order_beyond_the_liquidity_limit_is_cut_with_liquidity_exhausted() {
    let mut h = market();
    quote(&mut h, AAPL, (14_999, 100), (15_000, 100));
    // The limit is 5x the displayed 100 = 500 lots; slices of max(100, ceil(500 / 4)) = 125.
    // E(125) = 294, E(250) = 831, E(375) = 1_525, E(500) = 2_348 (rounded up), so the slices cost
    // ceil(294/125) = 3, ceil(537/125) = 5, ceil(694/125) = 6 and ceil(823/125) = 7 ticks over the ask.
    let events = market_order(&mut h, 1, AAPL, Side::Buy, 800);
    assert_eq!(fill_prices(&events), vec![(15_003, 125), (15_005, 125), (15_006, 125), (15_007, 125)]);
    let order_id = accepted_id(&events).unwrap();
    assert_eq!(cancels(&events), vec![(order_id, CancelReason::LiquidityExhausted)]);
    let symbol_id = h.symbol(AAPL);
    let events = h.order(NewOrder::limit(1, symbol_id, Side::Buy, 15_100, 800).with_tif(TimeInForce::Ioc));
    assert_eq!(cancels(&events), vec![(accepted_id(&events).unwrap(), CancelReason::LiquidityExhausted)]);
}

#[test]
fn a_gtc_remainder_beyond_the_liquidity_limit_rests_and_fills_when_the_market_trades_through_it() {
    let mut h = market();
    quote(&mut h, AAPL, (14_999, 100), (15_000, 100));
    let events = limit(&mut h, 1, AAPL, Side::Buy, 15_100, 800);
    let order_id = accepted_id(&events).unwrap();
    assert_eq!(fills(&events).iter().map(|f| f.qty_lots).sum::<i64>(), 500);
    assert!(cancels(&events).is_empty());
    assert_eq!(h.levels(AAPL, Side::Buy), vec![(15_100, 300)]);
    // A print at 150.00 went through the 151.00 bid: 200 of the remaining 300 fill, at 151.00.
    let events = trade(&mut h, AAPL, 15_000, 200);
    let fills = fills(&events);
    assert_eq!(fills.len(), 1);
    assert_eq!((fills[0].maker_order_id, fills[0].price_ticks, fills[0].qty_lots), (order_id, 15_100, 200));
    assert!(fills[0].taker_is_simulated());
    assert_eq!(fills[0].taker_side, Side::Sell);
    assert_eq!(h.levels(AAPL, Side::Buy), vec![(15_100, 100)]);
}

#[test]
fn a_limit_order_stops_at_the_first_slice_beyond_its_price() {
    let mut h = market();
    quote(&mut h, AAPL, (14_999, 100), (15_000, 100));
    // Slices as above: 150.03, 150.05, 150.06, 150.07; a limit of 150.05 takes the first two.
    let symbol_id = h.symbol(AAPL);
    let events = h.order(NewOrder::limit(1, symbol_id, Side::Buy, 15_005, 500).with_tif(TimeInForce::Ioc));
    assert_eq!(fill_prices(&events), vec![(15_003, 125), (15_005, 125)]);
    assert_eq!(cancels(&events), vec![(accepted_id(&events).unwrap(), CancelReason::IocRemainder)]);
    // A limit below the ask takes nothing and rests.
    let events = limit(&mut h, 1, AAPL, Side::Buy, 14_990, 10);
    assert!(fills(&events).is_empty());
    assert_eq!(h.levels(AAPL, Side::Buy), vec![(14_990, 10)]);
}

#[test]
fn resting_orders_fill_only_when_the_market_trades_strictly_through_them() {
    let mut h = market();
    quote(&mut h, AAPL, (14_999, 100), (15_000, 100));
    let better = accepted_id(&limit(&mut h, 1, AAPL, Side::Buy, 14_950, 40)).unwrap();
    let worse = accepted_id(&limit(&mut h, 2, AAPL, Side::Buy, 14_900, 100)).unwrap();
    let ask = accepted_id(&limit(&mut h, 2, AAPL, Side::Sell, 15_100, 10)).unwrap();
    // At the order's price: no fill (it may stand behind the queue).
    assert!(fills(&trade(&mut h, AAPL, 14_950, 500)).is_empty());
    // Through 149.50 but not 149.00: 30 of 40 at 149.50, never at the print's 149.20.
    let events = trade(&mut h, AAPL, 14_920, 30);
    assert_eq!(
        fills(&events).iter().map(|f| (f.maker_order_id, f.price_ticks, f.qty_lots)).collect::<Vec<_>>(),
        vec![(better, 14_950, 30)]
    );
    // A deep print fills in price priority, up to its own size.
    let events = trade(&mut h, AAPL, 14_800, 60);
    assert_eq!(
        fills(&events).iter().map(|f| (f.maker_order_id, f.price_ticks, f.qty_lots)).collect::<Vec<_>>(),
        vec![(better, 14_950, 10), (worse, 14_900, 50)]
    );
    // Asks fill on prints above them.
    let events = trade(&mut h, AAPL, 15_200, 5);
    assert_eq!(
        fills(&events).iter().map(|f| (f.maker_order_id, f.price_ticks, f.qty_lots)).collect::<Vec<_>>(),
        vec![(ask, 15_100, 5)]
    );
    // Maker fee (0 bps on AAPL) and the simulated market's net position.
    assert_eq!(h.engine.market(h.symbol(AAPL)).unwrap().counterparty_lots, -(30 + 60) + 5);
}

#[test]
fn with_queue_position_an_order_at_the_traded_price_fills_once_the_volume_ahead_has_traded() {
    let mut h = market();
    const NVDA: &str = "NVDA";
    quote(&mut h, NVDA, (18_000, 300), (18_005, 300));
    // Joins at the bid: 300 shares ahead of it.
    let at_bid = accepted_id(&limit(&mut h, 1, NVDA, Side::Buy, 18_000, 100)).unwrap();
    assert_eq!(h.engine.order(at_bid).unwrap().queue_ahead_lots, 300);
    // 200 trade at 180.00: 100 still ahead, no fill.
    assert!(fills(&trade(&mut h, NVDA, 18_000, 200)).is_empty());
    assert_eq!(h.engine.order(at_bid).unwrap().queue_ahead_lots, 100);
    // 150 more: the 100 ahead trade first, then 50 fill the order, at 180.00.
    let events = trade(&mut h, NVDA, 18_000, 150);
    let taken: Vec<_> = fills(&events).iter().map(|f| (f.maker_order_id, f.price_ticks, f.qty_lots)).collect();
    assert_eq!(taken, vec![(at_bid, 18_000, 50)]);
    assert_eq!(h.engine.order(at_bid).unwrap().queue_ahead_lots, 0);
    // At the front now: the next 10 traded there are its own.
    let events = trade(&mut h, NVDA, 18_000, 10);
    assert_eq!(fill_prices(&events), vec![(18_000, 10)]);
    assert_eq!(h.engine.order(at_bid).unwrap().open_lots, 40);
    // Improving on the bid: nothing ahead. Behind it: the touch's size stands in for the depth.
    let improving = accepted_id(&limit(&mut h, 2, NVDA, Side::Buy, 18_001, 5)).unwrap();
    assert_eq!(h.engine.order(improving).unwrap().queue_ahead_lots, 0);
    let behind = accepted_id(&limit(&mut h, 2, NVDA, Side::Buy, 17_990, 5)).unwrap();
    assert_eq!(h.engine.order(behind).unwrap().queue_ahead_lots, 300);
    let events = trade(&mut h, NVDA, 18_001, 3);
    assert_eq!(fills(&events).iter().map(|f| (f.maker_order_id, f.qty_lots)).collect::<Vec<_>>(), vec![(improving, 3)]);
    // The queue position survives a snapshot.
    let bytes = h.engine.snapshot_bytes();
    let restored = Engine::<ReferenceBook, LocalLedger>::from_snapshot(
        EngineConfig::default(),
        instruments(),
        LocalLedger::new(),
        &bytes,
    )
    .expect("restores");
    assert_eq!(restored.state_hash(), h.engine.state_hash());
    assert_eq!(restored.order(behind).unwrap().queue_ahead_lots, 300);
}

#[test]
fn hybrid_takes_better_book_orders_first_then_simulated_liquidity_then_the_rest_of_the_book() {
    let mut h = market();
    let better = accepted_id(&limit(&mut h, 2, AAPL, Side::Sell, 14_998, 10)).unwrap();
    let worse = accepted_id(&limit(&mut h, 2, AAPL, Side::Sell, 15_050, 10)).unwrap();
    // Quote size 2: the limit is 5 x 2 = 10 lots, in slices of max(2, ceil(10 / 4)) = 3, 3, 3, 1.
    // E(3) = 2, E(6) = 4, E(9) = 6, E(10) = 7 tick-lots: each slice 1 tick over 150.00.
    quote(&mut h, AAPL, (14_990, 2), (15_000, 2));
    let events = market_order(&mut h, 1, AAPL, Side::Buy, 30);
    let fills = fills(&events);
    let taken: Vec<_> = fills.iter().map(|f| (f.maker_order_id, f.price_ticks, f.qty_lots)).collect();
    assert_eq!(
        taken,
        vec![
            (better, 14_998, 10),
            (SIMULATED_ORDER_ID, 15_001, 3),
            (SIMULATED_ORDER_ID, 15_001, 3),
            (SIMULATED_ORDER_ID, 15_001, 3),
            (SIMULATED_ORDER_ID, 15_001, 1),
            (worse, 15_050, 10),
        ]
    );
    assert_eq!(h.position(1, AAPL).qty_lots, 30);
    assert_eq!(h.position(2, AAPL).qty_lots, -20);
}

#[test]
fn book_mode_ignores_simulated_liquidity_and_simulated_mode_takes_it_first() {
    let mut h = market();
    quote(&mut h, TSLA, (39_990, 100), (40_000, 100));
    let events = market_order(&mut h, 1, TSLA, Side::Buy, 10);
    assert!(fills(&events).is_empty());
    assert_eq!(cancels(&events), vec![(accepted_id(&events).unwrap(), CancelReason::NoLiquidity)]);
    assert!(fills(&trade(&mut h, TSLA, 30_000, 10)).is_empty());

    // SPY (simulated): a book ask better than the quote is not taken first.
    let resting = accepted_id(&limit(&mut h, 2, SPY, Side::Sell, 59_990, 10)).unwrap();
    quote(&mut h, SPY, (59_995, 1_000), (60_000, 1_000));
    let events = market_order(&mut h, 1, SPY, Side::Buy, 10);
    let fills = fills(&events);
    assert!(fills.iter().all(|f| f.maker_is_simulated()), "{fills:?}");
    assert_eq!(fills.iter().map(|f| f.qty_lots).sum::<i64>(), 10);
    // ... but the market trading through it fills it.
    let events = trade(&mut h, SPY, 60_100, 10);
    assert_eq!(simex_tests::harness::fills(&events)[0].maker_order_id, resting);
}

#[test]
fn bad_reference_data_is_rejected_and_changes_nothing() {
    let mut h = market();
    for (bid, ask) in
        [((15_000, 1), (15_000, 1)), ((15_001, 1), (15_000, 1)), ((0, 1), (15_000, 1)), ((14_999, -1), (15_000, 1))]
    {
        let events = quote(&mut h, AAPL, bid, ask);
        assert_eq!(rejection(&events), Some(RejectReason::InvalidQuote));
    }
    assert_eq!(rejection(&trade(&mut h, AAPL, 0, 1)), Some(RejectReason::PriceNotPositive));
    assert_eq!(rejection(&trade(&mut h, AAPL, 15_000, 0)), Some(RejectReason::QuantityNotPositive));
    let events = h.run(CommandBody::ReferenceTrade { symbol_id: 999, price_ticks: 1, qty_lots: 1 });
    assert_eq!(rejection(&events), Some(RejectReason::UnknownSymbol));
    assert_eq!(h.engine.market(h.symbol(AAPL)), Some(MarketState::default()));
}

#[test]
fn a_snapshot_keeps_the_simulated_market() {
    let mut h = market();
    quote(&mut h, AAPL, (14_999, 100), (15_000, 100));
    market_order(&mut h, 1, AAPL, Side::Buy, 300);
    limit(&mut h, 2, AAPL, Side::Buy, 14_900, 10);
    trade(&mut h, AAPL, 14_950, 50);
    let bytes = h.engine.snapshot_bytes();
    let restored = Engine::<FastBook, LocalLedger>::from_snapshot(
        EngineConfig::default(),
        instruments(),
        LocalLedger::new(),
        &bytes,
    )
    .expect("restores");
    assert_eq!(restored.state_hash(), h.engine.state_hash());
    assert_eq!(restored.market(h.symbol(AAPL)), h.engine.market(h.symbol(AAPL)));
    assert_eq!(restored.market(h.symbol(AAPL)).unwrap().counterparty_lots, -300);
}

#[test]
fn positions_are_marked_to_the_reference_mid_and_the_return_counts_fees() {
    let mut h = market();
    h.portfolio(3, 20_000);
    quote(&mut h, AAPL, (14_999, 5_000), (15_000, 5_000));
    // 100 shares: E(100) = 15_000 * 0.7 * 0.02 * 100 * 0.01 = 210 tick-lots, 2.1 -> 3 ticks: 150.03.
    // Cost 15_003 dollars, fee 1 bp = 1.5003 dollars.
    assert_eq!(fill_prices(&market_order(&mut h, 3, AAPL, Side::Buy, 100)), vec![(15_003, 100)]);
    quote(&mut h, AAPL, (15_100, 5_000), (15_102, 5_000));
    let symbol_id = h.symbol(AAPL);
    // Mid 151.01: value 15_101 dollars, unrealized 98 dollars.
    assert_eq!(h.engine.mark_price(symbol_id), Some(15_101));
    assert_eq!(h.engine.position_value_micros(3, symbol_id), Some(15_101 * DOLLAR));
    assert_eq!(h.engine.unrealized_pnl_micros(3, symbol_id), 98 * DOLLAR);
    let valuation = h.engine.valuation(3).unwrap();
    // Value = 20_000 - 15_003 - 1.5003 + 15_101 = 20_096.4997; return = 96.4997 / 20_000 = 48.2 bps.
    assert_eq!(
        valuation,
        Valuation {
            portfolio_value_micros: 20_096_499_700,
            unrealized_pnl_micros: 98 * DOLLAR,
            realized_pnl_micros: 0,
            fees_micros: 1_500_300,
            funded_micros: 20_000 * DOLLAR,
            return_bps: 48,
        }
    );
    // Selling into the 151.00 bid: E(100) on 15_100 = 211.4 -> 212, 2.12 -> 3 ticks: 150.97.
    // Realized 100 * (150.97 - 150.03) = 94 dollars; fees 1.5003 + 1.5097 = 3.01 dollars;
    // return = 90.99 / 20_000 = 45.5 bps.
    assert_eq!(fill_prices(&market_order(&mut h, 3, AAPL, Side::Sell, 100)), vec![(15_097, 100)]);
    let valuation = h.engine.valuation(3).unwrap();
    assert_eq!((valuation.unrealized_pnl_micros, valuation.realized_pnl_micros), (0, 94 * DOLLAR));
    assert_eq!((valuation.fees_micros, valuation.funded_micros), (3_010_000, 20_000 * DOLLAR));
    assert_eq!((valuation.portfolio_value_micros, valuation.return_bps), (20_090_990_000, 45));
    // A deposit is funding, not return.
    h.run(CommandBody::AdjustCash { portfolio_id: 3, delta_micros: 10_000 * DOLLAR });
    let valuation = h.engine.valuation(3).unwrap();
    assert_eq!((valuation.funded_micros, valuation.return_bps), (30_000 * DOLLAR, 30));
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Quote { mid_offset: i64, half_spread: i64, bid_lots: i64, ask_lots: i64 },
    Trade { offset: i64, qty_lots: i64 },
    Limit { portfolio_id: PortfolioId, buy: bool, offset: i64, qty_lots: i64, ioc: bool },
    Market { portfolio_id: PortfolioId, buy: bool, qty_lots: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (-50i64..50, 1i64..10, 0i64..300, 0i64..300).prop_map(|(mid_offset, half_spread, bid_lots, ask_lots)| {
            Op::Quote { mid_offset, half_spread, bid_lots, ask_lots }
        }),
        (-80i64..80, 1i64..200).prop_map(|(offset, qty_lots)| Op::Trade { offset, qty_lots }),
        (1u32..4, any::<bool>(), -60i64..60, 1i64..400, any::<bool>()).prop_map(
            |(portfolio_id, buy, offset, qty_lots, ioc)| Op::Limit { portfolio_id, buy, offset, qty_lots, ioc }
        ),
        (1u32..4, any::<bool>(), 1i64..2_000).prop_map(|(portfolio_id, buy, qty_lots)| Op::Market {
            portfolio_id,
            buy,
            qty_lots
        }),
    ]
}

fn side(buy: bool) -> Side {
    if buy {
        Side::Buy
    } else {
        Side::Sell
    }
}

/// Runs the ops on AAPL around 150.00 and checks, command by command: every simulated fill of an
/// incoming order is at or beyond the reference touch and within the order's limit; every
/// trade-through fill is at the resting order's price, which the print went strictly through; every
/// book fill is at the resting order's price; and each portfolio's cash equals its starting cash
/// minus what it paid and plus what it received, fees included. Returns every event.
fn run_checked(ops: &[Op]) -> Vec<Event> {
    let mut h = market();
    h.portfolio(3, 10_000_000);
    let symbol_id = h.symbol(AAPL);
    let mut cash: HashMap<PortfolioId, i64> = (1..=3).map(|p| (p, h.account(p).cash_micros)).collect();
    let mut limits: HashMap<OrderId, (Side, i64)> = HashMap::new();
    for op in ops {
        let market_before = h.engine.market(symbol_id).unwrap();
        let touch = |side: Side| market_before.touch(side, 2).map(|t| t.price_ticks);
        let (events, print) = match *op {
            Op::Quote { mid_offset, half_spread, bid_lots, ask_lots } => (
                quote(
                    &mut h,
                    AAPL,
                    (15_000 + mid_offset - half_spread, bid_lots),
                    (15_000 + mid_offset + half_spread, ask_lots),
                ),
                None,
            ),
            Op::Trade { offset, qty_lots } => (trade(&mut h, AAPL, 15_000 + offset, qty_lots), Some(15_000 + offset)),
            Op::Limit { portfolio_id, buy, offset, qty_lots, ioc } => {
                let order = NewOrder::limit(portfolio_id, symbol_id, side(buy), 15_000 + offset, qty_lots);
                let order = if ioc { order.with_tif(TimeInForce::Ioc) } else { order };
                (h.order(order), None)
            }
            Op::Market { portfolio_id, buy, qty_lots } => {
                (market_order(&mut h, portfolio_id, AAPL, side(buy), qty_lots), None)
            }
        };
        for event in &events {
            match event.body {
                EventBody::OrderAccepted(a) => {
                    limits.insert(a.order_id, (a.side, a.price_ticks));
                }
                EventBody::Fill(f) => {
                    if f.maker_is_simulated() {
                        let (side, limit) = limits[&f.taker_order_id];
                        let touch = touch(side).expect("simulated liquidity only with reference data");
                        assert!(side.crosses(limit, f.price_ticks), "fill {f:?} beyond the limit {limit}");
                        assert!(
                            !side.crosses(touch - side.sign(), f.price_ticks),
                            "fill {f:?} better than the touch {touch}"
                        );
                    } else {
                        let (maker_side, maker_limit) = limits[&f.maker_order_id];
                        assert_eq!(f.price_ticks, maker_limit, "a resting order fills at its own price");
                        if f.taker_is_simulated() {
                            let print = print.expect("trade-through fills only on a print");
                            assert!(
                                maker_side.crosses(maker_limit, print) && print != maker_limit,
                                "{f:?} not through {print}"
                            );
                        }
                    }
                    for (order_portfolio, simulated, fee, side) in [
                        (f.maker_portfolio_id, f.maker_is_simulated(), f.maker_fee_micros, f.taker_side.opposite()),
                        (f.taker_portfolio_id, f.taker_is_simulated(), f.taker_fee_micros, f.taker_side),
                    ] {
                        if !simulated {
                            *cash.get_mut(&order_portfolio).unwrap() -= side.sign() * f.notional_micros + fee;
                        }
                    }
                }
                _ => {}
            }
        }
        for (portfolio_id, expected) in &cash {
            assert_eq!(h.account(*portfolio_id).cash_micros, *expected, "portfolio {portfolio_id} cash");
        }
    }
    h.events.clone()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn simulated_fills_stay_within_the_data_conserve_cash_and_replay(ops in prop::collection::vec(op(), 1..60)) {
        // The harness checks invariants (positions plus the simulated market net to zero) after
        // every command and replays the events when it is dropped.
        let first = run_checked(&ops);
        // Determinism: the same inputs give the same events.
        prop_assert_eq!(first, run_checked(&ops));
    }
}

/// Random streams with reference data: the fast and the reference book emit the same events, every
/// invariant holds, replay and a snapshot rebuild the same state, and simulated and trade-through
/// fills both happen (so the stream does test them).
#[test]
fn random_streams_with_reference_data_agree_across_books_replay_and_snapshots() {
    for seed in [11, 12] {
        // The second seed also models queue position in AAPL.
        let instruments = if seed == 12 {
            InstrumentTable::from_toml(&DEFAULT_INSTRUMENTS_TOML.replacen(
                "adv = \"50000000\"",
                "adv = \"50000000\"\nqueue_position = true",
                1,
            ))
            .expect("valid table")
        } else {
            InstrumentTable::default_table()
        };
        let config = EngineConfig { orders_max: 4096, ..EngineConfig::default() };
        let mut fast: Engine<FastBook, LocalLedger> =
            Engine::with_ledger(config.clone(), instruments.clone(), LocalLedger::new());
        let mut reference: Engine<ReferenceBook, LocalLedger> =
            Engine::with_ledger(config.clone(), instruments.clone(), LocalLedger::new());
        let mut generator = StreamGenerator::new(seed, &instruments).with_reference_data();
        let (mut fast_events, mut reference_events, mut journal) = (Vec::new(), Vec::new(), Vec::new());
        for index in 0..6_000 {
            let command = generator.next_command();
            fast_events.clear();
            reference_events.clear();
            fast.apply(&command, &mut fast_events);
            reference.apply(&command, &mut reference_events);
            assert_eq!(fast_events, reference_events, "seed {seed}: events differ at command {index}: {command:?}");
            generator.observe(&fast_events);
            journal.extend_from_slice(&fast_events);
            if index % 100 == 0 {
                fast.check_invariants();
                assert_eq!(fast.state_hash(), reference.state_hash(), "seed {seed}: state differs at {index}");
            }
        }
        fast.check_invariants();
        let fills: Vec<Fill> =
            journal.iter().filter_map(|e| if let EventBody::Fill(f) = e.body { Some(f) } else { None }).collect();
        let taking = fills.iter().filter(|f| f.maker_is_simulated()).count();
        let traded_through = fills.iter().filter(|f| f.taker_is_simulated()).count();
        assert!(
            taking > 20 && traded_through > 20,
            "seed {seed}: {taking} simulated and {traded_through} trade-through fills"
        );

        let mut replayed = Engine::new(config.clone(), instruments.clone());
        for event in &journal {
            replayed.replay(event);
        }
        assert_eq!(replayed.state_hash(), fast.state_hash(), "seed {seed}: replay differs");
        let restored = Engine::<ReferenceBook, LocalLedger>::from_snapshot(
            config,
            instruments,
            LocalLedger::new(),
            &fast.snapshot_bytes(),
        )
        .expect("snapshot restores");
        assert_eq!(restored.state_hash(), fast.state_hash(), "seed {seed}: snapshot differs");
    }
}

#[test]
fn a_stop_fires_on_a_reference_trade_not_on_a_quote_and_sells_into_simulated_liquidity() {
    let mut h = market();
    quote(&mut h, AAPL, (14_999, 5_000), (15_000, 5_000));
    let symbol_id = h.symbol(AAPL);
    let events = h.order(NewOrder::market(1, symbol_id, Side::Sell, 10).triggered_at(TriggerKind::Stop, 14_950));
    let [Event { body: EventBody::ConditionalAccepted(waiting), .. }] = events[..] else {
        panic!("stop not accepted: {events:?}");
    };
    let triggered = |events: &[Event]| {
        events
            .iter()
            .filter_map(|e| match e.body {
                EventBody::OrderTriggered { order_id, price_ticks, .. } => Some((order_id, price_ticks)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // A quote below the stop is not a trade: nothing fires.
    let events = quote(&mut h, AAPL, (14_940, 5_000), (14_941, 5_000));
    assert_eq!(triggered(&events), vec![]);
    // A reference trade below it fires it, and the market sell takes the simulated bid.
    let events = trade(&mut h, AAPL, 14_940, 100);
    assert_eq!(triggered(&events), vec![(waiting.order_id, 14_940)]);
    let fills = fills(&events);
    assert_eq!(fills.iter().map(|f| f.qty_lots).sum::<i64>(), 10, "{events:?}");
    assert!(fills.iter().all(|f| f.maker_is_simulated() && f.taker_order_id == waiting.order_id));
    assert!(fills.iter().all(|f| f.price_ticks <= 14_940));
    assert_eq!(h.position(1, AAPL).qty_lots, -10);
}

#[test]
fn trailing_stops_follow_reference_trades_live_and_in_replay() {
    let mut h = market();
    quote(&mut h, AAPL, (14_999, 5_000), (15_000, 5_000));
    trade(&mut h, AAPL, 15_000, 10);
    let symbol_id = h.symbol(AAPL);
    let events = h.order(NewOrder::market(1, symbol_id, Side::Sell, 10).trailing_ticks(20));
    assert!(matches!(events[..], [Event { body: EventBody::ConditionalAccepted(_), .. }]), "{events:?}");
    // The best moves up to 15_050 (stop 15_030); 15_040 fires nothing, 15_030 fires it.
    quote(&mut h, AAPL, (15_049, 5_000), (15_050, 5_000));
    trade(&mut h, AAPL, 15_050, 10);
    let quiet = trade(&mut h, AAPL, 15_040, 10);
    assert!(!quiet.iter().any(|e| matches!(e.body, EventBody::OrderTriggered { .. })), "{quiet:?}");
    let events = trade(&mut h, AAPL, 15_030, 10);
    assert!(
        events.iter().any(|e| matches!(e.body, EventBody::OrderTriggered { price_ticks: 15_030, .. })),
        "{events:?}"
    );
    assert_eq!(h.position(1, AAPL).qty_lots, -10);
    // Dropping the harness replays every event and compares state hashes.
}
