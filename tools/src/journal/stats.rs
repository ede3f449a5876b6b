//! `stats`: how big the journal is and what it is made of.
//!
//! For capacity planning and for a first look at an unfamiliar journal: records per event type, the
//! rate over the journal's time range, bytes (payload, framed as stored, and the segment files as
//! allocated on disk, which is more because segments are preallocated), and records and bytes per
//! UTC day. Reading stops at damage, like every other command, and says so.

use super::dump::type_name;
use super::progress::Progress;
use super::records::{ShardRecords, Stop};
use super::venue::Venue;
use super::{ToolError, EXIT_DAMAGED, EXIT_OK};
use crate::out;
use crate::script::render::{Node, Obj};
use crate::script::time::format_rfc3339;
use serde_json::Value;
use simex_engine::NANOS_PER_DAY;
use std::collections::BTreeMap;
use std::io::Write;

/// Bytes a record takes in a segment: a 32-byte frame header and the payload padded to 8 bytes.
fn frame_bytes(payload_bytes: usize) -> u64 {
    32 + (payload_bytes as u64).div_ceil(8) * 8
}

#[derive(Clone, Copy, Debug, Default)]
struct Count {
    records: u64,
    payload_bytes: u64,
    frame_bytes: u64,
}

impl Count {
    fn add(&mut self, payload_bytes: usize) {
        self.records += 1;
        self.payload_bytes += payload_bytes as u64;
        self.frame_bytes += frame_bytes(payload_bytes);
    }
}

#[derive(Debug, Default)]
struct Totals {
    all: Count,
    by_type: BTreeMap<u16, Count>,
    by_day: BTreeMap<i64, Count>,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
    disk_bytes: u64,
}

impl Totals {
    fn rate(&self) -> Option<f64> {
        let (first, last) = (self.first_ns?, self.last_ns?);
        (last > first).then(|| self.all.records as f64 / ((last - first) as f64 / 1e9))
    }
}

/// A rate with enough digits to be read: `1234`, `12.5`, `0.0083`.
fn rate_text(rate: f64) -> String {
    if rate >= 100.0 {
        format!("{rate:.0}")
    } else if rate >= 1.0 {
        format!("{rate:.1}")
    } else {
        format!("{rate:.4}")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn day_text(day: i64) -> String {
    format_rfc3339(day * NANOS_PER_DAY)[..10].to_string()
}

/// Runs `stats`, printing text or one JSON document. Returns the exit status.
pub fn run(venue: &Venue, json: bool, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8, ToolError> {
    let mut status = EXIT_OK;
    let mut total = Totals::default();
    let mut shards = BTreeMap::new();
    let total_bytes: u64 = venue.shards.iter().map(|&k| venue.segment_bytes(k)).sum();
    let mut progress = Progress::bytes("stats", total_bytes);
    let mut done_bytes = 0;
    for &shard in &venue.shards {
        let mut records = ShardRecords::open(&venue.root, shard, None, None)?;
        progress.start_part(&format!("shard {shard}"), done_bytes);
        done_bytes += records.total_bytes();
        let mut totals = Totals { disk_bytes: venue.segment_bytes(shard), ..Totals::default() };
        loop {
            match records.next_event() {
                Ok(Some(record)) => {
                    let ns = record.event.timestamp_ns;
                    for t in [&mut totals, &mut total] {
                        t.all.add(record.payload_bytes);
                        t.by_type.entry(record.record_type).or_default().add(record.payload_bytes);
                        t.by_day.entry(ns.div_euclid(NANOS_PER_DAY)).or_default().add(record.payload_bytes);
                        t.first_ns = Some(t.first_ns.map_or(ns, |f| f.min(ns)));
                        t.last_ns = Some(t.last_ns.map_or(ns, |l| l.max(ns)));
                    }
                    progress.record(records.position_bytes(&record));
                }
                Ok(None) => break,
                Err(Stop::Io(e)) => return Err(e),
                Err(Stop::Damage(damage)) => {
                    if damage.is_torn_tail() {
                        out!(err, "simex-journal: warning: shard {shard}: counted up to the torn tail: {damage}")?;
                    } else {
                        out!(err, "simex-journal: shard {shard}: counted up to the damage: {damage}")?;
                        status = EXIT_DAMAGED;
                    }
                    break;
                }
            }
        }
        total.disk_bytes += totals.disk_bytes;
        shards.insert(shard, totals);
    }
    progress.finish();
    if json {
        let doc = Obj::new().put("root", venue.root.display().to_string()).put("total", totals_obj(&total)).put(
            "shards",
            shards.iter().map(|(k, t)| Obj::new().put("shard", *k).put("stats", totals_obj(t))).collect::<Vec<_>>(),
        );
        out!(out, "{}", doc.to_pretty())?;
        return Ok(status);
    }
    out!(out, "journal {}: {} shards", venue.root.display(), venue.shards.len())?;
    print_totals(out, "all shards", &total)?;
    for (shard, totals) in &shards {
        out!(out)?;
        print_totals(out, &format!("shard {shard}"), totals)?;
    }
    Ok(status)
}

fn print_totals(out: &mut dyn Write, title: &str, t: &Totals) -> Result<(), ToolError> {
    let span = match (t.first_ns, t.last_ns) {
        (Some(a), Some(b)) => format!("{} .. {}", format_rfc3339(a), format_rfc3339(b)),
        _ => "no records".to_string(),
    };
    let rate = t.rate().map_or_else(|| "-".to_string(), |r| format!("{} records/s", rate_text(r)));
    out!(out, "{title}: {} records, {span}, {rate}", t.all.records)?;
    out!(
        out,
        "  bytes: {} payload, {} framed, {} of segment files on disk",
        t.all.payload_bytes,
        t.all.frame_bytes,
        mib(t.disk_bytes)
    )?;
    if t.all.records == 0 {
        return Ok(());
    }
    out!(out, "  {:<22} {:>12} {:>7} {:>14}", "type", "records", "share", "framed bytes")?;
    for (record_type, c) in &t.by_type {
        let share = 100.0 * c.records as f64 / t.all.records as f64;
        out!(out, "  {:<22} {:>12} {:>6.2}% {:>14}", type_name(*record_type), c.records, share, c.frame_bytes)?;
    }
    out!(out, "  {:<22} {:>12} {:>14}", "day (UTC)", "records", "framed bytes")?;
    for (day, c) in &t.by_day {
        out!(out, "  {:<22} {:>12} {:>14}", day_text(*day), c.records, c.frame_bytes)?;
    }
    Ok(())
}

fn count_obj(head: Obj, c: &Count) -> Obj {
    head.put("records", c.records).put("payload_bytes", c.payload_bytes).put("framed_bytes", c.frame_bytes)
}

fn totals_obj(t: &Totals) -> Obj {
    let obj = count_obj(Obj::new(), &t.all).put("disk_bytes", t.disk_bytes);
    let obj = match (t.first_ns, t.last_ns) {
        (Some(a), Some(b)) => obj.time("from", "from_ns", a).time("to", "to_ns", b),
        _ => obj.put("from", None::<String>).put("to", None::<String>),
    };
    let rate = t.rate().map_or(Node::Value(Value::Null), |r| Node::Value(Value::from(r)));
    obj.put("records_per_second", rate)
        .put(
            "by_type",
            t.by_type.iter().map(|(k, c)| count_obj(Obj::new().put("type", type_name(*k)), c)).collect::<Vec<_>>(),
        )
        .put(
            "by_day",
            t.by_day.iter().map(|(d, c)| count_obj(Obj::new().put("day", day_text(*d)), c)).collect::<Vec<_>>(),
        )
}
