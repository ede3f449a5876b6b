//! The real `simex` binary with `DATABASE_URL` set.
//!
//! SIGKILLed while clients trade over HTTP and
//! started again on the same data directory: once the projection has caught up, PostgreSQL and the
//! API must agree with each other and with the recovered state. Every fill once (no duplicate, none
//! missing), every order the clients were told was accepted present with the API's status, users'
//! portfolios as the API lists them, and each portfolio's cash and positions derived from the rows
//! equal to what the recovered engine reports. The API is then served without `DATABASE_URL`, so
//! its answers come from the journal, not from the rows they are compared with.
//!
//! History from PostgreSQL: the same history requests answered from PostgreSQL (as `/metrics`
//! confirms) and, on the same data directory without `DATABASE_URL`, from the journal-backed store
//! must be byte for byte the same.
//!
//! Needs `SIMEX_TEST_DATABASE_URL` (`tools/pg-cluster`, as `tools/test` provides). Without it the
//! test says so and passes, unless `CI=true` or `SIMEX_REQUIRE_PG=1`, when it fails.

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};
use simex::http::numbers::Num;
use simex_engine::InstrumentTable;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
mod support;

use support::{base_url, block_on, connect, fresh_database};

struct Venue {
    child: Child,
    base: String,
    client: Client,
}

impl Venue {
    fn start(data_dir: &Path, database_url: &str) -> Venue {
        Venue::start_with(data_dir, Some(database_url), 2)
    }

