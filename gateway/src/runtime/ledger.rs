//! The ledger shared by all shard threads: the engine's [`Ledger`] contract on atomics.
//!
//! Every account is a cache-line-aligned cell of atomics in a vector sized at start-up, so shards
//! never allocate or lock to touch money. The one decision, `try_reserve`, is a compare-and-swap
//! loop on `available_micros` that refuses to take it below zero; every other operation is a
//! `fetch_add` of a delta, and deltas commute, so the final state does not depend on how the shards'
//! operations interleaved (see the ledger design in `ARCHITECTURE.md`).
//!
//! Reads of several fields (`account`) are not a consistent snapshot while shards run; they are
//! exact once the shards are quiescent, which is when tests and replays compare them.

use simex_engine::ledger::PORTFOLIOS_MAX;
use simex_engine::{Account, Ledger, PortfolioId, RiskLimits};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;

/// Days since the epoch (unsigned, so until the year 2149) in the top 16 bits, the day's P&L
/// (signed, clamped to ±2^47 micros, about ±140 million) in the low 48.
const DAY_SHIFT: u32 = 48;
const PNL_MASK: i64 = (1 << DAY_SHIFT) - 1;
const PNL_LIMIT: i64 = (1 << (DAY_SHIFT - 1)) - 1;

#[derive(Default)]
#[repr(align(128))]
struct Cell {
    exists: AtomicBool,
    /// The only field decisions read: cash - reserved - margin.
    available_micros: AtomicI64,
    cash_micros: AtomicI64,
    reserved_micros: AtomicI64,
    margin_micros: AtomicI64,
    fees_paid_micros: AtomicI64,
    realized_pnl_micros: AtomicI64,
    /// `day << 48 | (pnl & PNL_MASK)`, updated by compare-and-swap so a day roll and an addition
    /// never lose each other.
    daily: AtomicI64,
    gross_exposure_micros: AtomicI64,
    open_orders: AtomicU32,
    order_notional_max_micros: AtomicI64,
    gross_exposure_max_micros: AtomicI64,
    open_orders_max: AtomicU32,
    daily_loss_max_micros: AtomicI64,
}

/// Accounts shared by every shard of a venue.
pub struct AtomicLedger {
    cells: Vec<Cell>,
}

impl AtomicLedger {
    /// A ledger for portfolio ids below `portfolios_max`.
    pub fn new(portfolios_max: usize) -> Arc<AtomicLedger> {
        assert!(portfolios_max > 0 && portfolios_max <= PORTFOLIOS_MAX);
        Arc::new(AtomicLedger { cells: (0..portfolios_max).map(|_| Cell::default()).collect() })
    }

    /// The number reservations decide on (`cash - reserved - margin`), read atomically.
    pub fn available_micros(&self, portfolio_id: PortfolioId) -> i64 {
        self.cells.get(portfolio_id as usize).map_or(0, |cell| cell.available_micros.load(Ordering::Acquire))
    }

    fn cell(&self, portfolio_id: PortfolioId) -> &Cell {
        let cell = &self.cells[portfolio_id as usize];
        debug_assert!(cell.exists.load(Ordering::Relaxed));
        cell
    }
}

fn pack_daily(day: i64, pnl_micros: i64) -> i64 {
    let pnl_micros = pnl_micros.clamp(-PNL_LIMIT, PNL_LIMIT);
    ((day & 0xFFFF) << DAY_SHIFT) | (pnl_micros & PNL_MASK)
}

fn unpack_daily(packed: i64) -> (i64, i64) {
    let day = (packed as u64 >> DAY_SHIFT) as i64;
    // Sign-extend the low 48 bits.
    let pnl = (packed << (64 - DAY_SHIFT)) >> (64 - DAY_SHIFT);
    (day, pnl)
}

/// A handle to the shared ledger; each shard's engine owns one.
#[derive(Clone)]
pub struct SharedLedger(pub Arc<AtomicLedger>);

impl Ledger for SharedLedger {
    fn is_exclusive(&self) -> bool {
        false
    }

