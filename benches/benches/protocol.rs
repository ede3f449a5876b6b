//! `cargo bench -p simex-benches --bench protocol [-- OPTIONS]`: the binary order-entry protocol
//! and the HTTP API over loopback TCP against the machine's floor, in one run.
//!
//! 1. **Floor**: raw TCP ping-pong between two threads with blocking sockets, sending a frame the
//!    size of a `new_order` (88 bytes) and answering one the size of an `execution_report` (128).
//! 2. **Round trip**: a client sends a `new_order` and waits for its `accepted` report through the
//!    binary gateway and the runtime (one shard), closed loop; the order is then cancelled (the
//!    cancel is timed apart), so the book stays small.
//! 3. **Pipelined**: one connection sends IOC orders as fast as it can while another thread reads
//!    the reports; orders per second until the last is answered.
//! 4. **HTTP round trip**: the served venue (`simex::venue::run`, in-process, durability `none`, no
//!    price feeds, rate limit raised) answers `POST /api/portfolios/{id}/trades` with 201, on one
//!    keep-alive connection of a blocking `reqwest` client, closed loop; each order is then
//!    cancelled with `DELETE` (timed apart).
//! 5. **HTTP baseline**: a minimal axum server on the same kind of runtime (two worker threads)
//!    whose one handler parses a JSON body and answers 201 with a small JSON body, driven by the same
//!    client the same way: what any HTTP API costs on this machine, against which simex's is judged
//!    (the goal: at least half of its requests per second).
//! 6. **HTTP with PostgreSQL**: the HTTP round trip again on a fresh venue with `DATABASE_URL` set,
//!    against a throwaway cluster from `tools/pg-cluster` (skipped, saying why, when none can be
//!    provisioned, or with `--no-postgres`), so the projection follows the journal while orders are
//!    placed; a thread reads the venue's `/metrics` every 100 ms for the projection's lag (records
//!    and venue seconds behind), reported as its maximum, its value when the last order was
//!    answered, and how long the projection then took to catch up.
//!
//! Nothing is pinned and nothing spins: the shard parks, the gateway blocks in `poll` when idle,
//! the sockets block. Prints the markdown report to stdout.

use clap::Parser;
use hdrhistogram::Histogram;
use simex::binary::client::Client;
use simex::binary::protocol::{order_kind, report_type, side, time_in_force, Cancel, Message, NewOrder, HEADER_LEN};
use simex::binary::{spawn, BinaryConfig, MemoryKeys};
use simex::runtime::{new_histogram, Response, Runtime, RuntimeConfig};
use simex_engine::{CommandBody, InstrumentTable};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    about = "simex protocol benchmark: binary and HTTP round trips against raw TCP ping-pong and a minimal HTTP server, and pipelined throughput"
)]
struct Cli {
    /// Round trips measured in the floor and in the protocol round trip.
    #[arg(long, default_value_t = 20_000)]
    samples: usize,
    /// Orders sent in the pipelined run.
    #[arg(long, default_value_t = 200_000)]
    pipelined: usize,
    /// Round trips measured in the HTTP round trip and in its baseline.
    #[arg(long, default_value_t = 5_000)]
    http_samples: usize,
    /// Skip the HTTP run with PostgreSQL.
    #[arg(long)]
    no_postgres: bool,
    /// Busy-poll the gateway's event loop.
    #[arg(long)]
    busy_poll: bool,
    /// Tiny sizes: checks that every part runs. The numbers mean nothing.
    #[arg(long)]
    quick: bool,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

const REQUEST_BYTES: usize = HEADER_LEN + 72;
const REPORT_BYTES: usize = HEADER_LEN + 112;

fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    if cli.quick {
        cli.samples = 500;
        cli.pipelined = 2_000;
        cli.http_samples = 200;
    }
    let warmup = (cli.samples / 10).max(100);
    eprintln!("floor: raw TCP ping-pong, {} round trips", cli.samples);
    let floor = tcp_ping_pong(warmup, cli.samples)?;

