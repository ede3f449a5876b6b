//! # Reference prices
//!
//! Quotes and trades from outside become commands that enter the shards through the same rings as
//! orders and are journaled like them, so recovery and replay reproduce every decision a price
//! drove. Each source is an adapter producing the same [`Tick`]:
//!
//! - [`synthetic`]: seeded, deterministic geometric Brownian motion with spread and jumps (the
//!   embedded default).
//! - [`files`]: CSV trades, quotes or OHLCV bars (expanded to a documented intrabar path), at the
//!   recorded pace, scaled, or as fast as possible.
//! - [`eodhd`]: a live WebSocket client for the EODHD real-time protocol, with reconnection,
//!   resubscription and staleness.
//!
//! ```text
//!  source thread(s) ──Tick──► bounded channel ──► pump thread ──tick_to_commands──► Submitter ──► shards
//! ```
//!
//! [`spawn`] starts the sources and the pump from a [`FeedConfig`]; the [`FeedHandle`] it returns
//! reports status and stops and joins them. How outside decimals are rounded onto the grid is in
//! [`tick`]; `docs/prices.md` documents every key.
//!
//! Prices are integers from end to end, and the synthetic walk must give the same bits on every
//! platform: floating point is denied in this module tree (tests of statistics excepted).
#![deny(clippy::float_arithmetic)]

pub mod config;
pub mod eodhd;
pub mod files;
pub mod pace;
pub mod pump;
pub mod status;
pub mod synthetic;
pub mod tick;

pub use config::{FeedConfig, FeedConfigError, DEFAULT_FEEDS_TOML};
pub use eodhd::{Endpoint, EodhdConfig, EodhdSource};
pub use files::{FileFeedConfig, FileFormat, FileSource, Pace};
pub use pace::{RealSleeper, RecordingSleeper, Sleeper, StopSignal};
pub use pump::{PumpConfig, PumpReport};
pub use status::{Counter, FeedStatus, SymbolFreshness};
pub use synthetic::{SyntheticConfig, SyntheticSource, SyntheticSymbolConfig};
pub use tick::{tick_to_commands, Converter, Rounding, Tick, TickError, TickKind};

use crate::runtime::Submitter;
use simex_engine::InstrumentTable;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

/// The running sources and pump of one feed configuration. Dropping it stops them without
/// waiting; `join` waits.
pub struct FeedHandle {
    stop: StopSignal,
    status: Arc<FeedStatus>,
    sources: Vec<JoinHandle<()>>,
    pump: Option<JoinHandle<PumpReport>>,
}

impl FeedHandle {
    pub fn status(&self) -> &Arc<FeedStatus> {
        &self.status
    }

    /// Asks every source and the pump to stop; `join` waits for them.
    pub fn stop(&self) {
        self.stop.stop();
    }

    /// Waits for the sources to end (a finished file, or `stop`) and the pump to hand back the
    /// submitter with every command answered.
    pub fn join(mut self) -> PumpReport {
        for source in std::mem::take(&mut self.sources) {
            if source.join().is_err() {
                tracing::error!("a price source panicked");
            }
        }
        let pump = self.pump.take().expect("only join takes the pump");
        pump.join().expect("the feed pump does not panic")
    }
}

impl Drop for FeedHandle {
    fn drop(&mut self) {
        if self.pump.is_some() {
            self.stop.stop();
        }
    }
}

/// Starts every configured source and the pump that submits their ticks through `submitter`.
pub fn spawn(
    config: &FeedConfig,
    instruments: &InstrumentTable,
    submitter: Submitter,
) -> Result<FeedHandle, FeedConfigError> {
    let stop = StopSignal::default();
    let status = Arc::new(FeedStatus::default());
    let (sender, receiver) = tokio::sync::mpsc::channel(config.pump.channel_ticks.max(1));
    // Every source is built (and so validated) before any thread starts: a bad configuration
    // leaves nothing running.
    let mut bodies: Vec<(&str, SourceBody)> = Vec::new();
    if let Some(synthetic) = &config.synthetic {
        let start_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
        let source = SyntheticSource::new(synthetic, instruments, start_ns)?;
        let sleeper = RealSleeper::new(stop.clone());
        let (sender, status) = (sender.clone(), status.clone());
        bodies.push(("simex-feed-synthetic", Box::new(move || synthetic::run(source, sleeper, &sender, &status))));
    }
    for file in &config.files {
        let source = FileSource::open(file, instruments)?;
        let (pace, sleeper) = (file.pace, RealSleeper::new(stop.clone()));
        let (sender, status) = (sender.clone(), status.clone());
        bodies.push(("simex-feed-file", Box::new(move || files::run(source, pace, sleeper, &sender, &status))));
    }
    for live in &config.eodhd {
        let source = EodhdSource::new(live, instruments)?;
        let (sender, status, stop) = (sender.clone(), status.clone(), stop.clone());
        bodies.push(("simex-feed-eodhd", Box::new(move || source.run(sender, status, stop))));
    }
    drop(sender);
    let sources = bodies
        .into_iter()
        .map(|(name, body)| {
            std::thread::Builder::new().name(name.into()).spawn(body).expect("spawning a feed source thread")
        })
        .collect();

    let pump = pump::Pump {
        receiver,
        submitter,
        status: status.clone(),
        stop: stop.clone(),
        busy_backoff_max: std::time::Duration::from_micros(config.pump.busy_backoff_max_us.max(10)),
    };
    let pump = std::thread::Builder::new()
        .name("simex-feed-pump".into())
        .spawn(move || pump.run())
        .expect("spawning the feed pump thread");
    Ok(FeedHandle { stop, status, sources, pump: Some(pump) })
}

type SourceBody = Box<dyn FnOnce() + Send>;
