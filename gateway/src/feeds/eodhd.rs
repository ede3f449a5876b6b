//! The live source: a WebSocket client for the EODHD real-time protocol.
//!
//! # Protocol
//! Connect to `{base_url}/{endpoint}?api_token={token}` (endpoints `us` trades, `us-quote`,
//! `crypto`, `forex`), then send `{"action":"subscribe","symbols":"AAPL,MSFT"}`. The server answers
//! with status messages (`{"status_code":200,"message":"Authorized"}`) and then one JSON object per
//! tick, `t` in epoch milliseconds, numbers as JSON numbers or strings:
//! - `us`: `s`, `p` (price), `v` (size), `c` (conditions, an array), `dp` (dark pool), `ms` (market
//!   status), `t` — a trade
//! - `us-quote`: `s`, `ap`, `as`, `bp`, `bs`, `t` — a quote
//! - `forex`: `s`, `a` (ask), `b` (bid), `dc`, `dd` (daily change), `ppms`, `t` — a quote without sizes
//! - `crypto`: `s`, `p`, `q` (size), `dc`, `dd`, `t` — a trade
//!
//! # Robustness
//! - A message that is not JSON or lacks a field is counted (`malformed`) and skipped; a price that
//!   is not a number is counted (`bad_numbers`); a symbol not subscribed is counted.
//! - A tick older than the symbol's last one is dropped and counted (`out_of_order`); the last
//!   timestamps survive reconnects.
//! - A lost connection is retried with capped exponential backoff: the n-th consecutive failure
//!   waits `d = min(reconnect_max_ms, reconnect_initial_ms * 2^n)`, of which half is fixed and
//!   half drawn from a `ChaCha8Rng` seeded with `jitter_seed` ("equal jitter"). A connection that
//!   delivered a message resets the count. Every connection subscribes again.
//! - A symbol without a tick for `stale_after_ms` (by local receipt time) is marked stale, once,
//!   with a warning; its next tick makes it fresh again. [`super::FeedStatus`] answers queries.
//!
//! The client runs on a single-threaded tokio runtime on its own thread; it hands ticks to the
//! pump through the shared bounded channel, awaiting room when it is full.

use super::config::FeedConfigError;
use super::pace::StopSignal;
use super::status::{Counter, FeedStatus};
use super::tick::{Converter, Tick, TickError};
use futures_util::{SinkExt, StreamExt};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use simex_engine::{InstrumentTable, SymbolId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// One live connection (`[[eodhd]]` in the feed file).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EodhdConfig {
    pub endpoint: Endpoint,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The API token; or name an environment variable holding it with `api_token_env`.
    #[serde(default)]
    pub api_token: Option<String>,
    #[serde(default)]
    pub api_token_env: Option<String>,
    /// simex symbols to subscribe to.
    pub symbols: Vec<String>,
    /// simex symbol -> feed symbol, where they differ. By default a forex pair drops its dash
    /// (`EUR-USD` is `EURUSD`); other symbols are the same on both sides.
    #[serde(default)]
    pub remote_symbols: BTreeMap<String, String>,
    #[serde(default = "default_stale_after_ms")]
    pub stale_after_ms: u64,
    #[serde(default = "default_reconnect_initial_ms")]
    pub reconnect_initial_ms: u64,
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    #[serde(default)]
    pub jitter_seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum Endpoint {
    #[serde(rename = "us")]
    UsTrades,
    #[serde(rename = "us-quote")]
    UsQuotes,
    #[serde(rename = "crypto")]
    Crypto,
    #[serde(rename = "forex")]
    Forex,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::UsTrades => "us",
            Endpoint::UsQuotes => "us-quote",
            Endpoint::Crypto => "crypto",
            Endpoint::Forex => "forex",
        }
    }
}

fn default_base_url() -> String {
    "wss://ws.eodhistoricaldata.com/ws".into()
}
fn default_stale_after_ms() -> u64 {
    10_000
}
fn default_reconnect_initial_ms() -> u64 {
    500
}
fn default_reconnect_max_ms() -> u64 {
    30_000
}

