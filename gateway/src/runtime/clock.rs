//! The venue clock: nanoseconds since the Unix epoch, monotonic within a run.
//!
//! Read once at start-up from the system clock, then advanced by a monotonic `Instant`, so a clock
//! step (NTP) never makes time go backwards inside the venue. This is the only place the runtime
//! reads time; the engine receives it inside commands.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base_epoch_ns: i64,
    base: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).expect("system clock after 1970");
        Clock { base_epoch_ns: since_epoch.as_nanos() as i64, base: Instant::now() }
    }

    pub fn now_ns(&self) -> i64 {
        self.base_epoch_ns + self.base.elapsed().as_nanos() as i64
    }
}
