//! `simex`: the venue binary.
//!
//! Without a subcommand it serves the venue (`simex::venue::run`): the runtime with its journal
//! under a local data directory, and the HTTP API on `PORT` (default 8080); `simex --help` lists
//! the settings. `simex demo` runs a short demonstration through one engine (two bots trading AAPL
//! and BTC-USD), printing every event as a JSON line and then the books and portfolios. `simex
//! load` runs the sharded runtime with its journal under a steady synthetic order load: recovery on
//! start, acknowledgements printed as they become durable. It is what the crash tests kill.

mod load;

use anyhow::Context;
use simex_engine::decimal::format_micros;
use simex_engine::*;

/// 2026-01-05 14:30:00 UTC.
const START_NS: i64 = 1_767_623_400 * NANOS_PER_SECOND;
const DOLLAR: i64 = 1_000_000;

#[derive(clap::Parser)]
#[command(
    name = "simex",
    about = "A simulated exchange and paper-trading venue",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Subcommand>,
    #[command(flatten)]
    serve: simex::config::ServeArgs,
}

#[derive(clap::Subcommand)]
enum Subcommand {
    /// Run the sharded runtime with its journal under a synthetic order load.
    Load(load::LoadArgs),
    /// Run a short demonstration through one engine and print its events.
    Demo,
}

fn main() -> anyhow::Result<()> {
    use clap::Parser;
    let cli = Cli::parse();
    match cli.command {
        Some(Subcommand::Load(args)) => load::run(args),
        Some(Subcommand::Demo) => demonstration(),
        None => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                .init();
            simex::venue::run(simex::config::VenueConfig::resolve(cli.serve)?)
        }
    }
}

fn demonstration() -> anyhow::Result<()> {
    let instruments = InstrumentTable::default_table();
    let symbol = |name: &str| instruments.by_symbol(name).map(|i| i.symbol_id).context("default instrument");
    let (aapl, btc) = (symbol("AAPL")?, symbol("BTC-USD")?);
    let mut engine = Engine::new(EngineConfig::default(), instruments.clone());

    let script = [
        CommandBody::CreatePortfolio { portfolio_id: 1, cash_micros: 100_000 * DOLLAR },
        CommandBody::CreatePortfolio { portfolio_id: 2, cash_micros: 100_000 * DOLLAR },
        CommandBody::SetReferencePrice { symbol_id: aapl, price_ticks: 15_000 },
        CommandBody::NewOrder(NewOrder::limit(1, aapl, Side::Sell, 15_010, 50)),
        CommandBody::NewOrder(NewOrder::limit(1, aapl, Side::Sell, 15_020, 50)),
        CommandBody::NewOrder(NewOrder::limit(1, aapl, Side::Buy, 14_990, 30)),
        CommandBody::NewOrder(NewOrder::market(2, aapl, Side::Buy, 70)),
        CommandBody::NewOrder(NewOrder::limit(2, aapl, Side::Sell, 14_990, 10).with_tif(TimeInForce::Ioc)),
        CommandBody::NewOrder(NewOrder::limit(2, btc, Side::Buy, 6_000_000, 25_000_000)),
        CommandBody::NewOrder(NewOrder::limit(1, btc, Side::Sell, 5_999_900, 10_000_000)),
        CommandBody::NewOrder(NewOrder::limit(2, aapl, Side::Buy, 16_000, 1)),
    ];
    println!("simex engine demonstration: each command's events as JSON lines");
    let mut events = Vec::new();
    for (index, body) in script.into_iter().enumerate() {
        let command = Command { timestamp_ns: START_NS + index as i64 * 1_000_000, body };
        events.clear();
        engine.apply(&command, &mut events);
        for event in &events {
            println!("{}", serde_json::to_string(event)?);
        }
    }
    engine.check_invariants();

    println!("\nbooks:");
    for instrument in instruments.iter() {
        let bids = engine.levels(instrument.symbol_id, Side::Buy, 5);
        let asks = engine.levels(instrument.symbol_id, Side::Sell, 5);
        if bids.is_empty() && asks.is_empty() {
            continue;
        }
        let show = |levels: &[LevelView]| {
            levels
                .iter()
                .map(|l| format!("{} x {}", instrument.tick.format(l.price_ticks), instrument.lot.format(l.qty_lots)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!("  {:<8} bids [{}]  asks [{}]", instrument.symbol, show(&bids), show(&asks));
    }
    println!("portfolios:");
    for portfolio_id in [1, 2] {
        let account = engine.account(portfolio_id).context("portfolio exists")?;
        println!(
            "  {portfolio_id}: cash {} reserved {} available {} fees {} realized {}",
            format_micros(account.cash_micros),
            format_micros(account.reserved_micros),
            format_micros(account.available_micros()),
            format_micros(account.fees_paid_micros),
            format_micros(account.realized_pnl_micros),
        );
        for ((_, symbol_id), position) in engine.positions().into_iter().filter(|((p, _), _)| *p == portfolio_id) {
            let instrument = instruments.get(symbol_id).context("instrument")?;
            println!(
                "     {:<8} qty {} cost {}",
                instrument.symbol,
                instrument.lot.format(position.qty_lots),
                format_micros(position.cost_basis_micros)
            );
        }
    }
    println!("state hash {:016x}", engine.state_hash());
    Ok(())
}
