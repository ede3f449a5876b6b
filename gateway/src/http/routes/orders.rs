//! Orders and trades: place one, place a batch, list, get, cancel, replace.
//!
//! A placed order may be a book order, a conditional one (it answers `waiting_trigger`) or a
//! bracket (its answer names the exits' ids too). Which rejection among a command's events is the
//! command's own is decided by order id: trades a command makes may fire other waiting orders,
//! whose own refusals travel in the same events.

use super::{blocking, owned_portfolio, path, rejection};
use crate::bridge::Outcome;
use crate::history::{HistoryStore, OrderFilter, OrderRecord, OrderState, TradeRecord};
use crate::http::error::ApiError;
use crate::http::extract::{parse_json, ApiJson, ApiQuery, Caller};
use crate::http::numbers::{self, RawNumber};
use crate::http::wire::{FillJson, OrderJson, TradeRequest};
use crate::http::{AppState, BATCH_ORDERS_MAX};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use simex_engine::{CommandBody, Event, EventBody, OrderId, OrderKind, RejectReason, TriggerKind};
use std::sync::atomic::Ordering;
use std::sync::Arc;

const TRADES_PAGE_MAX: usize = 1000;

/// The order a new-order command's events accepted (to the book or waiting for its trigger), and
/// its fills as taker. The command's own order is the first accepted: orders its trades fire come
/// after it.
fn accepted(events: &[Event]) -> Option<(OrderId, Vec<TradeRecord>)> {
    let order_id = events.iter().find_map(|e| match e.body {
        EventBody::OrderAccepted(order) => Some(order.order_id),
        EventBody::ConditionalAccepted(order) => Some(order.order_id),
        _ => None,
    })?;
    let fills = events
        .iter()
        .filter_map(|e| match e.body {
            EventBody::Fill(fill) if fill.taker_order_id == order_id => Some(TradeRecord {
                trade_id: fill.trade_id,
                order_id,
                symbol_id: fill.symbol_id,
                side: fill.taker_side,
                price_ticks: fill.price_ticks,
                qty_lots: fill.qty_lots,
                fee_micros: fill.taker_fee_micros,
                notional_micros: fill.notional_micros,
                timestamp_ns: e.timestamp_ns,
                // Order ids carry their shard.
                shard: (order_id >> simex_engine::engine::ORDER_ID_SHARD_SHIFT) as u16,
                seq: e.seq,
            }),
            _ => None,
        })
        .collect();
    Some((order_id, fills))
}

fn order_status(state: &AppState, order_id: OrderId) -> &'static str {
    state.model.read().order(order_id).map_or("accepted", |o| o.state.as_str())
}

/// The ids of a bracket's exits, as fields of the answer: `take_profit_order_id`, `stop_loss_order_id`.
fn exits(events: &[Event], entry_id: OrderId, answer: &mut Value) {
    for event in events {
        if let EventBody::ConditionalAccepted(exit) = event.body {
            if exit.parent_order_id != entry_id {
                continue;
            }
            let field = match exit.trigger {
                TriggerKind::TakeProfit => "take_profit_order_id",
                _ => "stop_loss_order_id",
            };
            answer[field] = json!(exit.order_id);
        }
    }
}

