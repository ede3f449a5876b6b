//! The runtime benchmark's results as markdown: when and where it ran, one table per part, and the
//! goals with their verdicts computed from the same numbers.

use super::floor::Hop;
use super::threads::Preemption;
use super::{Options, Results, RoundTrip, Scaling, Throughput, ACHIEVED_SHARE_MIN, LATENCY_GROWTH_MAX};
use crate::workload::Mix;
use std::fmt::Write as _;

/// The goals the report is measured against (not asserted).
pub const RUNTIME_SHARE_GOAL: f64 = 0.80;
pub const HOP_MULTIPLE_GOAL: u64 = 10;

pub fn markdown(results: &Results) -> String {
    let mut out = String::new();
    let o = &results.options;
    let _ = writeln!(out, "# simex runtime benchmark\n");
    let _ = writeln!(
        out,
        "- When: {} to {} UTC ({:.0} s)",
        utc(results.started_unix),
        utc(results.finished_unix),
        results.wall.as_secs_f64()
    );
    let _ = writeln!(out, "- Machine: {}", machine());
    let _ =
        writeln!(out, "- Load average (1, 5, 15 min): {} before, {} after", results.load_before, results.load_after);
    let _ = writeln!(out, "- What else the machine did while each part ran:");
    for noise in &results.others {
        let interrupts: Vec<String> = noise
            .interrupts_per_second
            .iter()
            .enumerate()
            .map(|(core, rate)| format!("core {core} {}", thousands(rate.round() as u64)))
            .collect();
        let _ = writeln!(
            out,
            "  - {}: other processes {:.1}% of the machine's CPU time, stolen by the hypervisor {:.1}%; interrupts \
             per second: {}",
            noise.part,
            noise.others * 100.0,
            noise.steal * 100.0,
            interrupts.join(", ")
        );
    }
    let _ = writeln!(out, "- Options: {}\n", options_line(o));

    if let Some(floor) = &results.floor {
        let _ = writeln!(out, "## Floor: one core to the other\n");
        let _ = writeln!(
            out,
            "Two threads pinned to cores 0 and 1 ping-pong; every round trip (RTT) is timed with one clock \
             read ({} ns, inside every sample). One way = RTT / 2. Nanoseconds.\n",
            floor.clock_read_ns
        );
        let _ = writeln!(
            out,
            "| path | round trips | RTT p50 | p99 | p99.9 | p99.99 | max | one way p50 | one way p99.9 |"
        );
        let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|");
        for hop in &floor.hops {
            let h = &hop.rtt;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                hop.name,
                thousands(h.len()),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.value_at_quantile(0.9999),
                h.max(),
                hop.one_way(0.5),
                hop.one_way(0.999)
            );
        }
        out.push('\n');
    }

    let hop = results.floor.as_ref().map(|f| f.hop());
    if let Some(roundtrip) = &results.roundtrip {
        roundtrip_section(&mut out, roundtrip, o, hop);
    }
    if let Some(throughput) = &results.throughput {
        throughput_section(&mut out, throughput);
    }
    if let Some(scaling) = &results.scaling {
        scaling_section(&mut out, scaling);
    }
    goals_section(&mut out, results, hop);
    out
}

fn options_line(o: &Options) -> String {
    let parts: Vec<&str> =
        [(o.floor, "floor"), (o.roundtrip, "round trip"), (o.throughput, "throughput"), (o.scaling, "scaling")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| *name)
            .collect();
    format!(
        "parts {}; {} ms per rate (at most {} commands); exchange-core {} commands × {} runs, window {}; \
         scaling {} commands per symbol × {} runs; seed {}",
        parts.join(", "),
        o.duration.as_millis(),
        thousands(o.max_commands as u64),
        thousands(o.commands as u64),
        o.runs,
        o.window,
        thousands(o.scaling_commands as u64),
        o.scaling_runs,
        o.seed
    )
}

