//! Arbitrary command streams: whatever a gateway forwards, the engine answers with events and never
//! panics, its invariants hold after every command, and replaying its events rebuilds its state.
//!
//! Each command is decoded from 24 bytes so that the fuzzer can reach every field with any value,
//! including the absurd ones (negative quantities, prices near `i64::MAX`, unknown ids).
#![no_main]

use libfuzzer_sys::fuzz_target;
use simex_engine::*;

fn i64_at(bytes: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Makes some orders conditional (stops, take-profits, trailing stops, OCO links to small order
/// ids, absurd trails) and some brackets, from bytes the plain order leaves alone.
fn conditional_or_bracket(chunk: &[u8], order: NewOrder) -> CommandBody {
    let selector = chunk[4];
    let order = NewOrder {
        trigger: [
            TriggerKind::None,
            TriggerKind::None,
            TriggerKind::Stop,
            TriggerKind::TakeProfit,
            TriggerKind::TrailingStop,
        ][usize::from(selector % 5)],
        trigger_price_ticks: order.price_ticks.wrapping_add(i64::from(chunk[7] as i8)),
        trail_ticks: i64::from(selector & 0x0f),
        trail_bps: i64::from(chunk[7]) * 50,
        oco_order_id: if selector & 0x40 != 0 { u64::from(chunk[6] % 64) } else { 0 },
        ..order
    };
    if selector & 0x80 == 0 {
        return CommandBody::NewOrder(order);
    }
    let offset = i64::from(chunk[6] as i8);
    CommandBody::NewBracket {
        entry: order,
        take_profit_price_ticks: order.price_ticks.wrapping_add(offset),
        stop_loss_trigger_ticks: order.price_ticks.wrapping_sub(offset),
        stop_loss_limit_ticks: if chunk[5] & 1 == 0 { 0 } else { order.price_ticks.wrapping_sub(2 * offset) },
    }
}

fn decode(chunk: &[u8]) -> CommandBody {
    let portfolio_id = u32::from(chunk[1] % 6);
    let symbol_id = SymbolId::from(chunk[2] % 13);
    let side = if chunk[3] & 1 == 0 { Side::Buy } else { Side::Sell };
    // Small values most of the time, raw 64-bit values sometimes.
    let price_ticks = if chunk[3] & 2 == 0 { i64_at(chunk, 8) % 20_000 } else { i64_at(chunk, 8) };
    let qty_lots = if chunk[3] & 4 == 0 { i64_at(chunk, 16) % 200 } else { i64_at(chunk, 16) };
    let order_id = u64::from(chunk[4]);
    match chunk[0] % 10 {
        0 => CommandBody::CreatePortfolio { portfolio_id, cash_micros: i64_at(chunk, 8) },
        1 => CommandBody::AdjustCash { portfolio_id, delta_micros: i64_at(chunk, 16) },
        2 | 3 | 4 => conditional_or_bracket(
            chunk,
            NewOrder {
                portfolio_id,
                symbol_id,
                side,
                kind: if chunk[3] & 8 == 0 { OrderKind::Limit } else { OrderKind::Market },
                price_ticks,
                qty_lots,
                time_in_force: [
                    TimeInForce::Gtc,
                    TimeInForce::Day,
                    TimeInForce::Gtd,
                    TimeInForce::Ioc,
                    TimeInForce::Fok,
                ][usize::from(chunk[5] % 5)],
                expire_at_ns: i64::from(chunk[6]) * 1_000_000_000,
                client_order_id: if chunk[7] == 0 { ClientOrderId::NONE } else { ClientOrderId([chunk[7]; 16]) },
                post_only: chunk[3] & 16 != 0,
                self_trade_policy: [
                    SelfTradePolicy::Default,
                    SelfTradePolicy::CancelResting,
                    SelfTradePolicy::CancelIncoming,
                    SelfTradePolicy::CancelBoth,
                    SelfTradePolicy::Allow,
                ][usize::from(chunk[5] % 5)],
                ..NewOrder::limit(portfolio_id, symbol_id, side, price_ticks, qty_lots)
            },
        ),
        5 => CommandBody::Cancel { portfolio_id, order_id },
        6 => CommandBody::Replace { portfolio_id, order_id, price_ticks, qty_lots },
        7 => CommandBody::MassCancel { portfolio_id, symbol_id: (chunk[3] & 1 == 0).then_some(symbol_id) },
        8 => CommandBody::SetReferencePrice { symbol_id, price_ticks },
        _ => match chunk[3] % 5 {
            0 => CommandBody::SetHalted { symbol_id, halted: chunk[4] % 4 == 0 },
            1 => CommandBody::SetRiskLimits {
                portfolio_id,
                limits: RiskLimits {
                    order_notional_max_micros: i64_at(chunk, 8),
                    gross_exposure_max_micros: i64_at(chunk, 16),
                    open_orders_max: u32::from(chunk[4]),
                    daily_loss_max_micros: i64::from(chunk[5]) * 1_000_000,
                },
            },
            2 => CommandBody::AdvanceTime,
            // Reference data, with crossed quotes, negative sizes and prices near the limits too.
            3 => CommandBody::ReferenceQuote {
                symbol_id,
                bid_price_ticks: price_ticks,
                bid_qty_lots: qty_lots,
                ask_price_ticks: price_ticks.saturating_add(i64::from(chunk[4] % 8) - 1),
                ask_qty_lots: i64::from(chunk[5]) - 8,
            },
            _ => CommandBody::ReferenceTrade { symbol_id, price_ticks, qty_lots },
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let config = EngineConfig { orders_max: 64, ..EngineConfig::default() };
    let instruments = InstrumentTable::default_table();
    let mut engine = Engine::new(config.clone(), instruments.clone());
    let mut events = Vec::new();
    let mut journal = Vec::new();
    let mut timestamp_ns = 0i64;
    for chunk in data.chunks_exact(24) {
        timestamp_ns += i64::from(chunk[7] % 4) * 3_600_000_000_000;
        events.clear();
        engine.apply(&Command { timestamp_ns, body: decode(chunk) }, &mut events);
        engine.check_invariants();
        journal.extend_from_slice(&events);
    }
    let mut replayed = Engine::new(config, instruments);
    for event in &journal {
        replayed.replay(event);
    }
    assert_eq!(replayed.state_hash(), engine.state_hash());
});
