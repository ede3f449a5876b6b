//! `cargo bench -p simex-benches --bench engine [-- OPTIONS]`: the whole engine comparison.
//!
//! Prints progress to stderr and the markdown report to stdout. `--quick` is a smoke test of every
//! workload and engine in seconds; the default is the full benchmark (see benches/README.md).

use clap::Parser;
use simex_benches::adapters::EngineKind;
use simex_benches::alloc_counter::CountingAllocator;
use simex_benches::suite::{self, Options, WorkloadKind};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[derive(Parser, Debug)]
#[command(about = "simex engine benchmark: simex vs matchcore vs orderbook-rs")]
struct Cli {
    /// Small streams and one run: checks that everything runs, in seconds.
    #[arg(long)]
    quick: bool,
    /// New orders per flash1 scenario [default: 1000000; 20000 with --quick].
    #[arg(long)]
    orders: Option<usize>,
    /// Measured commands of the exchange-core mix [default: 3000000; 60000 with --quick].
    #[arg(long)]
    commands: Option<usize>,
    /// Seed of every workload.
    #[arg(long, default_value_t = 23)]
    seed: u32,
    /// Throughput runs per engine and workload [default: 9; 1 with --quick].
    #[arg(long)]
    runs: Option<usize>,
    /// Throughput runs for orderbook-rs [default: 5; 1 with --quick].
    #[arg(long)]
    orderbook_rs_runs: Option<usize>,
    /// Engines, comma-separated: simex, book, matchcore, orderbook-rs [default: all].
    #[arg(long, value_delimiter = ',')]
    engines: Vec<String>,
    /// Workloads, comma-separated: exchange-core, static, normal, swing-25, swing-40, flash-crash
    /// [default: all].
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Skip recording and comparing fills.
    #[arg(long)]
    no_verify: bool,
    /// Skip the per-command latency pass.
    #[arg(long)]
    no_latency: bool,
    /// `EngineConfig::orders_max` of simex's full path [default: the engine's, 1048576].
    #[arg(long)]
    simex_orders_max: Option<u32>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let cli = Cli::parse();
    let base = if cli.quick { Options::quick() } else { Options::full() };
    let engines = if cli.engines.is_empty() {
        base.engines.clone()
    } else {
        cli.engines
            .iter()
            .map(|key| {
                EngineKind::from_key(key).unwrap_or_else(|| {
                    eprintln!("unknown engine {key:?}");
                    std::process::exit(2)
                })
            })
            .collect()
    };
    let workloads = if cli.workloads.is_empty() {
        base.workloads.clone()
    } else {
        cli.workloads
            .iter()
            .map(|key| {
                WorkloadKind::from_key(key).unwrap_or_else(|| {
                    eprintln!("unknown workload {key:?}");
                    std::process::exit(2)
                })
            })
            .collect()
    };
    let options = Options {
        orders: cli.orders.unwrap_or(base.orders),
        commands: cli.commands.unwrap_or(base.commands),
        seed: cli.seed,
        runs: cli.runs.unwrap_or(base.runs),
        orderbook_rs_runs: cli.orderbook_rs_runs.unwrap_or(base.orderbook_rs_runs),
        engines,
        workloads,
        verify: !cli.no_verify,
        latency: !cli.no_latency,
        simex_orders_max: cli.simex_orders_max.unwrap_or(base.simex_orders_max),
    };
    let result = suite::run(&options, |line| eprintln!("{line}"));
    print!("{}", simex_benches::report::markdown(&result));
}
