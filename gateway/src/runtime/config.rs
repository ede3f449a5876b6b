//! Runtime configuration: how many shards, which symbols each owns, how threads wait and pin.

use super::journal::JournalSettings;
use super::wait::WaitStrategy;
use simex_engine::{EngineConfig, InstrumentTable, SymbolId};

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Number of shard threads (at least 1).
    pub shards: usize,
    /// Explicit symbol -> shard assignments; symbols not listed are spread round-robin.
    pub assignments: Vec<(String, usize)>,
    /// Number of submitters (producer threads, e.g. gateway threads) to create.
    pub submitters: usize,
    pub wait: WaitStrategy,
    /// Pin each shard thread to its own core.
    pub pin: bool,
    /// Slots in each inbound ring (a power of two).
    pub inbound_ring_slots: usize,
    /// Slots in each response and tap ring.
    pub outbound_ring_slots: usize,
    /// Names of the event taps to create (each receives every event of every shard).
    pub taps: Vec<String>,
    /// Portfolio ids below this exist in the shared ledger.
    pub portfolios_max: usize,
    /// How often shards hand over their latency histograms, in milliseconds.
    pub latency_interval_ms: u64,
    /// Template for each shard's engine (`shard_id` and `owned_symbols` are set per shard).
    pub engine: EngineConfig,
    /// Journal to recover from and write to; `None` runs without one (tests, benchmarks).
    pub journal: Option<JournalSettings>,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            shards: 1,
            assignments: Vec::new(),
            submitters: 1,
            wait: WaitStrategy::Park,
            pin: false,
            inbound_ring_slots: 4096,
            outbound_ring_slots: 1 << 16,
            taps: Vec::new(),
            portfolios_max: 1 << 16,
            latency_interval_ms: 1_000,
            engine: EngineConfig::default(),
            journal: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("shards must be between 1 and 1024, not {0}")]
    Shards(usize),
    #[error("submitters must be between 1 and 1024, not {0}")]
    Submitters(usize),
    #[error("inbound ring slots must be a power of two of at least 2, not {0}")]
    RingSlots(usize),
    #[error("symbol {0} in the shard assignments is not an instrument")]
    UnknownSymbol(String),
    #[error("symbol {symbol} is assigned to shard {shard}, but there are only {shards} shards")]
    NoSuchShard { symbol: String, shard: usize, shards: usize },
}

impl RuntimeConfig {
    /// The shard of every symbol, indexed by symbol id.
    pub fn shard_of_symbols(&self, instruments: &InstrumentTable) -> Result<Vec<u16>, ConfigError> {
        if self.shards == 0 || self.shards > 1024 {
            return Err(ConfigError::Shards(self.shards));
        }
        if self.submitters == 0 || self.submitters > 1024 {
            return Err(ConfigError::Submitters(self.submitters));
        }
        if self.inbound_ring_slots < 2 || !self.inbound_ring_slots.is_power_of_two() {
            return Err(ConfigError::RingSlots(self.inbound_ring_slots));
        }
        let mut shards: Vec<u16> = (0..instruments.len()).map(|id| (id % self.shards) as u16).collect();
        for (symbol, shard) in &self.assignments {
            let instrument = instruments.by_symbol(symbol).ok_or_else(|| ConfigError::UnknownSymbol(symbol.clone()))?;
            if *shard >= self.shards {
                return Err(ConfigError::NoSuchShard { symbol: symbol.clone(), shard: *shard, shards: self.shards });
            }
            shards[usize::from(instrument.symbol_id)] = *shard as u16;
        }
        Ok(shards)
    }

    /// The symbols shard `shard` owns.
    pub fn symbols_of(shard_of_symbols: &[u16], shard: usize) -> Vec<SymbolId> {
        (0..shard_of_symbols.len())
            .filter(|&id| usize::from(shard_of_symbols[id]) == shard)
            .map(|id| id as SymbolId)
            .collect()
    }
}