    let (venue, address, symbol_id) = start_venue(cli.busy_poll)?;
    eprintln!("round trip: new_order -> accepted, {} round trips", cli.samples);
    let (round_trip, cancel) = protocol_round_trip(address, symbol_id, warmup, cli.samples)?;
    eprintln!("pipelined: {} IOC orders on one connection", cli.pipelined);
    let (orders_per_second, pipelined_elapsed, busy) = pipelined(address, symbol_id, cli.pipelined)?;
    drop(venue);
    let http_warmup = (cli.http_samples / 10).max(50);
    eprintln!("HTTP round trip: POST trades -> 201, {} round trips", cli.http_samples);
    let http_venue = start_http_venue(None)?;
    let measured = http_round_trip(&http_venue.base_url, http_warmup, cli.http_samples);
    drop(http_venue);
    let (http_orders, http_cancels, http_elapsed) = measured?;
    eprintln!("HTTP baseline: minimal axum POST -> 201, {} round trips", cli.http_samples);
    let (baseline, baseline_elapsed) = http_baseline(http_warmup, cli.http_samples)?;
    let with_postgres = if cli.no_postgres {
        Err("--no-postgres".to_string())
    } else {
        eprintln!("HTTP round trip with PostgreSQL: {} round trips", cli.http_samples);
        http_with_postgres(http_warmup, cli.http_samples)
    };

    println!("| path | count | p50 µs | p90 µs | p99 µs | p99.9 µs | p99.99 µs | max µs |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (name, histogram) in [
        ("raw TCP ping-pong (floor)", &floor),
        ("new_order → accepted", &round_trip),
        ("cancel → cancelled", &cancel),
        ("HTTP baseline: axum POST → 201", &baseline),
        ("HTTP POST trades → 201", &http_orders),
        ("HTTP DELETE order → 200", &http_cancels),
    ]
    .into_iter()
    .chain(with_postgres.as_ref().ok().map(|pg| ("HTTP POST trades → 201, with PostgreSQL", &pg.orders)))
    {
        let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1_000.0;
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            histogram.len(),
            us(0.5),
            us(0.9),
            us(0.99),
            us(0.999),
            us(0.9999),
            histogram.max() as f64 / 1_000.0
        );
    }
    let ratio = |of: &Histogram<u64>, to: &Histogram<u64>, q: f64| {
        of.value_at_quantile(q) as f64 / to.value_at_quantile(q).max(1) as f64
    };
    println!();
    println!("| ratio | p50 | p99 | p99.9 |");
    println!("| --- | --- | --- | --- |");
    for (name, of, to) in [
        ("new_order → accepted / floor", &round_trip, &floor),
        ("HTTP POST trades → 201 / floor", &http_orders, &floor),
        ("HTTP POST trades → 201 / new_order → accepted", &http_orders, &round_trip),
        ("HTTP POST trades → 201 / HTTP baseline", &http_orders, &baseline),
    ]
    .into_iter()
    .chain(with_postgres.as_ref().ok().into_iter().flat_map(|pg| {
        [
            ("HTTP POST trades → 201, with PostgreSQL / HTTP baseline", &pg.orders, &baseline),
            ("HTTP POST trades → 201, with PostgreSQL / without", &pg.orders, &http_orders),
        ]
    })) {
        println!(
            "| {name} | {:.2}× | {:.2}× | {:.2}× |",
            ratio(of, to, 0.5),
            ratio(of, to, 0.99),
            ratio(of, to, 0.999)
        );
    }
    println!();
    let simex_rate = cli.http_samples as f64 / http_elapsed.as_secs_f64();
    let baseline_rate = cli.http_samples as f64 / baseline_elapsed.as_secs_f64();
    println!(
        "HTTP, one connection, closed loop: simex {simex_rate:.0} orders/s, baseline {baseline_rate:.0} requests/s: {:.2}× the baseline",
        simex_rate / baseline_rate
    );
    match &with_postgres {
        Ok(pg) => {
            let rate = cli.http_samples as f64 / pg.elapsed.as_secs_f64();
            println!(
                "HTTP with PostgreSQL, one connection, closed loop: simex {rate:.0} orders/s: {:.2}× the baseline, {:.2}× simex without PostgreSQL",
                rate / baseline_rate,
                rate / simex_rate
            );
            println!(
                "projection lag during the run (sampled every 100 ms): max {} records / {:.3} s behind; when the last order was answered {} records / {:.3} s; caught up {:.2} s later",
                pg.lag_max.records,
                pg.lag_max.seconds,
                pg.lag_at_end.records,
                pg.lag_at_end.seconds,
                pg.caught_up_after.as_secs_f64()
            );
        }
        Err(why) => println!("HTTP with PostgreSQL: skipped ({why})"),
    }
    println!(
        "pipelined: {} IOC orders answered in {:.3} s: {:.0} orders/s ({busy} rejected as busy)",
        cli.pipelined,
        pipelined_elapsed.as_secs_f64(),
        orders_per_second
    );
    Ok(())
}

