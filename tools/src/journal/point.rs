//! Sequences and times as an operator types them.
//!
//! Times are RFC 3339 (`2026-01-05T14:30:00Z`, any offset, up to nanoseconds) because that is what
//! logs and client reports carry, or raw nanoseconds since the Unix epoch because that is what the
//! journal and JSON output carry, so a value can be pasted from either. A replay point is a sequence
//! (a plain integer: journal sequences are what `verify` and `dump` print) or a time; nanoseconds as
//! a point are written with an `ns` suffix so they are never mistaken for a sequence.

use crate::script::time::parse_rfc3339;

/// A moment in a venue's history, as given on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// After the record with this sequence (of the shard given with `--shard`).
    Seq(u64),
    /// After every record whose timestamp is at or before this time, in every shard.
    Time(i64),
}

/// A time: RFC 3339, or integer nanoseconds since the Unix epoch (optionally suffixed `ns`).
pub fn parse_time(text: &str) -> Result<i64, String> {
    let digits = text.strip_suffix("ns").unwrap_or(text);
    if !digits.is_empty() && digits.bytes().enumerate().all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-')) {
        return digits.parse::<i64>().map_err(|_| format!("`{text}` is not a time in nanoseconds that fits in i64"));
    }
    parse_rfc3339(text)
        .map_err(|_| format!("`{text}` is not a time: use RFC 3339 (2026-01-05T14:30:00Z) or nanoseconds since 1970"))
}

/// A replay point: a sequence (integer), or a time (RFC 3339, or nanoseconds with an `ns` suffix).
pub fn parse_point(text: &str) -> Result<Point, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().map(Point::Seq).map_err(|_| format!("`{text}` is not a sequence number"));
    }
    if text.ends_with("ns") || text.contains('T') {
        return parse_time(text).map(Point::Time);
    }
    Err(format!(
        "`{text}` is not a point: give a sequence (52311), an RFC 3339 time (2026-01-05T14:30:00Z) or nanoseconds \
         with an ns suffix (1767623400000000000ns)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::time::DEFAULT_START_NS;

    #[test]
    fn times_are_rfc3339_or_nanoseconds() {
        assert_eq!(parse_time("2026-01-05T14:30:00Z"), Ok(DEFAULT_START_NS));
        assert_eq!(parse_time("2026-01-05T09:30:00-05:00"), Ok(DEFAULT_START_NS));
        assert_eq!(parse_time("1767623400000000000"), Ok(DEFAULT_START_NS));
        assert_eq!(parse_time("1767623400000000000ns"), Ok(DEFAULT_START_NS));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("99999999999999999999").is_err());
    }

    #[test]
    fn points_are_sequences_unless_they_look_like_times() {
        assert_eq!(parse_point("52311"), Ok(Point::Seq(52311)));
        assert_eq!(parse_point("0"), Ok(Point::Seq(0)));
        assert_eq!(parse_point("2026-01-05T14:30:00Z"), Ok(Point::Time(DEFAULT_START_NS)));
        assert_eq!(parse_point("1767623400000000000ns"), Ok(Point::Time(DEFAULT_START_NS)));
        assert!(parse_point("-5").is_err());
        assert!(parse_point("later").is_err());
    }
}
