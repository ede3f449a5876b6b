//! Instruments: their grids, fees, limits and sessions, and the exact notional arithmetic on them.
//!
//! An instrument's tick and lot are decimal [`Step`]s. The value of `qty_lots` at `price_ticks` in
//! micro-units of the account currency is
//! `price_ticks * tick * qty_lots * lot * 10^6`, computed in `i128` with a precomputed multiplier and
//! divisor so that it is exact, checked, and rounded in a stated direction when a product is finer than
//! one micro (a BTC lot of 10^-8 at a 0.01 tick is worth 10^-4 micros). Trades round the notional
//! down; reservations round up, so a reservation always covers what it reserves for (see `ledger`).
//!
//! The table is read from TOML (see `default_instruments.toml`, embedded as the default).

use crate::decimal::{Decimal, DecimalError, Step};
use crate::sim::impact::SLICES_MAX;
use crate::sim::{LiquidityMode, SimParams};
use crate::types::{SymbolId, BASIS_POINTS_PER_UNIT, NANOS_PER_DAY, NANOS_PER_MICRO, NANOS_PER_SECOND};
use serde::{Deserialize, Serialize};

/// The instrument table compiled into simex, used when no file is given.
pub const DEFAULT_INSTRUMENTS_TOML: &str = include_str!("default_instruments.toml");

/// The most instruments one table may hold (symbol ids are `u16`, and every shard keeps a slot each).
pub const INSTRUMENTS_MAX: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetClass {
    Equity,
    Etf,
    Crypto,
    Forex,
}

/// One instrument as written in the TOML file. Decimal values are strings so they stay exact.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentSpec {
    pub symbol: String,
    pub asset_class: AssetClass,
    pub tick: String,
    pub lot: String,
    /// Smallest order quantity, as a decimal multiple of `lot` (default: one lot).
    #[serde(default)]
    pub min_qty: Option<String>,
    /// Largest order quantity, as a decimal multiple of `lot`.
    pub max_qty: String,
    /// Largest absolute position per portfolio, as a decimal multiple of `lot`.
    pub max_position: String,
    pub maker_fee_bps: u32,
    pub taker_fee_bps: u32,
    /// Limit prices further than this from the reference price are rejected (default 1000 = 10%).
    #[serde(default = "default_price_band_bps")]
    pub price_band_bps: u32,
    pub short_allowed: bool,
    /// Cash locked against a short position, as basis points of its notional.
    pub initial_margin_bps: u32,
    /// UTC time of day at which DAY orders expire, "HH:MM" (crypto and forex: "00:00").
    pub session_close_utc: String,
    /// Where liquidity comes from: "book", "simulated" or "hybrid" (default).
    #[serde(default)]
    pub liquidity: LiquidityMode,
    /// Modelled spread when only reference trades are known (default per asset class).
    #[serde(default)]
    pub spread_bps: Option<u32>,
    /// Daily volatility for the impact model (default per asset class).
    #[serde(default)]
    pub sigma_daily_bps: Option<u32>,
    /// Average daily volume, as a decimal multiple of `lot`; without it there is no impact and no
    /// volume limit.
    #[serde(default)]
    pub adv: Option<String>,
    /// The impact law's coefficient Y in basis points (default 7000 = 0.7).
    #[serde(default)]
    pub impact_coefficient_bps: Option<u32>,
    /// Most one order takes from simulated liquidity, in basis points of the displayed quote size
    /// (default 50000 = five times).
    #[serde(default)]
    pub quote_size_limit_bps: Option<u32>,
    /// Most one order takes from simulated liquidity, in basis points of ADV (default 1000 = 10%).
    #[serde(default)]
    pub adv_limit_bps: Option<u32>,
    /// Most slices a simulated execution is split into (default 4, at most 16).
    #[serde(default)]
    pub slices_max: Option<u32>,
    /// Resting orders also fill on trades at their price once the volume ahead has traded (default
    /// false: only trades through their price fill them).
    #[serde(default)]
    pub queue_position: bool,
    /// Latency model: the delay between an order's acceptance and its execution, in microseconds
    /// (default 0: off; at most 60 s). See `docs/simulation.md`.
    #[serde(default)]
    pub latency_us: Option<u32>,
    /// Latency model: a uniform random extra delay of 0 to this many microseconds, drawn per order
    /// from `latency_seed` and the order id (default 0).
    #[serde(default)]
    pub latency_jitter_us: Option<u32>,
    /// Latency model: the seed of the jitter (default 0).
    #[serde(default)]
    pub latency_seed: Option<u64>,
}

