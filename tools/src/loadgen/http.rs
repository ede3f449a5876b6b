//! The HTTP target: the same order mix over the JSON API (`docs/http.md`), one keep-alive
//! HTTP/1.1 connection per loadgen connection, one request in flight on each.
//!
//! A request's latency runs from its planned send time (open loop) or its send (closed loop) to
//! the end of its answer: `POST /api/portfolios/{id}/trades` for a new order, `DELETE` of the order
//! for a cancel and `PATCH` for a replace. HTTP has no pipelining here, so in open loop a slow
//! answer delays the next send and that delay is counted against it, as for the binary target.
//!
//! The in-process venue is the served venue on its own thread, with a fresh data directory,
//! durability `none`, no price feeds, free ports and its per-key rate limit raised to
//! [`RATE_LIMIT`] (the served default of 50 requests/s would answer most of the load 429). It runs
//! under `simex::venue::run_until` and is stopped (and its data directory removed) when the run is
//! done, so that a `--target both` run or a test does not leave a venue behind.

use super::mix::{self, Mix, OpenOrder, KIND_NEW, KIND_REPLACE};
use super::{now_ns, ConnectionDone, LoadConfig, Recorder, Shared};
use anyhow::Context;
use simex::binary::protocol::{side, time_in_force, Message};
use simex::config::{ServeArgs, VenueConfig};
use simex::venue::InProcessVenue;
use simex_engine::decimal::Step;
use simex_engine::InstrumentTable;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests per second (and burst) per API key of the in-process HTTP venue.
pub const RATE_LIMIT: u32 = 10_000_000;

/// A served venue in this process; dropping it stops the venue and removes its data directory.
pub type HttpVenue = InProcessVenue;

/// Serves the venue in this process (see the module documentation) with `shards` shards.
pub fn start_venue(shards: usize) -> anyhow::Result<HttpVenue> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let unique = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let data_dir = std::env::temp_dir().join(format!("simex-loadgen-{}-{unique}", std::process::id()));
    let args = ServeArgs {
        port: Some(port),
        binary_port: Some(0),
        data_dir: Some(data_dir),
        durability: Some("none".into()),
        feeds: Some("off".into()),
        shards: Some(shards),
        rate_limit_per_second: Some(RATE_LIMIT),
        rate_limit_burst: Some(RATE_LIMIT),
        auth_rate_limit_per_second: Some(1_000),
        auth_rate_limit_burst: Some(1_000),
        ..ServeArgs::default()
    };
    InProcessVenue::start(VenueConfig::resolve(args)?)
}

/// One loadgen connection's account on the API: its key and portfolio.
pub struct Account {
    pub api_key: String,
    pub portfolio_id: u64,
}

/// Registers one user and opens a portfolio per connection, with cash for the whole run.
pub fn open_accounts(base_url: &str, connections: usize) -> anyhow::Result<Vec<Account>> {
    let client = reqwest::blocking::Client::new();
    let unique = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let registered: serde_json::Value = client
        .post(format!("{base_url}/api/auth/register"))
        .json(&serde_json::json!({
            "email": format!("loadgen-{unique}@example.com"),
            "name": "loadgen",
            "display_name": "simex-loadgen",
        }))
        .send()?
        .error_for_status()
        .context("registering the loadgen's user")?
        .json()?;
    let api_key = registered["api_key"].as_str().context("no api_key in the register answer")?.to_string();
    let mut accounts = Vec::new();
    for connection in 0..connections {
        let created: serde_json::Value = client
            .post(format!("{base_url}/api/portfolios"))
            .header("x-api-key", &api_key)
            .json(&serde_json::json!({"name": format!("loadgen-{connection}"), "starting_balance": "1000000000"}))
            .send()?
            .error_for_status()
            .context("opening a portfolio")?
            .json()?;
        let portfolio_id = created["portfolio_id"].as_u64().context("no portfolio_id in the answer")?;
        accounts.push(Account { api_key: api_key.clone(), portfolio_id });
    }
    Ok(accounts)
}

/// What one connection needs to turn the mix's messages into requests.
pub struct Connection {
    pub base_url: String,
    pub account: Account,
    pub ticker: String,
    pub tick: Step,
}

