//! The runtime benchmark: what the threaded runtime (`simex::runtime`) adds to the engine, in
//! latency and in throughput, measured against the machine's own floor in the same run.
//!
//! The engine benchmark answers "how fast is `Engine::apply`"; a venue's clients see something
//! else: a command crosses to a shard thread, is stamped, applied, and its results cross back. This
//! benchmark puts numbers on that path and on its costs, and says which of them are the machine's:
//!
//! 0. [`floor`]: one cache line, and a pair of rtrb rings, ping-ponged between two pinned cores.
//!    The smallest round trip any two-thread design can have here.
//! 1. [`roundtrip`]: one producer, open loop at fixed offered rates, latency from the planned send
//!    time (corrected for coordinated omission), on the [`mix`] of resting orders, cancels and
//!    crossing IOCs. Per-rate percentiles, the highest sustainable rate, the runtime's per-stage
//!    table and an HdrHistogram interval log.
//! 2. [`pipeline`]: the exchange-core mix through the runtime, closed loop with a window of
//!    commands in flight, against the bare engine on the same stream in the same run, checked to
//!    produce the same events and the same final state.
//! 3. [`scaling`]: one shard against two, on two exchange-core streams (one symbol each).
//!
//! Everything is deterministic except the timing; every run is also checked against the bare
//! engine (see [`stream`] for how commands are translated and compared). [`report`] prints it all
//! as markdown.
//!
//! Threads pin on purpose (producer on core 0, shard on core 1, see [`threads`]) and spin: this
//! measures the design at its best on this machine, not under a general-purpose scheduler.

pub mod floor;
pub mod mix;
pub mod pipeline;
pub mod report;
pub mod roundtrip;
pub mod scaling;
pub mod stream;
pub mod threads;

use crate::workload::{exchange_core, Mix};
use floor::Hop;
use pipeline::{Layout, RuntimeRun};
use roundtrip::{BareCursor, RateRun, RateSpec, PRODUCER_CORE, SHARD_CORE};
use simex::runtime::{Stage, WaitStrategy};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use stream::{same_state, setup_commands, EventCounts, Stream};
use threads::{CpuSample, Preemption};

/// A run is sustainable when it achieves at least this share of the offered rate...
pub const ACHIEVED_SHARE_MIN: f64 = 0.95;
/// ...and its corrected p50 and steady p99 (`RateRun::steady_p99`) are each at most this many
/// times the lowest rate's. The steady p99 rather than the whole run's: on the shared machine these
/// numbers come from, a pinned thread is preempted for milliseconds a few times a second, which
/// sets the whole-run p99 at every rate and would decide the verdict by luck; a saturated runtime
/// instead raises the p99 of every stretch of the run. The p50 bound catches a rate at which every
/// command queues.
pub const LATENCY_GROWTH_MAX: u64 = 10;
/// Doubling past the listed rates stops here.
const RATE_CEILING: u64 = 64_000_000;

#[derive(Clone, Debug)]
pub struct Options {
    pub floor: bool,
    pub roundtrip: bool,
    pub throughput: bool,
    pub scaling: bool,
    /// Recorded round trips per floor measurement.
    pub hop_samples: usize,
    /// How often shards hand their latency histograms over (the runtime's default is 1 s; shorter
    /// here so that the pauses between phases are short).
    pub latency_interval: Duration,
    /// Offered rates of the open-loop sweep, commands per second.
    pub rates: Vec<u64>,
    /// After the listed rates, keep doubling while the runtime keeps up with the last one, then
    /// take two bisection steps towards each limit (kept up with, sustainable).
    pub extend: bool,
    /// Measured time per rate (fewer commands if `max_commands` is reached first).
    pub duration: Duration,
    /// Most measured commands per rate.
    pub max_commands: usize,
    /// Rate of the one run with the `Park` wait strategy.
    pub park_rate: Option<u64>,
    /// Rate whose per-stage table is printed and whose interval log is written.
    pub stage_rate: u64,
    /// Where the interval log goes; `None` writes none.
    pub hlog: Option<PathBuf>,
    /// Measured exchange-core commands for the throughput comparison.
    pub commands: usize,
    /// Throughput runs of each path.
    pub runs: usize,
    /// Commands in flight per producer in closed-loop runs.
    pub window: usize,
    /// Measured exchange-core commands per symbol for the scaling runs.
    pub scaling_commands: usize,
    /// Runs of each scaling configuration.
    pub scaling_runs: usize,
    /// Also run two spinning shards with a spinning producer competing for their two cores (slow:
    /// tens of times slower than the other rows).
    pub scaling_contended_spin: bool,
    pub seed: u64,
}

