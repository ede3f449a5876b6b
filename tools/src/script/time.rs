//! Script time: RFC 3339 timestamps and durations in, nanoseconds since the Unix epoch out.
//!
//! The engine has no clock; every command carries its own timestamp and time may never go
//! backwards. A script names time in the way a person reads it (`"at": "2026-01-05T14:30:00Z"`),
//! or as raw nanoseconds (`"at_ns"`) copied from a journal, or not at all: then the [`Clock`] moves
//! one millisecond past the previous line, starting at [`DEFAULT_START_NS`]
//! (2026-01-05T14:30:00Z, a Monday, 09:30 in New York, the US equity open). The defaults make a
//! short script deterministic without any timestamps, and the check that time does not go backwards
//! lives here so that it is a script error with a line number instead of an engine assertion.

use simex_engine::NANOS_PER_SECOND;
use time::format_description::well_known::Rfc3339;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

/// 2026-01-05T14:30:00Z: when a script that names no time starts.
pub const DEFAULT_START_NS: i64 = 1_767_623_400 * NANOS_PER_SECOND;
/// How far the clock moves for a line that names no time.
pub const DEFAULT_STEP_NS: i64 = 1_000_000;

const NANOS_PER_MILLI: i64 = 1_000_000;
const NANOS_PER_MICRO: i64 = 1_000;

/// Output timestamps: UTC with all nine fractional digits, so they sort as text.
const OUTPUT_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("`{0}` is not an RFC 3339 timestamp (e.g. \"2026-01-05T14:30:00Z\")")]
    Malformed(String),
    #[error("`{0}` is outside what i64 nanoseconds since 1970 can hold (1677-09-21 to 2262-04-11)")]
    OutOfRange(String),
    #[error("`{0}` is not a duration (e.g. \"90s\", \"1h30m\", \"250ms\"; units d h m s ms us ns)")]
    BadDuration(String),
    #[error("time goes backwards: {at} is before the previous line's {previous}")]
    Backwards { at: String, previous: String },
}

/// Nanoseconds since the Unix epoch of an RFC 3339 timestamp (any offset; `Z` is UTC).
pub fn parse_rfc3339(text: &str) -> Result<i64, TimeError> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| TimeError::Malformed(text.to_string()))?;
    i64::try_from(parsed.unix_timestamp_nanos()).map_err(|_| TimeError::OutOfRange(text.to_string()))
}

/// `timestamp_ns` as RFC 3339 UTC with nanoseconds: `2026-01-05T14:30:00.000000000Z`.
pub fn format_rfc3339(timestamp_ns: i64) -> String {
    // Every i64 of nanoseconds is within the years time supports, and the format has no
    // component that can fail; the fallback keeps a bad value visible rather than panicking.
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(timestamp_ns))
        .ok()
        .and_then(|t| t.format(OUTPUT_FORMAT).ok())
        .unwrap_or_else(|| format!("invalid-timestamp-{timestamp_ns}ns"))
}

/// A duration such as `"90s"`, `"1h30m"`, `"250ms"`, `"1d"`: one or more `<digits><unit>` with
/// units `d`, `h`, `m`, `s`, `ms`, `us`, `ns`. In nanoseconds.
pub fn parse_duration(text: &str) -> Result<i64, TimeError> {
    let bad = || TimeError::BadDuration(text.to_string());
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut index = 0;
    while index < bytes.len() {
        let digits_start = index;
        while index < bytes.len() && bytes[index].is_ascii_digit() {
            index += 1;
        }
        let unit_start = index;
        while index < bytes.len() && bytes[index].is_ascii_alphabetic() {
            index += 1;
        }
        if digits_start == unit_start || unit_start == index {
            return Err(bad());
        }
        let count: i64 = text[digits_start..unit_start].parse().map_err(|_| bad())?;
        let unit_ns = match &text[unit_start..index] {
            "d" => 86_400 * NANOS_PER_SECOND,
            "h" => 3_600 * NANOS_PER_SECOND,
            "m" => 60 * NANOS_PER_SECOND,
            "s" => NANOS_PER_SECOND,
            "ms" => NANOS_PER_MILLI,
            "us" => NANOS_PER_MICRO,
            "ns" => 1,
            _ => return Err(bad()),
        };
        total = count.checked_mul(unit_ns).and_then(|part| total.checked_add(part)).ok_or_else(bad)?;
    }
    Ok(total)
}

