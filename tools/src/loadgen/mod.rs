//! `simex-loadgen`: end-to-end latency of the binary order-entry protocol and of the HTTP API
//! ([`http`]), measured as a client sees it, so that both can be compared in one run.
//!
//! N connections each send a stream of requests drawn from an order mix ([`mix`]) and time each
//! request from its send to its first execution report (accepted, rejected, replaced or cancelled:
//! matched by `request_id`).
//!
//! - **Open loop** (`--rate`): each connection sends on a fixed schedule, whatever the answers, and
//!   latency is measured from the *planned* send time. A stall therefore counts against every
//!   request that should have been sent during it, as it would for a real bot (no coordinated
//!   omission). A sender that falls behind its schedule sends at once, and the lateness is counted.
//! - **Closed loop** (`--rate 0`): each connection sends one request, waits for its report, sends the
//!   next. This measures service time, not what a bot at a given rate would see.
//!
//! The venue runs in-process unless `--connect` (binary) or `--http-url` (HTTP) names one.
//! Table rows and interval-log tags carry the protocol: `binary.new_order`, `http.cancel`. Results: a percentile table per message
//! type, an HdrHistogram V2+DEFLATE interval log (one interval per second per connection and type)
//! and a percentile-spectrum SVG ([`report`]).

pub mod http;
pub mod mix;
pub mod report;

use hdrhistogram::Histogram;
use mix::{Mix, MixKind, OpenOrders, Request};
use simex::binary::client::{Client, ClientError, ClientReceiver, ClientSender};
use simex::binary::protocol::{report_type, Message};
use simex::binary::{spawn, BinaryConfig, BinaryHandle, MemoryKeys};
use simex::runtime::{new_histogram, Runtime, RuntimeConfig, Submitter};
use simex_engine::{CommandBody, InstrumentTable, RiskLimits};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Message types measured, in table order.
pub const KINDS: [&str; 3] = ["new_order", "cancel", "replace"];

#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub connections: usize,
    /// Requests per second over all connections; 0 for closed loop.
    pub rate: u64,
    pub duration: Duration,
    pub mix: MixKind,
    pub seed: u64,
    pub target: Target,
    /// Which API is driven: the binary protocol, HTTP or both (one after the other).
    pub protocol: Protocol,
    pub http: HttpTarget,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Binary,
    Http,
    Both,
}

#[derive(Clone, Debug)]
pub enum HttpTarget {
    /// Serve a venue (`simex::venue::run_until`) in this process, stopped when the run ends.
    InProcess { shards: usize },
    /// A running venue's HTTP API, e.g. `http://127.0.0.1:8080`: the loadgen registers a user and
    /// opens a portfolio per connection there.
    Remote { base_url: String },
}

#[derive(Clone, Debug)]
pub enum Target {
    /// Start a runtime and a binary gateway in this process.
    InProcess { shards: usize, busy_poll: bool },
    /// A running venue: every connection logs in with `key` and trades `portfolio_id`.
    Remote { address: SocketAddr, key: String, portfolio_id: u32, symbol_id: u16 },
}

/// Latency of one message type, over the run and per interval.
pub struct KindResult {
    /// `binary.new_order`, `http.cancel`, ...
    pub name: String,
    pub histogram: Histogram<u64>,
}

pub struct LoadResult {
    pub kinds: Vec<KindResult>,
    pub intervals: Vec<IntervalRecord>,
    pub start_time: SystemTime,
    pub sent: u64,
    pub answered: u64,
    pub elapsed: Duration,
    /// HTTP answers by message type and status, e.g. `new_order 201`.
    pub http_statuses: BTreeMap<String, u64>,
}

/// One second of one connection's latency for one message type.
pub struct IntervalRecord {
    pub tag: String,
    pub start_offset: Duration,
    pub length: Duration,
    pub histogram: Histogram<u64>,
}

/// What one connection's sender and receiver share.
struct Shared {
    /// Planned send time (ns since the run's start) plus one of each request in flight, by
    /// `request_id - 1`, in a ring of `SLOTS` entries; 0 when not in flight.
    planned_ns: Vec<AtomicI64>,
    kind: Vec<AtomicU8>,
    open_orders: Mutex<OpenOrders>,
    answered: AtomicU64,
    stop: AtomicBool,
}

const SLOTS: usize = 1 << 16;

