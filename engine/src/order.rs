//! Open orders and the store that holds them.
//!
//! The store is a slab: orders live in a vector preallocated to `orders_max` and are addressed by a
//! `u32` handle, so books hold handles, not copies, and nothing allocates per order in steady state.
//! Order ids map to handles through one hash map (sized up front, never iterated, so its order
//! cannot leak into results).

use crate::event::AcceptedOrder;
use crate::types::{ClientOrderId, OrderId, OrderKind, PortfolioId, SelfTradePolicy, Side, SymbolId, TimeInForce};
use rustc_hash::FxHashMap;

/// A handle into the [`OrderStore`].
pub type Handle = u32;
/// "No order": the end of an intrusive list.
pub const NIL: Handle = u32::MAX;
/// Initial size of the id index; it grows (allocating) only when more orders are open than ever before.
const BY_ID_INITIAL: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    pub order_id: OrderId,
    pub portfolio_id: PortfolioId,
    pub symbol_id: SymbolId,
    pub side: Side,
    pub kind: OrderKind,
    pub price_ticks: i64,
    /// Quantity still open.
    pub open_lots: i64,
    pub filled_lots: i64,
    pub time_in_force: TimeInForce,
    pub expire_at_ns: i64,
    pub client_order_id: ClientOrderId,
    pub post_only: bool,
    pub self_trade_policy: SelfTradePolicy,
    /// Cash this order holds: for a buy its worst-case cost and fee, for a sell the margin on its
    /// short part. Always equal to what `Engine::required_cash` computes for the order.
    pub reserved_cash_micros: i64,
    /// Long lots of the position that this sell holds (0 for buys).
    pub reserved_lots: i64,
    /// With queue-position modelling (`SimParams::queue_position`): reference volume still ahead
    /// of this order at its price; negative when more has traded at its price than was ahead and
    /// the order is owed that much (see `sim::execution`). Otherwise always 0.
    pub queue_ahead_lots: i64,
    /// Links of the per-portfolio list of open orders (for mass cancel).
    pub portfolio_prev: Handle,
    pub portfolio_next: Handle,
}

impl Order {
    pub fn from_accepted(accepted: &AcceptedOrder) -> Order {
        Order {
            order_id: accepted.order_id,
            portfolio_id: accepted.portfolio_id,
            symbol_id: accepted.symbol_id,
            side: accepted.side,
            kind: accepted.kind,
            price_ticks: accepted.price_ticks,
            open_lots: accepted.qty_lots,
            filled_lots: 0,
            time_in_force: accepted.time_in_force,
            expire_at_ns: accepted.expire_at_ns,
            client_order_id: accepted.client_order_id,
            post_only: accepted.post_only,
            self_trade_policy: accepted.self_trade_policy,
            reserved_cash_micros: accepted.reserved_cash_micros,
            reserved_lots: accepted.reserved_lots,
            queue_ahead_lots: 0,
            portfolio_prev: NIL,
            portfolio_next: NIL,
        }
    }
}

#[derive(Debug)]
pub struct OrderStore {
    slots: Vec<Order>,
    free: Vec<Handle>,
    by_id: FxHashMap<OrderId, Handle>,
    capacity: usize,
}

impl OrderStore {
    pub fn with_capacity(capacity: usize) -> OrderStore {
        assert!(capacity > 0 && capacity < NIL as usize);
        let mut by_id = FxHashMap::default();
        // Sized for the working set, not the limit: a table reserved for a million orders spreads a
        // thousand live ones over cold cache lines (measured: a third of the full path's time).
        by_id.reserve(capacity.min(BY_ID_INITIAL));
        OrderStore { slots: Vec::with_capacity(capacity), free: Vec::with_capacity(capacity), by_id, capacity }
    }

    pub fn is_full(&self) -> bool {
        self.by_id.len() >= self.capacity
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn insert(&mut self, order: Order) -> Handle {
        assert!(!self.is_full(), "order store full: callers check is_full first");
        let handle = match self.free.pop() {
            Some(handle) => {
                self.slots[handle as usize] = order;
                handle
            }
            None => {
                self.slots.push(order);
                (self.slots.len() - 1) as Handle
            }
        };
        let previous = self.by_id.insert(order.order_id, handle);
        assert!(previous.is_none(), "order id reused");
        handle
    }

    pub fn remove(&mut self, handle: Handle) -> Order {
        let order = self.slots[handle as usize];
        let removed = self.by_id.remove(&order.order_id);
        assert_eq!(removed, Some(handle));
        self.free.push(handle);
        order
    }

    pub fn find(&self, order_id: OrderId) -> Option<Handle> {
        self.by_id.get(&order_id).copied()
    }

    pub fn get(&self, handle: Handle) -> &Order {
        &self.slots[handle as usize]
    }

    pub fn get_mut(&mut self, handle: Handle) -> &mut Order {
        &mut self.slots[handle as usize]
    }

    /// Every open order's handle, in no meaningful order (checks only; never for results).
    pub fn handles(&self) -> impl Iterator<Item = Handle> + '_ {
        self.by_id.values().copied()
    }
}
