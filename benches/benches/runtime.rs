//! `cargo bench -p simex-benches --bench runtime [-- OPTIONS]`: the threaded runtime against the
//! machine's core-to-core floor and the bare engine.
//!
//! Prints progress to stderr and the markdown report to stdout, and exits with status 1 if any
//! runtime run did not produce the bare engine's events and final state. Threads are pinned
//! (producer on core 0, shard on core 1) and spin, so the machine should otherwise be idle.
//! `--quick` is a smoke test of every part in seconds; the default is the full benchmark (see
//! benches/README.md).

use clap::Parser;
use simex_benches::alloc_counter::CountingAllocator;
use simex_benches::runtime::{self, parse_rate, Options};
use std::path::PathBuf;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[derive(Parser, Debug)]
#[command(about = "simex runtime benchmark: round-trip latency, throughput and shards, against the machine's floor")]
struct Cli {
    /// Tiny sizes: checks that every part runs, in seconds. The numbers mean nothing.
    #[arg(long)]
    quick: bool,
    /// Parts to run, comma-separated: floor, roundtrip, throughput, scaling [default: all].
    #[arg(long, value_delimiter = ',')]
    parts: Vec<String>,
    /// Offered rates of the open-loop sweep, comma-separated (50000, 50k, 1M)
    /// [default: 10k,50k,100k,200k,500k,1M,2M, then doubling while kept up with; 10k,100k with --quick].
    #[arg(long, value_delimiter = ',', value_parser = parse_rate)]
    rates: Vec<u64>,
    /// Do not go past the listed rates (no doubling, no bisection).
    #[arg(long)]
    no_extend: bool,
    /// Measured time per offered rate, in milliseconds [default: 2000; 40 with --quick].
    #[arg(long)]
    duration_ms: Option<u64>,
    /// Most measured commands per offered rate [default: 3000000; 20000 with --quick].
    #[arg(long)]
    max_commands: Option<usize>,
    /// Offered rate of the run with the park wait strategy (0: none) [default: 100k; 10k with --quick].
    #[arg(long, value_parser = parse_rate_or_zero)]
    park_rate: Option<u64>,
    /// Offered rate whose per-stage table is printed and interval log written [default: 100k].
    #[arg(long, value_parser = parse_rate)]
    stage_rate: Option<u64>,
    /// Where to write the interval log [default: benches/results/runtime-roundtrip.hlog; none with --quick].
    #[arg(long)]
    hlog: Option<PathBuf>,
    /// Write no interval log.
    #[arg(long)]
    no_hlog: bool,
    /// Round trips recorded per floor measurement [default: 2000000; 20000 with --quick].
    #[arg(long)]
    hop_samples: Option<usize>,
    /// Measured exchange-core commands for the throughput comparison [default: 3000000; 20000 with --quick].
    #[arg(long)]
    commands: Option<usize>,
    /// Throughput runs of each path [default: 5; 1 with --quick].
    #[arg(long)]
    runs: Option<usize>,
    /// Commands in flight per producer in the closed-loop runs.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Measured exchange-core commands per symbol in the scaling runs [default: 1000000; 10000 with --quick].
    #[arg(long)]
    scaling_commands: Option<usize>,
    /// Runs of each scaling configuration [default: 3; 1 with --quick].
    #[arg(long)]
    scaling_runs: Option<usize>,
    /// Add a scaling row with two spinning shards and a spinning producer on two cores (slow).
    #[arg(long)]
    contended_spin: bool,
    /// Seed of every stream.
    #[arg(long, default_value_t = 23)]
    seed: u64,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn parse_rate_or_zero(text: &str) -> Result<u64, String> {
    if text.trim() == "0" {
        Ok(0)
    } else {
        parse_rate(text)
    }
}

fn main() {
    let cli = Cli::parse();
    let base = if cli.quick { Options::quick() } else { Options::full() };
    let mut options = Options {
        rates: if cli.rates.is_empty() { base.rates.clone() } else { cli.rates.clone() },
        extend: base.extend && !cli.no_extend && cli.rates.is_empty(),
        duration: cli.duration_ms.map_or(base.duration, Duration::from_millis),
        max_commands: cli.max_commands.unwrap_or(base.max_commands),
        park_rate: match cli.park_rate {
            Some(0) => None,
            Some(rate) => Some(rate),
            None => base.park_rate,
        },
        stage_rate: cli.stage_rate.unwrap_or(base.stage_rate),
        hlog: if cli.no_hlog { None } else { cli.hlog.clone().or(base.hlog.clone()) },
        hop_samples: cli.hop_samples.unwrap_or(base.hop_samples),
        commands: cli.commands.unwrap_or(base.commands),
        runs: cli.runs.unwrap_or(base.runs).max(1),
        window: cli.window.max(1),
        scaling_commands: cli.scaling_commands.unwrap_or(base.scaling_commands),
        scaling_runs: cli.scaling_runs.unwrap_or(base.scaling_runs).max(1),
        scaling_contended_spin: base.scaling_contended_spin || cli.contended_spin,
        seed: cli.seed,
        ..base
    };
    if !cli.parts.is_empty() {
        let wanted = |name: &str| cli.parts.iter().any(|part| part == name);
        for part in &cli.parts {
            if !["floor", "roundtrip", "throughput", "scaling"].contains(&part.as_str()) {
                eprintln!("unknown part {part:?}: expected floor, roundtrip, throughput or scaling");
                std::process::exit(2);
            }
        }
        options.floor = wanted("floor");
        options.roundtrip = wanted("roundtrip");
        options.throughput = wanted("throughput");
        options.scaling = wanted("scaling");
    }
    let results = runtime::run(&options, |line| eprintln!("{line}"));
    print!("{}", runtime::report::markdown(&results));
    if !results.all_verified() {
        eprintln!("error: a runtime run did not produce the bare engine's events or state (see the report)");
        std::process::exit(1);
    }
}
