//! End-to-end tests of the HTTP gateway against the real `simex` binary: each test starts the
//! venue on a free port with its own data directory and talks to it over HTTP.

use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Venue {
    child: Child,
    base: String,
    client: Client,
}

impl Venue {
    fn start(data_dir: &Path, extra_env: &[(&str, &str)]) -> Venue {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_simex"));
        command
            .env("PORT", port.to_string())
            .env("SIMEX_DATA_DIR", data_dir)
            .env("RATE_LIMIT_PER_SECOND", "100000")
            .env("RATE_LIMIT_BURST", "100000")
            .env("BODY_LIMIT_BYTES", "65536")
            .env("RUST_LOG", "warn")
            // Fills against simulated liquidity would depend on the synthetic prices' timing.
            .env("SIMEX_FEEDS", "off")
            .env("SIMEX_BINARY_PORT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let child = command.spawn().expect("starting simex");
        let venue = Venue { child, base: format!("http://127.0.0.1:{port}"), client: Client::new() };
        // Wait for the listener: bounded by a number of attempts, not by a clock.
        for _ in 0..600 {
            if let Ok(response) = venue.client.get(venue.url("/health")).send() {
                assert_eq!(response.status(), StatusCode::OK);
                assert_eq!(response.text().unwrap(), "ok");
                return venue;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("simex did not start listening");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn register(&self, email: &str) -> String {
        let response = self
            .client
            .post(self.url("/api/auth/register"))
            .json(&json!({"email": email, "name": "Bot", "display_name": "A bot"}))
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().unwrap();
        assert!(body["uid"].is_string());
        let key = body["api_key"].as_str().unwrap().to_string();
        assert!(key.starts_with("st_"), "{key}");
        key
    }

    fn call(&self, method: reqwest::Method, path: &str, key: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path)).header("x-api-key", key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        parse(request.send().unwrap())
    }

    fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, key, None)
    }

    fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, key, Some(body))
    }

    /// A raw body with a content type of JSON.
    fn post_raw(&self, path: &str, key: &str, body: impl Into<reqwest::blocking::Body>) -> (StatusCode, Value) {
        let request = self
            .client
            .post(self.url(path))
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .body(body);
        parse(request.send().unwrap())
    }

    fn portfolio(&self, key: &str, body: Value) -> u64 {
        let (status, created) = self.post("/api/portfolios", key, body);
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["portfolio_id"].as_u64().unwrap()
    }

    fn trade(&self, key: &str, portfolio: u64, body: Value) -> Value {
        let (status, placed) = self.post(&format!("/api/portfolios/{portfolio}/trades"), key, body);
        assert_eq!(status, StatusCode::CREATED, "{placed}");
        placed
    }
}

impl Drop for Venue {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn assert_error(result: (StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(result.0, status, "{}", result.1);
    assert_eq!(result.1["code"], code, "{}", result.1);
    assert!(result.1["message"].is_string());
}

#[test]
fn a_bot_trades_through_its_whole_journey() {
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::start(dir.path(), &[]);
    let bot = venue.register("bot@example.com");
    let maker = venue.register("maker@example.com");
    let p = venue.portfolio(&bot, json!({"name": "main"}));
    let (status, body) = venue.get("/api/portfolios", &bot);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["portfolios"][0]["portfolio_id"], p);
    assert_eq!(body["portfolios"][0]["cash_balance"], "100000.00");
    let m = venue.portfolio(&maker, json!({"starting_balance": "1000000"}));

    // The maker rests asks; the bot takes with a market order.
    let ask = venue.trade(&maker, m, json!({"ticker": "AAPL", "side": "sell", "shares": 10, "limit_price": "150.00"}));
    assert_eq!(ask["status"], "open");
    venue.trade(&maker, m, json!({"ticker": "AAPL", "side": "sell", "shares": "10", "limit_price": 150.1}));
    let bought = venue.trade(&bot, p, json!({"ticker": "AAPL", "side": "buy", "shares": 5}));
    assert_eq!(bought["status"], "filled", "{bought}");
    assert_eq!(bought["fill_count"], 1);
    assert_eq!(bought["fills"][0]["price"], "150.00");
    assert_eq!(bought["fills"][0]["shares"], "5");
    assert_eq!(bought["fills"][0]["side"], "buy");
    assert!(bought["fills"][0]["executed_at"].as_str().unwrap().ends_with('Z'));

    // A resting limit, cancelled; a second cancel is a conflict.
    let bid = venue.trade(
        &bot,
        p,
        json!({"ticker": "AAPL", "side": "buy", "shares": 3, "type": "limit", "limit_price": 149}),
    );
    assert_eq!(bid["status"], "open");
    let bid_id = bid["order_id"].as_u64().unwrap();
    let (_, open) = venue.get(&format!("/api/portfolios/{p}/orders?status=open"), &bot);
    assert_eq!(open["orders"].as_array().unwrap().len(), 1);
    assert_eq!(open["orders"][0]["limit_price"], "149.00");
    let cancel_path = format!("/api/portfolios/{p}/orders/{bid_id}");
    let (status, cancelled) = venue.call(reqwest::Method::DELETE, &cancel_path, &bot, None);
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_error(venue.call(reqwest::Method::DELETE, &cancel_path, &bot, None), StatusCode::CONFLICT, "order_not_open");

    // Replace: new price and quantity.
    let bid = venue.trade(&bot, p, json!({"ticker": "AAPL", "side": "buy", "shares": 2, "limit_price": "148.00"}));
    let order_path = format!("/api/portfolios/{p}/orders/{}", bid["order_id"]);
    let (status, replaced) =
        venue.call(reqwest::Method::PATCH, &order_path, &bot, Some(json!({"limit_price": "148.50", "shares": 4})));
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["limit_price"], "148.50");
    assert_eq!(replaced["remaining_shares"], "4");
    let (_, got) = venue.get(&order_path, &bot);
    assert_eq!(got, replaced);

    // The book and the price.
    let (status, book) = venue.get("/api/orderbook/AAPL?depth=5", &bot);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(book["bids"], json!([["148.50", "4"]]));
    assert_eq!(book["asks"], json!([["150.00", "5"], ["150.10", "10"]]));
    assert!(book["sequence"].as_u64().unwrap() > 0);
    let (_, price) = venue.get("/api/prices/AAPL", &bot);
    assert_eq!(price["last_trade"], "150.00");

    // The portfolio values the position at the last trade.
    let (status, portfolio) = venue.get(&format!("/api/portfolios/{p}/portfolio"), &bot);
    assert_eq!(status, StatusCode::OK, "{portfolio}");
    let position = &portfolio["positions"][0];
    assert_eq!(position["ticker"], "AAPL");
    assert_eq!(position["shares"], "5");
    assert_eq!(position["avg_price"], "150.00");
    assert_eq!(position["market_value"], "750.00");
    assert_eq!(position["unrealized_pnl"], "0.00");
    let fee: f64 = bought["fills"][0]["fee"].as_str().unwrap().parse().unwrap();
    let cash: f64 = portfolio["cash_balance"].as_str().unwrap().parse().unwrap();
    assert!((cash - (100_000.0 - 750.0 - fee)).abs() < 1e-9, "{portfolio}");

