//! Portfolios: create, list, value, reset, top up.
//!
//! A portfolio's id is public; behind it stands an engine portfolio. A reset moves the portfolio
//! onto a fresh engine portfolio with the starting balance (after cancelling the old one's open
//! orders), so the engine needs no reset command, and history after a reset starts empty.

use super::{blocking, owned_portfolio, path, rejection};
use crate::auth::PortfolioEntry;
use crate::history::ReadModel;
use crate::http::error::ApiError;
use crate::http::extract::{parse_json, ApiBytes, ApiJson, Caller};
use crate::http::numbers::{self, Num, RawNumber};
use crate::http::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use simex_engine::{CommandBody, Instrument, Ledger, PortfolioId, Position, SymbolId, MICROS_PER_UNIT};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The largest starting balance or top-up: a trillion.
const AMOUNT_MAX_MICROS: i64 = 1_000_000_000_000 * MICROS_PER_UNIT;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    #[serde(default)]
    starting_balance: Option<RawNumber>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Serialize)]
pub struct Created {
    portfolio_id: PortfolioId,
    balance: Num,
    name: String,
}

fn amount(raw: &RawNumber, field: &str) -> Result<i64, ApiError> {
    let micros = numbers::micros(raw, field)?;
    if micros <= 0 || micros > AMOUNT_MAX_MICROS {
        return Err(ApiError::invalid("invalid_amount", format!("{field} must be positive and at most 1000000000000")));
    }
    Ok(micros)
}

/// Allocates an engine portfolio and creates it with `cash_micros`.
async fn new_engine_portfolio(
    state: &AppState,
    cash_micros: i64,
    before: Vec<CommandBody>,
) -> Result<PortfolioId, ApiError> {
    let portfolio_id = state.next_portfolio_id.fetch_add(1, Ordering::Relaxed);
    if portfolio_id as usize >= state.settings.portfolios_max {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "portfolio_limit", "the venue holds no more portfolios"));
    }
    let mut commands = before;
    commands.push(CommandBody::CreatePortfolio { portfolio_id, cash_micros });
    let outcomes = state.core.execute(commands).await?;
    match outcomes.last() {
        Some(crate::bridge::Outcome::Done(events)) => match rejection(events, 0) {
            Some(reason) => Err(ApiError::from_reject(reason)),
            None => Ok(portfolio_id),
        },
        _ => Err(ApiError::busy()),
    }
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Caller(user_id): Caller,
    ApiBytes(body): ApiBytes,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let request: CreateRequest =
        if body.iter().all(u8::is_ascii_whitespace) { CreateRequest::default() } else { parse_json(&body)? };
    let cash_micros = match &request.starting_balance {
        Some(raw) => amount(raw, "starting_balance")?,
        None => state.settings.default_starting_balance_micros,
    };
    let name = request.name.unwrap_or_else(|| "default".to_string());
    if name.len() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid("invalid_field", "name must be at most 100 printable characters"));
    }
    let portfolio_id = new_engine_portfolio(&state, cash_micros, Vec::new()).await?;
    let entry = PortfolioEntry {
        user_id,
        portfolio_id,
        engine_portfolio_id: portfolio_id,
        name: name.clone(),
        starting_balance_micros: cash_micros,
    };
    let accounts = state.accounts.clone();
    blocking(move || accounts.add_portfolio(entry)).await?.map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((StatusCode::CREATED, Json(Created { portfolio_id, balance: Num::money(cash_micros), name })))
}

pub async fn list(State(state): State<Arc<AppState>>, Caller(user_id): Caller) -> Json<serde_json::Value> {
    let portfolios: Vec<_> = state
        .accounts
        .portfolios_of(user_id)
        .into_iter()
        .map(|p| {
            let cash = state.ledger.account(p.engine_portfolio_id).map_or(0, |a| a.cash_micros);
            serde_json::json!({
                "portfolio_id": p.portfolio_id,
                "name": p.name,
                "cash_balance": Num::money(cash),
                "starting_balance": Num::money(p.starting_balance_micros),
            })
        })
        .collect();
    Json(serde_json::json!({ "portfolios": portfolios }))
}

#[derive(Serialize)]
pub struct PositionJson {
    ticker: String,
    shares: Num,
    avg_price: Num,
    market_price: Num,
    market_value: Num,
    unrealized_pnl: Num,
    realized_pnl: Num,
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Caller(user_id): Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let entry = owned_portfolio(&state, user_id, &path(id)?)?;
    portfolio_view(&state, &entry).map(Json).ok_or_else(ApiError::portfolio_not_found)
}

