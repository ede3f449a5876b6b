//! In-process round trip, open loop: one producer submits at a fixed offered rate and reads the
//! results back on the same thread; latency is measured from the *planned* send time.
//!
//! **Why open loop.** A closed-loop client (send, wait, send) slows down exactly when the system
//! does, so it never sends the commands that would have met a stall, and its percentiles hide the
//! stall ("coordinated omission"). Here command `k` is due at `start + k / rate` whatever happened
//! before; if the producer falls behind (a stall, a full ring), it sends the overdue commands as
//! fast as it can and each one's latency still counts from when it was due. So a stall of 1 ms at
//! 100k commands/s shows up as 100 commands with latencies from 1 ms down, as it would for clients.
//!
//! **One thread sends and receives.** The producer loops: read the clock, send every command that
//! is due (at most [`SEND_BURST`] at a time), then poll responses (at most [`POLL_BURST`]), and again.
//! Its own time (submit, poll, the histograms) is therefore part of every figure, as it is for a
//! gateway thread. The producer is pinned to core 0 and the shard to core 1.
//!
//! **Phases of one rate** (each on a fresh runtime, so every rate starts from the same state):
//! portfolios and the book-building warm-up (closed loop, untimed); a rate warm-up of a tenth of
//! the measured commands at the offered rate (unrecorded); a pause, during which the shard hands
//! its histograms over; the measured commands; a pause again. The runtime's own per-stage
//! histograms are read before and after the measured part and the difference kept, so the stage
//! table covers exactly the measured commands.
//!
//! **Checked.** Every run's events are counted and compared with the bare engine replaying the same
//! commands, and the shard's final state with the bare engine's (see `stream`).

use super::stream::{instruments, runtime_config, same_state, BareEngine, EventCounts, Stream};
use super::threads::{self, Preemption};
use hdrhistogram::Histogram;
use simex::runtime::{
    new_histogram, write_interval_log, Clock, Interval, Response, Runtime, ShardEngine, Stage, StageHistograms,
    SubmitError, Submitter, WaitStrategy,
};
use simex_engine::CommandBody;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most commands sent in one go before the producer polls for responses.
pub const SEND_BURST: usize = 32;
/// Most responses read in one go before the producer checks what is due.
pub const POLL_BURST: usize = 256;
/// The schedule is cut into this many equal parts for the steady p99.
const STEADY_PARTS: usize = 10;
/// The producer's core and the shard's.
pub const PRODUCER_CORE: usize = 0;
pub const SHARD_CORE: usize = 1;
/// The runtime's name for shard 0's thread.
const SHARD_THREAD: &str = "simex-shard-0";

/// One offered rate, as run.
#[derive(Clone, Debug)]
pub struct RateSpec {
    /// Commands per second.
    pub rate: u64,
    pub wait: WaitStrategy,
    /// Commands sent at the rate before recording starts.
    pub warmup: usize,
    /// Commands recorded.
    pub commands: usize,
    /// Keep every command's stamps and build an interval log with intervals of this length.
    pub log_interval: Option<Duration>,
    /// How often the shard hands its histograms over.
    pub latency_interval: Duration,
}

impl RateSpec {
    /// The spec for `rate`: `duration` worth of commands, at most `max_commands`, after a warm-up
    /// of a tenth of that (at least 1,000 commands).
    pub fn new(rate: u64, wait: WaitStrategy, duration: Duration, max_commands: usize) -> RateSpec {
        let commands = ((rate as f64 * duration.as_secs_f64()) as usize).clamp(1, max_commands);
        RateSpec {
            rate,
            wait,
            warmup: (commands / 10).max(1_000),
            commands,
            log_interval: None,
            latency_interval: Duration::from_millis(100),
        }
    }

    /// Measured commands of the stream this run uses (warm-up included).
    pub fn stream_len(&self) -> usize {
        self.warmup + self.commands
    }
}