fn roundtrip_section(out: &mut String, rt: &RoundTrip, o: &Options, hop: Option<&Hop>) {
    let _ = writeln!(out, "## In-process round trip, open loop\n");
    let _ = writeln!(
        out,
        "One producer (core 0) submits at the offered rate and reads the results on the same thread; one \
         shard (core 1). Mix: {}; {} portfolios created first, about 1,000 resting orders. Latency runs \
         from each command's *planned* send time to the producer reading its `Done` (corrected for \
         coordinated omission); \"uncorrected\" runs from the actual send. Microseconds.\n",
        mix_line(&rt.mix),
        thousands(u64::from(rt.accounts))
    );
    let _ = writeln!(
        out,
        "| offered /s | wait | commands | achieved /s | p50 | p99 | steady p99 | p99.9 | p99.99 | max | uncorrected p50 | \
         uncorrected p99.9 | p99.9 ÷ hop | sustainable | same events as bare | others' CPU | producer preempted | \
         shard preempted |"
    );
    let _ = writeln!(out, "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|--:|--:|--:|");
    let hop_p999 = hop.map(|h| h.one_way(0.999));
    for row in rt.spin.iter().chain(rt.park.as_ref()) {
        let run = &row.run;
        let h = &run.latency;
        let ratio = hop_p999
            .filter(|&p| p > 0)
            .map_or("–".into(), |p| format!("{:.0}×", h.value_at_quantile(0.999) as f64 / p as f64));
        let sustainable = match run.wait {
            simex::runtime::WaitStrategy::Spin if rt.sustainable(run) => "yes",
            simex::runtime::WaitStrategy::Spin if rt.keeps_up(run) => "keeps up",
            simex::runtime::WaitStrategy::Spin => "no",
            _ => "–",
        };
        let _ = writeln!(
            out,
            "| {} | {:?} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0}% | {} | {} |",
            thousands(run.spec.rate),
            run.wait,
            thousands(run.spec.commands as u64),
            thousands(run.achieved.round() as u64),
            us(h.value_at_quantile(0.5)),
            us(h.value_at_quantile(0.99)),
            us(run.steady_p99),
            us(h.value_at_quantile(0.999)),
            us(h.value_at_quantile(0.9999)),
            us(h.max()),
            us(run.service.value_at_quantile(0.5)),
            us(run.service.value_at_quantile(0.999)),
            ratio,
            sustainable,
            yes_no(row.verified),
            row.others * 100.0,
            preemption(run.producer_preempted),
            preemption(run.shard_preempted)
        );
    }
    let _ = writeln!(
        out,
        "\n\"Preempted\" counts the times another thread took the pinned thread's core during the measured \
         commands, and how long it waited for it back (the kernel's per-thread involuntary switches and run-queue \
         wait). \"p99.9 ÷ hop\" divides by the one-way core-to-core hop's p99.9 (cache line, above). A rate is \
         *sustainable* when the achieved rate is at least {:.0}% of the offered one and the corrected p50 and the \
         steady p99 (the median of the p99s of the run's ten tenths, which one multi-millisecond preemption does \
         not move) are each at most {}× the lowest rate's ({} µs and {} µs). ",
        ACHIEVED_SHARE_MIN * 100.0,
        LATENCY_GROWTH_MAX,
        us(rt.base().0),
        us(rt.base().1)
    );
    let rate_or_none = |rate: Option<u64>| rate.map_or("none".to_string(), |r| format!("{} commands/s", thousands(r)));
    let _ = writeln!(
        out,
        "It *keeps up* when the conditions on the rate and the p50 hold, whatever its p99.\n\n**Highest sustainable \
         rate: {}**; highest rate kept up with: {}. (A lower rate that fails was preempted more: a stall only adds \
         latency, while a saturated run cannot pass.)\n",
        rate_or_none(rt.max_sustainable()),
        rate_or_none(rt.max_kept_up())
    );
    if let Some(row) = rt.spin.iter().find(|row| row.run.spec.rate == o.stage_rate) {
        let _ = writeln!(
            out,
            "### Per stage at {} commands/s (spin)\n\nThe runtime's own histograms over the measured commands \
             (shard: `ring`, `match_risk`; submitter: `egress`, `round_trip`, the latter from the actual send):\n",
            thousands(o.stage_rate)
        );
        out.push_str(&row.run.stages.percentile_table());
        out.push('\n');
    }
    if let Some((path, bytes)) = &rt.hlog {
        let _ = writeln!(
            out,
            "Interval log of that run: `{}` ({} bytes; tags `shard0`, `submitter0`, and `open_loop` whose \
             `round_trip` is the corrected latency).\n",
            path.display(),
            thousands(*bytes as u64)
        );
    }
    let busy: u64 = rt.spin.iter().chain(rt.park.as_ref()).map(|row| row.run.busy).sum();
    let _ = writeln!(out, "`submit` answered `Busy` {} times over all rates.\n", thousands(busy));
}

