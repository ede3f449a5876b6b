//! Command streams in the runtime's vocabulary, the bare engine that replays them, and the event
//! counts that show both did the same work.
//!
//! **Order ids are predicted, and the prediction is checked.** The runtime takes `CommandBody`s
//! whose cancels and replaces name the engine's order ids, and routes them by those ids (an id
//! carries its shard in the top 16 bits). A client learns an id from its `OrderAccepted` event; a
//! pipelined benchmark that waited for each would measure its own stalls. But a shard numbers the
//! orders it accepts 1, 2, 3, ... under its shard id, so a stream in which every new order is
//! accepted can be translated ahead of time ([`Translator`]), for any assignment of symbols to
//! shards. Nothing here assumes the prediction is right: every stream is also replayed through the
//! bare engine, and a wrong id would show up there and in the runtime as a rejected cancel or
//! replace. The streams used have no rejections at all.
//!
//! **Same work, checked.** [`EventCounts`] tallies what a run produced (orders accepted, fills,
//! lots traded, cancels, replaces, rejections) and a digest of every event except its timestamp (the
//! runtime stamps commands with the venue clock, the bare engine with a counter). The digest is a
//! sum of per-event hashes, so it does not depend on the order in which the responses of several
//! shards were read; it includes sequence numbers and order ids, so it is only comparable between
//! runs with the same shard layout.

use crate::adapters::simex::{new_order, ACCOUNT_CASH_MICROS, INSTRUMENTS_TOML, LIMITS};
use crate::workload::{Op, Workload};
use simex::runtime::{AtomicLedger, RuntimeConfig, ShardEngine, SharedLedger, WaitStrategy};
use simex_engine::engine::ORDER_ID_SHARD_SHIFT;
use simex_engine::{
    Command, CommandBody, Engine, EngineConfig, Event, EventBody, InstrumentTable, OrderId, SelfTradePolicy, SymbolId,
};
use std::time::Duration;

/// The benchmark's symbols: the engine benchmark's instrument, and a copy of it for a second shard.
pub const SYMBOLS: [&str; 2] = ["BENCH", "BENCH2"];

/// Both symbols, with the engine benchmark's instrument parameters.
pub fn instruments() -> InstrumentTable {
    let toml = format!("{INSTRUMENTS_TOML}{}", INSTRUMENTS_TOML.replace("\"BENCH\"", "\"BENCH2\""));
    let table = InstrumentTable::from_toml(&toml).expect("valid instruments");
    for (index, symbol) in SYMBOLS.iter().enumerate() {
        assert_eq!(usize::from(table.by_symbol(symbol).expect("symbol").symbol_id), index);
    }
    table
}

/// The engine configuration of the engine benchmark's simex adapter: self-trades allowed, every
/// other check on.
pub fn engine_config() -> EngineConfig {
    EngineConfig { self_trade_policy: SelfTradePolicy::Allow, ..EngineConfig::default() }
}

/// A runtime with `shards` shards (symbol `k` on shard `k % shards`), pinned, with no taps and no
/// journal, handing its latency histograms over every `latency_interval`.
pub fn runtime_config(
    shards: usize,
    submitters: usize,
    wait: WaitStrategy,
    latency_interval: Duration,
) -> RuntimeConfig {
    RuntimeConfig {
        shards,
        submitters,
        wait,
        pin: true,
        latency_interval_ms: latency_interval.as_millis().max(1) as u64,
        engine: engine_config(),
        ..RuntimeConfig::default()
    }
}

/// Creates portfolios `1..=accounts` with plenty of cash and limits no order reaches (the engine
/// benchmark's setup). Portfolio commands go to shard 0; the ledger is shared by every shard.
pub fn setup_commands(accounts: u32) -> Vec<CommandBody> {
    (1..=accounts)
        .flat_map(|portfolio_id| {
            [
                CommandBody::CreatePortfolio { portfolio_id, cash_micros: ACCOUNT_CASH_MICROS },
                CommandBody::SetRiskLimits { portfolio_id, limits: LIMITS },
            ]
        })
        .collect()
}

/// Translates engine-neutral [`Op`]s of one or more workloads into `CommandBody`s, predicting the
/// order id each accepted order will get on its shard.
pub struct Translator {
    /// Orders accepted so far, per shard.
    accepted: Vec<u64>,
    /// Predicted engine order id by client id, per workload.
    ids: Vec<Vec<OrderId>>,
}

impl Translator {
    pub fn new(shards: usize, workloads: &[&Workload]) -> Translator {
        Translator {
            accepted: vec![0; shards],
            ids: workloads.iter().map(|w| vec![0; w.max_client_id as usize + 1]).collect(),
        }
    }

