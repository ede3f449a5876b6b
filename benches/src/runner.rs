//! The three passes run over a workload, each on a fresh engine.
//!
//! - [`throughput`]: the measured commands back to back, one clock read at each end, so the clock
//!   costs nothing per command. Allocation calls are counted over the whole measured part and over
//!   its second half, where growth of the engine's tables has (for a well-behaved engine) stopped.
//! - [`latency`]: every command timed on its own with `Instant` and recorded in an HDR histogram.
//!   Each sample includes one clock read (see [`timer_overhead`]), which is why throughput is taken
//!   from the other pass.
//! - [`verify`]: untimed; records every command's fills and rejections for [`crate::compare`], then
//!   asks the engine to check its invariants.
//!
//! The warm-up runs first in every pass and is never timed.

use crate::adapters::{Adapter, Setup};
use crate::alloc_counter;
use crate::fills::{NoFills, RunLog};
use crate::workload::Workload;
use hdrhistogram::Histogram;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// One throughput pass.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub elapsed: Duration,
    pub commands: usize,
    /// Allocation calls during the measured commands.
    pub allocations: u64,
    /// Allocation calls during the second half of the measured commands.
    pub allocations_second_half: u64,
    pub rejected: usize,
}

impl Throughput {
    pub fn commands_per_second(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64()
    }
}

fn warmed_up<A: Adapter>(workload: &Workload, setup: &Setup, collect_fills: bool) -> A {
    let setup = Setup { collect_fills, ..*setup };
    let mut adapter = A::new(workload, &setup);
    for op in &workload.warmup {
        adapter.apply(op, &mut NoFills);
    }
    adapter
}

pub fn throughput<A: Adapter>(workload: &Workload, setup: &Setup) -> Throughput {
    let mut adapter: A = warmed_up(workload, setup, false);
    let (first, second) = workload.measured.split_at(workload.measured.len() / 2);
    let mut rejected = 0usize;
    let allocations_start = alloc_counter::allocations();
    let start = Instant::now();
    for op in first {
        rejected += usize::from(adapter.apply(black_box(op), &mut NoFills));
    }
    let allocations_half = alloc_counter::allocations();
    for op in second {
        rejected += usize::from(adapter.apply(black_box(op), &mut NoFills));
    }
    let elapsed = start.elapsed();
    let allocations_end = alloc_counter::allocations();
    drop(black_box(adapter));
    Throughput {
        elapsed,
        commands: workload.measured.len(),
        allocations: allocations_end - allocations_start,
        allocations_second_half: allocations_end - allocations_half,
        rejected,
    }
}

/// Nanoseconds, 1 ns to 100 s, three significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

pub fn latency<A: Adapter>(workload: &Workload, setup: &Setup) -> Histogram<u64> {
    let mut adapter: A = warmed_up(workload, setup, false);
    let mut histogram = new_histogram();
    for op in &workload.measured {
        let start = Instant::now();
        black_box(adapter.apply(black_box(op), &mut NoFills));
        let nanos = start.elapsed().as_nanos() as u64;
        histogram.saturating_record(nanos.max(1));
    }
    drop(black_box(adapter));
    histogram
}

/// Every command's fills and rejection, warm-up included.
pub fn verify<A: Adapter>(workload: &Workload, setup: &Setup) -> RunLog {
    let setup = Setup { collect_fills: true, ..*setup };
    let mut adapter = A::new(workload, &setup);
    let mut log = RunLog::default();
    for (ops, part) in [(&workload.warmup, &mut log.warmup), (&workload.measured, &mut log.measured)] {
        for op in ops {
            let rejected = adapter.apply(op, part);
            part.end_command(rejected);
        }
    }
    adapter.check_invariants();
    log
}

/// What one latency sample costs with nothing in it: the median of timing an empty block.
pub fn timer_overhead() -> u64 {
    let mut histogram = new_histogram();
    for _ in 0..200_000 {
        let start = Instant::now();
        let nanos = black_box(start).elapsed().as_nanos() as u64;
        histogram.saturating_record(nanos.max(1));
    }
    histogram.value_at_quantile(0.5)
}