fn tcp_ping_pong(warmup: usize, samples: usize) -> anyhow::Result<Histogram<u64>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let total = warmup + samples;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let (mut request, reply) = ([0u8; REQUEST_BYTES], [7u8; REPORT_BYTES]);
        for _ in 0..total {
            stream.read_exact(&mut request)?;
            stream.write_all(&reply)?;
        }
        Ok(())
    });
    let mut stream = TcpStream::connect(address)?;
    stream.set_nodelay(true)?;
    let (request, mut reply) = ([3u8; REQUEST_BYTES], [0u8; REPORT_BYTES]);
    let mut histogram = new_histogram();
    for index in 0..total {
        let sent = Instant::now();
        stream.write_all(&request)?;
        stream.read_exact(&mut reply)?;
        if index >= warmup {
            histogram.saturating_record(sent.elapsed().as_nanos() as u64);
        }
    }
    echo.join().map_err(|_| anyhow::anyhow!("echo thread panicked"))??;
    Ok(histogram)
}

struct Venue {
    runtime: Option<Runtime>,
    gateway: Option<simex::binary::BinaryHandle>,
}

impl Drop for Venue {
    fn drop(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown();
        }
    }
}

fn start_venue(busy_poll: bool) -> anyhow::Result<(Venue, std::net::SocketAddr, u16)> {
    let instruments = InstrumentTable::default_table();
    let symbol_id = instruments.by_symbol("AAPL").map(|i| i.symbol_id).unwrap_or(0);
    let config = RuntimeConfig { submitters: 2, taps: vec!["binary".into()], ..Default::default() };
    let started = Runtime::start(config, instruments.clone())?;
    let mut submitters = started.submitters;
    let mut admin = submitters.pop().expect("two submitters");
    let gateway_submitter = submitters.pop().expect("two submitters");
    for portfolio_id in [1, 2] {
        let ticket = admin
            .submit(CommandBody::CreatePortfolio { portfolio_id, cash_micros: 1_000_000_000 * 1_000_000 })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        while !matches!(admin.poll(), Some(Response::Done { ticket: done, .. }) if done == ticket) {
            std::thread::yield_now();
        }
    }
    drop(admin);
    let keys = MemoryKeys::new().with_user("bench-1", 1, &[1]).with_user("bench-2", 2, &[2]);
    let tap = started.taps.into_iter().next();
    let gateway =
        spawn(BinaryConfig { busy_poll, ..Default::default() }, gateway_submitter, tap, Arc::new(keys), instruments)?;
    let address = gateway.local_addr();
    Ok((Venue { runtime: Some(started.runtime), gateway: Some(gateway) }, address, symbol_id))
}

fn order(request_id: u64, portfolio_id: u32, symbol_id: u16, tif: u8) -> NewOrder {
    NewOrder {
        request_id,
        portfolio_id,
        symbol_id,
        side: side::BUY,
        order_kind: order_kind::LIMIT,
        price_ticks: 10_000,
        qty_lots: 1,
        time_in_force: tif,
        ..NewOrder::default()
    }
}