impl Shared {
    fn new(mix: MixKind) -> Shared {
        Shared {
            planned_ns: (0..SLOTS).map(|_| AtomicI64::new(0)).collect(),
            kind: (0..SLOTS).map(|_| AtomicU8::new(0)).collect(),
            open_orders: Mutex::new(OpenOrders::for_mix(mix)),
            answered: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }
}

/// An in-process venue: runtime, admin submitter, binary gateway.
struct Venue {
    runtime: Option<Runtime>,
    admin: Option<Submitter>,
    gateway: Option<BinaryHandle>,
}

impl Drop for Venue {
    fn drop(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown();
        }
        self.admin.take();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown();
        }
    }
}

fn start_venue(connections: usize, shards: usize, busy_poll: bool) -> anyhow::Result<(Venue, SocketAddr, u16)> {
    let instruments = InstrumentTable::default_table();
    let symbol_id = instruments.by_symbol("AAPL").map(|i| i.symbol_id).unwrap_or(0);
    let config = RuntimeConfig { shards, submitters: 2, taps: vec!["binary".into()], ..Default::default() };
    let started = Runtime::start(config, instruments.clone())?;
    let mut submitters = started.submitters;
    let mut admin = submitters.pop().expect("two submitters");
    let gateway_submitter = submitters.pop().expect("two submitters");
    let mut keys = MemoryKeys::new();
    for connection in 0..connections {
        let portfolio_id = portfolio_of(connection);
        keys = keys.with_user(&key_of(connection), u64::from(portfolio_id), &[portfolio_id]);
        // Limits wide enough for the exchange-core mix's thousand resting orders of up to 126 lots
        // at about 1,000.00, and for the position one connection builds trading with itself.
        let limits = RiskLimits {
            order_notional_max_micros: i64::MAX / 4,
            gross_exposure_max_micros: i64::MAX / 4,
            open_orders_max: 1_000_000,
            daily_loss_max_micros: i64::MAX,
        };
        for command in [
            CommandBody::CreatePortfolio { portfolio_id, cash_micros: 1_000_000_000 * 1_000_000 },
            CommandBody::SetRiskLimits { portfolio_id, limits },
        ] {
            admin.execute(command);
        }
    }
    let tap = started.taps.into_iter().next();
    let config = BinaryConfig { busy_poll, ..Default::default() };
    let gateway = spawn(config, gateway_submitter, tap, Arc::new(keys), instruments)?;
    let address = gateway.local_addr();
    Ok((Venue { runtime: Some(started.runtime), admin: Some(admin), gateway: Some(gateway) }, address, symbol_id))
}

fn portfolio_of(connection: usize) -> u32 {
    1 + connection as u32
}

fn key_of(connection: usize) -> String {
    format!("loadgen-{connection}")
}

/// Runs the load and returns what was measured. `progress` is called about ten times a second
/// with the number of requests answered so far. With [`Protocol::Both`] the binary run comes
/// first, then the HTTP run, each for the whole duration.
pub fn run(config: &LoadConfig, mut progress: impl FnMut(u64)) -> anyhow::Result<LoadResult> {
    let protocols: &[&'static str] = match config.protocol {
        Protocol::Binary => &["binary"],
        Protocol::Http => &["http"],
        Protocol::Both => &["binary", "http"],
    };
    let first = Instant::now();
    let mut result = LoadResult {
        kinds: Vec::new(),
        intervals: Vec::new(),
        start_time: SystemTime::now(),
        sent: 0,
        answered: 0,
        elapsed: Duration::ZERO,
        http_statuses: BTreeMap::new(),
    };
    for &protocol in protocols {
        let answered_before = result.answered;
        let (done, offset) = if protocol == "binary" {
            run_binary(config, first, |answered| progress(answered_before + answered))?
        } else {
            run_http(config, first, |answered| progress(answered_before + answered))?
        };
        let mut kinds: Vec<KindResult> = KINDS
            .iter()
            .map(|name| KindResult { name: format!("{protocol}.{name}"), histogram: new_histogram() })
            .collect();
        for connection in done {
            for (kind, histogram) in kinds.iter_mut().zip(&connection.histograms) {
                kind.histogram.add(histogram).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            }
            for mut interval in connection.intervals {
                interval.start_offset += offset;
                result.intervals.push(interval);
            }
            for (status, count) in connection.statuses {
                *result.http_statuses.entry(status).or_default() += count;
            }
            result.sent += connection.sent;
            result.answered += connection.answered;
        }
        result.kinds.extend(kinds);
    }
    result.elapsed = first.elapsed();
    Ok(result)
}

