//! Scaling from one shard to as many as the machine has cores for, which on the two-core machine
//! these numbers come from is two.
//!
//! The work is the same in every configuration: two exchange-core streams (seeds `seed` and
//! `seed + 1`), one per symbol, merged one command of each in turn, after the same portfolios.
//! Only where it runs changes:
//!
//! - the bare engine owning both symbols on one pinned thread (the reference);
//! - one shard owning both symbols, spinning, pinned to core 1, with the producer on core 0;
//! - two shards, one symbol each, on cores 0 and 1, fed by one producer (the merged stream) or by
//!   two (one stream each).
//!
//! **The limit, plainly.** A shard that spins owns a core, and so does a producer that spins. One
//! shard and its producer already fill this machine; two shards and any producer need three cores
//! or more. So every two-shard configuration here shares cores between shards and producers: with
//! `spin-then-yield` or `park` an idle shard gives its core up, and the producers yield theirs when
//! a pass over their rings found nothing to do; with `spin` (the row `--contended-spin` adds, its
//! producer spinning too) the threads fight for the cores and the scheduler's time slices decide.
//! These rows show what sharing costs, not how the runtime scales; that needs a machine with at
//! least `2 × shards` cores. The runtime itself only falls back from `spin` when there are more
//! shards than cores, so with two shards on two cores it keeps spinning unless told otherwise.

use super::pipeline::{self, Layout};
use super::stream::{setup_commands, Stream};
use super::threads::{self, Preemption};
use super::{Options, Rates, Scaling, ScalingRow, PRODUCER_CORE, SHARD_CORE};
use crate::workload::exchange_core;
use simex::runtime::WaitStrategy;

pub fn run(options: &Options, progress: &mut impl FnMut(String)) -> Scaling {
    progress(format!("scaling: generating two exchange-core streams ({} commands each)", options.scaling_commands));
    let params = |seed| exchange_core::Params { commands: options.scaling_commands, seed, ..Default::default() };
    let a = exchange_core::generate(&params(options.seed));
    let b = exchange_core::generate(&params(options.seed + 1));
    let setup = setup_commands(a.accounts.max(b.accounts));
    let one_shard = Stream::interleaved(&[&a, &b], 1);
    let two_shards = Stream::interleaved(&[&a, &b], 2);
    let (only_a, only_b) = (Stream::single(&a, 0, 0), Stream::single(&b, 1, 1));
    drop((a, b));
    let cores = threads::available_cores();

    let mut rows = Vec::new();
    let mut bare_rates = Rates::default();
    let (_, reference) = pipeline::run_bare(&setup, &one_shard, None, SHARD_CORE);
    let expected = reference.counts;
    drop(reference);
    for _ in 0..options.scaling_runs {
        let (elapsed, _) = pipeline::run_bare(&setup, &one_shard, None, SHARD_CORE);
        bare_rates.0.push(one_shard.measured.len() as f64 / elapsed.as_secs_f64());
    }
    progress(format!("scaling: bare engine {:.3} M/s", bare_rates.median() / 1e6));
    rows.push(ScalingRow {
        name: "bare engine, both symbols, one thread".into(),
        shards: 0,
        producers: 0,
        wait: None,
        pinning: format!("core {SHARD_CORE}"),
        cores: 1,
        rates: bare_rates,
        verified: true,
        preempted: None,
    });

    let mut configs = vec![
        (
            "1 shard (both symbols), 1 producer",
            Layout {
                shards: 1,
                wait: WaitStrategy::Spin,
                shard_core: Some(SHARD_CORE),
                producer_cores: vec![Some(PRODUCER_CORE)],
                producers_yield: false,
                latency_interval: options.latency_interval,
            },
            vec![one_shard.clone()],
            format!("shard core {SHARD_CORE}, producer core {PRODUCER_CORE}"),
        ),
        (
            "2 shards, 1 producer",
            Layout {
                shards: 2,
                wait: WaitStrategy::SpinThenYield,
                shard_core: None,
                producer_cores: vec![None],
                producers_yield: true,
                latency_interval: options.latency_interval,
            },
            vec![two_shards.clone()],
            "shards cores 0 and 1, producer unpinned".into(),
        ),
        (
            "2 shards, 2 producers",
            Layout {
                shards: 2,
                wait: WaitStrategy::SpinThenYield,
                shard_core: None,
                producer_cores: vec![None, None],
                producers_yield: true,
                latency_interval: options.latency_interval,
            },
            vec![only_a.clone(), only_b.clone()],
            "shards cores 0 and 1, producers unpinned".into(),
        ),
        (
            "2 shards, 2 producers",
            Layout {
                shards: 2,
                wait: WaitStrategy::Park,
                shard_core: None,
                producer_cores: vec![None, None],
                producers_yield: true,
                latency_interval: options.latency_interval,
            },
            vec![only_a, only_b],
            "shards cores 0 and 1, producers unpinned".into(),
        ),
    ];
    if options.scaling_contended_spin {
        configs.push((
            "2 shards, 1 producer",
            Layout {
                shards: 2,
                wait: WaitStrategy::Spin,
                shard_core: None,
                producer_cores: vec![None],
                producers_yield: false,
                latency_interval: options.latency_interval,
            },
            vec![two_shards],
            "shards cores 0 and 1, producer unpinned".into(),
        ));
    }
    drop(one_shard);

    for (name, layout, streams, pinning) in configs {
        let mut rates = Rates::default();
        let mut verified = true;
        let mut wait = layout.wait;
        let mut preempted = Some(Preemption::default());
        for _ in 0..options.scaling_runs {
            let run = pipeline::run_runtime(&layout, &setup, &streams, options.window);
            let same = run.counts.same_work(&expected);
            // With one shard the layout is the bare engine's, so the digest must match too.
            verified &= same && (layout.shards > 1 || run.counts == expected);
            wait = run.wait;
            preempted = Preemption::sum(preempted, run.preempted);
            rates.0.push(run.commands_per_second());
            let engine_ns: Vec<String> = run
                .shard_stages
                .iter()
                .map(|stages| format!("{:.0}", stages.get(simex::runtime::Stage::MatchRisk).mean()))
                .collect();
            progress(format!(
                "scaling: {name}, {wait:?}: {:.3} M/s, ns per command in each shard's engine: {}",
                run.commands_per_second() / 1e6,
                engine_ns.join(", ")
            ));
        }
        progress(format!(
            "scaling: {name}, {} shard(s), {wait:?}: {:.3} M/s{}",
            layout.shards,
            rates.median() / 1e6,
            if verified { "" } else { "  MISMATCH with the bare engine" }
        ));
        rows.push(ScalingRow {
            name: name.into(),
            shards: layout.shards,
            producers: layout.producer_cores.len(),
            wait: Some(wait),
            pinning,
            cores: cores.min(layout.shards + layout.producer_cores.len()),
            rates,
            verified,
            preempted,
        });
    }
    Scaling { commands_per_symbol: options.scaling_commands, rows, cores }
}
