//! Per-stage latency histograms, their percentile table, and HdrHistogram interval logs.
//!
//! An order's life in the runtime is stamped at four points: `ingress` (the submitting thread hands
//! it to the ring), `dequeue` (the shard takes it off the ring), `decided` (the engine has matched
//! and risk-checked it) and `egress` (the submitting thread receives the result). Each thread records
//! the stages it sees into histograms it owns (no shared lock on the hot path); the shards hand
//! theirs over periodically through a ring and get an empty one back, and a collector merges them.
//!
//! Interval logs are written in the standard V2-compressed ("V2+DEFLATE") format that the Java
//! `HistogramLogProcessor` and the Python `hdrhistogram` package read; see `docs/latency.md`.

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::io::Write;
use std::time::{Duration, SystemTime};

/// Largest latency recorded exactly: one minute. Longer ones are clamped to it.
pub const LATENCY_NS_MAX: u64 = 60_000_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Ingress to shard dequeue: time in the inbound ring.
    Ring,
    /// Dequeue to decision: matching, risk and ledger.
    MatchRisk,
    /// Decision to receipt by the submitter: the response ring.
    Egress,
    /// Ingress to receipt: the whole round trip.
    RoundTrip,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Ring, Stage::MatchRisk, Stage::Egress, Stage::RoundTrip];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Ring => "ring",
            Stage::MatchRisk => "match_risk",
            Stage::Egress => "egress",
            Stage::RoundTrip => "round_trip",
        }
    }
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, SIGNIFICANT_DIGITS).expect("valid histogram bounds")
}

/// One histogram per stage, in nanoseconds.
#[derive(Clone, Debug)]
pub struct StageHistograms {
    histograms: [Histogram<u64>; 4],
}

impl Default for StageHistograms {
    fn default() -> StageHistograms {
        StageHistograms { histograms: [new_histogram(), new_histogram(), new_histogram(), new_histogram()] }
    }
}

impl StageHistograms {
    /// Records `end_ns - start_ns` for `stage`; a negative span (clock read on another core) counts as 1 ns.
    #[inline]
    pub fn record(&mut self, stage: Stage, start_ns: i64, end_ns: i64) {
        let span = (end_ns - start_ns).max(1) as u64;
        self.histograms[stage as usize].saturating_record(span);
    }

    pub fn get(&self, stage: Stage) -> &Histogram<u64> {
        &self.histograms[stage as usize]
    }

    pub fn add(&mut self, other: &StageHistograms) {
        for (mine, theirs) in self.histograms.iter_mut().zip(&other.histograms) {
            mine.add(theirs).expect("histograms with equal bounds add");
        }
    }

    pub fn reset(&mut self) {
        self.histograms.iter_mut().for_each(Histogram::reset);
    }

    pub fn is_empty(&self) -> bool {
        self.histograms.iter().all(|h| h.is_empty())
    }

    /// A table of p50 to p99.99 and max per stage, in microseconds.
    pub fn percentile_table(&self) -> String {
        let mut table = String::from(
            "| stage | count | p50 µs | p99 µs | p99.9 µs | p99.99 µs | max µs |\n|---|---|---|---|---|---|---|\n",
        );
        for stage in Stage::ALL {
            let h = self.get(stage);
            if h.is_empty() {
                continue;
            }
            let us = |quantile: f64| format!("{:.2}", h.value_at_quantile(quantile) as f64 / 1_000.0);
            let _ = writeln!(
                table,
                "| {} | {} | {} | {} | {} | {} | {:.2} |",
                stage.name(),
                h.len(),
                us(0.5),
                us(0.99),
                us(0.999),
                us(0.9999),
                h.max() as f64 / 1_000.0
            );
        }
        table
    }
}

/// One interval of histograms, tagged by where they came from (e.g. "shard0").
pub struct Interval<'a> {
    pub tag: &'a str,
    /// Offset of the interval's start from the log's start time.
    pub start_offset: Duration,
    pub length: Duration,
    pub histograms: &'a StageHistograms,
}

/// Writes intervals as an HdrHistogram V2+DEFLATE interval log, one tagged entry per stage
/// (`<tag>.<stage>`), values in nanoseconds.
pub fn write_interval_log<W: Write>(
    target: &mut W,
    start_time: SystemTime,
    intervals: &[Interval<'_>],
) -> std::io::Result<()> {
    let mut entries = Vec::new();
    for interval in intervals {
        for stage in Stage::ALL {
            let histogram = interval.histograms.get(stage);
            if !histogram.is_empty() {
                let tag = format!("{}.{}", interval.tag, stage.name());
                entries.push(TaggedInterval {
                    tag,
                    start_offset: interval.start_offset,
                    length: interval.length,
                    histogram,
                });
            }
        }
    }
    write_tagged_interval_log(target, start_time, "simex per-stage latency, values in nanoseconds", &entries)
}

/// One histogram of an interval log with its own tag (e.g. `conn0.new_order`).
pub struct TaggedInterval<'a> {
    pub tag: String,
    pub start_offset: Duration,
    pub length: Duration,
    pub histogram: &'a Histogram<u64>,
}

/// Writes tagged histograms as an HdrHistogram V2+DEFLATE interval log.
pub fn write_tagged_interval_log<W: Write>(
    target: &mut W,
    start_time: SystemTime,
    comment: &str,
    entries: &[TaggedInterval<'_>],
) -> std::io::Result<()> {
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment(comment)
        .with_start_time(start_time)
        .with_base_time(start_time)
        .begin_log_with(target, &mut serializer)?;
    for entry in entries {
        writer
            .write_histogram(entry.histogram, entry.start_offset, entry.length, Tag::new(&entry.tag))
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    #[test]
    fn interval_logs_round_trip_through_the_standard_format() {
        let mut histograms = StageHistograms::default();
        for value in 1..=1_000 {
            histograms.record(Stage::MatchRisk, 0, value);
        }
        histograms.record(Stage::RoundTrip, 10, 5);
        let mut log = Vec::new();
        let intervals = [Interval {
            tag: "shard0",
            start_offset: Duration::ZERO,
            length: Duration::from_secs(1),
            histograms: &histograms,
        }];
        write_interval_log(&mut log, SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000), &intervals).unwrap();
        let text = String::from_utf8(log.clone()).unwrap();
        assert!(text.contains("#[StartTime: 1800000000"), "{text}");
        assert!(text.contains("HISTFAA"), "V2 compressed entries start with HISTFAA: {text}");
        let tags: Vec<String> = IntervalLogIterator::new(&log)
            .filter_map(|entry| match entry {
                Ok(LogEntry::Interval(interval)) => interval.tag().map(|t| t.as_str().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(tags, vec!["shard0.match_risk", "shard0.round_trip"]);
        assert_eq!(histograms.get(Stage::MatchRisk).value_at_quantile(0.5), 500);
        assert!(histograms.percentile_table().contains("| match_risk | 1000 |"));
    }
}
