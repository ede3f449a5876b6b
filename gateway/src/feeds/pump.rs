//! The pump: the one thread that turns ticks from every source into runtime commands.
//!
//! Sources send [`Tick`]s into one bounded channel; the pump owns the feed set's [`Submitter`]
//! (a submitter belongs to one thread) and, per tick, submits what [`tick_to_commands`] maps it to.
//! Commands travel through the same rings as orders and are journaled like them, so recovery and
//! replay reproduce every price-driven decision.
//!
//! # Waiting without spinning
//! - No tick: the pump blocks in the channel's `blocking_recv` (a futex wait), using no CPU.
//! - `Busy` from the runtime: it drains responses and sleeps, starting at 10 µs and doubling up to
//!   `busy_backoff_max_us`, then retries the same command, so prices stay in order.
//! - A full channel blocks (or, for the live feed, awaits) the source: back-pressure, not loss.
//!
//! The pump ends when every source has ended (all senders dropped) or the feed set is stopped, then
//! waits until the runtime has answered every command it submitted and hands the submitter back.

use super::pace::StopSignal;
use super::status::{Counter, FeedStatus};
use super::tick::{tick_to_commands, Tick};
use crate::runtime::{Response, SubmitError, Submitter};
use serde::{Deserialize, Serialize};
use simex_engine::EventBody;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PumpConfig {
    /// Ticks that may wait between the sources and the pump.
    #[serde(default = "default_channel_ticks")]
    pub channel_ticks: usize,
    /// Longest sleep between retries while the runtime answers `Busy`.
    #[serde(default = "default_busy_backoff_max_us")]
    pub busy_backoff_max_us: u64,
}

impl Default for PumpConfig {
    fn default() -> PumpConfig {
        PumpConfig { channel_ticks: default_channel_ticks(), busy_backoff_max_us: default_busy_backoff_max_us() }
    }
}

fn default_channel_ticks() -> usize {
    4_096
}
fn default_busy_backoff_max_us() -> u64 {
    1_000
}

const BUSY_BACKOFF_START: Duration = Duration::from_micros(10);

/// What the pump did, handed back when it ends.
pub struct PumpReport {
    /// The submitter, with every command it sent answered.
    pub submitter: Submitter,
    /// The last command accepted by the runtime.
    pub last_command: Option<simex_engine::CommandBody>,
}

pub(super) struct Pump {
    pub receiver: tokio::sync::mpsc::Receiver<Tick>,
    pub submitter: Submitter,
    pub status: Arc<FeedStatus>,
    pub stop: StopSignal,
    pub busy_backoff_max: Duration,
}

impl Pump {
    pub fn run(mut self) -> PumpReport {
        let mut outstanding: u64 = 0;
        let mut last_command = None;
        'ticks: while let Some(tick) = self.receiver.blocking_recv() {
            let Some(command) = tick_to_commands(&tick) else { continue };
            let mut backoff = BUSY_BACKOFF_START;
            loop {
                match self.submitter.submit(command) {
                    Ok(_) => break,
                    Err(SubmitError::Busy) => {
                        self.status.add(Counter::BusyRetries, 1);
                        outstanding -= self.drain_responses();
                        if self.stop.is_stopped() {
                            break 'ticks;
                        }
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(self.busy_backoff_max);
                    }
                }
            }
            outstanding += 1;
            last_command = Some(command);
            self.status.add(Counter::Submitted, 1);
            outstanding -= self.drain_responses();
        }
        // Every shard answers every command it took; wait (sleeping, not spinning) for the last.
        while outstanding > 0 {
            let done = self.drain_responses();
            if done == 0 {
                std::thread::sleep(BUSY_BACKOFF_START);
            }
            outstanding -= done;
        }
        PumpReport { submitter: self.submitter, last_command }
    }

    /// Reads every waiting response; returns how many commands finished.
    fn drain_responses(&mut self) -> u64 {
        let mut done = 0;
        while let Some(response) = self.submitter.poll() {
            match response {
                Response::Event { event, .. } => {
                    if let EventBody::Rejected { reason, .. } = event.body {
                        self.status.add(Counter::Rejected, 1);
                        tracing::warn!(?reason, "the engine rejected a reference price");
                    }
                }
                Response::Done { .. } => done += 1,
            }
        }
        done
    }
}