/// When a line happens, as the script says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Not said: one millisecond after the previous line ([`DEFAULT_START_NS`] for the first).
    Next,
    /// `"at"` or `"at_ns"`.
    At(i64),
    /// `"by"` on an `advance_time` line: this long after the previous line.
    After(i64),
}

/// The script's notion of now, which only moves forward.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    last_ns: Option<i64>,
}

impl Clock {
    pub fn new() -> Clock {
        Clock::default()
    }

    /// The time of the last line, if any.
    pub fn now_ns(&self) -> Option<i64> {
        self.last_ns
    }

    /// Moves to the time of the next line; an error if that is before the previous line's.
    pub fn advance(&mut self, when: When) -> Result<i64, TimeError> {
        let base = self.last_ns.unwrap_or(DEFAULT_START_NS);
        let after = |step: i64| {
            base.checked_add(step).ok_or_else(|| TimeError::OutOfRange(format!("{} + {step} ns", format_rfc3339(base))))
        };
        let at = match (when, self.last_ns) {
            (When::Next, None) => DEFAULT_START_NS,
            (When::Next, Some(_)) => after(DEFAULT_STEP_NS)?,
            (When::After(by), _) => after(by)?,
            (When::At(at), _) => at,
        };
        if let Some(previous) = self.last_ns {
            if at < previous {
                return Err(TimeError::Backwards { at: format_rfc3339(at), previous: format_rfc3339(previous) });
            }
        }
        self.last_ns = Some(at);
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_start_is_the_documented_instant() {
        assert_eq!(parse_rfc3339("2026-01-05T14:30:00Z"), Ok(DEFAULT_START_NS));
        assert_eq!(format_rfc3339(DEFAULT_START_NS), "2026-01-05T14:30:00.000000000Z");
    }

    #[test]
    fn timestamps_round_trip_with_nanoseconds_and_offsets() {
        let ns = parse_rfc3339("2026-01-05T14:30:00.123456789Z").unwrap();
        assert_eq!(ns, DEFAULT_START_NS + 123_456_789);
        assert_eq!(format_rfc3339(ns), "2026-01-05T14:30:00.123456789Z");
        assert_eq!(parse_rfc3339("2026-01-05T09:30:00-05:00"), Ok(DEFAULT_START_NS));
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert!(parse_rfc3339("2026-01-05 14:30").is_err());
        assert!(parse_rfc3339("3000-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90 * NANOS_PER_SECOND));
        assert_eq!(parse_duration("1h30m"), Ok(5_400 * NANOS_PER_SECOND));
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("1d2ns"), Ok(86_400 * NANOS_PER_SECOND + 2));
        for bad in ["", "10", "s", "1.5s", "5x", "-1s", "1 s", "99999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clock_defaults_to_one_millisecond_steps_and_refuses_to_go_back() {
        let mut clock = Clock::new();
        assert_eq!(clock.advance(When::Next), Ok(DEFAULT_START_NS));
        assert_eq!(clock.advance(When::Next), Ok(DEFAULT_START_NS + DEFAULT_STEP_NS));
        assert_eq!(
            clock.advance(When::After(NANOS_PER_SECOND)),
            Ok(DEFAULT_START_NS + DEFAULT_STEP_NS + NANOS_PER_SECOND)
        );
        let now = clock.now_ns().unwrap();
        assert_eq!(clock.advance(When::At(now)), Ok(now), "equal is allowed");
        assert!(matches!(clock.advance(When::At(now - 1)), Err(TimeError::Backwards { .. })));
        assert_eq!(clock.now_ns(), Some(now), "a refused move changes nothing");
    }
}
