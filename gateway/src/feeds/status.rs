//! What the feeds have done so far: counters and per-symbol freshness, readable from any thread.
//!
//! Counters are relaxed atomics (they are reports, not synchronisation). Per-symbol freshness sits
//! behind a mutex: it changes once per tick of a live feed, far from the engine's hot path.

use simex_engine::SymbolId;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct FeedStatus {
    counters: [AtomicU64; Counter::COUNT],
    symbols: Mutex<BTreeMap<SymbolId, SymbolFreshness>>,
}

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Ticks a source produced and handed to the pump.
    Ticks,
    /// Commands the runtime accepted.
    Submitted,
    /// Times the runtime answered `Busy` and the pump backed off.
    BusyRetries,
    /// Commands the engine rejected (a reference price it would not take).
    Rejected,
    /// Messages or rows that could not be read at all.
    Malformed,
    /// Ticks whose price or size could not be parsed (a typed `TickError`).
    BadNumbers,
    /// Ticks older than the symbol's last one, dropped.
    OutOfOrder,
    /// Ticks for symbols not in the instrument table or not subscribed.
    UnknownSymbol,
    /// Connections made to a live feed (the first one included).
    Connections,
}

impl Counter {
    const COUNT: usize = 9;
}

const _: () = assert!(Counter::Connections as usize + 1 == Counter::COUNT, "COUNT counts every counter");

/// Whether a symbol's live feed is current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SymbolFreshness {
    /// Source timestamp of the last accepted tick.
    pub last_tick_ns: i64,
    pub stale: bool,
}

impl FeedStatus {
    pub fn add(&self, counter: Counter, count: u64) {
        self.counters[counter as usize].fetch_add(count, Ordering::Relaxed);
    }

    pub fn count(&self, counter: Counter) -> u64 {
        self.counters[counter as usize].load(Ordering::Relaxed)
    }

    /// Records an accepted tick: the symbol is fresh again. Returns whether it had been stale.
    pub fn record_fresh(&self, symbol_id: SymbolId, last_tick_ns: i64) -> bool {
        let mut symbols = self.symbols.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let previous = symbols.insert(symbol_id, SymbolFreshness { last_tick_ns, stale: false });
        previous.is_some_and(|p| p.stale)
    }

    /// Marks a symbol stale (or known and stale if it never ticked). Returns whether it changed.
    pub fn mark_stale(&self, symbol_id: SymbolId) -> bool {
        let mut symbols = self.symbols.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = symbols.entry(symbol_id).or_insert(SymbolFreshness { last_tick_ns: 0, stale: false });
        !std::mem::replace(&mut entry.stale, true)
    }

    pub fn is_stale(&self, symbol_id: SymbolId) -> bool {
        let symbols = self.symbols.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        symbols.get(&symbol_id).is_some_and(|s| s.stale)
    }

    /// Symbols currently stale, in id order.
    pub fn stale_symbols(&self) -> Vec<SymbolId> {
        let symbols = self.symbols.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        symbols.iter().filter(|(_, s)| s.stale).map(|(&id, _)| id).collect()
    }

    pub fn freshness(&self, symbol_id: SymbolId) -> Option<SymbolFreshness> {
        let symbols = self.symbols.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        symbols.get(&symbol_id).copied()
    }
}
