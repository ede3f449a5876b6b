//! Zero heap allocations per command in steady state, through the whole runtime.
//!
//! A counting global allocator wraps the system one. After a warm-up that grows every buffer to its
//! working size, a window of commands (new orders, fills, cancels, each submitted and answered through
//! the rings) must not allocate at all, on any thread. This is its own test binary so that no other
//! test allocates during the window.

use simex::runtime::{Response, Runtime, RuntimeConfig, Submitter, WaitStrategy};
use simex_engine::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; counting has no effect on
// the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout, as `GlobalAlloc::alloc` requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout (every allocation goes through it).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn round_trip(submitter: &mut Submitter, command: CommandBody) -> Option<OrderId> {
    let ticket = submitter.submit(command).expect("the ring has room: one command in flight");
    let mut accepted = None;
    loop {
        match submitter.poll() {
            Some(Response::Event { event: Event { body: EventBody::OrderAccepted(a), .. }, .. }) => {
                accepted = Some(a.order_id)
            }
            Some(Response::Done { ticket: t, .. }) if t == ticket => return accepted,
            Some(_) => {}
            None => std::hint::spin_loop(),
        }
    }
}

/// One cycle: a resting sell, a buy that fills half of it, a cancel of the rest.
fn cycle(submitter: &mut Submitter, index: i64) {
    let price = 10_000 + index % 50;
    let sell = round_trip(submitter, CommandBody::NewOrder(NewOrder::limit(1, 0, Side::Sell, price, 10)))
        .expect("sell accepted");
    round_trip(submitter, CommandBody::NewOrder(NewOrder::limit(2, 0, Side::Buy, price, 5)));
    round_trip(submitter, CommandBody::Cancel { portfolio_id: 1, order_id: sell });
    // Keep portfolio 2's position from growing without bound: sell back what it bought.
    round_trip(
        submitter,
        CommandBody::NewOrder(NewOrder::limit(2, 0, Side::Sell, price, 5).with_tif(TimeInForce::Ioc)),
    );
}

#[test]
fn steady_state_commands_allocate_nothing() {
    let config =
        RuntimeConfig { wait: WaitStrategy::SpinThenYield, latency_interval_ms: 3_600_000, ..RuntimeConfig::default() };
    let mut started = Runtime::start(config, InstrumentTable::default_table()).unwrap();
    let mut submitter = started.submitters.pop().unwrap();
    for portfolio_id in [1, 2] {
        round_trip(&mut submitter, CommandBody::CreatePortfolio { portfolio_id, cash_micros: 1_000_000_000_000 });
    }
    // A resting bid so portfolio 2's IOC sells always find a buyer.
    round_trip(&mut submitter, CommandBody::NewOrder(NewOrder::limit(1, 0, Side::Buy, 9_000, 100_000)));
    for index in 0..20_000 {
        cycle(&mut submitter, index);
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    assert!(before > 0, "the counting allocator is in use (start-up allocates)");
    let cycles = 20_000;
    for index in 0..cycles {
        cycle(&mut submitter, index);
    }
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    let commands = cycles * 4;
    println!("{allocations} allocations in {commands} commands after warm-up");
    assert_eq!(allocations, 0, "{allocations} allocations in {commands} commands");
    drop(submitter);
    started.runtime.shutdown();
}
