//! `simex-loadgen`: drives the binary order-entry protocol and reports client-side latency.
//! See `docs/protocol.md` (the protocol) and `tools/src/loadgen` (how latency is measured).

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use simex_tools::loadgen::{self, mix::MixKind, report, LoadConfig, Target};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "simex-loadgen", about = "Latency load generator for the simex binary protocol")]
struct Args {
    /// Connections, each with its own portfolio.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests per second over all connections (open loop, latency from the planned send time);
    /// 0 for closed loop (one request in flight per connection).
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(long, value_enum, default_value_t = MixKind::ExchangeCore)]
    mix: MixKind,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Shards of the in-process venue.
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Busy-poll the in-process gateway's event loop.
    #[arg(long)]
    busy_poll: bool,
    /// A running venue's binary gateway, instead of an in-process one.
    #[arg(long)]
    connect: Option<SocketAddr>,
    /// With --connect: the API key every connection logs in with.
    #[arg(long, requires = "connect")]
    key: Option<String>,
    /// With --connect: the portfolio every connection trades.
    #[arg(long, requires = "connect")]
    portfolio: Option<u32>,
    /// With --connect: the symbol id to trade.
    #[arg(long, default_value_t = 0)]
    symbol: u16,
    /// Where to write the HdrHistogram interval log (V2+DEFLATE).
    #[arg(long, default_value = "simex-loadgen.hlog")]
    hlog: PathBuf,
    /// Where to draw the percentile spectrum.
    #[arg(long, default_value = "simex-loadgen.svg")]
    svg: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    let target = match args.connect {
        Some(address) => Target::Remote {
            address,
            key: args.key.clone().ok_or_else(|| anyhow::anyhow!("--connect needs --key"))?,
            portfolio_id: args.portfolio.ok_or_else(|| anyhow::anyhow!("--connect needs --portfolio"))?,
            symbol_id: args.symbol,
        },
        None => Target::InProcess { shards: args.shards, busy_poll: args.busy_poll },
    };
    let config = LoadConfig {
        connections: args.connections,
        rate: args.rate,
        duration: Duration::from_secs(args.seconds),
        mix: args.mix,
        seed: args.seed,
        target,
    };
    let expected = if args.rate > 0 { args.rate * args.seconds } else { 0 };
    let bar = ProgressBar::new(expected);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:40}] {pos} answered {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let result = loadgen::run(&config, |answered| bar.set_position(answered))?;
    bar.finish_and_clear();

    let mode = if args.rate > 0 { format!("open loop at {} requests/s", args.rate) } else { "closed loop".into() };
    println!(
        "{} connections, {mode}, {:?} mix: {} sent, {} answered in {:.1} s",
        args.connections,
        args.mix,
        result.sent,
        result.answered,
        result.elapsed.as_secs_f64()
    );
    println!("{}", report::percentile_table(&result));
    report::write_interval_log(&result, &args.hlog)?;
    let title = format!("simex binary protocol round trip, {mode}");
    report::draw_spectrum(&result, &args.svg, &title)?;
    println!("interval log: {}\npercentile spectrum: {}", args.hlog.display(), args.svg.display());
    Ok(())
}
