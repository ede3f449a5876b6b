//! `simex` serving: the one place the venue is assembled.
//!
//! ```text
//!  axum handlers ──crossbeam channel──► gateway core thread ──Submitter──► shards ──► journal
//!        ▲                                  │  ▲                              │
//!        └──── oneshot replies ─────────────┘  └──── event tap ("gateway") ◄──┘
//!                                          folds into the read model (history, books, prices)
//! ```
//!
//! Start-up order: the account store is recovered; the runtime recovers every shard from its
//! journal; the read model is rebuilt by reading the same journals (the tap only carries events
//! of commands applied after start); then the core thread, the price feeds (their own submitter),
//! the PostgreSQL projection (when `DATABASE_URL` is set) start and the listener opens.

use crate::auth::{load_or_create_secret, AccountStore, ExternalTokens, JwtKeys};
use crate::config::{FeedsSetting, VenueConfig};
use crate::feeds::FeedConfig;
use crate::history::postgres::PgHistory;
use crate::history::{HistoryStore, MemoryHistory};
use crate::http::metrics::LatencySources;
use crate::http::{self, AppState, HttpSettings};
use crate::projection::ProjectionConfig;
use crate::runtime::{JournalSettings, Runtime, RuntimeConfig, SnapshotSettings, StageHistograms, WaitStrategy};
use anyhow::Context;
use simex_engine::codec::decode_event;
use simex_engine::InstrumentTable;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Folds of events buffered for `/ws` subscribers before a slow one is told it missed some.
const EVENTS_BROADCAST_SLOTS: usize = 4096;

/// Runs the venue until SIGINT or SIGTERM.
pub fn run(config: VenueConfig) -> anyhow::Result<()> {
    run_until(config, shutdown_signal())
}

/// Stops a venue started by [`run_until`] from any thread: the venue stops as on SIGTERM.
#[derive(Clone, Debug, Default)]
pub struct StopHandle(Arc<tokio::sync::Notify>);

impl StopHandle {
    pub fn new() -> StopHandle {
        StopHandle::default()
    }

    /// Asks the venue to stop (also before it has started waiting: the request is kept).
    pub fn stop(&self) {
        self.0.notify_one();
    }

    /// The future to give [`run_until`]: it completes once [`StopHandle::stop`] is called.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let notify = self.0.clone();
        async move { notify.notified().await }
    }
}

/// A venue served on a thread of this process (the load generator, the benchmarks): dropping it
/// stops the venue, waits for it, and removes its data directory.
pub struct InProcessVenue {
    pub base_url: String,
    pub data_dir: std::path::PathBuf,
    stop: StopHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcessVenue {
    /// Serves `config` under [`run_until`] on a thread of its own and returns once its HTTP port
    /// accepts connections (within 30 s).
    pub fn start(config: VenueConfig) -> anyhow::Result<InProcessVenue> {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], config.listen.port()));
        let data_dir = config.data_dir.clone();
        let stop = StopHandle::new();
        let stopped = stop.stopped();
        let thread = std::thread::Builder::new().name("simex-venue".into()).spawn(move || {
            if let Err(error) = run_until(config, stopped) {
                eprintln!("the in-process venue stopped: {error:#}");
            }
        })?;
        let venue = InProcessVenue { base_url: format!("http://{address}"), data_dir, stop, thread: Some(thread) };
        for _ in 0..1_500 {
            if std::net::TcpStream::connect(address).is_ok() {
                return Ok(venue);
            }
            anyhow::ensure!(venue.thread.as_ref().is_some_and(|t| !t.is_finished()), "the in-process venue failed");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        anyhow::bail!("the in-process venue did not start listening on {address}")
    }
}

