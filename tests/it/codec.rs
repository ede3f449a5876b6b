//! The journal's two formats on random streams.
//!
//! - Events: every event of long random streams encodes and decodes to itself, and replaying the
//!   decoded events rebuilds the live engine's state hash.
//! - Snapshots: at many points of many streams, an engine built from a snapshot has the live
//!   engine's state hash, passes `check_invariants`, re-encodes to the same bytes, and then answers
//!   the same following commands with the same events. The following commands reach everything a
//!   snapshot restores by rebuilding rather than storing: time priority within levels, mass cancel
//!   order (the per-portfolio lists), duplicate client ids (their index) and expiry (the heap).
//!   Snapshots restore into the other book implementation too, and, with a shared ledger, together
//!   with the ledger's own snapshot.

use simex::runtime::{AtomicLedger, SharedLedger};
use simex_engine::codec::{decode_event, encode_event, record_type, PAYLOAD_MAX};
use simex_engine::*;
use simex_tests::stream::StreamGenerator;
use std::collections::BTreeSet;

fn config() -> EngineConfig {
    EngineConfig { shard_id: 2, orders_max: 4096, ..EngineConfig::default() }
}

#[test]
fn every_event_of_random_streams_round_trips_and_replays() {
    let instruments = InstrumentTable::default_table();
    let mut types_seen = BTreeSet::new();
    let mut event_count = 0usize;
    for seed in 1..=4 {
        let mut live = Engine::new(config(), instruments.clone());
        let mut replayed = Engine::new(config(), instruments.clone());
        // Even seeds also send reference data, so simulated fills and reference events occur.
        let generator = StreamGenerator::new(seed, &instruments);
        let mut generator = if seed % 2 == 0 { generator.with_reference_data() } else { generator };
        let mut events = Vec::new();
        let mut payload = [0u8; PAYLOAD_MAX];
        for _ in 0..25_000 {
            events.clear();
            live.apply(&generator.next_command(), &mut events);
            generator.observe(&events);
            for event in &events {
                let (record_type, len) = encode_event(&event.body, &mut payload);
                let decoded = decode_event(record_type, event.seq, event.timestamp_ns, &payload[..len])
                    .unwrap_or_else(|e| panic!("seed {seed}: {event:?} does not decode: {e}"));
                assert_eq!(&decoded, event, "seed {seed}");
                replayed.replay(&decoded);
                types_seen.insert(record_type);
            }
            event_count += events.len();
        }
        assert_eq!(replayed.state_hash(), live.state_hash(), "seed {seed}: replay of decoded events differs");
    }
    assert_eq!(types_seen.into_iter().collect::<Vec<_>>(), record_type::ALL, "every event type occurred");
    assert!(event_count > 100_000);
}

/// An engine restored from a snapshot, run beside the live one for a while.
struct Twin<B: OrderBook, L: Ledger> {
    engine: Engine<B, L>,
    commands_left: usize,
    taken_at: usize,
}

impl<B: OrderBook, L: Ledger> Twin<B, L> {
    /// Applies the live engine's command and compares; false once it has run its course.
    fn follow(&mut self, seed: u64, command: &Command, expected: &[Event], live_hash: u64) -> bool {
        let mut events = Vec::new();
        self.engine.apply(command, &mut events);
        let context = format!("seed {seed}, snapshot at command {}", self.taken_at);
        assert_eq!(events, expected, "{context}: events differ for {command:?}");
        assert_eq!(self.engine.state_hash(), live_hash, "{context}: state differs");
        self.commands_left -= 1;
        self.commands_left > 0
    }
}

const FOLLOW_COMMANDS: usize = 400;

fn restore<B: OrderBook>(bytes: &[u8], instruments: &InstrumentTable) -> Engine<B, LocalLedger> {
    Engine::from_snapshot(config(), instruments.clone(), LocalLedger::new(), bytes).expect("snapshot restores")
}

/// How often twins were compared on what their restoration rebuilt.
#[derive(Default, Debug)]
struct Followed {
    fills: usize,
    mass_cancels: usize,
    expiries: usize,
    duplicate_client_ids: usize,
}

