//! `simex-journal` run as the operator runs it, on journals written here by `JournalWriter` from
//! engines driven by the random command stream of `simex-tests`, with events encoded by the codec
//! exactly as the venue journals them.
//!
//! The engines that write a journal are live engines sharing one `SharedLedger`, routed like the
//! runtime (orders by symbol, cancels by the shard in the order id, portfolio commands to shard 0),
//! so the state hashes they report at every command boundary are what the tool must rebuild.

use serde_json::Value;
use simex::runtime::{AtomicLedger, RuntimeConfig, ShardEngine, SharedLedger};
use simex_engine::codec::{encode_event, PAYLOAD_MAX};
use simex_engine::*;
use simex_journal::{Durability, JournalConfig, JournalReader, JournalWriter};
use simex_tests::stream::StreamGenerator;
use simex_tools::journal::replay::combined_hash;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_simex-journal");

/// The state of every shard after one command, as the live engines report it.
#[derive(Clone, Debug)]
struct Checkpoint {
    /// Last sequence of each shard.
    seqs: Vec<u64>,
    timestamp_ns: i64,
    hashes: Vec<u64>,
    combined: u64,
}

struct Journal {
    dir: TempDir,
    /// Every event of each shard, in sequence order.
    events: Vec<Vec<Event>>,
    checkpoints: Vec<Checkpoint>,
    ledger: SharedLedger,
}

impl Journal {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn root_str(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }
}

fn accounts(ledger: &SharedLedger) -> Vec<(u32, Account)> {
    let mut all = Vec::new();
    ledger.for_each_account(&mut |id, account| all.push((id, *account)));
    all
}

/// Options of a generated journal.
struct Spec {
    shards: usize,
    commands: usize,
    seed: u64,
    /// Run `simex-journal snapshot` after this many commands (the writers stay open, as a stopped
    /// venue's files would be).
    snapshot_after: Option<usize>,
    /// Write a `venue.toml` that assigns BTC-USD to shard 1 (else symbols are spread round-robin,
    /// the venue's default).
    venue_toml: bool,
}

impl Spec {
    fn new(shards: usize, commands: usize, seed: u64) -> Spec {
        Spec { shards, commands, seed, snapshot_after: None, venue_toml: shards > 1 }
    }
}

