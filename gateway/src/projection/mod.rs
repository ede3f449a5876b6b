//! The PostgreSQL projection: follows the on-disk journals and keeps a relational copy of what the
//! engine decided (portfolios, orders, fills, rejections, cash adjustments, positions and periodic
//! position snapshots) and of the gateway's accounts (users and their portfolios, never a secret)
//! for history queries, dashboards and reports.
//!
//! # Why from the journal
//! The journal is the source of truth and is already durable before any client hears of a result.
//! Projecting from its files keeps PostgreSQL entirely off the hot path: the shards never wait for
//! it, and a slow or stopped database only makes the projection lag. The projector is one thread
//! with its own single-threaded tokio runtime, started with [`spawn`].
//!
//! # Exactly once
//! Each batch's rows and the new `projection_offsets(shard, last_seq)` are written in one
//! transaction, which first checks (under a row lock) that the stored offsets stand exactly one
//! before the batch. On start and after any database error the projector rereads the offsets and
//! resumes every shard at `last_seq + 1`, throwing away whatever it had read but not committed. So
//! an event is in the database if and only if its sequence is at most the stored offset, whatever
//! was interrupted when. Event rows also have unique keys (`(shard, seq)`), so re-inserting one is a
//! no-op even outside that protocol. The accounts journal (`<data>/accounts`, one log) follows the
//! same discipline with its own offset row, `accounts_offset`, written in its own transactions.
//! Details and the failure table are in `docs/persistence.md`.
//!
//! # Modules
//! - `tail`: reading a live shard journal from a sequence (partial frames, segment rolls, pruning).
//! - `batch`: folding events into the rows of one transaction.
//! - `store`: binary COPY into staging tables and the set-based statements, in one transaction.
//! - `schema`: embedded, versioned migrations.
//! - `lag`: the lag report for `/metrics`.

pub mod batch;
pub mod lag;
pub mod schema;
pub mod store;
pub mod tail;

pub use lag::{LagReport, ShardLag};
pub use store::AccountsBatch;

use crate::auth::ACCOUNTS_SHARD;
use batch::Batch;
use lag::LagCell;
use simex_engine::codec::decode_event;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use store::Offset;
use tail::{ShardTail, TailRecord};
use tokio::sync::Notify;
use tokio_postgres::Client;

/// How the projection runs. [`ProjectionConfig::from_env`] reads it from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectionConfig {
    /// `postgresql://user@host:port/database` (libpq URL or key=value form).
    pub database_url: String,
    /// The gateway's accounts journal (`<data>/accounts`), projected into `users` and
    /// `user_portfolios`; `None` projects the engine's journals only.
    pub accounts_root: Option<PathBuf>,
    /// Records read are committed at least this often.
    pub flush_interval: Duration,
    /// Most journal records in one transaction.
    pub batch_records_max: usize,
    /// How often the journal is polled when there is nothing new.
    pub poll_interval: Duration,
    /// How often `positions` is copied into `position_snapshots`.
    pub snapshot_interval: Duration,
    /// First and largest wait between retries after a failure (doubling in between).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A write that takes longer is abandoned and retried on a new connection.
    pub write_timeout: Duration,
}

impl ProjectionConfig {
    pub fn new(database_url: impl Into<String>) -> ProjectionConfig {
        ProjectionConfig {
            database_url: database_url.into(),
            accounts_root: None,
            flush_interval: Duration::from_secs(1),
            batch_records_max: 20_000,
            poll_interval: Duration::from_millis(20),
            snapshot_interval: Duration::from_secs(60),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
        }
    }