impl Options {
    pub fn full() -> Options {
        Options {
            floor: true,
            roundtrip: true,
            throughput: true,
            scaling: true,
            hop_samples: 2_000_000,
            latency_interval: Duration::from_millis(100),
            rates: vec![10_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000],
            extend: true,
            duration: Duration::from_secs(2),
            max_commands: 3_000_000,
            park_rate: Some(100_000),
            stage_rate: 100_000,
            hlog: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results/runtime-roundtrip.hlog")),
            commands: 3_000_000,
            runs: 5,
            window: 256,
            scaling_commands: 1_000_000,
            scaling_runs: 3,
            scaling_contended_spin: false,
            seed: 23,
        }
    }

    /// Tiny sizes: proves every part runs, in seconds. The numbers mean nothing.
    pub fn quick() -> Options {
        Options {
            hop_samples: 20_000,
            latency_interval: Duration::from_millis(5),
            rates: vec![10_000, 100_000],
            extend: false,
            duration: Duration::from_millis(40),
            max_commands: 20_000,
            park_rate: Some(10_000),
            stage_rate: 100_000,
            hlog: None,
            commands: 20_000,
            runs: 1,
            scaling_commands: 10_000,
            scaling_runs: 1,
            ..Options::full()
        }
    }
}

/// Parses a rate such as `50000`, `50k`, `1.5M` or `1_000_000`.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let clean = text.trim().replace('_', "");
    let (number, scale) = match clean.char_indices().last() {
        Some((i, 'k' | 'K')) => (&clean[..i], 1e3),
        Some((i, 'm' | 'M')) => (&clean[..i], 1e6),
        _ => (&clean[..], 1.0),
    };
    let value: f64 = number.parse().map_err(|_| format!("not a rate: {text:?} (e.g. 50000, 50k, 1M)"))?;
    let rate = (value * scale).round();
    if !(1.0..=1e10).contains(&rate) {
        return Err(format!("rate out of range: {text:?}"));
    }
    Ok(rate as u64)
}

pub struct Floor {
    pub hops: Vec<Hop>,
    pub clock_read_ns: u64,
}

impl Floor {
    /// The core-to-core hop the goals refer to: the cache line.
    pub fn hop(&self) -> &Hop {
        &self.hops[0]
    }
}

/// One open-loop run with its check against the bare engine.
pub struct RateRow {
    pub run: RateRun,
    pub verified: bool,
    /// Share of the machine's CPU time other processes used during the run.
    pub others: f64,
}

pub struct RoundTrip {
    pub mix: Mix,
    pub accounts: u32,
    /// Spin runs, by rate.
    pub spin: Vec<RateRow>,
    pub park: Option<RateRow>,
    pub hlog: Option<(PathBuf, usize)>,
}

impl RoundTrip {
    /// Corrected p50 and steady p99 of the lowest spin rate: the references for "bounded".
    pub fn base(&self) -> (u64, u64) {
        self.spin.first().map_or((0, 0), |row| (row.run.latency.value_at_quantile(0.5), row.run.steady_p99))
    }

    /// The run keeps up: it achieves the offered rate and its median stays bounded (see
    /// [`ACHIEVED_SHARE_MIN`] and [`LATENCY_GROWTH_MAX`]). Where this fails the runtime (or the
    /// producer) is saturated and commands queue.
    pub fn keeps_up(&self, run: &RateRun) -> bool {
        run.achieved >= ACHIEVED_SHARE_MIN * run.spec.rate as f64
            && run.latency.value_at_quantile(0.5) <= LATENCY_GROWTH_MAX * self.base().0
    }

    /// The run keeps up and its steady p99 stays bounded too: the benchmark's "sustainable".
    pub fn sustainable(&self, run: &RateRun) -> bool {
        self.keeps_up(run) && run.steady_p99 <= LATENCY_GROWTH_MAX * self.base().1
    }

    /// The highest spin rate that passes `test`. Lower rates may have failed: on a shared machine
    /// a run fails a latency bound by being preempted, which only ever adds latency, so a pass at a
    /// higher rate shows the capacity, while a saturated run cannot pass (its queue, and with it
    /// the p50 and the p99 of every tenth, keeps growing).
    pub fn highest(&self, test: impl Fn(&RateRun) -> bool) -> Option<u64> {
        self.spin.iter().filter(|row| test(&row.run)).map(|row| row.run.spec.rate).max()
    }

    /// The highest sustainable rate.
    pub fn max_sustainable(&self) -> Option<u64> {
        self.highest(|run| self.sustainable(run))
    }

