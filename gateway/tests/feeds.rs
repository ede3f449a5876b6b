//! Reference price sources end to end: ticks from a source go through a real runtime and move the
//! engine's reference price.

use simex::feeds::{self, Counter, FeedConfig, SyntheticSource, Tick};
use simex::runtime::{Runtime, RuntimeConfig, ShardEngine};
use simex_engine::{CommandBody, InstrumentTable};
use std::time::{Duration, Instant};

/// Waits (sleeping) until `condition` holds; a guard against a hang, not a timing assertion.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Starts a one-shard runtime, runs `config`'s feeds until `enough` holds, stops them and returns
/// the last command the pump submitted, how many it submitted, and the shard's engine.
fn run_feeds(
    config: &FeedConfig,
    enough: impl Fn(&feeds::FeedStatus) -> bool,
) -> (Option<CommandBody>, u64, ShardEngine) {
    let instruments = InstrumentTable::default_table();
    let mut started = Runtime::start(RuntimeConfig::default(), instruments.clone()).unwrap();
    let submitter = started.submitters.pop().unwrap();
    let handle = feeds::spawn(config, &instruments, submitter).unwrap();
    wait_until("the feed to make progress", || enough(handle.status()));
    handle.stop();
    let status = handle.status().clone();
    let report = handle.join();
    drop(report.submitter);
    let mut engines = started.runtime.shutdown();
    (report.last_command, status.count(Counter::Submitted), engines.remove(0))
}

#[test]
fn synthetic_ticks_move_the_engines_reference_price() {
    let config = FeedConfig::from_toml(
        r#"
        [synthetic]
        seed = 11
        [[synthetic.symbol]]
        symbol = "AAPL"
        start_price = "190.00"
        volatility_bps = 500
        volatility_period = "daily"
        interval_ms = 1
        "#,
    )
    .unwrap();
    let (last_command, submitted, engine) = run_feeds(&config, |status| status.count(Counter::Submitted) >= 40);
    // The engine holds the last quote and the last trade the pump submitted.
    match last_command {
        Some(CommandBody::ReferenceTrade { symbol_id, price_ticks, .. }) => {
            assert_eq!(engine.market(symbol_id).unwrap().last_trade_ticks, price_ticks);
        }
        Some(CommandBody::ReferenceQuote { symbol_id, bid_price_ticks, ask_price_ticks, .. }) => {
            let market = engine.market(symbol_id).unwrap();
            assert_eq!((market.bid_ticks, market.ask_ticks), (bid_price_ticks, ask_price_ticks));
        }
        other => panic!("no reference data was submitted: {other:?}"),
    }

    // The pump submitted exactly the generator's ticks, in order: regenerate them to check.
    let instruments = InstrumentTable::default_table();
    let mut source = SyntheticSource::new(config.synthetic.as_ref().unwrap(), &instruments, 0).unwrap();
    let ticks: Vec<Tick> = (0..submitted).map(|_| source.next_tick().unwrap()).collect();
    assert_eq!(feeds::tick_to_commands(ticks.last().unwrap()), last_command);
}

#[test]
fn the_embedded_default_prices_every_default_symbol() {
    let config = FeedConfig::default();
    let instruments = InstrumentTable::default_table();
    let symbols = &config.synthetic.as_ref().unwrap().symbols;
    assert_eq!(symbols.len(), instruments.len());
    // Every symbol's first step (a quote and a trade) is due at once.
    let count = 2 * instruments.len() as u64;
    let (_, _, engine) = run_feeds(&config, |status| status.count(Counter::Submitted) >= count);
    for instrument in instruments.iter() {
        assert!(engine.reference_price(instrument.symbol_id).is_some(), "{} has no price", instrument.symbol);
    }
}