/// Writes a journal of `spec.commands` random commands, with the venue's symbol assignment.
fn generate(spec: Spec) -> Journal {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let instruments = InstrumentTable::default_table();
    let mut config = RuntimeConfig { shards: spec.shards, ..RuntimeConfig::default() };
    if spec.venue_toml {
        fs::write(root.join("venue.toml"), format!("shards = {}\n\n[assignments]\nBTC-USD = 1\n", spec.shards))
            .unwrap();
        config.assignments = vec![("BTC-USD".to_string(), 1)];
    }
    let shard_of = config.shard_of_symbols(&instruments).unwrap();
    let ledger = SharedLedger(AtomicLedger::new(1 << 16));
    let mut engines: Vec<ShardEngine> = (0..spec.shards)
        .map(|k| {
            let owned_symbols = Some(RuntimeConfig::symbols_of(&shard_of, k));
            let config = EngineConfig { shard_id: k as u16, owned_symbols, ..EngineConfig::default() };
            ShardEngine::with_ledger(config, instruments.clone(), ledger.clone())
        })
        .collect();
    let config = JournalConfig { segment_size_bytes: 16 << 10, buffer_bytes: 4096, durability: Durability::None };
    let mut writers: Vec<JournalWriter> = (0..spec.shards)
        .map(|k| JournalWriter::create(root, k as u32, 7_000 + k as u64, config.clone()).unwrap())
        .collect();
    let mut generator = StreamGenerator::new(spec.seed, &instruments);
    let mut events = vec![Vec::new(); spec.shards];
    let mut checkpoints = Vec::new();
    let mut out = Vec::new();
    let mut payload = [0u8; PAYLOAD_MAX];
    for index in 0..spec.commands {
        if spec.snapshot_after == Some(index) {
            let (code, stdout, stderr) = tool(&["snapshot", root.to_str().unwrap()]);
            assert_eq!(code, 0, "{stdout}{stderr}");
        }
        let command = generator.next_command();
        let of_symbol = |symbol_id: u16| usize::from(shard_of.get(usize::from(symbol_id)).copied().unwrap_or(0));
        let targets: Vec<usize> = match command.body {
            CommandBody::NewOrder(order) | CommandBody::NewBracket { entry: order, .. } => {
                vec![of_symbol(order.symbol_id)]
            }
            CommandBody::Cancel { order_id, .. } | CommandBody::Replace { order_id, .. } => {
                let shard = (order_id >> simex_engine::engine::ORDER_ID_SHARD_SHIFT) as usize;
                vec![if shard < spec.shards { shard } else { 0 }]
            }
            CommandBody::MassCancel { symbol_id: Some(symbol_id), .. }
            | CommandBody::SetReferencePrice { symbol_id, .. }
            | CommandBody::SetHalted { symbol_id, .. }
            | CommandBody::ReferenceQuote { symbol_id, .. }
            | CommandBody::ReferenceTrade { symbol_id, .. } => vec![of_symbol(symbol_id)],
            CommandBody::MassCancel { symbol_id: None, .. } | CommandBody::AdvanceTime => (0..spec.shards).collect(),
            CommandBody::CreatePortfolio { .. }
            | CommandBody::AdjustCash { .. }
            | CommandBody::SetRiskLimits { .. } => {
                vec![0]
            }
        };
        for shard in targets {
            out.clear();
            engines[shard].apply(&command, &mut out);
            for event in &out {
                let (record_type, len) = encode_event(&event.body, &mut payload);
                writers[shard].append(record_type, event.seq, event.timestamp_ns, &payload[..len]).unwrap();
            }
            writers[shard].commit().unwrap();
            generator.observe(&out);
            events[shard].extend_from_slice(&out);
        }
        let hashes: Vec<u64> = engines.iter().map(|e| e.state_hash()).collect();
        let shard_hashes: Vec<(u32, u64)> = hashes.iter().enumerate().map(|(k, h)| (k as u32, *h)).collect();
        checkpoints.push(Checkpoint {
            seqs: engines.iter().map(|e| e.last_seq()).collect(),
            timestamp_ns: command.timestamp_ns,
            hashes,
            combined: combined_hash(&shard_hashes, &accounts(&ledger)),
        });
    }
    drop(writers);
    Journal { dir, events, checkpoints, ledger }
}