fn default_price_band_bps() -> u32 {
    1000
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentFile {
    #[serde(rename = "instrument")]
    pub instruments: Vec<InstrumentSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum InstrumentError {
    #[error("instrument file is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("instrument {symbol}: field {field}: {problem}")]
    Field { symbol: String, field: &'static str, problem: String },
    #[error("instrument {0} is listed twice")]
    Duplicate(String),
    #[error("the instrument table is empty or has more than {INSTRUMENTS_MAX} instruments")]
    Count,
}

/// A validated instrument with its derived arithmetic constants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Instrument {
    pub symbol_id: SymbolId,
    pub symbol: String,
    pub asset_class: AssetClass,
    pub tick: Step,
    pub lot: Step,
    pub qty_min_lots: i64,
    pub qty_max_lots: i64,
    pub position_max_lots: i64,
    pub maker_fee_bps: i64,
    pub taker_fee_bps: i64,
    pub price_band_bps: i64,
    pub short_allowed: bool,
    pub initial_margin_bps: i64,
    /// Nanoseconds after 00:00 UTC at which DAY orders expire.
    pub session_close_ns: i64,
    /// Liquidity mode and the simulation model's parameters.
    pub sim: SimParams,
    /// `notional_micros = price_ticks * qty_lots * notional_multiplier / notional_divisor`.
    notional_multiplier: i128,
    notional_divisor: i128,
}

impl Instrument {
    fn from_spec(symbol_id: SymbolId, spec: &InstrumentSpec) -> Result<Instrument, InstrumentError> {
        let field_error = |field: &'static str, problem: String| InstrumentError::Field {
            symbol: spec.symbol.clone(),
            field,
            problem,
        };
        if spec.symbol.is_empty() || spec.symbol.len() > 16 || !spec.symbol.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(field_error("symbol", "1 to 16 printable ASCII characters".into()));
        }
        let tick = Step::parse(&spec.tick).map_err(|e| field_error("tick", e.to_string()))?;
        let lot = Step::parse(&spec.lot).map_err(|e| field_error("lot", e.to_string()))?;
        let lots = |field: &'static str, text: &str| -> Result<i64, InstrumentError> {
            let value =
                Decimal::parse(text).and_then(|d| d.to_steps(lot)).map_err(|e| field_error(field, e.to_string()))?;
            if value <= 0 {
                return Err(field_error(field, "must be positive".into()));
            }
            Ok(value)
        };
        let qty_min_lots = match &spec.min_qty {
            Some(text) => lots("min_qty", text)?,
            None => 1,
        };
        let qty_max_lots = lots("max_qty", &spec.max_qty)?;
        let position_max_lots = lots("max_position", &spec.max_position)?;
        if qty_min_lots > qty_max_lots {
            return Err(field_error("min_qty", "greater than max_qty".into()));
        }
        if spec.maker_fee_bps >= 10_000 || spec.taker_fee_bps >= 10_000 {
            return Err(field_error("fee_bps", "must be below 10000".into()));
        }
        if spec.initial_margin_bps == 0 || spec.initial_margin_bps > 10_000 {
            return Err(field_error("initial_margin_bps", "must be 1 to 10000".into()));
        }
        if spec.price_band_bps == 0 || spec.price_band_bps > 100_000 {
            return Err(field_error("price_band_bps", "must be 1 to 100000".into()));
        }
        let session_close_ns = parse_time_of_day(&spec.session_close_utc)
            .ok_or_else(|| field_error("session_close_utc", "expected HH:MM".into()))?;

        let sim = sim_params(spec, lot).map_err(|(field, problem)| field_error(field, problem))?;

        // value in micros = pt * tick.m * 10^-tick.s * ql * lot.m * 10^-lot.s * 10^6
        let exponent = 6 - i64::from(tick.scale) - i64::from(lot.scale);
        let base = i128::from(tick.mantissa) * i128::from(lot.mantissa);
        let (notional_multiplier, notional_divisor) = if exponent >= 0 {
            (base * 10i128.pow(exponent as u32), 1)
        } else {
            (base, 10i128.pow((-exponent) as u32))
        };
        Ok(Instrument {
            symbol_id,
            symbol: spec.symbol.clone(),
            asset_class: spec.asset_class,
            tick,
            lot,
            qty_min_lots,
            qty_max_lots,
            position_max_lots,
            maker_fee_bps: i64::from(spec.maker_fee_bps),
            taker_fee_bps: i64::from(spec.taker_fee_bps),
            price_band_bps: i64::from(spec.price_band_bps),
            short_allowed: spec.short_allowed,
            initial_margin_bps: i64::from(spec.initial_margin_bps),
            session_close_ns,
            sim,
            notional_multiplier,
            notional_divisor,
        })
    }

    /// Exact value of a trade, rounded down to the micro; `None` if it does not fit in `i64`.
    pub fn notional_floor_micros(&self, price_ticks: i64, qty_lots: i64) -> Option<i64> {
        debug_assert!(price_ticks > 0 && qty_lots >= 0);
        let product = self.notional_product(price_ticks, qty_lots)?;
        i64::try_from(product / self.notional_divisor).ok()
    }

    /// Exact value of a trade, rounded up to the micro; `None` if it does not fit in `i64`.
    pub fn notional_ceil_micros(&self, price_ticks: i64, qty_lots: i64) -> Option<i64> {
        debug_assert!(price_ticks > 0 && qty_lots >= 0);
        let product = self.notional_product(price_ticks, qty_lots)?;
        i64::try_from((product + self.notional_divisor - 1) / self.notional_divisor).ok()
    }

    fn notional_product(&self, price_ticks: i64, qty_lots: i64) -> Option<i128> {
        i128::from(price_ticks).checked_mul(i128::from(qty_lots))?.checked_mul(self.notional_multiplier)
    }

    /// The price in ticks that `text` names exactly, or why not.
    pub fn price_ticks_from_text(&self, text: &str) -> Result<i64, DecimalError> {
        Decimal::parse(text)?.to_steps(self.tick)
    }

    /// The quantity in lots that `text` names exactly, or why not.
    pub fn qty_lots_from_text(&self, text: &str) -> Result<i64, DecimalError> {
        Decimal::parse(text)?.to_steps(self.lot)
    }

    /// The first session close strictly after `timestamp_ns`.
    pub fn next_session_close_ns(&self, timestamp_ns: i64) -> i64 {
        // Saturates at the end of representable time (year 2262): such an order never expires.
        let day_start_ns = timestamp_ns - timestamp_ns.rem_euclid(NANOS_PER_DAY);
        let close_ns = day_start_ns.saturating_add(self.session_close_ns);
        if close_ns > timestamp_ns {
            close_ns
        } else {
            close_ns.saturating_add(NANOS_PER_DAY)
        }
    }

    /// Whether `price_ticks` lies within the price band around `reference_ticks`.
    pub fn within_band(&self, price_ticks: i64, reference_ticks: i64) -> bool {
        let distance = i128::from(price_ticks - reference_ticks).abs() * i128::from(BASIS_POINTS_PER_UNIT);
        distance <= i128::from(reference_ticks) * i128::from(self.price_band_bps)
    }

    /// The furthest price from `reference_ticks` that the band allows on `upper` or lower side.
    pub fn band_edge_ticks(&self, reference_ticks: i64, upper: bool) -> i64 {
        let width = i128::from(reference_ticks) * i128::from(self.price_band_bps) / i128::from(BASIS_POINTS_PER_UNIT);
        let width = i64::try_from(width).unwrap_or(i64::MAX / 2);
        if upper {
            reference_ticks.saturating_add(width)
        } else {
            (reference_ticks - width).max(1)
        }
    }
}

