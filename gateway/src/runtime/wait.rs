//! What a busy-polling thread does when there is nothing to do.
//!
//! - `spin`: keep polling (with the CPU's spin-loop hint). Lowest latency; owns a whole core. For
//!   pinned threads on a dedicated host.
//! - `spin-then-yield`: spin briefly, then `sched_yield` between polls, so threads sharing a core
//!   take turns. The disruptor crate ships only busy-spin and sleep strategies; this is the yielding
//!   one, implemented on `crossbeam_utils::Backoff`.
//! - `park`: spin briefly, then sleep until a producer wakes the thread (or 1 ms passes). Near-zero
//!   CPU when idle; for laptops, CI and small hosts.

use crossbeam_utils::Backoff;
use std::str::FromStr;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::thread::Thread;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStrategy {
    Spin,
    SpinThenYield,
    Park,
}

impl FromStr for WaitStrategy {
    type Err = String;

    fn from_str(text: &str) -> Result<WaitStrategy, String> {
        match text {
            "spin" => Ok(WaitStrategy::Spin),
            "spin-then-yield" => Ok(WaitStrategy::SpinThenYield),
            "park" => Ok(WaitStrategy::Park),
            other => Err(format!("unknown wait strategy {other:?}: expected spin, spin-then-yield or park")),
        }
    }
}

/// Longest a parked thread sleeps without being woken: a bound on a lost wake-up.
const PARK_TIMEOUT: Duration = Duration::from_millis(1);

/// Lets producers wake a parked consumer thread.
#[derive(Debug)]
pub struct Waker {
    sleeping: AtomicBool,
    thread: Thread,
}

impl Waker {
    pub fn for_current_thread() -> Waker {
        Waker { sleeping: AtomicBool::new(false), thread: std::thread::current() }
    }

    /// Called by a producer after it published: wakes the consumer if it is parked.
    pub fn wake(&self) {
        // Pairs with the fence in `Idle::wait`: either the consumer sees the published item on its
        // re-check, or this load sees `sleeping`.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            self.thread.unpark();
        }
    }
}

/// The idle state of one polling loop.
pub struct Idle {
    strategy: WaitStrategy,
    backoff: Backoff,
}

impl Idle {
    pub fn new(strategy: WaitStrategy) -> Idle {
        Idle { strategy, backoff: Backoff::new() }
    }

    /// Work was found: the next idle period starts with spinning again.
    pub fn reset(&mut self) {
        self.backoff.reset();
    }

    /// Nothing was found. `has_work` re-checks for work after announcing sleep (park only).
    pub fn wait(&mut self, waker: &Waker, has_work: impl FnOnce() -> bool) {
        match self.strategy {
            WaitStrategy::Spin => std::hint::spin_loop(),
            WaitStrategy::SpinThenYield => self.backoff.snooze(),
            WaitStrategy::Park => {
                if !self.backoff.is_completed() {
                    self.backoff.snooze();
                    return;
                }
                waker.sleeping.store(true, Ordering::Relaxed);
                fence(Ordering::SeqCst);
                if !has_work() {
                    std::thread::park_timeout(PARK_TIMEOUT);
                }
                waker.sleeping.store(false, Ordering::Relaxed);
            }
        }
    }
}