    /// `op` of workload `stream`, for `symbol_id` living on `shard`.
    pub fn translate(&mut self, stream: usize, symbol_id: SymbolId, shard: u16, op: &Op) -> CommandBody {
        let ids = &mut self.ids[stream];
        match *op {
            Op::New { id, account, side, tif, price, qty } => {
                self.accepted[usize::from(shard)] += 1;
                ids[id as usize] = (u64::from(shard) << ORDER_ID_SHARD_SHIFT) | self.accepted[usize::from(shard)];
                CommandBody::NewOrder(new_order(account, symbol_id, side, tif, price, qty))
            }
            Op::Cancel { id, account } => CommandBody::Cancel { portfolio_id: account, order_id: ids[id as usize] },
            Op::Replace { id, account, price, qty } => CommandBody::Replace {
                portfolio_id: account,
                order_id: ids[id as usize],
                price_ticks: price,
                qty_lots: qty,
            },
        }
    }
}

/// A translated stream: the warm-up (never timed) and the measured commands.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    pub warmup: Vec<CommandBody>,
    pub measured: Vec<CommandBody>,
}

impl Stream {
    /// One workload on `symbol_id`, which lives on `shard`.
    pub fn single(workload: &Workload, symbol_id: SymbolId, shard: u16) -> Stream {
        let mut translator = Translator::new(usize::from(shard) + 1, &[workload]);
        let mut part = |ops: &[Op]| ops.iter().map(|op| translator.translate(0, symbol_id, shard, op)).collect();
        let warmup = part(&workload.warmup);
        let measured = part(&workload.measured);
        Stream { warmup, measured }
    }

    /// Several workloads, workload `i` on symbol `i`, merged by taking one command of each in turn
    /// (warm-ups first, then the measured parts); symbol `i` lives on shard `i % shards`.
    pub fn interleaved(workloads: &[&Workload], shards: usize) -> Stream {
        let mut translator = Translator::new(shards, workloads);
        let mut merge = |parts: Vec<&[Op]>| {
            let longest = parts.iter().map(|p| p.len()).max().unwrap_or(0);
            let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
            for index in 0..longest {
                for (stream, part) in parts.iter().enumerate() {
                    if let Some(op) = part.get(index) {
                        out.push(translator.translate(stream, stream as SymbolId, (stream % shards) as u16, op));
                    }
                }
            }
            out
        };
        let warmup = merge(workloads.iter().map(|w| &w.warmup[..]).collect());
        let measured = merge(workloads.iter().map(|w| &w.measured[..]).collect());
        Stream { warmup, measured }
    }
}

/// What a run produced, and a digest of it. See the module documentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventCounts {
    pub events: u64,
    pub accepted: u64,
    pub fills: u64,
    pub traded_lots: i64,
    pub cancelled: u64,
    pub replaced: u64,
    pub rejected: u64,
    pub digest: u64,
}

impl EventCounts {
    #[inline]
    pub fn add(&mut self, event: &Event) {
        self.events += 1;
        let mut hash = Mixer::new(event.seq);
        match event.body {
            EventBody::OrderAccepted(a) => {
                self.accepted += 1;
                hash.put(1).put(a.order_id).put(u64::from(a.portfolio_id)).put(a.price_ticks as u64);
                hash.put(a.qty_lots as u64).put(a.reserved_cash_micros as u64);
            }
            EventBody::Fill(f) => {
                self.fills += 1;
                self.traded_lots += f.qty_lots;
                hash.put(2).put(f.trade_id).put(f.maker_order_id).put(f.taker_order_id).put(f.price_ticks as u64);
                hash.put(f.qty_lots as u64).put(f.notional_micros as u64).put(f.maker_fee_micros as u64);
                hash.put(f.taker_fee_micros as u64);
            }
            EventBody::OrderCancelled { order_id, qty_lots, reason, .. } => {
                self.cancelled += 1;
                hash.put(3).put(order_id).put(qty_lots as u64).put(reason as u64);
            }
            EventBody::OrderReplaced {
                order_id, price_ticks, qty_lots, priority_kept, reserved_cash_micros, ..
            } => {
                self.replaced += 1;
                hash.put(4).put(order_id).put(price_ticks as u64).put(qty_lots as u64);
                hash.put(u64::from(priority_kept)).put(reserved_cash_micros as u64);
            }
            EventBody::Rejected { order_id, reason, .. } => {
                self.rejected += 1;
                hash.put(5).put(order_id).put(reason as u64);
            }
            EventBody::PortfolioCreated { portfolio_id, cash_micros } => {
                hash.put(6).put(u64::from(portfolio_id)).put(cash_micros as u64);
            }
            _ => {
                hash.put(7);
            }
        }
        self.digest = self.digest.wrapping_add(hash.finish());
    }

    /// Adds another run's counts (several producers, several shards).
    pub fn merge(&mut self, other: &EventCounts) {
        self.events += other.events;
        self.accepted += other.accepted;
        self.fills += other.fills;
        self.traded_lots += other.traded_lots;
        self.cancelled += other.cancelled;
        self.replaced += other.replaced;
        self.rejected += other.rejected;
        self.digest = self.digest.wrapping_add(other.digest);
    }

