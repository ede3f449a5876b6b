//! Markdown tables of a [`SuiteResult`]: the workloads, throughput and latency, ratios, the flash1
//! worst case, the goals, and the fill comparison with every divergence class counted.

use crate::adapters::EngineKind;
use crate::compare::Divergence;
use crate::fills::Trade;
use crate::suite::{EngineResult, SuiteResult, WorkloadKind, WorkloadResult};
use std::fmt::Write;

/// What the issue asks of simex, checked against the flash1 worst case.
const GOAL_BOOK_OVER_MATCHCORE: f64 = 2.0;
const GOAL_FULL_OVER_MATCHCORE: f64 = 1.0;

pub fn markdown(suite: &SuiteResult) -> String {
    let mut out = String::new();
    setup(&mut out, suite);
    workloads(&mut out, suite);
    performance(&mut out, suite);
    ratios(&mut out, suite);
    worst_case(&mut out, suite);
    divergences(&mut out, suite);
    out
}

fn millions(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".into(), |r| format!("{:.3}", r / 1e6))
}

fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> String {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0.0 => format!("{:.2}×", n / d),
        _ => "–".into(),
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn setup(out: &mut String, suite: &SuiteResult) {
    let o = &suite.options;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(out, "## Setup\n");
    let _ = writeln!(out, "- CPU: {} ({cpus} logical CPUs available)", cpu_model());
    let _ = writeln!(
        out,
        "- flash1: {} new orders per scenario, seed {}; exchange-core mix: {} measured commands, seed {}",
        o.orders, o.seed, o.commands, o.seed
    );
    let _ = writeln!(
        out,
        "- throughput: median of {} runs ({} for orderbook-rs); latency: one pass per engine, every command timed",
        o.runs, o.orderbook_rs_runs
    );
    let _ = writeln!(
        out,
        "- simex full path: `EngineConfig::default()` except `self_trade_policy = Allow` and `orders_max = {}`",
        o.simex_orders_max
    );
    let _ = writeln!(
        out,
        "- one latency sample's clock reads cost ~{} ns (median of an empty timed block); it is included in every percentile",
        suite.timer_overhead_ns
    );
    let _ = writeln!(
        out,
        "- allocation counting: {}",
        if suite.allocations_counted {
            "on (alloc + alloc_zeroed + realloc calls)"
        } else {
            "off (counting allocator not installed)"
        }
    );
    let _ = writeln!(out, "- wall time of the whole run: {:.0} s\n", suite.elapsed.as_secs_f64());
}

fn workloads(out: &mut String, suite: &SuiteResult) {
    let _ = writeln!(out, "## Workloads\n");
    let _ = writeln!(
        out,
        "Mix, fills and book sizes are over the measured commands; fills and book sizes come from the model book (a plain `BTreeMap` price-time book in the bench crate).\n"
    );
    let _ = writeln!(
        out,
        "| workload | warm-up | measured | GTC | IOC | cancel | replace | commands that trade | fills | rejected | resting orders avg / peak | levels avg / peak |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for w in &suite.workloads {
        let total = w.mix.total().max(1) as f64;
        let share = |n: usize| format!("{:.1}%", 100.0 * n as f64 / total);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} ({:.1}%) | {} | {} | {:.0} / {} | {:.0} / {} |",
            w.name,
            w.warmup_commands,
            w.measured_commands,
            share(w.mix.gtc),
            share(w.mix.ioc),
            share(w.mix.cancel),
            share(w.mix.replace),
            w.model_commands_with_fills,
            100.0 * w.model_commands_with_fills as f64 / total,
            w.model_fills,
            w.model_rejects,
            w.model_book.orders_avg(),
            w.model_book.orders_peak,
            w.model_book.levels_avg(),
            w.model_book.levels_peak,
        );
    }
    out.push('\n');
}

fn allocations_per_command(engine: &EngineResult, second_half: bool, counted: bool) -> String {
    let Some(run) = engine.runs.first() else {
        return "–".into();
    };
    if !counted {
        return "n/a".into();
    }
    let (allocations, commands) = if second_half {
        (run.allocations_second_half, run.commands - run.commands / 2)
    } else {
        (run.allocations, run.commands)
    };
    format!("{:.4}", allocations as f64 / commands.max(1) as f64)
}

