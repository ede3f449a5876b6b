//! Snapshots: an engine's whole logical state as bytes, and an engine built back from them.
//!
//! # Why
//! Recovery rebuilds a shard by replaying its journal; a snapshot bounds how much has to be
//! replayed. The journal stores [`Engine::snapshot_bytes`] (in a file with its own checksum) together
//! with the sequence number it covers, and on recovery builds the engine with
//! [`Engine::from_snapshot`] and replays only the events after [`Engine::last_seq`].
//!
//! # What is stored and what is rebuilt
//! Stored is the logical state, the same that `state_hash` covers: the counters (last sequence
//! number, order counter, last trade id, last timestamp), each symbol's halt flag, reference price,
//! last trade price and reference market (`sim::MarketState`), every open order in book priority
//! order (per symbol, bids then asks) with its queue position, every position, when the ledger is
//! exclusive to the engine the accounts, and every conditional order waiting for its trigger (with a
//! trailing stop's best price so far).
//!
//! Rebuilt is everything derived from that: the order store and its handles, the books (orders are
//! inserted in the stored order, so each level's FIFO is exactly the original), the per-portfolio
//! order lists (in acceptance order, which is order id order, as mass cancel walks them), the client
//! order id index, the expiry heap (the original's entries for orders already gone are dropped; they
//! were skipped when popped anyway), the positions' open and reserved lot sums, and the hash maps,
//! sized as `Engine::with_ledger` sizes them; the trigger indexes and the entry-to-exits links of
//! brackets. Nothing about memory layout is stored, so a snapshot
//! of a `FastBook` engine restores into a `ReferenceBook` engine and vice versa.
//!
//! A ledger shared by several shards (not exclusive) belongs to none of them: its accounts are
//! snapshotted once, with [`ledger_snapshot_bytes`], and restored into the fresh shared ledger with
//! [`restore_ledger`] before the shards' engines are built from their own snapshots.
//!
//! # When
//! Between commands. Inside a command the engine passes through states that are not valid on their
//! own (an accepted order sits in a crossed book until its fills are applied); `from_snapshot`
//! refuses those, because it accepts only states that pass `check_invariants`.
//!
//! # Format (version 4)
//! A header, then the records, each a `#[repr(C)]` [`bytemuck::Pod`] struct with little-endian
//! integers, explicit zero padding, and codes instead of enums and bools (those of `codec`). Every
//! size is a multiple of 8.
//!
//! | part | bytes | count |
//! | --- | ---: | --- |
//! | header (magic `SIMEXSNP`, version, flags, counters, shard id, counts) | 72 | 1 |
//! | symbol (reference, last trade, reference quote, last reference trade, simulated market's net position, owned, halted) | 72 | one per instrument |
//! | open order (with its queue position) | 96 | one per open order: symbol ascending, bids then asks, priority order |
//! | position (without the derived lot sums) | 48 | one per entry, (portfolio, symbol) ascending |
//! | account | 104 | flag bit 0 set: one per account, portfolio ascending; else none |
//! | conditional order (the `ConditionalAccepted` payload, then the best price) | 120 | one per waiting order, id ascending |
//!
//! A ledger snapshot is a 16-byte header (magic `SIMEXLDG`, version, count) and account records.
//! There is no checksum: the file that carries a snapshot has one.
//!
//! # Validation
//! Decoding never panics, whatever the bytes, and an engine that `from_snapshot` returns passes
//! `check_invariants`. The checks, in order:
//! 1. Encoding: length, magic, version, codes, bools and padding, as in `codec`.
//! 2. Configuration: the shard id, the number of instruments, which symbols the shard owns, the
//!    ledger's exclusivity and the order capacity must match the engine being built.
//! 3. Canonical order: records in the order `snapshot_bytes` writes them, without duplicates. So
//!    there is one encoding of each state, and a snapshot that restores re-encodes to the same
//!    bytes (the `snapshot_decode` fuzz target checks this).
//! 4. What building needs (checked before anything is built, because the book and order store
//!    assert): order ids unique, of this shard and not beyond its counter; open quantities
//!    positive and level sums within `i64`; client order ids unique per portfolio; every order and
//!    position in an owned symbol of a portfolio that has an account; every order's (portfolio,
//!    symbol) has a position record.
//! 5. Invariants: the built engine must pass the non-panicking form of `check_invariants` (book not
//!    crossed, every reservation equal to what its order requires, positions netting to zero, and
//!    for an exclusive ledger every account's totals equal to the engine's sums and available cash
//!    non-negative). Checking the built state with the same code that tests use, rather than
//!    re-deriving each relationship from the records, means the two cannot disagree.

use crate::book::OrderBook;
use crate::codec::{
    bool_from_code, kind_code, kind_from_code, self_trade_policy_code, self_trade_policy_from_code, side_code,
    side_from_code, time_in_force_code, time_in_force_from_code, ConditionalWire,
};
use crate::engine::{Engine, EngineConfig, ORDER_COUNTER_MASK, ORDER_ID_SHARD_SHIFT};
use crate::instrument::InstrumentTable;
use crate::ledger::{Account, Ledger, PORTFOLIOS_MAX};
use crate::order::{Handle, Order, NIL};
use crate::position::Position;
use crate::risk::RiskLimits;
use crate::sim::MarketState;
use crate::types::{ClientOrderId, OrderKind, PortfolioId, Side, SymbolId, TimeInForce};
use bytemuck::{Pod, Zeroable};
use std::cmp::Reverse;
use std::mem::size_of;

/// The snapshot format version this code writes and reads.
pub const SNAPSHOT_VERSION: u32 = 4;
const ENGINE_MAGIC: [u8; 8] = *b"SIMEXSNP";
const LEDGER_MAGIC: [u8; 8] = *b"SIMEXLDG";
/// Header flag: account records follow the positions.
const FLAG_ACCOUNTS: u32 = 1;