    /// The highest rate the runtime keeps up with.
    pub fn max_kept_up(&self) -> Option<u64> {
        self.highest(|run| self.keeps_up(run))
    }
}

/// Throughput of one path over several runs, commands per second.
#[derive(Clone, Debug, Default)]
pub struct Rates(pub Vec<f64>);

impl Rates {
    pub fn median(&self) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    pub fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.0.iter().copied().fold(0.0, f64::max)
    }
}

pub struct Throughput {
    pub mix: Mix,
    pub commands: usize,
    pub window: usize,
    /// The engine benchmark's simex adapter (`Engine` with its own `LocalLedger`, ids mapped per
    /// command).
    pub adapter: Rates,
    pub adapter_rejected: usize,
    /// The shard's engine type on the translated stream, no threads.
    pub bare: Rates,
    pub bare_counts: EventCounts,
    pub runtime: Rates,
    pub runtime_counts: Vec<EventCounts>,
    /// Per runtime run: same events and same final state as the bare engine.
    pub verified: Vec<bool>,
    pub busy: u64,
    /// Allocation calls per measured command in the runtime runs (whole process).
    pub allocations_per_command: f64,
    /// Preemptions of the runtime runs' threads while measured, summed over the runs.
    pub preempted: Option<Preemption>,
    /// Where commands waited, per runtime run.
    pub waits: Vec<pipeline::Waits>,
    /// Mean time in the engine per command inside the shard (`match_risk`), per runtime run, ns.
    pub engine_ns: Vec<f64>,
}

/// One scaling configuration.
pub struct ScalingRow {
    pub name: String,
    pub shards: usize,
    pub producers: usize,
    /// The wait strategy the runtime used; `None` for the bare engine.
    pub wait: Option<WaitStrategy>,
    pub pinning: String,
    /// Cores the configuration keeps busy.
    pub cores: usize,
    pub rates: Rates,
    /// Every run produced the same work as the bare engine.
    pub verified: bool,
    /// Preemptions of the configuration's threads while measured, summed over the runs.
    pub preempted: Option<Preemption>,
}

pub struct Scaling {
    pub commands_per_symbol: usize,
    pub rows: Vec<ScalingRow>,
    pub cores: usize,
}

/// What else the machine did while one part ran.
#[derive(Clone, Debug)]
pub struct PartNoise {
    pub part: &'static str,
    /// Share of the machine's CPU time used by other processes.
    pub others: f64,
    /// Share of the machine's CPU time the hypervisor stole.
    pub steal: f64,
    /// Interrupts per second, per core.
    pub interrupts_per_second: Vec<f64>,
}

pub struct Results {
    pub options: Options,
    pub started_unix: u64,
    pub finished_unix: u64,
    pub wall: Duration,
    pub load_before: String,
    pub load_after: String,
    /// What else the machine did while each part ran.
    pub others: Vec<PartNoise>,
    pub floor: Option<Floor>,
    pub roundtrip: Option<RoundTrip>,
    pub throughput: Option<Throughput>,
    pub scaling: Option<Scaling>,
}

impl Results {
    /// Whether every runtime run produced what the bare engine produced on the same commands.
    pub fn all_verified(&self) -> bool {
        let roundtrip =
            self.roundtrip.as_ref().is_none_or(|rt| rt.spin.iter().chain(rt.park.as_ref()).all(|row| row.verified));
        let throughput = self.throughput.as_ref().is_none_or(|t| t.verified.iter().all(|&v| v));
        let scaling = self.scaling.as_ref().is_none_or(|s| s.rows.iter().all(|row| row.verified));
        roundtrip && throughput && scaling
    }
}

/// `/proc/loadavg`'s three averages, or "unknown".
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// Runs the selected parts; `progress` gets one line per step.
pub fn run(options: &Options, mut progress: impl FnMut(String)) -> Results {
    let started = Instant::now();
    let started_unix = roundtrip::unix_seconds();
    let load_before = load_average();
    let cores = threads::available_cores();
    if cores < 2 {
        progress(format!("warning: {cores} core(s) available; pinned threads will share them"));
    }

    let mut others = Vec::new();
    let floor = part("floor", options.floor, &mut others, || {
        progress("floor: cache line ping-pong".into());
        let line = floor::cache_line(options.hop_samples, (PRODUCER_CORE, SHARD_CORE));
        progress("floor: rtrb ring ping-pong".into());
        let rings = floor::rings(options.hop_samples, (PRODUCER_CORE, SHARD_CORE));
        Floor { hops: vec![line, rings], clock_read_ns: floor::clock_read_ns() }
    });
    let roundtrip = part("round trip", options.roundtrip, &mut others, || run_roundtrip(options, &mut progress));
    let throughput = part("throughput", options.throughput, &mut others, || run_throughput(options, &mut progress));
    let scaling = part("scaling", options.scaling, &mut others, || scaling::run(options, &mut progress));

    Results {
        options: options.clone(),
        started_unix,
        finished_unix: roundtrip::unix_seconds(),
        wall: started.elapsed(),
        load_before,
        load_after: load_average(),
        others,
        floor,
        roundtrip,
        throughput,
        scaling,
    }
}

