//! The one shape every price source produces, and the exact conversion of outside decimals into it.
//!
//! A [`Tick`] is a trade or a top-of-book quote for one symbol, in the instrument's own integer
//! units: price in ticks, size in lots. Orders entering simex must be on the grid, but outside
//! data is not ours to reject, so a feed price that is not a whole number of ticks is *rounded*:
//! a bid down, an ask up (the quote never looks tighter than it was) and a trade to the nearest
//! tick (halves up). Sizes round down to whole lots (a size is never overstated). A number that
//! cannot be read at all is a typed [`TickError`], never a panic.
//!
//! Text becomes a [`Decimal`] through the engine's exact parser ([`simex_engine::decimal`]); the
//! only addition here is the exponent form (`1.5e-7`) that JSON encoders emit for small numbers.

use simex_engine::decimal::{Decimal, DecimalError, Step};
use simex_engine::{CommandBody, Instrument, SymbolId};

/// A price observation for one symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    pub symbol_id: SymbolId,
    /// When the source says the observation happened (nanoseconds since the Unix epoch).
    pub timestamp_ns: i64,
    pub kind: TickKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickKind {
    Trade { price_ticks: i64, qty_lots: i64 },
    Quote { bid_price_ticks: i64, bid_qty_lots: i64, ask_price_ticks: i64, ask_qty_lots: i64 },
}

/// How an off-grid value becomes a whole number of steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    Down,
    Up,
    /// To the nearest step; exact halves go up.
    Nearest,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TickError {
    #[error("unknown symbol {0:?}")]
    UnknownSymbol(String),
    #[error("{field} {text:?} is not a number: {source}")]
    Number { field: &'static str, text: String, source: DecimalError },
    #[error("{field} {text:?} is not positive")]
    NotPositive { field: &'static str, text: String },
    #[error("timestamp {0:?} is not a time")]
    Timestamp(String),
}

/// The longest exponent accepted in `1e-7` notation; beyond it no grid of simex can hold the value.
const EXPONENT_MAX: i64 = 40;

/// Parses exact decimal text, also in exponent form (`"1.5e-7"`, `"2E3"`).
pub fn parse_decimal(text: &str) -> Result<Decimal, DecimalError> {
    let (mantissa_text, exponent) = match text.find(['e', 'E']) {
        Some(at) => {
            let exponent: i64 = text[at + 1..].parse().map_err(|_| DecimalError::Malformed)?;
            if exponent.abs() > EXPONENT_MAX {
                return Err(DecimalError::Overflow);
            }
            (&text[..at], exponent)
        }
        None => (text, 0),
    };
    let decimal = Decimal::parse(mantissa_text)?;
    let scale = i64::from(decimal.scale) - exponent;
    if scale >= 0 {
        return Ok(Decimal { mantissa: decimal.mantissa, scale: scale as u32 });
    }
    let factor = 10i128.checked_pow((-scale) as u32).ok_or(DecimalError::Overflow)?;
    let mantissa = decimal.mantissa.checked_mul(factor).ok_or(DecimalError::Overflow)?;
    Ok(Decimal { mantissa, scale: 0 })
}

/// The number of `step`s in `value`, rounded as asked; `Overflow` if it does not fit in `i64`.
pub fn steps_rounded(value: Decimal, step: Step, rounding: Rounding) -> Result<i64, DecimalError> {
    // value / step = m * 10^ss / (sm * 10^s), as in `Decimal::to_steps`.
    let pow10 = |exponent: u32| 10i128.checked_pow(exponent).ok_or(DecimalError::Overflow);
    let numerator = value.mantissa.checked_mul(pow10(step.scale)?).ok_or(DecimalError::Overflow)?;
    let denominator = i128::from(step.mantissa).checked_mul(pow10(value.scale)?).ok_or(DecimalError::Overflow)?;
    debug_assert!(denominator > 0, "a step is strictly positive");
    let steps = match rounding {
        Rounding::Down => numerator.div_euclid(denominator),
        Rounding::Up => -(-numerator).div_euclid(denominator),
        Rounding::Nearest => {
            let twice = numerator.checked_mul(2).ok_or(DecimalError::Overflow)?;
            (twice + denominator).div_euclid(2 * denominator)
        }
    };
    i64::try_from(steps).map_err(|_| DecimalError::Overflow)
}

/// Converts one instrument's outside decimals into ticks and lots, rounding as the module says.
#[derive(Clone, Copy, Debug)]
pub struct Converter<'a> {
    pub instrument: &'a Instrument,
}

impl Converter<'_> {
    /// A strictly positive price, rounded to the instrument's tick.
    pub fn price_ticks(&self, field: &'static str, text: &str, rounding: Rounding) -> Result<i64, TickError> {
        let number_error = |source| TickError::Number { field, text: text.to_string(), source };
        let decimal = parse_decimal(text).map_err(number_error)?;
        let ticks = steps_rounded(decimal, self.instrument.tick, rounding).map_err(number_error)?;
        if ticks <= 0 {
            return Err(TickError::NotPositive { field, text: text.to_string() });
        }
        Ok(ticks)
    }

    /// A non-negative size, rounded down to whole lots.
    pub fn qty_lots(&self, field: &'static str, text: &str) -> Result<i64, TickError> {
        let number_error = |source| TickError::Number { field, text: text.to_string(), source };
        let decimal = parse_decimal(text).map_err(number_error)?;
        if decimal.mantissa < 0 {
            return Err(TickError::NotPositive { field, text: text.to_string() });
        }
        steps_rounded(decimal, self.instrument.lot, Rounding::Down).map_err(number_error)
    }

    pub fn trade(&self, timestamp_ns: i64, price: &str, qty: &str) -> Result<Tick, TickError> {
        let price_ticks = self.price_ticks("price", price, Rounding::Nearest)?;
        let qty_lots = self.qty_lots("size", qty)?;
        Ok(Tick { symbol_id: self.instrument.symbol_id, timestamp_ns, kind: TickKind::Trade { price_ticks, qty_lots } })
    }

    pub fn quote(
        &self,
        timestamp_ns: i64,
        bid: &str,
        bid_qty: &str,
        ask: &str,
        ask_qty: &str,
    ) -> Result<Tick, TickError> {
        let kind = TickKind::Quote {
            bid_price_ticks: self.price_ticks("bid", bid, Rounding::Down)?,
            bid_qty_lots: self.qty_lots("bid size", bid_qty)?,
            ask_price_ticks: self.price_ticks("ask", ask, Rounding::Up)?,
            ask_qty_lots: self.qty_lots("ask size", ask_qty)?,
        };
        Ok(Tick { symbol_id: self.instrument.symbol_id, timestamp_ns, kind })
    }
}