fn performance(out: &mut String, suite: &SuiteResult) {
    let _ = writeln!(out, "## Throughput, latency and allocations\n");
    let _ = writeln!(
        out,
        "Throughput: median over runs, whole stream timed at once. Latency: nanoseconds per command, from an HDR histogram of one pass. Allocations: calls per measured command in the first run, over all of it and over its second half.\n"
    );
    let _ = writeln!(
        out,
        "| workload | engine | M cmd/s (median) | runs: min – max | ns/cmd | p50 | p99 | p99.9 | p99.99 | max | allocs/cmd | allocs/cmd, 2nd half |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for w in &suite.workloads {
        for e in &w.engines {
            let rates: Vec<f64> = e.runs.iter().map(|r| r.commands_per_second()).collect();
            let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
            let max = rates.iter().copied().fold(0.0, f64::max);
            let median = e.median_throughput();
            let percentile =
                |q: f64| e.latency.as_ref().map_or_else(|| "–".into(), |h| h.value_at_quantile(q).to_string());
            let _ = writeln!(
                out,
                "| {} | {} | **{}** | {} – {} ({} runs) | {} | {} | {} | {} | {} | {} | {} | {} |",
                w.name,
                e.engine.name(),
                millions(median),
                millions(Some(min).filter(|m| m.is_finite())),
                millions(Some(max).filter(|&m| m > 0.0)),
                rates.len(),
                median.map_or_else(|| "–".into(), |m| format!("{:.0}", 1e9 / m)),
                percentile(0.5),
                percentile(0.99),
                percentile(0.999),
                percentile(0.9999),
                e.latency.as_ref().map_or_else(|| "–".into(), |h| h.max().to_string()),
                allocations_per_command(e, false, suite.allocations_counted),
                allocations_per_command(e, true, suite.allocations_counted),
            );
        }
    }
    out.push('\n');
}

fn ratios(out: &mut String, suite: &SuiteResult) {
    let _ = writeln!(out, "## simex relative to the others\n");
    let _ = writeln!(out, "Ratios of median throughput (above 1× means simex is faster).\n");
    let _ = writeln!(
        out,
        "| workload | full path / matchcore | full path / orderbook-rs | book alone / matchcore | book alone / orderbook-rs | full path / book alone |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|");
    for w in &suite.workloads {
        let t = |e| w.throughput(e);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            w.name,
            ratio(t(EngineKind::SimexFull), t(EngineKind::Matchcore)),
            ratio(t(EngineKind::SimexFull), t(EngineKind::OrderbookRs)),
            ratio(t(EngineKind::SimexBook), t(EngineKind::Matchcore)),
            ratio(t(EngineKind::SimexBook), t(EngineKind::OrderbookRs)),
            ratio(t(EngineKind::SimexFull), t(EngineKind::SimexBook)),
        );
    }
    out.push('\n');
}