    fn account(&self, portfolio_id: PortfolioId) -> Option<Account> {
        let cell = self.0.cells.get(portfolio_id as usize)?;
        if !cell.exists.load(Ordering::Acquire) {
            return None;
        }
        let (day, pnl) = unpack_daily(cell.daily.load(Ordering::Relaxed));
        Some(Account {
            cash_micros: cell.cash_micros.load(Ordering::Relaxed),
            reserved_micros: cell.reserved_micros.load(Ordering::Relaxed),
            margin_micros: cell.margin_micros.load(Ordering::Relaxed),
            fees_paid_micros: cell.fees_paid_micros.load(Ordering::Relaxed),
            realized_pnl_micros: cell.realized_pnl_micros.load(Ordering::Relaxed),
            daily_pnl_micros: pnl,
            daily_pnl_day: day,
            gross_exposure_micros: cell.gross_exposure_micros.load(Ordering::Relaxed),
            open_orders: cell.open_orders.load(Ordering::Relaxed),
            limits: RiskLimits {
                order_notional_max_micros: cell.order_notional_max_micros.load(Ordering::Relaxed),
                gross_exposure_max_micros: cell.gross_exposure_max_micros.load(Ordering::Relaxed),
                open_orders_max: cell.open_orders_max.load(Ordering::Relaxed),
                daily_loss_max_micros: cell.daily_loss_max_micros.load(Ordering::Relaxed),
            },
        })
    }

    fn for_each_account(&self, visit: &mut dyn FnMut(PortfolioId, &Account)) {
        for portfolio_id in 0..self.0.cells.len() as PortfolioId {
            if let Some(account) = self.account(portfolio_id) {
                visit(portfolio_id, &account);
            }
        }
    }

    fn create(&mut self, portfolio_id: PortfolioId, cash_micros: i64, limits: RiskLimits) -> bool {
        let Some(cell) = self.0.cells.get(portfolio_id as usize) else { return false };
        if cell.exists.load(Ordering::Acquire) {
            return false;
        }
        cell.cash_micros.store(cash_micros, Ordering::Relaxed);
        cell.available_micros.store(cash_micros, Ordering::Relaxed);
        self.set_limits_of(cell, limits);
        // Publish the account only once its fields are written.
        cell.exists.store(true, Ordering::Release);
        true
    }

    fn set_limits(&mut self, portfolio_id: PortfolioId, limits: RiskLimits) {
        let cell = self.0.cell(portfolio_id);
        self.set_limits_of(cell, limits);
    }

    fn try_reserve(&mut self, portfolio_id: PortfolioId, amount_micros: i64) -> bool {
        let cell = self.0.cell(portfolio_id);
        let taken = cell.available_micros.fetch_update(Ordering::AcqRel, Ordering::Acquire, |available| {
            (available >= amount_micros).then_some(available - amount_micros)
        });
        if taken.is_ok() {
            cell.reserved_micros.fetch_add(amount_micros, Ordering::Relaxed);
        }
        taken.is_ok()
    }

    fn force_reserve(&mut self, portfolio_id: PortfolioId, amount_micros: i64) {
        let cell = self.0.cell(portfolio_id);
        cell.available_micros.fetch_sub(amount_micros, Ordering::AcqRel);
        cell.reserved_micros.fetch_add(amount_micros, Ordering::Relaxed);
    }

    fn release(&mut self, portfolio_id: PortfolioId, amount_micros: i64) {
        if amount_micros == 0 {
            return;
        }
        let cell = self.0.cell(portfolio_id);
        cell.reserved_micros.fetch_sub(amount_micros, Ordering::Relaxed);
        cell.available_micros.fetch_add(amount_micros, Ordering::AcqRel);
    }

    fn reserve_to_margin(&mut self, portfolio_id: PortfolioId, amount_micros: i64) {
        if amount_micros == 0 {
            return;
        }
        let cell = self.0.cell(portfolio_id);
        cell.reserved_micros.fetch_sub(amount_micros, Ordering::Relaxed);
        cell.margin_micros.fetch_add(amount_micros, Ordering::Relaxed);
    }

    fn release_margin(&mut self, portfolio_id: PortfolioId, amount_micros: i64) {
        if amount_micros == 0 {
            return;
        }
        let cell = self.0.cell(portfolio_id);
        cell.margin_micros.fetch_sub(amount_micros, Ordering::Relaxed);
        cell.available_micros.fetch_add(amount_micros, Ordering::AcqRel);
    }