/// A portfolio as `GET /api/portfolios/{id}/portfolio` shows it, and as `/ws` pushes it: cash,
/// positions marked to the reference prices, total value and return. `None` when the engine does
/// not know the portfolio.
pub fn portfolio_view(state: &AppState, entry: &PortfolioEntry) -> Option<serde_json::Value> {
    let account = state.ledger.account(entry.engine_portfolio_id)?;
    let model = state.model.read();
    let mut positions = Vec::new();
    let mut market_value_total = i128::from(account.cash_micros);
    for (symbol_id, position) in model.positions(entry.engine_portfolio_id) {
        let Some(instrument) = state.instruments.get(symbol_id) else { continue };
        let (shown, market_value) = position_view(&model, instrument, &position);
        market_value_total += market_value;
        positions.push(shown);
    }
    let starting = i128::from(entry.starting_balance_micros.max(1));
    // Percent with four decimals, truncated toward zero.
    let return_pct_e4 = (market_value_total - starting) * 1_000_000 / starting;
    Some(serde_json::json!({
        "portfolio_id": entry.portfolio_id,
        "cash_balance": Num::money(account.cash_micros),
        "available_cash": Num::money(account.available_micros()),
        "positions": positions,
        "total_value": Num::scaled(market_value_total, 6, 2),
        "total_return_pct": Num::scaled(return_pct_e4, 4, 2),
    }))
}

/// A flat position in `symbol_id` as the portfolio view would show it (for `/ws`, after a fill
/// that closed one).
pub fn flat_position_view(state: &AppState, symbol_id: SymbolId) -> Option<serde_json::Value> {
    let instrument = state.instruments.get(symbol_id)?;
    let model = state.model.read();
    serde_json::to_value(position_view(&model, instrument, &Position::default()).0).ok()
}

/// One position marked to the reference price (its average price when there is none); with its
/// market value in micros.
fn position_view(model: &ReadModel, instrument: &Instrument, position: &Position) -> (PositionJson, i128) {
    let qty = i128::from(position.qty_lots);
    // Micros per whole unit: cost / (lots * lot), truncated toward zero.
    let lot_units = qty * i128::from(instrument.lot.mantissa);
    let avg_micros = if lot_units == 0 {
        0
    } else {
        i128::from(position.cost_basis_micros) * 10i128.pow(instrument.lot.scale) / lot_units
    };
    let mark_ticks = model.market(instrument.symbol_id).and_then(|m| m.mark_ticks());
    let value_micros = |ticks: i64| {
        let magnitude = i128::from(instrument.notional_floor_micros(ticks, position.qty_lots.abs()).unwrap_or(0));
        if position.qty_lots < 0 {
            -magnitude
        } else {
            magnitude
        }
    };
    let (market_price, market_value) = match mark_ticks {
        Some(ticks) => (Num::steps(instrument.tick, ticks), value_micros(ticks)),
        None => (Num::scaled(avg_micros, 6, 2), i128::from(position.cost_basis_micros)),
    };
    let shown = PositionJson {
        ticker: instrument.symbol.clone(),
        shares: Num::steps(instrument.lot, position.qty_lots),
        avg_price: Num::scaled(avg_micros, 6, 2),
        market_price,
        market_value: Num::scaled(market_value, 6, 2),
        unrealized_pnl: Num::scaled(market_value - i128::from(position.cost_basis_micros), 6, 2),
        realized_pnl: Num::money(position.realized_pnl_micros),
    };
    (shown, market_value)
}

pub async fn reset(
    State(state): State<Arc<AppState>>,
    Caller(user_id): Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let entry = owned_portfolio(&state, user_id, &path(id)?)?;
    let cancel = CommandBody::MassCancel { portfolio_id: entry.engine_portfolio_id, symbol_id: None };
    let engine_portfolio_id = new_engine_portfolio(&state, entry.starting_balance_micros, vec![cancel]).await?;
    let accounts = state.accounts.clone();
    blocking(move || accounts.reset_portfolio(entry.portfolio_id, engine_portfolio_id))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(serde_json::json!({
        "portfolio_id": entry.portfolio_id,
        "balance": Num::money(entry.starting_balance_micros),
        "message": "portfolio reset to its starting balance",
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopupRequest {
    amount: RawNumber,
}

pub async fn topup(
    State(state): State<Arc<AppState>>,
    Caller(user_id): Caller,
    id: Result<Path<String>, PathRejection>,
    ApiJson(request): ApiJson<TopupRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let entry = owned_portfolio(&state, user_id, &path(id)?)?;
    let delta_micros = amount(&request.amount, "amount")?;
    let events = state
        .core
        .execute_one(CommandBody::AdjustCash { portfolio_id: entry.engine_portfolio_id, delta_micros })
        .await?;
    if let Some(reason) = rejection(&events, 0) {
        return Err(ApiError::from_reject(reason));
    }
    let cash = state.ledger.account(entry.engine_portfolio_id).map_or(0, |a| a.cash_micros);
    Ok(Json(serde_json::json!({
        "portfolio_id": entry.portfolio_id,
        "amount": Num::money(delta_micros),
        "cash_balance": Num::money(cash),
    })))
}
