//! How full each ring is, for `/metrics`, without touching the rings' own cursors.
//!
//! Neither the disruptor nor rtrb lets a third thread read a ring's cursors, so every ring gets a
//! [`RingCount`] beside it: the producer adds what it published, the consumer what it took. Each
//! side is the only writer of its counter (a load and a store, no read-modify-write, no lock), and
//! the two counters sit on separate cache lines so that neither side slows the other. A reader takes
//! `consumed` before `produced`, so the difference is never negative; it may count a slot that is
//! being taken at that instant, which a gauge can afford.

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Items published into and taken out of one ring since start.
#[derive(Debug, Default)]
pub struct RingCount {
    produced: CachePadded<AtomicU64>,
    consumed: CachePadded<AtomicU64>,
}

impl RingCount {
    /// Called by the ring's producer only.
    #[inline]
    pub fn produced(&self, items: u64) {
        let value = self.produced.load(Ordering::Relaxed);
        self.produced.store(value + items, Ordering::Release);
    }

    /// Called by the ring's consumer only.
    #[inline]
    pub fn consumed(&self, items: u64) {
        let value = self.consumed.load(Ordering::Relaxed);
        self.consumed.store(value + items, Ordering::Release);
    }

    /// Items in the ring now.
    pub fn occupied(&self) -> u64 {
        let consumed = self.consumed.load(Ordering::Acquire);
        self.produced.load(Ordering::Acquire).saturating_sub(consumed)
    }
}

/// Which ring a gauge describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingKind {
    /// A submitter's disruptor ring into a shard (`peer` is the submitter id).
    Inbound,
    /// A shard's results back to a submitter (`peer` is the submitter id).
    Responses,
    /// A shard's events to an event tap (`peer` is the tap's name).
    Tap,
    /// A shard's events to its journal writer (`peer` is `journal`).
    Journal,
}

impl RingKind {
    pub fn name(self) -> &'static str {
        match self {
            RingKind::Inbound => "inbound",
            RingKind::Responses => "responses",
            RingKind::Tap => "tap",
            RingKind::Journal => "journal",
        }
    }
}

/// One ring's counter and what it is.
#[derive(Clone, Debug)]
pub struct RingGauge {
    pub kind: RingKind,
    pub shard: u16,
    pub peer: String,
    pub capacity_slots: u64,
    pub count: Arc<RingCount>,
}

/// One reading of a ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingOccupancy {
    pub kind: RingKind,
    pub shard: u16,
    pub peer: String,
    pub occupied_slots: u64,
    pub capacity_slots: u64,
}

impl RingGauge {
    pub fn read(&self) -> RingOccupancy {
        RingOccupancy {
            kind: self.kind,
            shard: self.shard,
            peer: self.peer.clone(),
            occupied_slots: self.count.occupied().min(self.capacity_slots),
            capacity_slots: self.capacity_slots,
        }
    }
}

/// An rtrb producer that counts what it publishes.
pub struct Tx<T> {
    ring: rtrb::Producer<T>,
    count: Arc<RingCount>,
}

/// An rtrb consumer that counts what it takes.
pub struct Rx<T> {
    ring: rtrb::Consumer<T>,
    count: Arc<RingCount>,
}

/// An rtrb ring of `slots` with its gauge.
pub fn counted_ring<T>(slots: usize, kind: RingKind, shard: u16, peer: String) -> (Tx<T>, Rx<T>, RingGauge) {
    let (producer, consumer) = rtrb::RingBuffer::new(slots);
    let count = Arc::new(RingCount::default());
    let gauge = RingGauge { kind, shard, peer, capacity_slots: slots as u64, count: count.clone() };
    (Tx { ring: producer, count: count.clone() }, Rx { ring: consumer, count }, gauge)
}

impl<T> Tx<T> {
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), rtrb::PushError<T>> {
        self.ring.push(value)?;
        self.count.produced(1);
        Ok(())
    }

    pub fn is_abandoned(&self) -> bool {
        self.ring.is_abandoned()
    }
}

impl<T> Rx<T> {
    #[inline]
    pub fn pop(&mut self) -> Result<T, rtrb::PopError> {
        let value = self.ring.pop()?;
        self.count.consumed(1);
        Ok(value)
    }

    pub fn is_abandoned(&self) -> bool {
        self.ring.is_abandoned()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occupancy_follows_pushes_and_pops() {
        let (mut tx, mut rx, gauge) = counted_ring::<u32>(4, RingKind::Tap, 1, "gateway".into());
        assert_eq!(gauge.read().occupied_slots, 0);
        for value in 0..3 {
            tx.push(value).unwrap();
        }
        assert_eq!(gauge.read().occupied_slots, 3);
        assert_eq!(rx.pop(), Ok(0));
        assert_eq!(gauge.read().occupied_slots, 2);
        tx.push(3).unwrap();
        tx.push(4).unwrap();
        assert!(tx.push(5).is_err(), "a full ring refuses, and the refusal is not counted");
        let reading = gauge.read();
        assert_eq!((reading.occupied_slots, reading.capacity_slots, reading.peer.as_str()), (4, 4, "gateway"));
        while rx.pop().is_ok() {}
        assert_eq!(gauge.read().occupied_slots, 0);
    }
}