    fn lock_margin(&mut self, portfolio_id: PortfolioId, amount_micros: i64) {
        if amount_micros == 0 {
            return;
        }
        let cell = self.0.cell(portfolio_id);
        cell.margin_micros.fetch_add(amount_micros, Ordering::Relaxed);
        cell.available_micros.fetch_sub(amount_micros, Ordering::AcqRel);
    }

    fn settle(
        &mut self,
        portfolio_id: PortfolioId,
        cash_delta_micros: i64,
        fee_micros: i64,
        realized_pnl_micros: i64,
        day: i64,
    ) {
        let cell = self.0.cell(portfolio_id);
        cell.cash_micros.fetch_add(cash_delta_micros, Ordering::Relaxed);
        cell.available_micros.fetch_add(cash_delta_micros, Ordering::AcqRel);
        cell.fees_paid_micros.fetch_add(fee_micros, Ordering::Relaxed);
        cell.realized_pnl_micros.fetch_add(realized_pnl_micros, Ordering::Relaxed);
        let delta = realized_pnl_micros - fee_micros;
        // A delta of an earlier day than the one held is history: dropping it (rather than letting
        // it reset today) makes the result independent of the order shards' deltas arrive in.
        let _ = cell.daily.fetch_update(Ordering::AcqRel, Ordering::Acquire, |packed| {
            let (packed_day, pnl) = unpack_daily(packed);
            match day.cmp(&packed_day) {
                std::cmp::Ordering::Less => None,
                std::cmp::Ordering::Equal => Some(pack_daily(day, pnl + delta)),
                std::cmp::Ordering::Greater => Some(pack_daily(day, delta)),
            }
        });
    }

    fn add_gross_exposure(&mut self, portfolio_id: PortfolioId, delta_micros: i64) {
        self.0.cell(portfolio_id).gross_exposure_micros.fetch_add(delta_micros, Ordering::Relaxed);
    }

    fn try_adjust_cash(&mut self, portfolio_id: PortfolioId, delta_micros: i64) -> bool {
        let cell = self.0.cell(portfolio_id);
        let taken = cell.available_micros.fetch_update(Ordering::AcqRel, Ordering::Acquire, |available| {
            if delta_micros < 0 && available < -delta_micros {
                return None;
            }
            available.checked_add(delta_micros)
        });
        if taken.is_ok() {
            cell.cash_micros.fetch_add(delta_micros, Ordering::Relaxed);
        }
        taken.is_ok()
    }

    fn force_adjust_cash(&mut self, portfolio_id: PortfolioId, delta_micros: i64) {
        let cell = self.0.cell(portfolio_id);
        cell.cash_micros.fetch_add(delta_micros, Ordering::Relaxed);
        cell.available_micros.fetch_add(delta_micros, Ordering::AcqRel);
    }

    fn try_open_order(&mut self, portfolio_id: PortfolioId) -> bool {
        let cell = self.0.cell(portfolio_id);
        let max = cell.open_orders_max.load(Ordering::Relaxed);
        cell.open_orders
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| (open < max).then_some(open + 1))
            .is_ok()
    }

    fn force_open_order(&mut self, portfolio_id: PortfolioId) {
        self.0.cell(portfolio_id).open_orders.fetch_add(1, Ordering::Relaxed);
    }

    fn close_order(&mut self, portfolio_id: PortfolioId) {
        let previous = self.0.cell(portfolio_id).open_orders.fetch_sub(1, Ordering::Relaxed);
        assert!(previous > 0, "closed more orders than were open");
    }

    /// Overwrites every field of the cell. Meant for recovery, before any shard runs: the stores
    /// are not one atomic step, so a concurrent reader could see a mix. The daily P&L is packed as
    /// `settle` keeps it (day modulo 2^16, P&L clamped to ±2^47 micros).
    fn restore_account(&mut self, portfolio_id: PortfolioId, account: &Account) -> bool {
        let Some(cell) = self.0.cells.get(portfolio_id as usize) else { return false };
        cell.cash_micros.store(account.cash_micros, Ordering::Relaxed);
        cell.reserved_micros.store(account.reserved_micros, Ordering::Relaxed);
        cell.margin_micros.store(account.margin_micros, Ordering::Relaxed);
        cell.available_micros.store(
            account.cash_micros.wrapping_sub(account.reserved_micros).wrapping_sub(account.margin_micros),
            Ordering::Relaxed,
        );
        cell.fees_paid_micros.store(account.fees_paid_micros, Ordering::Relaxed);
        cell.realized_pnl_micros.store(account.realized_pnl_micros, Ordering::Relaxed);
        cell.daily.store(pack_daily(account.daily_pnl_day, account.daily_pnl_micros), Ordering::Relaxed);
        cell.gross_exposure_micros.store(account.gross_exposure_micros, Ordering::Relaxed);
        cell.open_orders.store(account.open_orders, Ordering::Relaxed);
        self.set_limits_of(cell, account.limits);
        // Publish the account only once its fields are written.
        cell.exists.store(true, Ordering::Release);
        true
    }
}

