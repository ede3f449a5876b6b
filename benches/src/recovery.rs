//! Recovery time of a journaled venue: a journal of N records (the exchange-core mix, journaled
//! exactly as the venue journals it), recovered by `Runtime::start` from the first record, from a
//! snapshot set some records before the end, and from a set at the very end.
//!
//! The journal is written by one engine and `JournalWriter` directly (no threads, durability
//! `None`), so generating 10 million records takes seconds. Each recovery is checked: the recovered
//! engine's state hash must equal the writer's, or the run fails.

use crate::runtime::stream::{engine_config, instruments, setup_commands, Stream};
use crate::workload::exchange_core;
use simex::runtime::{JournalSettings, Runtime, RuntimeConfig, ShardEngine, SharedLedger, Stores};
use simex_engine::codec::{encode_event, PAYLOAD_MAX};
use simex_engine::{ledger_snapshot_bytes, Command, EngineConfig, Event};
use simex_journal::{Durability, JournalConfig, JournalWriter};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Options {
    /// Records in the journal.
    pub records: u64,
    /// Records after the mid-journal snapshot set.
    pub tail_records: u64,
    /// Recoveries per case (the median is reported).
    pub runs: usize,
    /// Where the journal is written (a fresh directory under it).
    pub dir: PathBuf,
}

/// What writing the journal took and left.
pub struct Written {
    pub root: PathBuf,
    pub records: u64,
    pub write_time: Duration,
    pub mid_set_seq: u64,
    pub end_hash: u64,
    pub mid_snapshot_bytes: usize,
    pub end_snapshot_bytes: usize,
    pub end_snapshot_time: Duration,
    pub resting_orders: usize,
    /// The set written at the end for the last case: time, last sequence, engine and ledger bytes.
    end_set: (i64, u64, Vec<u8>, Vec<u8>),
}

/// One recovery case, timed `runs` times.
pub struct Case {
    pub name: &'static str,
    pub replayed_records: u64,
    pub snapshot_seq: Option<u64>,
    pub times: Vec<Duration>,
}

impl Case {
    pub fn median(&self) -> Duration {
        let mut sorted = self.times.clone();
        sorted.sort();
        sorted[sorted.len() / 2]
    }
}

const ACCOUNTS: u32 = 2_000;

fn shard_engine_config() -> EngineConfig {
    // One shard owns every symbol, as the runtime assigns them with `shards: 1`.
    EngineConfig { shard_id: 0, owned_symbols: Some(vec![0, 1]), ..engine_config() }
}

fn runtime_config(root: &Path) -> RuntimeConfig {
    RuntimeConfig {
        shards: 1,
        engine: engine_config(),
        journal: Some(JournalSettings { durability: Durability::None, snapshots: None, ..JournalSettings::new(root) }),
        ..RuntimeConfig::default()
    }
}