/// A JSON value that may be a number or a string holding one, kept as exact text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberText(pub String);

impl<'de> Deserialize<'de> for NumberText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<NumberText, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(serde_json::Number),
            Text(String),
        }
        Ok(NumberText(match Either::deserialize(deserializer)? {
            // Shortest text that reads back as the same number: what the sender wrote.
            Either::Number(number) => number.to_string(),
            Either::Text(text) => text,
        }))
    }
}

#[derive(Deserialize)]
struct UsTrade {
    s: String,
    p: NumberText,
    #[serde(default)]
    v: Option<NumberText>,
    #[serde(default)]
    #[allow(dead_code)] // read to check its shape; conditions do not move the reference price
    c: Option<Vec<serde_json::Value>>,
    t: NumberText,
}

#[derive(Deserialize)]
struct UsQuote {
    s: String,
    ap: NumberText,
    #[serde(rename = "as")]
    ask_size: NumberText,
    bp: NumberText,
    bs: NumberText,
    t: NumberText,
}

#[derive(Deserialize)]
struct Forex {
    s: String,
    a: NumberText,
    b: NumberText,
    t: NumberText,
}

#[derive(Deserialize)]
struct Crypto {
    s: String,
    p: NumberText,
    q: NumberText,
    t: NumberText,
}

/// What one text message was.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Tick { symbol: String, tick: Result<Tick, TickError> },
    Status { code: Option<i64>, message: String },
    Malformed(String),
}

/// Reads one message of `endpoint`; `symbol_id` maps a feed symbol to the instrument, if subscribed.
pub fn parse_message(
    endpoint: Endpoint,
    text: &str,
    instruments: &InstrumentTable,
    symbol_id: impl Fn(&str) -> Option<SymbolId>,
) -> Parsed {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(error) => return Parsed::Malformed(error.to_string()),
    };
    let Some(object) = value.as_object() else { return Parsed::Malformed("not a JSON object".into()) };
    if object.contains_key("status_code") || (object.contains_key("message") && !object.contains_key("s")) {
        let code = object.get("status_code").and_then(|c| c.as_i64());
        let message = object.get("message").map_or_else(String::new, |m| m.as_str().unwrap_or("").to_string());
        return Parsed::Status { code, message };
    }
    let fields = |e: serde_json::Error| Parsed::Malformed(e.to_string());
    type Fields = (String, NumberText, Vec<NumberText>);
    let (symbol, t, numbers): Fields = match endpoint {
        Endpoint::UsTrades => match serde_json::from_value::<UsTrade>(value) {
            Ok(m) => (m.s, m.t, vec![m.p, m.v.unwrap_or(NumberText("0".into()))]),
            Err(e) => return fields(e),
        },
        Endpoint::UsQuotes => match serde_json::from_value::<UsQuote>(value) {
            Ok(m) => (m.s, m.t, vec![m.bp, m.bs, m.ap, m.ask_size]),
            Err(e) => return fields(e),
        },
        Endpoint::Forex => match serde_json::from_value::<Forex>(value) {
            Ok(m) => (m.s, m.t, vec![m.b, NumberText("0".into()), m.a, NumberText("0".into())]),
            Err(e) => return fields(e),
        },
        Endpoint::Crypto => match serde_json::from_value::<Crypto>(value) {
            Ok(m) => (m.s, m.t, vec![m.p, m.q]),
            Err(e) => return fields(e),
        },
    };
    let tick = (|| {
        let id = symbol_id(&symbol).ok_or_else(|| TickError::UnknownSymbol(symbol.clone()))?;
        let instrument = instruments.get(id).ok_or_else(|| TickError::UnknownSymbol(symbol.clone()))?;
        let timestamp_ns = super::tick::parse_decimal(&t.0)
            .ok()
            .filter(|d| d.scale == 0)
            .and_then(|d| i64::try_from(d.mantissa).ok())
            .and_then(|ms| ms.checked_mul(1_000_000))
            .ok_or_else(|| TickError::Timestamp(t.0.clone()))?;
        let converter = Converter { instrument };
        match numbers.as_slice() {
            [price, size] => converter.trade(timestamp_ns, &price.0, &size.0),
            [bid, bid_size, ask, ask_size] => converter.quote(timestamp_ns, &bid.0, &bid_size.0, &ask.0, &ask_size.0),
            _ => unreachable!("every endpoint gives two or four numbers"),
        }
    })();
    Parsed::Tick { symbol, tick }
}

