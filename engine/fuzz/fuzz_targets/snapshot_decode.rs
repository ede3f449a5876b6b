//! Snapshots read back from disk: whatever the bytes, `Engine::from_snapshot` and `restore_ledger`
//! either refuse them with an error or restore a state that passes `check_invariants` and whose
//! snapshot is exactly those bytes. Never a panic.
//!
//! Raw bytes seldom get past the header's length check, so most inputs go the other way: a short
//! command stream builds a real engine, which is snapshotted, and then some bytes of the snapshot
//! are overwritten. That yields well-formed snapshots of inconsistent states (a reservation that
//! does not match its order, a crossed book, duplicate ids, positions that do not net to zero),
//! which only the semantic validation can refuse.
//!
//! Layout: byte 0 chooses raw (0) or built; for built, byte 1 is the number of 8-byte commands that
//! follow, and every 3 bytes after them are an edit (`offset: u16`, `value: u8`). Longer streams
//! reach deeper states, so run it with `-- -len_control=0 -max_len=1024`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simex_engine::*;
use std::sync::OnceLock;

const CONFIG_SHARD: u16 = 1;

/// Three instruments with different grids, and a fourth that the shard does not own. Small, because
/// every symbol's book preallocates and the sanitizer makes large allocations slow.
const INSTRUMENTS_TOML: &str = r#"
[[instrument]]
symbol = "AAPL"
asset_class = "equity"
tick = "0.01"
lot = "1"
max_qty = "100000"
max_position = "1000000"
maker_fee_bps = 0
taker_fee_bps = 1
short_allowed = true
initial_margin_bps = 5000
session_close_utc = "20:00"

[[instrument]]
symbol = "BTC-USD"
asset_class = "crypto"
tick = "0.01"
lot = "0.00000001"
min_qty = "0.00001"
max_qty = "100"
max_position = "1000"
maker_fee_bps = 5
taker_fee_bps = 10
short_allowed = true
initial_margin_bps = 10000
session_close_utc = "00:00"

[[instrument]]
symbol = "EUR-USD"
asset_class = "forex"
tick = "0.00001"
lot = "1"
min_qty = "1000"
max_qty = "10000000"
max_position = "100000000"
maker_fee_bps = 0
taker_fee_bps = 1
short_allowed = true
initial_margin_bps = 1000
session_close_utc = "00:00"

[[instrument]]
symbol = "MSFT"
asset_class = "equity"
tick = "0.01"
lot = "1"
max_qty = "100000"
max_position = "1000000"
maker_fee_bps = 0
taker_fee_bps = 1
short_allowed = false
initial_margin_bps = 5000
session_close_utc = "20:00"
"#;

fn instruments() -> &'static InstrumentTable {
    static TABLE: OnceLock<InstrumentTable> = OnceLock::new();
    TABLE.get_or_init(|| InstrumentTable::from_toml(INSTRUMENTS_TOML).expect("valid instruments"))
}

fn config() -> EngineConfig {
    EngineConfig {
        shard_id: CONFIG_SHARD,
        orders_max: 64,
        owned_symbols: Some(vec![0, 1, 2]),
        ..EngineConfig::default()
    }
}

/// A command from 8 bytes, chosen to build books with depth, partial fills, shorts, client ids and
/// expiring orders rather than to be absurd (the `commands` target does absurd).
fn command(chunk: &[u8], symbols: &[SymbolId; 3], mids: &[i64; 3]) -> CommandBody {
    let portfolio_id = u32::from(chunk[1] % 4);
    let symbol = usize::from(chunk[2] % 3);
    let symbol_id = symbols[symbol];
    let side = if chunk[3] & 1 == 0 { Side::Buy } else { Side::Sell };
    let price_ticks = mids[symbol] + i64::from(chunk[4] as i8) * (mids[symbol] / 1000).max(1);
    let qty_lots = i64::from(chunk[5] % 20 + 1) * if symbol == 0 { 1 } else { 10_000 };
    match chunk[0] % 8 {
        0..=4 => CommandBody::NewOrder(NewOrder {
            portfolio_id,
            symbol_id,
            side,
            price_ticks,
            qty_lots,
            time_in_force: [TimeInForce::Gtc, TimeInForce::Gtc, TimeInForce::Day, TimeInForce::Gtd, TimeInForce::Ioc]
                [usize::from(chunk[6] % 5)],
            expire_at_ns: 1_767_623_400_000_000_000 + i64::from(chunk[7]) * 60_000_000_000,
            client_order_id: match chunk[7] % 3 {
                0 => ClientOrderId::NONE,
                _ => ClientOrderId([b'a' + chunk[7] % 7; 16]),
            },
            post_only: chunk[3] & 4 != 0,
            self_trade_policy: if chunk[3] & 8 == 0 { SelfTradePolicy::Default } else { SelfTradePolicy::Allow },
            // Some stops and trailing stops, so snapshots hold waiting orders and trailing bests.
            trigger: [TriggerKind::None, TriggerKind::None, TriggerKind::Stop, TriggerKind::TrailingStop]
                [usize::from(chunk[3] >> 6)],
            trigger_price_ticks: if chunk[3] >> 6 == 2 { price_ticks + (mids[symbol] / 500).max(1) } else { 0 },
            trail_bps: if chunk[3] >> 6 == 3 { 100 } else { 0 },
            kind: if chunk[3] >> 6 == 3 {
                OrderKind::Market
            } else if chunk[3] & 2 == 0 {
                OrderKind::Limit
            } else {
                OrderKind::Market
            },
            ..NewOrder::limit(portfolio_id, symbol_id, side, price_ticks, qty_lots)
        }),
        5 => CommandBody::Cancel { portfolio_id, order_id: (u64::from(CONFIG_SHARD) << 48) | u64::from(chunk[6] % 64) },
        6 => CommandBody::Replace {
            portfolio_id,
            order_id: (u64::from(CONFIG_SHARD) << 48) | u64::from(chunk[6] % 64),
            price_ticks,
            qty_lots,
        },
        _ => match chunk[6] % 5 {
            0 => CommandBody::MassCancel { portfolio_id, symbol_id: None },
            1 => CommandBody::SetHalted { symbol_id, halted: chunk[7] & 1 == 0 },
            // Reference data, so snapshots hold reference quotes, simulated positions and fired stops.
            2 => CommandBody::ReferenceQuote {
                symbol_id,
                bid_price_ticks: price_ticks,
                bid_qty_lots: qty_lots,
                ask_price_ticks: price_ticks + (mids[symbol] / 1000).max(1),
                ask_qty_lots: qty_lots,
            },
            3 => CommandBody::ReferenceTrade { symbol_id, price_ticks, qty_lots },
            _ => CommandBody::AdvanceTime,
        },
    }
}