    // History pagination over six trades.
    for _ in 0..5 {
        venue.trade(&bot, p, json!({"ticker": "AAPL", "side": "buy", "shares": 1}));
    }
    let page = |offset: usize| venue.get(&format!("/api/portfolios/{p}/trades?limit=2&offset={offset}"), &bot).1;
    let mut seen = Vec::new();
    for offset in [0, 2, 4] {
        let body = page(offset);
        assert_eq!(body["total"], 6);
        assert_eq!(body["trades"].as_array().unwrap().len(), 2);
        seen.extend(body["trades"].as_array().unwrap().iter().map(|t| t["trade_id"].as_u64().unwrap()));
    }
    assert_eq!(page(6)["trades"], json!([]));
    let mut distinct = seen.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 6, "{seen:?}");

    // A batch of 100 rests; a batch of 101 is refused whole.
    let order = json!({"ticker": "MSFT", "side": "buy", "shares": 1, "limit_price": "300.00"});
    let orders: Vec<Value> = (0..100).map(|_| order.clone()).collect();
    let (status, batch) = venue.post(&format!("/api/portfolios/{p}/batch-trades"), &bot, json!({"orders": orders}));
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    assert_eq!(batch["rejection_count"], 0);
    assert_eq!(batch["orders"].as_array().unwrap().len(), 100);
    let open_count =
        || venue.get(&format!("/api/portfolios/{p}/orders?status=open"), &bot).1["orders"].as_array().unwrap().len();
    assert_eq!(open_count(), 101);
    let orders: Vec<Value> = (0..101).map(|_| order.clone()).collect();
    let too_many = venue.post(&format!("/api/portfolios/{p}/batch-trades"), &bot, json!({"orders": orders}));
    assert_error(too_many, StatusCode::BAD_REQUEST, "batch_too_large");
    assert_eq!(open_count(), 101);
    // Per-order rejections in a batch, with their index.
    let mixed = json!({"orders": [order, {"ticker": "NOPE", "side": "buy", "shares": 1}, {"ticker": "MSFT", "side": "buy", "shares": 1, "limit_price": "300.001"}]});
    let (status, batch) = venue.post(&format!("/api/portfolios/{p}/batch-trades"), &bot, mixed);
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(batch["rejection_count"], 2, "{batch}");
    assert_eq!(batch["rejections"][0]["index"], 1);
    assert_eq!(batch["rejections"][0]["code"], "unknown_symbol");
    assert_eq!(batch["rejections"][1]["code"], "price_not_on_tick");

    // Top-up, exactly.
    let (_, before) = venue.get(&format!("/api/portfolios/{p}/portfolio"), &bot);
    let (status, topped) = venue.post(&format!("/api/portfolios/{p}/topup"), &bot, json!({"amount": "2500.50"}));
    assert_eq!(status, StatusCode::OK, "{topped}");
    let cash = |v: &Value| v["cash_balance"].as_str().unwrap().to_string();
    let expected = format!("{:.2}", cash(&before).parse::<f64>().unwrap() + 2500.50);
    assert_eq!(cash(&topped).parse::<f64>().unwrap(), expected.parse::<f64>().unwrap());

    // Reset: starting cash, no positions, no history, open orders gone from the book.
    let (status, reset) = venue.post(&format!("/api/portfolios/{p}/reset"), &bot, json!({}));
    assert_eq!(status, StatusCode::OK, "{reset}");
    let (_, after) = venue.get(&format!("/api/portfolios/{p}/portfolio"), &bot);
    assert_eq!(after["cash_balance"], "100000.00");
    assert_eq!(after["positions"], json!([]));
    assert_eq!(page(0)["total"], 0);
    assert_eq!(open_count(), 0);
    let (_, book) = venue.get("/api/orderbook/MSFT", &bot);
    assert_eq!(book["bids"], json!([]));
    // And it trades again.
    let again = venue.trade(&bot, p, json!({"ticker": "AAPL", "side": "buy", "shares": 1}));
    assert_eq!(again["status"], "filled");

    // Metrics count what happened and break latency into stages.
    let metrics = venue.client.get(venue.url("/metrics")).send().unwrap().text().unwrap();
    let value = |name: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("simex_http_orders_total ") > 100, "{metrics}");
    assert!(value("simex_http_responses_total{class=\"4xx\"}") >= 1, "{metrics}");
    assert!(value("simex_http_responses_total{class=\"2xx\"}") > 20, "{metrics}");
    let openapi: Value = venue.client.get(venue.url("/openapi.json")).send().unwrap().json().unwrap();
    assert!(openapi["openapi"].as_str().unwrap().starts_with('3'));
    assert!(openapi["paths"]["/api/portfolios/{id}/batch-trades"]["post"]["requestBody"].is_object());
    for stage in ["ring", "match_risk", "egress", "round_trip"] {
        assert!(
            metrics.contains(&format!("simex_stage_latency_ns{{stage=\"{stage}\",quantile=\"0.99\"}}")),
            "{metrics}"
        );
    }
    // Ring occupancy: every (submitter, shard) inbound ring and every outbound ring, with its
    // capacity; an idle venue's inbound rings are empty.
    for ring in [
        "ring=\"inbound\",shard=\"0\",peer=\"0\"",
        "ring=\"inbound\",shard=\"0\",peer=\"2\"",
        "ring=\"responses\",shard=\"0\",peer=\"0\"",
        "ring=\"tap\",shard=\"0\",peer=\"gateway\"",
        "ring=\"tap\",shard=\"0\",peer=\"binary\"",
        "ring=\"journal\",shard=\"0\",peer=\"journal\"",
    ] {
        let occupied = value(&format!("simex_ring_occupied_slots{{{ring}}} "));
        let capacity = value(&format!("simex_ring_capacity_slots{{{ring}}} "));
        assert!(capacity > 0 && occupied <= capacity, "{ring}: {occupied}/{capacity}");
    }
    assert_eq!(value("simex_ring_occupied_slots{ring=\"inbound\",shard=\"0\",peer=\"0\"} "), 0);
    assert!(!metrics.contains("simex_projection_"), "no projection without DATABASE_URL: {metrics}");
}