impl Drop for InProcessVenue {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Runs the venue until `shutdown` completes (for a venue embedded in another program, which
/// stops it with a [`StopHandle`] rather than a signal), then shuts it down as [`run`] does.
pub fn run_until(
    config: VenueConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let journal_root = config.data_dir.join("journal");
    let accounts_root = config.data_dir.join("accounts");
    let accounts =
        Arc::new(AccountStore::open(&accounts_root, config.durability).context("opening the account store")?);
    let secret = match &config.jwt_secret {
        Some(secret) => secret.as_bytes().to_vec(),
        None => load_or_create_secret(&config.data_dir.join("jwt_secret")).context("the token secret")?,
    };
    let jwt = Arc::new(JwtKeys::new(&secret, config.jwt_ttl_seconds));

    let instruments = InstrumentTable::default_table();
    let runtime_config = RuntimeConfig {
        shards: config.shards,
        // The HTTP gateway core's, the price feeds' and the binary gateway's.
        submitters: 3,
        taps: vec!["gateway".into(), "binary".into()],
        wait: WaitStrategy::Park,
        // Snapshot sets bound the engines' recovery; the journal is kept whole because the read
        // model behind the history endpoints is rebuilt from it.
        journal: Some(JournalSettings {
            durability: config.durability,
            snapshots: Some(SnapshotSettings { prune: false, ..SnapshotSettings::default() }),
            ..JournalSettings::new(&journal_root)
        }),
        ..RuntimeConfig::default()
    };
    let portfolios_max = runtime_config.portfolios_max;
    let mut started = Runtime::start(runtime_config, instruments.clone()).context("starting the runtime")?;
    for shard in started.runtime.recovery() {
        tracing::info!(
            shard = shard.shard,
            records = shard.records,
            hash = format!("{:016x}", shard.state_hash),
            "recovered"
        );
    }
    let history = MemoryHistory::default();
    rebuild_from_journal(&journal_root, config.shards, &history)?;

    let binary_submitter = started.submitters.pop().context("the runtime made no submitter")?;
    let feed_submitter = started.submitters.pop().context("the runtime made no submitter")?;
    let submitter = started.submitters.pop().context("the runtime made no submitter")?;
    let binary_tap = started.taps.pop().context("the runtime made no tap")?;
    let tap = started.taps.pop().context("the runtime made no tap")?;
    let binary_config = crate::binary::BinaryConfig {
        listen: config.binary_listen,
        report_journal: Some(crate::binary::ReportJournalSettings {
            root: config.data_dir.join("reports"),
            durability: config.durability,
        }),
        ..crate::binary::BinaryConfig::default()
    };
    let keys: Arc<dyn crate::binary::ApiKeys> = accounts.clone();
    let binary = crate::binary::spawn(binary_config, binary_submitter, Some(binary_tap), keys, instruments.clone())
        .with_context(|| format!("starting the binary gateway on {}", config.binary_listen))?;
    tracing::info!("simex binary protocol on {}", binary.local_addr());
    let feed_config = match &config.feeds {
        FeedsSetting::Embedded => Some(FeedConfig::default()),
        FeedsSetting::File(path) => Some(FeedConfig::from_file(path).context("the price feeds configuration")?),
        FeedsSetting::Off => None,
    };
    let feeds = match feed_config {
        Some(feed_config) => {
            Some(crate::feeds::spawn(&feed_config, &instruments, feed_submitter).context("starting the price feeds")?)
        }
        None => {
            // Unused: dropped now, or the shards would wait for it at shutdown and never stop.
            drop(feed_submitter);
            None
        }
    };
    // DATABASE_URL arrives through the configuration (flag, environment or file); the projection's
    // tuning variables from the environment.
    let projection_settings = ProjectionConfig::from_lookup(|name| match name {
        "DATABASE_URL" => config.database_url.clone(),
        _ => std::env::var(name).ok(),
    })
    .context("the PostgreSQL projection settings")?;
    let projection = match projection_settings {
        Some(mut projection_config) => {
            projection_config.accounts_root = Some(accounts_root.clone());
            Some(crate::projection::spawn(projection_config, &journal_root).context("starting the projection")?)
        }
        None => None,
    };
    let (core_events, _) = tokio::sync::broadcast::channel(EVENTS_BROADCAST_SLOTS);
    let submitter_latency = Arc::new(Mutex::new(StageHistograms::default()));
    let (core, core_thread) =
        crate::bridge::spawn(submitter, tap, history.clone(), core_events.clone(), submitter_latency.clone());

    let settings = HttpSettings {
        api_key_prefix: config.api_key_prefix.clone(),
        default_starting_balance_micros: config.default_starting_balance_micros,
        body_limit_bytes: config.body_limit_bytes,
        cors_origins: config.cors_origins.clone(),
        rate_limit_per_second: config.rate_limit_per_second,
        rate_limit_burst: config.rate_limit_burst,
        auth_rate_limit_per_second: config.auth_rate_limit_per_second,
        auth_rate_limit_burst: config.auth_rate_limit_burst,
        portfolios_max,
    };
    // History from PostgreSQL when it is configured, read-your-writes against the read model
    // (history::postgres); from the journal-backed read model otherwise.
    let history_store: Arc<dyn HistoryStore> = match (&projection, &config.database_url) {
        (Some(projection), Some(url)) => {
            Arc::new(PgHistory::new(url.clone(), history.clone(), projection.lag_source()))
        }
        _ => Arc::new(history.clone()),
    };
    let ledger = started.runtime.ledger();
    let runtime = Arc::new(Mutex::new(started.runtime));
    let mut state = AppState::new(
        core,
        core_events,
        accounts,
        jwt,
        history_store,
        history,
        ledger,
        Arc::new(instruments),
        settings,
    );
    state.external = match &config.external_jwt_key_file {
        Some(path) => Some(
            ExternalTokens::from_file(
                path,
                config.external_jwt_issuer.as_deref(),
                config.external_jwt_audience.as_deref(),
            )
            .context("the external token key")?,
        ),
        None => None,
    };
    let rings = runtime.lock().unwrap_or_else(|p| p.into_inner()).ring_gauges();
    state.latency = Some(LatencySources { runtime: runtime.clone(), submitter: submitter_latency, rings });
    state.projection_lag = projection.as_ref().map(|p| p.lag_source());
    let state = Arc::new(state);

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("simex-http")
        .build()
        .context("starting the async runtime")?;
    let served = tokio.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(
            "simex listening on http://{address} (journal {}, accounts {})",
            journal_root.display(),
            accounts_root.display()
        );
        let service = http::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service).with_graceful_shutdown(shutdown).await?;
        anyhow::Ok(())
    });
    drop(tokio);
    // Every handle on the core is gone with the router: the core stops and hands back its ends.
    let (submitter, tap) = core_thread.join().map_err(|_| anyhow::anyhow!("the gateway core panicked"))?;
    drop((submitter, tap));
    binary.shutdown();
    if let Some(feeds) = feeds {
        feeds.stop();
        drop(feeds.join());
    }
    if let Some(projection) = projection {
        projection.stop();
        projection.join();
    }
    drop(started.submitters);
    drop(started.taps);
    let runtime = Arc::try_unwrap(runtime)
        .map_err(|_| anyhow::anyhow!("the runtime is still shared at shutdown"))?
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    runtime.shutdown();
    tracing::info!("simex stopped");
    served
}

/// Folds every journaled event of every shard into the read model.
fn rebuild_from_journal(root: &Path, shards: usize, history: &MemoryHistory) -> anyhow::Result<()> {
    let mut model = history.write();
    for shard in 0..shards {
        let mut reader = match simex_journal::JournalReader::open(root, shard as u32, None) {
            Ok(reader) => reader,
            Err(error) => {
                tracing::debug!(shard, "no journal to rebuild from: {error}");
                continue;
            }
        };
        let mut records = 0u64;
        while let Some(record) =
            reader.next_record().with_context(|| format!("reading the journal of shard {shard}"))?
        {
            let event = decode_event(record.record_type, record.seq, record.timestamp_ns, record.payload)
                .with_context(|| format!("journal of shard {shard}, record {}", record.seq))?;
            model.apply(shard as u16, &event);
            records += 1;
        }
        tracing::info!(shard, records, "read model rebuilt from the journal");
    }
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
