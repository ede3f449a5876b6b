//! Mark-to-market: positions valued at reference prices, unrealized P&L, portfolio value and the
//! return since the portfolio was funded. Queries only; nothing here changes state or emits events.
//!
//! # Marks
//! A symbol's mark is the reference quote's mid (rounded down to a tick), else the last reference
//! trade, else the last trade in the book. A position with no mark is valued at its cost basis.
//! A position's value is `qty * mark` in micros, its magnitude rounded down like a trade's notional.
//!
//! # Return since start, without extra state
//! Every fill moves cash and cost basis so that `cash + sum(basis) = funded + realized - fees`, where
//! `funded` is the portfolio's starting cash plus deposits minus withdrawals. So the funded amount
//! is derived from the account and the positions, and
//! `return = (unrealized + realized - fees) / funded`. The identity needs every position of the
//! portfolio, so these figures are the portfolio's own only when one engine owns all the symbols it
//! trades (one shard, backtests, the scenario runner); in a sharded venue each shard answers for
//! its own symbols.

use crate::book::OrderBook;
use crate::engine::Engine;
use crate::ledger::Ledger;
use crate::types::{PortfolioId, SymbolId, BASIS_POINTS_PER_UNIT};

/// A portfolio's value at the marks, as the mark-to-market queries compute it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Valuation {
    /// Cash plus every position's value at its mark.
    pub portfolio_value_micros: i64,
    /// Sum over positions of value at the mark minus cost basis.
    pub unrealized_pnl_micros: i64,
    pub realized_pnl_micros: i64,
    pub fees_micros: i64,
    /// Starting cash plus deposits minus withdrawals (derived, see the module documentation).
    pub funded_micros: i64,
    /// `(unrealized + realized - fees) / funded`, in basis points rounded toward zero; 0 when
    /// nothing was funded.
    pub return_bps: i64,
}

impl<B: OrderBook, L: Ledger> Engine<B, L> {
    /// The price positions in a symbol are marked at (see the module documentation).
    pub fn mark_price(&self, symbol_id: SymbolId) -> Option<i64> {
        let state = self.symbols.get(usize::from(symbol_id))?;
        state.market.mark_ticks().or((state.last_trade_ticks > 0).then_some(state.last_trade_ticks))
    }

    /// The value of a portfolio's position in a symbol at its mark, signed (negative for a short);
    /// `None` with no mark or a value beyond `i64`.
    pub fn position_value_micros(&self, portfolio_id: PortfolioId, symbol_id: SymbolId) -> Option<i64> {
        let position = self.position(portfolio_id, symbol_id);
        if position.qty_lots == 0 {
            return Some(0);
        }
        let mark_ticks = self.mark_price(symbol_id)?;
        let value = self.instruments.get(symbol_id)?.notional_floor_micros(mark_ticks, position.qty_lots.abs())?;
        Some(position.qty_lots.signum() * value)
    }

    /// Value at the mark minus cost basis; 0 for a flat position or one with no mark.
    pub fn unrealized_pnl_micros(&self, portfolio_id: PortfolioId, symbol_id: SymbolId) -> i64 {
        let position = self.position(portfolio_id, symbol_id);
        self.position_value_micros(portfolio_id, symbol_id).map_or(0, |value| value - position.cost_basis_micros)
    }

    /// The portfolio valued at the marks; `None` for an unknown portfolio.
    pub fn valuation(&self, portfolio_id: PortfolioId) -> Option<Valuation> {
        let account = self.ledger.account(portfolio_id)?;
        let (mut unrealized, mut basis) = (0i128, 0i128);
        for ((owner, symbol_id), position) in self.positions() {
            if owner == portfolio_id {
                basis += i128::from(position.cost_basis_micros);
                unrealized += i128::from(self.unrealized_pnl_micros(portfolio_id, symbol_id));
            }
        }
        let cash = i128::from(account.cash_micros);
        let (realized, fees) = (i128::from(account.realized_pnl_micros), i128::from(account.fees_paid_micros));
        let funded = cash + basis - realized + fees;
        let gain = unrealized + realized - fees;
        let return_bps = if funded > 0 { gain * i128::from(BASIS_POINTS_PER_UNIT) / funded } else { 0 };
        let fit = |value: i128| i64::try_from(value).ok();
        Some(Valuation {
            portfolio_value_micros: fit(cash + basis + unrealized)?,
            unrealized_pnl_micros: fit(unrealized)?,
            realized_pnl_micros: account.realized_pnl_micros,
            fees_micros: account.fees_paid_micros,
            funded_micros: fit(funded)?,
            return_bps: fit(return_bps)?,
        })
    }
}