#[test]
fn every_error_has_its_status_and_nothing_half_happens() {
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::start(dir.path(), &[]);
    let alice = venue.register("alice@example.com");
    let bob = venue.register("bob@example.com");
    let a = venue.portfolio(&alice, json!({}));
    let b = venue.portfolio(&bob, json!({"starting_balance": 5000}));
    let trades = format!("/api/portfolios/{a}/trades");

    // 401: no credentials, a forged key, a forged token.
    let (status, body) = parse(venue.client.get(venue.url("/api/portfolios")).send().unwrap());
    assert_error((status, body), StatusCode::UNAUTHORIZED, "missing_credentials");
    assert_error(venue.get("/api/portfolios", "st_0000"), StatusCode::UNAUTHORIZED, "invalid_api_key");
    let forged =
        venue.client.get(venue.url("/api/portfolios")).bearer_auth("eyJhbGciOiJIUzI1NiJ9.e30.x").send().unwrap();
    assert_error(parse(forged), StatusCode::UNAUTHORIZED, "invalid_token");

    // 404: another's portfolio looks exactly like one that does not exist.
    let foreign = venue.get(&format!("/api/portfolios/{b}/portfolio"), &alice);
    let unknown = venue.get("/api/portfolios/999999/portfolio", &alice);
    assert_error(foreign.clone(), StatusCode::NOT_FOUND, "portfolio_not_found");
    assert_eq!(foreign, unknown);
    assert_eq!(venue.get("/api/portfolios/abc/portfolio", &alice), unknown);
    let foreign_trade = venue.post(
        &format!("/api/portfolios/{b}/trades"),
        &alice,
        json!({"ticker": "AAPL", "side": "buy", "shares": 1}),
    );
    assert_eq!(foreign_trade, unknown);
    let (_, listed) = venue.get("/api/portfolios", &alice);
    assert_eq!(listed["portfolios"].as_array().unwrap().len(), 1);
    // Bob's resting order is invisible to Alice, by id too.
    let bob_order = venue.trade(&bob, b, json!({"ticker": "AAPL", "side": "buy", "shares": 1, "limit_price": "10.00"}));
    assert_error(
        venue.get(&format!("/api/portfolios/{a}/orders/{}", bob_order["order_id"]), &alice),
        StatusCode::NOT_FOUND,
        "order_not_found",
    );
    let cancel = venue.call(
        reqwest::Method::DELETE,
        &format!("/api/portfolios/{a}/orders/{}", bob_order["order_id"]),
        &alice,
        None,
    );
    assert_error(cancel, StatusCode::NOT_FOUND, "order_not_found");

    // 409: a second registration with the same email.
    let duplicate =
        venue.client.post(venue.url("/api/auth/register")).json(&json!({"email": "ALICE@example.com"})).send().unwrap();
    assert_error(parse(duplicate), StatusCode::CONFLICT, "email_taken");
    let duplicate_id =
        json!({"ticker": "AAPL", "side": "buy", "shares": 1, "limit_price": "10.00", "client_order_id": "c-1"});
    venue.trade(&alice, a, duplicate_id.clone());
    assert_error(venue.post(&trades, &alice, duplicate_id), StatusCode::CONFLICT, "duplicate_client_order_id");

    // 403: not enough buying power.
    let expensive = json!({"ticker": "AAPL", "side": "buy", "shares": 10000, "limit_price": "150.00"});
    assert_error(venue.post(&trades, &alice, expensive), StatusCode::FORBIDDEN, "insufficient_buying_power");

    // 400 and 422: the bad-input suite.
    let bad: Vec<(&str, StatusCode, &str)> = vec![
        ("{\"ticker\": \"AAPL\", ", StatusCode::BAD_REQUEST, "malformed_request"),
        ("not json", StatusCode::BAD_REQUEST, "malformed_request"),
        ("", StatusCode::BAD_REQUEST, "malformed_request"),
        (r#"{"ticker": 5, "side": "buy", "shares": 1}"#, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        (r#"{"ticker": "AAPL", "side": "buy"}"#, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        (
            r#"{"ticker": "AAPL", "side": "buy", "shares": 1, "leverage": 100}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (r#"{"ticker": "AAPL", "side": "long", "shares": 1}"#, StatusCode::UNPROCESSABLE_ENTITY, "invalid_side"),
        (r#"{"ticker": "NOPE", "side": "buy", "shares": 1}"#, StatusCode::UNPROCESSABLE_ENTITY, "unknown_symbol"),
        (
            r#"{"ticker": "AAPL", "side": "buy", "shares": 0, "limit_price": "10"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "quantity_not_positive",
        ),
        (
            r#"{"ticker": "AAPL", "side": "buy", "shares": -5, "limit_price": "10"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "quantity_not_positive",
        ),
        (
            r#"{"ticker": "AAPL", "side": "buy", "shares": 1.5, "limit_price": "10"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "quantity_not_on_lot",
        ),
        (
            r#"{"ticker": "AAPL", "side": "buy", "shares": 1, "limit_price": "150.001"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "price_not_on_tick",
        ),
        (
            r#"{"ticker": "AAPL", "side": "buy", "shares": 1, "limit_price": -1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "price_not_positive",
        ),
        (
            r#"{"ticker": "AAPL", "side": "buy", "shares": 99999999999999999999999999, "limit_price": "1"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "number_out_of_range",
        ),
        (
            r#"{"ticker": "AAPL", "side": "buy", "shares": 1, "limit_price": 1e400}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_number",
        ),
        (
            r#"{"ticker": "AAPL", "side": "buy", "shares": "1", "limit_price": "ten"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_number",
        ),
        (
            r#"{"ticker": "AAPL", "side": "buy", "shares": 1, "type": "stop", "limit_price": "140"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            r#"{"ticker": "AAPL", "side": "buy", "shares": 1, "take_profit": {"price": "160"}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            r#"{"ticker": "AAPL", "side": "buy", "shares": 1, "time_in_force": "forever"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_time_in_force",
        ),
    ];
    for (body, status, code) in bad {
        let result = venue.post_raw(&trades, &alice, body.to_string());
        assert_eq!((result.0, result.1["code"].as_str()), (status, Some(code)), "{body}: {}", result.1);
    }
    let huge = format!(
        "{{\"ticker\": \"AAPL\", \"side\": \"buy\", \"shares\": 1, \"client_order_id\": \"{}\"}}",
        "x".repeat(100_000)
    );
    assert_error(venue.post_raw(&trades, &alice, huge), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let (status, _) = venue.post(&format!("/api/portfolios/{a}/topup"), &alice, json!({"amount": "-5"}));
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(venue.get(&format!("{trades}?limit=abc"), &alice), StatusCode::UNPROCESSABLE_ENTITY, "invalid_query");
    assert_error(venue.get("/api/orderbook/NOPE", &alice), StatusCode::NOT_FOUND, "unknown_symbol");
    assert_error(venue.get("/api/nothing", &alice), StatusCode::NOT_FOUND, "not_found");

    // Nothing of any of it happened: one resting order (the client id one), full cash, up.
    let (_, orders) = venue.get(&format!("/api/portfolios/{a}/orders"), &alice);
    assert_eq!(orders["orders"].as_array().unwrap().len(), 1, "{orders}");
    let (_, portfolio) = venue.get(&format!("/api/portfolios/{a}/portfolio"), &alice);
    assert_eq!(portfolio["cash_balance"], "100000.00");
    assert_eq!(venue.get(&trades, &alice).1["total"], 0);
    let health = venue.client.get(venue.url("/health")).send().unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[test]
fn signup_and_login_issue_tokens_accepted_like_keys() {
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::start(dir.path(), &[]);
    let signup = json!({"username": "carol", "email": "carol@example.com", "password": "correct horse battery"});
    let response = venue.client.post(venue.url("/api/auth/signup")).json(&signup).send().unwrap();
    let (status, body) = parse(response);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    let with_token = |path: &str| parse(venue.client.get(venue.url(path)).bearer_auth(&token).send().unwrap());
    assert_eq!(with_token("/api/portfolios").0, StatusCode::OK);
    let created = parse(venue.client.post(venue.url("/api/portfolios")).bearer_auth(&token).send().unwrap());
    assert_eq!(created.0, StatusCode::CREATED, "{}", created.1);

    let login = |password: &str| {
        let body = json!({"username": "carol", "password": password});
        parse(venue.client.post(venue.url("/api/auth/login")).json(&body).send().unwrap())
    };
    let (status, body) = login("correct horse battery");
    assert_eq!(status, StatusCode::OK);
    assert!(body["token"].is_string());
    assert_error(login("wrong password"), StatusCode::UNAUTHORIZED, "invalid_credentials");
    let again = parse(venue.client.post(venue.url("/api/auth/signup")).json(&signup).send().unwrap());
    assert_error(again, StatusCode::CONFLICT, "email_taken");
    let weak = json!({"username": "dave", "email": "dave@example.com", "password": "short"});
    assert_error(
        parse(venue.client.post(venue.url("/api/auth/signup")).json(&weak).send().unwrap()),
        StatusCode::UNPROCESSABLE_ENTITY,
        "weak_password",
    );
    // A token signed with another secret is refused.
    let mut forged = token.clone();
    forged.truncate(forged.rfind('.').unwrap() + 1);
    forged.push_str("c2lnbmF0dXJl");
    let (status, _) = parse(venue.client.get(venue.url("/api/portfolios")).bearer_auth(&forged).send().unwrap());
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn the_rate_limit_answers_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let limits = [
        ("RATE_LIMIT_PER_SECOND", "1"),
        ("RATE_LIMIT_BURST", "3"),
        ("AUTH_RATE_LIMIT_PER_SECOND", "1"),
        ("AUTH_RATE_LIMIT_BURST", "3"),
    ];
    let venue = Venue::start(dir.path(), &limits);
    let key = venue.register("eve@example.com");
    let mut limited = None;
    for _ in 0..10 {
        let response = venue.client.get(venue.url("/api/portfolios")).header("x-api-key", &key).send().unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("ten requests at once exceed a burst of three");
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert_error(parse(response), StatusCode::TOO_MANY_REQUESTS, "rate_limited");

    // Registrations are limited per client address.
    let mut statuses = Vec::new();
    for index in 0..10 {
        let body = json!({"email": format!("bot{index}@example.com")});
        statuses.push(venue.client.post(venue.url("/api/auth/register")).json(&body).send().unwrap().status());
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED || *s == StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
}

#[test]
fn after_sigkill_the_api_agrees_with_the_recovered_state() {
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::start(dir.path(), &[]);
    let bot = venue.register("bot@example.com");
    let maker = venue.register("maker@example.com");
    let p = venue.portfolio(&bot, json!({}));
    let m = venue.portfolio(&maker, json!({}));
    venue.trade(&maker, m, json!({"ticker": "AAPL", "side": "sell", "shares": 10, "limit_price": "150.00"}));
    venue.trade(&maker, m, json!({"ticker": "BTC-USD", "side": "sell", "shares": "0.5", "limit_price": "60000.00"}));
    venue.trade(&bot, p, json!({"ticker": "AAPL", "side": "buy", "shares": 4}));
    venue.trade(&bot, p, json!({"ticker": "BTC-USD", "side": "buy", "shares": "0.1"}));
    venue.trade(&bot, p, json!({"ticker": "MSFT", "side": "buy", "shares": 2, "limit_price": "300.00"}));
    venue.post(&format!("/api/portfolios/{p}/topup"), &bot, json!({"amount": 1000}));
    let views = |venue: &Venue| {
        [
            venue.get(&format!("/api/portfolios/{p}/portfolio"), &bot),
            venue.get(&format!("/api/portfolios/{p}/orders"), &bot),
            venue.get(&format!("/api/portfolios/{p}/trades"), &bot),
            venue.get(&format!("/api/portfolios/{m}/portfolio"), &maker),
            venue.get("/api/orderbook/AAPL", &bot),
            venue.get("/api/orderbook/BTC-USD", &bot),
            venue.get("/api/portfolios", &bot),
        ]
    };
    let before = views(&venue);
    assert_eq!(before[2].1["total"], 2);
    venue.kill();

    let venue = Venue::start(dir.path(), &[]);
    let after = views(&venue);
    for (before, after) in before.iter().zip(&after) {
        assert_eq!(before, after);
    }
    // It goes on: new orders, new portfolios with new ids, old keys still valid.
    let placed = venue.trade(&bot, p, json!({"ticker": "AAPL", "side": "buy", "shares": 1}));
    assert_eq!(placed["status"], "filled");
    let q = venue.portfolio(&bot, json!({}));
    assert!(q > m && q > p);
}

#[test]
fn websocket_subscribers_get_trades_books_and_their_own_fills_with_sequences() {
    use tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::start(dir.path(), &[]);
    let bot = venue.register("bot@example.com");
    let maker = venue.register("maker@example.com");
    let p = venue.portfolio(&bot, json!({}));
    let m = venue.portfolio(&maker, json!({}));
    let ws_url = venue.base.replace("http://", "ws://");

    // A message that never comes fails the test instead of hanging it.
    let connect = |url: String| {
        let (socket, _) = tungstenite::connect(url).unwrap();
        if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        }
        socket
    };
    let mut market = connect(format!("{ws_url}/ws"));
    let mut account = connect(format!("{ws_url}/ws?api_key={bot}"));
    let read = |socket: &mut tungstenite::WebSocket<_>| -> Value {
        loop {
            if let Message::Text(text) = socket.read().unwrap() {
                return serde_json::from_str(text.as_str()).unwrap();
            }
        }
    };
    let send = |socket: &mut tungstenite::WebSocket<_>, body: Value| {
        socket.send(Message::Text(body.to_string().into())).unwrap()
    };
    send(&mut market, json!({"op": "subscribe", "channel": "trades", "symbol": "AAPL"}));
    assert_eq!(read(&mut market)["type"], "subscribed");
    send(&mut market, json!({"op": "subscribe", "channel": "book", "symbol": "AAPL"}));
    assert_eq!(read(&mut market)["type"], "subscribed");
    let empty = read(&mut market);
    assert_eq!((empty["type"].as_str(), &empty["bids"]), (Some("book"), &json!([])));
    // Following an account needs credentials.
    send(&mut market, json!({"op": "subscribe", "channel": "account"}));
    assert_eq!(read(&mut market)["code"], "missing_credentials");
    send(&mut account, json!({"op": "subscribe", "channel": "account"}));
    assert_eq!(read(&mut account)["type"], "subscribed");

    venue.trade(&maker, m, json!({"ticker": "AAPL", "side": "sell", "shares": 10, "limit_price": "150.00"}));
    let book = read(&mut market);
    assert_eq!(book["type"], "book", "{book}");
    assert_eq!(book["asks"], json!([["150.00", "10"]]));
    let first_sequence = book["sequence"].as_u64().unwrap();
    let bought = venue.trade(&bot, p, json!({"ticker": "AAPL", "side": "buy", "shares": 4}));
    // A trade, and a book without the lots it took (the book follows the trade).
    let (mut trade, mut book) = (Value::Null, Value::Null);
    for _ in 0..10 {
        let message = read(&mut market);
        match message["type"].as_str() {
            Some("trade") => trade = message,
            Some("book") if !trade.is_null() => book = message,
            _ => {}
        }
        if !book.is_null() {
            break;
        }
    }
    assert_eq!((trade["price"].as_str(), trade["shares"].as_str()), (Some("150.00"), Some("4")), "{trade}");
    assert!(trade["sequence"].as_u64().unwrap() > first_sequence);
    assert_eq!(book["asks"], json!([["150.00", "6"]]), "{book}");

    // The bot sees its own order, fill, position and portfolio (not the maker's), with its public
    // portfolio id; the portfolio message is what GET .../portfolio answers.
    let mut kinds = Vec::new();
    let mut fill_sequence = 0;
    while kinds.len() < 4 {
        let message = read(&mut account);
        assert_eq!(message["portfolio_id"], p, "{message}");
        let sequence = message["sequence"].as_u64().unwrap();
        kinds.push(message["type"].as_str().unwrap().to_string() + "/" + message["event"].as_str().unwrap_or(""));
        match message["type"].as_str() {
            Some("fill") => {
                assert_eq!(message["fill"]["order_id"], bought["order_id"]);
                assert_eq!(message["fill"]["side"], "buy");
                fill_sequence = sequence;
            }
            Some("position") => {
                assert_eq!(sequence, fill_sequence, "the fill's sequence");
                assert_eq!(
                    (message["position"]["ticker"].as_str(), message["position"]["shares"].as_str()),
                    (Some("AAPL"), Some("4")),
                    "{message}"
                );
            }
            Some("portfolio") => {
                assert_eq!(sequence, fill_sequence, "the fill's sequence");
                let (status, shown) = venue.get(&format!("/api/portfolios/{p}/portfolio"), &bot);
                assert_eq!(status, StatusCode::OK);
                assert_eq!(message["portfolio"], shown, "the pushed portfolio is the one GET shows");
            }
            _ => {}
        }
    }
    assert_eq!(kinds, ["order/accepted", "fill/", "position/", "portfolio/"].map(String::from).to_vec(), "{kinds:?}");
    // A top-up pushes the portfolio again.
    let topped = venue.post(&format!("/api/portfolios/{p}/topup"), &bot, json!({"amount": "1000"}));
    assert_eq!(topped.0, StatusCode::OK, "{}", topped.1);
    let message = read(&mut account);
    assert_eq!(message["type"], "portfolio", "{message}");
    assert_eq!(message["portfolio"]["cash_balance"], topped.1["cash_balance"], "{message}");
    let refused = tungstenite::connect(format!("{ws_url}/ws?api_key=st_forged"));
    assert!(refused.is_err());
}

#[test]
fn tokens_of_an_external_identity_provider_map_to_one_durable_user() {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let private = std::fs::read(fixtures.join("external_rsa_private.pem")).unwrap();
    let public = fixtures.join("external_rsa_public.pem");
    let sign = |subject: &str, issuer: &str| {
        let claims = json!({"sub": subject, "iss": issuer, "exp": jsonwebtoken::get_current_timestamp() + 3600});
        encode(&Header::new(Algorithm::RS256), &claims, &EncodingKey::from_rsa_pem(&private).unwrap()).unwrap()
    };
    let issuer = "https://id.example.com";
    let env = [("EXTERNAL_JWT_KEY_FILE", public.to_str().unwrap()), ("EXTERNAL_JWT_ISSUER", issuer)];
    let dir = tempfile::tempdir().unwrap();
    let token = sign("user-A", issuer);
    let portfolios = |venue: &Venue, token: &str| {
        parse(venue.client.get(venue.url("/api/portfolios")).bearer_auth(token).send().unwrap())
    };
    {
        let venue = Venue::start(dir.path(), &env);
        let created = parse(venue.client.post(venue.url("/api/portfolios")).bearer_auth(&token).send().unwrap());
        assert_eq!(created.0, StatusCode::CREATED, "{}", created.1);
        let (status, listed) = portfolios(&venue, &token);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(listed["portfolios"].as_array().unwrap().len(), 1);
        // Another subject is another user; a subject differing only in case too.
        assert_eq!(portfolios(&venue, &sign("user-a", issuer)).1["portfolios"], json!([]));
        assert_error(
            portfolios(&venue, &sign("user-A", "https://evil.example.com")),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        );
        // The WebSocket takes the same tokens.
        let ws_url = venue.base.replace("http://", "ws://");
        assert!(tungstenite::connect(format!("{ws_url}/ws?token={token}")).is_ok());
        let foreign = sign("user-A", "https://evil.example.com");
        assert!(tungstenite::connect(format!("{ws_url}/ws?token={foreign}")).is_err());
        venue.kill();
    }
    let venue = Venue::start(dir.path(), &env);
    let (status, listed) = portfolios(&venue, &token);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["portfolios"].as_array().unwrap().len(), 1, "{listed}");
}

/// Two more accounts that move a symbol's last trade price: the maker rests one share at `price`
/// and the taker buys it, so exactly one trade prints there (with no other ask at or below it).
struct Printer {
    maker: String,
    maker_portfolio: u64,
    taker: String,
    taker_portfolio: u64,
}

impl Printer {
    fn new(venue: &Venue) -> Printer {
        let maker = venue.register("printer-maker@example.com");
        let taker = venue.register("printer-taker@example.com");
        let maker_portfolio = venue.portfolio(&maker, json!({"starting_balance": "10000000"}));
        let taker_portfolio = venue.portfolio(&taker, json!({"starting_balance": "10000000"}));
        Printer { maker, maker_portfolio, taker, taker_portfolio }
    }

    fn print(&self, venue: &Venue, ticker: &str, price: &str) {
        let sell = json!({"ticker": ticker, "side": "sell", "shares": 1, "limit_price": price});
        assert_eq!(venue.trade(&self.maker, self.maker_portfolio, sell)["status"], "open");
        let buy = json!({"ticker": ticker, "side": "buy", "shares": 1, "limit_price": price, "time_in_force": "ioc"});
        let bought = venue.trade(&self.taker, self.taker_portfolio, buy);
        assert_eq!(
            (bought["status"].as_str(), &bought["fills"][0]["price"]),
            (Some("filled"), &json!(price)),
            "{bought}"
        );
    }

    /// The maker rests an order (liquidity for a fired order to trade against).
    fn rest(&self, venue: &Venue, ticker: &str, side: &str, shares: u64, price: &str) -> Value {
        let order = json!({"ticker": ticker, "side": side, "shares": shares, "limit_price": price});
        venue.trade(&self.maker, self.maker_portfolio, order)
    }
}

#[test]
fn stops_and_stop_limits_wait_then_fire_on_trade_prices() {
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::start(dir.path(), &[]);
    let bot = venue.register("bot@example.com");
    let p = venue.portfolio(&bot, json!({}));
    let printer = Printer::new(&venue);
    let order_of = |id: &Value| venue.get(&format!("/api/portfolios/{p}/orders/{id}"), &bot).1;

    // The bot follows its account over the WebSocket.
    let ws_url = venue.base.replace("http://", "ws://");
    let (mut account, _) = tungstenite::connect(format!("{ws_url}/ws?api_key={bot}")).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = account.get_ref() {
        stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    }
    let subscribe = json!({"op": "subscribe", "channel": "account"}).to_string();
    account.send(tungstenite::Message::Text(subscribe.into())).unwrap();
    let mut read = || -> Value {
        loop {
            if let tungstenite::Message::Text(text) = account.read().unwrap() {
                return serde_json::from_str(text.as_str()).unwrap();
            }
        }
    };
    assert_eq!(read()["type"], "subscribed");

    // A sell stop below the last trade waits, in the open orders, with its trigger.
    printer.print(&venue, "AAPL", "150.00");
    let stop = venue.trade(
        &bot,
        p,
        json!({"ticker": "AAPL", "side": "sell", "shares": 5, "type": "stop", "stop_price": "149.50"}),
    );
    assert_eq!((stop["status"].as_str(), stop["fill_count"].as_u64()), (Some("waiting_trigger"), Some(0)), "{stop}");
    let waiting = order_of(&stop["order_id"]);
    assert_eq!(waiting["type"], "stop", "{waiting}");
    assert_eq!(waiting["stop_price"], "149.50");
    assert_eq!(waiting["remaining_shares"], "5");
    assert!(waiting["triggered_at"].is_null());
    let (_, open) = venue.get(&format!("/api/portfolios/{p}/orders?status=open"), &bot);
    assert_eq!(open["orders"][0]["order_id"], stop["order_id"], "{open}");

    // Above the trigger nothing happens; at it, the stop sells into the bid below.
    printer.print(&venue, "AAPL", "149.80");
    assert_eq!(order_of(&stop["order_id"])["status"], "waiting_trigger");
    printer.rest(&venue, "AAPL", "buy", 10, "149.40");
    printer.print(&venue, "AAPL", "149.50");
    let fired = order_of(&stop["order_id"]);
    assert_eq!(fired["status"], "filled", "{fired}");
    assert_eq!(fired["filled_shares"], "5");
    assert_eq!(fired["trigger_trade_price"], "149.50");
    assert!(fired["triggered_at"].as_str().unwrap().ends_with('Z'));
    let (_, trades) = venue.get(&format!("/api/portfolios/{p}/trades"), &bot);
    assert_eq!(trades["total"], 1);
    assert_eq!((&trades["trades"][0]["price"], &trades["trades"][0]["side"]), (&json!("149.40"), &json!("sell")));
    // Over the WebSocket: accepted (waiting), triggered, accepted (in the book), its fill.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let message = read();
        assert_eq!(
            message["order"]["order_id"].as_u64().or(message["fill"]["order_id"].as_u64()),
            stop["order_id"].as_u64(),
            "{message}"
        );
        seen.push(format!("{}/{}", message["type"].as_str().unwrap(), message["event"].as_str().unwrap_or("")));
    }
    assert_eq!(seen, ["order/accepted", "order/triggered", "order/accepted", "fill/"], "{seen:?}");

    // A buy stop-limit fires at its stop and rests at its limit when nothing is offered there.
    printer.print(&venue, "MSFT", "300.00");
    let stop_limit = json!({"ticker": "MSFT", "side": "buy", "shares": 3, "type": "stop_limit", "stop_price": "301.00", "limit_price": "301.50"});
    let stop_limit = venue.trade(&bot, p, stop_limit);
    assert_eq!(stop_limit["status"], "waiting_trigger");
    let (_, book) = venue.get("/api/orderbook/MSFT", &bot);
    assert_eq!(book["bids"], json!([]), "a waiting order is not in the book");
    printer.print(&venue, "MSFT", "301.00");
    let resting = order_of(&stop_limit["order_id"]);
    assert_eq!((resting["status"].as_str(), resting["type"].as_str()), (Some("open"), Some("stop_limit")), "{resting}");
    assert_eq!((&resting["limit_price"], &resting["stop_price"]), (&json!("301.50"), &json!("301.00")));
    let (_, book) = venue.get("/api/orderbook/MSFT", &bot);
    assert_eq!(book["bids"], json!([["301.50", "3"]]));
    printer.rest(&venue, "MSFT", "sell", 3, "301.50");
    assert_eq!(order_of(&stop_limit["order_id"])["status"], "filled");

    // A waiting stop is cancelled like any open order, and is not replaceable.
    let stop = venue.trade(&bot, p, json!({"ticker": "AAPL", "side": "sell", "shares": 2, "stop_price": 140}));
    let stop_limit = venue.trade(
        &bot,
        p,
        json!({"ticker": "AAPL", "side": "sell", "shares": 2, "stop_price": 140, "limit_price": "139.90"}),
    );
    for waiting in [&stop, &stop_limit] {
        let path = format!("/api/portfolios/{p}/orders/{}", waiting["order_id"]);
        let replace = venue.call(reqwest::Method::PATCH, &path, &bot, Some(json!({"shares": 1})));
        assert_error(replace, StatusCode::UNPROCESSABLE_ENTITY, "not_replaceable");
        let (status, cancelled) = venue.call(reqwest::Method::DELETE, &path, &bot, None);
        assert_eq!(status, StatusCode::OK, "{cancelled}");
        assert_eq!(
            (cancelled["status"].as_str(), cancelled["cancel_reason"].as_str()),
            (Some("cancelled"), Some("user"))
        );
        assert_error(venue.call(reqwest::Method::DELETE, &path, &bot, None), StatusCode::CONFLICT, "order_not_open");
    }
    let (_, open) = venue.get(&format!("/api/portfolios/{p}/orders?status=open"), &bot);
    assert_eq!(open["orders"], json!([]));
}

#[test]
fn a_trailing_stop_ratchets_with_the_best_price_and_fires_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::start(dir.path(), &[]);
    let bot = venue.register("bot@example.com");
    let p = venue.portfolio(&bot, json!({}));
    let printer = Printer::new(&venue);
    let order_of = |id: &Value| venue.get(&format!("/api/portfolios/{p}/orders/{id}"), &bot).1;

    printer.print(&venue, "NVDA", "100.00");
    let by_amount =
        venue.trade(&bot, p, json!({"ticker": "NVDA", "side": "sell", "shares": 2, "trail_amount": "1.00"}));
    let by_percent = venue.trade(
        &bot,
        p,
        json!({"ticker": "NVDA", "side": "sell", "shares": 2, "type": "trailing_stop", "trail_percent": "1.5"}),
    );
    let waiting = order_of(&by_amount["order_id"]);
    assert_eq!(
        (waiting["type"].as_str(), waiting["status"].as_str()),
        (Some("trailing_stop"), Some("waiting_trigger"))
    );
    assert_eq!((&waiting["stop_price"], &waiting["trail_amount"]), (&json!("99.00"), &json!("1.00")), "{waiting}");
    assert_eq!(order_of(&by_percent["order_id"])["trail_percent"], "1.5");

    // A new high raises both stops (1.5% of 102.00 is 1.53); a dip above them fires nothing.
    printer.print(&venue, "NVDA", "102.00");
    let raised = order_of(&by_amount["order_id"]);
    assert_eq!((&raised["stop_price"], &raised["trail_best_price"]), (&json!("101.00"), &json!("102.00")), "{raised}");
    assert_eq!(order_of(&by_percent["order_id"])["stop_price"], "100.47");
    printer.print(&venue, "NVDA", "101.50");
    assert_eq!(order_of(&by_amount["order_id"])["stop_price"], "101.00", "a stop never loosens");
    assert_eq!(order_of(&by_amount["order_id"])["status"], "waiting_trigger");

    // At the raised stop (which the first stop, at 99.00, would not have reached) it sells.
    printer.rest(&venue, "NVDA", "buy", 5, "100.50");
    printer.print(&venue, "NVDA", "101.00");
    let fired = order_of(&by_amount["order_id"]);
    assert_eq!((fired["status"].as_str(), fired["filled_shares"].as_str()), (Some("filled"), Some("2")), "{fired}");
    assert_eq!(fired["trigger_trade_price"], "101.00");
    // Its fills at 100.50 stay above the wider stop.
    assert_eq!(order_of(&by_percent["order_id"])["status"], "waiting_trigger");
}

#[test]
fn brackets_and_oco_pairs_cancel_their_linked_orders() {
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::start(dir.path(), &[]);
    let bot = venue.register("bot@example.com");
    let p = venue.portfolio(&bot, json!({}));
    let printer = Printer::new(&venue);
    let order_of = |id: &Value| venue.get(&format!("/api/portfolios/{p}/orders/{id}"), &bot).1;

    // A market entry fills; both exits wait, sized to the fill, linked to each other.
    printer.print(&venue, "QQQ", "400.00");
    printer.rest(&venue, "QQQ", "sell", 10, "400.00");
    let bracket = json!({"ticker": "QQQ", "side": "buy", "shares": 10, "take_profit": {"limit_price": "410.00"}, "stop_loss": {"stop_price": "395.00"}});
    let entry = venue.trade(&bot, p, bracket);
    assert_eq!((entry["status"].as_str(), entry["fill_count"].as_u64()), (Some("filled"), Some(1)), "{entry}");
    let (take_profit, stop_loss) = (order_of(&entry["take_profit_order_id"]), order_of(&entry["stop_loss_order_id"]));
    assert_eq!(take_profit["type"], "take_profit_limit", "{take_profit}");
    assert_eq!(stop_loss["type"], "stop", "{stop_loss}");
    for (exit, peer) in [(&take_profit, &stop_loss), (&stop_loss, &take_profit)] {
        assert_eq!(exit["status"], "waiting_trigger");
        assert_eq!(exit["side"], "sell");
        assert_eq!(exit["remaining_shares"], "10");
        assert_eq!(exit["parent_order_id"], entry["order_id"]);
        assert_eq!(exit["oco_order_id"], peer["order_id"]);
    }
    assert_eq!((&take_profit["limit_price"], &stop_loss["stop_price"]), (&json!("410.00"), &json!("395.00")));
    let (_, open) = venue.get(&format!("/api/portfolios/{p}/orders?status=open"), &bot);
    assert_eq!(open["orders"].as_array().unwrap().len(), 2, "{open}");

    // The price reaches the take-profit: it sells to the waiting bid; the stop-loss is cancelled.
    let bid = json!({"ticker": "QQQ", "side": "buy", "shares": 11, "limit_price": "410.00"});
    venue.trade(&printer.taker, printer.taker_portfolio, bid);
    printer.rest(&venue, "QQQ", "sell", 1, "410.00");
    let (take_profit, stop_loss) = (order_of(&entry["take_profit_order_id"]), order_of(&entry["stop_loss_order_id"]));
    assert_eq!(
        (take_profit["status"].as_str(), take_profit["filled_shares"].as_str()),
        (Some("filled"), Some("10")),
        "{take_profit}"
    );
    assert_eq!(
        (stop_loss["status"].as_str(), stop_loss["cancel_reason"].as_str()),
        (Some("cancelled"), Some("linked")),
        "{stop_loss}"
    );
    let (_, portfolio) = venue.get(&format!("/api/portfolios/{p}/portfolio"), &bot);
    assert_eq!(portfolio["positions"][0]["shares"], "0", "{portfolio}");

    // An entry cancelled before it fills takes its exits with it.
    let resting = json!({"ticker": "QQQ", "side": "buy", "shares": 5, "limit_price": "390.00", "stop_loss": "380.00"});
    let entry = venue.trade(&bot, p, resting);
    assert_eq!(entry["status"], "open");
    assert!(entry["take_profit_order_id"].is_null());
    assert_eq!(order_of(&entry["stop_loss_order_id"])["remaining_shares"], "0");
    venue.call(reqwest::Method::DELETE, &format!("/api/portfolios/{p}/orders/{}", entry["order_id"]), &bot, None);
    assert_eq!(order_of(&entry["stop_loss_order_id"])["cancel_reason"], "parent_closed");

    // OCO: a take-profit-limit and a stop linked by id; cancelling one cancels the other.
    let first = venue.trade(
        &bot,
        p,
        json!({"ticker": "QQQ", "side": "sell", "shares": 1, "type": "take_profit_limit", "stop_price": "420.00", "limit_price": "420.00"}),
    );
    let second = venue.trade(
        &bot,
        p,
        json!({"ticker": "QQQ", "side": "sell", "shares": 1, "stop_price": "390.00", "oco": first["order_id"]}),
    );
    assert_eq!(order_of(&first["order_id"])["oco_order_id"], second["order_id"]);
    assert_eq!(order_of(&second["order_id"])["oco_order_id"], first["order_id"]);
    venue.call(reqwest::Method::DELETE, &format!("/api/portfolios/{p}/orders/{}", second["order_id"]), &bot, None);
    assert_eq!(order_of(&first["order_id"])["cancel_reason"], "linked");
    // A link to an order that is not waiting is refused by the engine.
    let dangling =
        json!({"ticker": "QQQ", "side": "sell", "shares": 1, "stop_price": "390.00", "oco": first["order_id"]});
    assert_error(
        venue.post(&format!("/api/portfolios/{p}/trades"), &bot, dangling),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_trigger",
    );
}

#[test]
fn conditional_orders_refuse_bad_combinations_singly_and_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::start(dir.path(), &[]);
    let bot = venue.register("bot@example.com");
    let p = venue.portfolio(&bot, json!({}));
    let printer = Printer::new(&venue);
    printer.print(&venue, "AAPL", "150.00");
    let trades = format!("/api/portfolios/{p}/trades");
    let bad = [
        (json!({"type": "stop"}), "missing_stop_price"),
        (json!({"type": "stop_limit", "stop_price": "149"}), "missing_limit_price"),
        (json!({"type": "trailing_stop"}), "missing_trail"),
        (json!({"trail_amount": "1", "trail_percent": "1"}), "invalid_trail"),
        (json!({"trail_percent": 0}), "invalid_trail"),
        (json!({"trail_percent": "100"}), "invalid_trail"),
        (json!({"trail_percent": "0.005"}), "invalid_trail"),
        (json!({"trail_amount": "0.001"}), "price_not_on_tick"),
        (json!({"stop_price": "149.995"}), "price_not_on_tick"),
        (json!({"stop_price": "149", "trail_amount": "1"}), "invalid_field"),
        (json!({"type": "limit", "limit_price": "149", "oco": 1}), "invalid_oco"),
        (json!({"type": "teleport"}), "invalid_order_type"),
        // The engine's refusals: a stop at no price, post-only, a buy bracket's exits upside down.
        (json!({"stop_price": "0"}), "invalid_trigger"),
        (json!({"stop_price": "149", "limit_price": "148", "post_only": true}), "invalid_trigger"),
        (json!({"side": "buy", "take_profit": "140.00", "stop_loss": "160.00"}), "invalid_trigger"),
    ];
    for (fields, code) in bad {
        let mut order = json!({"ticker": "AAPL", "side": "sell", "shares": 1});
        for (key, value) in fields.as_object().unwrap() {
            order[key] = value.clone();
        }
        let result = venue.post(&trades, &bot, order.clone());
        assert_eq!(
            (result.0, result.1["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{order}: {}",
            result.1
        );
    }
    let (_, orders) = venue.get(&format!("/api/portfolios/{p}/orders"), &bot);
    assert_eq!(orders["orders"], json!([]), "nothing of any of it happened");

    // A batch mixes conditional orders, a bracket and a refusal, each answered by its index.
    let batch = json!({"orders": [
        {"ticker": "AAPL", "side": "sell", "shares": 1, "type": "stop", "stop_price": "140.00"},
        {"ticker": "AAPL", "side": "buy", "shares": 1, "limit_price": "145.00", "take_profit": {"limit_price": "155.00"}, "stop_loss": {"stop_price": "140.00", "limit_price": "139.50"}},
        {"ticker": "AAPL", "side": "sell", "shares": 1, "trail_percent": "100"},
        {"ticker": "AAPL", "side": "sell", "shares": 1, "trail_percent": "2"},
    ]});
    let (status, placed) = venue.post(&format!("/api/portfolios/{p}/batch-trades"), &bot, batch);
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    assert_eq!(placed["rejection_count"], 1, "{placed}");
    assert_eq!(
        (placed["rejections"][0]["index"].as_u64(), placed["rejections"][0]["code"].as_str()),
        (Some(2), Some("invalid_trail"))
    );
    let statuses: Vec<_> = placed["orders"].as_array().unwrap().iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["waiting_trigger", "open", "waiting_trigger"], "{placed}");
    assert!(placed["orders"][1]["stop_loss_order_id"].is_u64());
    let (_, open) = venue.get(&format!("/api/portfolios/{p}/orders?status=open"), &bot);
    assert_eq!(open["orders"].as_array().unwrap().len(), 5, "stop, entry, two exits, trailing stop: {open}");
}

#[test]
fn book_deltas_applied_to_the_snapshot_reproduce_the_rest_book() {
    use tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::start(dir.path(), &[]);
    let bot = venue.register("bot@example.com");
    let p = venue.portfolio(&bot, json!({"starting_balance": "1000000"}));
    let printer = Printer::new(&venue);
    let ws_url = venue.base.replace("http://", "ws://");
    let (mut socket, _) = tungstenite::connect(format!("{ws_url}/ws")).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    }

    // Some book before the subscription, so the snapshot is not empty.
    for (side, price, shares) in
        [("buy", "149.00", 5), ("buy", "148.50", 7), ("sell", "151.00", 4), ("sell", "152.00", 9)]
    {
        printer.rest(&venue, "AAPL", side, shares, price);
    }
    socket
        .send(Message::Text(json!({"op": "subscribe", "channel": "book_deltas", "symbol": "AAPL"}).to_string().into()))
        .unwrap();
    let mut read = || -> Value {
        loop {
            if let Message::Text(text) = socket.read().unwrap() {
                return serde_json::from_str(text.as_str()).unwrap();
            }
        }
    };
    assert_eq!(read()["type"], "subscribed");
    let snapshot = read();
    assert_eq!(snapshot["type"], "book_snapshot", "{snapshot}");
    assert_eq!(snapshot["asks"], json!([["151.00", "4"], ["152.00", "9"]]));
    type Side = std::collections::BTreeMap<String, String>;
    let side_of = |levels: &Value| -> Side {
        levels
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l[0].as_str().unwrap().into(), l[1].as_str().unwrap().into()))
            .collect()
    };
    let (mut bids, mut asks) = (side_of(&snapshot["bids"]), side_of(&snapshot["asks"]));
    let mut sequence = snapshot["sequence"].as_u64().unwrap();

    // Rests, partial and full fills, a sweep, a replace, a cancel, a stop that fires.
    let my = |body: Value| venue.trade(&bot, p, body);
    my(json!({"ticker": "AAPL", "side": "buy", "shares": 3, "limit_price": "149.00"}));
    let moved = my(json!({"ticker": "AAPL", "side": "buy", "shares": 2, "limit_price": "147.00"}));
    my(json!({"ticker": "AAPL", "side": "buy", "shares": 2}));
    my(json!({"ticker": "AAPL", "side": "buy", "shares": 6}));
    my(json!({"ticker": "AAPL", "side": "sell", "shares": 1, "type": "stop", "stop_price": "149.00"}));
    venue.call(
        reqwest::Method::PATCH,
        &format!("/api/portfolios/{p}/orders/{}", moved["order_id"]),
        &bot,
        Some(json!({"limit_price": "147.50", "shares": 4})),
    );
    let gone = printer.rest(&venue, "AAPL", "sell", 2, "155.00");
    let path = format!("/api/portfolios/{}/orders/{}", printer.maker_portfolio, gone["order_id"]);
    venue.call(reqwest::Method::DELETE, &path, &printer.maker, None);
    venue.trade(&printer.taker, printer.taker_portfolio, json!({"ticker": "AAPL", "side": "sell", "shares": 6}));
    // The last change: a level no other order uses.
    my(json!({"ticker": "AAPL", "side": "buy", "shares": 1, "limit_price": "140.00"}));

    let mut deltas = 0;
    loop {
        let delta = read();
        assert_eq!(delta["type"], "book_delta", "{delta}");
        assert_eq!(delta["prev_sequence"].as_u64(), Some(sequence), "no gap: {delta}");
        sequence = delta["sequence"].as_u64().unwrap();
        deltas += 1;
        let mut last = false;
        for change in delta["changes"].as_array().unwrap() {
            let side = if change["side"] == "buy" { &mut bids } else { &mut asks };
            let price = change["price"].as_str().unwrap().to_string();
            last |= price == "140.00";
            match change["shares"].as_str().unwrap() {
                "0" => side.remove(&price),
                shares => side.insert(price, shares.to_string()),
            };
        }
        if last {
            break;
        }
    }
    assert!(deltas >= 8, "{deltas}");
    let (_, book) = venue.get("/api/orderbook/AAPL?depth=100", &bot);
    assert_eq!(bids, side_of(&book["bids"]), "{book}");
    assert_eq!(asks, side_of(&book["asks"]), "{book}");
    assert!(!bids.is_empty() && !asks.is_empty());
}