/// Waits for the connection threads, reporting progress.
fn join_all(
    threads: Vec<std::thread::JoinHandle<anyhow::Result<ConnectionDone>>>,
    shared_all: &[Arc<Shared>],
    progress: &mut impl FnMut(u64),
) -> anyhow::Result<Vec<ConnectionDone>> {
    while !threads.iter().all(|t| t.is_finished()) {
        progress(shared_all.iter().map(|s| s.answered.load(Ordering::Relaxed)).sum());
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut done = Vec::new();
    for thread in threads {
        done.push(thread.join().map_err(|_| anyhow::anyhow!("a connection thread panicked"))??);
    }
    Ok(done)
}

/// The HTTP run; returns each connection's results and the run's offset from `first`.
fn run_http(
    config: &LoadConfig,
    first: Instant,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<(Vec<ConnectionDone>, Duration)> {
    let (venue, base_url) = match &config.http {
        HttpTarget::InProcess { shards } => {
            let venue = http::start_venue(*shards)?;
            let base_url = venue.base_url.clone();
            (Some(venue), base_url)
        }
        HttpTarget::Remote { base_url } => (None, base_url.trim_end_matches('/').to_string()),
    };
    let accounts = http::open_accounts(&base_url, config.connections)?;
    let start = Instant::now();
    let per_connection_rate = config.rate as f64 / config.connections as f64;
    let interval_ns = (config.rate > 0).then(|| (1e9 / per_connection_rate) as i64);
    let mut threads = Vec::new();
    let mut shared_all = Vec::new();
    for (index, account) in accounts.into_iter().enumerate() {
        let shared = Arc::new(Shared::new(config.mix));
        shared_all.push(shared.clone());
        let mix = Mix::new(config.mix, config.seed.wrapping_add(index as u64), 0, 0);
        let connection = http::Connection::new(&base_url, account);
        let config = config.clone();
        let tag = format!("http.conn{index}");
        threads
            .push(std::thread::spawn(move || http::drive(connection, mix, shared, &config, start, interval_ns, tag)));
    }
    let done = join_all(threads, &shared_all, &mut progress)?;
    drop(venue);
    Ok((done, start - first))
}

/// The binary-protocol run; returns each connection's results and the run's offset from `first`.
fn run_binary(
    config: &LoadConfig,
    first: Instant,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<(Vec<ConnectionDone>, Duration)> {
    let (venue, address, symbol_id) = match &config.target {
        Target::InProcess { shards, busy_poll } => {
            let (venue, address, symbol_id) = start_venue(config.connections, *shards, *busy_poll)?;
            (Some(venue), address, symbol_id)
        }
        Target::Remote { address, symbol_id, .. } => (None, *address, *symbol_id),
    };
    let start = Instant::now();
    let per_connection_rate = config.rate as f64 / config.connections as f64;
    let mut threads = Vec::new();
    let mut shared_all = Vec::new();
    for connection in 0..config.connections {
        let (key, portfolio_id) = match &config.target {
            Target::InProcess { .. } => (key_of(connection), portfolio_of(connection)),
            Target::Remote { key, portfolio_id, .. } => (key.clone(), *portfolio_id),
        };
        let mut client = Client::connect(address)?;
        client.login(&key, 0)?;
        client.receiver.set_read_timeout(Some(Duration::from_secs(5)))?;
        let shared = Arc::new(Shared::new(config.mix));
        shared_all.push(shared.clone());
        let mix = Mix::new(config.mix, config.seed.wrapping_add(connection as u64), portfolio_id, symbol_id);
        let duration = config.duration;
        let tag = format!("binary.conn{connection}");
        let (sender, receiver) = client.split();
        if config.rate == 0 {
            threads.push(std::thread::spawn(move || closed_loop(sender, receiver, mix, shared, start, duration, tag)));
        } else {
            let interval_ns = (1e9 / per_connection_rate) as i64;
            let receive_shared = shared.clone();
            let receiver_thread = std::thread::spawn(move || receive(receiver, receive_shared, start, tag));
            threads.push(std::thread::spawn(move || {
                let sent = open_loop(sender, mix, &shared, start, duration, interval_ns);
                let mut outcome = receiver_thread.join().unwrap_or_else(|_| Err(anyhow::anyhow!("receiver panicked")));
                if let Ok(done) = outcome.as_mut() {
                    done.sent = sent;
                }
                outcome
            }));
        }
    }
    let done = join_all(threads, &shared_all, &mut progress)?;
    drop(venue);
    Ok((done, start - first))
}

struct ConnectionDone {
    histograms: Vec<Histogram<u64>>,
    intervals: Vec<IntervalRecord>,
    sent: u64,
    answered: u64,
    statuses: BTreeMap<String, u64>,
}

fn now_ns(start: Instant) -> i64 {
    start.elapsed().as_nanos() as i64
}

/// Sends on schedule until `duration` has passed; returns how many were sent.
fn open_loop(
    mut sender: ClientSender,
    mut mix: Mix,
    shared: &Shared,
    start: Instant,
    duration: Duration,
    interval_ns: i64,
) -> u64 {
    let end_ns = duration.as_nanos() as i64;
    let mut sent = 0u64;
    let interval_ns = interval_ns.max(1);
    let mut planned_ns = 0;
    while planned_ns < end_ns {
        let wait_ns = planned_ns - now_ns(start);
        if wait_ns > 0 {
            std::thread::sleep(Duration::from_nanos(wait_ns as u64));
        }
        let request_id = sent + 1;
        let slot = (request_id as usize - 1) % SLOTS;
        let request = mix.next(request_id, &shared.open_orders);
        shared.kind[slot].store(request.kind, Ordering::Relaxed);
        shared.planned_ns[slot].store(planned_ns + 1, Ordering::Release);
        if sender.send(&request.message).is_err() {
            break;
        }
        sent += 1;
        planned_ns += interval_ns;
    }
    // Give the last answers time to arrive, then stop the receiver.
    std::thread::sleep(Duration::from_millis(500));
    shared.stop.store(true, Ordering::Release);
    let _ = sender.logout();
    sent
}

/// Reads reports, matching each request's first report to its planned send time.
fn receive(
    mut receiver: ClientReceiver,
    shared: Arc<Shared>,
    start: Instant,
    tag: String,
) -> anyhow::Result<ConnectionDone> {
    let mut recorder = Recorder::new(tag);
    loop {
        let frame = match receiver.recv() {
            Ok(frame) => frame,
            Err(ClientError::Closed) => break,
            Err(ClientError::Io(_)) if shared.stop.load(Ordering::Acquire) => break,
            Err(error) => return Err(error.into()),
        };
        let now = now_ns(start);
        match frame.message {
            Message::ExecutionReport(report) => {
                mix::track_open_orders(&report, &shared.open_orders);
                if report.request_id == 0 {
                    continue;
                }
                let slot = (report.request_id as usize - 1) % SLOTS;
                let planned = shared.planned_ns[slot].swap(0, Ordering::AcqRel);
                if planned > 0 {
                    let kind = shared.kind[slot].load(Ordering::Relaxed);
                    recorder.record(usize::from(kind), planned - 1, now);
                    shared.answered.fetch_add(1, Ordering::Relaxed);
                }
            }
            Message::Logout(_) => break,
            _ => {}
        }
    }
    Ok(recorder.finish(start))
}

/// One request at a time.
fn closed_loop(
    mut sender: ClientSender,
    mut receiver: ClientReceiver,
    mut mix: Mix,
    shared: Arc<Shared>,
    start: Instant,
    duration: Duration,
    tag: String,
) -> anyhow::Result<ConnectionDone> {
    let mut recorder = Recorder::new(tag);
    let end_ns = duration.as_nanos() as i64;
    let mut request_id = 0u64;
    while now_ns(start) < end_ns {
        request_id += 1;
        let Request { message, kind } = mix.next(request_id, &shared.open_orders);
        let sent_ns = now_ns(start);
        sender.send(&message)?;
        loop {
            if let Message::ExecutionReport(report) = receiver.recv()?.message {
                let received_ns = now_ns(start);
                mix::track_open_orders(&report, &shared.open_orders);
                if report.request_id == request_id && report.report_type != report_type::FILL {
                    recorder.record(usize::from(kind), sent_ns, received_ns);
                    shared.answered.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
    sender.logout()?;
    let mut done = recorder.finish(start);
    done.sent = request_id;
    Ok(done)
}

/// Histograms for the run and for the current one-second interval.
struct Recorder {
    tag: String,
    total: Vec<Histogram<u64>>,
    current: Vec<Histogram<u64>>,
    interval_index: i64,
    intervals: Vec<IntervalRecord>,
    answered: u64,
}

const INTERVAL_NS: i64 = 1_000_000_000;

impl Recorder {
    fn new(tag: String) -> Recorder {
        Recorder {
            tag,
            total: KINDS.iter().map(|_| new_histogram()).collect(),
            current: KINDS.iter().map(|_| new_histogram()).collect(),
            interval_index: 0,
            intervals: Vec::new(),
            answered: 0,
        }
    }

    fn record(&mut self, kind: usize, from_ns: i64, to_ns: i64) {
        let index = to_ns / INTERVAL_NS;
        if index != self.interval_index {
            self.close_interval();
            self.interval_index = index;
        }
        let latency_ns = (to_ns - from_ns).max(1) as u64;
        if let (Some(total), Some(current)) = (self.total.get_mut(kind), self.current.get_mut(kind)) {
            total.saturating_record(latency_ns);
            current.saturating_record(latency_ns);
        }
        self.answered += 1;
    }

    fn close_interval(&mut self) {
        for (kind, histogram) in self.current.iter_mut().enumerate() {
            if histogram.is_empty() {
                continue;
            }
            self.intervals.push(IntervalRecord {
                tag: format!("{}.{}", self.tag, KINDS[kind]),
                start_offset: Duration::from_nanos((self.interval_index * INTERVAL_NS) as u64),
                length: Duration::from_nanos(INTERVAL_NS as u64),
                histogram: histogram.clone(),
            });
            histogram.reset();
        }
    }

    fn finish(mut self, _start: Instant) -> ConnectionDone {
        self.close_interval();
        ConnectionDone {
            histograms: self.total,
            intervals: self.intervals,
            sent: 0,
            answered: self.answered,
            statuses: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_process(rate: u64, mix: MixKind) -> LoadConfig {
        LoadConfig {
            connections: 2,
            rate,
            duration: Duration::from_millis(500),
            mix,
            seed: 3,
            target: Target::InProcess { shards: 1, busy_poll: false },
            protocol: Protocol::Binary,
            http: HttpTarget::InProcess { shards: 1 },
        }
    }

    #[test]
    fn a_closed_loop_run_answers_every_request_it_sent() {
        let result = run(&in_process(0, MixKind::NewCancel), |_| {}).unwrap();
        assert!(result.sent > 0);
        assert_eq!(result.answered, result.sent);
        let counted: u64 = result.kinds.iter().map(|k| k.histogram.len()).sum();
        assert_eq!(counted, result.answered);
        assert!(!result.kinds[0].histogram.is_empty() && !result.kinds[1].histogram.is_empty());
        assert!(report::percentile_table(&result).contains("| binary.new_order |"));
    }

    #[test]
    fn an_open_loop_run_sends_its_schedule_and_writes_a_readable_log() {
        let result = run(&in_process(400, MixKind::ExchangeCore), |_| {}).unwrap();
        assert_eq!(result.sent, 200, "400 requests/s for half a second");
        assert_eq!(result.answered, result.sent);
        let directory = std::env::temp_dir().join(format!("simex-loadgen-test-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let hlog = directory.join("run.hlog");
        report::write_interval_log(&result, &hlog).unwrap();
        let bytes = std::fs::read(&hlog).unwrap();
        let histograms = hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&bytes)
            .filter(|entry| matches!(entry, Ok(hdrhistogram::serialization::interval_log::LogEntry::Interval(_))))
            .count();
        assert!(histograms > 0);
        let svg = directory.join("run.svg");
        report::draw_spectrum(&result, &svg, "test").unwrap();
        assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
        let _ = std::fs::remove_dir_all(&directory);
    }

    #[test]
    fn a_closed_loop_http_run_places_every_order_against_a_served_venue() {
        let config = LoadConfig {
            protocol: Protocol::Http,
            duration: Duration::from_millis(400),
            ..in_process(0, MixKind::NewCancel)
        };
        let result = run(&config, |_| {}).unwrap();
        assert!(result.sent > 0);
        assert_eq!(result.answered, result.sent);
        let new_orders = result.kinds.iter().find(|k| k.name == "http.new_order").unwrap().histogram.len();
        assert!(new_orders > 0);
        assert_eq!(result.http_statuses.get("new_order 201").copied(), Some(new_orders), "{:?}", result.http_statuses);
        let failed: Vec<_> = result
            .http_statuses
            .keys()
            .filter(|status| !status.ends_with(" 200") && !status.ends_with(" 201"))
            .collect();
        assert!(failed.is_empty(), "{:?}", result.http_statuses);
        let table = report::percentile_table(&result);
        assert!(table.contains("| http.new_order |") && table.contains("| http.cancel |"), "{table}");
        assert!(!table.contains("binary."), "{table}");
        assert!(result.intervals.iter().all(|interval| interval.tag.starts_with("http.conn")));
    }
}
