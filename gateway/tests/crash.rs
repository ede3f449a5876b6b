//! Crash-only recovery: the venue is SIGKILLed under a steady order load at random moments and
//! restarted on the same journal, again and again. After every kill it must recover by itself; at
//! the end every order acknowledged before any kill must be in the journal, and the state the venue
//! recovers must equal an independent replay of the journal files.
//!
//! `SIMEX_CRASH_ITERATIONS` sets the number of kills (default 20; `tools/test --long` uses more).

use simex::runtime::{AtomicLedger, RuntimeConfig, ShardEngine, SharedLedger};
use simex_engine::codec::decode_event;
use simex_engine::{Engine, EngineConfig, EventBody, InstrumentTable, OrderId};
use simex_journal::JournalReader;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SHARDS: usize = 2;

fn venue(journal: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_simex"));
    command
        .args(["load", "--journal"])
        .arg(journal)
        .args(["--shards", &SHARDS.to_string(), "--segment-mib", "1"])
        // Snapshot sets often, so kills land while one is taken or written and recovery starts
        // from them; the journal is kept whole so the test can replay it independently.
        .args(["--snapshot-every-records", "2000", "--keep-journal"])
        .args(extra);
    command.stdout(Stdio::piped()).stderr(Stdio::null());
    command
}

/// Starts the venue, waits until it has recovered, lets it trade for `run_for`, then kills it;
/// returns the order ids it acknowledged. Panics if it does not recover by itself.
fn run_and_kill(journal: &Path, run_for: Duration) -> Vec<OrderId> {
    let mut child = venue(journal, &[]).spawn().expect("the venue starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (recovered_tx, recovered_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let (mut acks, mut recovered) = (Vec::new(), 0);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(id) = line.strip_prefix("ack ") {
                acks.push(id.parse().expect("order id"));
            } else if line.starts_with("recovered ") {
                recovered += 1;
                if recovered == SHARDS {
                    let _ = recovered_tx.send(());
                }
            }
        }
        acks
    });
    let recovered = recovered_rx.recv_timeout(Duration::from_secs(60));
    if recovered.is_err() {
        child.kill().ok();
        child.wait().ok();
        panic!("the venue did not recover by itself (exit: {:?})", child.try_wait());
    }
    let deadline = Instant::now() + run_for;
    while Instant::now() < deadline && child.try_wait().expect("wait").is_none() {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().ok(); // SIGKILL
    child.wait().expect("reaped");
    reader.join().expect("reader")
}

/// Replays the journal files into fresh engines sharing one ledger, shard 0 first.
fn replay(journal: &Path) -> (Vec<ShardEngine>, HashSet<OrderId>) {
    let instruments = InstrumentTable::default_table();
    let config = RuntimeConfig { shards: SHARDS, ..RuntimeConfig::default() };
    let shard_of_symbol = config.shard_of_symbols(&instruments).unwrap();
    let ledger = SharedLedger(AtomicLedger::new(config.portfolios_max));
    let mut accepted = HashSet::new();
    let engines = (0..SHARDS)
        .map(|shard| {
            let engine_config = EngineConfig {
                shard_id: shard as u16,
                owned_symbols: Some(RuntimeConfig::symbols_of(&shard_of_symbol, shard)),
                ..EngineConfig::default()
            };
            let mut engine: ShardEngine = Engine::with_ledger(engine_config, instruments.clone(), ledger.clone());
            let mut reader = JournalReader::open(journal, shard as u32, None).expect("journal opens");
            while let Some(record) = reader.next_record().expect("journal reads clean after recovery") {
                let event = decode_event(record.record_type, record.seq, record.timestamp_ns, record.payload).unwrap();
                if let EventBody::OrderAccepted(order) = event.body {
                    accepted.insert(order.order_id);
                }
                engine.replay(&event);
            }
            engine
        })
        .collect();
    (engines, accepted)
}

#[test]
fn every_acknowledged_order_survives_repeated_sigkills() {
    let iterations: u64 = std::env::var("SIMEX_CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let dir = std::env::temp_dir().join(format!("simex-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut acknowledged = Vec::new();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for iteration in 0..iterations {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Long enough to get past recovery and trade; short enough to kill mid-stream.
        let run_for = Duration::from_millis(20 + state % 300);
        let acks = run_and_kill(&dir, run_for);
        println!("iteration {iteration}: {} acknowledged before the kill", acks.len());
        acknowledged.extend(acks);
    }
    assert!(!acknowledged.is_empty(), "the load acknowledged nothing");

    // A clean start after the last kill: recovery must agree with an independent replay.
    let output = venue(&dir, &["--orders", "0"]).output().expect("the venue runs");
    assert!(output.status.success(), "the final start failed");
    let text = String::from_utf8(output.stdout).unwrap();
    // The final run recovers, appends a little (its portfolio commands) and shuts down cleanly: its
    // final state is exactly what the journal files now replay to.
    assert_eq!(text.lines().filter(|l| l.starts_with("recovered ")).count(), SHARDS);
    let recovered: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("final "))
        .map(|l| l.split("hash=").nth(1).expect("hash").to_string())
        .collect();
    let (engines, accepted) = replay(&dir);
    let replayed: Vec<String> = engines.iter().map(|e| format!("{:016x}", e.state_hash())).collect();
    assert_eq!(recovered, replayed, "the venue recovered a different state than the journal replays to");
    // With this much journal, snapshot sets were written, and the final start began from one.
    let records: u64 = engines.iter().map(|e| e.last_seq()).sum();
    let from_snapshot = text.lines().any(|l| l.starts_with("recovered ") && !l.contains("snapshot=none"));
    text.lines().filter(|l| l.starts_with("recovered ")).for_each(|l| println!("final start: {l}"));
    assert!(records < 10_000 || from_snapshot, "{records} records journaled, yet recovery used no snapshot:\n{text}");
    for engine in &engines {
        engine.check_invariants();
    }
    let missing: Vec<_> = acknowledged.iter().filter(|id| !accepted.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged orders are missing from the journal: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    println!("{iterations} kills, {} acknowledged orders, all in the journal", acknowledged.len());
    let _ = std::fs::remove_dir_all(&dir);
}