/// Writes the journal: portfolios, then the exchange-core mix until `records` records; a snapshot set
/// `tail_records` before the end.
pub fn write(options: &Options) -> Written {
    let root = options.dir.join(format!("simex-recovery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("creating the journal directory");
    let ledger = SharedLedger(simex::runtime::AtomicLedger::new(RuntimeConfig::default().portfolios_max));
    let mut engine = ShardEngine::with_ledger(shard_engine_config(), instruments(), ledger.clone());
    let epoch = 1;
    let config = JournalConfig { durability: Durability::None, ..JournalConfig::default() };
    let mut writer = JournalWriter::create(&root, 0, epoch, config).expect("creating the journal");
    let stores = Stores::open(&root, &[(0, epoch)], 2).expect("opening the snapshot stores");
    let params = exchange_core::Params {
        commands: options.records as usize,
        accounts: ACCOUNTS,
        ..exchange_core::Params::default()
    };
    let workload = exchange_core::generate(&params);
    let stream = Stream::single(&workload, 0, 0);
    let commands = setup_commands(ACCOUNTS).into_iter().chain(stream.warmup).chain(stream.measured);

    let started = Instant::now();
    let (mut events, mut payload) = (Vec::<Event>::with_capacity(64), [0u8; PAYLOAD_MAX]);
    let mut timestamp_ns = 1_700_000_000_000_000_000i64;
    let mid_at = options.records.saturating_sub(options.tail_records);
    let (mut mid_set_seq, mut mid_snapshot_bytes) = (0, 0);
    for body in commands {
        if engine.last_seq() >= options.records {
            break;
        }
        timestamp_ns += 1_000;
        events.clear();
        engine.apply(&Command { timestamp_ns, body }, &mut events);
        for event in &events {
            let (record_type, len) = encode_event(&event.body, &mut payload);
            writer.append(record_type, event.seq, event.timestamp_ns, &payload[..len]).expect("append");
        }
        if writer.pending_records() >= 4096 {
            writer.commit().expect("commit");
        }
        if mid_set_seq == 0 && engine.last_seq() >= mid_at {
            writer.commit().expect("commit");
            let bytes = engine.snapshot_bytes();
            mid_snapshot_bytes = bytes.len();
            mid_set_seq = engine.last_seq();
            stores
                .write_set(timestamp_ns, &[(0, mid_set_seq, bytes)], &ledger_snapshot_bytes(&ledger))
                .expect("writing the mid-journal set");
        }
    }
    writer.commit().expect("commit");
    drop(writer);
    let write_time = started.elapsed();
    let snapshot_started = Instant::now();
    let end_bytes = engine.snapshot_bytes();
    let end_snapshot_bytes = end_bytes.len();
    let end_snapshot_time = snapshot_started.elapsed();
    Written {
        root,
        records: engine.last_seq(),
        write_time,
        mid_set_seq,
        end_hash: engine.state_hash(),
        mid_snapshot_bytes,
        end_snapshot_bytes,
        end_snapshot_time,
        resting_orders: engine.open_order_count(),
        end_set: (timestamp_ns + 1, engine.last_seq(), end_bytes, ledger_snapshot_bytes(&ledger)),
    }
}

/// Recovers `root` once; returns the time `Runtime::start` took and what it recovered.
fn recover_once(root: &Path, expected_hash: u64) -> (Duration, Option<u64>, u64) {
    let started = Instant::now();
    let started_runtime = Runtime::start(runtime_config(root), instruments()).expect("recovery");
    let took = started.elapsed();
    let recovery = started_runtime.runtime.recovery()[0].clone();
    assert_eq!(recovery.state_hash, expected_hash, "recovered a different state than the journal's writer had");
    drop(started_runtime.submitters);
    started_runtime.runtime.shutdown();
    (took, recovery.snapshot_seq, recovery.records)
}

fn case(name: &'static str, root: &Path, expected_hash: u64, runs: usize) -> Case {
    let mut times = Vec::with_capacity(runs);
    let (mut snapshot_seq, mut replayed_records) = (None, 0);
    for run in 0..runs {
        let (took, seq, replayed) = recover_once(root, expected_hash);
        eprintln!("  {name}: run {}: {:.3} s", run + 1, took.as_secs_f64());
        times.push(took);
        (snapshot_seq, replayed_records) = (seq, replayed);
    }
    Case { name, replayed_records, snapshot_seq, times }
}

/// Runs the three cases on a written journal (the page cache warm from writing it).
pub fn measure(written: &Written, runs: usize) -> Vec<Case> {
    let snapshots = written.root.join("snapshots");
    let hidden = written.root.join("snapshots.hidden");
    std::fs::rename(&snapshots, &hidden).expect("hiding the snapshots");
    let from_start = case("no snapshot: replay every record", &written.root, written.end_hash, runs);
    // Recovery created empty snapshot directories in place of the hidden ones.
    std::fs::remove_dir_all(&snapshots).expect("removing the empty snapshot directories");
    std::fs::rename(&hidden, &snapshots).expect("restoring the snapshots");
    let from_mid = case("snapshot set before the tail, then the tail", &written.root, written.end_hash, runs);
    let (timestamp_ns, last_seq, engine_bytes, ledger_bytes) = &written.end_set;
    let stores = Stores::open(&written.root, &[(0, 1)], 2).expect("stores");
    stores.write_set(*timestamp_ns, &[(0, *last_seq, engine_bytes.clone())], ledger_bytes).expect("end set");
    let from_end = case("snapshot set at the end: load only", &written.root, written.end_hash, runs);
    vec![from_start, from_mid, from_end]
}

/// The markdown table of the cases.
pub fn report(written: &Written, cases: &[Case]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Journal: {} records ({} resting orders at the end), written in {:.2} s; snapshot set at sequence {} \
         ({} bytes of engine state), and at the end ({} bytes, serialized in {:.1} ms).\n\n",
        written.records,
        written.resting_orders,
        written.write_time.as_secs_f64(),
        written.mid_set_seq,
        written.mid_snapshot_bytes,
        written.end_snapshot_bytes,
        written.end_snapshot_time.as_secs_f64() * 1e3,
    ));
    out.push_str(
        "| recovery | snapshot at | records replayed | median (s) | min (s) | max (s) | replayed records/s |\n",
    );
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for case in cases {
        let median = case.median();
        let min = case.times.iter().min().copied().unwrap_or_default();
        let max = case.times.iter().max().copied().unwrap_or_default();
        let rate = if case.replayed_records > 0 {
            format!("{:.0}", case.replayed_records as f64 / median.as_secs_f64())
        } else {
            "-".to_string()
        };
        out.push_str(&format!(
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {} |\n",
            case.name,
            case.snapshot_seq.map_or("-".to_string(), |s| s.to_string()),
            case.replayed_records,
            median.as_secs_f64(),
            min.as_secs_f64(),
            max.as_secs_f64(),
            rate
        ));
    }
    out
}
