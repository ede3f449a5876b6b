//! History and market views for the gateways, read from the venue's events.
//!
//! [`ReadModel`] folds every tapped event (and, on start, every journaled event) into orders,
//! fills, positions, books and prices per portfolio and symbol. The HTTP history endpoints read
//! through the [`HistoryStore`] trait, so that another store (a database projection) can serve
//! the same responses; [`MemoryHistory`] is the journal-backed one and [`postgres::PgHistory`] reads
//! the PostgreSQL projection (falling back to memory while it lags).

mod model;
pub mod postgres;

pub use model::{BookSide, LevelChange, OrderRecord, OrderState, ReadModel, SymbolMarket, TradeRecord};

use simex_engine::{OrderId, PortfolioId};
use std::sync::{Arc, RwLock};

/// Which orders to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderFilter {
    Open,
    Closed,
    All,
}

impl OrderFilter {
    /// Whether an order in `state` is listed.
    pub fn keeps(self, state: OrderState) -> bool {
        match self {
            OrderFilter::Open => state.is_open(),
            OrderFilter::Closed => !state.is_open(),
            OrderFilter::All => true,
        }
    }
}

/// A page of a portfolio's trades, newest first, and how many there are in all.
#[derive(Clone, Debug, Default)]
pub struct TradePage {
    pub trades: Vec<TradeRecord>,
    pub total: u64,
}

/// Where the history endpoints read from. Portfolio ids here are engine portfolio ids.
pub trait HistoryStore: Send + Sync {
    fn trades(&self, portfolio_id: PortfolioId, limit: usize, offset: usize) -> TradePage;
    /// Orders of a portfolio, newest first.
    fn orders(&self, portfolio_id: PortfolioId, filter: OrderFilter) -> Vec<OrderRecord>;
    /// One order, if it belongs to the portfolio.
    fn order(&self, portfolio_id: PortfolioId, order_id: OrderId) -> Option<OrderRecord>;
    /// Reads answered from PostgreSQL and from memory so far, for a store that can do both.
    fn reads_by_store(&self) -> Option<(u64, u64)> {
        None
    }
}

/// The in-memory, journal-backed history: a shared [`ReadModel`].
#[derive(Clone, Default)]
pub struct MemoryHistory {
    pub model: Arc<RwLock<ReadModel>>,
}

impl MemoryHistory {
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, ReadModel> {
        self.model.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, ReadModel> {
        self.model.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl HistoryStore for MemoryHistory {
    fn trades(&self, portfolio_id: PortfolioId, limit: usize, offset: usize) -> TradePage {
        self.read().trades(portfolio_id, limit, offset)
    }

    fn orders(&self, portfolio_id: PortfolioId, filter: OrderFilter) -> Vec<OrderRecord> {
        self.read().orders(portfolio_id, filter)
    }

    fn order(&self, portfolio_id: PortfolioId, order_id: OrderId) -> Option<OrderRecord> {
        self.read().order(order_id).filter(|o| o.portfolio_id == portfolio_id).cloned()
    }
}