    fn start_with(data_dir: &Path, database_url: Option<&str>, shards: usize) -> Venue {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_simex"));
        if let Some(url) = database_url {
            command.env("DATABASE_URL", url);
        }
        let child = command
            .env("PORT", port.to_string())
            .env("SIMEX_DATA_DIR", data_dir)
            .env("SIMEX_SHARDS", shards.to_string())
            .env("PROJECTION_FLUSH_INTERVAL_MS", "20")
            .env("RATE_LIMIT_PER_SECOND", "100000")
            .env("RATE_LIMIT_BURST", "100000")
            .env("RUST_LOG", "warn")
            .env("SIMEX_FEEDS", "off")
            .env("SIMEX_BINARY_PORT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting simex");
        let venue = Venue { child, base: format!("http://127.0.0.1:{port}"), client: Client::new() };
        // Bounded by a number of attempts, not by a clock.
        for _ in 0..600 {
            if venue.client.get(venue.url("/health")).send().is_ok_and(|r| r.status() == StatusCode::OK) {
                return venue;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("simex did not start listening");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn register(&self, email: &str) -> String {
        let body = json!({"email": email, "name": "Bot", "display_name": "A bot"});
        let response = self.client.post(self.url("/api/auth/register")).json(&body).send().unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().unwrap()["api_key"].as_str().unwrap().to_string()
    }

    fn get(&self, path: &str, key: &str) -> Value {
        let response = self.client.get(self.url(path)).header("x-api-key", key).send().unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().unwrap()
    }

    fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        let response = self.client.post(self.url(path)).header("x-api-key", key).json(&body).send().unwrap();
        (response.status(), response.json().unwrap_or(Value::Null))
    }

    fn call_patch(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        let response = self.client.patch(self.url(path)).header("x-api-key", key).json(&body).send().unwrap();
        (response.status(), response.json().unwrap_or(Value::Null))
    }

    fn metrics(&self) -> String {
        self.client.get(self.url("/metrics")).send().unwrap().text().unwrap()
    }
}

impl Drop for Venue {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One client's trading: resting sells from the maker, crossing buys from the taker, some cancels
/// and top-ups. Records every order id it was told was accepted.
fn trade_round(venue: &Venue, maker: (&str, u64), taker: (&str, u64), round: u64, accepted: &Mutex<Vec<u64>>) -> bool {
    let price = format!("{}.{:02}", 150 + round % 3, round % 100);
    let sell = json!({"ticker": "AAPL", "side": "sell", "shares": 3, "limit_price": price});
    let buy = json!({"ticker": "AAPL", "side": "buy", "shares": 2, "limit_price": price});
    let mut placed = Vec::new();
    for (key, portfolio, body) in [(maker.0, maker.1, sell), (taker.0, taker.1, buy)] {
        let Ok(response) = venue
            .client
            .post(venue.url(&format!("/api/portfolios/{portfolio}/trades")))
            .header("x-api-key", key)
            .json(&body)
            .send()
        else {
            return false; // the venue is gone
        };
        if response.status() != StatusCode::CREATED {
            return false;
        }
        let Ok(order) = response.json::<Value>() else { return false };
        let order_id = order["order_id"].as_u64().expect("an accepted order has an id");
        accepted.lock().unwrap().push(order_id);
        placed.push((key, portfolio, order_id));
    }
    if round % 4 == 0 {
        let (key, portfolio, order_id) = placed[0];
        let cancel = venue
            .client
            .delete(venue.url(&format!("/api/portfolios/{portfolio}/orders/{order_id}")))
            .header("x-api-key", key)
            .send();
        if cancel.is_err() {
            return false;
        }
    }
    if round % 7 == 0 {
        let topup = venue
            .client
            .post(venue.url(&format!("/api/portfolios/{}/topup", taker.1)))
            .header("x-api-key", taker.0)
            .json(&json!({"amount": "12.34"}))
            .send();
        if topup.is_err() {
            return false;
        }
    }
    true
}

/// The value of the first metrics line starting with `prefix`.
fn metric(metrics: &str, prefix: &str) -> Option<i64> {
    metrics.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Whether PostgreSQL holds everything the venue has: per shard, the projection's committed offset
/// equals the last sequence the read model (rebuilt from the journal) folded, and the lag report
/// says nothing is behind, the accounts journal included.
fn caught_up(venue: &Venue, url: &str, shards: u32) -> bool {
    let metrics = venue.metrics();
    if metric(&metrics, "simex_projection_connected ") != Some(1)
        || metric(&metrics, "simex_projection_accounts_records_behind ") != Some(0)
    {
        return false;
    }
    let offsets: BTreeMap<i32, i64> = block_on(async {
        let client = connect(url).await;
        let rows = client.query("SELECT shard, last_seq FROM projection_offsets", &[]).await.unwrap();
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    });
    let done = (0..shards).all(|shard| {
        // A shard with no event yet has neither a folded sequence nor an offset.
        let folded = metric(&metrics, &format!("simex_read_model_sequence{{shard=\"{shard}\"}} "));
        let behind = metric(&metrics, &format!("simex_projection_records_behind{{shard=\"{shard}\"}} "));
        offsets.get(&(shard as i32)).copied() == folded && (folded.is_none() || behind == Some(0))
    });
    if std::env::var_os("SIMEX_TEST_VERBOSE").is_some() {
        eprintln!("offsets {offsets:?}\n{metrics}");
    }
    done
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    // Only so that a broken venue fails the test instead of hanging it.
    for _ in 0..3000 {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("gave up waiting for {what}");
}

#[test]
fn sigkill_mid_run_then_postgres_and_the_api_agree_with_the_recovered_state() {
    let Some(base) = base_url() else { return };
    let url = fresh_database(&base, "sigkill");
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::start(dir.path(), &url);
    let maker = venue.register("maker@example.com");
    let taker = venue.register("taker@example.com");
    let (_, created) = venue.post("/api/portfolios", &maker, json!({"name": "making"}));
    let maker_portfolio = created["portfolio_id"].as_u64().unwrap();
    let (_, created) = venue.post("/api/portfolios", &taker, json!({"name": "taking", "starting_balance": 50000}));
    let taker_portfolio = created["portfolio_id"].as_u64().unwrap();
    let accepted = Arc::new(Mutex::new(Vec::new()));

    // A client trades without pause on its own thread; the venue is SIGKILLed under it.
    let venue = Arc::new(venue);
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (venue, accepted, stop) = (venue.clone(), accepted.clone(), stop.clone());
        let (maker, taker) = (maker.clone(), taker.clone());
        std::thread::spawn(move || {
            let mut round = 0;
            while !stop.load(Ordering::Relaxed)
                && trade_round(&venue, (&maker, maker_portfolio), (&taker, taker_portfolio), round, &accepted)
            {
                round += 1;
            }
        })
    };
    wait_until("trading before the kill", || accepted.lock().unwrap().len() >= 120);
    // SIGKILL by pid while the client thread is in the middle of its requests.
    let pid = venue.child.id().to_string();
    let killed = Command::new("kill").args(["-KILL", &pid]).status().expect("kill runs");
    assert!(killed.success());
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    drop(Arc::try_unwrap(venue).ok().expect("the client thread has ended")); // reaps the process
    let acknowledged: BTreeSet<u64> = accepted.lock().unwrap().iter().copied().collect();
    assert!(acknowledged.len() >= 120);

    // Restart on the same data directory and database; trade a little more.
    let venue = Venue::start(dir.path(), &url);
    let none = Mutex::new(Vec::new());
    for round in 1_000..1_020 {
        assert!(trade_round(&venue, (&maker, maker_portfolio), (&taker, taker_portfolio), round, &none));
    }
    wait_until("the projection to catch up with the recovered venue", || caught_up(&venue, &url, 2));
    // The API's answers from the journal-backed store, not from the rows they are compared with:
    // the same data directory, served without DATABASE_URL.
    drop(venue);
    let venue = Venue::start_with(dir.path(), None, 2);

    let instruments = InstrumentTable::default_table();
    // Queries one at a time on a runtime of their own: the blocking HTTP client must not run
    // inside an async context.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = rt.block_on(connect(&url));
    {
        // No fill twice.
        let row = rt.block_on(db.query_one("SELECT COUNT(*), COUNT(DISTINCT trade_id) FROM fills", &[])).unwrap();
        let (fills, distinct): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(fills, distinct, "a trade id appears twice in fills");
        assert!(fills > 50, "the clients traded: {fills} fills");

        for (key, portfolio_id, name) in [(&maker, maker_portfolio, "making"), (&taker, taker_portfolio, "taking")] {
            // The portfolio as the API lists it, and as user_portfolios holds it.
            let listed = venue.get("/api/portfolios", key);
            let listed = listed["portfolios"].as_array().unwrap().iter().find(|p| p["portfolio_id"] == portfolio_id);
            let listed = listed.expect("the API lists the portfolio").clone();
            let row = rt
                .block_on(db.query_one(
                    "SELECT name, starting_balance_micros, engine_portfolio_id FROM user_portfolios
                     WHERE portfolio_id = $1",
                    &[&(portfolio_id as i64)],
                ))
                .expect("user_portfolios has the portfolio");
            let (db_name, starting_micros, engine_id): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
            assert_eq!((db_name.as_str(), listed["name"].as_str().unwrap()), (name, name));
            assert_eq!(Value::String(Num::money(starting_micros).0), listed["starting_balance"]);

            // Trades: the API's history and PostgreSQL's fills are the same set.
            let mut api_trades = BTreeSet::new();
            let mut offset = 0;
            loop {
                let page = venue.get(&format!("/api/portfolios/{portfolio_id}/trades?limit=1000&offset={offset}"), key);
                let trades = page["trades"].as_array().unwrap();
                for t in trades {
                    let entry = (t["trade_id"].as_u64().unwrap(), t["order_id"].as_u64().unwrap());
                    assert!(api_trades.insert(entry), "the API lists {entry:?} twice");
                }
                offset += trades.len();
                if trades.is_empty() || offset as u64 >= page["total"].as_u64().unwrap() {
                    break;
                }
            }
            let rows = rt
                .block_on(db.query(
                    "SELECT trade_id, CASE WHEN maker_portfolio_id = $1 THEN maker_order_id ELSE taker_order_id END
                     FROM fills WHERE maker_portfolio_id = $1 OR taker_portfolio_id = $1",
                    &[&engine_id],
                ))
                .unwrap();
            let db_trades: BTreeSet<(u64, u64)> =
                rows.iter().map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64)).collect();
            assert_eq!(rows.len(), db_trades.len());
            assert_eq!(api_trades, db_trades, "portfolio {portfolio_id}: API trades and PostgreSQL fills differ");

            // Orders: same ids, statuses and filled quantities.
            let listed = venue.get(&format!("/api/portfolios/{portfolio_id}/orders?status=all"), key);
            let api_orders: BTreeMap<u64, (String, String)> = listed["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| {
                    let state = (o["status"].as_str().unwrap().to_string(), o["filled_shares"].to_string());
                    (o["order_id"].as_u64().unwrap(), state)
                })
                .collect();
            let rows = rt
                .block_on(
                    db.query("SELECT order_id, status, filled_lots FROM orders WHERE portfolio_id = $1", &[&engine_id]),
                )
                .unwrap();
            let aapl = instruments.by_symbol("AAPL").unwrap();
            let db_orders: BTreeMap<u64, (String, String)> = rows
                .iter()
                .map(|r| {
                    let filled = Value::String(Num::steps(aapl.lot, r.get(2)).0).to_string();
                    (r.get::<_, i64>(0) as u64, (r.get::<_, String>(1), filled))
                })
                .collect();
            assert_eq!(api_orders, db_orders, "portfolio {portfolio_id}: API orders and PostgreSQL orders differ");

            // Cash and positions: derived from the rows, equal to the recovered engine's.
            let shown = venue.get(&format!("/api/portfolios/{portfolio_id}/portfolio"), key);
            let row = rt
                .block_on(db.query_one(
                    "SELECT (p.starting_cash_micros
                        + COALESCE((SELECT SUM(delta_micros) FROM cash_adjustments WHERE portfolio_id = $1), 0)
                        + COALESCE((SELECT SUM(sold_notional_micros - bought_notional_micros - fees_micros)
                                    FROM positions WHERE portfolio_id = $1), 0))::INT8
                     FROM portfolios p WHERE p.portfolio_id = $1",
                    &[&engine_id],
                ))
                .unwrap();
            let cash_micros: i64 = row.get(0);
            assert_eq!(Value::String(Num::money(cash_micros).0), shown["cash_balance"], "portfolio {portfolio_id}");
            let rows = rt
                .block_on(
                    db.query("SELECT net_lots FROM positions WHERE portfolio_id = $1 AND net_lots <> 0", &[&engine_id]),
                )
                .unwrap();
            let db_positions: Vec<String> =
                rows.iter().map(|r| Value::String(Num::steps(aapl.lot, r.get(0)).0).to_string()).collect();
            let api_positions: Vec<String> =
                shown["positions"].as_array().unwrap().iter().map(|p| p["shares"].to_string()).collect();
            assert_eq!(api_positions, db_positions, "portfolio {portfolio_id}: positions differ");
        }

        // Nothing the clients were told was accepted is missing after the kill.
        let rows = rt.block_on(db.query("SELECT order_id FROM orders", &[])).unwrap();
        let in_db: BTreeSet<u64> = rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect();
        let missing: Vec<_> = acknowledged.difference(&in_db).take(5).collect();
        assert!(missing.is_empty(), "acknowledged orders missing from PostgreSQL: {missing:?}");
    }
}