/// A validated configuration, ready to connect.
pub struct EodhdSource {
    config: EodhdConfig,
    url: String,
    /// Feed symbol -> instrument.
    remote_to_id: HashMap<String, SymbolId>,
    subscribe_message: String,
    instruments: InstrumentTable,
}

impl EodhdSource {
    pub fn new(config: &EodhdConfig, instruments: &InstrumentTable) -> Result<EodhdSource, FeedConfigError> {
        let invalid = |problem: String| FeedConfigError::Invalid { source_name: "eodhd", problem };
        let token = match (&config.api_token, &config.api_token_env) {
            (Some(token), None) => token.clone(),
            (None, Some(name)) => {
                std::env::var(name).map_err(|_| invalid(format!("environment variable {name} is not set")))?
            }
            _ => return Err(invalid("give exactly one of api_token and api_token_env".into())),
        };
        if config.symbols.is_empty() {
            return Err(invalid("no symbols to subscribe to".into()));
        }
        if config.reconnect_initial_ms == 0 || config.reconnect_max_ms < config.reconnect_initial_ms {
            return Err(invalid("reconnect_initial_ms must be positive and at most reconnect_max_ms".into()));
        }
        if config.stale_after_ms == 0 {
            return Err(invalid("stale_after_ms must be positive".into()));
        }
        let mut remote_to_id = HashMap::new();
        let mut remote_symbols = Vec::new();
        for symbol in &config.symbols {
            let instrument = instruments.by_symbol(symbol).ok_or_else(|| FeedConfigError::Symbol {
                source_name: "eodhd",
                symbol: symbol.clone(),
                problem: "not an instrument".into(),
            })?;
            let remote = config.remote_symbols.get(symbol).cloned().unwrap_or_else(|| match config.endpoint {
                Endpoint::Forex => symbol.replace('-', ""),
                _ => symbol.clone(),
            });
            remote_to_id.insert(remote.clone(), instrument.symbol_id);
            remote_symbols.push(remote);
        }
        let subscribe_message =
            serde_json::json!({ "action": "subscribe", "symbols": remote_symbols.join(",") }).to_string();
        let url = format!("{}/{}?api_token={token}", config.base_url.trim_end_matches('/'), config.endpoint.path());
        Ok(EodhdSource {
            config: config.clone(),
            url,
            remote_to_id,
            subscribe_message,
            instruments: instruments.clone(),
        })
    }

