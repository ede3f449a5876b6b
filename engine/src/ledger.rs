//! The cash ledger: every portfolio's money, shared by all the symbols (and so all the shards) it
//! trades.
//!
//! # Design
//! A portfolio's cash is one number, but each symbol is owned by one shard thread. The ledger is the
//! only state shards share, and it is built so that they never need a lock:
//!
//! - **Deciding** touches one number: `available = cash - reserved - margin`. A reservation is a
//!   compare-and-swap that succeeds only while `available` stays non-negative (`try_reserve`). Every
//!   other ledger operation is an unconditional addition of a delta, which commutes.
//! - **Recording**: the outcome of every decision is in the shard's events (an accepted order carries
//!   the cash it reserved; a fill carries its notional and fees). Replay applies the recorded outcomes
//!   (`force_reserve`) instead of deciding again, so the ledger rebuilt from several shards' journals
//!   is the same whatever order those journals are merged in: the final state is a sum of deltas.
//!
//! [`LocalLedger`] is the single-threaded implementation used by the pure engine, tests, replay and
//! backtests; the runtime supplies an atomic one with the same contract.
//!
//! # Invariants
//! - `reserved` equals the sum, over the portfolio's open orders, of what each order requires
//!   (`Engine::check_invariants` verifies this for an exclusive ledger).
//! - `available >= 0` after every operation a live engine performs: reservations are checked, and a
//!   fill's debit never exceeds the reservation it releases (reservations round up, trades round down).
//! - `margin` equals the sum of the margin held by the portfolio's short positions.

use crate::risk::RiskLimits;
use crate::types::PortfolioId;
use serde::Serialize;

/// The most portfolios a ledger holds.
pub const PORTFOLIOS_MAX: usize = 1 << 20;
/// The most cash a portfolio may be given (one billion units of the account currency). Together
/// with a minimum initial margin of 1%, this keeps every account's arithmetic far inside `i64`.
pub const CASH_MICROS_MAX: i64 = 1_000_000_000 * 1_000_000;

/// Everything the ledger knows about one portfolio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Account {
    pub cash_micros: i64,
    /// Held for open orders.
    pub reserved_micros: i64,
    /// Held against short positions.
    pub margin_micros: i64,
    pub fees_paid_micros: i64,
    pub realized_pnl_micros: i64,
    /// Realized P&L minus fees since 00:00 UTC of `daily_pnl_day`.
    pub daily_pnl_micros: i64,
    /// Days since the Unix epoch that `daily_pnl_micros` belongs to.
    pub daily_pnl_day: i64,
    /// Sum over positions of |cost basis|.
    pub gross_exposure_micros: i64,
    pub open_orders: u32,
    pub limits: RiskLimits,
}

impl Account {
    /// The account's fields as the state hashes feed them, in a fixed order after the portfolio id.
    /// One definition for the engine's `state_hash` and the journal tool's combined hash.
    pub fn hash_words(&self, portfolio_id: PortfolioId) -> [i64; 14] {
        [
            i64::from(portfolio_id),
            self.cash_micros,
            self.reserved_micros,
            self.margin_micros,
            self.fees_paid_micros,
            self.realized_pnl_micros,
            self.daily_pnl_micros,
            self.daily_pnl_day,
            self.gross_exposure_micros,
            i64::from(self.open_orders),
            self.limits.order_notional_max_micros,
            self.limits.gross_exposure_max_micros,
            i64::from(self.limits.open_orders_max),
            self.limits.daily_loss_max_micros,
        ]
    }

    pub fn available_micros(&self) -> i64 {
        self.cash_micros - self.reserved_micros - self.margin_micros
    }

    /// The day's realized loss (positive when losing), as of `day`.
    pub fn daily_loss_micros(&self, day: i64) -> i64 {
        if self.daily_pnl_day == day {
            -self.daily_pnl_micros
        } else {
            0
        }
    }
}