fn snapshots_along_a_stream(seed: u64, commands: usize, followed: &mut Followed) {
    let instruments = InstrumentTable::default_table();
    let mut live = Engine::new(config(), instruments.clone());
    let mut generator = StreamGenerator::new(seed, &instruments);
    let mut fast_twins: Vec<Twin<FastBook, LocalLedger>> = Vec::new();
    let mut reference_twins: Vec<Twin<ReferenceBook, LocalLedger>> = Vec::new();
    let mut events = Vec::new();
    let mut snapshots = 0;
    let mut largest = 0;
    for index in 0..commands {
        // Snapshot at irregular points, often enough that several twins run at once.
        if index % 97 == 0 || index % 131 == 5 {
            let bytes = live.snapshot_bytes();
            let restored: Engine<FastBook, LocalLedger> = restore(&bytes, &instruments);
            restored.check_invariants();
            assert_eq!(restored.state_hash(), live.state_hash(), "seed {seed}: restored state differs at {index}");
            assert_eq!(restored.snapshot_bytes(), bytes, "seed {seed}: snapshot is not canonical at {index}");
            fast_twins.push(Twin { engine: restored, commands_left: FOLLOW_COMMANDS, taken_at: index });
            if index % 3 == 0 {
                let restored: Engine<ReferenceBook, LocalLedger> = restore(&bytes, &instruments);
                restored.check_invariants();
                assert_eq!(restored.state_hash(), live.state_hash());
                reference_twins.push(Twin { engine: restored, commands_left: FOLLOW_COMMANDS, taken_at: index });
            }
            snapshots += 1;
            largest = largest.max(bytes.len());
        }
        let command = generator.next_command();
        events.clear();
        live.apply(&command, &mut events);
        generator.observe(&events);
        let hash = live.state_hash();
        if !fast_twins.is_empty() {
            let cancels = events.iter().filter(|e| matches!(e.body, EventBody::OrderCancelled { .. })).count();
            followed.mass_cancels += usize::from(matches!(command.body, CommandBody::MassCancel { .. }) && cancels > 1);
            for event in &events {
                match event.body {
                    EventBody::Fill(_) => followed.fills += 1,
                    EventBody::OrderCancelled { reason: CancelReason::Expired, .. } => followed.expiries += 1,
                    EventBody::Rejected { reason: RejectReason::DuplicateClientOrderId, .. } => {
                        followed.duplicate_client_ids += 1
                    }
                    _ => {}
                }
            }
        }
        fast_twins.retain_mut(|twin| twin.follow(seed, &command, &events, hash));
        reference_twins.retain_mut(|twin| twin.follow(seed, &command, &events, hash));
    }
    assert!(snapshots > commands / 60 && largest > 2_000, "seed {seed}: {snapshots} snapshots, largest {largest}");
}

#[test]
fn snapshots_restore_the_same_state_and_the_same_future() {
    let mut followed = Followed::default();
    for seed in 1..=6 {
        snapshots_along_a_stream(seed, 8_000, &mut followed);
    }
    assert!(
        followed.fills > 1_000
            && followed.mass_cancels > 5
            && followed.expiries > 5
            && followed.duplicate_client_ids > 5,
        "{followed:?}"
    );
    println!("restored engines followed the live one through {followed:?}");
}

fn accounts(ledger: &impl Ledger) -> Vec<(PortfolioId, Account)> {
    let mut all = Vec::new();
    ledger.for_each_account(&mut |portfolio_id, account| all.push((portfolio_id, *account)));
    all
}

#[test]
fn a_shared_ledger_is_snapshotted_beside_the_engine() {
    const PORTFOLIOS_MAX: usize = 64;
    let instruments = InstrumentTable::default_table();
    for seed in [11, 12] {
        let ledger = SharedLedger(AtomicLedger::new(PORTFOLIOS_MAX));
        let mut live: Engine<FastBook, SharedLedger> =
            Engine::with_ledger(config(), instruments.clone(), ledger.clone());
        let mut generator = StreamGenerator::new(seed, &instruments);
        let mut twins: Vec<(Twin<FastBook, SharedLedger>, SharedLedger)> = Vec::new();
        let mut events = Vec::new();
        for index in 0..6_000 {
            if index % 250 == 0 {
                let ledger_bytes = ledger_snapshot_bytes(&ledger);
                let bytes = live.snapshot_bytes();
                let mut restored_ledger = SharedLedger(AtomicLedger::new(PORTFOLIOS_MAX));
                restore_ledger(&mut restored_ledger, &ledger_bytes).expect("ledger restores");
                assert_eq!(accounts(&restored_ledger), accounts(&ledger));
                // The engine snapshot of a shared ledger holds no accounts, and needs the ledger.
                assert!(matches!(
                    Engine::<FastBook, LocalLedger>::from_snapshot(
                        config(),
                        instruments.clone(),
                        LocalLedger::new(),
                        &bytes
                    ),
                    Err(SnapshotError::ConfigMismatch(_))
                ));
                let restored: Engine<FastBook, SharedLedger> =
                    Engine::from_snapshot(config(), instruments.clone(), restored_ledger.clone(), &bytes)
                        .expect("snapshot restores");
                restored.check_invariants();
                assert_eq!(restored.state_hash(), live.state_hash());
                twins.push((
                    Twin { engine: restored, commands_left: FOLLOW_COMMANDS, taken_at: index },
                    restored_ledger,
                ));
            }
            let command = generator.next_command();
            events.clear();
            live.apply(&command, &mut events);
            generator.observe(&events);
            let hash = live.state_hash();
            let live_accounts = accounts(&ledger);
            twins.retain_mut(|(twin, twin_ledger)| {
                let going_on = twin.follow(seed, &command, &events, hash);
                assert_eq!(accounts(twin_ledger), live_accounts, "seed {seed}: accounts differ");
                going_on
            });
        }
    }
}
