//! Writes a small sample venue journal to try `simex-journal` on:
//!
//! ```text
//! cargo run -p simex-tools --example sample-journal -- /tmp/simex-sample [COMMANDS] [SHARDS]
//! simex-journal verify /tmp/simex-sample
//! ```
//!
//! The journal is what the venue would write for a random but meaningful command stream (the
//! `simex-tests` stream generator: orders of every kind, cancels, replaces, deposits, halts, time
//! jumps): one engine per shard sharing one ledger, commands routed as the runtime routes them,
//! every event appended with `JournalWriter` as the codec encodes it. With several shards a
//! `venue.toml` is written too (BTC-USD assigned to shard 1).

use simex::runtime::{AtomicLedger, RuntimeConfig, ShardEngine, SharedLedger};
use simex_engine::codec::{encode_event, PAYLOAD_MAX};
use simex_engine::engine::ORDER_ID_SHARD_SHIFT;
use simex_engine::{CommandBody, EngineConfig, InstrumentTable};
use simex_journal::{Durability, JournalConfig, JournalWriter};
use simex_tests::stream::StreamGenerator;
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let root =
        PathBuf::from(args.next().ok_or_else(|| anyhow::anyhow!("usage: sample-journal DIR [COMMANDS] [SHARDS]"))?);
    let commands: usize = args.next().map_or(Ok(2_000), |a| a.parse())?;
    let shards: usize = args.next().map_or(Ok(2), |a| a.parse())?;
    std::fs::create_dir_all(&root)?;
    let instruments = InstrumentTable::default_table();
    let config = RuntimeConfig {
        shards,
        assignments: if shards > 1 { vec![("BTC-USD".to_string(), 1)] } else { Vec::new() },
        ..RuntimeConfig::default()
    };
    let shard_of = config.shard_of_symbols(&instruments)?;
    if shards > 1 {
        std::fs::write(root.join("venue.toml"), format!("shards = {shards}\n\n[assignments]\nBTC-USD = 1\n"))?;
    }
    let ledger = SharedLedger(AtomicLedger::new(1 << 16));
    let mut engines: Vec<ShardEngine> = (0..shards)
        .map(|k| {
            let owned_symbols = (shards > 1).then(|| RuntimeConfig::symbols_of(&shard_of, k));
            let config = EngineConfig { shard_id: k as u16, owned_symbols, ..EngineConfig::default() };
            ShardEngine::with_ledger(config, instruments.clone(), ledger.clone())
        })
        .collect();
    let journal =
        JournalConfig { segment_size_bytes: 256 << 10, durability: Durability::Batch, ..JournalConfig::default() };
    let mut writers = (0..shards)
        .map(|k| JournalWriter::create(&root, k as u32, 1_767_600_000 + k as u64, journal.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut generator = StreamGenerator::new(42, &instruments);
    let (mut events, mut payload) = (Vec::new(), [0u8; PAYLOAD_MAX]);
    for _ in 0..commands {
        let command = generator.next_command();
        let of_symbol = |symbol_id: u16| usize::from(shard_of.get(usize::from(symbol_id)).copied().unwrap_or(0));
        let targets: Vec<usize> = match command.body {
            CommandBody::NewOrder(order) | CommandBody::NewBracket { entry: order, .. } => {
                vec![of_symbol(order.symbol_id)]
            }
            CommandBody::Cancel { order_id, .. } | CommandBody::Replace { order_id, .. } => {
                vec![Some((order_id >> ORDER_ID_SHARD_SHIFT) as usize).filter(|&k| k < shards).unwrap_or(0)]
            }
            CommandBody::MassCancel { symbol_id: Some(symbol_id), .. }
            | CommandBody::SetReferencePrice { symbol_id, .. }
            | CommandBody::SetHalted { symbol_id, .. }
            | CommandBody::ReferenceQuote { symbol_id, .. }
            | CommandBody::ReferenceTrade { symbol_id, .. } => vec![of_symbol(symbol_id)],
            CommandBody::MassCancel { symbol_id: None, .. } | CommandBody::AdvanceTime => (0..shards).collect(),
            CommandBody::CreatePortfolio { .. }
            | CommandBody::AdjustCash { .. }
            | CommandBody::SetRiskLimits { .. } => {
                vec![0]
            }
        };
        for shard in targets {
            events.clear();
            engines[shard].apply(&command, &mut events);
            for event in &events {
                let (record_type, len) = encode_event(&event.body, &mut payload);
                writers[shard].append(record_type, event.seq, event.timestamp_ns, &payload[..len])?;
            }
            writers[shard].commit()?;
            generator.observe(&events);
        }
    }
    for (k, engine) in engines.iter().enumerate() {
        println!("shard {k}: {} records, state hash {:016x}", engine.last_seq(), engine.state_hash());
    }
    println!("wrote {}", root.display());
    Ok(())
}