/// The operations a shard performs on portfolio money. See the module doc for the contract.
pub trait Ledger {
    /// Whether only this engine uses the ledger (so its totals must equal the engine's own sums).
    fn is_exclusive(&self) -> bool;
    fn account(&self, portfolio_id: PortfolioId) -> Option<Account>;
    /// Visits every account in portfolio id order.
    fn for_each_account(&self, visit: &mut dyn FnMut(PortfolioId, &Account));
    /// Creates an account; false if it exists or the id is out of range.
    fn create(&mut self, portfolio_id: PortfolioId, cash_micros: i64, limits: RiskLimits) -> bool;
    fn set_limits(&mut self, portfolio_id: PortfolioId, limits: RiskLimits);
    /// Takes `amount` from available cash if that leaves it non-negative.
    fn try_reserve(&mut self, portfolio_id: PortfolioId, amount_micros: i64) -> bool;
    /// Takes `amount` unconditionally: replay of a recorded reservation.
    fn force_reserve(&mut self, portfolio_id: PortfolioId, amount_micros: i64);
    fn release(&mut self, portfolio_id: PortfolioId, amount_micros: i64);
    /// Moves held cash from an order's reservation to a short position's margin.
    fn reserve_to_margin(&mut self, portfolio_id: PortfolioId, amount_micros: i64);
    fn release_margin(&mut self, portfolio_id: PortfolioId, amount_micros: i64);
    /// Moves available cash into margin (a short sale's proceeds). Never takes `available` below
    /// zero: the proceeds were credited by the same fill.
    fn lock_margin(&mut self, portfolio_id: PortfolioId, amount_micros: i64);
    /// Books a fill's cash flow (`cash_delta` includes the fee), fee and realized P&L.
    fn settle(
        &mut self,
        portfolio_id: PortfolioId,
        cash_delta_micros: i64,
        fee_micros: i64,
        realized_pnl_micros: i64,
        day: i64,
    );
    fn add_gross_exposure(&mut self, portfolio_id: PortfolioId, delta_micros: i64);
    /// Deposits (positive) or withdraws (negative, only from available cash).
    fn try_adjust_cash(&mut self, portfolio_id: PortfolioId, delta_micros: i64) -> bool;
    fn force_adjust_cash(&mut self, portfolio_id: PortfolioId, delta_micros: i64);
    /// Counts one more open order if that stays within `open_orders_max`.
    fn try_open_order(&mut self, portfolio_id: PortfolioId) -> bool;
    fn force_open_order(&mut self, portfolio_id: PortfolioId);
    fn close_order(&mut self, portfolio_id: PortfolioId);
    /// Sets an account to `account` exactly, creating it if needed: restoring a snapshot (see
    /// `snapshot`). Not a trading operation: nothing checks or commutes. False if the id is out of
    /// range (then nothing changed).
    fn restore_account(&mut self, portfolio_id: PortfolioId, account: &Account) -> bool;
}

/// A ledger owned by one engine: plain integers in a vector indexed by portfolio id.
#[derive(Clone, Debug, Default)]
pub struct LocalLedger {
    accounts: Vec<Option<Account>>,
}

impl LocalLedger {
    pub fn new() -> LocalLedger {
        LocalLedger::default()
    }

    fn get_mut(&mut self, portfolio_id: PortfolioId) -> &mut Account {
        self.accounts
            .get_mut(portfolio_id as usize)
            .and_then(Option::as_mut)
            .expect("ledger operation on a portfolio that does not exist")
    }

    /// Every account in id order.
    pub fn iter(&self) -> impl Iterator<Item = (PortfolioId, &Account)> {
        self.accounts.iter().enumerate().filter_map(|(id, account)| account.as_ref().map(|a| (id as PortfolioId, a)))
    }
}

impl Ledger for LocalLedger {
    fn is_exclusive(&self) -> bool {
        true
    }

    fn account(&self, portfolio_id: PortfolioId) -> Option<Account> {
        self.accounts.get(portfolio_id as usize).copied().flatten()
    }

    fn for_each_account(&self, visit: &mut dyn FnMut(PortfolioId, &Account)) {
        for (portfolio_id, account) in self.iter() {
            visit(portfolio_id, account);
        }
    }

    fn create(&mut self, portfolio_id: PortfolioId, cash_micros: i64, limits: RiskLimits) -> bool {
        let index = portfolio_id as usize;
        if index >= PORTFOLIOS_MAX {
            return false;
        }
        if self.accounts.len() <= index {
            self.accounts.resize(index + 1, None);
        }
        if self.accounts[index].is_some() {
            return false;
        }
        self.accounts[index] = Some(Account {
            cash_micros,
            reserved_micros: 0,
            margin_micros: 0,
            fees_paid_micros: 0,
            realized_pnl_micros: 0,
            daily_pnl_micros: 0,
            daily_pnl_day: 0,
            gross_exposure_micros: 0,
            open_orders: 0,
            limits,
        });
        true
    }