    /// `None` without `DATABASE_URL`. Optional: `PROJECTION_FLUSH_INTERVAL_MS`,
    /// `PROJECTION_BATCH_RECORDS`, `PROJECTION_SNAPSHOT_INTERVAL_S`.
    pub fn from_env() -> Result<Option<ProjectionConfig>, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`ProjectionConfig::from_env`], with the variables looked up by `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<ProjectionConfig>, ConfigError> {
        let Some(url) = lookup("DATABASE_URL").filter(|url| !url.is_empty()) else { return Ok(None) };
        let mut config = ProjectionConfig::new(url);
        let number = |name: &'static str| -> Result<Option<u64>, ConfigError> {
            lookup(name)
                .map(|value| match value.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(ConfigError { name, value }),
                })
                .transpose()
        };
        if let Some(ms) = number("PROJECTION_FLUSH_INTERVAL_MS")? {
            config.flush_interval = Duration::from_millis(ms);
        }
        if let Some(records) = number("PROJECTION_BATCH_RECORDS")? {
            config.batch_records_max = usize::try_from(records).unwrap_or(usize::MAX);
        }
        if let Some(seconds) = number("PROJECTION_SNAPSHOT_INTERVAL_S")? {
            config.snapshot_interval = Duration::from_secs(seconds);
        }
        Ok(Some(config))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?} is not a positive whole number")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
}

/// The running projector.
pub struct ProjectionHandle {
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
    lag: LagCell,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProjectionHandle {
    /// The current lag (a copy).
    pub fn lag(&self) -> LagReport {
        self.lag.get()
    }

    /// A live view of the lag, for readers that outlive a borrow of the handle (`/metrics`).
    pub fn lag_source(&self) -> LagCell {
        self.lag.clone()
    }

    /// Asks the projector to stop: it commits what it has read if the database lets it, then ends.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Waits for the projector to end (call [`ProjectionHandle::stop`] first).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ProjectionHandle {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop();
            let _ = thread.join();
        }
    }
}

/// Starts the projector on its own thread, following every `shard-<k>` journal under
/// `journal_root`.
pub fn spawn(config: ProjectionConfig, journal_root: impl Into<PathBuf>) -> std::io::Result<ProjectionHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(Notify::new());
    let lag = LagCell::default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut projector = Projector {
        config,
        root: journal_root.into(),
        stop: stop.clone(),
        wake: wake.clone(),
        lag: lag.clone(),
        client: None,
        shards: BTreeMap::new(),
        batch: Batch::default(),
        batch_started: None,
        last_snapshot: Instant::now(),
        failures_in_row: 0,
        accounts: None,
    };
    let thread =
        std::thread::Builder::new().name("simex-projection".into()).spawn(move || runtime.block_on(projector.run()))?;
    Ok(ProjectionHandle { stop, wake, lag, thread: Some(thread) })
}

/// What the projector knows of one shard.
struct ShardState {
    /// Where reading continues; rebuilt from the database's offset after every reconnect.
    tail: ShardTail,
    /// Follows the journal's head, counting records, for the lag.
    head: ShardTail,
    committed: Option<Offset>,
    blocked: Option<String>,
}

struct Projector {
    config: ProjectionConfig,
    root: PathBuf,
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
    lag: LagCell,
    client: Option<Client>,
    shards: BTreeMap<u32, ShardState>,
    batch: Batch,
    batch_started: Option<Instant>,
    last_snapshot: Instant,
    failures_in_row: u32,
    /// The accounts journal's position, when it is projected (rebuilt at every connect).
    accounts: Option<ShardState>,
}

impl Projector {
    async fn run(&mut self) {
        let mut records = Vec::new();
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            if self.client.is_none() {
                if stopping {
                    return;
                }
                // The lag keeps growing while the database is away: follow the journal's head.
                self.follow_heads();
                self.publish_lag();
                if let Err(error) = self.connect().await {
                    self.failed(error).await;
                    continue;
                }
            }
            let read = self.read(&mut records);
            self.publish_lag();
            let accounts_read = match self.project_accounts(&mut records).await {
                Ok(read) => read,
                Err(error) => {
                    self.failed(error).await;
                    continue;
                }
            };
            let due = self.batch_started.is_some_and(|t| t.elapsed() >= self.config.flush_interval);
            if !self.batch.is_empty() && (self.batch.records >= self.config.batch_records_max || due || stopping) {
                if let Err(error) = self.flush().await {
                    self.failed(error).await;
                    continue;
                }
                self.publish_lag();
            }
            if stopping && self.batch.is_empty() {
                return;
            }
            if read == 0 && accounts_read == 0 {
                self.sleep(self.config.poll_interval).await;
            }
        }
    }

    /// Connects, migrates, and restarts every shard's reading from the database's offsets.
    async fn connect(&mut self) -> Result<(), String> {
        let client = store::connect(&self.config.database_url).await.map_err(|e| e.to_string())?;
        let mut offsets = store::load_offsets(&client).await.map_err(|e| e.to_string())?;
        let unrecorded: Vec<u32> =
            discover_shards(&self.root).into_iter().filter(|shard| !offsets.contains_key(shard)).collect();
        for shard in unrecorded {
            let Some(epoch) = journal_epoch(&self.root, shard) else { continue };
            if let Some(offset) = store::recover_offset(&client, shard, epoch).await.map_err(|e| e.to_string())? {
                let last_seq = offset.last_seq;
                tracing::warn!(target: "simex::projection", "shard {shard}: no stored offset; resuming after {last_seq}");
                offsets.insert(shard, offset);
            }
        }
        self.batch.clear();
        self.batch_started = None;
        self.shards.clear();
        for shard in discover_shards(&self.root).into_iter().chain(offsets.keys().copied()) {
            self.shards.entry(shard).or_insert_with(|| shard_state(&self.root, shard, offsets.get(&shard).copied()));
        }
        self.accounts = match &self.config.accounts_root {
            Some(root) => {
                let stored = store::load_accounts_offset(&client).await.map_err(|e| e.to_string())?;
                let offset = stored.map(|(epoch, last_seq)| Offset { epoch, last_seq, last_timestamp_ns: 0 });
                Some(shard_state(root, ACCOUNTS_SHARD, offset))
            }
            None => None,
        };
        self.client = Some(client);
        self.lag.update(|report| report.connected = true);
        Ok(())
    }

    /// Reads what the accounts journal has and commits it with its offset, in one transaction of
    /// its own (account records are few). Returns how many records it committed.
    async fn project_accounts(&mut self, records: &mut Vec<TailRecord>) -> Result<usize, String> {
        let Some(state) = self.accounts.as_mut() else { return Ok(0) };
        if let Err(error) = state.head.skip_to_end() {
            state.blocked.get_or_insert(error.to_string());
        }
        if state.blocked.is_some() {
            return Ok(0);
        }
        records.clear();
        if let Err(error) = state.tail.poll(self.config.batch_records_max, records) {
            state.blocked = Some(error.to_string());
        }
        let mut batch = AccountsBatch { epoch: state.tail.epoch().unwrap_or(0), records: Vec::new() };
        for record in records.iter() {
            let parsed = (record.record_type == crate::auth::RECORD_TYPE_ACCOUNT)
                .then(|| serde_json::from_slice::<crate::auth::AccountRecord>(&record.payload).ok())
                .flatten();
            let Some(parsed) = parsed else {
                // Nothing after this record can be projected without it; it stays unprojected.
                state.blocked = Some(format!("accounts journal record {}: not an account record", record.seq));
                break;
            };
            batch.records.push((record.seq, record.timestamp_ns, parsed));
        }
        let Some(last_seq) = batch.last_seq() else { return Ok(0) };
        let client = self.client.as_mut().expect("connected");
        match tokio::time::timeout(self.config.write_timeout, store::write_accounts(client, &batch)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error.to_string()),
            Err(_) => return Err(format!("a write took longer than {:?}; abandoned", self.config.write_timeout)),
        }
        state.committed = Some(Offset { epoch: batch.epoch, last_seq, last_timestamp_ns: 0 });
        let committed = batch.records.len();
        self.lag.update(|report| {
            report.records_projected += committed as u64;
            report.last_flush_at = Some(SystemTime::now());
        });
        Ok(committed)
    }

    /// Picks up new shards and moves every shard's head tail to the end of its journal.
    fn follow_heads(&mut self) {
        for shard in discover_shards(&self.root) {
            if !self.shards.contains_key(&shard) {
                self.shards.insert(shard, shard_state(&self.root, shard, None));
            }
        }
        for state in self.shards.values_mut() {
            if let Err(error) = state.head.skip_to_end() {
                if state.blocked.is_none() {
                    state.blocked = Some(error.to_string());
                }
            }
        }
    }

    /// Reads what the journals have, up to the batch limit; returns how many records it added.
    fn read(&mut self, records: &mut Vec<TailRecord>) -> usize {
        self.follow_heads();
        let mut added = 0usize;
        for (&shard, state) in &mut self.shards {
            if state.blocked.is_some() {
                continue;
            }
            let room = self.config.batch_records_max.saturating_sub(self.batch.records);
            if room == 0 {
                continue;
            }
            records.clear();
            if let Err(error) = state.tail.poll(room, records) {
                state.blocked = Some(error.to_string());
            }
            let epoch = state.tail.epoch().unwrap_or(0);
            for record in records.iter() {
                let event = decode_event(record.record_type, record.seq, record.timestamp_ns, &record.payload)
                    .map_err(|e| format!("shard {shard} record {}: {e}", record.seq))
                    .and_then(|event| self.batch.add(shard, epoch, &event).map_err(|e| e.to_string()));
                if let Err(message) = event {
                    // Nothing after this record can be projected without it; it stays unprojected.
                    state.blocked = Some(message);
                    break;
                }
                added += 1;
            }
        }
        if added > 0 && self.batch_started.is_none() {
            self.batch_started = Some(Instant::now());
        }
        added
    }

    async fn flush(&mut self) -> Result<(), String> {
        let client = self.client.as_mut().expect("connected");
        let snapshot_at_ns = (self.last_snapshot.elapsed() >= self.config.snapshot_interval)
            .then(|| self.batch.shards.values().map(|r| r.last_timestamp_ns).max())
            .flatten();
        let write = store::write_batch(client, &self.batch, snapshot_at_ns);
        match tokio::time::timeout(self.config.write_timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error.to_string()),
            Err(_) => return Err(format!("a write took longer than {:?}; abandoned", self.config.write_timeout)),
        }
        if snapshot_at_ns.is_some() {
            self.last_snapshot = Instant::now();
        }
        for (shard, range) in &self.batch.shards {
            if let Some(state) = self.shards.get_mut(shard) {
                state.committed = Some(Offset {
                    epoch: range.epoch,
                    last_seq: range.last_seq,
                    last_timestamp_ns: range.last_timestamp_ns,
                });
            }
        }
        let records = self.batch.records as u64;
        self.lag.update(|report| {
            report.flushes += 1;
            report.records_projected += records;
            report.last_flush_at = Some(SystemTime::now());
            report.last_error = None;
        });
        self.batch.clear();
        self.batch_started = None;
        self.failures_in_row = 0;
        Ok(())
    }

    /// Drops the connection and what was read but not committed, and waits before the next try.
    async fn failed(&mut self, error: String) {
        self.client = None;
        self.batch.clear();
        self.batch_started = None;
        self.failures_in_row = self.failures_in_row.saturating_add(1);
        tracing::warn!(target: "simex::projection", "projection: {error}; retrying");
        self.lag.update(|report| {
            report.connected = false;
            report.failures += 1;
            report.last_error = Some(error);
        });
        let exponent = self.failures_in_row.saturating_sub(1).min(16);
        let backoff = self.config.backoff_min.saturating_mul(1 << exponent).min(self.config.backoff_max);
        self.sleep(backoff).await;
    }

    async fn sleep(&self, duration: Duration) {
        if self.stop.load(Ordering::Acquire) {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(duration) => {}
            _ = self.wake.notified() => {}
        }
    }

    fn publish_lag(&self) {
        let shards: Vec<ShardLag> = self
            .shards
            .iter()
            .map(|(&shard, state)| {
                let committed_seq = state.committed.map_or(0, |o| o.last_seq);
                let journal_seq = state.head.next_seq().saturating_sub(1).max(committed_seq);
                let journal_ns = state.head.last_timestamp_ns();
                let committed_ns = state.committed.map(|o| o.last_timestamp_ns);
                let time_behind_ns = match (journal_ns, committed_ns) {
                    (Some(head), Some(committed)) => head.saturating_sub(committed).max(0),
                    // Nothing committed yet: no reference time; the records behind say it all.
                    _ => 0,
                };
                ShardLag {
                    shard,
                    committed_seq,
                    journal_seq,
                    records_behind: journal_seq - committed_seq,
                    time_behind_ns: if journal_seq == committed_seq { 0 } else { time_behind_ns },
                    blocked: state.blocked.clone(),
                }
            })
            .collect();
        let accounts = self.accounts.as_ref().map(|state| {
            let committed_seq = state.committed.map_or(0, |o| o.last_seq);
            let journal_seq = state.head.next_seq().saturating_sub(1).max(committed_seq);
            ShardLag {
                shard: ACCOUNTS_SHARD,
                committed_seq,
                journal_seq,
                records_behind: journal_seq - committed_seq,
                time_behind_ns: 0,
                blocked: state.blocked.clone(),
            }
        });
        self.lag.update(|report| {
            report.shards = shards;
            report.accounts = accounts;
        });
    }
}

fn shard_state(root: &Path, shard: u32, committed: Option<Offset>) -> ShardState {
    let epoch = committed.map(|o| o.epoch);
    let next_seq = committed.map_or(1, |o| o.last_seq + 1);
    ShardState {
        tail: ShardTail::new(root, shard, epoch, next_seq),
        head: ShardTail::new(root, shard, epoch, next_seq),
        committed,
        blocked: None,
    }
}

/// The epoch in the header of the shard's oldest segment, if it has one that reads.
fn journal_epoch(root: &Path, shard: u32) -> Option<u64> {
    use simex_journal::format::{SegmentHeader, SEGMENT_HEADER_LEN};
    use std::os::unix::fs::FileExt;
    let (segments, _) = simex_journal::segment::list_segments(&simex_journal::shard_dir(root, shard)).ok()?;
    let file = std::fs::File::open(&segments.first()?.path).ok()?;
    let mut bytes = [0u8; SEGMENT_HEADER_LEN];
    file.read_exact_at(&mut bytes, 0).ok()?;
    SegmentHeader::decode(&bytes).ok().map(|header| header.epoch)
}

/// The shards with a journal directory under `root`.
fn discover_shards(root: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut shards: Vec<u32> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.strip_prefix("shard-")?.parse().ok())
        .collect();
    shards.sort_unstable();
    shards
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string())
    }

    #[test]
    fn configuration_from_the_environment() {
        assert_eq!(ProjectionConfig::from_lookup(lookup(&[])), Ok(None));
        assert_eq!(ProjectionConfig::from_lookup(lookup(&[("DATABASE_URL", "")])), Ok(None));
        let config = ProjectionConfig::from_lookup(lookup(&[
            ("DATABASE_URL", "postgresql://simex@localhost/simex"),
            ("PROJECTION_FLUSH_INTERVAL_MS", "250"),
            ("PROJECTION_BATCH_RECORDS", "1000"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(config.flush_interval, Duration::from_millis(250));
        assert_eq!(config.batch_records_max, 1000);
        assert_eq!(config.snapshot_interval, ProjectionConfig::new("x").snapshot_interval);
        let bad = ProjectionConfig::from_lookup(lookup(&[("DATABASE_URL", "x"), ("PROJECTION_BATCH_RECORDS", "0")]));
        assert_eq!(bad, Err(ConfigError { name: "PROJECTION_BATCH_RECORDS", value: "0".into() }));
    }
}
