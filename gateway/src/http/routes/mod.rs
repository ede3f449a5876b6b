//! The handlers, grouped by what they touch, and the functions they share.

pub mod auth;
pub mod market;
pub mod orders;
pub mod portfolios;

use super::error::ApiError;
use super::AppState;
use crate::auth::{PortfolioEntry, UserId};
use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::http::StatusCode;
use simex_engine::{Event, EventBody, OrderId, RejectReason};

pub async fn health() -> &'static str {
    "ok"
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this endpoint")
}

/// The path's parameters, or 400.
pub fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(value)| value).map_err(|e| ApiError::malformed(e.body_text()))
}

/// The caller's portfolio `id`; 404 alike for unknown, foreign and malformed ids.
pub fn owned_portfolio(state: &AppState, user_id: UserId, id: &str) -> Result<PortfolioEntry, ApiError> {
    let portfolio_id = id.parse().map_err(|_| ApiError::portfolio_not_found())?;
    state.accounts.owns(user_id, portfolio_id).ok_or_else(ApiError::portfolio_not_found)
}

/// The command's own refusal among its events: the rejection naming `order_id`, the order a
/// cancel or replace is about, or 0 for a new order (or bracket) and for commands about no order.
/// (A rejection with another id is of an order the command's trades fired, which failed its
/// checks: not the command's.)
pub fn rejection(events: &[Event], order_id: OrderId) -> Option<RejectReason> {
    events.iter().find_map(|e| match e.body {
        EventBody::Rejected { order_id: id, reason, .. } if id == order_id => Some(reason),
        _ => None,
    })
}

/// Runs blocking work (journal commits, password hashing) off the async workers.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::internal(format!("a blocking task failed: {e}")))
}