/// The longest modelled latency (base or jitter): a minute.
const LATENCY_US_MAX: u32 = 60_000_000;

/// The simulation parameters of a spec: asset-class defaults overridden by the spec's own values,
/// each checked against its range.
fn sim_params(spec: &InstrumentSpec, lot: Step) -> Result<SimParams, (&'static str, String)> {
    let mut params = SimParams::defaults(spec.asset_class);
    params.liquidity = spec.liquidity;
    params.queue_position = spec.queue_position;
    let rate =
        |field: &'static str, value: Option<u32>, range: std::ops::RangeInclusive<u32>, target: &mut i64| match value {
            Some(value) if !range.contains(&value) => {
                Err((field, format!("must be {} to {}", range.start(), range.end())))
            }
            Some(value) => {
                *target = i64::from(value);
                Ok(())
            }
            None => Ok(()),
        };
    rate("spread_bps", spec.spread_bps, 0..=10_000, &mut params.spread_bps)?;
    rate("sigma_daily_bps", spec.sigma_daily_bps, 0..=10_000, &mut params.sigma_daily_bps)?;
    rate("impact_coefficient_bps", spec.impact_coefficient_bps, 0..=100_000, &mut params.impact_coefficient_bps)?;
    rate("quote_size_limit_bps", spec.quote_size_limit_bps, 1..=10_000_000, &mut params.quote_size_limit_bps)?;
    rate("adv_limit_bps", spec.adv_limit_bps, 1..=10_000_000, &mut params.adv_limit_bps)?;
    rate("slices_max", spec.slices_max, 1..=SLICES_MAX as u32, &mut params.slices_max)?;
    rate("latency_us", spec.latency_us, 0..=LATENCY_US_MAX, &mut params.latency_ns)?;
    rate("latency_jitter_us", spec.latency_jitter_us, 0..=LATENCY_US_MAX, &mut params.latency_jitter_ns)?;
    params.latency_ns *= NANOS_PER_MICRO;
    params.latency_jitter_ns *= NANOS_PER_MICRO;
    params.latency_seed = spec.latency_seed.unwrap_or(0);
    if let Some(text) = &spec.adv {
        let lots = Decimal::parse(text).and_then(|d| d.to_steps(lot)).map_err(|e| ("adv", e.to_string()))?;
        if lots <= 0 {
            return Err(("adv", "must be positive".into()));
        }
        params.adv_lots = lots;
    }
    Ok(params)
}

