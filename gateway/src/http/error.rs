//! API errors: one JSON shape, `{"code","message"}`, and one table from every failure to its HTTP
//! status. Every engine [`RejectReason`] has its status here; its `code` is the reason's stable
//! snake_case name.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use simex_engine::RejectReason;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Seconds to wait, for 429.
    pub retry_after_seconds: Option<u64>,
}

#[derive(serde::Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, code: code.to_string(), message: message.into(), retry_after_seconds: None }
    }

    /// 400: the request cannot be read at all.
    pub fn malformed(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_request", message)
    }

    /// 422: the request is readable but a value is not acceptable.
    pub fn invalid(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn portfolio_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "portfolio_not_found", "no such portfolio")
    }

    pub fn order_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "order_not_found", "no such order")
    }

    pub fn busy() -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "the venue is busy; retry shortly")
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The status and code of an engine rejection.
    pub fn from_reject(reason: RejectReason) -> ApiError {
        let status = reject_status(reason);
        let code = reject_code(reason);
        let message = match reason {
            RejectReason::UnknownPortfolio => "no such portfolio".to_string(),
            RejectReason::UnknownOrder => "no such order".to_string(),
            _ => format!("rejected: {}", code.replace('_', " ")),
        };
        let code = match reason {
            // The same answer as for a portfolio the caller does not own.
            RejectReason::UnknownPortfolio => "portfolio_not_found".to_string(),
            RejectReason::UnknownOrder => "order_not_found".to_string(),
            _ => code,
        };
        ApiError::new(status, &code, message)
    }
}

/// The stable snake_case name of a reason (its serde name).
pub fn reject_code(reason: RejectReason) -> String {
    match serde_json::to_value(reason) {
        Ok(serde_json::Value::String(code)) => code,
        _ => format!("reject_{}", reason.code()),
    }
}

/// 404 unknown things, 409 duplicates, 403 risk and limits, 422 validation.
pub fn reject_status(reason: RejectReason) -> StatusCode {
    use RejectReason::*;
    match reason {
        UnknownPortfolio | UnknownOrder => StatusCode::NOT_FOUND,
        PortfolioExists | DuplicateClientOrderId => StatusCode::CONFLICT,
        UnknownSymbol | QuantityNotPositive | QuantityNotOnLot | QuantityBelowMinimum | QuantityTooLarge
        | PriceNotPositive | PriceNotOnTick | PriceOutsideBand | PostOnlyWouldTake | InvalidTimeInForce
        | ExpireTimeInPast | InvalidAmount | ReplaceNoChange | InvalidQuote | InvalidTrigger | NotReplaceable => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        SymbolHalted
        | OrderNotionalTooLarge
        | InsufficientBuyingPower
        | ShortNotAllowed
        | PositionLimitExceeded
        | GrossExposureExceeded
        | OpenOrdersLimitExceeded
        | DailyLossLimitBreached
        | BookFull
        | InsufficientCash => StatusCode::FORBIDDEN,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(Body { code: &self.code, message: &self.message })).into_response();
        if let Some(seconds) = self.retry_after_seconds {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<crate::bridge::CoreError> for ApiError {
    fn from(error: crate::bridge::CoreError) -> ApiError {
        match error {
            crate::bridge::CoreError::Busy => ApiError::busy(),
            crate::bridge::CoreError::Stopped => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", "the venue is stopping")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reject_reason_has_a_client_error_status_and_a_snake_case_code() {
        for reason in RejectReason::ALL {
            let error = ApiError::from_reject(reason);
            assert!(error.status.is_client_error(), "{reason:?}");
            assert!(error.code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", error.code);
        }
        assert_eq!(reject_code(RejectReason::PriceNotOnTick), "price_not_on_tick");
        assert_eq!(reject_status(RejectReason::InsufficientBuyingPower), StatusCode::FORBIDDEN);
        assert_eq!(ApiError::from_reject(RejectReason::UnknownPortfolio), ApiError::portfolio_not_found());
    }
}