fn protocol_round_trip(
    address: std::net::SocketAddr,
    symbol_id: u16,
    warmup: usize,
    samples: usize,
) -> anyhow::Result<(Histogram<u64>, Histogram<u64>)> {
    let mut client = Client::connect(address)?;
    client.login("bench-1", 0)?;
    let (mut new_orders, mut cancels) = (new_histogram(), new_histogram());
    let mut request_id = 0;
    for index in 0..warmup + samples {
        request_id += 1;
        let sent = Instant::now();
        client.send(&Message::NewOrder(order(request_id, 1, symbol_id, time_in_force::GTC)))?;
        let accepted = wait_report(&mut client, request_id)?;
        let new_ns = sent.elapsed().as_nanos() as u64;
        anyhow::ensure!(accepted.report_type == report_type::ACCEPTED, "order not accepted: {accepted:?}");
        request_id += 1;
        let sent = Instant::now();
        let cancel = Cancel { request_id, order_id: accepted.order_id, portfolio_id: 1, padding: [0; 4] };
        client.send(&Message::Cancel(cancel))?;
        wait_report(&mut client, request_id)?;
        let cancel_ns = sent.elapsed().as_nanos() as u64;
        if index >= warmup {
            new_orders.saturating_record(new_ns);
            cancels.saturating_record(cancel_ns);
        }
    }
    client.sender.logout()?;
    Ok((new_orders, cancels))
}

fn wait_report(client: &mut Client, request_id: u64) -> anyhow::Result<simex::binary::protocol::ExecutionReport> {
    loop {
        if let Message::ExecutionReport(report) = client.recv()?.message {
            if report.request_id == request_id {
                return Ok(report);
            }
        }
    }
}

/// Sends `count` IOC orders (each is accepted, then its unfilled rest cancelled) as fast as the
/// socket takes them, and reads until the last one's cancel arrives.
fn pipelined(address: std::net::SocketAddr, symbol_id: u16, count: usize) -> anyhow::Result<(f64, Duration, usize)> {
    let mut client = Client::connect(address)?;
    client.login("bench-2", 0)?;
    client.receiver.set_read_timeout(Some(Duration::from_secs(30)))?;
    let (mut sender, mut receiver) = client.split();
    let start = Instant::now();
    let reader = std::thread::spawn(move || -> anyhow::Result<(Instant, usize)> {
        let (mut answered, mut rejected) = (0usize, 0usize);
        while answered < count {
            if let Message::ExecutionReport(report) = receiver.recv()?.message {
                match report.report_type {
                    report_type::CANCELLED => answered += 1,
                    report_type::REJECTED => {
                        answered += 1;
                        rejected += 1;
                    }
                    _ => {}
                }
            }
        }
        Ok((Instant::now(), rejected))
    });
    for index in 0..count {
        sender.queue(&Message::NewOrder(order(index as u64 + 1, 2, symbol_id, time_in_force::IOC)));
        if index % 64 == 63 {
            sender.flush()?;
        }
    }
    sender.flush()?;
    let (finished, rejected) = reader.join().map_err(|_| anyhow::anyhow!("reader panicked"))??;
    let elapsed = finished - start;
    sender.logout()?;
    Ok((count as f64 / elapsed.as_secs_f64(), elapsed, rejected))
}

/// Serves the venue in this process, as `simex` does, with a fresh data directory; dropping it
/// stops the venue and removes the directory.
fn start_http_venue(database_url: Option<String>) -> anyhow::Result<simex::venue::InProcessVenue> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let name = if database_url.is_some() { "protocol-pg" } else { "protocol" };
    let data_dir = std::env::temp_dir().join(format!("simex-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let args = simex::config::ServeArgs {
        port: Some(port),
        binary_port: Some(0),
        data_dir: Some(data_dir),
        durability: Some("none".into()),
        feeds: Some("off".into()),
        rate_limit_per_second: Some(10_000_000),
        rate_limit_burst: Some(10_000_000),
        database_url,
        ..simex::config::ServeArgs::default()
    };
    simex::venue::InProcessVenue::start(simex::config::VenueConfig::resolve(args)?)
}

