//! Engine events to execution reports: which portfolios an event concerns and what each is told.
//!
//! One event gives at most two reports (a fill: maker and taker). Reports carry what the event
//! carries: a cancel names the order and the quantity removed but not its side or client order id,
//! which the client knows from the order's `accepted` report. A conditional order's acceptance is
//! an `accepted` report flagged `WAITING` (it is off-book); when it fires, a `triggered` report and
//! then a plain `accepted` follow under the same order id. Events that concern no order
//! (portfolio creation, cash, halts, reference prices) give none.

use super::protocol::{order_kind_code, report_flags, report_type, side_code, time_in_force_code, ExecutionReport};
use simex_engine::{AcceptedConditional, AcceptedOrder, CancelReason, Event, EventBody, PortfolioId};

/// `ExecutionReport::liquidity` codes.
pub const LIQUIDITY_MAKER: u8 = 1;
pub const LIQUIDITY_TAKER: u8 = 2;

/// Calls `emit` with each portfolio the event concerns and its report. `report_seq` and
/// `request_id` are left 0 for the caller; `taker` tells a fill's taker report from its maker's.
pub fn reports_of(event: &Event, shard: u16, mut emit: impl FnMut(PortfolioId, ExecutionReport, bool)) {
    let base = ExecutionReport { engine_seq: event.seq, timestamp_ns: event.timestamp_ns, shard, ..Default::default() };
    match event.body {
        // A book order, or a conditional (or delayed) one accepted to wait off-book.
        EventBody::OrderAccepted(AcceptedOrder {
            order_id,
            portfolio_id,
            symbol_id,
            side,
            kind,
            time_in_force,
            price_ticks,
            qty_lots,
            client_order_id,
            ..
        })
        | EventBody::ConditionalAccepted(AcceptedConditional {
            order_id,
            portfolio_id,
            symbol_id,
            side,
            kind,
            time_in_force,
            price_ticks,
            qty_lots,
            client_order_id,
            ..
        }) => {
            let waiting = matches!(event.body, EventBody::ConditionalAccepted(_));
            let report = ExecutionReport {
                report_type: report_type::ACCEPTED,
                flags: if waiting { report_flags::WAITING } else { 0 },
                order_id,
                portfolio_id,
                symbol_id,
                side: side_code(side),
                order_kind: order_kind_code(kind),
                time_in_force: time_in_force_code(time_in_force),
                price_ticks,
                qty_lots,
                client_order_id: client_order_id.0,
                ..base
            };
            emit(portfolio_id, report, true);
        }
        EventBody::Rejected { portfolio_id, order_id, client_order_id, reason } => {
            let report = ExecutionReport {
                report_type: report_type::REJECTED,
                order_id,
                portfolio_id,
                client_order_id: client_order_id.0,
                reason: reason.code(),
                ..base
            };
            emit(portfolio_id, report, true);
        }
        EventBody::Fill(fill) => {
            let trade = ExecutionReport {
                report_type: report_type::FILL,
                trade_id: fill.trade_id,
                symbol_id: fill.symbol_id,
                price_ticks: fill.price_ticks,
                qty_lots: fill.qty_lots,
                notional_micros: fill.notional_micros,
                ..base
            };
            let maker = ExecutionReport {
                order_id: fill.maker_order_id,
                portfolio_id: fill.maker_portfolio_id,
                side: side_code(fill.taker_side.opposite()),
                fee_micros: fill.maker_fee_micros,
                liquidity: LIQUIDITY_MAKER,
                ..trade
            };
            let taker = ExecutionReport {
                order_id: fill.taker_order_id,
                portfolio_id: fill.taker_portfolio_id,
                side: side_code(fill.taker_side),
                fee_micros: fill.taker_fee_micros,
                liquidity: LIQUIDITY_TAKER,
                ..trade
            };
            // The simulated market (no portfolio) gets no report.
            if fill.maker_portfolio_id != simex_engine::NO_PORTFOLIO {
                emit(fill.maker_portfolio_id, maker, false);
            }
            emit(fill.taker_portfolio_id, taker, true);
        }
        EventBody::OrderCancelled { order_id, portfolio_id, symbol_id, qty_lots, reason } => {
            let kind = if reason == CancelReason::Expired { report_type::EXPIRED } else { report_type::CANCELLED };
            let report = ExecutionReport {
                report_type: kind,
                order_id,
                portfolio_id,
                symbol_id,
                qty_lots,
                reason: reason.code(),
                ..base
            };
            emit(portfolio_id, report, true);
        }
        EventBody::OrderReplaced { order_id, portfolio_id, symbol_id, price_ticks, qty_lots, .. } => {
            let report = ExecutionReport {
                report_type: report_type::REPLACED,
                order_id,
                portfolio_id,
                symbol_id,
                price_ticks,
                qty_lots,
                ..base
            };
            emit(portfolio_id, report, true);
        }
        EventBody::PortfolioCreated { .. }
        | EventBody::CashAdjusted { .. }
        | EventBody::RiskLimitsSet { .. }
        | EventBody::ReferencePriceSet { .. }
        | EventBody::HaltedSet { .. }
        | EventBody::ReferenceQuoteSet { .. }
        | EventBody::ReferenceTradePrinted { .. } => {}
        EventBody::OrderTriggered { order_id, portfolio_id, symbol_id, price_ticks, qty_lots } => {
            let report = ExecutionReport {
                report_type: report_type::TRIGGERED,
                order_id,
                portfolio_id,
                symbol_id,
                price_ticks,
                qty_lots,
                ..base
            };
            emit(portfolio_id, report, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simex_engine::{Fill, Side};

    #[test]
    fn a_fill_reports_to_maker_and_taker_with_their_own_fees_and_sides() {
        let fill = Fill {
            trade_id: 5,
            symbol_id: 2,
            maker_order_id: 10,
            maker_portfolio_id: 1,
            taker_order_id: 11,
            taker_portfolio_id: 2,
            taker_side: Side::Buy,
            price_ticks: 100,
            qty_lots: 3,
            notional_micros: 3_000_000,
            maker_fee_micros: 10,
            taker_fee_micros: 20,
        };
        let event = Event { seq: 9, timestamp_ns: 1, body: EventBody::Fill(fill) };
        let mut reports = Vec::new();
        reports_of(&event, 0, |portfolio, report, taker| reports.push((portfolio, report, taker)));
        assert_eq!(reports.len(), 2);
        let (maker_portfolio, maker, maker_is_taker) = reports[0];
        assert_eq!((maker_portfolio, maker.order_id, maker.fee_micros, maker_is_taker), (1, 10, 10, false));
        assert_eq!((maker.side, maker.liquidity), (super::super::protocol::side::SELL, LIQUIDITY_MAKER));
        let (taker_portfolio, taker, taker_is_taker) = reports[1];
        assert_eq!((taker_portfolio, taker.order_id, taker.fee_micros, taker_is_taker), (2, 11, 20, true));
        assert_eq!((taker.engine_seq, taker.trade_id, taker.qty_lots), (9, 5, 3));
    }

    #[test]
    fn an_expiry_is_its_own_report_type() {
        let body = EventBody::OrderCancelled {
            order_id: 1,
            portfolio_id: 1,
            symbol_id: 0,
            qty_lots: 4,
            reason: CancelReason::Expired,
        };
        let mut kinds = Vec::new();
        reports_of(&Event { seq: 1, timestamp_ns: 0, body }, 0, |_, report, _| kinds.push(report.report_type));
        assert_eq!(kinds, vec![report_type::EXPIRED]);
    }
}