fn tool(args: &[&str]) -> (i32, String, String) {
    let output = Process::new(BIN).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn json(args: &[&str]) -> Value {
    let (code, stdout, stderr) = tool(args);
    assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn shard_hash(state: &Value, shard: usize) -> String {
    state["shards"][shard]["state_hash"].as_str().unwrap().to_string()
}

fn hex(hash: u64) -> String {
    format!("{hash:016x}")
}

/// A test engine of shard 0 replaying `events` into a fresh shared ledger.
fn replayed(events: &[Event]) -> (ShardEngine, SharedLedger) {
    let ledger = SharedLedger(AtomicLedger::new(1 << 16));
    let mut engine =
        ShardEngine::with_ledger(EngineConfig::default(), InstrumentTable::default_table(), ledger.clone());
    for event in events {
        engine.replay(event);
    }
    (engine, ledger)
}

/// Where record `seq` of shard 0 is: its segment and offset.
fn locate(root: &Path, seq: u64) -> (PathBuf, u64) {
    let mut reader = JournalReader::open(root, 0, None).unwrap();
    while let Some(record) = reader.next_record().unwrap() {
        if record.seq == seq {
            let offset = record.offset_bytes;
            return (reader.segment_path().unwrap().to_path_buf(), offset);
        }
    }
    panic!("no record {seq}");
}

fn single(commands: usize, seed: u64) -> Journal {
    generate(Spec::new(1, commands, seed))
}

#[test]
fn verify_of_a_clean_journal_exits_0_with_a_summary_per_shard() {
    let journal = generate(Spec { snapshot_after: Some(1000), ..Spec::new(3, 1500, 1) });
    let (code, stdout, stderr) = tool(&["verify", journal.root_str()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for (shard, events) in journal.events.iter().enumerate() {
        let last = events.last().unwrap();
        let line = stdout.lines().find(|l| l.starts_with(&format!("shard {shard}: "))).unwrap();
        assert!(line.contains(&format!("{} records, sequences 1..{}", events.len(), last.seq)), "{line}");
        assert!(line.contains(&simex_tools::script::time::format_rfc3339(last.timestamp_ns)), "{line}");
        assert!(line.contains("segments"), "{line}");
        assert!(line.contains("2 snapshots") || line.contains("1 snapshot"), "{line}");
    }
    assert!(stdout.contains("restores: ledger and 3 shards"), "{stdout}");
    assert!(stdout.trim_end().ends_with("result: clean"), "{stdout}");
}

#[test]
fn a_flipped_bit_mid_log_exits_1_naming_segment_offset_and_sequence() {
    let journal = single(1500, 2);
    let seq = journal.events[0].len() as u64 / 3;
    let (segment, offset) = locate(journal.root(), seq);
    let file = OpenOptions::new().read(true).write(true).open(&segment).unwrap();
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, offset + 36).unwrap();
    file.write_all_at(&[byte[0] ^ 0x10], offset + 36).unwrap();

    let (code, stdout, stderr) = tool(&["verify", journal.root_str()]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let problem = stdout.lines().find(|l| l.contains("PROBLEM")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(problem.contains(&segment.display().to_string()), "{problem}");
    assert!(problem.contains(&format!("offset {offset}")), "{problem}");
    assert!(problem.contains(&format!("sequence {seq}")), "{problem}");
    assert!(problem.contains("record checksum mismatch"), "{problem}");
    assert!(stdout.contains("--allow-corruption"), "{stdout}");

    // Replay refuses to go past it, and says how far it can go.
    let (code, _, stderr) = tool(&["replay", journal.root_str()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&format!("--until {}", seq - 1)), "{stderr}");
    let before = json(&["replay", journal.root_str(), "--until", &(seq - 1).to_string(), "--json"]);
    let (engine, _) = replayed(&journal.events[0][..seq as usize - 1]);
    assert_eq!(shard_hash(&before, 0), hex(engine.state_hash()));

    // Dump prints what is before the damage and fails.
    let (code, stdout, stderr) = tool(&["dump", journal.root_str()]);
    assert_eq!(code, 1);
    assert_eq!(stdout.lines().count() as u64, seq - 1);
    assert!(stderr.contains(&format!("sequence {seq}")), "{stderr}");
}

#[test]
fn a_truncated_tail_is_reported_as_torn_and_exits_0() {
    let journal = single(600, 3);
    let last = journal.events[0].len() as u64;
    let (segment, offset) = locate(journal.root(), last);
    OpenOptions::new().write(true).open(&segment).unwrap().set_len(offset + 40).unwrap();

    let (code, stdout, stderr) = tool(&["verify", journal.root_str()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let torn = stdout.lines().find(|l| l.contains("TORN TAIL")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(torn.contains(&segment.display().to_string()), "{torn}");
    assert!(torn.contains(&format!("offset {offset}, sequence {last}")), "{torn}");
    assert!(
        torn.contains("torn tail (will be truncated on recovery)") || torn.contains("will be truncated on recovery")
    );
    assert!(stdout.contains("result: torn tail (will be truncated on recovery)"), "{stdout}");

    // Replay to the end stops at the torn tail with a warning: the state recovery would rebuild.
    let (code, stdout, stderr) = tool(&["replay", journal.root_str(), "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("torn tail"), "{stderr}");
    let state: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(state["shards"][0]["last_seq"], last - 1);
}

#[test]
fn replay_until_a_sequence_gives_the_hash_of_an_engine_replayed_to_it() {
    let journal = single(1200, 4);
    let events = &journal.events[0];
    for seq in [1, events.len() as u64 / 2, events.len() as u64 * 2 / 3 + 1, events.len() as u64] {
        let state = json(&["replay", journal.root_str(), "--until", &seq.to_string(), "--json"]);
        let (engine, ledger) = replayed(&events[..seq as usize]);
        assert_eq!(state["shards"][0]["last_seq"], seq);
        assert_eq!(shard_hash(&state, 0), hex(engine.state_hash()), "sequence {seq}");
        let combined = combined_hash(&[(0, engine.state_hash())], &accounts(&ledger));
        assert_eq!(state["combined_hash"], hex(combined), "sequence {seq}");
    }
    // At a command boundary it is also what the live engine reported.
    let checkpoint = &journal.checkpoints[700];
    let state = json(&["replay", journal.root_str(), "--until", &checkpoint.seqs[0].to_string(), "--json"]);
    assert_eq!(shard_hash(&state, 0), hex(checkpoint.hashes[0]));
    assert_eq!(state["combined_hash"], hex(checkpoint.combined));
    // And the text form prints the same hash.
    let (code, stdout, _) = tool(&["replay", journal.root_str(), "--until", &checkpoint.seqs[0].to_string()]);
    assert_eq!(code, 0);
    assert!(stdout.contains(&format!("state hash {}", hex(checkpoint.hashes[0]))), "{stdout}");
    assert!(stdout.contains(&format!("combined hash {}", hex(checkpoint.combined))), "{stdout}");
}

#[test]
fn two_replays_agree_and_a_snapshot_set_gives_the_same_state_as_the_journal() {
    let journal = generate(Spec { snapshot_after: Some(900), ..Spec::new(1, 1500, 5) });
    let first = json(&["replay", journal.root_str(), "--json"]);
    let second = json(&["replay", journal.root_str(), "--json"]);
    assert_eq!(first, second);
    assert!(first["shards"][0]["snapshot_seq"].is_u64(), "started from the snapshot set: {first}");
    let from_start = json(&["replay", journal.root_str(), "--json", "--no-snapshot"]);
    assert!(from_start["shards"][0]["snapshot_seq"].is_null());
    assert_eq!(first["combined_hash"], from_start["combined_hash"]);
    assert_eq!(first["portfolios"], from_start["portfolios"]);
    let end = journal.checkpoints.last().unwrap();
    assert_eq!(shard_hash(&first, 0), hex(end.hashes[0]));
    assert_eq!(first["combined_hash"], hex(end.combined));
    assert_eq!(journal.ledger.account(1).map(|a| a.cash_micros), first["portfolios"][1]["cash_micros"].as_i64());
    // A point before the snapshot replays from the start of the journal.
    let early = &journal.checkpoints[300];
    let state = json(&["replay", journal.root_str(), "--until", &early.seqs[0].to_string(), "--json"]);
    assert!(state["shards"][0]["snapshot_seq"].is_null());
    assert_eq!(state["combined_hash"], hex(early.combined));
}

#[test]
fn several_shards_replay_to_the_live_engines_state_at_a_time_and_at_a_sequence() {
    let journal = generate(Spec { snapshot_after: Some(1200), ..Spec::new(3, 2000, 6) });
    assert!(journal.events.iter().all(|events| events.len() > 100), "every shard has work");
    // A time cut right after a command whose successor is strictly later.
    let index =
        (800..1900).find(|&i| journal.checkpoints[i + 1].timestamp_ns > journal.checkpoints[i].timestamp_ns).unwrap();
    let checkpoint = &journal.checkpoints[index];
    let at = format!("{}ns", checkpoint.timestamp_ns);
    let state = json(&["replay", journal.root_str(), "--until", &at, "--json"]);
    for shard in 0..3 {
        assert_eq!(state["shards"][shard]["last_seq"], checkpoint.seqs[shard], "shard {shard}");
        assert_eq!(shard_hash(&state, shard), hex(checkpoint.hashes[shard]), "shard {shard}");
    }
    assert_eq!(state["combined_hash"], hex(checkpoint.combined));

    let end = journal.checkpoints.last().unwrap();
    let state = json(&["replay", journal.root_str(), "--json"]);
    assert_eq!(state["combined_hash"], hex(end.combined));
    let without = json(&["replay", journal.root_str(), "--json", "--no-snapshot"]);
    assert_eq!(without["combined_hash"], hex(end.combined));

    // A sequence needs its shard; with it, the other shards are cut at that record's time.
    let (code, _, stderr) = tool(&["replay", journal.root_str(), "--until", "10"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--shard"), "{stderr}");
    let seq = checkpoint.seqs[1];
    let state = json(&["replay", journal.root_str(), "--until", &seq.to_string(), "--shard", "1", "--json"]);
    assert_eq!(state["shards"][1]["last_seq"], seq);
    assert_eq!(shard_hash(&state, 1), hex(checkpoint.hashes[1]));
}

fn involves(event: &Event, portfolio: u32) -> bool {
    match event.body {
        EventBody::PortfolioCreated { portfolio_id, .. }
        | EventBody::CashAdjusted { portfolio_id, .. }
        | EventBody::RiskLimitsSet { portfolio_id, .. }
        | EventBody::Rejected { portfolio_id, .. }
        | EventBody::OrderCancelled { portfolio_id, .. }
        | EventBody::OrderReplaced { portfolio_id, .. }
        | EventBody::OrderTriggered { portfolio_id, .. } => portfolio_id == portfolio,
        EventBody::OrderAccepted(a) => a.portfolio_id == portfolio,
        EventBody::ConditionalAccepted(c) => c.portfolio_id == portfolio,
        EventBody::Fill(f) => f.maker_portfolio_id == portfolio || f.taker_portfolio_id == portfolio,
        _ => false,
    }
}

fn symbol_of(event: &Event) -> Option<u16> {
    match event.body {
        EventBody::OrderAccepted(a) => Some(a.symbol_id),
        EventBody::ConditionalAccepted(c) => Some(c.symbol_id),
        EventBody::Fill(f) => Some(f.symbol_id),
        EventBody::OrderCancelled { symbol_id, .. }
        | EventBody::OrderReplaced { symbol_id, .. }
        | EventBody::OrderTriggered { symbol_id, .. }
        | EventBody::ReferencePriceSet { symbol_id, .. }
        | EventBody::HaltedSet { symbol_id, .. } => Some(symbol_id),
        _ => None,
    }
}

#[test]
fn dump_filters_by_portfolio_symbol_type_and_sequence() {
    let journal = single(1000, 7);
    let events = &journal.events[0];
    let root = journal.root_str();

    let (code, stdout, stderr) = tool(&["dump", root, "--json", "--portfolio", "2"]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), events.iter().filter(|e| involves(e, 2)).count());
    for line in &lines {
        let mentions = ["portfolio", "maker_portfolio", "taker_portfolio"].iter().any(|k| line[k] == 2);
        assert!(mentions, "{line}");
    }

    let aapl = InstrumentTable::default_table().by_symbol("AAPL").unwrap().symbol_id;
    let (code, stdout, _) = tool(&["dump", root, "--symbol", "AAPL"]);
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), events.iter().filter(|e| symbol_of(e) == Some(aapl)).count());
    assert!(stdout.lines().all(|l| l.contains(" symbol=AAPL ")), "{stdout}");

    let (code, stdout, _) = tool(&["dump", root, "--type", "fill", "--from-seq", "100", "--to-seq", "600"]);
    assert_eq!(code, 0);
    let fills = events[99..600].iter().filter(|e| matches!(e.body, EventBody::Fill(_))).count();
    assert!(fills > 0);
    assert_eq!(stdout.lines().count(), fills);
    assert!(stdout.lines().all(|l| l.contains(" fill ") && l.contains(" notional=")), "{stdout}");

    let (code, stdout, _) =
        tool(&["dump", root, "--portfolio", "1", "--symbol", "BTC-USD", "--type", "order_accepted"]);
    assert_eq!(code, 0);
    let btc = InstrumentTable::default_table().by_symbol("BTC-USD").unwrap().symbol_id;
    let expected = events
        .iter()
        .filter(|e| matches!(e.body, EventBody::OrderAccepted(a) if a.portfolio_id == 1 && a.symbol_id == btc))
        .count();
    assert_eq!(stdout.lines().count(), expected);

    let from = simex_tools::script::time::format_rfc3339(events[200].timestamp_ns);
    let (code, stdout, _) = tool(&["dump", root, "--from", &from, "--to", &events[300].timestamp_ns.to_string()]);
    assert_eq!(code, 0);
    let in_range = events
        .iter()
        .filter(|e| e.timestamp_ns >= events[200].timestamp_ns && e.timestamp_ns <= events[300].timestamp_ns)
        .count();
    assert_eq!(stdout.lines().count(), in_range);

    let (code, _, stderr) = tool(&["dump", root, "--type", "trade"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown event type `trade`"), "{stderr}");
    let (code, _, stderr) = tool(&["dump", root, "--symbol", "NOPE"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown symbol `NOPE`"), "{stderr}");
}

#[test]
fn diff_shows_a_changed_cash_line() {
    let journal = single(800, 8);
    let events = &journal.events[0];
    let (seq, portfolio, delta) = events
        .iter()
        .find_map(|e| match e.body {
            EventBody::CashAdjusted { portfolio_id, delta_micros } if delta_micros != 0 => {
                Some((e.seq, portfolio_id, delta_micros))
            }
            _ => None,
        })
        .expect("a cash adjustment");
    let (a, b) = ((seq - 1).to_string(), seq.to_string());
    let (code, stdout, stderr) = tool(&["replay", journal.root_str(), "--diff", &a, &b]);
    assert_eq!(code, 0, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("portfolio {portfolio} cash: ")))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.ends_with(&format!("({}{})", if delta > 0 { "+" } else { "" }, decimal::format_micros(delta))),
        "{line}"
    );
    assert!(stdout.contains("shard 0 last sequence: "), "{stdout}");

    let doc = json(&["replay", journal.root_str(), "--diff", &a, &b, "--json"]);
    let changes = doc["changes"].as_array().unwrap();
    assert!(changes.iter().any(|c| c["subject"] == format!("portfolio {portfolio}") && c["field"] == "cash"));

    let (code, stdout, _) = tool(&["replay", journal.root_str(), "--diff", &b, &b]);
    assert_eq!(code, 0);
    assert!(stdout.contains("no differences"), "{stdout}");
}

#[test]
fn stats_count_every_type() {
    let journal = single(700, 9);
    let events = &journal.events[0];
    let doc = json(&["stats", journal.root_str(), "--json"]);
    assert_eq!(doc["total"]["records"], events.len() as u64);
    let fills = events.iter().filter(|e| matches!(e.body, EventBody::Fill(_))).count() as u64;
    let by_type = doc["total"]["by_type"].as_array().unwrap();
    let fill = by_type.iter().find(|t| t["type"] == "fill").unwrap();
    assert_eq!(fill["records"], fills);
    let days: u64 = doc["total"]["by_day"].as_array().unwrap().iter().map(|d| d["records"].as_u64().unwrap()).sum();
    assert_eq!(days, events.len() as u64);
    let (code, stdout, _) = tool(&["stats", journal.root_str()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("records/s"), "{stdout}");
}

#[test]
fn snapshot_writes_a_set_that_verify_accepts_and_replay_uses() {
    let journal = generate(Spec::new(3, 600, 10));
    let (code, stdout, stderr) = tool(&["snapshot", journal.root_str()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stdout.lines().filter(|l| l.starts_with("wrote ")).count(), 4, "{stdout}");
    assert!(stdout.contains("snapshots/shard-65535/snapshot-"), "{stdout}");
    let end = journal.checkpoints.last().unwrap();
    assert!(stdout.contains(&format!("combined hash {}", hex(end.combined))), "{stdout}");
    let (code, stdout, _) = tool(&["verify", journal.root_str()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("restores: ledger and 3 shards"), "{stdout}");
    let state = json(&["replay", journal.root_str(), "--json"]);
    assert_eq!(state["shards"][0]["snapshot_seq"], end.seqs[0]);
    assert_eq!(state["combined_hash"], hex(end.combined));

    // A snapshot that rots is a warning; replay falls back to the journal and gets the same state.
    let snapshot = fs::read_dir(journal.root().join("snapshots/shard-1")).unwrap().next().unwrap().unwrap().path();
    let file = OpenOptions::new().write(true).open(&snapshot).unwrap();
    file.write_all_at(&[0xff], 100).unwrap();
    let (code, stdout, _) = tool(&["verify", journal.root_str()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains(&format!("warning: snapshot {}: payload checksum mismatch", snapshot.display())),
        "{stdout}"
    );
    let state = json(&["replay", journal.root_str(), "--json"]);
    assert!(state["shards"][0]["snapshot_seq"].is_null());
    assert_eq!(state["combined_hash"], hex(end.combined));
}

#[test]
fn bad_paths_and_arguments_exit_2_with_a_clear_message() {
    let (code, stdout, stderr) = tool(&["verify", "/nonexistent/simex/journal"]);
    assert_eq!(code, 2, "{stdout}");
    assert!(stderr.contains("/nonexistent/simex/journal"), "{stderr}");
    assert!(stderr.starts_with("simex-journal: error: "), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");

    let empty = tempfile::tempdir().unwrap();
    let (code, _, stderr) = tool(&["replay", empty.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("holds no journal"), "{stderr}");

    let journal = single(50, 11);
    let (code, _, stderr) = tool(&["replay", journal.root_str(), "--until", "later"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not a point"), "{stderr}");
    let (code, _, stderr) = tool(&["replay", journal.root_str(), "--until", "999999"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("past the end"), "{stderr}");
    let (code, _, stderr) = tool(&["dump", journal.root_str(), "--shard", "4"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no shard 4"), "{stderr}");
}

#[test]
fn a_corrupt_segment_header_names_the_file() {
    let journal = single(400, 12);
    let (segment, _) = locate(journal.root(), 1);
    let file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.write_all_at(b"XXXX", 0).unwrap();
    let (code, stdout, _) = tool(&["verify", journal.root_str()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(&segment.display().to_string()), "{stdout}");
    assert!(stdout.contains("wrong magic"), "{stdout}");
}

#[test]
fn without_venue_toml_symbols_are_assigned_as_the_venue_does_by_default() {
    // Round-robin over 4 shards: AAPL and EUR-USD on shard 0, BTC-USD on shard 2, shards 1 and 3 idle.
    let journal = generate(Spec { venue_toml: false, ..Spec::new(4, 800, 13) });
    assert!(journal.events[2].len() > 50 && journal.events[1].is_empty());
    let (code, stdout, _) = tool(&["verify", journal.root_str()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("shard 2: NVDA BTC-USD USD-JPY;"), "{stdout}");
    assert!(!stdout.contains("does not own"), "{stdout}");
    let end = journal.checkpoints.last().unwrap();
    let state = json(&["replay", journal.root_str(), "--json"]);
    for shard in 0..4 {
        assert_eq!(shard_hash(&state, shard), hex(end.hashes[shard]), "shard {shard}");
    }
    assert_eq!(state["combined_hash"], hex(end.combined));

    // A venue.toml that disagrees with the journal is noticed.
    fs::write(journal.root().join("venue.toml"), "shards = 4\n[assignments]\nBTC-USD = 3\n").unwrap();
    let (code, stdout, _) = tool(&["verify", journal.root_str()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("warning: events for BTC-USD, which this shard does not own under venue.toml"), "{stdout}");
    fs::write(journal.root().join("venue.toml"), "shards = 2\n").unwrap();
    let (code, _, stderr) = tool(&["verify", journal.root_str()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("says 2 shards, but"), "{stderr}");
}

#[test]
fn records_that_verify_but_make_no_sense_are_reported_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let config = JournalConfig { durability: Durability::None, ..JournalConfig::default() };
    let mut writer = JournalWriter::create(dir.path(), 0, 1, config).unwrap();
    let mut payload = [0u8; PAYLOAD_MAX];
    let bodies = [
        EventBody::PortfolioCreated { portfolio_id: 1, cash_micros: 1_000_000 },
        EventBody::OrderCancelled {
            order_id: 99,
            portfolio_id: 1,
            symbol_id: 0,
            qty_lots: 1,
            reason: CancelReason::User,
        },
    ];
    for (index, body) in bodies.iter().enumerate() {
        let (record_type, len) = encode_event(body, &mut payload);
        writer.append(record_type, index as u64 + 1, 1_767_623_400_000_000_000, &payload[..len]).unwrap();
    }
    // A frame that verifies, of a known type, with the wrong payload length.
    writer.append(6, 3, 1_767_623_400_000_000_001, &[0u8; 72]).unwrap();
    writer.commit().unwrap();
    drop(writer);

    let (code, stdout, _) = tool(&["verify", root]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("sequence 3: record of type 6 does not decode as an event"), "{stdout}");

    let (code, _, stderr) = tool(&["replay", root, "--until", "2"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("sequence 2: the engine cannot apply this order_cancelled event"), "{stderr}");
    assert!(stderr.contains("00000000000000000001.seg"), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    let (code, stdout, _) = tool(&["replay", root, "--until", "1"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("portfolio 1: cash 1.000000"), "{stdout}");
}

/// Drives a journaled `Runtime` with `commands` commands of the random stream, one at a time.
fn drive(submitter: &mut simex::runtime::Submitter, generator: &mut StreamGenerator, commands: usize) {
    for _ in 0..commands {
        let events = submitter.execute(generator.next_command().body);
        generator.observe(&events);
    }
}

#[test]
fn the_venue_snapshots_and_prunes_its_journal_and_recovers_what_the_tool_replays() {
    use simex::runtime::{JournalSettings, Runtime, SnapshotSettings};
    let dir = tempfile::tempdir().unwrap();
    let journal = JournalSettings {
        durability: Durability::None,
        segment_size_bytes: 16 << 10,
        snapshots: Some(SnapshotSettings { every_records: 0, every_ms: 0, ..SnapshotSettings::default() }),
        ..JournalSettings::new(dir.path())
    };
    let config = RuntimeConfig { shards: 2, journal: Some(journal), ..RuntimeConfig::default() };
    let instruments = InstrumentTable::default_table();
    let mut generator = StreamGenerator::new(11, &instruments);
    let mut started = Runtime::start(config.clone(), instruments.clone()).unwrap();
    // Two sets while it runs (asked for, so that the test does not depend on the machine's speed),
    // and the one at shutdown: pruning keeps what the older of the two newest needs.
    let ledger_snapshots = dir.path().join("snapshots").join("shard-65535");
    for _ in 0..2 {
        drive(&mut started.submitters[0], &mut generator, 1000);
        let before = walk(&ledger_snapshots);
        started.runtime.request_snapshot();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while walk(&ledger_snapshots) == before {
            assert!(std::time::Instant::now() < deadline, "no snapshot set appeared");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    drive(&mut started.submitters[0], &mut generator, 1000);
    drop(started.submitters);
    let engines = started.runtime.shutdown();
    let hashes: Vec<String> = engines.iter().map(|e| hex(e.state_hash())).collect();
    let seqs: Vec<u64> = engines.iter().map(|e| e.last_seq()).collect();

    // Sets were written while the venue ran and at shutdown, and segments before them pruned.
    let first_segment = dir.path().join("shard-0").join(simex_journal::segment_file_name(1));
    let listing = |path: &Path| {
        let mut names: Vec<String> = walk(path);
        names.sort();
        names.join("\n")
    };
    assert!(!first_segment.exists(), "shard 0's first segment was pruned:\n{}", listing(dir.path()));
    let (code, stdout, stderr) = tool(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    // The tool rebuilds the venue's state from the newest set and what follows it.
    let state = json(&["replay", dir.path().to_str().unwrap(), "--json"]);
    for shard in 0..2 {
        assert_eq!(shard_hash(&state, shard), hashes[shard], "shard {shard}");
        assert_eq!(
            state["shards"][shard]["snapshot_seq"],
            seqs[shard],
            "the shutdown set holds everything:\n{}",
            listing(dir.path())
        );
    }
    // Without snapshots the pruned journal cannot be replayed, and the tool says so.
    let (code, _, stderr) = tool(&["replay", dir.path().to_str().unwrap(), "--no-snapshot"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("pruned"), "{stderr}");

    // A restart recovers from the shutdown set without replaying anything; then it trades on, and
    // its next recovery (from a set taken while it ran, plus the journal after it) agrees again.
    let mut started = Runtime::start(config.clone(), instruments.clone()).unwrap();
    for (shard, recovery) in started.runtime.recovery().iter().enumerate() {
        assert_eq!(recovery.snapshot_seq, Some(seqs[shard]));
        assert_eq!(recovery.records, 0);
        assert_eq!(hex(recovery.state_hash), hashes[shard]);
    }
    drive(&mut started.submitters[0], &mut generator, 1000);
    drop(started.submitters);
    let engines = started.runtime.shutdown();
    let hashes: Vec<String> = engines.iter().map(|e| hex(e.state_hash())).collect();
    let no_final = SnapshotSettings { on_shutdown: false, ..SnapshotSettings::default() };
    let state = json(&["replay", dir.path().to_str().unwrap(), "--json"]);
    let restarted = Runtime::start(
        RuntimeConfig {
            journal: Some(JournalSettings { snapshots: Some(no_final), ..config.journal.clone().unwrap() }),
            ..config
        },
        instruments,
    )
    .unwrap();
    for (shard, recovery) in restarted.runtime.recovery().iter().enumerate() {
        assert_eq!(hex(recovery.state_hash), hashes[shard], "shard {shard}");
        assert_eq!(shard_hash(&state, shard), hashes[shard], "shard {shard}");
    }
    drop(restarted.submitters);
    restarted.runtime.shutdown();
}

fn walk(path: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir(path).unwrap().flatten() {
        if entry.path().is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push(format!("{} {}", entry.path().display(), entry.metadata().unwrap().len()));
        }
    }
    out
}