fn throughput_section(out: &mut String, t: &Throughput) {
    let _ = writeln!(out, "## Throughput: the exchange-core mix through the runtime and without it\n");
    let _ = writeln!(
        out,
        "{} measured commands ({}), after the portfolios and the warm-up. Runtime: one shard spinning on core 1, \
         one producer on core 0, closed loop with up to {} commands in flight, reading every response. Bare \
         engine: the shard's engine type (`Engine<FastBook, SharedLedger>`) applying the same translated \
         commands in a loop on core 1. Adapter: the engine benchmark's simex adapter (`Engine` with its own \
         ledger, ids mapped per command) on core 1. Runs interleaved.\n",
        thousands(t.commands as u64),
        mix_line(&t.mix),
        t.window
    );
    let _ = writeln!(out, "| path | M cmd/s (median) | min – max | runs | ns/cmd | runtime ÷ this |");
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|");
    let runtime = t.runtime.median();
    for (name, rates) in [
        ("engine benchmark adapter (bare engine)", &t.adapter),
        ("bare shard engine, same commands", &t.bare),
        ("runtime, 1 shard", &t.runtime),
    ] {
        let median = rates.median();
        let _ = writeln!(
            out,
            "| {name} | **{:.3}** | {:.3} – {:.3} | {} | {:.0} | {:.2} |",
            median / 1e6,
            rates.min() / 1e6,
            rates.max() / 1e6,
            rates.0.len(),
            1e9 / median,
            runtime / median
        );
    }
    let waits: Vec<String> =
        t.waits.iter().map(|w| format!("{} / {}", us(w.round_trip_p50_ns), us(w.egress_p50_ns))).collect();
    let _ = writeln!(
        out,
        "\nWhere the runtime's commands waited (the submitter's histograms, median round trip / median egress, µs, \
         per run): {}. At the median {:.0} ns per command, a full window of {} commands is {} µs: a round trip that \
         long with a short egress means commands queued in the inbound ring, waiting for the shard.",
        waits.join(", "),
        1e9 / runtime,
        t.window,
        us((t.window as f64 * 1e9 / runtime) as u64)
    );
    let split: Vec<String> = t
        .engine_ns
        .iter()
        .zip(&t.runtime.0)
        .map(|(&engine, &rate)| format!("{:.0} of {:.0}", engine, 1e9 / rate))
        .collect();
    let _ = writeln!(
        out,
        "\nInside the shard, ns in the engine (the `match_risk` stage's mean: `Engine::apply` and one clock read) of \
         the ns per command, per run: {}. The bare shard engine's median is {:.0} ns per command.",
        split.join(", "),
        1e9 / t.bare.median()
    );
    let _ = writeln!(
        out,
        "\nSame work (whole runs, portfolios and warm-up included; the adapter reports rejections only):\n"
    );
    let _ = writeln!(out, "| path | events | accepted | fills | lots traded | cancelled | replaced | rejected | digest | same final state |");
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|---|---|");
    let c = &t.bare_counts;
    let _ = writeln!(
        out,
        "| bare shard engine | {} | {} | {} | {} | {} | {} | {} | `{:016x}` | – |",
        thousands(c.events),
        thousands(c.accepted),
        thousands(c.fills),
        thousands(c.traded_lots as u64),
        thousands(c.cancelled),
        thousands(c.replaced),
        thousands(c.rejected),
        c.digest
    );
    for (index, (c, verified)) in t.runtime_counts.iter().zip(&t.verified).enumerate() {
        let _ = writeln!(
            out,
            "| runtime, run {} | {} | {} | {} | {} | {} | {} | {} | `{:016x}` | {} |",
            index + 1,
            thousands(c.events),
            thousands(c.accepted),
            thousands(c.fills),
            thousands(c.traded_lots as u64),
            thousands(c.cancelled),
            thousands(c.replaced),
            thousands(c.rejected),
            c.digest,
            yes_no(*verified)
        );
    }
    let _ = writeln!(
        out,
        "\nThe adapter rejected {} measured commands. `Busy` answers in the runtime runs: {}. Allocation calls \
         per measured command in the runtime runs (whole process): {:.4}. Preemptions of the runtime's threads \
         while measured, all runs: {}.\n",
        thousands(t.adapter_rejected as u64),
        thousands(t.busy),
        t.allocations_per_command,
        preemption(t.preempted)
    );
}

