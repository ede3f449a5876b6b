//! Closed-loop pipelined runs: throughput of the threaded runtime, and of the bare engine beside it.
//!
//! A producer keeps up to `window` commands in flight: it submits while fewer are outstanding (a
//! `Busy` answer means "poll, then try again"), and reads every response, counting the events, as
//! a gateway would. That measures what the runtime sustains when it is never starved, which is the
//! comparison with the bare engine: the same translated stream applied by the same engine type in a
//! loop on one thread. The difference is the price of the rings, the clock stamps, the latency
//! histograms, the response traffic and the cross-core hand-offs.
//!
//! The warm-up (portfolios, then the stream's own warm-up) is sent the same way but not timed.
//! Several producers (one per stream) start their measured parts together from a barrier; the time
//! is from that barrier to the last producer's last response. Around the measured part the shards'
//! own histograms are read, so a run also says how long the engine took per command inside the
//! shard (the `match_risk` stage) and so how much of the shard's time went elsewhere.

use super::roundtrip;
use super::stream::{instruments, runtime_config, BareEngine, EventCounts, Stream};
use super::threads::{self, Preemption};
use crate::adapters::simex::SimexFull;
use crate::adapters::Setup;
use crate::alloc_counter;
use crate::runner;
use crate::workload::Workload;
use simex::runtime::{Response, ShardEngine, Stage, StageHistograms, SubmitError, Submitter, WaitStrategy};
use simex_engine::{CommandBody, SymbolId};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// One closed-loop pass over `commands`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Closed {
    pub elapsed: Duration,
    /// `submit` calls answered `Busy`.
    pub busy: u64,
}

/// Sends `commands` with at most `window` outstanding, counting every event that comes back.
/// With `yield_when_idle`, a pass that neither sent nor received anything yields the core (for
/// producers that share a core with a shard).
pub fn closed_loop(
    submitter: &mut Submitter,
    commands: &[CommandBody],
    window: usize,
    counts: &mut EventCounts,
    yield_when_idle: bool,
) -> Closed {
    let start = Instant::now();
    let (mut next, mut done, mut busy) = (0usize, 0usize, 0u64);
    while done < commands.len() {
        let before = (next, done);
        while next < commands.len() && next - done < window {
            match submitter.submit(commands[next]) {
                Ok(_) => next += 1,
                Err(SubmitError::Busy) => {
                    busy += 1;
                    break;
                }
            }
        }
        while let Some(response) = submitter.poll() {
            match response {
                Response::Event { event, .. } => counts.add(&event),
                Response::Done { .. } => done += 1,
            }
        }
        if yield_when_idle && before == (next, done) {
            std::thread::yield_now();
        }
    }
    Closed { elapsed: start.elapsed(), busy }
}

/// Medians of the submitter's own stages in a closed-loop run. With `window` commands in flight, a
/// round trip near `window` times the time per command, with a short egress, means the commands
/// queued in the inbound ring: the shard was the bottleneck. A long egress would mean results
/// queued for the producer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Waits {
    pub round_trip_p50_ns: u64,
    pub egress_p50_ns: u64,
}

/// Where a runtime run's threads go.
#[derive(Clone, Debug)]
pub struct Layout {
    pub shards: usize,
    pub wait: WaitStrategy,
    /// Confine the (single) shard to this core; `None` leaves shard `k` on core `k`.
    pub shard_core: Option<usize>,
    /// One entry per producer: the core it is pinned to, or `None` to let the scheduler place it.
    pub producer_cores: Vec<Option<usize>>,
    /// Producers yield their core when a pass over their rings found nothing to do.
    pub producers_yield: bool,
    /// How often shards hand their histograms over.
    pub latency_interval: Duration,
}

/// The result of one runtime run.
pub struct RuntimeRun {
    pub elapsed: Duration,
    /// Measured commands (all producers).
    pub commands: usize,
    /// Everything the run produced, setup and warm-up included.
    pub counts: EventCounts,
    pub busy: u64,
    /// Allocation calls in the whole process while the measured commands ran.
    pub allocations: u64,
    /// The wait strategy the runtime actually used.
    pub wait: WaitStrategy,
    /// Preemptions of the shard and producer threads during the measured commands, summed.
    pub preempted: Option<Preemption>,
    /// Where the first producer's commands waited.
    pub waits: Waits,
    /// Each shard's own histograms (ring, match-risk) over the measured commands.
    pub shard_stages: Vec<StageHistograms>,
    pub engines: Vec<ShardEngine>,
}

impl RuntimeRun {
    pub fn commands_per_second(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64()
    }
}

