//! The benchmark matrix: every selected workload on every selected engine.
//!
//! For each workload, in this order: generate it; replay it through the model book (reference
//! fills and book sizes); record every engine's fills and compare them with simex's; then the
//! throughput runs, interleaved across engines (run 1 of every engine, then run 2, ...) so that a
//! noisy stretch of the machine does not land on one engine only; then one latency pass each.
//! Workloads are generated one at a time and dropped when done, to keep memory flat.

use crate::adapters::book_only::BookOnly;
use crate::adapters::matchcore::Matchcore;
use crate::adapters::orderbook_rs::OrderbookRs;
use crate::adapters::simex::SimexFull;
use crate::adapters::{EngineKind, Setup};
use crate::compare::{compare, Divergence};
use crate::fills::RunLog;
use crate::runner::{self, Throughput};
use crate::workload::flash1::{self, Scenario};
use crate::workload::model::{self, BookStats};
use crate::workload::{exchange_core, Mix, Workload};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    ExchangeCore,
    Flash1(Scenario),
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 6] = [
        WorkloadKind::ExchangeCore,
        WorkloadKind::Flash1(Scenario::Static),
        WorkloadKind::Flash1(Scenario::Normal),
        WorkloadKind::Flash1(Scenario::Swing25),
        WorkloadKind::Flash1(Scenario::Swing40),
        WorkloadKind::Flash1(Scenario::FlashCrash),
    ];

    /// Short name for the command line.
    pub fn key(self) -> &'static str {
        match self {
            WorkloadKind::ExchangeCore => "exchange-core",
            WorkloadKind::Flash1(scenario) => scenario.name(),
        }
    }

    pub fn from_key(key: &str) -> Option<WorkloadKind> {
        WorkloadKind::ALL.into_iter().find(|w| w.key() == key)
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    /// New orders per flash1 scenario.
    pub orders: usize,
    /// Measured commands of the exchange-core mix.
    pub commands: usize,
    pub seed: u32,
    /// Throughput runs per engine and workload.
    pub runs: usize,
    /// Throughput runs for orderbook-rs, which is one to two orders of magnitude slower.
    pub orderbook_rs_runs: usize,
    pub engines: Vec<EngineKind>,
    pub workloads: Vec<WorkloadKind>,
    /// Record and compare fills.
    pub verify: bool,
    /// Run the per-command latency pass.
    pub latency: bool,
    /// `EngineConfig::orders_max` for simex's full path.
    pub simex_orders_max: u32,
}

impl Options {
    pub fn full() -> Options {
        Options {
            orders: flash1::DEFAULT_ORDERS,
            commands: exchange_core::Params::default().commands,
            seed: flash1::DEFAULT_SEED,
            runs: 9,
            orderbook_rs_runs: 5,
            engines: EngineKind::ALL.to_vec(),
            workloads: WorkloadKind::ALL.to_vec(),
            verify: true,
            latency: true,
            simex_orders_max: Setup::default().simex_orders_max,
        }
    }

    /// A smoke test of everything: small streams, one run.
    pub fn quick() -> Options {
        Options { orders: 20_000, commands: 60_000, runs: 1, orderbook_rs_runs: 1, ..Options::full() }
    }

    fn runs_for(&self, engine: EngineKind) -> usize {
        match engine {
            EngineKind::OrderbookRs => self.orderbook_rs_runs,
            _ => self.runs,
        }
    }
}

pub struct EngineResult {
    pub engine: EngineKind,
    pub runs: Vec<Throughput>,
    pub latency: Option<Histogram<u64>>,
    /// Against simex's full path; `None` for simex itself or without verification.
    pub divergence: Option<Divergence>,
    pub fills: Option<usize>,
    pub rejects: Option<usize>,
}

impl EngineResult {
    /// Median commands per second over the runs (the mean of the middle two for an even count).
    pub fn median_throughput(&self) -> Option<f64> {
        let mut rates: Vec<f64> = self.runs.iter().map(Throughput::commands_per_second).collect();
        if rates.is_empty() {
            return None;
        }
        rates.sort_by(f64::total_cmp);
        let middle = rates.len() / 2;
        Some(if rates.len() % 2 == 1 { rates[middle] } else { (rates[middle - 1] + rates[middle]) / 2.0 })
    }
}

pub struct WorkloadResult {
    pub kind: WorkloadKind,
    pub name: String,
    pub warmup_commands: usize,
    pub measured_commands: usize,
    pub mix: Mix,
    pub generated_in: Duration,
    pub model_book: BookStats,
    pub model_fills: usize,
    pub model_commands_with_fills: usize,
    pub model_rejects: usize,
    /// simex's full path against the model book.
    pub simex_vs_model: Option<Divergence>,
    pub engines: Vec<EngineResult>,
}

impl WorkloadResult {
    pub fn engine(&self, engine: EngineKind) -> Option<&EngineResult> {
        self.engines.iter().find(|e| e.engine == engine)
    }

    pub fn throughput(&self, engine: EngineKind) -> Option<f64> {
        self.engine(engine)?.median_throughput()
    }
}