/// Runs `config` until every source has ended (files at `fast` pace end by themselves); returns
/// the feed status and the shard's engine.
fn run_to_end(config: &FeedConfig) -> (std::sync::Arc<feeds::FeedStatus>, ShardEngine) {
    let instruments = InstrumentTable::default_table();
    let mut started = Runtime::start(RuntimeConfig::default(), instruments.clone()).unwrap();
    let submitter = started.submitters.pop().unwrap();
    let handle = feeds::spawn(config, &instruments, submitter).unwrap();
    let status = handle.status().clone();
    drop(handle.join());
    let mut engines = started.runtime.shutdown();
    (status, engines.remove(0))
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn symbol_id(symbol: &str) -> simex_engine::SymbolId {
    InstrumentTable::default_table().by_symbol(symbol).unwrap().symbol_id
}

#[test]
fn replayed_bars_leave_the_last_close_as_reference_price() {
    let config = FeedConfig::from_toml(&format!(
        "[[files]]\npath = \"{}\"\nformat = \"bars\"\npace = \"fast\"\nbar_interval_ms = 60000\n",
        fixture("bars.csv")
    ))
    .unwrap();
    let (status, engine) = run_to_end(&config);
    // Three good bars of four trades each; the fourth bar's low is not a number.
    assert_eq!(status.count(Counter::Submitted), 12);
    assert_eq!(status.count(Counter::BadNumbers), 1);
    assert_eq!(engine.reference_price(symbol_id("AAPL")), Some(19_280));
    assert_eq!(engine.reference_price(symbol_id("MSFT")), Some(41_573));
}

#[test]
fn replayed_trades_round_to_the_nearest_tick_and_drop_what_is_out_of_order() {
    let config = FeedConfig::from_toml(&format!(
        "[[files]]\npath = \"{}\"\nformat = \"trades\"\npace = \"fast\"\n",
        fixture("trades.csv")
    ))
    .unwrap();
    let (status, engine) = run_to_end(&config);
    assert_eq!(status.count(Counter::Submitted), 3);
    assert_eq!(status.count(Counter::OutOfOrder), 1);
    assert_eq!(engine.reference_price(symbol_id("AAPL")), Some(19_292));
    assert_eq!(engine.reference_price(symbol_id("BTC-USD")), Some(6_700_113));
}

#[test]
fn a_missing_file_is_a_typed_error_at_spawn() {
    let config = FeedConfig::from_toml("[[files]]\npath = \"/nonexistent/x.csv\"\nformat = \"trades\"\n").unwrap();
    let instruments = InstrumentTable::default_table();
    let mut started = Runtime::start(RuntimeConfig::default(), instruments.clone()).unwrap();
    let error = feeds::spawn(&config, &instruments, started.submitters.pop().unwrap()).err().unwrap();
    assert!(error.to_string().contains("/nonexistent/x.csv"), "{error}");
    started.runtime.shutdown();
}

/// A local server speaking the EODHD protocol: for connection `i` it reads the subscription,
/// sends `scripts[i]`, and drops the connection, except the last, which it keeps open and silent.
/// Returns its base URL and the subscriptions it received.
fn eodhd_server(scripts: Vec<Vec<String>>) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let subscriptions = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let seen = subscriptions.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let connections = scripts.len();
            for (index, script) in scripts.into_iter().enumerate() {
                let (stream, _) = listener.accept().await.unwrap();
                let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
                let Some(Ok(Message::Text(subscription))) = socket.next().await else { panic!("no subscription") };
                seen.lock().unwrap().push(subscription.to_string());
                for message in script {
                    socket.send(Message::text(message)).await.unwrap();
                }
                if index + 1 == connections {
                    // Silent until the client goes away.
                    while let Some(Ok(_)) = socket.next().await {}
                }
            }
        });
    });
    (format!("ws://{address}/ws"), subscriptions)
}

#[test]
fn the_live_feed_survives_bad_ticks_reconnects_resubscribes_and_marks_silence_stale() {
    let authorized = r#"{"status_code":200,"message":"Authorized"}"#.to_string();
    let first = vec![
        authorized.clone(),
        r#"{"s":"AAPL","p":190.10,"v":100,"c":[12],"dp":false,"ms":"open","t":1000}"#.into(),
        "{not json".into(),
        r#"{"s":"AAPL","t":1001}"#.into(),
        r#"{"s":"AAPL","p":"1.00","v":"1","t":999}"#.into(),
        r#"{"s":"AAPL","p":"abc","v":"1","t":1002}"#.into(),
        r#"{"s":"ZZZ","p":"1","v":"1","t":1}"#.into(),
        r#"{"s":"MSFT","p":"420.5","v":"3","c":[],"t":"1003"}"#.into(),
    ];
    let second = vec![
        authorized,
        r#"{"s":"AAPL","p":"150.00","v":"1","t":500}"#.into(),
        r#"{"s":"AAPL","p":"191.234","v":"7","t":2000}"#.into(),
    ];
    let (base_url, subscriptions) = eodhd_server(vec![first, second]);
    let config = FeedConfig::from_toml(&format!(
        r#"
        [[eodhd]]
        endpoint = "us"
        base_url = "{base_url}"
        api_token = "demo"
        symbols = ["AAPL", "MSFT"]
        stale_after_ms = 300
        reconnect_initial_ms = 20
        reconnect_max_ms = 100
        "#
    ))
    .unwrap();
    let instruments = InstrumentTable::default_table();
    let mut started = Runtime::start(RuntimeConfig::default(), instruments.clone()).unwrap();
    let handle = feeds::spawn(&config, &instruments, started.submitters.pop().unwrap()).unwrap();
    let status = handle.status().clone();
    let (aapl, msft) = (symbol_id("AAPL"), symbol_id("MSFT"));
    wait_until("three ticks, two subscriptions and both symbols stale", || {
        status.count(Counter::Submitted) == 3
            && subscriptions.lock().unwrap().len() == 2
            && status.stale_symbols() == [aapl, msft]
    });
    handle.stop();
    drop(handle.join());
    let engine = started.runtime.shutdown().remove(0);

    let subscribe = r#"{"action":"subscribe","symbols":"AAPL,MSFT"}"#;
    assert_eq!(*subscriptions.lock().unwrap(), [subscribe, subscribe], "subscribed again after the reconnect");
    assert_eq!(status.count(Counter::Connections), 2);
    assert_eq!(status.count(Counter::Malformed), 2);
    assert_eq!(status.count(Counter::OutOfOrder), 2, "one before the reconnect, one older than it");
    assert_eq!(status.count(Counter::BadNumbers), 1);
    assert_eq!(status.count(Counter::UnknownSymbol), 1);
    assert_eq!(engine.reference_price(aapl), Some(19_123));
    assert_eq!(engine.reference_price(msft), Some(42_050));
    assert_eq!(status.freshness(aapl).map(|f| f.last_tick_ns), Some(2_000_000_000));
}

