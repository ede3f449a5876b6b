//! Exact decimal text to and from fixed-point integers.
//!
//! Outside text (`"150.25"`, `"0.00000001"`) enters simex here and nowhere else. Conversion is exact or
//! it fails: a price of `150.255` on a `0.01` tick is [`DecimalError::NotOnGrid`], never rounded. No
//! floating point is involved at any step; intermediate products are `i128` and checked.

use std::fmt;

/// A decimal number `mantissa * 10^-scale`, as read from text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decimal {
    pub mantissa: i128,
    pub scale: u32,
}

/// The size of one grid step (a tick or a lot): `mantissa * 10^-scale`, strictly positive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Step {
    pub mantissa: u64,
    pub scale: u32,
}

/// The longest fractional part accepted; more digits than this cannot be on any grid simex uses.
pub const SCALE_MAX: u32 = 18;
/// The most significant digits accepted in one number (an `i128` holds 38).
pub const DIGITS_MAX: usize = 36;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("not a decimal number")]
    Malformed,
    #[error("too many digits")]
    TooLong,
    #[error("not a multiple of the grid step")]
    NotOnGrid,
    #[error("out of range")]
    Overflow,
}

impl Decimal {
    /// Parses `[-+]digits[.digits]` exactly. No exponent, no spaces, no empty parts (`"1."`, `".5"`).
    pub fn parse(text: &str) -> Result<Decimal, DecimalError> {
        let bytes = text.as_bytes();
        let (negative, body) = match bytes.first() {
            Some(b'-') => (true, &bytes[1..]),
            Some(b'+') => (false, &bytes[1..]),
            _ => (false, bytes),
        };
        let (int_part, frac_part) = match body.iter().position(|&b| b == b'.') {
            Some(dot) => (&body[..dot], Some(&body[dot + 1..])),
            None => (body, None),
        };
        if int_part.is_empty() || frac_part.is_some_and(|f| f.is_empty()) {
            return Err(DecimalError::Malformed);
        }
        let frac_part = frac_part.unwrap_or(&[]);
        if int_part.len() + frac_part.len() > DIGITS_MAX {
            return Err(DecimalError::TooLong);
        }
        if frac_part.len() > SCALE_MAX as usize {
            return Err(DecimalError::TooLong);
        }
        let mut mantissa: i128 = 0;
        for &b in int_part.iter().chain(frac_part) {
            if !b.is_ascii_digit() {
                return Err(DecimalError::Malformed);
            }
            // Cannot overflow: at most DIGITS_MAX (36) digits fit in an i128.
            mantissa = mantissa * 10 + i128::from(b - b'0');
        }
        Ok(Decimal { mantissa: if negative { -mantissa } else { mantissa }, scale: frac_part.len() as u32 })
    }

    /// The number of `step`s in this value, if it is a whole number of them and fits in `i64`.
    pub fn to_steps(self, step: Step) -> Result<i64, DecimalError> {
        // value / step = (m * 10^-s) / (sm * 10^-ss) = m * 10^ss / (sm * 10^s)
        let numerator = self.mantissa.checked_mul(pow10(step.scale)?).ok_or(DecimalError::Overflow)?;
        let denominator = i128::from(step.mantissa).checked_mul(pow10(self.scale)?).ok_or(DecimalError::Overflow)?;
        assert!(denominator > 0, "a step is strictly positive");
        if numerator % denominator != 0 {
            return Err(DecimalError::NotOnGrid);
        }
        i64::try_from(numerator / denominator).map_err(|_| DecimalError::Overflow)
    }
}

impl Step {
    /// Parses a strictly positive step such as `"0.01"` or `"0.00000001"`.
    pub fn parse(text: &str) -> Result<Step, DecimalError> {
        let decimal = Decimal::parse(text)?;
        if decimal.mantissa <= 0 {
            return Err(DecimalError::Malformed);
        }
        Ok(Step {
            mantissa: u64::try_from(decimal.mantissa).map_err(|_| DecimalError::Overflow)?,
            scale: decimal.scale,
        })
    }

    /// Writes `steps * self` as exact decimal text, with exactly `self.scale` fractional digits.
    pub fn format(self, steps: i64) -> StepDisplay {
        StepDisplay { step: self, steps }
    }
}

/// Exact decimal rendering of a whole number of steps; see [`Step::format`].
pub struct StepDisplay {
    step: Step,
    steps: i64,
}

impl fmt::Display for StepDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = i128::from(self.steps) * i128::from(self.step.mantissa);
        format_scaled(f, value, self.step.scale)
    }
}

/// Writes `value * 10^-scale` as exact decimal text.
pub fn format_scaled(f: &mut dyn fmt::Write, value: i128, scale: u32) -> fmt::Result {
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    if scale == 0 {
        return write!(f, "{sign}{magnitude}");
    }
    let divisor = 10u128.pow(scale);
    write!(f, "{sign}{}.{:0width$}", magnitude / divisor, magnitude % divisor, width = scale as usize)
}

/// Money in micro-units rendered as decimal text with six fractional digits.
pub fn format_micros(micros: i64) -> String {
    let mut text = String::new();
    format_scaled(&mut text, i128::from(micros), 6).expect("writing to a String cannot fail");
    text
}

fn pow10(exponent: u32) -> Result<i128, DecimalError> {
    10i128.checked_pow(exponent).ok_or(DecimalError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(text: &str) -> Step {
        Step::parse(text).unwrap()
    }

    #[test]
    fn exact_prices_convert_to_ticks() {
        assert_eq!(Decimal::parse("150.25").unwrap().to_steps(step("0.01")), Ok(15025));
        assert_eq!(Decimal::parse("150").unwrap().to_steps(step("0.01")), Ok(15000));
        assert_eq!(Decimal::parse("1.08345").unwrap().to_steps(step("0.00001")), Ok(108345));
        assert_eq!(Decimal::parse("0.00000001").unwrap().to_steps(step("0.00000001")), Ok(1));
        assert_eq!(Decimal::parse("-2.50").unwrap().to_steps(step("0.05")), Ok(-50));
    }

    #[test]
    fn off_grid_values_are_rejected_not_rounded() {
        assert_eq!(Decimal::parse("150.255").unwrap().to_steps(step("0.01")), Err(DecimalError::NotOnGrid));
        assert_eq!(Decimal::parse("2.51").unwrap().to_steps(step("0.05")), Err(DecimalError::NotOnGrid));
    }

    #[test]
    fn malformed_text_is_rejected() {
        for text in ["", "-", ".", "1.", ".5", "1e5", "1,5", " 1", "1 ", "0x10", "1.2.3", "--1", "NaN"] {
            assert_eq!(Decimal::parse(text), Err(DecimalError::Malformed), "{text:?}");
        }
        assert_eq!(Decimal::parse(&"9".repeat(40)), Err(DecimalError::TooLong));
        assert_eq!(Decimal::parse("99999999999999999999").unwrap().to_steps(step("1")), Err(DecimalError::Overflow));
    }

    #[test]
    fn formatting_is_exact() {
        assert_eq!(step("0.01").format(15025).to_string(), "150.25");
        assert_eq!(step("0.01").format(-5).to_string(), "-0.05");
        assert_eq!(step("0.00000001").format(1).to_string(), "0.00000001");
        assert_eq!(step("1").format(42).to_string(), "42");
        assert_eq!(format_micros(100_000_000_000), "100000.000000");
        assert_eq!(format_micros(-1), "-0.000001");
    }

    #[test]
    fn steps_must_be_positive() {
        assert!(Step::parse("0").is_err());
        assert!(Step::parse("-0.01").is_err());
    }
}