/// Why a snapshot was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot is {actual} bytes, its header implies {expected}")]
    WrongLength { expected: u64, actual: usize },
    #[error("not a simex snapshot of this kind (bad magic)")]
    BadMagic,
    #[error("snapshot version {0} is not supported (this build reads version {SNAPSHOT_VERSION})")]
    UnsupportedVersion(u32),
    #[error("snapshot does not match the engine it is restored into: {0}")]
    ConfigMismatch(&'static str),
    #[error("{record} record {index}: field {field} is invalid")]
    InvalidField { record: &'static str, index: usize, field: &'static str },
    #[error("{0} records are out of order or duplicated")]
    NotCanonical(&'static str),
    #[error("inconsistent snapshot: {0}")]
    Inconsistent(String),
    #[error("the ledger to restore into already holds accounts")]
    LedgerNotEmpty,
    #[error("portfolio {0} is outside the ledger's range")]
    PortfolioOutOfRange(PortfolioId),
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct EngineHeader {
    magic: [u8; 8],
    version: u32,
    flags: u32,
    last_seq: u64,
    order_counter: u64,
    last_trade_id: u64,
    last_timestamp_ns: i64,
    shard_id: u16,
    _pad0: u16,
    symbol_count: u32,
    order_count: u32,
    position_count: u32,
    account_count: u32,
    conditional_count: u32,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct LedgerHeader {
    magic: [u8; 8],
    version: u32,
    account_count: u32,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct SymbolRecord {
    reference_ticks: i64,
    last_trade_ticks: i64,
    quote_bid_ticks: i64,
    quote_bid_lots: i64,
    quote_ask_ticks: i64,
    quote_ask_lots: i64,
    market_last_trade_ticks: i64,
    market_counterparty_lots: i64,
    owned: u8,
    halted: u8,
    _pad: [u8; 6],
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct OrderRecord {
    order_id: u64,
    price_ticks: i64,
    open_lots: i64,
    filled_lots: i64,
    expire_at_ns: i64,
    reserved_cash_micros: i64,
    reserved_lots: i64,
    queue_ahead_lots: i64,
    client_order_id: [u8; 16],
    portfolio_id: u32,
    symbol_id: u16,
    side: u8,
    kind: u8,
    time_in_force: u8,
    post_only: u8,
    self_trade_policy: u8,
    _pad: [u8; 5],
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct PositionRecord {
    portfolio_id: u32,
    symbol_id: u16,
    _pad: u16,
    qty_lots: i64,
    cost_basis_micros: i64,
    margin_micros: i64,
    realized_pnl_micros: i64,
    fees_micros: i64,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct AccountRecord {
    portfolio_id: u32,
    open_orders: u32,
    cash_micros: i64,
    reserved_micros: i64,
    margin_micros: i64,
    fees_paid_micros: i64,
    realized_pnl_micros: i64,
    daily_pnl_micros: i64,
    daily_pnl_day: i64,
    gross_exposure_micros: i64,
    order_notional_max_micros: i64,
    gross_exposure_max_micros: i64,
    daily_loss_max_micros: i64,
    open_orders_max: u32,
    _pad: u32,
}

const _: () = {
    assert!(size_of::<EngineHeader>() == 72);
    assert!(size_of::<LedgerHeader>() == 16);
    assert!(size_of::<SymbolRecord>() == 72);
    assert!(size_of::<OrderRecord>() == 96);
    assert!(size_of::<PositionRecord>() == 48);
    assert!(size_of::<AccountRecord>() == 104);
    assert!(size_of::<ConditionalRecord>() == 120);
};

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct ConditionalRecord {
    order: ConditionalWire,
    /// A trailing stop's best price so far; 0 for other orders.
    best_ticks: i64,
}

fn invalid(record: &'static str, index: usize, field: &'static str) -> SnapshotError {
    SnapshotError::InvalidField { record, index, field }
}

fn inconsistent(message: String) -> SnapshotError {
    SnapshotError::Inconsistent(message)
}

impl SymbolRecord {
    fn decode(&self, index: usize) -> Result<(bool, bool, i64, i64, MarketState), SnapshotError> {
        if self._pad != [0; 6] {
            return Err(invalid("symbol", index, "padding"));
        }
        let owned = bool_from_code(self.owned).ok_or(invalid("symbol", index, "owned"))?;
        let halted = bool_from_code(self.halted).ok_or(invalid("symbol", index, "halted"))?;
        let market = MarketState {
            bid_ticks: i64::from_le(self.quote_bid_ticks),
            bid_lots: i64::from_le(self.quote_bid_lots),
            ask_ticks: i64::from_le(self.quote_ask_ticks),
            ask_lots: i64::from_le(self.quote_ask_lots),
            last_trade_ticks: i64::from_le(self.market_last_trade_ticks),
            counterparty_lots: i64::from_le(self.market_counterparty_lots),
        };
        // What `ReferenceQuoteSet` and `ReferenceTradePrinted` can leave behind, and nothing else.
        let no_quote = market.bid_ticks == 0 && market.ask_ticks == 0 && market.bid_lots == 0 && market.ask_lots == 0;
        let quote =
            market.bid_ticks > 0 && market.ask_ticks > market.bid_ticks && market.bid_lots >= 0 && market.ask_lots >= 0;
        if !(no_quote || quote) || market.last_trade_ticks < 0 {
            return Err(invalid("symbol", index, "market"));
        }
        Ok((owned, halted, i64::from_le(self.reference_ticks), i64::from_le(self.last_trade_ticks), market))
    }
}

impl OrderRecord {
    fn encode(o: &Order) -> OrderRecord {
        OrderRecord {
            order_id: o.order_id.to_le(),
            price_ticks: o.price_ticks.to_le(),
            open_lots: o.open_lots.to_le(),
            filled_lots: o.filled_lots.to_le(),
            expire_at_ns: o.expire_at_ns.to_le(),
            reserved_cash_micros: o.reserved_cash_micros.to_le(),
            reserved_lots: o.reserved_lots.to_le(),
            queue_ahead_lots: o.queue_ahead_lots.to_le(),
            client_order_id: o.client_order_id.0,
            portfolio_id: o.portfolio_id.to_le(),
            symbol_id: o.symbol_id.to_le(),
            side: side_code(o.side),
            kind: kind_code(o.kind),
            time_in_force: time_in_force_code(o.time_in_force),
            post_only: u8::from(o.post_only),
            self_trade_policy: self_trade_policy_code(o.self_trade_policy),
            _pad: [0; 5],
        }
    }

    fn decode(&self, index: usize) -> Result<Order, SnapshotError> {
        let field = |name| invalid("order", index, name);
        if self._pad != [0; 5] {
            return Err(field("padding"));
        }
        Ok(Order {
            order_id: u64::from_le(self.order_id),
            portfolio_id: u32::from_le(self.portfolio_id),
            symbol_id: u16::from_le(self.symbol_id),
            side: side_from_code(self.side).ok_or(field("side"))?,
            kind: kind_from_code(self.kind).ok_or(field("kind"))?,
            price_ticks: i64::from_le(self.price_ticks),
            open_lots: i64::from_le(self.open_lots),
            filled_lots: i64::from_le(self.filled_lots),
            time_in_force: time_in_force_from_code(self.time_in_force).ok_or(field("time_in_force"))?,
            expire_at_ns: i64::from_le(self.expire_at_ns),
            client_order_id: ClientOrderId(self.client_order_id),
            post_only: bool_from_code(self.post_only).ok_or(field("post_only"))?,
            self_trade_policy: self_trade_policy_from_code(self.self_trade_policy).ok_or(field("self_trade_policy"))?,
            reserved_cash_micros: i64::from_le(self.reserved_cash_micros),
            reserved_lots: i64::from_le(self.reserved_lots),
            queue_ahead_lots: i64::from_le(self.queue_ahead_lots),
            portfolio_prev: NIL,
            portfolio_next: NIL,
        })
    }
}

impl PositionRecord {
    fn encode((portfolio_id, symbol_id): (PortfolioId, SymbolId), p: &Position) -> PositionRecord {
        PositionRecord {
            portfolio_id: portfolio_id.to_le(),
            symbol_id: symbol_id.to_le(),
            _pad: 0,
            qty_lots: p.qty_lots.to_le(),
            cost_basis_micros: p.cost_basis_micros.to_le(),
            margin_micros: p.margin_micros.to_le(),
            realized_pnl_micros: p.realized_pnl_micros.to_le(),
            fees_micros: p.fees_micros.to_le(),
        }
    }

    /// The position without its derived lot sums (they are rebuilt from the orders).
    fn decode(&self, index: usize) -> Result<((PortfolioId, SymbolId), Position), SnapshotError> {
        if self._pad != 0 {
            return Err(invalid("position", index, "padding"));
        }
        let key = (u32::from_le(self.portfolio_id), u16::from_le(self.symbol_id));
        let position = Position {
            qty_lots: i64::from_le(self.qty_lots),
            cost_basis_micros: i64::from_le(self.cost_basis_micros),
            margin_micros: i64::from_le(self.margin_micros),
            realized_pnl_micros: i64::from_le(self.realized_pnl_micros),
            fees_micros: i64::from_le(self.fees_micros),
            ..Position::default()
        };
        Ok((key, position))
    }
}

impl AccountRecord {
    fn encode(portfolio_id: PortfolioId, a: &Account) -> AccountRecord {
        AccountRecord {
            portfolio_id: portfolio_id.to_le(),
            open_orders: a.open_orders.to_le(),
            cash_micros: a.cash_micros.to_le(),
            reserved_micros: a.reserved_micros.to_le(),
            margin_micros: a.margin_micros.to_le(),
            fees_paid_micros: a.fees_paid_micros.to_le(),
            realized_pnl_micros: a.realized_pnl_micros.to_le(),
            daily_pnl_micros: a.daily_pnl_micros.to_le(),
            daily_pnl_day: a.daily_pnl_day.to_le(),
            gross_exposure_micros: a.gross_exposure_micros.to_le(),
            order_notional_max_micros: a.limits.order_notional_max_micros.to_le(),
            gross_exposure_max_micros: a.limits.gross_exposure_max_micros.to_le(),
            daily_loss_max_micros: a.limits.daily_loss_max_micros.to_le(),
            open_orders_max: a.limits.open_orders_max.to_le(),
            _pad: 0,
        }
    }

    /// Decodes and checks what holds for every account whatever the engine: an id in range, no
    /// negative holdings, and `available = cash - reserved - margin` within `i64` and not negative.
    fn decode(&self, index: usize) -> Result<(PortfolioId, Account), SnapshotError> {
        if self._pad != 0 {
            return Err(invalid("account", index, "padding"));
        }
        let portfolio_id = u32::from_le(self.portfolio_id);
        if portfolio_id as usize >= PORTFOLIOS_MAX {
            return Err(SnapshotError::PortfolioOutOfRange(portfolio_id));
        }
        let account = Account {
            cash_micros: i64::from_le(self.cash_micros),
            reserved_micros: i64::from_le(self.reserved_micros),
            margin_micros: i64::from_le(self.margin_micros),
            fees_paid_micros: i64::from_le(self.fees_paid_micros),
            realized_pnl_micros: i64::from_le(self.realized_pnl_micros),
            daily_pnl_micros: i64::from_le(self.daily_pnl_micros),
            daily_pnl_day: i64::from_le(self.daily_pnl_day),
            gross_exposure_micros: i64::from_le(self.gross_exposure_micros),
            open_orders: u32::from_le(self.open_orders),
            limits: RiskLimits {
                order_notional_max_micros: i64::from_le(self.order_notional_max_micros),
                gross_exposure_max_micros: i64::from_le(self.gross_exposure_max_micros),
                open_orders_max: u32::from_le(self.open_orders_max),
                daily_loss_max_micros: i64::from_le(self.daily_loss_max_micros),
            },
        };
        let available = account
            .cash_micros
            .checked_sub(account.reserved_micros)
            .and_then(|rest| rest.checked_sub(account.margin_micros));
        if account.reserved_micros < 0
            || account.margin_micros < 0
            || account.gross_exposure_micros < 0
            || available.is_none_or(|available| available < 0)
        {
            return Err(inconsistent(format!("account of portfolio {portfolio_id} holds impossible amounts")));
        }
        Ok((portfolio_id, account))
    }
}

fn push<T: Pod>(out: &mut Vec<u8>, record: &T) {
    out.extend_from_slice(bytemuck::bytes_of(record));
}

/// Reads records one after the other from a buffer whose length has been checked against its
/// header; still bounds-checked, so that no input can make it panic.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<T: Pod>(&mut self) -> Result<T, SnapshotError> {
        let end = self.at.checked_add(size_of::<T>());
        let slice = end.and_then(|end| self.bytes.get(self.at..end));
        let record = slice.and_then(|slice| bytemuck::try_pod_read_unaligned(slice).ok());
        match record {
            Some(record) => {
                self.at += size_of::<T>();
                Ok(record)
            }
            None => Err(SnapshotError::WrongLength {
                expected: (self.at + size_of::<T>()) as u64,
                actual: self.bytes.len(),
            }),
        }
    }
}

/// The total length a header implies: the header plus `count * size` for each part.
fn implied_length(header: usize, parts: &[(u32, usize)]) -> u64 {
    parts.iter().map(|&(count, size)| u64::from(count) * size as u64).sum::<u64>() + header as u64
}

fn check_length(expected: u64, bytes: &[u8]) -> Result<(), SnapshotError> {
    if expected == bytes.len() as u64 {
        Ok(())
    } else {
        Err(SnapshotError::WrongLength { expected, actual: bytes.len() })
    }
}

/// Every account of a ledger, in portfolio id order, as records.
fn account_records(ledger: &impl Ledger, out: &mut Vec<u8>) -> u32 {
    let mut count = 0u32;
    ledger.for_each_account(&mut |portfolio_id, account| {
        push(out, &AccountRecord::encode(portfolio_id, account));
        count += 1;
    });
    count
}

/// Decodes `count` account records, strictly ascending by portfolio id.
fn read_accounts(reader: &mut Reader, count: u32) -> Result<Vec<(PortfolioId, Account)>, SnapshotError> {
    let mut accounts: Vec<(PortfolioId, Account)> = Vec::with_capacity(count as usize);
    for index in 0..count as usize {
        let (portfolio_id, account) = reader.take::<AccountRecord>()?.decode(index)?;
        if accounts.last().is_some_and(|(previous, _)| *previous >= portfolio_id) {
            return Err(SnapshotError::NotCanonical("account"));
        }
        accounts.push((portfolio_id, account));
    }
    Ok(accounts)
}

fn ledger_is_empty(ledger: &impl Ledger) -> bool {
    let mut empty = true;
    ledger.for_each_account(&mut |_, _| empty = false);
    empty
}

/// Restores decoded accounts into an empty ledger.
fn restore_accounts(ledger: &mut impl Ledger, accounts: &[(PortfolioId, Account)]) -> Result<(), SnapshotError> {
    if !ledger_is_empty(ledger) {
        return Err(SnapshotError::LedgerNotEmpty);
    }
    for (portfolio_id, account) in accounts {
        if !ledger.restore_account(*portfolio_id, account) {
            return Err(SnapshotError::PortfolioOutOfRange(*portfolio_id));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The shared ledger
// ---------------------------------------------------------------------------------------------

/// Every account of a ledger as bytes: for a ledger shared by several shards, which no shard's
/// engine snapshot includes. Take it while the shards are quiescent.
pub fn ledger_snapshot_bytes(ledger: &impl Ledger) -> Vec<u8> {
    let mut out = vec![0u8; size_of::<LedgerHeader>()];
    let account_count = account_records(ledger, &mut out);
    let header =
        LedgerHeader { magic: LEDGER_MAGIC, version: SNAPSHOT_VERSION.to_le(), account_count: account_count.to_le() };
    out[..size_of::<LedgerHeader>()].copy_from_slice(bytemuck::bytes_of(&header));
    out
}

/// Restores the accounts of [`ledger_snapshot_bytes`] into an empty ledger. Every record is decoded
/// and checked before the ledger is touched; only a portfolio id beyond the ledger's own range is
/// found while restoring, and then the ledger holds part of the snapshot and should be discarded.
pub fn restore_ledger(ledger: &mut impl Ledger, bytes: &[u8]) -> Result<(), SnapshotError> {
    let mut reader = Reader { bytes, at: 0 };
    let header: LedgerHeader = reader.take()?;
    if header.magic != LEDGER_MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let version = u32::from_le(header.version);
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    let account_count = u32::from_le(header.account_count);
    check_length(implied_length(size_of::<LedgerHeader>(), &[(account_count, size_of::<AccountRecord>())]), bytes)?;
    let accounts = read_accounts(&mut reader, account_count)?;
    restore_accounts(ledger, &accounts)
}

// ---------------------------------------------------------------------------------------------
// The engine
// ---------------------------------------------------------------------------------------------

impl<B: OrderBook, L: Ledger> Engine<B, L> {
    /// The engine's logical state as bytes (see the module documentation for what is included).
    /// Take it between commands.
    pub fn snapshot_bytes(&self) -> Vec<u8> {
        let size = size_of::<EngineHeader>()
            + self.symbols.len() * size_of::<SymbolRecord>()
            + self.orders.len() * size_of::<OrderRecord>()
            + self.positions.len() * size_of::<PositionRecord>();
        let mut out = Vec::with_capacity(size);
        out.resize(size_of::<EngineHeader>(), 0);
        for state in &self.symbols {
            let record = SymbolRecord {
                reference_ticks: state.reference_ticks.to_le(),
                last_trade_ticks: state.last_trade_ticks.to_le(),
                quote_bid_ticks: state.market.bid_ticks.to_le(),
                quote_bid_lots: state.market.bid_lots.to_le(),
                quote_ask_ticks: state.market.ask_ticks.to_le(),
                quote_ask_lots: state.market.ask_lots.to_le(),
                market_last_trade_ticks: state.market.last_trade_ticks.to_le(),
                market_counterparty_lots: state.market.counterparty_lots.to_le(),
                owned: u8::from(state.owned),
                halted: u8::from(state.halted),
                _pad: [0; 6],
            };
            push(&mut out, &record);
        }
        let mut order_count = 0u32;
        for (index, state) in self.symbols.iter().enumerate() {
            if !state.owned {
                continue;
            }
            for side in [Side::Buy, Side::Sell] {
                self.books[index].scan(side, |_, handle| {
                    push(&mut out, &OrderRecord::encode(self.orders.get(handle)));
                    order_count += 1;
                    true
                });
            }
        }
        let positions = self.positions();
        for (key, position) in &positions {
            push(&mut out, &PositionRecord::encode(*key, position));
        }
        let (flags, account_count) =
            if self.ledger.is_exclusive() { (FLAG_ACCOUNTS, account_records(&self.ledger, &mut out)) } else { (0, 0) };
        let bests = self.conditionals.trailing_bests();
        for c in self.conditionals.iter() {
            let best_ticks = bests.binary_search_by_key(&c.order_id, |(id, _)| *id).map_or(0, |at| bests[at].1);
            push(&mut out, &ConditionalRecord { order: ConditionalWire::encode(c), best_ticks: best_ticks.to_le() });
        }
        let count = |n: usize| u32::try_from(n).expect("fewer than 2^32 records of a kind");
        let header = EngineHeader {
            magic: ENGINE_MAGIC,
            version: SNAPSHOT_VERSION.to_le(),
            flags: flags.to_le(),
            last_seq: self.last_seq.to_le(),
            order_counter: self.order_counter.to_le(),
            last_trade_id: self.last_trade_id.to_le(),
            last_timestamp_ns: self.last_timestamp_ns.to_le(),
            shard_id: self.config.shard_id.to_le(),
            _pad0: 0,
            symbol_count: count(self.symbols.len()).to_le(),
            order_count: order_count.to_le(),
            position_count: count(positions.len()).to_le(),
            account_count: account_count.to_le(),
            conditional_count: count(self.conditionals.len()).to_le(),
        };
        out[..size_of::<EngineHeader>()].copy_from_slice(bytemuck::bytes_of(&header));
        out
    }

    /// Builds an engine from [`Engine::snapshot_bytes`], with `config`, `instruments` and `ledger`
    /// as in [`Engine::with_ledger`]. An exclusive ledger must be empty: it receives the snapshot's
    /// accounts. A shared ledger must already hold the accounts (see [`restore_ledger`]). Never
    /// panics on any bytes; an engine it returns passes `check_invariants`.
    pub fn from_snapshot(
        config: EngineConfig,
        instruments: InstrumentTable,
        ledger: L,
        bytes: &[u8],
    ) -> Result<Self, SnapshotError> {
        let mut reader = Reader { bytes, at: 0 };
        let header: EngineHeader = reader.take()?;
        if header.magic != ENGINE_MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = u32::from_le(header.version);
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let flags = u32::from_le(header.flags);
        let (symbol_count, order_count, position_count, account_count, conditional_count) = (
            u32::from_le(header.symbol_count),
            u32::from_le(header.order_count),
            u32::from_le(header.position_count),
            u32::from_le(header.account_count),
            u32::from_le(header.conditional_count),
        );
        check_length(
            implied_length(
                size_of::<EngineHeader>(),
                &[
                    (symbol_count, size_of::<SymbolRecord>()),
                    (order_count, size_of::<OrderRecord>()),
                    (position_count, size_of::<PositionRecord>()),
                    (account_count, size_of::<AccountRecord>()),
                    (conditional_count, size_of::<ConditionalRecord>()),
                ],
            ),
            bytes,
        )?;
        if header._pad0 != 0 {
            return Err(invalid("header", 0, "padding"));
        }
        if flags & !FLAG_ACCOUNTS != 0 || (flags & FLAG_ACCOUNTS == 0 && account_count != 0) {
            return Err(invalid("header", 0, "flags"));
        }
        if u16::from_le(header.shard_id) != config.shard_id {
            return Err(SnapshotError::ConfigMismatch("shard id"));
        }
        if symbol_count as usize != instruments.len() {
            return Err(SnapshotError::ConfigMismatch("number of instruments"));
        }
        if order_count > config.orders_max || conditional_count > config.orders_max {
            return Err(SnapshotError::ConfigMismatch("more open orders than orders_max"));
        }
        if (flags & FLAG_ACCOUNTS != 0) != ledger.is_exclusive() {
            return Err(SnapshotError::ConfigMismatch("accounts are included exactly when the ledger is exclusive"));
        }
        let order_counter = u64::from_le(header.order_counter);
        if order_counter > ORDER_COUNTER_MASK {
            return Err(invalid("header", 0, "order_counter"));
        }

        let mut engine = Engine::<B, L>::with_ledger(config, instruments, ledger);
        engine.last_seq = u64::from_le(header.last_seq);
        engine.order_counter = order_counter;
        engine.last_trade_id = u64::from_le(header.last_trade_id);
        engine.last_timestamp_ns = i64::from_le(header.last_timestamp_ns);
        engine.now_ns = engine.last_timestamp_ns;

        for index in 0..symbol_count as usize {
            let (owned, halted, reference_ticks, last_trade_ticks, market) =
                reader.take::<SymbolRecord>()?.decode(index)?;
            let state = &mut engine.symbols[index];
            if owned != state.owned {
                return Err(SnapshotError::ConfigMismatch("owned symbols"));
            }
            if !owned && (halted || reference_ticks != 0 || last_trade_ticks != 0 || market != MarketState::default()) {
                return Err(inconsistent(format!("symbol {index} is not owned but has state")));
            }
            state.halted = halted;
            state.reference_ticks = reference_ticks;
            state.last_trade_ticks = last_trade_ticks;
            state.market = market;
        }

        let mut orders = Vec::with_capacity(order_count as usize);
        for index in 0..order_count as usize {
            orders.push(reader.take::<OrderRecord>()?.decode(index)?);
        }
        let mut positions = Vec::with_capacity(position_count as usize);
        for index in 0..position_count as usize {
            let (key, position) = reader.take::<PositionRecord>()?.decode(index)?;
            if positions.last().is_some_and(|(previous, _)| *previous >= key) {
                return Err(SnapshotError::NotCanonical("position"));
            }
            positions.push((key, position));
        }
        let accounts = read_accounts(&mut reader, account_count)?;
        if engine.ledger.is_exclusive() {
            restore_accounts(&mut engine.ledger, &accounts)?;
        }

        for (key, position) in positions {
            engine.check_portfolio_and_symbol("position", key.0, key.1)?;
            engine.positions.insert(key, position);
        }
        engine.restore_orders(&orders)?;
        let mut conditionals = Vec::with_capacity(conditional_count as usize);
        for index in 0..conditional_count as usize {
            let record: ConditionalRecord = reader.take()?;
            let c = record.order.decode().map_err(|(field, _)| invalid("conditional", index, field))?;
            if conditionals
                .last()
                .is_some_and(|(previous, _): &(crate::event::AcceptedConditional, i64)| previous.order_id >= c.order_id)
            {
                return Err(SnapshotError::NotCanonical("conditional"));
            }
            conditionals.push((c, i64::from_le(record.best_ticks)));
        }
        engine.restore_conditionals(&conditionals)?;
        for (key, position) in &engine.positions {
            if position.is_flat_and_idle() && position.realized_pnl_micros == 0 && position.fees_micros == 0 {
                return Err(inconsistent(format!("position {key:?} is empty and would not be kept")));
            }
        }
        engine.verify_invariants().map_err(SnapshotError::Inconsistent)?;
        Ok(engine)
    }

    /// That a record names an owned symbol and a portfolio with an account.
    fn check_portfolio_and_symbol(
        &self,
        what: &str,
        portfolio_id: PortfolioId,
        symbol_id: SymbolId,
    ) -> Result<(), SnapshotError> {
        if !self.symbols.get(usize::from(symbol_id)).is_some_and(|s| s.owned) {
            return Err(inconsistent(format!("{what} in symbol {symbol_id}, which the shard does not own")));
        }
        if portfolio_id as usize >= PORTFOLIOS_MAX || self.ledger.account(portfolio_id).is_none() {
            return Err(inconsistent(format!("{what} of portfolio {portfolio_id}, which has no account")));
        }
        Ok(())
    }

    /// Checks the waiting conditional orders for what their indexes assert, then files them and
    /// rebuilds the entry-to-exits links.
    fn restore_conditionals(
        &mut self,
        conditionals: &[(crate::event::AcceptedConditional, i64)],
    ) -> Result<(), SnapshotError> {
        let shard_id = u64::from(self.config.shard_id);
        let by_id: std::collections::BTreeMap<u64, &crate::event::AcceptedConditional> =
            conditionals.iter().map(|(c, _)| (c.order_id, c)).collect();
        for &(c, best_ticks) in conditionals {
            let id = c.order_id;
            self.check_portfolio_and_symbol("conditional order", c.portfolio_id, c.symbol_id)?;
            let counter = id & ORDER_COUNTER_MASK;
            if id >> ORDER_ID_SHARD_SHIFT != shard_id || counter == 0 || counter > self.order_counter {
                return Err(inconsistent(format!("order id {id} is not one this shard has issued")));
            }
            if self.orders.find(id).is_some() || c.qty_lots < 0 || c.oco_order_id == id || c.parent_order_id == id {
                return Err(inconsistent(format!("conditional order {id} is malformed")));
            }
            let trailing = c.trigger == crate::types::TriggerKind::TrailingStop;
            let trail_ok = if trailing {
                best_ticks > 0
                    && c.trigger_price_ticks > 0
                    && ((c.trail_ticks > 0 && c.trail_bps == 0)
                        || (c.trail_ticks == 0 && (1..10_000).contains(&c.trail_bps)))
            } else {
                best_ticks == 0 && c.trail_ticks == 0 && c.trail_bps == 0
            };
            if !trail_ok {
                return Err(inconsistent(format!("conditional order {id} has an invalid trail")));
            }
            let delayed = c.trigger == crate::types::TriggerKind::Delayed;
            if !delayed && (c.execute_at_ns != 0 || c.post_only) {
                return Err(inconsistent(format!("conditional order {id} has fields of a delayed order")));
            }
            // `insert` files an OCO link both ways: the records must already agree.
            if c.oco_order_id != 0 && by_id.get(&c.oco_order_id).is_none_or(|peer| peer.oco_order_id != id) {
                return Err(inconsistent(format!("OCO link of order {id} is one-sided")));
            }
            if !c.client_order_id.is_none()
                && self.client_order_ids.insert((c.portfolio_id, c.client_order_id), id).is_some()
            {
                return Err(inconsistent(format!("client order id of order {id} is used twice")));
            }
            if c.expire_at_ns != i64::MAX {
                self.expiries.push(Reverse((c.expire_at_ns, id)));
            }
            // Links are filed both ways by `insert`; the one-sided case is caught by the invariants.
            let mut unlinked = c;
            unlinked.parent_order_id = 0;
            self.conditionals.insert(unlinked, best_ticks);
        }
        for &(c, _) in conditionals {
            self.conditionals.set_parent(c.order_id, c.parent_order_id);
        }
        let (orders, conditionals) = (&self.orders, &self.conditionals);
        let live: std::collections::BTreeSet<u64> = conditionals
            .iter()
            .map(|c| c.order_id)
            .chain(conditionals.iter().map(|c| c.parent_order_id).filter(|&id| orders.find(id).is_some()))
            .collect();
        self.conditionals.rebuild_children(|id| live.contains(&id)).map_err(inconsistent)
    }

    /// Checks the open orders (in snapshot order) for everything the store and books assert, then
    /// inserts them and rebuilds every index that derives from them.
    fn restore_orders(&mut self, orders: &[Order]) -> Result<(), SnapshotError> {
        let shard_id = u64::from(self.config.shard_id);
        // (symbol, side, price, lots so far at that price) of the previous order.
        let mut previous: Option<(SymbolId, Side, i64, i64)> = None;
        let mut by_id: Vec<(u64, Handle)> = Vec::with_capacity(orders.len());
        for o in orders {
            let id = o.order_id;
            self.check_portfolio_and_symbol("order", o.portfolio_id, o.symbol_id)?;
            let counter = id & ORDER_COUNTER_MASK;
            if id >> ORDER_ID_SHARD_SHIFT != shard_id || counter == 0 || counter > self.order_counter {
                return Err(inconsistent(format!("order id {id} is not one this shard has issued")));
            }
            if o.open_lots <= 0 || o.filled_lots < 0 || o.kind != OrderKind::Limit || !o.time_in_force.rests() {
                return Err(inconsistent(format!("order {id} cannot rest")));
            }
            if o.time_in_force == TimeInForce::Gtc && o.expire_at_ns != i64::MAX {
                return Err(inconsistent(format!("GTC order {id} has an expiry")));
            }
            let level_lots = match previous {
                Some((symbol_id, side, price_ticks, lots))
                    if (symbol_id, side, price_ticks) == (o.symbol_id, o.side, o.price_ticks) =>
                {
                    lots.checked_add(o.open_lots)
                        .ok_or_else(|| inconsistent(format!("level of order {id} holds too many lots")))?
                }
                Some((symbol_id, side, price_ticks, _)) => {
                    let in_order = match (symbol_id, side_code(side)).cmp(&(o.symbol_id, side_code(o.side))) {
                        std::cmp::Ordering::Less => true,
                        std::cmp::Ordering::Greater => false,
                        // Priority order: bids best (highest) first, asks lowest first.
                        std::cmp::Ordering::Equal => match side {
                            Side::Buy => o.price_ticks < price_ticks,
                            Side::Sell => o.price_ticks > price_ticks,
                        },
                    };
                    if !in_order {
                        return Err(SnapshotError::NotCanonical("order"));
                    }
                    o.open_lots
                }
                None => o.open_lots,
            };
            previous = Some((o.symbol_id, o.side, o.price_ticks, level_lots));
            if self.orders.find(id).is_some() {
                return Err(inconsistent(format!("order {id} appears twice")));
            }
            if !o.client_order_id.is_none()
                && self.client_order_ids.insert((o.portfolio_id, o.client_order_id), id).is_some()
            {
                return Err(inconsistent(format!("client order id of order {id} is used twice")));
            }
            let position = self.positions.get_mut(&(o.portfolio_id, o.symbol_id)).ok_or_else(|| {
                inconsistent(format!("order {id} has no position record for its portfolio and symbol"))
            })?;
            let open = match o.side {
                Side::Buy => &mut position.open_buy_lots,
                Side::Sell => &mut position.open_sell_lots,
            };
            *open = open.checked_add(o.open_lots).ok_or_else(|| inconsistent(format!("open lots of order {id}")))?;
            position.reserved_lots = position
                .reserved_lots
                .checked_add(o.reserved_lots)
                .ok_or_else(|| inconsistent(format!("reserved lots of order {id}")))?;

            let handle = self.orders.insert(*o);
            by_id.push((id, handle));
            self.books[usize::from(o.symbol_id)].insert(handle, o.side, o.price_ticks, o.open_lots);
            if o.expire_at_ns != i64::MAX {
                self.expiries.push(Reverse((o.expire_at_ns, id)));
            }
        }

        // Each portfolio's list runs newest first, as `evolve_accepted` pushes at its head; order ids
        // rise with acceptance, so pushing in ascending id order rebuilds it.
        by_id.sort_unstable();
        for (_, handle) in by_id {
            let portfolio_index = self.orders.get(handle).portfolio_id as usize;
            if self.portfolio_heads.len() <= portfolio_index {
                self.portfolio_heads.resize(portfolio_index + 1, NIL);
            }
            let head = self.portfolio_heads[portfolio_index];
            self.orders.get_mut(handle).portfolio_next = head;
            if head != NIL {
                self.orders.get_mut(head).portfolio_prev = handle;
            }
            self.portfolio_heads[portfolio_index] = handle;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::{FastBook, ReferenceBook};
    use crate::command::{Command, CommandBody, NewOrder};
    use crate::event::{CancelReason, Event, EventBody};
    use crate::ledger::LocalLedger;
    use crate::types::{SelfTradePolicy, NANOS_PER_SECOND};

    const START_NS: i64 = 1_767_623_400 * NANOS_PER_SECOND;
    const DOLLAR: i64 = 1_000_000;

    fn config() -> EngineConfig {
        EngineConfig { shard_id: 3, orders_max: 256, ..EngineConfig::default() }
    }

    fn symbol(name: &str) -> SymbolId {
        InstrumentTable::default_table().by_symbol(name).expect("default instrument").symbol_id
    }

    struct Driver<B: OrderBook> {
        engine: Engine<B, LocalLedger>,
        now_ns: i64,
    }

    impl<B: OrderBook> Driver<B> {
        fn new() -> Driver<B> {
            Driver {
                engine: Engine::with_ledger(config(), InstrumentTable::default_table(), LocalLedger::new()),
                now_ns: START_NS,
            }
        }

        fn run(&mut self, body: CommandBody) -> Vec<Event> {
            self.now_ns += 1_000;
            let mut events = Vec::new();
            self.engine.apply(&Command { timestamp_ns: self.now_ns, body }, &mut events);
            self.engine.check_invariants();
            events
        }
    }

    fn limit(portfolio_id: PortfolioId, name: &str, side: Side, price_ticks: i64, qty_lots: i64) -> CommandBody {
        CommandBody::NewOrder(NewOrder::limit(portfolio_id, symbol(name), side, price_ticks, qty_lots))
    }

    /// A state with a bit of everything: several orders queued at one level, orders of one portfolio
    /// in several symbols, client ids, DAY and GTD orders, a partial fill, a short with margin, a
    /// halted symbol.
    fn busy() -> Driver<FastBook> {
        let mut d = Driver::new();
        for portfolio_id in 0..4 {
            d.run(CommandBody::CreatePortfolio { portfolio_id, cash_micros: 1_000_000 * DOLLAR });
        }
        d.run(CommandBody::SetReferencePrice { symbol_id: symbol("AAPL"), price_ticks: 15_000 });
        d.run(CommandBody::SetReferencePrice { symbol_id: symbol("MSFT"), price_ticks: 40_000 });
        for (portfolio_id, qty_lots) in [(2, 10), (0, 5), (1, 7), (2, 3)] {
            d.run(limit(portfolio_id, "AAPL", Side::Sell, 15_010, qty_lots));
        }
        d.run(limit(1, "AAPL", Side::Sell, 15_020, 4));
        d.run(limit(3, "AAPL", Side::Buy, 14_990, 6));
        d.run(limit(0, "AAPL", Side::Buy, 14_990, 2));
        let mut order = NewOrder::limit(0, symbol("AAPL"), Side::Buy, 14_980, 8);
        order.client_order_id = ClientOrderId::from_text("day-1").expect("ascii");
        d.run(CommandBody::NewOrder(order.with_tif(TimeInForce::Day)));
        let mut order = NewOrder::limit(1, symbol("MSFT"), Side::Buy, 39_900, 3);
        order.client_order_id = ClientOrderId::from_text("gtd-1").expect("ascii");
        order.expire_at_ns = d.now_ns + 3_600 * NANOS_PER_SECOND;
        order.self_trade_policy = SelfTradePolicy::CancelBoth;
        d.run(CommandBody::NewOrder(order.with_tif(TimeInForce::Gtd)));
        // A partial fill of the first order at 15010 and a short sale by portfolio 3.
        d.run(limit(3, "AAPL", Side::Buy, 15_010, 4));
        d.run(limit(3, "MSFT", Side::Sell, 40_100, 5));
        d.run(limit(2, "MSFT", Side::Buy, 40_100, 2));
        d.run(CommandBody::SetHalted { symbol_id: symbol("NVDA"), halted: true });
        d
    }

    /// What comes next: a sweep of the 15010 level (FIFO), a mass cancel (portfolio list order), a
    /// duplicate client id, and a jump in time (expiry).
    fn follow_up() -> Vec<CommandBody> {
        let mut duplicate = NewOrder::limit(0, symbol("AAPL"), Side::Buy, 14_970, 1);
        duplicate.client_order_id = ClientOrderId::from_text("day-1").expect("ascii");
        vec![
            CommandBody::NewOrder(NewOrder::market(3, symbol("AAPL"), Side::Buy, 20)),
            CommandBody::NewOrder(duplicate),
            CommandBody::MassCancel { portfolio_id: 1, symbol_id: None },
            limit(2, "MSFT", Side::Sell, 39_900, 1),
            CommandBody::AdvanceTime,
        ]
    }

    fn restore<B: OrderBook>(bytes: &[u8]) -> Result<Engine<B, LocalLedger>, SnapshotError> {
        Engine::from_snapshot(config(), InstrumentTable::default_table(), LocalLedger::new(), bytes)
    }

    /// Runs the follow-up on both engines, comparing events and hashes; returns the events.
    fn same_future<B: OrderBook>(original: &mut Driver<FastBook>, restored: Engine<B, LocalLedger>) -> Vec<Event> {
        let mut restored = Driver { engine: restored, now_ns: original.now_ns };
        let commands = follow_up();
        let mut all = Vec::new();
        for (index, body) in commands.iter().enumerate() {
            if index == commands.len() - 1 {
                // Hours later: the DAY and GTD orders expire.
                original.now_ns += 10 * 3_600 * NANOS_PER_SECOND;
                restored.now_ns = original.now_ns;
            }
            let expected = original.run(*body);
            assert_eq!(restored.run(*body), expected, "command {index}");
            assert_eq!(restored.engine.state_hash(), original.engine.state_hash());
            all.extend(expected);
        }
        all
    }

    #[test]
    fn a_snapshot_restores_the_same_state_and_the_same_future() {
        let mut original = busy();
        let bytes = original.engine.snapshot_bytes();
        let restored: Engine<FastBook, LocalLedger> = restore(&bytes).expect("restores");
        restored.check_invariants();
        assert_eq!(restored.state_hash(), original.engine.state_hash());
        assert_eq!(restored.snapshot_bytes(), bytes);
        assert_eq!(restored.last_seq(), original.engine.last_seq());
        // The layout is not in the snapshot: the reference book restores it too.
        let reference: Engine<ReferenceBook, LocalLedger> = restore(&bytes).expect("restores");
        assert_eq!(reference.state_hash(), original.engine.state_hash());
        assert_eq!(reference.snapshot_bytes(), bytes);

        let mut twin = busy();
        same_future(&mut twin, reference);
        let events = same_future(&mut original, restored);
        // The follow-up did reach what the snapshot had to restore: the queue at 15010, the
        // portfolio's order list, the client id index and the expiry heap.
        let makers: Vec<_> = events
            .iter()
            .filter_map(|e| match e.body {
                EventBody::Fill(f) => Some((f.maker_portfolio_id, f.qty_lots)),
                _ => None,
            })
            .collect();
        assert_eq!(&makers[..4], &[(2, 6), (0, 5), (1, 7), (2, 2)]);
        let count = |wanted: CancelReason| {
            events
                .iter()
                .filter(|e| matches!(e.body, EventBody::OrderCancelled { reason, .. } if reason == wanted))
                .count()
        };
        assert_eq!(count(CancelReason::User), 2);
        assert!(count(CancelReason::Expired) >= 1);
        assert!(events.iter().any(|e| matches!(
            e.body,
            EventBody::Rejected { reason: crate::event::RejectReason::DuplicateClientOrderId, .. }
        )));
    }

    #[test]
    fn an_empty_engine_round_trips() {
        let engine = Driver::<FastBook>::new().engine;
        let bytes = engine.snapshot_bytes();
        let restored: Engine<FastBook, LocalLedger> = restore(&bytes).expect("restores");
        assert_eq!(restored.state_hash(), engine.state_hash());
        assert_eq!(restored.snapshot_bytes(), bytes);
    }

    #[test]
    fn a_mid_command_state_is_refused() {
        // Replaying a crossing order's events one at a time passes through a crossed book.
        let mut d = busy();
        let events = d.run(limit(0, "AAPL", Side::Buy, 15_020, 1));
        assert!(matches!(events[0].body, EventBody::OrderAccepted(_)) && events.len() > 1);
        let mut replayed: Engine<FastBook, LocalLedger> = restore(&busy().engine.snapshot_bytes()).expect("restores");
        replayed.replay(&events[0]);
        assert!(matches!(restore::<FastBook>(&replayed.snapshot_bytes()), Err(SnapshotError::Inconsistent(_))));
        for event in &events[1..] {
            replayed.replay(event);
        }
        assert_eq!(
            restore::<FastBook>(&replayed.snapshot_bytes()).expect("restores").state_hash(),
            d.engine.state_hash()
        );
    }

    #[test]
    fn a_snapshot_for_another_engine_is_refused() {
        let bytes = busy().engine.snapshot_bytes();
        let instruments = InstrumentTable::default_table();
        let with = |config: EngineConfig| {
            Engine::<FastBook, LocalLedger>::from_snapshot(config, instruments.clone(), LocalLedger::new(), &bytes)
                .err()
        };
        assert_eq!(with(EngineConfig { shard_id: 4, ..config() }), Some(SnapshotError::ConfigMismatch("shard id")));
        assert_eq!(
            with(EngineConfig { orders_max: 3, ..config() }),
            Some(SnapshotError::ConfigMismatch("more open orders than orders_max"))
        );
        assert_eq!(
            with(EngineConfig { owned_symbols: Some(vec![symbol("AAPL"), symbol("MSFT")]), ..config() }),
            Some(SnapshotError::ConfigMismatch("owned symbols"))
        );
        let mut ledger = LocalLedger::new();
        ledger.create(9, 1, RiskLimits::default());
        assert_eq!(
            Engine::<FastBook, LocalLedger>::from_snapshot(config(), instruments.clone(), ledger, &bytes).err(),
            Some(SnapshotError::LedgerNotEmpty)
        );
    }

    #[test]
    fn truncated_or_altered_snapshots_are_refused_without_panicking() {
        let engine = busy().engine;
        let bytes = engine.snapshot_bytes();
        for length in 0..bytes.len() {
            assert!(restore::<FastBook>(&bytes[..length]).is_err(), "a snapshot cut to {length} bytes");
        }
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0; 8]);
        assert!(matches!(restore::<FastBook>(&longer), Err(SnapshotError::WrongLength { .. })));

        let mut accepted = 0;
        for at in 0..bytes.len() {
            for value in [0u8, 1, 2, 0x7F, 0xFF, bytes[at].wrapping_add(1), bytes[at].wrapping_sub(1)] {
                if value == bytes[at] {
                    continue;
                }
                let mut altered = bytes.clone();
                altered[at] = value;
                if let Ok(restored) = restore::<FastBook>(&altered) {
                    restored.check_invariants();
                    assert_eq!(restored.snapshot_bytes(), altered);
                    accepted += 1;
                }
            }
        }
        // Counters, prices, client ids and P&L history are free to change; those snapshots restore.
        assert!(accepted > 0);
    }

    #[test]
    fn a_tampered_order_is_refused() {
        let engine = busy().engine;
        let bytes = engine.snapshot_bytes();
        let orders_at = size_of::<EngineHeader>() + engine.instruments().len() * size_of::<SymbolRecord>();
        let record = |bytes: &[u8], index: usize| -> OrderRecord {
            let at = orders_at + index * size_of::<OrderRecord>();
            bytemuck::pod_read_unaligned(&bytes[at..at + size_of::<OrderRecord>()])
        };
        let write = |bytes: &mut Vec<u8>, index: usize, record: &OrderRecord| {
            let at = orders_at + index * size_of::<OrderRecord>();
            bytes[at..at + size_of::<OrderRecord>()].copy_from_slice(bytemuck::bytes_of(record));
        };
        let refused = |edit: &dyn Fn(&mut OrderRecord)| {
            let mut altered = bytes.clone();
            let mut first = record(&altered, 0);
            edit(&mut first);
            write(&mut altered, 0, &first);
            restore::<FastBook>(&altered).err()
        };
        assert!(matches!(refused(&|r| r.reserved_cash_micros += 1), Some(SnapshotError::Inconsistent(_))));
        assert!(matches!(refused(&|r| r.open_lots = 0), Some(SnapshotError::Inconsistent(_))));
        assert!(matches!(refused(&|r| r.order_id += 1 << 40), Some(SnapshotError::Inconsistent(_))));
        assert!(matches!(refused(&|r| r.side = 2), Some(SnapshotError::NotCanonical("order"))));
        assert!(matches!(refused(&|r| r.side = 3), Some(SnapshotError::InvalidField { field: "side", .. })));
        assert!(matches!(refused(&|r| r.post_only = 2), Some(SnapshotError::InvalidField { .. })));
        assert!(matches!(refused(&|r| r._pad[4] = 1), Some(SnapshotError::InvalidField { field: "padding", .. })));
        // Two copies of one order.
        let mut altered = bytes.clone();
        let first = record(&altered, 0);
        let second = record(&altered, 1);
        assert_eq!(
            (first.symbol_id, first.side, first.price_ticks),
            (second.symbol_id, second.side, second.price_ticks)
        );
        write(&mut altered, 1, &first);
        assert!(matches!(restore::<FastBook>(&altered), Err(SnapshotError::Inconsistent(_))));
    }

    #[test]
    fn the_ledger_snapshot_round_trips() {
        let engine = busy().engine;
        let bytes = ledger_snapshot_bytes(engine.ledger());
        let mut ledger = LocalLedger::new();
        restore_ledger(&mut ledger, &bytes).expect("restores");
        let accounts = |ledger: &LocalLedger| ledger.iter().map(|(id, a)| (id, *a)).collect::<Vec<_>>();
        assert_eq!(accounts(&ledger), accounts(engine.ledger()));
        assert_eq!(ledger_snapshot_bytes(&ledger), bytes);
        assert_eq!(restore_ledger(&mut ledger, &bytes), Err(SnapshotError::LedgerNotEmpty));
        for length in 0..bytes.len() {
            assert!(restore_ledger(&mut LocalLedger::new(), &bytes[..length]).is_err());
        }
        // An engine snapshot is not a ledger snapshot.
        assert_eq!(restore_ledger(&mut LocalLedger::new(), &engine.snapshot_bytes()), Err(SnapshotError::BadMagic));
        assert_eq!(restore::<FastBook>(&bytes).err(), Some(SnapshotError::BadMagic));
    }

    #[test]
    fn checked_required_cash_agrees_with_required_cash() {
        use crate::engine::{checked_required_cash, required_cash};
        let instruments = InstrumentTable::default_table();
        for instrument in instruments.iter() {
            for price_ticks in [1, 7, 15_000, 6_000_001] {
                for open_lots in [0, 1, 3, 1_000, 250_000] {
                    for reserved_lots in [0, 1, open_lots / 2, open_lots] {
                        for side in [Side::Buy, Side::Sell] {
                            let reserved_lots = if side == Side::Buy { 0 } else { reserved_lots.min(open_lots) };
                            assert_eq!(
                                checked_required_cash(instrument, side, price_ticks, open_lots, reserved_lots),
                                Some(required_cash(instrument, side, price_ticks, open_lots, reserved_lots))
                            );
                        }
                    }
                }
            }
        }
        let instrument = instruments.get(0).expect("an instrument");
        assert_eq!(checked_required_cash(instrument, Side::Buy, i64::MAX, i64::MAX, 0), None);
        assert_eq!(checked_required_cash(instrument, Side::Sell, 100, 1, 2), None);
        assert_eq!(checked_required_cash(instrument, Side::Buy, 0, 1, 0), None);
    }
}