    /// Runs the client on a single-threaded tokio runtime until stopped or the pump is gone.
    pub fn run(self, sender: tokio::sync::mpsc::Sender<Tick>, status: Arc<FeedStatus>, stop: StopSignal) {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "cannot start the live feed's runtime");
                return;
            }
        };
        let receipts: Receipts =
            std::sync::Mutex::new(self.remote_to_id.values().map(|&id| (id, Instant::now())).collect());
        runtime.block_on(async {
            tokio::select! {
                () = stop.stopped() => {}
                () = self.connect_forever(&receipts, &sender, &status) => {}
                () = self.watch_staleness(&receipts, &status) => {}
            }
        });
    }

    /// Connects, and reconnects with backoff, until the pump is gone.
    async fn connect_forever(
        &self,
        receipts: &Receipts,
        sender: &tokio::sync::mpsc::Sender<Tick>,
        status: &FeedStatus,
    ) {
        let endpoint = self.config.endpoint.path();
        let mut last_tick_ns: HashMap<SymbolId, i64> = HashMap::new();
        let mut backoff = Backoff::new(&self.config);
        loop {
            let mut delivered = false;
            match self.connection(receipts, &mut last_tick_ns, sender, status, &mut delivered).await {
                Ok(ConnectionEnd::PumpGone) => return,
                Ok(ConnectionEnd::Closed) => tracing::warn!(endpoint, "the live feed closed the connection"),
                Err(error) => tracing::warn!(endpoint, %error, "live feed connection failed"),
            }
            if delivered {
                backoff.reset();
            }
            let delay = backoff.next_delay();
            tracing::info!(endpoint, delay_ms = delay.as_millis() as u64, "reconnecting to the live feed");
            tokio::time::sleep(delay).await;
        }
    }

    /// One connection: subscribe, then read messages until it ends.
    async fn connection(
        &self,
        receipts: &Receipts,
        last_tick_ns: &mut HashMap<SymbolId, i64>,
        sender: &tokio::sync::mpsc::Sender<Tick>,
        status: &FeedStatus,
        delivered: &mut bool,
    ) -> Result<ConnectionEnd, ConnectionError> {
        let endpoint = self.config.endpoint;
        let connecting = tokio_tungstenite::connect_async(self.url.as_str());
        let (mut socket, _) =
            tokio::time::timeout(CONNECT_TIMEOUT, connecting).await.map_err(|_| ConnectionError::Timeout)??;
        status.add(Counter::Connections, 1);
        tracing::info!(endpoint = endpoint.path(), "connected to the live feed; subscribing");
        socket.send(Message::text(self.subscribe_message.clone())).await?;
        while let Some(message) = socket.next().await {
            let text = match message? {
                Message::Text(text) => text,
                Message::Close(_) => return Ok(ConnectionEnd::Closed),
                Message::Binary(_) => {
                    status.add(Counter::Malformed, 1);
                    continue;
                }
                // Pings are answered by the library; pongs and raw frames carry nothing.
                _ => continue,
            };
            *delivered = true;
            let parsed = parse_message(endpoint, text.as_str(), &self.instruments, |symbol| {
                self.remote_to_id.get(symbol).copied()
            });
            let tick = match parsed {
                Parsed::Tick { tick: Ok(tick), .. } => tick,
                Parsed::Tick { symbol, tick: Err(error) } => {
                    let counter = match error {
                        TickError::UnknownSymbol(_) => Counter::UnknownSymbol,
                        TickError::Timestamp(_) => Counter::Malformed,
                        TickError::Number { .. } | TickError::NotPositive { .. } => Counter::BadNumbers,
                    };
                    status.add(counter, 1);
                    tracing::warn!(endpoint = endpoint.path(), symbol, %error, "skipping a tick");
                    continue;
                }
                Parsed::Status { code, message } => {
                    match code {
                        Some(200) | None => {
                            tracing::info!(endpoint = endpoint.path(), ?code, message, "live feed status")
                        }
                        Some(_) => tracing::warn!(endpoint = endpoint.path(), ?code, message, "live feed status"),
                    }
                    continue;
                }
                Parsed::Malformed(problem) => {
                    status.add(Counter::Malformed, 1);
                    tracing::warn!(endpoint = endpoint.path(), problem, "skipping a malformed message");
                    continue;
                }
            };
            let last = last_tick_ns.entry(tick.symbol_id).or_insert(i64::MIN);
            if tick.timestamp_ns < *last {
                status.add(Counter::OutOfOrder, 1);
                continue;
            }
            *last = tick.timestamp_ns;
            lock(receipts).insert(tick.symbol_id, Instant::now());
            if status.record_fresh(tick.symbol_id, tick.timestamp_ns) {
                tracing::info!(symbol = self.symbol_name(tick.symbol_id), "live prices resumed");
            }
            if sender.send(tick).await.is_err() {
                return Ok(ConnectionEnd::PumpGone);
            }
            status.add(Counter::Ticks, 1);
        }
        Ok(ConnectionEnd::Closed)
    }

    /// Marks symbols stale when no tick arrived for `stale_after_ms`; never returns.
    async fn watch_staleness(&self, receipts: &Receipts, status: &FeedStatus) {
        let stale_after = Duration::from_millis(self.config.stale_after_ms);
        let period = (stale_after / 4).clamp(Duration::from_millis(1), Duration::from_secs(1));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let now = Instant::now();
            let stale: Vec<SymbolId> =
                lock(receipts).iter().filter(|(_, &at)| now - at >= stale_after).map(|(&id, _)| id).collect();
            for symbol_id in stale {
                if status.mark_stale(symbol_id) {
                    tracing::warn!(
                        symbol = self.symbol_name(symbol_id),
                        stale_after_ms = self.config.stale_after_ms,
                        "no live tick: prices are stale"
                    );
                }
            }
        }
    }

    fn symbol_name(&self, symbol_id: SymbolId) -> &str {
        self.instruments.get(symbol_id).map_or("?", |i| i.symbol.as_str())
    }

    /// The subscription sent on every connection.
    pub fn subscribe_message(&self) -> &str {
        &self.subscribe_message
    }
}

