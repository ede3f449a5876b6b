//! Fills in one shape for every engine, and the sinks adapters write them to.
//!
//! Engines name orders in their own ids and report trades in their own types; to compare them, each
//! adapter translates a fill to a [`Trade`] of client ids. Translation costs time, so the timed
//! passes use [`NoFills`], whose `COLLECTS = false` lets an adapter skip it entirely (and lets the
//! compiler remove the loop), while the verification pass records into a [`FillLog`].

/// One fill, engine-neutral: client order ids of both sides, the price and the quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trade {
    pub taker: u32,
    pub maker: u32,
    pub price: i64,
    pub qty: i64,
}

/// Where an adapter puts the fills of one command.
pub trait FillSink {
    /// Whether fills are kept. When false, adapters skip translating them.
    const COLLECTS: bool;
    fn fill(&mut self, trade: Trade);
}

/// Drops every fill; used while timing.
pub struct NoFills;

impl FillSink for NoFills {
    const COLLECTS: bool = false;

    #[inline(always)]
    fn fill(&mut self, _trade: Trade) {}
}

/// Every command's fills and whether it was rejected, in command order.
#[derive(Debug, Clone)]
pub struct FillLog {
    /// `trades[offsets[i]..offsets[i + 1]]` are command `i`'s fills.
    offsets: Vec<u32>,
    trades: Vec<Trade>,
    rejected: Vec<bool>,
}

impl Default for FillLog {
    fn default() -> FillLog {
        FillLog::new()
    }
}

impl FillLog {
    pub fn new() -> FillLog {
        FillLog { offsets: vec![0], trades: Vec::new(), rejected: Vec::new() }
    }

    /// Closes the current command: the fills pushed since the last call belong to it.
    pub fn end_command(&mut self, rejected: bool) {
        let end = u32::try_from(self.trades.len()).expect("fewer than 2^32 fills");
        self.offsets.push(end);
        self.rejected.push(rejected);
    }

    /// Number of commands recorded.
    pub fn len(&self) -> usize {
        self.rejected.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rejected.is_empty()
    }

    pub fn fills(&self, command: usize) -> &[Trade] {
        &self.trades[self.offsets[command] as usize..self.offsets[command + 1] as usize]
    }

    pub fn rejected(&self, command: usize) -> bool {
        self.rejected[command]
    }

    pub fn trade_count(&self) -> usize {
        self.trades.len()
    }

    pub fn traded_qty(&self) -> i64 {
        self.trades.iter().map(|t| t.qty).sum()
    }

    pub fn reject_count(&self) -> usize {
        self.rejected.iter().filter(|&&r| r).count()
    }

    /// Commands that produced at least one fill.
    pub fn commands_with_fills(&self) -> usize {
        self.offsets.windows(2).filter(|w| w[1] > w[0]).count()
    }
}

/// A run's fills, the warm-up and the measured commands apart.
#[derive(Debug, Clone, Default)]
pub struct RunLog {
    pub warmup: FillLog,
    pub measured: FillLog,
}

impl FillSink for FillLog {
    const COLLECTS: bool = true;

    fn fill(&mut self, trade: Trade) {
        self.trades.push(trade);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keeps_fills_per_command() {
        let mut log = FillLog::new();
        let t = |taker, maker| Trade { taker, maker, price: 10, qty: 1 };
        log.fill(t(2, 1));
        log.fill(t(2, 3));
        log.end_command(false);
        log.end_command(true);
        log.fill(t(5, 4));
        log.end_command(false);
        assert_eq!(log.len(), 3);
        assert_eq!(log.fills(0), &[t(2, 1), t(2, 3)]);
        assert!(log.fills(1).is_empty() && log.rejected(1));
        assert_eq!(log.fills(2), &[t(5, 4)]);
        assert_eq!((log.trade_count(), log.reject_count(), log.commands_with_fills()), (3, 1, 2));
    }
}
