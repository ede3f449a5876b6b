//! The machine's floor: what one message between two cores costs, measured in the same run.
//!
//! A latency figure for the runtime means little without the cost of the hardware path it cannot
//! avoid: a command crosses from the producer's core to the shard's and the result crosses back,
//! so a round trip is at least two cache-line transfers between cores. Two threads, pinned to two
//! cores, ping-pong and the pinging one times every round trip (RTT); one way is RTT / 2.
//!
//! - **Cache line**: one `AtomicU64` on its own cache line; ping writes an odd number, pong answers
//!   with the next even one. The bare hardware cost.
//! - **rtrb rings**: the runtime's outbound ring type, one ring each way, carrying the runtime's
//!   own message types (an `InboundSlot`, 128 bytes, out; a `Response`, 120 bytes, back), so the
//!   message sizes and the ring protocol (head and tail indices on separate lines) are those of the
//!   real path, minus the engine and the disruptor.
//!
//! Each round trip is timed by one clock read per iteration (the difference between consecutive
//! reads), so one read's cost, reported with the table, is inside every sample.

use hdrhistogram::Histogram;
use simex::runtime::{new_histogram, Clock, InboundSlot, Response, Stamps};
use simex_engine::{CommandBody, NewOrder, Side};
use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Round trips run before any is recorded.
const WARMUP_ROUND_TRIPS: usize = 10_000;
/// The value pong answers with when told to stop.
const STOP: u64 = u64::MAX;

/// Round-trip times between two pinned threads, in nanoseconds.
pub struct Hop {
    pub name: &'static str,
    pub rtt: Histogram<u64>,
}

impl Hop {
    /// One way at quantile `q`: half the round trip.
    pub fn one_way(&self, q: f64) -> u64 {
        self.rtt.value_at_quantile(q) / 2
    }
}

#[repr(align(128))]
struct Line(AtomicU64);

/// Ping on `cores.0`, pong on `cores.1`, through one shared cache line.
pub fn cache_line(samples: usize, cores: (usize, usize)) -> Hop {
    let line = Arc::new(Line(AtomicU64::new(0)));
    let pong_line = line.clone();
    let pong = std::thread::spawn(move || {
        super::threads::pin(cores.1);
        let mut expect = 1u64;
        loop {
            let seen = loop {
                let value = pong_line.0.load(Ordering::Acquire);
                if value == expect || value == STOP {
                    break value;
                }
                spin_loop();
            };
            if seen == STOP {
                return;
            }
            pong_line.0.store(expect + 1, Ordering::Release);
            expect += 2;
        }
    });
    let ping = std::thread::spawn(move || {
        super::threads::pin(cores.0);
        let clock = Clock::start();
        let mut rtt = new_histogram();
        let mut previous = clock.now_ns();
        for round in 0..(WARMUP_ROUND_TRIPS + samples) as u64 {
            let now = clock.now_ns();
            if round > WARMUP_ROUND_TRIPS as u64 {
                rtt.saturating_record((now - previous).max(1) as u64);
            }
            previous = now;
            line.0.store(2 * round + 1, Ordering::Release);
            while line.0.load(Ordering::Acquire) != 2 * round + 2 {
                spin_loop();
            }
        }
        line.0.store(STOP, Ordering::Release);
        rtt
    });
    let rtt = ping.join().expect("ping thread");
    pong.join().expect("pong thread");
    Hop { name: "cache line (AtomicU64)", rtt }
}

/// Ping on `cores.0`, pong on `cores.1`, through a pair of rtrb rings carrying the runtime's
/// message types.
pub fn rings(samples: usize, cores: (usize, usize)) -> Hop {
    let (mut out_tx, mut out_rx) = rtrb::RingBuffer::<InboundSlot>::new(1024);
    let (mut back_tx, mut back_rx) = rtrb::RingBuffer::<Response>::new(1024);
    let pong = std::thread::spawn(move || {
        super::threads::pin(cores.1);
        loop {
            match out_rx.pop() {
                Ok(slot) => {
                    let done = Response::Done {
                        ticket: slot.ticket,
                        shard: 0,
                        events: 0,
                        stamps: Stamps { ingress_ns: slot.ingress_ns, dequeue_ns: 0, decided_ns: 0 },
                    };
                    while back_tx.push(done).is_err() {
                        spin_loop();
                    }
                }
                Err(_) if out_rx.is_abandoned() => return,
                Err(_) => spin_loop(),
            }
        }
    });
    let ping = std::thread::spawn(move || {
        super::threads::pin(cores.0);
        let clock = Clock::start();
        let command = CommandBody::NewOrder(NewOrder::limit(1, 0, Side::Buy, 100_000, 1));
        let mut rtt = new_histogram();
        let mut previous = clock.now_ns();
        for round in 0..(WARMUP_ROUND_TRIPS + samples) as u64 {
            let now = clock.now_ns();
            if round > WARMUP_ROUND_TRIPS as u64 {
                rtt.saturating_record((now - previous).max(1) as u64);
            }
            previous = now;
            let slot = InboundSlot { ticket: round, submitter: 0, ingress_ns: now, command: Some(command) };
            while out_tx.push(slot).is_err() {
                spin_loop();
            }
            loop {
                match back_rx.pop() {
                    Ok(response) => {
                        debug_assert_eq!(response.ticket(), round);
                        break;
                    }
                    Err(_) => spin_loop(),
                }
            }
        }
        drop(out_tx);
        rtt
    });
    let rtt = ping.join().expect("ping thread");
    pong.join().expect("pong thread");
    Hop { name: "rtrb rings (InboundSlot out, Response back)", rtt }
}

/// Median cost of one venue-clock read (`Clock::now_ns`), in nanoseconds: consecutive reads.
pub fn clock_read_ns() -> u64 {
    let clock = Clock::start();
    let mut histogram = new_histogram();
    let mut previous = clock.now_ns();
    for _ in 0..200_000 {
        let now = clock.now_ns();
        histogram.saturating_record((now - previous).max(1) as u64);
        previous = now;
    }
    histogram.value_at_quantile(0.5)
}