fn http_client() -> anyhow::Result<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder().pool_max_idle_per_host(1).tcp_nodelay(true).build()?)
}

/// New order -> 201, then its cancel, closed loop on one connection; returns both histograms and
/// the time the measured new orders took in all.
fn http_round_trip(
    base_url: &str,
    warmup: usize,
    samples: usize,
) -> anyhow::Result<(Histogram<u64>, Histogram<u64>, Duration)> {
    let client = http_client()?;
    let registered: serde_json::Value = client
        .post(format!("{base_url}/api/auth/register"))
        .json(&serde_json::json!({"email": "bench@example.com", "name": "bench", "display_name": "bench"}))
        .send()?
        .error_for_status()?
        .json()?;
    let key = registered["api_key"].as_str().ok_or_else(|| anyhow::anyhow!("no api_key"))?.to_string();
    let created: serde_json::Value = client
        .post(format!("{base_url}/api/portfolios"))
        .header("x-api-key", &key)
        .json(&serde_json::json!({"starting_balance": "1000000000"}))
        .send()?
        .error_for_status()?
        .json()?;
    let portfolio = created["portfolio_id"].as_u64().ok_or_else(|| anyhow::anyhow!("no portfolio_id"))?;
    let order = serde_json::json!({
        "ticker": "AAPL", "side": "buy", "shares": 1, "type": "limit", "limit_price": "100.00", "time_in_force": "gtc"
    });
    let (mut orders, mut cancels, mut elapsed) = (new_histogram(), new_histogram(), Duration::ZERO);
    for index in 0..warmup + samples {
        let sent = Instant::now();
        let response = client
            .post(format!("{base_url}/api/portfolios/{portfolio}/trades"))
            .header("x-api-key", &key)
            .json(&order)
            .send()?;
        let status = response.status();
        let placed: serde_json::Value = response.json()?;
        let order_ns = sent.elapsed();
        anyhow::ensure!(status == reqwest::StatusCode::CREATED, "order answered {status}: {placed}");
        let order_id = placed["order_id"].as_u64().ok_or_else(|| anyhow::anyhow!("no order_id: {placed}"))?;
        let sent = Instant::now();
        let response = client
            .delete(format!("{base_url}/api/portfolios/{portfolio}/orders/{order_id}"))
            .header("x-api-key", &key)
            .send()?;
        let status = response.status();
        response.bytes()?;
        let cancel_ns = sent.elapsed();
        anyhow::ensure!(status.is_success(), "cancel answered {status}");
        if index >= warmup {
            orders.saturating_record(order_ns.as_nanos() as u64);
            cancels.saturating_record(cancel_ns.as_nanos() as u64);
            elapsed += order_ns;
        }
    }
    Ok((orders, cancels, elapsed))
}

/// The same client against a minimal axum handler; returns the histogram and the measured time.
fn http_baseline(warmup: usize, samples: usize) -> anyhow::Result<(Histogram<u64>, Duration)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let handler = |axum::Json(_order): axum::Json<serde_json::Value>| async {
                (axum::http::StatusCode::CREATED, axum::Json(serde_json::json!({"order_id": 1, "status": "open"})))
            };
            let router = axum::Router::new().route("/orders", axum::routing::post(handler));
            if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                let _ = axum::serve(listener, router).await;
            }
        })
    });
    let client = http_client()?;
    let url = format!("http://{address}/orders");
    let order = serde_json::json!({
        "ticker": "AAPL", "side": "buy", "shares": 1, "type": "limit", "limit_price": "100.00", "time_in_force": "gtc"
    });
    let (mut histogram, mut elapsed) = (new_histogram(), Duration::ZERO);
    for index in 0..warmup + samples {
        let sent = Instant::now();
        let response = client.post(&url).json(&order).send()?;
        let status = response.status();
        let _: serde_json::Value = response.json()?;
        let took = sent.elapsed();
        anyhow::ensure!(status == reqwest::StatusCode::CREATED, "baseline answered {status}");
        if index >= warmup {
            histogram.saturating_record(took.as_nanos() as u64);
            elapsed += took;
        }
    }
    Ok((histogram, elapsed))
}