fn build(commands: &[u8], instruments: &InstrumentTable) -> Engine {
    let names = ["AAPL", "BTC-USD", "EUR-USD"];
    let symbols = names.map(|name| instruments.by_symbol(name).expect("listed instrument").symbol_id);
    let mids = [15_000, 6_000_000, 108_000];
    let mut engine = Engine::new(config(), instruments.clone());
    let mut events = Vec::new();
    let mut timestamp_ns = 1_767_623_400_000_000_000;
    let mut setup: Vec<CommandBody> = (0..4)
        .map(|portfolio_id| CommandBody::CreatePortfolio { portfolio_id, cash_micros: 10_000_000_000_000 })
        .collect();
    setup.extend((0..3).map(|i| CommandBody::SetReferencePrice { symbol_id: symbols[i], price_ticks: mids[i] }));
    let stream = commands.chunks_exact(8).map(|chunk| (chunk[7], command(chunk, &symbols, &mids)));
    for (time_step, body) in setup.into_iter().map(|body| (0, body)).chain(stream) {
        timestamp_ns += i64::from(time_step % 8) * 900_000_000_000;
        events.clear();
        engine.apply(&Command { timestamp_ns, body }, &mut events);
    }
    engine
}

fn edit(bytes: &mut [u8], edits: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    for edit in edits.chunks_exact(3) {
        let offset = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % bytes.len();
        bytes[offset] = edit[2];
    }
}

fn check_engine_snapshot(bytes: &[u8], instruments: &InstrumentTable) {
    let fast = Engine::<FastBook, LocalLedger>::from_snapshot(config(), instruments.clone(), LocalLedger::new(), bytes);
    let reference =
        Engine::<ReferenceBook, LocalLedger>::from_snapshot(config(), instruments.clone(), LocalLedger::new(), bytes);
    match (fast, reference) {
        (Ok(fast), Ok(reference)) => {
            fast.check_invariants();
            reference.check_invariants();
            assert_eq!(fast.snapshot_bytes(), bytes, "a restored snapshot re-encodes differently");
            assert_eq!(fast.state_hash(), reference.state_hash());
        }
        (Err(fast), Err(reference)) => assert_eq!(fast, reference),
        (fast, reference) => panic!("the books disagree: {:?} / {:?}", fast.err(), reference.err()),
    }
}

fn check_ledger_snapshot(bytes: &[u8]) {
    let mut ledger = LocalLedger::new();
    if restore_ledger(&mut ledger, bytes).is_ok() {
        assert_eq!(ledger_snapshot_bytes(&ledger), bytes, "a restored ledger re-encodes differently");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let instruments = instruments();
    if mode == 0 {
        check_engine_snapshot(rest, instruments);
        check_ledger_snapshot(rest);
        return;
    }
    let Some((&command_count, rest)) = rest.split_first() else { return };
    let (commands, edits) = rest.split_at((usize::from(command_count) * 8).min(rest.len()));
    let engine = build(commands, instruments);
    let mut bytes = engine.snapshot_bytes();
    edit(&mut bytes, edits);
    check_engine_snapshot(&bytes, instruments);
    let mut ledger_bytes = ledger_snapshot_bytes(engine.ledger());
    edit(&mut ledger_bytes, edits);
    check_ledger_snapshot(&ledger_bytes);
});