pub async fn trade(
    State(state): State<Arc<AppState>>,
    Caller(user_id): Caller,
    id: Result<Path<String>, PathRejection>,
    ApiJson(request): ApiJson<TradeRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let entry = owned_portfolio(&state, user_id, &path(id)?)?;
    let command = request.to_command(entry.engine_portfolio_id, &state.instruments)?;
    state.metrics.orders.fetch_add(1, Ordering::Relaxed);
    let events = state.core.execute_one(command).await?;
    if let Some(reason) = rejection(&events, 0) {
        return Err(ApiError::from_reject(reason));
    }
    let (order_id, fills) =
        accepted(&events).ok_or_else(|| ApiError::internal("an order was neither accepted nor rejected"))?;
    let fills: Vec<_> = fills.iter().map(|f| FillJson::new(f, &state.instruments)).collect();
    let mut answer = json!({
        "order_id": order_id,
        "status": order_status(&state, order_id),
        "fill_count": fills.len(),
        "fills": fills,
    });
    exits(&events, order_id, &mut answer);
    Ok((StatusCode::CREATED, Json(answer)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    orders: Vec<Box<RawValue>>,
}

pub async fn batch(
    State(state): State<Arc<AppState>>,
    Caller(user_id): Caller,
    id: Result<Path<String>, PathRejection>,
    ApiJson(request): ApiJson<BatchRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let entry = owned_portfolio(&state, user_id, &path(id)?)?;
    if request.orders.len() > BATCH_ORDERS_MAX {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "batch_too_large",
            format!("a batch holds at most {BATCH_ORDERS_MAX} orders, not {}", request.orders.len()),
        ));
    }
    let mut rejections = Vec::new();
    let mut indices = Vec::new();
    let mut commands = Vec::new();
    for (index, raw) in request.orders.iter().enumerate() {
        let order = parse_json::<TradeRequest>(raw.get().as_bytes())
            .and_then(|r| r.to_command(entry.engine_portfolio_id, &state.instruments));
        match order {
            Ok(command) => {
                indices.push(index);
                commands.push(command);
            }
            Err(error) => rejections.push(json!({"index": index, "code": error.code, "message": error.message})),
        }
    }
    state.metrics.orders.fetch_add(commands.len() as u64, Ordering::Relaxed);
    let outcomes = if commands.is_empty() { Vec::new() } else { state.core.execute(commands).await? };
    let mut fills = Vec::new();
    let mut orders = Vec::new();
    for (index, outcome) in indices.into_iter().zip(outcomes) {
        let events = match outcome {
            Outcome::Done(events) => events,
            Outcome::Busy => {
                let error = ApiError::busy();
                rejections.push(json!({"index": index, "code": error.code, "message": error.message}));
                continue;
            }
        };
        if let Some(reason) = rejection(&events, 0) {
            let error = ApiError::from_reject(reason);
            rejections.push(json!({"index": index, "code": error.code, "message": error.message}));
            continue;
        }
        if let Some((order_id, order_fills)) = accepted(&events) {
            let mut placed = json!({"index": index, "order_id": order_id, "status": order_status(&state, order_id)});
            exits(&events, order_id, &mut placed);
            orders.push(placed);
            fills.extend(order_fills.iter().map(|f| FillJson::new(f, &state.instruments)));
        }
    }
    rejections.sort_by_key(|r| r["index"].as_u64());
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "fill_count": fills.len(),
            "rejection_count": rejections.len(),
            "fills": fills,
            "rejections": rejections,
            "orders": orders,
        })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    offset: Option<usize>,
}