#[test]
fn a_stop_refused_when_it_fires_is_cancelled_and_the_trade_that_fired_it_stands() {
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::start(dir.path(), &[]);
    let bot = venue.register("bot@example.com");
    let p = venue.portfolio(&bot, json!({"starting_balance": "5000"}));
    let printer = Printer::new(&venue);
    printer.print(&venue, "AAPL", "150.00");
    // Affordable when accepted; nothing is reserved while it waits, so a resting bid takes the cash.
    let stop = venue.trade(&bot, p, json!({"ticker": "AAPL", "side": "buy", "shares": 25, "stop_price": "151.00"}));
    assert_eq!(stop["status"], "waiting_trigger", "{stop}");
    venue.trade(&bot, p, json!({"ticker": "AAPL", "side": "buy", "shares": 25, "limit_price": "140.00"}));
    // The print that fires the stop is the printer's trade: answered 201 (`Printer::print`
    // checks), though the same command's events refuse the bot's stop.
    printer.print(&venue, "AAPL", "151.00");
    let (_, refused) = venue.get(&format!("/api/portfolios/{p}/orders/{}", stop["order_id"]), &bot);
    assert_eq!(refused["status"], "cancelled", "{refused}");
    assert_eq!(refused["cancel_reason"], "trigger_rejected");
    // The engine's refusal names the order but not the price that fired it.
    assert!(refused["triggered_at"].is_null());
}