fn text(venue: &Venue, path: &str, key: &str) -> String {
    let response = venue.client.get(venue.url(path)).header("x-api-key", key).send().unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.text().unwrap()
}

#[test]
fn history_from_postgres_is_byte_identical_to_the_journal_backed_store() {
    let Some(base) = base_url() else { return };
    let url = fresh_database(&base, "history");
    let dir = tempfile::tempdir().unwrap();
    // Two shards (AAPL on one, MSFT on the other): both stores list by venue time, shard, sequence.
    let venue = Venue::start_with(dir.path(), Some(&url), 2);
    let maker = venue.register("maker@example.com");
    let taker = venue.register("taker@example.com");
    let (_, created) = venue.post("/api/portfolios", &maker, json!({"name": "making"}));
    let m = created["portfolio_id"].as_u64().unwrap();
    let (_, created) = venue.post("/api/portfolios", &taker, json!({"name": "taking"}));
    let t = created["portfolio_id"].as_u64().unwrap();
    let trade = |key: &str, p: u64, body: Value| -> u64 {
        let (status, order) = venue.post(&format!("/api/portfolios/{p}/trades"), key, body);
        assert_eq!(status, StatusCode::CREATED, "{order}");
        order["order_id"].as_u64().unwrap()
    };
    let mut resting = Vec::new();
    for i in 0..12u64 {
        let price = format!("15{}.{:02}", i % 4, i * 7 % 100);
        let body = json!({"ticker": "AAPL", "side": "sell", "shares": 5, "limit_price": price,
                          "client_order_id": format!("m-{i}")});
        resting.push(trade(&maker, m, body));
    }
    for order_id in resting.iter().skip(9) {
        let path = format!("/api/portfolios/{m}/orders/{order_id}");
        let response = venue.client.delete(venue.url(&path)).header("x-api-key", &maker).send().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (status, _) =
        venue.call_patch(&format!("/api/portfolios/{m}/orders/{}", resting[8]), &maker, json!({"shares": 2}));
    assert_eq!(status, StatusCode::OK);
    trade(&taker, t, json!({"ticker": "AAPL", "side": "buy", "shares": 7, "limit_price": "151.50"}));
    trade(&taker, t, json!({"ticker": "AAPL", "side": "buy", "shares": 4}));
    trade(
        &taker,
        t,
        json!({"ticker": "AAPL", "side": "buy", "shares": 9, "limit_price": "152.99", "time_in_force": "ioc"}),
    );
    trade(&taker, t, json!({"ticker": "MSFT", "side": "sell", "shares": 3}));
    // Fills on the other shard, between AAPL's.
    trade(&maker, m, json!({"ticker": "MSFT", "side": "sell", "shares": 2, "limit_price": "400.00"}));
    trade(&taker, t, json!({"ticker": "MSFT", "side": "buy", "shares": 2, "limit_price": "400.00"}));
    trade(
        &taker,
        t,
        json!({"ticker": "AAPL", "side": "buy", "shares": 1, "limit_price": "149.00", "client_order_id": "low"}),
    );
    // Partly filled, replaced, filled again, cancelled: its quantity stays what the replace made it.
    let amended = format!("/api/portfolios/{m}/orders/{}", resting[5]);
    let (status, replaced) = venue.call_patch(&amended, &maker, json!({"shares": 4}));
    assert_eq!((status, replaced["shares"].as_str()), (StatusCode::OK, Some("7")), "{replaced}");
    trade(&taker, t, json!({"ticker": "AAPL", "side": "buy", "shares": 1, "limit_price": "151.35"}));
    let response = venue.client.delete(venue.url(&amended)).header("x-api-key", &maker).send().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) =
        venue.call_patch(&format!("/api/portfolios/{m}/orders/{}", resting[7]), &maker, json!({"shares": 3}));
    assert_eq!(status, StatusCode::OK);
    let response = venue
        .client
        .delete(venue.url(&format!("/api/portfolios/{m}/orders/{}", resting[7])))
        .header("x-api-key", &maker)
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A portfolio with conditional orders of every kind, and two accounts that print trades at
    // chosen prices (the maker rests one share, the taker buys it) and give fired orders liquidity.
    let stopper = venue.register("stopper@example.com");
    let (_, created) = venue.post("/api/portfolios", &stopper, json!({"name": "stopping"}));
    let c = created["portfolio_id"].as_u64().unwrap();
    let printer_maker = venue.register("printer-maker@example.com");
    let printer_taker = venue.register("printer-taker@example.com");
    let balance = json!({"name": "printing", "starting_balance": "10000000"});
    let pm = venue.post("/api/portfolios", &printer_maker, balance.clone()).1["portfolio_id"].as_u64().unwrap();
    let pt = venue.post("/api/portfolios", &printer_taker, balance).1["portfolio_id"].as_u64().unwrap();
    let print = |ticker: &str, price: &str| {
        trade(&printer_maker, pm, json!({"ticker": ticker, "side": "sell", "shares": 1, "limit_price": price}));
        let buy = json!({"ticker": ticker, "side": "buy", "shares": 1, "limit_price": price, "time_in_force": "ioc"});
        trade(&printer_taker, pt, buy);
    };
    let cancel = |key: &str, p: u64, order_id: u64| {
        let path = format!("/api/portfolios/{p}/orders/{order_id}");
        let response = venue.client.delete(venue.url(&path)).header("x-api-key", key).send().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    };
    trade(&stopper, c, json!({"ticker": "AAPL", "side": "buy", "shares": 2}));
    trade(&stopper, c, json!({"ticker": "AAPL", "side": "buy", "shares": 1, "type": "stop", "stop_price": "200.00"}));
    // A waiting stop, cancelled.
    let cancelled_stop =
        trade(&stopper, c, json!({"ticker": "AAPL", "side": "buy", "shares": 1, "stop_price": "210.00"}));
    cancel(&stopper, c, cancelled_stop);
    // Trailing stops (by amount and by percent) that ratchet with new highs and keep waiting, and a
    // buy stop that fires on the first of them and fills.
    print("NVDA", "100.00");
    let trailing = trade(&stopper, c, json!({"ticker": "NVDA", "side": "sell", "shares": 1, "trail_amount": "1.00"}));
    trade(&stopper, c, json!({"ticker": "NVDA", "side": "sell", "shares": 1, "trail_percent": "1.5"}));
    let fired_stop = trade(&stopper, c, json!({"ticker": "NVDA", "side": "buy", "shares": 2, "stop_price": "101.00"}));
    trade(&printer_maker, pm, json!({"ticker": "NVDA", "side": "sell", "shares": 2, "limit_price": "101.50"}));
    print("NVDA", "101.00");
    print("NVDA", "102.00");
    print("NVDA", "101.80");
    // A bracket whose resting entry fills in two parts (its exits grow with each), then whose
    // take-profit fires and fills (the stop-loss is cancelled, linked).
    print("QQQ", "400.00");
    let bracket = json!({"ticker": "QQQ", "side": "buy", "shares": 4, "limit_price": "399.00",
                         "take_profit": {"limit_price": "410.00"}, "stop_loss": {"stop_price": "395.00"}});
    let (status, entry) = venue.post(&format!("/api/portfolios/{c}/trades"), &stopper, bracket);
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    trade(&printer_maker, pm, json!({"ticker": "QQQ", "side": "sell", "shares": 1, "limit_price": "399.00"}));
    trade(&printer_maker, pm, json!({"ticker": "QQQ", "side": "sell", "shares": 3, "limit_price": "399.00"}));
    trade(&printer_taker, pt, json!({"ticker": "QQQ", "side": "buy", "shares": 5, "limit_price": "410.00"}));
    trade(&printer_maker, pm, json!({"ticker": "QQQ", "side": "sell", "shares": 1, "limit_price": "410.00"}));
    // An OCO pair, both waiting.
    let first = trade(
        &stopper,
        c,
        json!({"ticker": "QQQ", "side": "sell", "shares": 1, "type": "take_profit_limit", "stop_price": "420.00", "limit_price": "420.00"}),
    );
    trade(&stopper, c, json!({"ticker": "QQQ", "side": "sell", "shares": 1, "stop_price": "390.00", "oco": first}));
    wait_until("the projection to catch up", || caught_up(&venue, &url, 2));

    // The conditional orders are in the states the scenario meant (read from PostgreSQL).
    let order_of = |id: &Value| venue.get(&format!("/api/portfolios/{c}/orders/{id}"), &stopper);
    let (take_profit, stop_loss) = (order_of(&entry["take_profit_order_id"]), order_of(&entry["stop_loss_order_id"]));
    assert_eq!((take_profit["status"].as_str(), take_profit["filled_shares"].as_str()), (Some("filled"), Some("4")));
    assert_eq!(
        (stop_loss["status"].as_str(), stop_loss["cancel_reason"].as_str()),
        (Some("cancelled"), Some("linked"))
    );
    assert_eq!(stop_loss["shares"], "4", "the exit grew with its entry's fills: {stop_loss}");
    let ratcheted = order_of(&json!(trailing));
    assert_eq!(
        (ratcheted["status"].as_str(), ratcheted["stop_price"].as_str()),
        (Some("waiting_trigger"), Some("101.00"))
    );
    assert_eq!(ratcheted["trail_best_price"], "102.00", "{ratcheted}");
    let fired = order_of(&json!(fired_stop));
    assert_eq!((fired["status"].as_str(), fired["trigger_trade_price"].as_str()), (Some("filled"), Some("101.00")));
    assert_eq!(order_of(&json!(cancelled_stop))["cancel_reason"], "user");
    assert_eq!(order_of(&json!(first))["status"], "waiting_trigger");
    assert!(order_of(&json!(first))["oco_order_id"].is_u64());

    let mut paths = Vec::new();
    for (key, p) in [(&maker, m), (&taker, t), (&stopper, c), (&printer_maker, pm), (&printer_taker, pt)] {
        for query in ["", "?limit=50&offset=0", "?limit=3&offset=2", "?limit=1000&offset=40"] {
            paths.push((key.clone(), format!("/api/portfolios/{p}/trades{query}")));
        }
        for status in ["", "?status=open", "?status=closed", "?status=all"] {
            paths.push((key.clone(), format!("/api/portfolios/{p}/orders{status}")));
        }
        let all = venue.get(&format!("/api/portfolios/{p}/orders?status=all"), key);
        for order in all["orders"].as_array().unwrap() {
            paths.push((key.clone(), format!("/api/portfolios/{p}/orders/{}", order["order_id"])));
        }
    }
    let reads = |venue: &Venue, store: &str| {
        metric(&venue.metrics(), &format!("simex_history_reads_total{{store=\"{store}\"}} ")).unwrap()
    };
    let (before, memory_before) = (reads(&venue, "postgres"), reads(&venue, "memory"));
    let from_postgres: Vec<String> = paths.iter().map(|(key, path)| text(&venue, path, key)).collect();
    assert_eq!(reads(&venue, "postgres") - before, paths.len() as i64, "every read was answered by PostgreSQL");
    assert_eq!(reads(&venue, "memory") - memory_before, 0);
    drop(venue);

    let venue = Venue::start_with(dir.path(), None, 2);
    assert!(!venue.metrics().contains("simex_history_reads_total"));
    for ((key, path), expected) in paths.iter().zip(&from_postgres) {
        assert_eq!(&text(&venue, path, key), expected, "GET {path}");
    }
    let trades: Value = serde_json::from_str(&from_postgres[1]).unwrap();
    assert!(trades["trades"].as_array().unwrap().len() >= 3, "{trades}");
    let orders = from_postgres.iter().filter(|body| body.contains("\"cancelled\"")).count();
    assert!(orders > 0, "some orders were cancelled");
}