pub async fn trades(
    State(state): State<Arc<AppState>>,
    Caller(user_id): Caller,
    id: Result<Path<String>, PathRejection>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let entry = owned_portfolio(&state, user_id, &path(id)?)?;
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > TRADES_PAGE_MAX {
        return Err(ApiError::invalid("invalid_query", format!("limit must be between 1 and {TRADES_PAGE_MAX}")));
    }
    let offset = query.offset.unwrap_or(0);
    let (history, engine_portfolio_id) = (state.history.clone(), entry.engine_portfolio_id);
    let page = blocking(move || history.trades(engine_portfolio_id, limit, offset)).await?;
    let trades: Vec<_> = page.trades.iter().map(|t| FillJson::new(t, &state.instruments)).collect();
    Ok(Json(json!({"trades": trades, "total": page.total, "limit": limit, "offset": offset})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersQuery {
    #[serde(default)]
    status: Option<String>,
}

pub async fn orders(
    State(state): State<Arc<AppState>>,
    Caller(user_id): Caller,
    id: Result<Path<String>, PathRejection>,
    ApiQuery(query): ApiQuery<OrdersQuery>,
) -> Result<Json<Value>, ApiError> {
    let entry = owned_portfolio(&state, user_id, &path(id)?)?;
    let filter = match query.status.as_deref() {
        None | Some("all") => OrderFilter::All,
        Some("open") => OrderFilter::Open,
        Some("closed") => OrderFilter::Closed,
        Some(other) => {
            return Err(ApiError::invalid(
                "invalid_status",
                format!("status must be open, closed or all, not {other:?}"),
            ))
        }
    };
    let (history, engine_portfolio_id) = (state.history.clone(), entry.engine_portfolio_id);
    let orders: Vec<_> = blocking(move || history.orders(engine_portfolio_id, filter))
        .await?
        .iter()
        .map(|o| OrderJson::new(o, &state.instruments))
        .collect();
    Ok(Json(json!({"orders": orders})))
}

/// The caller's order as the live read model has it, or 404: cancels and replaces decide on the
/// newest state, whichever store serves history.
fn owned_order(
    state: &AppState,
    user_id: u64,
    ids: (String, String),
) -> Result<(crate::auth::PortfolioEntry, OrderRecord), ApiError> {
    let entry = owned_portfolio(state, user_id, &ids.0)?;
    let order_id: OrderId = ids.1.parse().map_err(|_| ApiError::order_not_found())?;
    let order = state.model.order(entry.engine_portfolio_id, order_id).ok_or_else(ApiError::order_not_found)?;
    Ok((entry, order))
}

fn order_not_open(order: &OrderRecord) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "order_not_open", format!("the order is {}", order.state.as_str()))
}

pub async fn order(
    State(state): State<Arc<AppState>>,
    Caller(user_id): Caller,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<OrderJson>, ApiError> {
    let ids = path(ids)?;
    let entry = owned_portfolio(&state, user_id, &ids.0)?;
    let order_id: OrderId = ids.1.parse().map_err(|_| ApiError::order_not_found())?;
    let (history, engine_portfolio_id) = (state.history.clone(), entry.engine_portfolio_id);
    let order = blocking(move || history.order(engine_portfolio_id, order_id)).await?;
    Ok(Json(OrderJson::new(&order.ok_or_else(ApiError::order_not_found)?, &state.instruments)))
}

/// Runs a cancel or replace and answers with the order as it is afterwards.
async fn amend(
    state: &AppState,
    entry_id: u32,
    order: &OrderRecord,
    command: CommandBody,
) -> Result<Json<OrderJson>, ApiError> {
    let events = state.core.execute_one(command).await?;
    if let Some(reason) = rejection(&events, order.order_id) {
        return Err(ApiError::from_reject(reason));
    }
    let after = state.model.order(entry_id, order.order_id).ok_or_else(ApiError::order_not_found)?;
    Ok(Json(OrderJson::new(&after, &state.instruments)))
}

pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Caller(user_id): Caller,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<OrderJson>, ApiError> {
    let (entry, order) = owned_order(&state, user_id, path(ids)?)?;
    if !order.state.is_open() {
        return Err(order_not_open(&order));
    }
    let command = CommandBody::Cancel { portfolio_id: entry.engine_portfolio_id, order_id: order.order_id };
    amend(&state, entry.engine_portfolio_id, &order, command).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceRequest {
    #[serde(default)]
    limit_price: Option<RawNumber>,
    /// The new open (remaining) quantity.
    #[serde(default)]
    shares: Option<RawNumber>,
}

pub async fn replace(
    State(state): State<Arc<AppState>>,
    Caller(user_id): Caller,
    ids: Result<Path<(String, String)>, PathRejection>,
    ApiJson(request): ApiJson<ReplaceRequest>,
) -> Result<Json<OrderJson>, ApiError> {
    let (entry, order) = owned_order(&state, user_id, path(ids)?)?;
    if request.limit_price.is_none() && request.shares.is_none() {
        return Err(ApiError::invalid("invalid_field", "send limit_price, shares or both"));
    }
    if !order.state.is_open() {
        return Err(order_not_open(&order));
    }
    // A waiting conditional order is not in the book: it is cancelled and sent again instead. (A
    // waiting stop-limit goes to the engine, which answers the same unless it has just fired.)
    if order.state == OrderState::WaitingTrigger && order.kind != OrderKind::Limit {
        return Err(ApiError::from_reject(RejectReason::NotReplaceable));
    }
    if order.kind != OrderKind::Limit {
        return Err(ApiError::invalid("invalid_order_type", "only limit orders can be replaced"));
    }
    let instrument =
        state.instruments.get(order.symbol_id).ok_or_else(|| ApiError::internal("order of no instrument"))?;
    let price_ticks = match &request.limit_price {
        Some(raw) => numbers::price_ticks(raw, "limit_price", instrument)?,
        None => order.price_ticks,
    };
    let qty_lots = match &request.shares {
        Some(raw) => numbers::qty_lots(raw, "shares", instrument)?,
        None => order.open_lots,
    };
    let command = CommandBody::Replace {
        portfolio_id: entry.engine_portfolio_id,
        order_id: order.order_id,
        price_ticks,
        qty_lots,
    };
    amend(&state, entry.engine_portfolio_id, &order, command).await
}