/// Runs `work` if `on`, noting how much CPU other processes used meanwhile.
fn part<T>(name: &'static str, on: bool, others: &mut Vec<PartNoise>, work: impl FnOnce() -> T) -> Option<T> {
    if !on {
        return None;
    }
    let (before, start) = (CpuSample::now(), Instant::now());
    let result = work();
    let (after, seconds) = (CpuSample::now(), start.elapsed().as_secs_f64());
    others.push(PartNoise {
        part: name,
        others: after.others_since(&before),
        steal: after.steal_since(&before),
        interrupts_per_second: after.interrupts_since(&before).iter().map(|&n| n as f64 / seconds).collect(),
    });
    Some(result)
}

fn run_roundtrip(options: &Options, progress: &mut impl FnMut(String)) -> RoundTrip {
    let mut rates = options.rates.clone();
    rates.push(options.stage_rate);
    rates.sort_unstable();
    rates.dedup();
    let spec = |rate, wait| RateSpec {
        latency_interval: options.latency_interval,
        ..RateSpec::new(rate, wait, options.duration, options.max_commands)
    };
    let mut longest = rates.iter().map(|&r| spec(r, WaitStrategy::Spin).stream_len()).max().unwrap_or(0);
    if options.extend {
        longest = longest.max(spec(RATE_CEILING, WaitStrategy::Spin).stream_len());
    }
    if let Some(rate) = options.park_rate {
        longest = longest.max(spec(rate, WaitStrategy::Park).stream_len());
    }
    progress(format!("round trip: generating the mix ({longest} commands)"));
    let params = mix::Params { commands: longest, seed: options.seed, ..mix::Params::default() };
    let workload = mix::generate(&params);
    let mix = workload.mix();
    let stream = Stream::single(&workload, 0, 0);
    drop(workload);
    let setup = setup_commands(params.accounts);
    let mut cursor = BareCursor::new(&setup, &stream);
    let log_interval = (options.duration / 10).max(Duration::from_millis(10));

    let mut run_one = |rate: u64, wait: WaitStrategy, progress: &mut dyn FnMut(String)| {
        let mut spec = spec(rate, wait);
        if wait == WaitStrategy::Spin && rate == options.stage_rate && options.hlog.is_some() {
            spec.log_interval = Some(log_interval);
        }
        let before = CpuSample::now();
        let run = roundtrip::run_rate(&setup, &stream, &spec, options.window);
        let others = CpuSample::now().others_since(&before);
        let verified = cursor.agrees(&setup, &stream, &run, params.accounts);
        progress(format!(
            "round trip: {rate}/s {wait:?}: achieved {:.0}/s, p50 {} ns, p99 {} ns (steady {} ns), p99.9 {} ns, \
             others' CPU {:.0}%{}",
            run.achieved,
            run.latency.value_at_quantile(0.5),
            run.latency.value_at_quantile(0.99),
            run.steady_p99,
            run.latency.value_at_quantile(0.999),
            others * 100.0,
            if verified { "" } else { "  MISMATCH with the bare engine" }
        ));
        RateRow { run, verified, others }
    };

    let mut result = RoundTrip { mix, accounts: params.accounts, spin: Vec::new(), park: None, hlog: None };
    for &rate in &rates {
        let row = run_one(rate, WaitStrategy::Spin, progress);
        result.spin.push(row);
    }
    if options.extend {
        // Double while the runtime keeps up; then, for each of the two limits, halve the gap
        // between the highest rate that passes and the next one twice.
        let mut rate = rates.last().copied().unwrap_or(1_000_000);
        while rate < RATE_CEILING && result.spin.last().is_some_and(|row| result.keeps_up(&row.run)) {
            rate *= 2;
            let row = run_one(rate, WaitStrategy::Spin, progress);
            result.spin.push(row);
        }
        for kept_up in [true, false] {
            for _ in 0..2 {
                let limit = if kept_up { result.max_kept_up() } else { result.max_sustainable() };
                let Some(low) = limit else { break };
                let Some(high) = result.spin.iter().map(|row| row.run.spec.rate).filter(|&r| r > low).min() else {
                    break;
                };
                let middle = round_rate((low + high) / 2);
                if middle <= low || middle >= high {
                    break;
                }
                let row = run_one(middle, WaitStrategy::Spin, progress);
                result.spin.push(row);
                result.spin.sort_by_key(|row| row.run.spec.rate);
            }
        }
    }
    if let Some(rate) = options.park_rate {
        result.park = Some(run_one(rate, WaitStrategy::Park, progress));
    }
    for row in result.spin.iter_mut().chain(result.park.as_mut()) {
        // Engines are large (their order stores are preallocated); keep only what is reported.
        row.run.engine = None;
    }
    if let Some(path) = &options.hlog {
        let log = result.spin.iter().find_map(|row| row.run.log.as_ref());
        if let Some(log) = log {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            match std::fs::write(path, log) {
                Ok(()) => result.hlog = Some((path.clone(), log.len())),
                Err(error) => progress(format!("warning: could not write {}: {error}", path.display())),
            }
        }
    }
    result
}

