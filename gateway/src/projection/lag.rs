//! How far PostgreSQL is behind the journal, for `/metrics` and operators.
//!
//! The projector publishes a fresh [`LagReport`] after every poll; readers take a copy. Records
//! behind is exact: the projector follows the journal's head with a second tail that only counts
//! records. Time behind is venue time: the timestamp of the newest journal record minus that of the
//! newest record committed to PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One shard's position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardLag {
    pub shard: u32,
    /// Last sequence committed to PostgreSQL (0: none yet).
    pub committed_seq: u64,
    /// Last sequence seen in the journal.
    pub journal_seq: u64,
    pub records_behind: u64,
    /// Venue time between the newest journal record and the newest committed one, in ns.
    pub time_behind_ns: i64,
    /// Why this shard cannot advance (pruned journal, corruption, another epoch), if it cannot.
    pub blocked: Option<String>,
}

/// The projection's state as a whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LagReport {
    pub shards: Vec<ShardLag>,
    /// The accounts journal's position (its `shard` is 0: it is one log), when it is projected.
    pub accounts: Option<ShardLag>,
    /// Whether the projector has a working connection.
    pub connected: bool,
    /// The last PostgreSQL or journal error, kept until a later flush succeeds.
    pub last_error: Option<String>,
    /// Transactions committed since start.
    pub flushes: u64,
    /// Journal records committed since start.
    pub records_projected: u64,
    /// Failed attempts (connect or write) since start.
    pub failures: u64,
    /// Wall-clock time of the last commit.
    pub last_flush_at: Option<SystemTime>,
}

impl LagReport {
    /// Records behind, summed over shards.
    pub fn records_behind(&self) -> u64 {
        self.shards.iter().map(|s| s.records_behind).sum()
    }

    /// The largest venue-time lag of any shard, in seconds.
    pub fn seconds_behind(&self) -> f64 {
        self.shards.iter().map(|s| s.time_behind_ns).max().unwrap_or(0) as f64 / 1e9
    }

    /// Prometheus text exposition of the report (gauges and counters named `simex_projection_*`).
    pub fn to_prometheus(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE simex_projection_connected gauge");
        let _ = writeln!(out, "simex_projection_connected {}", u8::from(self.connected));
        let _ = writeln!(out, "# TYPE simex_projection_records_behind gauge");
        for s in &self.shards {
            let _ = writeln!(out, "simex_projection_records_behind{{shard=\"{}\"}} {}", s.shard, s.records_behind);
        }
        let _ = writeln!(out, "# TYPE simex_projection_seconds_behind gauge");
        for s in &self.shards {
            let _ = writeln!(
                out,
                "simex_projection_seconds_behind{{shard=\"{}\"}} {}",
                s.shard,
                s.time_behind_ns as f64 / 1e9
            );
        }
        let _ = writeln!(out, "# TYPE simex_projection_blocked gauge");
        for s in &self.shards {
            let _ =
                writeln!(out, "simex_projection_blocked{{shard=\"{}\"}} {}", s.shard, u8::from(s.blocked.is_some()));
        }
        if let Some(accounts) = &self.accounts {
            let _ = writeln!(out, "# TYPE simex_projection_accounts_records_behind gauge");
            let _ = writeln!(out, "simex_projection_accounts_records_behind {}", accounts.records_behind);
            let _ = writeln!(out, "# TYPE simex_projection_accounts_blocked gauge");
            let _ = writeln!(out, "simex_projection_accounts_blocked {}", u8::from(accounts.blocked.is_some()));
        }
        let _ = writeln!(out, "# TYPE simex_projection_records_total counter");
        let _ = writeln!(out, "simex_projection_records_total {}", self.records_projected);
        let _ = writeln!(out, "# TYPE simex_projection_flushes_total counter");
        let _ = writeln!(out, "simex_projection_flushes_total {}", self.flushes);
        let _ = writeln!(out, "# TYPE simex_projection_failures_total counter");
        let _ = writeln!(out, "simex_projection_failures_total {}", self.failures);
        out
    }
}

/// Shared between the projector, which writes it, and any number of readers.
#[derive(Clone, Debug, Default)]
pub struct LagCell(Arc<Mutex<LagReport>>);

impl LagCell {
    pub fn get(&self) -> LagReport {
        self.0.lock().map(|report| report.clone()).unwrap_or_default()
    }

    /// Reads the report in place, under its lock (no copy).
    pub fn with<T>(&self, f: impl FnOnce(&LagReport) -> T) -> T {
        match self.0.lock() {
            Ok(report) => f(&report),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    pub fn update(&self, f: impl FnOnce(&mut LagReport)) {
        if let Ok(mut report) = self.0.lock() {
            f(&mut report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_sums_shards_and_renders_prometheus_text() {
        let shard = |shard, committed_seq, journal_seq, time_behind_ns| ShardLag {
            shard,
            committed_seq,
            journal_seq,
            records_behind: journal_seq - committed_seq,
            time_behind_ns,
            blocked: None,
        };
        let report = LagReport {
            shards: vec![shard(0, 10, 15, 2_500_000_000), shard(1, 7, 7, 0)],
            connected: true,
            flushes: 3,
            records_projected: 17,
            ..LagReport::default()
        };
        assert_eq!(report.records_behind(), 5);
        assert_eq!(report.seconds_behind(), 2.5);
        let text = report.to_prometheus();
        assert!(text.contains("simex_projection_connected 1\n"));
        assert!(text.contains("simex_projection_records_behind{shard=\"0\"} 5\n"));
        assert!(text.contains("simex_projection_records_behind{shard=\"1\"} 0\n"));
        assert!(text.contains("simex_projection_seconds_behind{shard=\"0\"} 2.5\n"));
        assert!(text.contains("simex_projection_records_total 17\n"));
        assert!(text
            .lines()
            .all(|line| line.starts_with("# TYPE simex_projection_") || line.starts_with("simex_projection_")));
    }
}
