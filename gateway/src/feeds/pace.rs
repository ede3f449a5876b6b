//! Waiting between ticks without spinning, and stopping a source promptly while it waits.
//!
//! Sources never read the clock to decide *what* to emit, only to decide *when*; the waiting goes
//! through [`Sleeper`] so that tests can record the waits instead of sleeping them. The real
//! sleeper blocks on a condition variable that [`StopSignal::stop`] notifies, so a stopped source
//! wakes at once instead of finishing its sleep. No thread here polls.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Shared "stop now" flag for every source and the pump of one feed set.
#[derive(Clone, Debug)]
pub struct StopSignal {
    inner: Arc<StopInner>,
}

#[derive(Debug)]
struct StopInner {
    stopped: Mutex<bool>,
    condvar: Condvar,
    watch: tokio::sync::watch::Sender<bool>,
}

impl Default for StopSignal {
    fn default() -> StopSignal {
        StopSignal {
            inner: Arc::new(StopInner {
                stopped: Mutex::new(false),
                condvar: Condvar::new(),
                watch: tokio::sync::watch::Sender::new(false),
            }),
        }
    }
}

impl StopSignal {
    pub fn stop(&self) {
        *self.inner.stopped.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
        self.inner.condvar.notify_all();
        self.inner.watch.send_replace(true);
    }

    pub fn is_stopped(&self) -> bool {
        *self.inner.stopped.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Blocks for `duration` or until stopped; returns whether the signal was raised.
    pub fn wait_timeout(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut stopped = self.inner.stopped.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while !*stopped {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stopped = match self.inner.condvar.wait_timeout(stopped, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }

    /// Resolves once the signal is raised (for async sources).
    pub async fn stopped(&self) {
        let mut receiver = self.inner.watch.subscribe();
        // An error means the sender is gone, which cannot happen while `self` holds it.
        let _ = receiver.wait_for(|stopped| *stopped).await;
    }
}

/// How a source waits for the moment of its next tick.
///
/// Moments are offsets from the source's first tick, not gaps between ticks, so oversleeping one
/// wait does not delay every later tick: the schedule does not drift.
pub trait Sleeper: Send {
    /// Waits until `offset_ns` after the first call; returns `false` if the feed was stopped
    /// meanwhile (the source ends).
    fn sleep_until_ns(&mut self, offset_ns: u64) -> bool;
}

/// Sleeps for real, waking early when stopped.
pub struct RealSleeper {
    stop: StopSignal,
    start: Option<Instant>,
}

impl RealSleeper {
    pub fn new(stop: StopSignal) -> RealSleeper {
        RealSleeper { stop, start: None }
    }
}

impl Sleeper for RealSleeper {
    fn sleep_until_ns(&mut self, offset_ns: u64) -> bool {
        let start = *self.start.get_or_insert_with(Instant::now);
        let due = start + Duration::from_nanos(offset_ns);
        let now = Instant::now();
        if due <= now {
            return !self.stop.is_stopped();
        }
        !self.stop.wait_timeout(due - now)
    }
}

/// Records every moment waited for instead of sleeping, so a test sees the pacing without
/// waiting for it.
#[derive(Clone, Debug, Default)]
pub struct RecordingSleeper {
    pub offsets_ns: Arc<Mutex<Vec<u64>>>,
}

impl Sleeper for RecordingSleeper {
    fn sleep_until_ns(&mut self, offset_ns: u64) -> bool {
        self.offsets_ns.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(offset_ns);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_signal_ends_a_long_wait() {
        let stop = StopSignal::default();
        let waiter = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut sleeper = RealSleeper::new(stop);
                sleeper.sleep_until_ns(0) && sleeper.sleep_until_ns(3_600 * 1_000_000_000)
            })
        };
        stop.stop();
        assert!(!waiter.join().unwrap(), "the sleeper reports that it was stopped");
        assert!(stop.wait_timeout(Duration::from_secs(3_600)));
    }
}
