//! `simex-loadgen`: drives the binary order-entry protocol, the HTTP API or both in one run, and
//! reports client-side latency. See `docs/protocol.md`, `docs/http.md` and `tools/src/loadgen`
//! (how latency is measured).

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use simex_tools::loadgen::{self, mix::MixKind, report, HttpTarget, LoadConfig, Protocol, Target};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "simex-loadgen", about = "Latency load generator for the simex binary protocol and HTTP API")]
struct Args {
    /// The API driven: the binary protocol, HTTP, or both one after the other (same mix, rate and
    /// duration each), in one table.
    #[arg(long, value_enum, default_value_t = Protocol::Binary)]
    target: Protocol,
    /// A running venue's HTTP API (e.g. http://127.0.0.1:8080), instead of an in-process one. Its
    /// per-key rate limit (RATE_LIMIT_PER_SECOND, 50/s by default) must allow the load.
    #[arg(long)]
    http_url: Option<String>,
    /// Connections, each with its own portfolio.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests per second over all connections (open loop, latency from the planned send time);
    /// 0 for closed loop (one request in flight per connection).
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// The order mix. exchange-core: the engine benchmark's port of exchange-core's test generator
    /// (after a warm-up that builds ~1,000 resting orders: 9% GTC, 3% IOC, 6% cancel, 82% move,
    /// priced around 100,000 ticks, 1 to 126 lots; IOCs limited to 9% from the last trade); each
    /// connection runs its own generator with self-trade prevention off. new-cancel: a resting GTC
    /// order, then a cancel of the oldest, alternately.
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
        protocol: args.target,
        http: match &args.http_url {
            Some(base_url) => HttpTarget::Remote { base_url: base_url.clone() },
            None => HttpTarget::InProcess { shards: args.shards },
        },
    };
    let expected_per_target = if args.rate > 0 { args.rate * args.seconds } else { 0 };
    let expected = if args.target == Protocol::Both { 2 * expected_per_target } else { expected_per_target };
    if args.target != Protocol::Binary && args.http_url.is_none() {
        println!(
            "in-process HTTP venue: per-key rate limit raised to {} requests/s (the served default is 50)",
            loadgen::http::RATE_LIMIT
        );
    }
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
    if !result.http_statuses.is_empty() {
        let statuses: Vec<String> = result.http_statuses.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        println!("HTTP answers: {}", statuses.join(", "));
    }
    report::write_interval_log(&result, &args.hlog)?;
    let api = match args.target {
        Protocol::Binary => "binary protocol",
        Protocol::Http => "HTTP API",
        Protocol::Both => "binary protocol and HTTP API",
    };
    let title = format!("simex {api} round trip, {mode}");
    report::draw_spectrum(&result, &args.svg, &title)?;
    println!("interval log: {}\npercentile spectrum: {}", args.hlog.display(), args.svg.display());
    Ok(())
}