/// The projection's lag as `/metrics` reports it: records behind summed over shards, and the
/// largest venue-time lag of any shard.
#[derive(Clone, Copy, Debug, Default)]
struct Lag {
    records: u64,
    seconds: f64,
}

fn read_lag(client: &reqwest::blocking::Client, metrics_url: &str) -> Option<Lag> {
    let text = client.get(metrics_url).send().ok()?.text().ok()?;
    let mut lag = Lag::default();
    let mut seen = false;
    for line in text.lines() {
        let value = line.rsplit(' ').next().unwrap_or("");
        if line.starts_with("simex_projection_records_behind{") {
            lag.records += value.parse::<u64>().ok()?;
            seen = true;
        } else if line.starts_with("simex_projection_seconds_behind{") {
            lag.seconds = lag.seconds.max(value.parse().ok()?);
        }
    }
    seen.then_some(lag)
}

struct WithPostgres {
    orders: Histogram<u64>,
    elapsed: Duration,
    lag_max: Lag,
    lag_at_end: Lag,
    caught_up_after: Duration,
}

/// A throwaway cluster from `tools/pg-cluster`, stopped and removed on drop.
struct PgCluster {
    script: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.script).arg("stop").arg(&self.dir).output();
    }
}

/// Starts a cluster; the error says why none could be had (it is printed as the reason to skip).
fn provision_postgres() -> Result<(PgCluster, String), String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/pg-cluster");
    let dir = std::env::temp_dir().join(format!("simex-bench-pg-{}", std::process::id()));
    let cluster = PgCluster { script: script.clone(), dir: dir.clone() };
    let output = std::process::Command::new(&script)
        .arg("start")
        .arg(&dir)
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("tools/pg-cluster could not start PostgreSQL: {}", stderr.trim()));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let url = stdout
        .lines()
        .find_map(|line| line.strip_prefix("export SIMEX_TEST_DATABASE_URL="))
        .map(|quoted| quoted.trim_matches('\'').to_string())
        .ok_or("tools/pg-cluster printed no SIMEX_TEST_DATABASE_URL")?;
    Ok((cluster, url))
}

/// The HTTP round trip on a venue projecting into PostgreSQL, with the projection's lag sampled.
fn http_with_postgres(warmup: usize, samples: usize) -> Result<WithPostgres, String> {
    let (cluster, url) = provision_postgres()?;
    let http_venue = start_http_venue(Some(url)).map_err(|e| format!("{e:#}"))?;
    let base_url = http_venue.base_url.clone();
    let metrics_url = format!("{base_url}/metrics");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (stop, metrics_url) = (stop.clone(), metrics_url.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut max = Lag::default();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(lag) = read_lag(&client, &metrics_url) {
                    max.records = max.records.max(lag.records);
                    max.seconds = max.seconds.max(lag.seconds);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            max
        })
    };
    let measured = http_round_trip(&base_url, warmup, samples);
    let client = reqwest::blocking::Client::new();
    let lag_at_end = read_lag(&client, &metrics_url).unwrap_or_default();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut lag_max = sampler.join().map_err(|_| "the lag sampler panicked".to_string())?;
    lag_max.records = lag_max.records.max(lag_at_end.records);
    lag_max.seconds = lag_max.seconds.max(lag_at_end.seconds);
    let ended = Instant::now();
    let deadline = ended + Duration::from_secs(60);
    let caught_up_after = loop {
        if read_lag(&client, &metrics_url).is_some_and(|lag| lag.records == 0) {
            break ended.elapsed();
        }
        if Instant::now() > deadline {
            return Err("the projection did not catch up within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // The venue (and its projection) stops before its database does.
    drop(http_venue);
    drop(cluster);
    let (orders, _cancels, elapsed) = measured.map_err(|e| format!("{e:#}"))?;
    Ok(WithPostgres { orders, elapsed, lag_max, lag_at_end, caught_up_after })
}