impl SharedLedger {
    fn set_limits_of(&self, cell: &Cell, limits: RiskLimits) {
        cell.order_notional_max_micros.store(limits.order_notional_max_micros, Ordering::Relaxed);
        cell.gross_exposure_max_micros.store(limits.gross_exposure_max_micros, Ordering::Relaxed);
        cell.open_orders_max.store(limits.open_orders_max, Ordering::Relaxed);
        cell.daily_loss_max_micros.store(limits.daily_loss_max_micros, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_pnl_packs_signed_values_and_rolls_by_day() {
        for (day, pnl) in [(0, 0), (20_000, -5), (20_000, 123_456_789), (65_535, -(1 << 40))] {
            assert_eq!(unpack_daily(pack_daily(day, pnl)), (day, pnl));
        }
        let mut ledger = SharedLedger(AtomicLedger::new(4));
        assert!(ledger.create(1, 1_000, RiskLimits::default()));
        ledger.settle(1, 0, 2, -10, 100);
        assert_eq!(ledger.account(1).unwrap().daily_loss_micros(100), 12);
        ledger.settle(1, 0, 0, 5, 101);
        assert_eq!(ledger.account(1).unwrap().daily_loss_micros(101), -5);
    }

    #[test]
    fn a_restored_account_reads_back_exactly() {
        let mut ledger = SharedLedger(AtomicLedger::new(4));
        let account = Account {
            cash_micros: 1_000_000,
            reserved_micros: 300_000,
            margin_micros: 200_000,
            fees_paid_micros: 12,
            realized_pnl_micros: -40,
            daily_pnl_micros: -52,
            daily_pnl_day: 20_500,
            gross_exposure_micros: 700_000,
            open_orders: 3,
            limits: RiskLimits { open_orders_max: 9, ..RiskLimits::default() },
        };
        assert!(ledger.restore_account(2, &account));
        assert!(!ledger.restore_account(4, &account));
        assert_eq!(ledger.account(2), Some(account));
        assert_eq!(ledger.0.available_micros(2), 500_000);
        assert!(!ledger.create(2, 5, RiskLimits::default()), "a restored account exists");
        assert!(ledger.try_reserve(2, 500_000));
        assert!(!ledger.try_reserve(2, 1));
    }

    #[test]
    fn reservations_never_take_available_below_zero_under_contention() {
        let ledger = AtomicLedger::new(2);
        let mut handle = SharedLedger(ledger.clone());
        assert!(handle.create(0, 100_000, RiskLimits::default()));
        let granted: i64 = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    let mut handle = SharedLedger(ledger.clone());
                    scope.spawn(move || (0..10_000).filter(|_| handle.try_reserve(0, 7)).count() as i64)
                })
                .collect();
            workers.into_iter().map(|w| w.join().expect("worker")).sum()
        });
        let account = handle.account(0).unwrap();
        assert_eq!(granted, 100_000 / 7);
        assert_eq!(account.reserved_micros, granted * 7);
        assert_eq!(account.available_micros(), 100_000 - granted * 7);
        assert!(account.available_micros() >= 0);
    }
}