    fn set_limits(&mut self, portfolio_id: PortfolioId, limits: RiskLimits) {
        self.get_mut(portfolio_id).limits = limits;
    }

    fn try_reserve(&mut self, portfolio_id: PortfolioId, amount_micros: i64) -> bool {
        debug_assert!(amount_micros >= 0);
        let account = self.get_mut(portfolio_id);
        if account.available_micros() < amount_micros {
            return false;
        }
        account.reserved_micros += amount_micros;
        true
    }

    fn force_reserve(&mut self, portfolio_id: PortfolioId, amount_micros: i64) {
        self.get_mut(portfolio_id).reserved_micros += amount_micros;
    }

    fn release(&mut self, portfolio_id: PortfolioId, amount_micros: i64) {
        debug_assert!(amount_micros >= 0);
        let account = self.get_mut(portfolio_id);
        account.reserved_micros -= amount_micros;
        assert!(account.reserved_micros >= 0, "released more than was reserved");
    }

    fn reserve_to_margin(&mut self, portfolio_id: PortfolioId, amount_micros: i64) {
        let account = self.get_mut(portfolio_id);
        account.reserved_micros -= amount_micros;
        account.margin_micros += amount_micros;
        assert!(account.reserved_micros >= 0, "moved more than was reserved");
    }

    fn release_margin(&mut self, portfolio_id: PortfolioId, amount_micros: i64) {
        let account = self.get_mut(portfolio_id);
        account.margin_micros -= amount_micros;
        assert!(account.margin_micros >= 0, "released more margin than was held");
    }

    fn lock_margin(&mut self, portfolio_id: PortfolioId, amount_micros: i64) {
        self.get_mut(portfolio_id).margin_micros += amount_micros;
    }

    fn settle(
        &mut self,
        portfolio_id: PortfolioId,
        cash_delta_micros: i64,
        fee_micros: i64,
        realized_pnl_micros: i64,
        day: i64,
    ) {
        let account = self.get_mut(portfolio_id);
        account.cash_micros += cash_delta_micros;
        account.fees_paid_micros += fee_micros;
        account.realized_pnl_micros += realized_pnl_micros;
        // Only the latest day counts; a delta of an earlier day (possible when several shards'
        // journals are merged) is history.
        if day > account.daily_pnl_day {
            account.daily_pnl_day = day;
            account.daily_pnl_micros = 0;
        }
        if day == account.daily_pnl_day {
            account.daily_pnl_micros += realized_pnl_micros - fee_micros;
        }
    }

    fn add_gross_exposure(&mut self, portfolio_id: PortfolioId, delta_micros: i64) {
        let account = self.get_mut(portfolio_id);
        account.gross_exposure_micros += delta_micros;
        assert!(account.gross_exposure_micros >= 0);
    }

    fn try_adjust_cash(&mut self, portfolio_id: PortfolioId, delta_micros: i64) -> bool {
        let account = self.get_mut(portfolio_id);
        if delta_micros < 0 && account.available_micros() < -delta_micros {
            return false;
        }
        account.cash_micros += delta_micros;
        true
    }

    fn force_adjust_cash(&mut self, portfolio_id: PortfolioId, delta_micros: i64) {
        self.get_mut(portfolio_id).cash_micros += delta_micros;
    }

    fn try_open_order(&mut self, portfolio_id: PortfolioId) -> bool {
        let account = self.get_mut(portfolio_id);
        if account.open_orders >= account.limits.open_orders_max {
            return false;
        }
        account.open_orders += 1;
        true
    }

    fn force_open_order(&mut self, portfolio_id: PortfolioId) {
        self.get_mut(portfolio_id).open_orders += 1;
    }

    fn close_order(&mut self, portfolio_id: PortfolioId) {
        let account = self.get_mut(portfolio_id);
        assert!(account.open_orders > 0);
        account.open_orders -= 1;
    }

    fn restore_account(&mut self, portfolio_id: PortfolioId, account: &Account) -> bool {
        let index = portfolio_id as usize;
        if index >= PORTFOLIOS_MAX {
            return false;
        }
        if self.accounts.len() <= index {
            self.accounts.resize(index + 1, None);
        }
        self.accounts[index] = Some(*account);
        true
    }
}