/// Maps ticks onto the engine's reference data commands: a trade to `ReferenceTrade`, a quote to
/// `ReferenceQuote` (the simulated market quotes it; see docs/simulation.md). A tick without a
/// positive price is dropped.
pub fn tick_to_commands(tick: &Tick) -> Option<CommandBody> {
    let symbol_id = tick.symbol_id;
    match tick.kind {
        TickKind::Trade { price_ticks, qty_lots } => {
            (price_ticks > 0).then_some(CommandBody::ReferenceTrade { symbol_id, price_ticks, qty_lots })
        }
        TickKind::Quote { bid_price_ticks, bid_qty_lots, ask_price_ticks, ask_qty_lots } => {
            (bid_price_ticks > 0 && ask_price_ticks > 0).then_some(CommandBody::ReferenceQuote {
                symbol_id,
                bid_price_ticks,
                bid_qty_lots,
                ask_price_ticks,
                ask_qty_lots,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simex_engine::InstrumentTable;

    fn decimal(text: &str) -> Decimal {
        parse_decimal(text).unwrap()
    }

    #[test]
    fn exponent_forms_are_exact() {
        assert_eq!(decimal("1.5e-7"), Decimal { mantissa: 15, scale: 8 });
        assert_eq!(decimal("2E3"), Decimal { mantissa: 2000, scale: 0 });
        assert_eq!(decimal("150.25"), Decimal { mantissa: 15025, scale: 2 });
        for bad in ["", "e5", "1e", "1e+", "1.5e-7x", "1e99", "abc", "1,5"] {
            assert!(parse_decimal(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rounding_goes_the_stated_way() {
        let cent = Step::parse("0.01").unwrap();
        assert_eq!(steps_rounded(decimal("150.255"), cent, Rounding::Down), Ok(15025));
        assert_eq!(steps_rounded(decimal("150.255"), cent, Rounding::Up), Ok(15026));
        assert_eq!(steps_rounded(decimal("150.255"), cent, Rounding::Nearest), Ok(15026));
        assert_eq!(steps_rounded(decimal("150.254"), cent, Rounding::Nearest), Ok(15025));
        assert_eq!(steps_rounded(decimal("150.25"), cent, Rounding::Up), Ok(15025));
        assert_eq!(steps_rounded(decimal("-0.005"), cent, Rounding::Down), Ok(-1));
        assert_eq!(steps_rounded(decimal("-0.005"), cent, Rounding::Up), Ok(0));
        assert_eq!(steps_rounded(decimal("1e30"), cent, Rounding::Down), Err(DecimalError::Overflow));
    }

    #[test]
    fn feed_values_convert_on_the_instrument_grid() {
        let table = InstrumentTable::default_table();
        let aapl = Converter { instrument: table.by_symbol("AAPL").unwrap() };
        let tick = aapl.quote(7, "150.255", "100", "150.255", "3.7").unwrap();
        assert_eq!(
            tick.kind,
            TickKind::Quote { bid_price_ticks: 15025, bid_qty_lots: 100, ask_price_ticks: 15026, ask_qty_lots: 3 }
        );
        assert_eq!(aapl.trade(1, "150.255", "10").unwrap().kind, TickKind::Trade { price_ticks: 15026, qty_lots: 10 });
        assert!(matches!(aapl.trade(1, "abc", "10"), Err(TickError::Number { field: "price", .. })));
        assert!(matches!(aapl.trade(1, "0.001", "10"), Err(TickError::NotPositive { field: "price", .. })));
        assert!(matches!(aapl.trade(1, "1", "-1"), Err(TickError::NotPositive { field: "size", .. })));
        let btc = Converter { instrument: table.by_symbol("BTC-USD").unwrap() };
        assert_eq!(btc.qty_lots("size", "1.5e-7"), Ok(15));
    }

    #[test]
    fn ticks_map_to_reference_data() {
        let trade = Tick { symbol_id: 3, timestamp_ns: 0, kind: TickKind::Trade { price_ticks: 101, qty_lots: 7 } };
        assert_eq!(
            tick_to_commands(&trade),
            Some(CommandBody::ReferenceTrade { symbol_id: 3, price_ticks: 101, qty_lots: 7 })
        );
        let quote = Tick {
            symbol_id: 3,
            timestamp_ns: 0,
            kind: TickKind::Quote { bid_price_ticks: 100, bid_qty_lots: 1, ask_price_ticks: 103, ask_qty_lots: 2 },
        };
        assert_eq!(
            tick_to_commands(&quote),
            Some(CommandBody::ReferenceQuote {
                symbol_id: 3,
                bid_price_ticks: 100,
                bid_qty_lots: 1,
                ask_price_ticks: 103,
                ask_qty_lots: 2
            })
        );
    }
}