/// What one rate measured.
pub struct RateRun {
    pub spec: RateSpec,
    /// The wait strategy the runtime actually used.
    pub wait: WaitStrategy,
    /// Measured commands per second of elapsed time, from the first planned send to the last
    /// response.
    pub achieved: f64,
    /// Planned send time to receipt of `Done`: the coordinated-omission-corrected latency.
    pub latency: Histogram<u64>,
    /// The median of the corrected p99s of the ten tenths of the run: the p99 of a typical stretch,
    /// which one stall of a pinned thread (a few milliseconds) does not move.
    pub steady_p99: u64,
    /// Actual send (the runtime's ingress stamp) to receipt: the uncorrected round trip.
    pub service: Histogram<u64>,
    pub busy: u64,
    /// The runtime's own histograms over the measured commands: the shard's ring and match-risk
    /// stages, the submitter's egress and round trip.
    pub stages: StageHistograms,
    /// Everything the run produced, setup and warm-ups included.
    pub counts: EventCounts,
    /// Preemptions of the producer and of the shard thread during the measured commands.
    pub producer_preempted: Option<Preemption>,
    pub shard_preempted: Option<Preemption>,
    /// The interval log, when asked for.
    pub log: Option<Vec<u8>>,
    /// The shard's engine after the run (dropped once checked: it is large).
    pub engine: Option<ShardEngine>,
}

struct Measure {
    latency: Histogram<u64>,
    /// The corrected latency again, per tenth of the schedule.
    parts: Vec<Histogram<u64>>,
    service: Histogram<u64>,
    /// (planned, ingress, dequeue, decided, received) per command, for the interval log.
    rows: Option<Vec<[i64; 5]>>,
}

struct OpenLoop {
    start_ns: i64,
    last_ns: i64,
    busy: u64,
}

/// Sends `commands` at `rate` per second from the planned schedule, reading responses in between.
fn open_loop(
    submitter: &mut Submitter,
    clock: Clock,
    commands: &[CommandBody],
    rate: u64,
    counts: &mut EventCounts,
    mut measure: Option<&mut Measure>,
) -> OpenLoop {
    let period_ns = 1e9 / rate as f64;
    let start_ns = clock.now_ns() + 1_000;
    let planned = |k: usize| start_ns + (k as f64 * period_ns) as i64;
    let n = commands.len();
    let (mut next, mut done, mut busy, mut first_ticket, mut last_ns) = (0usize, 0usize, 0u64, 0u64, start_ns);
    while done < n {
        let now = clock.now_ns();
        let mut burst = 0;
        while next < n && burst < SEND_BURST && planned(next) <= now {
            match submitter.submit(commands[next]) {
                Ok(ticket) => {
                    if next == 0 {
                        first_ticket = ticket;
                    }
                    next += 1;
                    burst += 1;
                }
                Err(SubmitError::Busy) => {
                    busy += 1;
                    break;
                }
            }
        }
        for _ in 0..POLL_BURST {
            let Some(response) = submitter.poll() else { break };
            match response {
                Response::Event { event, .. } => counts.add(&event),
                Response::Done { ticket, stamps, .. } => {
                    let received = clock.now_ns();
                    if let Some(measure) = measure.as_deref_mut() {
                        let planned_ns = planned((ticket - first_ticket) as usize);
                        let k = (ticket - first_ticket) as usize;
                        measure.latency.saturating_record((received - planned_ns).max(1) as u64);
                        measure.parts[k * STEADY_PARTS / n].saturating_record((received - planned_ns).max(1) as u64);
                        measure.service.saturating_record((received - stamps.ingress_ns).max(1) as u64);
                        if let Some(rows) = measure.rows.as_mut() {
                            rows.push([planned_ns, stamps.ingress_ns, stamps.dequeue_ns, stamps.decided_ns, received]);
                        }
                    }
                    done += 1;
                    last_ns = received;
                }
            }
        }
    }
    OpenLoop { start_ns, last_ns, busy }
}