/// `rate` rounded to two significant digits.
fn round_rate(rate: u64) -> u64 {
    let scale = 10u64.pow((rate.max(1).ilog10()).saturating_sub(1));
    (rate + scale / 2) / scale * scale
}

fn run_throughput(options: &Options, progress: &mut impl FnMut(String)) -> Throughput {
    progress(format!("throughput: generating the exchange-core mix ({} commands)", options.commands));
    let params = exchange_core::Params { commands: options.commands, seed: options.seed, ..Default::default() };
    let workload = exchange_core::generate(&params);
    let stream = Stream::single(&workload, 0, 0);
    let setup = setup_commands(workload.accounts);
    let layout = Layout {
        shards: 1,
        wait: WaitStrategy::Spin,
        shard_core: Some(SHARD_CORE),
        producer_cores: vec![Some(PRODUCER_CORE)],
        producers_yield: false,
        latency_interval: options.latency_interval,
    };
    let mut result = Throughput {
        mix: workload.mix(),
        commands: stream.measured.len(),
        window: options.window,
        adapter: Rates::default(),
        adapter_rejected: 0,
        bare: Rates::default(),
        bare_counts: EventCounts::default(),
        runtime: Rates::default(),
        runtime_counts: Vec::new(),
        verified: Vec::new(),
        busy: 0,
        allocations_per_command: 0.0,
        preempted: Some(Preemption::default()),
        waits: Vec::new(),
        engine_ns: Vec::new(),
    };
    let mut allocations = 0u64;
    // Interleaved: run 1 of each path, then run 2, ..., so a noisy stretch does not hit one path.
    for index in 0..options.runs {
        let (rate, rejected) = pipeline::run_adapter(&workload, SHARD_CORE);
        result.adapter.0.push(rate);
        result.adapter_rejected = rejected;
        let (elapsed, bare) = pipeline::run_bare(&setup, &stream, None, SHARD_CORE);
        result.bare.0.push(stream.measured.len() as f64 / elapsed.as_secs_f64());
        result.bare_counts = bare.counts;
        let run: RuntimeRun = pipeline::run_runtime(&layout, &setup, std::slice::from_ref(&stream), options.window);
        let verified = run.counts == bare.counts && same_state(&bare.engine, &run.engines[0], workload.accounts);
        progress(format!(
            "throughput run {}/{}: adapter {:.3} M/s, bare engine {:.3} M/s, runtime {:.3} M/s{}",
            index + 1,
            options.runs,
            rate / 1e6,
            result.bare.0[index] / 1e6,
            run.commands_per_second() / 1e6,
            if verified { "" } else { "  MISMATCH with the bare engine" }
        ));
        result.runtime.0.push(run.commands_per_second());
        result.runtime_counts.push(run.counts);
        result.verified.push(verified);
        result.busy += run.busy;
        result.waits.push(run.waits);
        result.engine_ns.push(run.shard_stages[0].get(Stage::MatchRisk).mean());
        result.preempted = Preemption::sum(result.preempted, run.preempted);
        allocations += run.allocations;
    }
    result.allocations_per_command = allocations as f64 / (result.commands * options.runs.max(1)) as f64;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_round() {
        assert_eq!(parse_rate("50k"), Ok(50_000));
        assert_eq!(parse_rate("1.5M"), Ok(1_500_000));
        assert_eq!(parse_rate("1_000_000"), Ok(1_000_000));
        assert!(parse_rate("fast").is_err() && parse_rate("0").is_err());
        assert_eq!(round_rate(3_000_000), 3_000_000);
        assert_eq!(round_rate(2_540_000), 2_500_000);
        assert_eq!(round_rate(7), 7);
    }
}
