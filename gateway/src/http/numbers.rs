//! Exact numbers on the wire.
//!
//! In: a decimal field may be a JSON number (`150.25`) or a string (`"150.25"`). It is captured as
//! raw JSON text (`serde_json::value::RawValue`), never parsed into `f64`, and converted by the
//! engine's decimal parser onto the instrument's grid; anything not exactly representable is 422.
//! Exponents (`1e3`) are refused rather than expanded.
//!
//! Out: every decimal is a JSON string of exact fixed-point text (`"150.25"`, `"100000.00"`), as
//! exchanges' JSON APIs do, so no client ever sees `0.30000000000000004` and no JSON library on
//! the way can round it. Ids and counts stay JSON numbers.

use super::error::ApiError;
use serde::Serialize;
use serde_json::value::RawValue;
use simex_engine::decimal::{format_scaled, Decimal, DecimalError, Step};
use simex_engine::Instrument;

/// A raw JSON value that should hold a decimal.
pub type RawNumber = Box<RawValue>;

/// The decimal text of a raw JSON number or string.
pub fn decimal_text(raw: &RawValue, field: &str) -> Result<String, ApiError> {
    let text = raw.get().trim();
    let invalid = || ApiError::invalid("invalid_number", format!("{field} must be a decimal number or string"));
    if text.starts_with('"') {
        serde_json::from_str::<String>(text).map_err(|_| invalid())
    } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        Ok(text.to_string())
    } else {
        Err(invalid())
    }
}

fn decimal_error(field: &str, error: DecimalError) -> ApiError {
    match error {
        DecimalError::NotOnGrid => {
            let code =
                if field == "shares" || field == "quantity" { "quantity_not_on_lot" } else { "price_not_on_tick" };
            ApiError::invalid(code, format!("{field} is not a multiple of the instrument's step"))
        }
        DecimalError::Overflow | DecimalError::TooLong => {
            ApiError::invalid("number_out_of_range", format!("{field} is out of range"))
        }
        DecimalError::Malformed => ApiError::invalid("invalid_number", format!("{field} is not a decimal number")),
    }
}

/// A whole number of `step`s, exactly.
pub fn to_steps(raw: &RawValue, field: &str, step: Step) -> Result<i64, ApiError> {
    let text = decimal_text(raw, field)?;
    Decimal::parse(&text).and_then(|d| d.to_steps(step)).map_err(|e| decimal_error(field, e))
}

/// A price in ticks of `instrument`.
pub fn price_ticks(raw: &RawValue, field: &str, instrument: &Instrument) -> Result<i64, ApiError> {
    to_steps(raw, field, instrument.tick)
}

/// A quantity in lots of `instrument`.
pub fn qty_lots(raw: &RawValue, field: &str, instrument: &Instrument) -> Result<i64, ApiError> {
    to_steps(raw, field, instrument.lot)
}

/// Money in micros; at most six decimals.
pub fn micros(raw: &RawValue, field: &str) -> Result<i64, ApiError> {
    let micro = Step { mantissa: 1, scale: 6 };
    to_steps(raw, field, micro).map_err(|e| {
        if e.code == "price_not_on_tick" {
            ApiError::invalid("invalid_amount", format!("{field} has more than six decimals"))
        } else {
            e
        }
    })
}

/// Exact decimal text, serialized as a JSON string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Num(pub String);

impl Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl Num {
    pub fn steps(step: Step, steps: i64) -> Num {
        Num(step.format(steps).to_string())
    }

    /// Money: micros with trailing zeros trimmed down to two decimals.
    pub fn money(micros: i64) -> Num {
        Num::scaled(i128::from(micros), 6, 2)
    }

    /// `value * 10^-scale`, trailing zeros trimmed down to `keep` decimals.
    pub fn scaled(value: i128, scale: u32, keep: u32) -> Num {
        let mut text = String::new();
        let _ = format_scaled(&mut text, value, scale);
        if let Some(dot) = text.find('.') {
            let keep_len = dot + 1 + keep as usize;
            while text.len() > keep_len && text.ends_with('0') {
                text.pop();
            }
            if text.ends_with('.') {
                text.pop();
            }
        }
        Num(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    #[test]
    fn numbers_and_strings_convert_exactly_or_not_at_all() {
        let cent = Step { mantissa: 1, scale: 2 };
        assert_eq!(to_steps(&raw("150.25"), "price", cent), Ok(15025));
        assert_eq!(to_steps(&raw("\"150.25\""), "price", cent), Ok(15025));
        assert_eq!(to_steps(&raw("0.3"), "price", cent), Ok(30));
        assert_eq!(to_steps(&raw("150.255"), "price", cent).unwrap_err().code, "price_not_on_tick");
        assert_eq!(to_steps(&raw("1e3"), "price", cent).unwrap_err().code, "invalid_number");
        assert_eq!(to_steps(&raw("true"), "price", cent).unwrap_err().code, "invalid_number");
        assert_eq!(to_steps(&raw("\"abc\""), "price", cent).unwrap_err().code, "invalid_number");
        let huge = "9".repeat(30);
        assert_eq!(to_steps(&raw(&huge), "price", cent).unwrap_err().code, "number_out_of_range");
        assert_eq!(micros(&raw("0.0000001"), "amount").unwrap_err().code, "invalid_amount");
        assert_eq!(micros(&raw("\"2500.5\""), "amount"), Ok(2_500_500_000));
    }

    #[test]
    fn output_is_exact_text() {
        assert_eq!(serde_json::to_string(&Num::money(100_000_000_000)).unwrap(), "\"100000.00\"");
        assert_eq!(Num::money(300_001).0, "0.300001");
        assert_eq!(Num::money(-50_000).0, "-0.05");
        assert_eq!(Num::scaled(12345, 4, 0).0, "1.2345");
        assert_eq!(Num::scaled(10000, 4, 0).0, "1");
    }
}