/// Starts a runtime laid out as `layout`, creates the portfolios, then runs `streams[p]` from
/// producer `p`, closed-loop with `window` commands in flight each.
pub fn run_runtime(layout: &Layout, setup: &[CommandBody], streams: &[Stream], window: usize) -> RuntimeRun {
    let producers = layout.producer_cores.len();
    assert_eq!(producers, streams.len(), "one stream per producer");
    let config = runtime_config(layout.shards, producers, layout.wait, layout.latency_interval);
    let started = threads::start(config, instruments(), layout.shard_core);
    let mut runtime = started.runtime;
    let wait = runtime.wait_strategy();
    let mut submitters = started.submitters;
    let mut counts = EventCounts::default();
    closed_loop(&mut submitters[0], setup, window, &mut counts, layout.producers_yield);

    // Producers warm up, meet at `ready`, wait while the shards' histograms are read, and start
    // the measured commands together from `go`.
    let (ready, go) = (Arc::new(Barrier::new(producers + 1)), Arc::new(Barrier::new(producers + 1)));
    let handles: Vec<_> = submitters
        .into_iter()
        .zip(streams.iter().cloned())
        .zip(layout.producer_cores.clone())
        .enumerate()
        .map(|(index, ((mut submitter, stream), core))| {
            let (ready, go) = (ready.clone(), go.clone());
            let idle_yield = layout.producers_yield;
            std::thread::Builder::new()
                .name(format!("simex-bench-producer-{index}"))
                .spawn(move || {
                    if let Some(core) = core {
                        threads::pin(core);
                    }
                    let mut counts = EventCounts::default();
                    closed_loop(&mut submitter, &stream.warmup, window, &mut counts, idle_yield);
                    drop(submitter.take_latency());
                    ready.wait();
                    go.wait();
                    let before = Preemption::current_thread();
                    let closed = closed_loop(&mut submitter, &stream.measured, window, &mut counts, idle_yield);
                    let end = Instant::now();
                    let preempted = Preemption::between(before, Preemption::current_thread());
                    let latency = submitter.latency();
                    let waits = Waits {
                        round_trip_p50_ns: latency.get(Stage::RoundTrip).value_at_quantile(0.5),
                        egress_p50_ns: latency.get(Stage::Egress).value_at_quantile(0.5),
                    };
                    (submitter, counts, closed, end, preempted, waits)
                })
                .expect("spawning a producer")
        })
        .collect();
    let shard_threads: Vec<String> = (0..layout.shards).map(|shard| format!("simex-shard-{shard}")).collect();
    ready.wait();
    let mut sent = setup.len() + streams.iter().map(|s| s.warmup.len()).sum::<usize>();
    let baseline = roundtrip::settled_latency(&mut runtime, None, sent, layout.latency_interval);
    go.wait();
    let start = Instant::now();
    let shards_before: Vec<_> = shard_threads.iter().map(|name| Preemption::thread_named(name)).collect();
    let allocations_start = alloc_counter::allocations();
    let mut results: Vec<_> = handles.into_iter().map(|h| h.join().expect("a producer")).collect();
    let allocations = alloc_counter::allocations() - allocations_start;
    let end = results.iter().map(|r| r.3).max().expect("at least one producer");
    let mut preempted = Some(Preemption::default());
    for (name, before) in shard_threads.iter().zip(shards_before) {
        preempted = Preemption::sum(preempted, Preemption::between(before, Preemption::thread_named(name)));
    }
    let mut busy = 0;
    let waits = results.first().map(|r| r.5).unwrap_or_default();
    for (_, producer_counts, closed, _, producer_preempted, _) in &results {
        counts.merge(producer_counts);
        busy += closed.busy;
        preempted = Preemption::sum(preempted, *producer_preempted);
    }
    results.clear();
    sent += streams.iter().map(|s| s.measured.len()).sum::<usize>();
    let totals = roundtrip::settled_latency(&mut runtime, None, sent, layout.latency_interval);
    let shard_stages = totals.iter().zip(&baseline).map(|(t, b)| roundtrip::difference(t, b)).collect();
    RuntimeRun {
        elapsed: end.saturating_duration_since(start),
        commands: streams.iter().map(|s| s.measured.len()).sum(),
        counts,
        busy,
        allocations,
        wait,
        preempted,
        waits,
        shard_stages,
        engines: runtime.shutdown(),
    }
}

/// The bare engine on `stream` (after `setup` and the warm-up), timed over the measured part, on a
/// thread pinned to `core`.
pub fn run_bare(
    setup: &[CommandBody],
    stream: &Stream,
    symbols: Option<Vec<SymbolId>>,
    core: usize,
) -> (Duration, BareEngine) {
    let (setup, stream) = (setup.to_vec(), stream.clone());
    std::thread::spawn(move || {
        threads::pin(core);
        let mut bare = BareEngine::new(0, symbols);
        for &command in setup.iter().chain(&stream.warmup) {
            bare.apply(command);
        }
        let start = Instant::now();
        for &command in &stream.measured {
            bare.apply(std::hint::black_box(command));
        }
        (start.elapsed(), bare)
    })
    .join()
    .expect("the bare-engine thread")
}

/// The engine benchmark's simex adapter on `workload` (`runner::throughput`), on a thread pinned to
/// `core`: commands per second and commands rejected.
pub fn run_adapter(workload: &Workload, core: usize) -> (f64, usize) {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                threads::pin(core);
                let run = runner::throughput::<SimexFull>(workload, &Setup::default());
                (run.commands_per_second(), run.rejected)
            })
            .join()
            .expect("the adapter thread")
    })
}