/// Waits until the shards have handed over the histograms of all `commands` sent so far (they do
/// every `interval` at most, once idle), reading any responses meanwhile; returns every shard's
/// totals. Gives up after fifty intervals, keeping what it has.
pub(super) fn settled_latency(
    runtime: &mut Runtime,
    mut submitter: Option<(&mut Submitter, &mut EventCounts)>,
    commands: usize,
    interval: Duration,
) -> Vec<StageHistograms> {
    let give_up = Instant::now() + interval * 50;
    loop {
        if let Some((submitter, counts)) = submitter.as_mut() {
            while let Some(response) = submitter.poll() {
                if let Response::Event { event, .. } = response {
                    counts.add(&event);
                }
            }
        }
        let totals = runtime.collect_latency();
        let recorded: u64 = totals.iter().map(|t| t.get(Stage::MatchRisk).len()).sum();
        if recorded >= commands as u64 || Instant::now() >= give_up {
            return totals.to_vec();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `total - baseline`, stage by stage. `StageHistograms` can add but not subtract, so the
/// difference is rebuilt by recording each remaining bucket's value as often as it was counted.
pub(super) fn difference(total: &StageHistograms, baseline: &StageHistograms) -> StageHistograms {
    let mut out = StageHistograms::default();
    for stage in Stage::ALL {
        let mut remaining = total.get(stage).clone();
        remaining.subtract(baseline.get(stage)).expect("the baseline is part of the total");
        for value in remaining.iter_recorded() {
            for _ in 0..value.count_at_value() {
                out.record(stage, 0, value.value_iterated_to() as i64);
            }
        }
    }
    out
}

/// Runs one rate on a fresh runtime: `setup`, then `stream.warmup`, then `stream.measured`'s first
/// `spec.warmup` commands unrecorded and the next `spec.commands` recorded.
pub fn run_rate(setup: &[CommandBody], stream: &Stream, spec: &RateSpec, window: usize) -> RateRun {
    assert!(stream.measured.len() >= spec.stream_len(), "the stream is long enough for every rate");
    let (setup, warmup) = (setup.to_vec(), stream.warmup.clone());
    let rate_warmup = stream.measured[..spec.warmup].to_vec();
    let measured = stream.measured[spec.warmup..spec.stream_len()].to_vec();
    let spec = spec.clone();
    std::thread::Builder::new()
        .name("simex-bench-open-loop".into())
        .spawn(move || {
            let config = runtime_config(1, 1, spec.wait, spec.latency_interval);
            let started = threads::start(config, instruments(), Some(SHARD_CORE));
            threads::pin(PRODUCER_CORE);
            let mut runtime = started.runtime;
            let wait = runtime.wait_strategy();
            let clock = runtime.clock();
            let mut submitter = started.submitters.into_iter().next().expect("one submitter");
            let mut counts = EventCounts::default();
            super::pipeline::closed_loop(&mut submitter, &setup, window, &mut counts, false);
            super::pipeline::closed_loop(&mut submitter, &warmup, window, &mut counts, false);
            open_loop(&mut submitter, clock, &rate_warmup, spec.rate, &mut counts, None);
            let sent = setup.len() + warmup.len() + rate_warmup.len();
            let interval = spec.latency_interval;
            let baseline = settled_latency(&mut runtime, Some((&mut submitter, &mut counts)), sent, interval).remove(0);
            drop(submitter.take_latency());
            let mut measure = Measure {
                latency: new_histogram(),
                parts: (0..STEADY_PARTS).map(|_| new_histogram()).collect(),
                service: new_histogram(),
                rows: spec.log_interval.map(|_| Vec::with_capacity(measured.len())),
            };
            let (producer_before, shard_before) =
                (Preemption::current_thread(), Preemption::thread_named(SHARD_THREAD));
            let run = open_loop(&mut submitter, clock, &measured, spec.rate, &mut counts, Some(&mut measure));
            let producer_preempted = Preemption::between(producer_before, Preemption::current_thread());
            let shard_preempted = Preemption::between(shard_before, Preemption::thread_named(SHARD_THREAD));
            let sent = sent + measured.len();
            let total = settled_latency(&mut runtime, Some((&mut submitter, &mut counts)), sent, interval).remove(0);
            let mut stages = difference(&total, &baseline);
            stages.add(submitter.latency());
            drop(submitter);
            let engine = runtime.shutdown().pop().expect("one shard");
            let log = match (spec.log_interval, &measure.rows) {
                (Some(interval), Some(rows)) => Some(interval_log(rows, run.start_ns, interval)),
                _ => None,
            };
            let elapsed_s = (run.last_ns - run.start_ns) as f64 / 1e9;
            let mut part_p99s: Vec<u64> =
                measure.parts.iter().filter(|h| !h.is_empty()).map(|h| h.value_at_quantile(0.99)).collect();
            part_p99s.sort_unstable();
            RateRun {
                achieved: spec.commands as f64 / elapsed_s,
                steady_p99: part_p99s.get(part_p99s.len() / 2).copied().unwrap_or(0),
                latency: measure.latency,
                service: measure.service,
                busy: run.busy,
                stages,
                counts,
                producer_preempted,
                shard_preempted,
                log,
                engine: Some(engine),
                wait,
                spec,
            }
        })
        .expect("spawning the producer")
        .join()
        .expect("the producer")
}

/// An HdrHistogram interval log of one run, rebuilt from every command's stamps with the runtime's
/// own stage definitions: tag `shard0` (ring, match_risk), tag `submitter0` (egress, round_trip)
/// and tag `open_loop`, whose `round_trip` runs from the planned send time (the corrected latency).
/// Samples fall in the interval in which their response was read.
fn interval_log(rows: &[[i64; 5]], start_ns: i64, interval: Duration) -> Vec<u8> {
    let interval_ns = interval.as_nanos().max(1) as i64;
    let last = rows.iter().map(|r| r[4]).max().unwrap_or(start_ns);
    let count = ((last - start_ns) / interval_ns + 1) as usize;
    let mut shard = vec![StageHistograms::default(); count];
    let mut submitter = vec![StageHistograms::default(); count];
    let mut corrected = vec![StageHistograms::default(); count];
    for &[planned, ingress, dequeue, decided, received] in rows {
        let index = ((received - start_ns).max(0) / interval_ns) as usize;
        shard[index].record(Stage::Ring, ingress, dequeue);
        shard[index].record(Stage::MatchRisk, dequeue, decided);
        submitter[index].record(Stage::Egress, decided, received);
        submitter[index].record(Stage::RoundTrip, ingress, received);
        corrected[index].record(Stage::RoundTrip, planned, received);
    }
    let mut intervals = Vec::with_capacity(count * 3);
    for index in 0..count {
        let start_offset = interval * index as u32;
        for (tag, histograms) in
            [("shard0", &shard[index]), ("submitter0", &submitter[index]), ("open_loop", &corrected[index])]
        {
            intervals.push(Interval { tag, start_offset, length: interval, histograms });
        }
    }
    let start_time = UNIX_EPOCH + Duration::from_nanos(start_ns.max(0) as u64);
    let mut log = Vec::new();
    write_interval_log(&mut log, start_time, &intervals).expect("writing to memory");
    log
}

/// The bare engine following the runs: it replays setup, warm-up and a prefix of the measured
/// stream, and is rebuilt when a run needs a shorter prefix than the last.
pub struct BareCursor {
    bare: BareEngine,
    applied: usize,
}

impl BareCursor {
    pub fn new(setup: &[CommandBody], stream: &Stream) -> BareCursor {
        let mut bare = BareEngine::new(0, None);
        for &command in setup.iter().chain(&stream.warmup) {
            bare.apply(command);
        }
        BareCursor { bare, applied: 0 }
    }

    /// Whether `run` produced what the bare engine produces on the same commands, and ended in the
    /// same state.
    pub fn agrees(&mut self, setup: &[CommandBody], stream: &Stream, run: &RateRun, accounts: u32) -> bool {
        let prefix = run.spec.stream_len();
        if prefix < self.applied {
            *self = BareCursor::new(setup, stream);
        }
        for &command in &stream.measured[self.applied..prefix] {
            self.bare.apply(command);
        }
        self.applied = prefix;
        self.bare.counts == run.counts
            && run.engine.as_ref().is_some_and(|engine| same_state(&self.bare.engine, engine, accounts))
    }
}

/// Seconds since the Unix epoch, for the report's date.
pub fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
