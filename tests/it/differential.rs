//! The fast book against the reference book.
//!
//! Both engines run the same matching, risk and ledger code; only the book differs. Fed the same
//! random command streams, they must emit identical events and reach identical state hashes. At
//! least 100,000 commands run on fixed seeds, plus one fresh seed each run (printed, and replayable
//! with `SIMEX_DIFF_SEED=<seed>`).

use simex_engine::*;
use simex_tests::stream::StreamGenerator;

fn run_differential(seed: u64, commands: usize) {
    let instruments = InstrumentTable::default_table();
    let config = EngineConfig { orders_max: 4096, ..EngineConfig::default() };
    let mut fast: Engine<FastBook, LocalLedger> =
        Engine::with_ledger(config.clone(), instruments.clone(), LocalLedger::new());
    let mut reference: Engine<ReferenceBook, LocalLedger> =
        Engine::with_ledger(config.clone(), instruments.clone(), LocalLedger::new());
    let mut generator = StreamGenerator::new(seed, &instruments);
    let (mut fast_events, mut reference_events, mut journal) = (Vec::new(), Vec::new(), Vec::new());
    let mut fills = 0usize;
    for index in 0..commands {
        let command = generator.next_command();
        fast_events.clear();
        reference_events.clear();
        fast.apply(&command, &mut fast_events);
        reference.apply(&command, &mut reference_events);
        assert_eq!(fast_events, reference_events, "seed {seed}: events differ at command {index}: {command:?}");
        fills += fast_events.iter().filter(|e| matches!(e.body, EventBody::Fill(_))).count();
        generator.observe(&fast_events);
        journal.extend_from_slice(&fast_events);
        if index % 500 == 0 {
            fast.check_invariants();
            reference.check_invariants();
            assert_eq!(fast.state_hash(), reference.state_hash(), "seed {seed}: state differs at command {index}");
        }
    }
    fast.check_invariants();
    assert_eq!(fast.state_hash(), reference.state_hash(), "seed {seed}: final state differs");
    assert!(fills > commands / 50, "seed {seed}: the stream traded too little to test matching ({fills} fills)");

    let mut replayed = Engine::new(config, instruments);
    for event in &journal {
        replayed.replay(event);
    }
    assert_eq!(replayed.state_hash(), fast.state_hash(), "seed {seed}: replay differs");
}

#[test]
fn fast_book_matches_reference_book_on_fixed_seeds() {
    for seed in [1, 2, 3, 4] {
        run_differential(seed, 25_000);
    }
}

#[test]
fn fast_book_matches_reference_book_on_a_fresh_seed() {
    let seed = match std::env::var("SIMEX_DIFF_SEED") {
        Ok(text) => text.parse().expect("SIMEX_DIFF_SEED is a u64"),
        Err(_) => {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_nanos()
                as u64
        }
    };
    println!("differential fresh seed: {seed} (rerun with SIMEX_DIFF_SEED={seed})");
    run_differential(seed, 20_000);
}