    /// Equal in everything but the digest (for runs whose shard layouts differ).
    pub fn same_work(&self, other: &EventCounts) -> bool {
        EventCounts { digest: 0, ..*self } == EventCounts { digest: 0, ..*other }
    }
}

/// A small multiply-rotate hash (the digest needs to catch differences, not resist attacks).
struct Mixer(u64);

impl Mixer {
    fn new(seed: u64) -> Mixer {
        Mixer(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    #[inline]
    fn put(&mut self, value: u64) -> &mut Mixer {
        self.0 = (self.0 ^ value).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(29);
        self
    }

    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}

/// The shard's engine with no thread around it: the same type (`Engine<FastBook, SharedLedger>`)
/// and configuration a runtime shard runs, commands applied in a loop on the calling thread.
pub struct BareEngine {
    pub engine: ShardEngine,
    events: Vec<Event>,
    now_ns: i64,
    pub counts: EventCounts,
}

impl BareEngine {
    /// One engine owning `symbols`, numbering orders as shard `shard_id`, on its own ledger.
    pub fn new(shard_id: u16, symbols: Option<Vec<SymbolId>>) -> BareEngine {
        let config = EngineConfig { shard_id, owned_symbols: symbols, ..engine_config() };
        let ledger = SharedLedger(AtomicLedger::new(RuntimeConfig::default().portfolios_max));
        // The venue clock's epoch, so that day-dependent state matches a runtime run of today.
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as i64);
        BareEngine {
            engine: Engine::with_ledger(config, instruments(), ledger),
            events: Vec::with_capacity(1024),
            now_ns,
            counts: EventCounts::default(),
        }
    }

    #[inline]
    pub fn apply(&mut self, body: CommandBody) {
        self.events.clear();
        self.now_ns += 1;
        self.engine.apply(&Command { timestamp_ns: self.now_ns, body }, &mut self.events);
        for event in &self.events {
            self.counts.add(event);
        }
    }
}

/// Whether two engines hold the same state: the state hash (books, positions, counters) and every
/// portfolio's account in the ledger (the day of the daily P&L aside, which follows the clock).
pub fn same_state(a: &ShardEngine, b: &ShardEngine, accounts: u32) -> bool {
    let strip = |engine: &ShardEngine, portfolio_id| {
        engine.account(portfolio_id).map(|account| simex_engine::Account { daily_pnl_day: 0, ..account })
    };
    a.state_hash() == b.state_hash() && (1..=accounts).all(|p| strip(a, p) == strip(b, p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{exchange_core, model};

    fn replay(setup: &[CommandBody], commands: &[CommandBody], engine: &mut BareEngine) {
        for &command in setup.iter().chain(commands) {
            engine.apply(command);
        }
    }

    /// The translated ids are the ones the engine assigns (a wrong one would be a rejected cancel
    /// or replace), in every shard layout, and the layouts do the same work as the model book.
    #[test]
    fn predicted_ids_hold_in_every_layout() {
        let params = |seed| exchange_core::Params { commands: 3_000, seed, ..Default::default() };
        let (a, b) = (exchange_core::generate(&params(23)), exchange_core::generate(&params(24)));
        let setup = setup_commands(a.accounts.max(b.accounts));
        let model_fills: u64 = [&a, &b]
            .iter()
            .map(|w| {
                let run = model::replay(w);
                (run.fills.warmup.trade_count() + run.fills.measured.trade_count()) as u64
            })
            .sum();

        let one = Stream::interleaved(&[&a, &b], 1);
        let mut single = BareEngine::new(0, None);
        replay(&setup, &[one.warmup.clone(), one.measured.clone()].concat(), &mut single);
        assert_eq!(single.counts.rejected, 0);
        assert_eq!(single.counts.fills, model_fills);

        let two = Stream::interleaved(&[&a, &b], 2);
        let mut split = EventCounts::default();
        for (shard, workload) in [&a, &b].into_iter().enumerate() {
            let mut engine = BareEngine::new(shard as u16, Some(vec![shard as SymbolId]));
            let own = Stream::single(workload, shard as SymbolId, shard as u16);
            let mine = |c: &&CommandBody| match c {
                CommandBody::NewOrder(order) => usize::from(order.symbol_id) == shard,
                CommandBody::Cancel { order_id, .. } | CommandBody::Replace { order_id, .. } => {
                    (order_id >> ORDER_ID_SHARD_SHIFT) as usize == shard
                }
                _ => false,
            };
            // Splitting the two-shard merge by shard gives each shard's own translation.
            assert_eq!(two.measured.iter().filter(mine).copied().collect::<Vec<_>>(), own.measured);
            replay(&setup, &[own.warmup, own.measured].concat(), &mut engine);
            engine.engine.check_invariants();
            split.merge(&engine.counts);
        }
        assert_eq!(split.rejected, 0);
        // Two engines each created the portfolios: count those events once.
        let portfolio_events = setup.len() as u64;
        split.events -= portfolio_events;
        assert!(split.same_work(&single.counts), "{split:?} vs {:?}", single.counts);
    }
}