/// The flash1 scenario with the lowest median throughput for `engine`, and that throughput.
fn worst(suite: &SuiteResult, engine: EngineKind) -> Option<(&WorkloadResult, f64)> {
    suite
        .workloads
        .iter()
        .filter(|w| matches!(w.kind, WorkloadKind::Flash1(_)))
        .filter_map(|w| w.throughput(engine).map(|t| (w, t)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

fn best(suite: &SuiteResult, engine: EngineKind) -> Option<(&WorkloadResult, f64)> {
    suite
        .workloads
        .iter()
        .filter(|w| matches!(w.kind, WorkloadKind::Flash1(_)))
        .filter_map(|w| w.throughput(engine).map(|t| (w, t)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// The smallest per-scenario ratio of `a` over `b` on flash1, and where.
fn min_ratio(suite: &SuiteResult, a: EngineKind, b: EngineKind) -> Option<(&str, f64)> {
    suite
        .workloads
        .iter()
        .filter(|w| matches!(w.kind, WorkloadKind::Flash1(_)))
        .filter_map(|w| Some((w.kind.key(), w.throughput(a)? / w.throughput(b)?)))
        .min_by(|x, y| x.1.total_cmp(&y.1))
}

fn worst_case(out: &mut String, suite: &SuiteResult) {
    if !suite.workloads.iter().any(|w| matches!(w.kind, WorkloadKind::Flash1(_))) {
        return;
    }
    let _ = writeln!(out, "## flash1 worst case\n");
    let _ = writeln!(out, "The flash1 benchmark scores an engine by its lowest throughput over the five scenarios.\n");
    let _ = writeln!(out, "| engine | worst scenario | M cmd/s | best scenario | M cmd/s |");
    let _ = writeln!(out, "|---|---|--:|---|--:|");
    for &engine in &suite.options.engines {
        if let (Some((w, low)), Some((b, high))) = (worst(suite, engine), best(suite, engine)) {
            let _ = writeln!(
                out,
                "| {} | {} | **{}** | {} | {} |",
                engine.name(),
                w.kind.key(),
                millions(Some(low)),
                b.kind.key(),
                millions(Some(high))
            );
        }
    }
    out.push('\n');
    let score = |engine| worst(suite, engine).map(|(_, t)| t);
    let _ = writeln!(
        out,
        "Worst-case score ratios: full path / matchcore {}, full path / orderbook-rs {}, book alone / matchcore {}, book alone / orderbook-rs {}.\n",
        ratio(score(EngineKind::SimexFull), score(EngineKind::Matchcore)),
        ratio(score(EngineKind::SimexFull), score(EngineKind::OrderbookRs)),
        ratio(score(EngineKind::SimexBook), score(EngineKind::Matchcore)),
        ratio(score(EngineKind::SimexBook), score(EngineKind::OrderbookRs)),
    );
    let _ = writeln!(out, "### Goals\n");
    goal(
        out,
        suite,
        "simex book alone at least 2× matchcore",
        EngineKind::SimexBook,
        EngineKind::Matchcore,
        GOAL_BOOK_OVER_MATCHCORE,
    );
    goal(
        out,
        suite,
        "simex full path at least as fast as matchcore's book",
        EngineKind::SimexFull,
        EngineKind::Matchcore,
        GOAL_FULL_OVER_MATCHCORE,
    );
    out.push('\n');
}

fn goal(out: &mut String, suite: &SuiteResult, title: &str, ours: EngineKind, theirs: EngineKind, target: f64) {
    let (Some((our_worst, a)), Some((their_worst, b))) = (worst(suite, ours), worst(suite, theirs)) else {
        return;
    };
    let scores = a / b;
    let (scenario, per_scenario) = min_ratio(suite, ours, theirs).unwrap_or(("–", f64::NAN));
    let verdict = |r: f64| if r >= target { "met" } else { "missed" };
    let _ = writeln!(
        out,
        "- {title}: worst-case scores {} ({}) vs {} ({}) = **{scores:.2}×, {}**; scenario by scenario the smallest ratio is {per_scenario:.2}× ({scenario}), {}.",
        millions(Some(a)),
        our_worst.kind.key(),
        millions(Some(b)),
        their_worst.kind.key(),
        verdict(scores),
        verdict(per_scenario),
    );
}

fn fills_text(fills: &[Trade]) -> String {
    if fills.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> =
        fills.iter().take(6).map(|t| format!("({} ← {}, {} @ {})", t.taker, t.maker, t.qty, t.price)).collect();
    let more = if fills.len() > 6 { format!(" … {} fills", fills.len()) } else { String::new() };
    format!("{}{more}", shown.join(" "))
}

fn command_name(first: &crate::compare::FirstDivergence) -> String {
    if first.in_warmup {
        format!("warm-up #{}", first.command)
    } else {
        format!("#{}", first.command)
    }
}

fn divergence_row(
    out: &mut String,
    workload: &str,
    engine: &str,
    fills: Option<usize>,
    rejects: Option<usize>,
    d: &Divergence,
) {
    let first =
        d.first.as_ref().map_or_else(|| "–".into(), |f| format!("{} ({})", command_name(f), f.class.describe()));
    let _ = writeln!(
        out,
        "| {workload} | {engine} | {} | {} | {} | {} | {} ({} lots) in {} commands | {} |",
        fills.map_or_else(|| "–".into(), |f| f.to_string()),
        rejects.map_or_else(|| "–".into(), |r| r.to_string()),
        d.commands_differing,
        first,
        d.limit_violating_fills,
        d.limit_violating_qty,
        d.commands_with_limit_violation,
        d.unexplained_before_first_violation,
    );
}

fn divergences(out: &mut String, suite: &SuiteResult) {
    if !suite.options.verify {
        return;
    }
    let _ = writeln!(out, "## Fills compared with simex\n");
    let _ = writeln!(
        out,
        "Every engine's fills, normalised to (taker client id, maker client id, price, qty), compared command by command with simex's full path, warm-up included (fill and reject counts are over the measured commands only); the first row of each workload compares simex with the model book. After the first difference the books differ, so later differences are consequences; \"differing before the first violation\" counts the ones the matchcore limit defect cannot explain.\n"
    );
    let _ = writeln!(
        out,
        "| workload | engine | fills | rejected | commands differing | first divergence | fills beyond the taker's limit | differing before the first violation |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|---|--:|--:|");
    let mut details = Vec::new();
    for w in &suite.workloads {
        if let Some(d) = &w.simex_vs_model {
            divergence_row(
                out,
                &w.name,
                "simex full path vs model book",
                Some(w.model_fills),
                Some(w.model_rejects),
                d,
            );
            if let Some(first) = &d.first {
                details.push((w.name.clone(), "model book", "simex full path", first.clone()));
            }
        }
        for e in &w.engines {
            if let Some(d) = &e.divergence {
                divergence_row(out, &w.name, e.engine.name(), e.fills, e.rejects, d);
                if let Some(first) = &d.first {
                    details.push((w.name.clone(), "simex", e.engine.name(), first.clone()));
                }
            }
        }
    }
    out.push('\n');
    if details.is_empty() {
        return;
    }
    let _ = writeln!(out, "### First divergences\n");
    let _ = writeln!(out, "Fills are written (taker ← maker, qty @ price) in client ids and ticks.\n");
    for (workload, reference, engine, first) in details {
        let _ = writeln!(
            out,
            "- {workload}, {engine}: command {} `{:?}`: {}. {reference}: {}; {engine}: {}.",
            command_name(&first),
            first.op,
            first.class.describe(),
            fills_text(&first.expected),
            fills_text(&first.got),
        );
    }
    out.push('\n');
}