pub struct SuiteResult {
    pub options: Options,
    pub workloads: Vec<WorkloadResult>,
    pub timer_overhead_ns: u64,
    pub allocations_counted: bool,
    pub elapsed: Duration,
}

fn generate(kind: WorkloadKind, options: &Options) -> Workload {
    match kind {
        WorkloadKind::ExchangeCore => exchange_core::generate(&exchange_core::Params {
            commands: options.commands,
            seed: u64::from(options.seed),
            ..exchange_core::Params::default()
        }),
        WorkloadKind::Flash1(scenario) => flash1::generate(scenario, options.orders, options.seed),
    }
}

fn verify(engine: EngineKind, workload: &Workload, setup: &Setup) -> RunLog {
    match engine {
        EngineKind::SimexFull => runner::verify::<SimexFull>(workload, setup),
        EngineKind::SimexBook => runner::verify::<BookOnly>(workload, setup),
        EngineKind::Matchcore => runner::verify::<Matchcore>(workload, setup),
        EngineKind::OrderbookRs => runner::verify::<OrderbookRs>(workload, setup),
    }
}

fn throughput(engine: EngineKind, workload: &Workload, setup: &Setup) -> Throughput {
    match engine {
        EngineKind::SimexFull => runner::throughput::<SimexFull>(workload, setup),
        EngineKind::SimexBook => runner::throughput::<BookOnly>(workload, setup),
        EngineKind::Matchcore => runner::throughput::<Matchcore>(workload, setup),
        EngineKind::OrderbookRs => runner::throughput::<OrderbookRs>(workload, setup),
    }
}

fn latency(engine: EngineKind, workload: &Workload, setup: &Setup) -> Histogram<u64> {
    match engine {
        EngineKind::SimexFull => runner::latency::<SimexFull>(workload, setup),
        EngineKind::SimexBook => runner::latency::<BookOnly>(workload, setup),
        EngineKind::Matchcore => runner::latency::<Matchcore>(workload, setup),
        EngineKind::OrderbookRs => runner::latency::<OrderbookRs>(workload, setup),
    }
}

/// Runs the matrix; `progress` is told what is happening (for stderr).
pub fn run(options: &Options, mut progress: impl FnMut(&str)) -> SuiteResult {
    let started = Instant::now();
    let timer_overhead_ns = runner::timer_overhead();
    let setup = Setup { collect_fills: false, simex_orders_max: options.simex_orders_max };
    let mut workloads = Vec::new();
    for &kind in &options.workloads {
        let generation = Instant::now();
        let workload = generate(kind, options);
        let generated_in = generation.elapsed();
        progress(&format!(
            "{}: {} warm-up + {} measured commands, generated in {:.1} s",
            workload.name,
            workload.warmup.len(),
            workload.measured.len(),
            generated_in.as_secs_f64()
        ));
        let model = model::replay(&workload);
        let mut result = WorkloadResult {
            kind,
            name: workload.name.clone(),
            warmup_commands: workload.warmup.len(),
            measured_commands: workload.measured.len(),
            mix: workload.mix(),
            generated_in,
            model_book: model.book,
            model_fills: model.fills.measured.trade_count(),
            model_commands_with_fills: model.fills.measured.commands_with_fills(),
            model_rejects: model.fills.measured.reject_count(),
            simex_vs_model: None,
            engines: options
                .engines
                .iter()
                .map(|&engine| EngineResult {
                    engine,
                    runs: Vec::new(),
                    latency: None,
                    divergence: None,
                    fills: None,
                    rejects: None,
                })
                .collect(),
        };

        if options.verify {
            let reference = verify(EngineKind::SimexFull, &workload, &setup);
            result.simex_vs_model = Some(compare(&workload, &model.fills, &reference));
            for engine in &mut result.engines {
                let log = if engine.engine == EngineKind::SimexFull {
                    None
                } else {
                    progress(&format!("  verifying {}", engine.engine.name()));
                    Some(verify(engine.engine, &workload, &setup))
                };
                let log_ref = log.as_ref().unwrap_or(&reference);
                engine.fills = Some(log_ref.measured.trade_count());
                engine.rejects = Some(log_ref.measured.reject_count());
                if let Some(log) = &log {
                    engine.divergence = Some(compare(&workload, &reference, log));
                }
            }
        }
        drop(model);

        let rounds = options.engines.iter().map(|&e| options.runs_for(e)).max().unwrap_or(0);
        for round in 0..rounds {
            for engine in &mut result.engines {
                if round < options.runs_for(engine.engine) {
                    let run = throughput(engine.engine, &workload, &setup);
                    progress(&format!(
                        "  run {}: {:<22} {:>7.3} M commands/s",
                        round + 1,
                        engine.engine.name(),
                        run.commands_per_second() / 1e6
                    ));
                    engine.runs.push(run);
                }
            }
        }
        if options.latency {
            for engine in &mut result.engines {
                progress(&format!("  latency pass: {}", engine.engine.name()));
                engine.latency = Some(latency(engine.engine, &workload, &setup));
            }
        }
        workloads.push(result);
    }
    SuiteResult {
        options: options.clone(),
        workloads,
        timer_overhead_ns,
        allocations_counted: crate::alloc_counter::is_installed(),
        elapsed: started.elapsed(),
    }
}
