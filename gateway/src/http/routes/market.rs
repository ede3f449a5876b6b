//! Market data: instruments, prices and books, from the read model.

use super::path;
use crate::http::error::ApiError;
use crate::http::extract::ApiQuery;
use crate::http::numbers::Num;
use crate::http::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use simex_engine::Instrument;
use std::sync::Arc;

const DEPTH_MAX: usize = 100;

fn instrument<'a>(state: &'a AppState, symbol: &str) -> Result<&'a Instrument, ApiError> {
    state
        .instruments
        .by_symbol(symbol)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_symbol", format!("unknown symbol {symbol:?}")))
}

pub async fn symbols(State(state): State<Arc<AppState>>) -> Json<Value> {
    let symbols: Vec<_> = state
        .instruments
        .iter()
        .map(|i| {
            json!({
                "symbol": i.symbol,
                "asset_class": i.asset_class,
                "tick_size": Num::steps(i.tick, 1),
                "lot_size": Num::steps(i.lot, 1),
                "min_qty": Num::steps(i.lot, i.qty_min_lots),
                "max_qty": Num::steps(i.lot, i.qty_max_lots),
                "short_allowed": i.short_allowed,
            })
        })
        .collect();
    Json(json!({ "symbols": symbols }))
}

pub async fn price(
    State(state): State<Arc<AppState>>,
    symbol: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let symbol = path(symbol)?;
    let instrument = instrument(&state, &symbol)?;
    let model = state.model.read();
    let market = model.market(instrument.symbol_id).cloned().unwrap_or_default();
    let price = |ticks: Option<i64>| ticks.map(|t| Num::steps(instrument.tick, t));
    let (bids, asks) = market.depth(1);
    Ok(Json(json!({
        "symbol": instrument.symbol,
        "price": price(market.mark_ticks().or_else(|| bids.first().zip(asks.first()).map(|(b, a)| (b.0 + a.0) / 2))),
        "last_trade": price(market.last_trade_ticks),
        "reference_price": price(market.reference_ticks),
        "bid": price(bids.first().map(|l| l.0)),
        "ask": price(asks.first().map(|l| l.0)),
        "sequence": market.sequence,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthQuery {
    #[serde(default)]
    depth: Option<usize>,
}

pub async fn orderbook(
    State(state): State<Arc<AppState>>,
    symbol: Result<Path<String>, PathRejection>,
    ApiQuery(query): ApiQuery<DepthQuery>,
) -> Result<Json<Value>, ApiError> {
    let symbol = path(symbol)?;
    let instrument = instrument(&state, &symbol)?;
    let depth = query.depth.unwrap_or(10);
    if depth == 0 || depth > DEPTH_MAX {
        return Err(ApiError::invalid("invalid_query", format!("depth must be between 1 and {DEPTH_MAX}")));
    }
    let model = state.model.read();
    let market = model.market(instrument.symbol_id).cloned().unwrap_or_default();
    let (bids, asks) = market.depth(depth);
    let levels = |levels: Vec<(i64, i64)>| -> Vec<(Num, Num)> {
        levels.into_iter().map(|(p, q)| (Num::steps(instrument.tick, p), Num::steps(instrument.lot, q))).collect()
    };
    Ok(Json(json!({
        "symbol": instrument.symbol,
        "bids": levels(bids),
        "asks": levels(asks),
        "sequence": market.sequence,
    })))
}
