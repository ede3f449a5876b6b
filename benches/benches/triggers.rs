//! `cargo bench -p simex-benches --bench triggers [-- --quick]`: reference trades processed per
//! second by one shard's engine while conditional orders wait for their triggers.
//!
//! Setup: one engine owning the six equities and ETFs of the default table, all at 100.00, and
//! `n` conditional orders spread round-robin over them: buy stops 5-10% above, sell stops 5-10%
//! below, and buy and sell trailing stops of 5%, accepted while the prices walk (so trailing stops
//! start from different best prices). Measured: a random walk of reference trades, one tick at a
//! time, kept within 2% of 100.00 so that nothing fires: the cost of a print with `n` orders
//! waiting, which the trigger indexes should keep flat as `n` grows (no scan of the orders).
//! Reported: the median of several runs, in ticks per second and nanoseconds per tick.

use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use simex_engine::*;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "reference trades per second with conditional orders waiting")]
struct Cli {
    /// A few thousand ticks, one run: checks that it runs.
    #[arg(long)]
    quick: bool,
    /// Measured ticks per run [default: 400000; 5000 with --quick].
    #[arg(long)]
    ticks: Option<usize>,
    /// Runs per order count [default: 5; 1 with --quick].
    #[arg(long)]
    runs: Option<usize>,
    /// Waiting conditional orders, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [0usize, 1_000, 10_000, 100_000])]
    orders: Vec<usize>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const START_TICKS: i64 = 10_000;
const WALK_LIMIT_TICKS: i64 = 200;

struct Shard {
    engine: Engine,
    symbols: Vec<SymbolId>,
    prices: Vec<i64>,
    rng: ChaCha8Rng,
    now_ns: i64,
    events: Vec<Event>,
}

impl Shard {
    fn new(orders: usize) -> Shard {
        let instruments = InstrumentTable::default_table();
        let symbols: Vec<SymbolId> = ["AAPL", "MSFT", "NVDA", "TSLA", "SPY", "QQQ"]
            .iter()
            .map(|s| instruments.by_symbol(s).unwrap().symbol_id)
            .collect();
        let config = EngineConfig {
            orders_max: (orders as u32 + 1024).next_power_of_two(),
            owned_symbols: Some(symbols.clone()),
            ..EngineConfig::default()
        };
        let mut shard = Shard {
            engine: Engine::new(config, instruments),
            prices: vec![START_TICKS; symbols.len()],
            symbols,
            rng: ChaCha8Rng::seed_from_u64(7),
            now_ns: 1_767_623_400 * NANOS_PER_SECOND,
            events: Vec::new(),
        };
        shard.apply(CommandBody::CreatePortfolio { portfolio_id: 1, cash_micros: 1_000_000_000 * 1_000_000 });
        let limits = RiskLimits { open_orders_max: u32::MAX, ..RiskLimits::default() };
        shard.apply(CommandBody::SetRiskLimits { portfolio_id: 1, limits });
        for index in 0..shard.symbols.len() {
            shard.tick(index);
        }
        for i in 0..orders {
            let index = i % shard.symbols.len();
            let (symbol_id, price) = (shard.symbols[index], shard.prices[index]);
            let away = price * shard.rng.gen_range(500..1_000) / 10_000;
            let order = |side| NewOrder::market(1, symbol_id, side, 1);
            let order = match (i / shard.symbols.len()) % 4 {
                0 => order(Side::Buy).triggered_at(TriggerKind::Stop, price + away),
                1 => order(Side::Sell).triggered_at(TriggerKind::Stop, price - away),
                2 => order(Side::Buy).trailing_bps(500),
                _ => order(Side::Sell).trailing_bps(500),
            };
            shard.apply(CommandBody::NewOrder(order));
            assert!(
                matches!(shard.events[..], [Event { body: EventBody::ConditionalAccepted(_), .. }]),
                "setup order refused: {:?}",
                shard.events
            );
            if i % 8 == 0 {
                shard.tick(index);
            }
        }
        assert_eq!(shard.engine.conditional_orders().len(), orders);
        shard
    }

    fn apply(&mut self, body: CommandBody) {
        self.now_ns += 1_000;
        self.events.clear();
        self.engine.apply(&Command { timestamp_ns: self.now_ns, body }, &mut self.events);
    }

    /// One reference trade one tick away from the last, within the walk's limits.
    fn tick(&mut self, index: usize) {
        let step = if self.rng.gen() { 1 } else { -1 };
        let price = (self.prices[index] + step).clamp(START_TICKS - WALK_LIMIT_TICKS, START_TICKS + WALK_LIMIT_TICKS);
        self.prices[index] = price;
        self.apply(CommandBody::SetReferencePrice { symbol_id: self.symbols[index], price_ticks: price });
        debug_assert!(self.events.len() == 1, "a tick fired something: {:?}", self.events);
    }
}

fn main() {
    let cli = Cli::parse();
    let ticks = cli.ticks.unwrap_or(if cli.quick { 5_000 } else { 400_000 });
    let runs = cli.runs.unwrap_or(if cli.quick { 1 } else { 5 }).max(1);
    println!("| waiting conditional orders | ticks/s (median of {runs}) | ns/tick | min..max ticks/s |");
    println!("| ---: | ---: | ---: | ---: |");
    for &orders in &cli.orders {
        eprintln!("{orders} orders: setting up");
        let mut shard = Shard::new(orders);
        let mut rates = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            for t in 0..ticks {
                shard.tick(t % shard.symbols.len());
            }
            let seconds = started.elapsed().as_secs_f64();
            assert!(shard.engine.conditional_orders().len() == orders, "a tick fired an order");
            rates.push(ticks as f64 / seconds);
        }
        rates.sort_by(|a, b| a.total_cmp(b));
        let median = rates[rates.len() / 2];
        println!("| {orders} | {median:.0} | {:.0} | {:.0}..{:.0} |", 1e9 / median, rates[0], rates[rates.len() - 1]);
    }
}