#[test]
fn a_tiny_ring_slows_the_pump_down_but_loses_and_reorders_nothing() {
    let path = std::env::temp_dir().join(format!("simex-feeds-backpressure-{}.csv", std::process::id()));
    let rows: String = (1..=3_000).map(|i| format!("{i},AAPL,{}.{:02},1\n", 100 + i / 100, i % 100)).collect();
    std::fs::write(&path, format!("timestamp_ms,symbol,price,size\n{rows}")).unwrap();
    let config = FeedConfig::from_toml(&format!(
        "[pump]\nchannel_ticks = 2\nbusy_backoff_max_us = 50\n[[files]]\npath = \"{}\"\nformat = \"trades\"\npace = \"fast\"\n",
        path.display()
    ))
    .unwrap();
    let instruments = InstrumentTable::default_table();
    let runtime_config =
        RuntimeConfig { inbound_ring_slots: 2, taps: vec!["prices".into()], ..RuntimeConfig::default() };
    let mut started = Runtime::start(runtime_config, instruments.clone()).unwrap();
    let handle = feeds::spawn(&config, &instruments, started.submitters.pop().unwrap()).unwrap();
    let status = handle.status().clone();
    drop(handle.join());
    let engine = started.runtime.shutdown().remove(0);
    std::fs::remove_file(&path).unwrap();

    assert_eq!(status.count(Counter::Submitted), 3_000);
    assert_eq!(engine.reference_price(symbol_id("AAPL")), Some(13_000));
    // The tap saw every price, in the order of the file.
    let mut tap = started.taps.pop().unwrap();
    let mut prices = Vec::new();
    while let Some(tapped) = tap.poll() {
        if let simex_engine::EventBody::ReferenceTradePrinted { price_ticks, .. } = tapped.event.body {
            prices.push(price_ticks);
        }
    }
    assert_eq!(prices, (1..=3_000).map(|i| 10_000 + i).collect::<Vec<i64>>());
}

#[test]
fn replayed_prices_are_journaled_and_recovered_after_a_restart() {
    use simex::runtime::JournalSettings;
    let root = std::env::temp_dir().join(format!("simex-feeds-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    // Small segments: preallocating the default 64 MiB ones would cost the test more than it runs.
    let journal = JournalSettings { segment_size_bytes: 1 << 20, ..JournalSettings::new(&root) };
    let runtime_config = || RuntimeConfig { shards: 2, journal: Some(journal.clone()), ..RuntimeConfig::default() };
    let config = FeedConfig::from_toml(&format!(
        "[[files]]\npath = \"{}\"\nformat = \"trades\"\npace = \"fast\"\n",
        fixture("trades.csv")
    ))
    .unwrap();
    let instruments = InstrumentTable::default_table();
    let (aapl, btc) = (symbol_id("AAPL"), symbol_id("BTC-USD"));
    let price_of = |engines: &[ShardEngine], symbol| engines.iter().find_map(|engine| engine.reference_price(symbol));

    let mut started = Runtime::start(runtime_config(), instruments.clone()).unwrap();
    let handle = feeds::spawn(&config, &instruments, started.submitters.pop().unwrap()).unwrap();
    drop(handle.join());
    let before = started.runtime.shutdown();
    assert_eq!((price_of(&before, aapl), price_of(&before, btc)), (Some(19_292), Some(6_700_113)));

    // A new runtime on the same journal, with no feed at all, recovers the same prices and state.
    let restarted = Runtime::start(runtime_config(), instruments.clone()).unwrap();
    drop(restarted.submitters);
    let after = restarted.runtime.shutdown();
    std::fs::remove_dir_all(&root).unwrap();
    assert_eq!((price_of(&after, aapl), price_of(&after, btc)), (Some(19_292), Some(6_700_113)));
    let hashes = |engines: &[ShardEngine]| engines.iter().map(|e| e.state_hash()).collect::<Vec<_>>();
    assert_eq!(hashes(&after), hashes(&before));
}
