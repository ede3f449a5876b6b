//! `simex load`: the runtime and its journal under a steady order load.
//!
//! On start the runtime recovers every shard from the journal and this prints, per shard, a line
//! `recovered shard=<k> snapshot=<seq|none> records=<n> hash=<state hash>` (records replayed after
//! the snapshot). It then creates its portfolios (already
//! there after a restart) and sends a mix of resting limits, crossing limits and cancels, round-robin
//! over the symbols, one command in flight. Each accepted order is printed as `ack <order id>` once
//! its `Done` arrives: with `sync` durability that is after its events are durable. With `--orders`
//! it stops after that many and prints `final shard=<k> hash=<state hash>` per shard.

use anyhow::Context;
use simex::runtime::{Durability, JournalSettings, Runtime, RuntimeConfig, SnapshotSettings, Submitter, WaitStrategy};
use simex_engine::{CommandBody, EventBody, InstrumentTable, NewOrder, OrderId, Side};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct LoadArgs {
    /// Journal directory (created if missing, recovered if present).
    #[arg(long)]
    journal: PathBuf,
    #[arg(long, default_value_t = 2)]
    shards: usize,
    /// sync, batch or none.
    #[arg(long, default_value = "sync")]
    durability: String,
    /// spin, spin-then-yield or park.
    #[arg(long, default_value = "park")]
    wait: WaitStrategy,
    /// Stop after this many accepted orders (default: run until killed).
    #[arg(long)]
    orders: Option<u64>,
    /// Size new journal segments are preallocated to, in MiB.
    #[arg(long, default_value_t = 64)]
    segment_mib: u64,
    /// Start even if a journal is corrupt in the middle, cutting it there.
    #[arg(long)]
    allow_corruption: bool,
    /// Write a snapshot set every this many records (0: not by count).
    #[arg(long, default_value_t = SnapshotSettings::default().every_records)]
    snapshot_every_records: u64,
    /// Write a snapshot set every this many milliseconds (0: not by time).
    #[arg(long, default_value_t = SnapshotSettings::default().every_ms)]
    snapshot_every_ms: u64,
    /// Write no snapshots at all.
    #[arg(long)]
    no_snapshots: bool,
    /// Keep every journal segment, even those snapshots make redundant.
    #[arg(long)]
    keep_journal: bool,
}

pub fn run(args: LoadArgs) -> anyhow::Result<()> {
    let durability = match args.durability.as_str() {
        "sync" => Durability::Sync,
        "batch" => Durability::Batch,
        "none" => Durability::None,
        other => anyhow::bail!("unknown durability {other:?}: expected sync, batch or none"),
    };
    let journal = JournalSettings {
        durability,
        allow_corruption: args.allow_corruption,
        segment_size_bytes: args.segment_mib << 20,
        snapshots: (!args.no_snapshots).then(|| SnapshotSettings {
            every_records: args.snapshot_every_records,
            every_ms: args.snapshot_every_ms,
            prune: !args.keep_journal,
            ..SnapshotSettings::default()
        }),
        ..JournalSettings::new(&args.journal)
    };
    let config =
        RuntimeConfig { shards: args.shards, wait: args.wait, journal: Some(journal), ..RuntimeConfig::default() };
    let mut started = Runtime::start(config, InstrumentTable::default_table()).context("starting the runtime")?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for shard in started.runtime.recovery() {
        let snapshot = shard.snapshot_seq.map_or("none".to_string(), |seq| seq.to_string());
        writeln!(
            out,
            "recovered shard={} snapshot={snapshot} records={} hash={:016x}",
            shard.shard, shard.records, shard.state_hash
        )?;
        for warning in &shard.warnings {
            writeln!(out, "warning shard={} {warning}", shard.shard)?;
        }
    }
    out.flush()?;
    let mut submitter = started.submitters.pop().context("one submitter")?;
    for portfolio_id in [1, 2] {
        round_trip(&mut submitter, CommandBody::CreatePortfolio { portfolio_id, cash_micros: 1_000_000_000_000_000 });
    }
    let symbols = [0u16, 1, 6, 8];
    let (mut accepted, mut step, mut resting): (u64, u64, Vec<OrderId>) = (0, 0, Vec::new());
    while args.orders.is_none_or(|limit| accepted < limit) {
        step += 1;
        let symbol_id = symbols[(step % symbols.len() as u64) as usize];
        let base = match symbol_id {
            6 => 6_000_000,
            8 => 108_000,
            _ => 15_000,
        };
        let offset = (step * 7919 % 40) as i64 - 20;
        let qty = if symbol_id == 6 {
            100_000
        } else if symbol_id == 8 {
            1_000
        } else {
            1 + (step % 9) as i64
        };
        let command = match step % 5 {
            0 if !resting.is_empty() => {
                CommandBody::Cancel { portfolio_id: 1, order_id: resting.swap_remove((step as usize) % resting.len()) }
            }
            1 | 2 => CommandBody::NewOrder(NewOrder::limit(1, symbol_id, Side::Sell, base + 21 + offset.abs(), qty)),
            _ => CommandBody::NewOrder(NewOrder::limit(2, symbol_id, Side::Buy, base + offset, qty)),
        };
        for order_id in round_trip(&mut submitter, command) {
            accepted += 1;
            if resting.len() < 10_000 {
                resting.push(order_id);
            }
            writeln!(out, "ack {order_id}")?;
        }
        out.flush()?;
    }
    drop(submitter);
    drop(started.submitters);
    let engines = started.runtime.shutdown();
    for engine in engines {
        writeln!(out, "final shard={} hash={:016x}", engine.shard_id(), engine.state_hash())?;
    }
    Ok(())
}

/// Submits one command, waits for it, returns the ids of the orders it accepted.
fn round_trip(submitter: &mut Submitter, command: CommandBody) -> Vec<OrderId> {
    submitter
        .execute(command)
        .into_iter()
        .filter_map(|event| match event.body {
            EventBody::OrderAccepted(order) => Some(order.order_id),
            _ => None,
        })
        .collect()
}