fn scaling_section(out: &mut String, s: &Scaling) {
    let _ = writeln!(out, "## Scaling: one shard and two\n");
    let _ = writeln!(
        out,
        "Two exchange-core streams of {} measured commands, one per symbol, merged one command of each in turn \
         (two producers: one stream each). {} cores available. **With two cores, every two-shard row shares \
         cores between shards and producers**: these rows measure contention, not scaling. \"per core\" \
         divides by the cores the configuration keeps busy.\n",
        thousands(s.commands_per_symbol as u64),
        s.cores
    );
    let _ = writeln!(
        out,
        "| configuration | wait | pinning | cores busy | M cmd/s (median) | min – max | per shard | per core | \
         ÷ 1 shard | same work | preempted per run |"
    );
    let _ = writeln!(out, "|---|---|---|--:|--:|--:|--:|--:|--:|---|--:|");
    let one_shard = s.rows.iter().find(|r| r.shards == 1).map(|r| r.rates.median());
    for row in &s.rows {
        let median = row.rates.median();
        let per_shard = if row.shards > 0 { format!("{:.3}", median / 1e6 / row.shards as f64) } else { "–".into() };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | **{:.3}** | {:.3} – {:.3} | {} | {:.3} | {} | {} | {} |",
            row.name,
            row.wait.map_or("–".into(), |w| format!("{w:?}")),
            row.pinning,
            row.cores,
            median / 1e6,
            row.rates.min() / 1e6,
            row.rates.max() / 1e6,
            per_shard,
            median / 1e6 / row.cores as f64,
            one_shard.map_or("–".into(), |base| format!("{:.2}", median / base)),
            yes_no(row.verified),
            preemption(row.preempted.map(|p| Preemption {
                count: p.count / row.rates.0.len().max(1) as u64,
                waited_ns: p.waited_ns / row.rates.0.len().max(1) as u64
            }))
        );
    }
    out.push('\n');
}

fn goals_section(out: &mut String, results: &Results, hop: Option<&Hop>) {
    let _ = writeln!(out, "## Goals\n");
    if let Some(t) = &results.throughput {
        let share_adapter = t.runtime.median() / t.adapter.median();
        let share_bare = t.runtime.median() / t.bare.median();
        let _ = writeln!(
            out,
            "- Runtime throughput at least {:.0}% of the bare engine's: **{}**: {:.0}% of the engine benchmark's \
             adapter, {:.0}% of the bare shard engine on the same commands (medians).",
            RUNTIME_SHARE_GOAL * 100.0,
            if share_adapter >= RUNTIME_SHARE_GOAL { "met" } else { "missed" },
            share_adapter * 100.0,
            share_bare * 100.0
        );
    }
    if let (Some(rt), Some(hop)) = (&results.roundtrip, hop) {
        let hop_p999 = hop.one_way(0.999).max(1);
        let limit = HOP_MULTIPLE_GOAL * hop_p999;
        let within: Vec<String> = rt
            .spin
            .iter()
            .filter(|row| row.run.latency.value_at_quantile(0.999) <= limit)
            .map(|row| thousands(row.run.spec.rate))
            .collect();
        let best = rt.spin.iter().map(|row| row.run.latency.value_at_quantile(0.999)).min().unwrap_or(0);
        let _ = writeln!(
            out,
            "- Round-trip p99.9 within {}× the core-to-core hop (one way, p99.9 = {} ns, so {} µs): **{}**; \
             lowest round-trip p99.9 {} µs ({:.0}× the hop, {:.0}× its round trip).",
            HOP_MULTIPLE_GOAL,
            hop_p999,
            us(limit),
            if within.is_empty() {
                "missed at every rate".to_string()
            } else {
                format!("met at {} /s", within.join(", "))
            },
            us(best),
            best as f64 / hop_p999 as f64,
            best as f64 / hop.rtt.value_at_quantile(0.999).max(1) as f64
        );
    }
    out.push('\n');
}

/// "count / milliseconds waited", or "–" when unknown.
fn preemption(p: Option<Preemption>) -> String {
    p.map_or("–".into(), |p| format!("{} / {:.1} ms", thousands(p.count), p.waited_ns as f64 / 1e6))
}

fn mix_line(mix: &Mix) -> String {
    let share = |n: usize| 100.0 * n as f64 / mix.total().max(1) as f64;
    format!(
        "{:.1}% GTC, {:.1}% IOC, {:.1}% cancel, {:.1}% replace",
        share(mix.gtc),
        share(mix.ioc),
        share(mix.cancel),
        share(mix.replace)
    )
}

/// Nanoseconds as microseconds with two decimals.
fn us(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1_000.0)
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "**no**"
    }
}

pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// CPU model, cores available, kernel.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or("unknown".into(), |s| s.trim().to_string());
    format!("{cpu}, {} cores available, kernel {kernel}", super::threads::available_cores())
}

/// `YYYY-MM-DD hh:mm:ss` for seconds since the Unix epoch (UTC, proleptic Gregorian).
pub fn utc(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    // Days to civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rest / 3_600, rest % 3_600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_thousands() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_800_000_000), "2027-01-15 08:00:00");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}