impl Connection {
    pub fn new(base_url: &str, account: Account) -> Connection {
        let instruments = InstrumentTable::default_table();
        let tick = instruments.by_symbol("AAPL").map(|i| i.tick).unwrap_or(Step { mantissa: 1, scale: 2 });
        Connection { base_url: base_url.to_string(), account, ticker: "AAPL".into(), tick }
    }
}

/// Sends the mix over HTTP until `duration` has passed: on schedule (`interval_ns`, open loop) or
/// back to back (`None`, closed loop).
pub(super) fn drive(
    connection: Connection,
    mut mix: Mix,
    shared: Arc<Shared>,
    config: &LoadConfig,
    start: Instant,
    interval_ns: Option<i64>,
    tag: String,
) -> anyhow::Result<ConnectionDone> {
    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut recorder = Recorder::new(tag);
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let end_ns = config.duration.as_nanos() as i64;
    let portfolio = connection.account.portfolio_id;
    let base = &connection.base_url;
    let mut planned_ns = 0i64;
    let mut sent = 0u64;
    loop {
        let from_ns = match interval_ns {
            Some(interval) => {
                if planned_ns >= end_ns {
                    break;
                }
                let wait_ns = planned_ns - now_ns(start);
                if wait_ns > 0 {
                    std::thread::sleep(Duration::from_nanos(wait_ns as u64));
                }
                let planned = planned_ns;
                planned_ns += interval.max(1);
                planned
            }
            None => {
                let now = now_ns(start);
                if now >= end_ns {
                    break;
                }
                now
            }
        };
        sent += 1;
        let request = mix.next(sent, &shared.open_orders);
        let builder = match &request.message {
            Message::NewOrder(order) => {
                client.post(format!("{base}/api/portfolios/{portfolio}/trades")).json(&serde_json::json!({
                    "ticker": connection.ticker,
                    "side": if order.side == side::BUY { "buy" } else { "sell" },
                    "shares": order.qty_lots,
                    "type": "limit",
                    "limit_price": connection.tick.format(order.price_ticks).to_string(),
                    "time_in_force": if order.time_in_force == time_in_force::IOC { "ioc" } else { "gtc" },
                }))
            }
            Message::Cancel(cancel) => {
                client.delete(format!("{base}/api/portfolios/{portfolio}/orders/{}", cancel.order_id))
            }
            Message::Replace(replace) => client
                .patch(format!("{base}/api/portfolios/{portfolio}/orders/{}", replace.order_id))
                .json(&serde_json::json!({"limit_price": connection.tick.format(replace.price_ticks).to_string()})),
            other => anyhow::bail!("the mix made a message HTTP has no request for: {other:?}"),
        };
        let response = builder.header("x-api-key", &connection.account.api_key).send()?;
        let status = response.status();
        let body = response.bytes()?;
        recorder.record(usize::from(request.kind), from_ns, now_ns(start));
        shared.answered.fetch_add(1, Ordering::Relaxed);
        *statuses.entry(format!("{} {}", super::KINDS[usize::from(request.kind)], status.as_u16())).or_default() += 1;
        track(&request.message, request.kind, status.is_success(), &body, &shared);
    }
    let mut done = recorder.finish(start);
    done.sent = sent;
    done.statuses = statuses;
    Ok(done)
}

/// Keeps the connection's open orders up to date from an answer.
fn track(message: &Message, kind: u8, success: bool, body: &[u8], shared: &Shared) {
    let mut orders = shared.open_orders.lock().unwrap_or_else(|e| e.into_inner());
    match (kind, message) {
        (KIND_NEW, Message::NewOrder(order)) if success && order.time_in_force == time_in_force::GTC => {
            let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else { return };
            let Some(order_id) = answer["order_id"].as_u64() else { return };
            if let Some(client_id) = mix::client_id_of(&order.client_order_id) {
                orders.by_client_id.insert(client_id, order_id);
            }
            if orders.keep_queue && matches!(answer["status"].as_str(), Some("open" | "partially_filled")) {
                if orders.queue.len() >= mix::REMEMBERED_MAX {
                    orders.queue.pop_front();
                }
                orders.queue.push_back(OpenOrder {
                    order_id,
                    side: order.side,
                    price_ticks: order.price_ticks,
                    qty_lots: order.qty_lots,
                });
            }
        }
        // The order is gone (filled meanwhile): forget it.
        (KIND_REPLACE, Message::Replace(replace)) if !success => {
            orders.queue.retain(|o| o.order_id != replace.order_id)
        }
        _ => {}
    }
}