/// When each subscribed symbol last ticked (local time).
type Receipts = std::sync::Mutex<HashMap<SymbolId, Instant>>;

fn lock(receipts: &Receipts) -> std::sync::MutexGuard<'_, HashMap<SymbolId, Instant>> {
    receipts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

enum ConnectionEnd {
    Closed,
    PumpGone,
}

#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("no connection within {} s", CONNECT_TIMEOUT.as_secs())]
    Timeout,
    #[error(transparent)]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
}

/// Longest wait for a connection (TCP, TLS and WebSocket handshakes) before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Capped exponential backoff with equal jitter (see the module doc).
struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    failures: u32,
    rng: ChaCha8Rng,
}

impl Backoff {
    fn new(config: &EodhdConfig) -> Backoff {
        Backoff {
            initial_ms: config.reconnect_initial_ms,
            max_ms: config.reconnect_max_ms,
            failures: 0,
            rng: ChaCha8Rng::seed_from_u64(config.jitter_seed),
        }
    }

    fn reset(&mut self) {
        self.failures = 0;
    }

    fn next_delay(&mut self) -> Duration {
        let ceiling_ms = self.initial_ms.saturating_mul(1u64 << self.failures.min(32)).min(self.max_ms);
        self.failures = self.failures.saturating_add(1);
        let half = ceiling_ms / 2;
        Duration::from_millis(ceiling_ms - half + self.rng.next_u64() % (half + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::tick::TickKind;

    fn parse(endpoint: Endpoint, text: &str) -> Parsed {
        let instruments = InstrumentTable::default_table();
        let ids: HashMap<&str, SymbolId> =
            [("AAPL", 0), ("BTC-USD", instruments.by_symbol("BTC-USD").unwrap().symbol_id)].into();
        let eur = instruments.by_symbol("EUR-USD").unwrap().symbol_id;
        parse_message(endpoint, text, &instruments, |s| if s == "EURUSD" { Some(eur) } else { ids.get(s).copied() })
    }

    fn tick(parsed: Parsed) -> Tick {
        match parsed {
            Parsed::Tick { tick: Ok(tick), .. } => tick,
            other => panic!("not a tick: {other:?}"),
        }
    }

    #[test]
    fn each_endpoint_reads_numbers_and_strings() {
        let trade = tick(parse(
            Endpoint::UsTrades,
            r#"{"s":"AAPL","p":190.255,"v":"100","c":[12,37],"dp":false,"ms":"open","t":1725198451165}"#,
        ));
        assert_eq!(trade.timestamp_ns, 1_725_198_451_165_000_000);
        assert_eq!(trade.kind, TickKind::Trade { price_ticks: 19_026, qty_lots: 100 });
        let quote = tick(parse(
            Endpoint::UsQuotes,
            r#"{"s":"AAPL","ap":"190.305","as":3,"bp":190.295,"bs":"2","t":"1725198451165"}"#,
        ));
        assert_eq!(
            quote.kind,
            TickKind::Quote { bid_price_ticks: 19_029, bid_qty_lots: 2, ask_price_ticks: 19_031, ask_qty_lots: 3 }
        );
        let forex = tick(parse(
            Endpoint::Forex,
            r#"{"s":"EURUSD","a":1.08016,"b":"1.08004","dc":"-0.0421","dd":"-0.0005","ppms":false,"t":1725198451000}"#,
        ));
        assert_eq!(
            forex.kind,
            TickKind::Quote { bid_price_ticks: 108_004, bid_qty_lots: 0, ask_price_ticks: 108_016, ask_qty_lots: 0 }
        );
        let crypto = tick(parse(
            Endpoint::Crypto,
            r#"{"s":"BTC-USD","p":"67001.12","q":1.5e-7,"dc":"1.2","dd":"800.1","t":1725198451000}"#,
        ));
        assert_eq!(crypto.kind, TickKind::Trade { price_ticks: 6_700_112, qty_lots: 15 });
    }

    #[test]
    fn status_and_malformed_messages_are_recognised() {
        assert_eq!(
            parse(Endpoint::UsTrades, r#"{"status_code":200,"message":"Authorized"}"#),
            Parsed::Status { code: Some(200), message: "Authorized".into() }
        );
        for bad in [
            "{not json",
            "[1,2]",
            r#"{"s":"AAPL","t":1}"#,
            r#"{"s":"AAPL","p":1,"c":"x","t":1}"#,
            r#"{"s":"AAPL","p":true,"t":1}"#,
        ] {
            assert!(matches!(parse(Endpoint::UsTrades, bad), Parsed::Malformed(_)), "{bad}");
        }
        let unparseable = parse(Endpoint::UsTrades, r#"{"s":"AAPL","p":"abc","t":1}"#);
        assert!(matches!(unparseable, Parsed::Tick { tick: Err(TickError::Number { .. }), .. }));
        let unknown = parse(Endpoint::UsTrades, r#"{"s":"ZZZ","p":"1","t":1}"#);
        assert!(matches!(unknown, Parsed::Tick { tick: Err(TickError::UnknownSymbol(_)), .. }));
        let bad_time = parse(Endpoint::UsTrades, r#"{"s":"AAPL","p":"1","t":"soon"}"#);
        assert!(matches!(bad_time, Parsed::Tick { tick: Err(TickError::Timestamp(_)), .. }));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_seeded_jitter_and_resets() {
        let config: EodhdConfig = toml::from_str(
            "endpoint = \"us\"\napi_token = \"t\"\nsymbols = [\"AAPL\"]\nreconnect_initial_ms = 100\nreconnect_max_ms = 1000\njitter_seed = 3",
        )
        .unwrap();
        let mut backoff = Backoff::new(&config);
        let delays: Vec<u64> = (0..8).map(|_| backoff.next_delay().as_millis() as u64).collect();
        for (n, delay) in delays.iter().enumerate() {
            let ceiling = (100u64 << n).min(1000);
            assert!(ceiling - ceiling / 2 <= *delay && *delay <= ceiling, "attempt {n}: {delay} ms");
        }
        let mut again = Backoff::new(&config);
        let delays_again: Vec<u64> = (0..8).map(|_| again.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, delays_again, "the same seed gives the same delays");
        backoff.reset();
        assert!(backoff.next_delay().as_millis() <= 100);
    }

    #[test]
    fn the_subscription_and_url_follow_the_protocol() {
        let instruments = InstrumentTable::default_table();
        let config: EodhdConfig = toml::from_str(
            "endpoint = \"forex\"\nbase_url = \"ws://127.0.0.1:1/ws/\"\napi_token = \"secret\"\nsymbols = [\"EUR-USD\", \"GBP-USD\"]",
        )
        .unwrap();
        let source = EodhdSource::new(&config, &instruments).unwrap();
        assert_eq!(source.subscribe_message(), r#"{"action":"subscribe","symbols":"EURUSD,GBPUSD"}"#);
        assert_eq!(source.url, "ws://127.0.0.1:1/ws/forex?api_token=secret");
        let mut no_token = config.clone();
        no_token.api_token = None;
        assert!(EodhdSource::new(&no_token, &instruments).is_err());
    }
}