fn parse_time_of_day(text: &str) -> Option<i64> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: i64 = hours.parse().ok()?;
    let minutes: i64 = minutes.parse().ok()?;
    if !(0..24).contains(&hours) || !(0..60).contains(&minutes) {
        return None;
    }
    Some((hours * 3600 + minutes * 60) * NANOS_PER_SECOND)
}

/// All instruments, indexed by `SymbolId`.
#[derive(Clone, Debug)]
pub struct InstrumentTable {
    instruments: Vec<Instrument>,
}

impl InstrumentTable {
    pub fn from_toml(text: &str) -> Result<InstrumentTable, InstrumentError> {
        let file: InstrumentFile = toml::from_str(text)?;
        InstrumentTable::from_specs(&file.instruments)
    }

    pub fn from_specs(specs: &[InstrumentSpec]) -> Result<InstrumentTable, InstrumentError> {
        if specs.is_empty() || specs.len() > INSTRUMENTS_MAX {
            return Err(InstrumentError::Count);
        }
        let mut instruments = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            if instruments.iter().any(|i: &Instrument| i.symbol == spec.symbol) {
                return Err(InstrumentError::Duplicate(spec.symbol.clone()));
            }
            instruments.push(Instrument::from_spec(index as SymbolId, spec)?);
        }
        Ok(InstrumentTable { instruments })
    }

    /// The embedded default table.
    pub fn default_table() -> InstrumentTable {
        InstrumentTable::from_toml(DEFAULT_INSTRUMENTS_TOML).expect("the embedded instrument table is valid")
    }

    pub fn get(&self, symbol_id: SymbolId) -> Option<&Instrument> {
        self.instruments.get(usize::from(symbol_id))
    }

    pub fn by_symbol(&self, symbol: &str) -> Option<&Instrument> {
        self.instruments.iter().find(|i| i.symbol == symbol)
    }

    pub fn len(&self) -> usize {
        self.instruments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instruments.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Instrument> {
        self.instruments.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_has_the_documented_instruments() {
        let table = InstrumentTable::default_table();
        for symbol in
            ["AAPL", "MSFT", "NVDA", "TSLA", "SPY", "QQQ", "BTC-USD", "ETH-USD", "EUR-USD", "GBP-USD", "USD-JPY"]
        {
            assert!(table.by_symbol(symbol).is_some(), "{symbol} missing");
        }
        let btc = table.by_symbol("BTC-USD").unwrap();
        assert_eq!(btc.qty_lots_from_text("0.00000001"), Ok(1));
        assert_eq!(btc.price_ticks_from_text("150.255"), Err(DecimalError::NotOnGrid));
        let jpy = table.by_symbol("USD-JPY").unwrap();
        assert_eq!(jpy.price_ticks_from_text("151.123"), Ok(151_123));
    }

    #[test]
    fn notional_is_exact_and_rounds_in_the_stated_direction() {
        let table = InstrumentTable::default_table();
        let aapl = table.by_symbol("AAPL").unwrap();
        // 10 shares at 150.25 = 1502.50 = 1_502_500_000 micros, exactly.
        assert_eq!(aapl.notional_floor_micros(15025, 10), Some(1_502_500_000));
        assert_eq!(aapl.notional_ceil_micros(15025, 10), Some(1_502_500_000));
        let btc = table.by_symbol("BTC-USD").unwrap();
        // One satoshi at 60000.01 = 0.0006000001 USD = 600.0001 micros.
        assert_eq!(btc.notional_floor_micros(6_000_001, 1), Some(600));
        assert_eq!(btc.notional_ceil_micros(6_000_001, 1), Some(601));
        // One BTC at 60000.01: exact.
        assert_eq!(btc.notional_floor_micros(6_000_001, 100_000_000), Some(60_000_010_000));
        assert_eq!(aapl.notional_floor_micros(i64::MAX, i64::MAX), None);
    }

    #[test]
    fn session_close_and_band() {
        let table = InstrumentTable::default_table();
        let btc = table.by_symbol("BTC-USD").unwrap();
        assert_eq!(btc.next_session_close_ns(0), NANOS_PER_DAY);
        assert_eq!(btc.next_session_close_ns(NANOS_PER_DAY - 1), NANOS_PER_DAY);
        assert_eq!(btc.next_session_close_ns(i64::MAX - 1), i64::MAX);
        let aapl = table.by_symbol("AAPL").unwrap();
        assert!(aapl.within_band(11000, 10000));
        assert!(!aapl.within_band(11001, 10000));
        assert!(aapl.within_band(9000, 10000));
        assert!(!aapl.within_band(8999, 10000));
        assert_eq!(aapl.band_edge_ticks(10000, true), 11000);
        assert_eq!(aapl.band_edge_ticks(10000, false), 9000);
    }

    #[test]
    fn bad_tables_are_rejected_with_the_field_named() {
        let bad = DEFAULT_INSTRUMENTS_TOML.replacen("tick = \"0.01\"", "tick = \"0\"", 1);
        let error = InstrumentTable::from_toml(&bad).unwrap_err().to_string();
        assert!(error.contains("tick"), "{error}");
        assert!(InstrumentTable::from_toml("instrument = []").is_err());
    }
}
