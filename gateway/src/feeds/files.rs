//! The file source: replays recorded trades, quotes or OHLCV bars from CSV.
//!
//! # Format
//! A header row names the columns; other columns are ignored, order is free. Every file has
//! `symbol` and exactly one time column: `timestamp_ms` or `timestamp_ns` (integers since the Unix
//! epoch) or `time` (RFC 3339, e.g. `2024-06-03T13:30:00.123Z`). Then, by `format`:
//! - `trades`: `price`, `size`
//! - `quotes`: `bid`, `bid_size`, `ask`, `ask_size`
//! - `bars`: `open`, `high`, `low`, `close`, `volume`; the time is the bar's start and
//!   `bar_interval_ms` its length.
//!
//! Prices and sizes are decimals (exponent form allowed), rounded onto the instrument's grid as
//! [`super::tick`] says. A row that cannot be read, names an unknown symbol, or is older than the
//! symbol's previous row is counted, logged and skipped; the replay goes on.
//!
//! # Intrabar path
//! A bar of length `D` starting at `T` becomes four trades: the open at `T`, then the low at
//! `T + D/4` and the high at `T + D/2` when `close >= open` (else the high first, then the low),
//! and the close at `T + 3D/4`. Each of the first three carries `volume / 4` lots (rounded down);
//! the close carries the rest, so the four add up to the bar's volume.
//!
//! # Pace
//! `recorded` sends each row when as much time has passed since the first row as was recorded,
//! `x<k>` (e.g. `x10`, `x0.5`) when that time divided by `k` has, and `fast` at once. Waits go through a [`Sleeper`], so tests
//! observe the pacing without sleeping it.

use super::config::FeedConfigError;
use super::pace::Sleeper;
use super::status::{Counter, FeedStatus};
use super::tick::{parse_decimal, Converter, Tick, TickError};
use serde::{Deserialize, Serialize};
use simex_engine::{InstrumentTable, SymbolId};
use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::path::PathBuf;

/// One file to replay (`[[files]]` in the feed file).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileFeedConfig {
    pub path: PathBuf,
    pub format: FileFormat,
    #[serde(default)]
    pub pace: Pace,
    /// Length of one bar (`bars` only).
    #[serde(default)]
    pub bar_interval_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Trades,
    Quotes,
    Bars,
}

/// How fast a file is replayed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum Pace {
    /// Wait the recorded time between rows.
    #[default]
    Recorded,
    /// Wait the recorded time times `10^scale / speed_mantissa` (`x2.5`: mantissa 25, scale 1).
    Scaled { speed_mantissa: u64, speed_scale: u32 },
    /// Do not wait.
    Fast,
}

impl TryFrom<String> for Pace {
    type Error = String;

    fn try_from(text: String) -> Result<Pace, String> {
        match text.as_str() {
            "recorded" => Ok(Pace::Recorded),
            "fast" => Ok(Pace::Fast),
            scaled => {
                let speed = scaled
                    .strip_prefix('x')
                    .and_then(|k| parse_decimal(k).ok())
                    .filter(|d| d.mantissa > 0 && d.mantissa <= i128::from(u32::MAX) && d.scale <= 9);
                match speed {
                    Some(d) => Ok(Pace::Scaled { speed_mantissa: d.mantissa as u64, speed_scale: d.scale }),
                    None => Err(format!("pace {text:?}: expected recorded, fast, or x<speed> such as x10 or x0.5")),
                }
            }
        }
    }
}

impl From<Pace> for String {
    fn from(pace: Pace) -> String {
        match pace {
            Pace::Recorded => "recorded".into(),
            Pace::Fast => "fast".into(),
            Pace::Scaled { speed_mantissa, speed_scale } => {
                let mut text = String::from("x");
                let _ = simex_engine::decimal::format_scaled(&mut text, i128::from(speed_mantissa), speed_scale);
                text
            }
        }
    }
}

impl Pace {
    /// How long to wait for `recorded_ns` of recorded time.
    pub fn wait_ns(self, recorded_ns: u64) -> u64 {
        match self {
            Pace::Recorded => recorded_ns,
            Pace::Fast => 0,
            Pace::Scaled { speed_mantissa, speed_scale } => {
                let wait = u128::from(recorded_ns) * 10u128.pow(speed_scale) / u128::from(speed_mantissa);
                u64::try_from(wait).unwrap_or(u64::MAX)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("{path}: cannot read the header: {source}")]
    Header { path: String, source: csv::Error },
    #[error("{path}: {problem}")]
    Columns { path: String, problem: String },
}

impl From<FileError> for FeedConfigError {
    fn from(error: FileError) -> FeedConfigError {
        FeedConfigError::Invalid { source_name: "file", problem: error.to_string() }
    }
}

#[derive(Clone, Copy, Debug)]
enum TimeColumn {
    Millis(usize),
    Nanos(usize),
    Rfc3339(usize),
}

/// Column indexes of the fields a format needs, in the order the format lists them.
struct Columns {
    time: TimeColumn,
    symbol: usize,
    fields: Vec<usize>,
}

const TRADE_FIELDS: &[&str] = &["price", "size"];
const QUOTE_FIELDS: &[&str] = &["bid", "bid_size", "ask", "ask_size"];
const BAR_FIELDS: &[&str] = &["open", "high", "low", "close", "volume"];

/// A CSV file (or any reader) as a stream of ticks.
pub struct FileSource<R: Read> {
    name: String,
    reader: csv::Reader<R>,
    format: FileFormat,
    bar_interval_ns: i64,
    columns: Columns,
    instruments: InstrumentTable,
    symbol_ids: HashMap<String, SymbolId>,
    last_timestamp_ns: HashMap<SymbolId, i64>,
    pending: VecDeque<Tick>,
    record: csv::StringRecord,
}

impl FileSource<std::fs::File> {
    pub fn open(config: &FileFeedConfig, instruments: &InstrumentTable) -> Result<Self, FileError> {
        let name = config.path.display().to_string();
        let file =
            std::fs::File::open(&config.path).map_err(|source| FileError::Open { path: name.clone(), source })?;
        FileSource::from_reader(name, file, config, instruments)
    }
}

impl<R: Read> FileSource<R> {
    pub fn from_reader(
        name: String,
        reader: R,
        config: &FileFeedConfig,
        instruments: &InstrumentTable,
    ) -> Result<Self, FileError> {
        let columns_error = |problem: String| FileError::Columns { path: name.clone(), problem };
        let bar_interval_ns = match (config.format, config.bar_interval_ms) {
            (FileFormat::Bars, Some(ms)) if ms > 0 && ms <= 366 * 86_400_000 => ms as i64 * 1_000_000,
            (FileFormat::Bars, _) => return Err(columns_error("bars need a bar_interval_ms of 1 to a year".into())),
            _ => 0,
        };
        let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(reader);
        let header = reader.headers().map_err(|source| FileError::Header { path: name.clone(), source })?.clone();
        let find = |column: &str| header.iter().position(|h| h == column);
        let time = match (find("timestamp_ms"), find("timestamp_ns"), find("time")) {
            (Some(index), None, None) => TimeColumn::Millis(index),
            (None, Some(index), None) => TimeColumn::Nanos(index),
            (None, None, Some(index)) => TimeColumn::Rfc3339(index),
            _ => return Err(columns_error("exactly one of timestamp_ms, timestamp_ns, time is needed".into())),
        };
        let symbol = find("symbol").ok_or_else(|| columns_error("no symbol column".into()))?;
        let wanted = match config.format {
            FileFormat::Trades => TRADE_FIELDS,
            FileFormat::Quotes => QUOTE_FIELDS,
            FileFormat::Bars => BAR_FIELDS,
        };
        let fields = wanted
            .iter()
            .map(|column| find(column).ok_or_else(|| columns_error(format!("no {column} column"))))
            .collect::<Result<Vec<_>, _>>()?;
        let symbol_ids = instruments.iter().map(|i| (i.symbol.clone(), i.symbol_id)).collect();
        Ok(FileSource {
            name,
            reader,
            format: config.format,
            bar_interval_ns,
            columns: Columns { time, symbol, fields },
            instruments: instruments.clone(),
            symbol_ids,
            last_timestamp_ns: HashMap::new(),
            pending: VecDeque::new(),
            record: csv::StringRecord::new(),
        })
    }

    /// The next tick, skipping (and counting) rows that cannot be used; `None` at the end.
    pub fn next_tick(&mut self, status: &FeedStatus) -> Option<Tick> {
        loop {
            if let Some(tick) = self.pending.pop_front() {
                return Some(tick);
            }
            match self.reader.read_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(error) => {
                    status.add(Counter::Malformed, 1);
                    tracing::warn!(file = %self.name, %error, "skipping an unreadable row");
                    if error.is_io_error() {
                        return None;
                    }
                    continue;
                }
            }
            let line = self.record.position().map_or(0, |p| p.line());
            match self.row_ticks() {
                Ok(()) => {}
                Err(RowError::OutOfOrder) => status.add(Counter::OutOfOrder, 1),
                Err(RowError::Tick(error)) => {
                    let counter = match error {
                        TickError::UnknownSymbol(_) => Counter::UnknownSymbol,
                        TickError::Timestamp(_) => Counter::Malformed,
                        TickError::Number { .. } | TickError::NotPositive { .. } => Counter::BadNumbers,
                    };
                    status.add(counter, 1);
                    tracing::warn!(file = %self.name, line, %error, "skipping a row");
                }
            }
        }
    }

    fn field(&self, index: usize) -> &str {
        self.record.get(index).unwrap_or("")
    }

    /// Turns the current row into ticks on `pending`.
    fn row_ticks(&mut self) -> Result<(), RowError> {
        let symbol = self.field(self.columns.symbol);
        let symbol_id = *self.symbol_ids.get(symbol).ok_or_else(|| TickError::UnknownSymbol(symbol.to_string()))?;
        let timestamp_ns = self.timestamp_ns()?;
        let last = self.last_timestamp_ns.entry(symbol_id).or_insert(i64::MIN);
        if timestamp_ns < *last {
            return Err(RowError::OutOfOrder);
        }
        let instrument = self.instruments.get(symbol_id).expect("ids come from the table");
        let converter = Converter { instrument };
        let f = |i: usize| self.record.get(self.columns.fields[i]).unwrap_or("");
        match self.format {
            FileFormat::Trades => self.pending.push_back(converter.trade(timestamp_ns, f(0), f(1))?),
            FileFormat::Quotes => self.pending.push_back(converter.quote(timestamp_ns, f(0), f(1), f(2), f(3))?),
            FileFormat::Bars => {
                let path = bar_path(&converter, timestamp_ns, self.bar_interval_ns, [f(0), f(1), f(2), f(3)], f(4))?;
                self.pending.extend(path);
            }
        }
        *self.last_timestamp_ns.get_mut(&symbol_id).expect("inserted above") = timestamp_ns;
        Ok(())
    }

    fn timestamp_ns(&self) -> Result<i64, TickError> {
        let bad = |text: &str| TickError::Timestamp(text.to_string());
        match self.columns.time {
            TimeColumn::Millis(index) => {
                let text = self.field(index);
                text.parse::<i64>().ok().and_then(|ms| ms.checked_mul(1_000_000)).ok_or_else(|| bad(text))
            }
            TimeColumn::Nanos(index) => self.field(index).parse::<i64>().map_err(|_| bad(self.field(index))),
            TimeColumn::Rfc3339(index) => {
                let text = self.field(index);
                let time = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| bad(text))?;
                i64::try_from(time.unix_timestamp_nanos()).map_err(|_| bad(text))
            }
        }
    }
}

enum RowError {
    OutOfOrder,
    Tick(TickError),
}

impl From<TickError> for RowError {
    fn from(error: TickError) -> RowError {
        RowError::Tick(error)
    }
}

/// The documented intrabar path of one bar: four trades (see the module doc).
fn bar_path(
    converter: &Converter<'_>,
    start_ns: i64,
    interval_ns: i64,
    [open, high, low, close]: [&str; 4],
    volume: &str,
) -> Result<[Tick; 4], TickError> {
    let price = |field, text| converter.price_ticks(field, text, super::tick::Rounding::Nearest);
    let (open, high, low, close) =
        (price("open", open)?, price("high", high)?, price("low", low)?, price("close", close)?);
    let volume_lots = converter.qty_lots("volume", volume)?;
    let quarter = volume_lots / 4;
    let (second, third) = if close >= open { (low, high) } else { (high, low) };
    let prices = [open, second, third, close];
    let quantities = [quarter, quarter, quarter, volume_lots - 3 * quarter];
    Ok(std::array::from_fn(|i| Tick {
        symbol_id: converter.instrument.symbol_id,
        timestamp_ns: start_ns.saturating_add(interval_ns / 4 * i as i64),
        kind: super::tick::TickKind::Trade { price_ticks: prices[i], qty_lots: quantities[i] },
    }))
}

/// Replays the source at its pace until it ends, is stopped, or the pump is gone.
pub fn run<R: Read>(
    mut source: FileSource<R>,
    pace: Pace,
    mut sleeper: impl Sleeper,
    sender: &tokio::sync::mpsc::Sender<Tick>,
    status: &FeedStatus,
) {
    // Recorded time since the first row; a row older than the latest one does not wait.
    let (mut first_ns, mut latest_ns) = (None, i64::MIN);
    while let Some(tick) = source.next_tick(status) {
        let first_ns = *first_ns.get_or_insert(tick.timestamp_ns);
        latest_ns = latest_ns.max(tick.timestamp_ns);
        let recorded_ns = latest_ns.saturating_sub(first_ns).max(0) as u64;
        if !sleeper.sleep_until_ns(pace.wait_ns(recorded_ns)) || sender.blocking_send(tick).is_err() {
            return;
        }
        status.add(Counter::Ticks, 1);
    }
    tracing::info!(file = %source.name, "file replay finished");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::pace::RecordingSleeper;
    use crate::feeds::tick::TickKind;

    fn config(format: FileFormat, pace: &str) -> FileFeedConfig {
        FileFeedConfig {
            path: "memory.csv".into(),
            format,
            pace: Pace::try_from(pace.to_string()).unwrap(),
            bar_interval_ms: Some(60_000),
        }
    }

    fn ticks(format: FileFormat, text: &str) -> (Vec<Tick>, FeedStatus) {
        let instruments = InstrumentTable::default_table();
        let mut source =
            FileSource::from_reader("memory".into(), text.as_bytes(), &config(format, "fast"), &instruments).unwrap();
        let status = FeedStatus::default();
        let ticks = std::iter::from_fn(|| source.next_tick(&status)).collect();
        (ticks, status)
    }

    fn trade(tick: &Tick) -> (i64, i64, i64) {
        match tick.kind {
            TickKind::Trade { price_ticks, qty_lots } => (tick.timestamp_ns, price_ticks, qty_lots),
            TickKind::Quote { .. } => panic!("a quote: {tick:?}"),
        }
    }

    #[test]
    fn trades_are_read_and_bad_rows_are_counted_and_skipped() {
        let (ticks, status) = ticks(
            FileFormat::Trades,
            "timestamp_ms,symbol,price,size,venue\n\
             1000,AAPL,190.25,10,X\n\
             1001,AAPL,abc,10,X\n\
             1002,NOPE,1,1,X\n\
             999,AAPL,190.00,1,X\n\
             1003,AAPL,190.255,1.5,X\n\
             oops,AAPL,1,1,X\n\
             1004,BTC-USD,6.1e4,1.5e-7,X\n",
        );
        let trades: Vec<_> = ticks.iter().map(trade).collect();
        assert_eq!(trades, [(1_000_000_000, 19_025, 10), (1_003_000_000, 19_026, 1), (1_004_000_000, 6_100_000, 15)]);
        assert_eq!(status.count(Counter::BadNumbers), 1);
        assert_eq!(status.count(Counter::UnknownSymbol), 1);
        assert_eq!(status.count(Counter::OutOfOrder), 1);
        assert_eq!(status.count(Counter::Malformed), 1);
    }

    #[test]
    fn quotes_round_outward_and_times_may_be_rfc3339() {
        let (ticks, _) = ticks(
            FileFormat::Quotes,
            "time,symbol,bid,bid_size,ask,ask_size\n2024-06-03T13:30:00.5Z,EUR-USD,1.080004,1000,1.080016,2000\n",
        );
        assert_eq!(ticks.len(), 1);
        assert_eq!(ticks[0].timestamp_ns, 1_717_421_400_500_000_000);
        assert_eq!(
            ticks[0].kind,
            TickKind::Quote {
                bid_price_ticks: 108_000,
                bid_qty_lots: 1000,
                ask_price_ticks: 108_002,
                ask_qty_lots: 2000
            }
        );
    }

    #[test]
    fn bars_follow_the_documented_intrabar_path() {
        let (ticks, _) = ticks(
            FileFormat::Bars,
            "timestamp_ns,symbol,open,high,low,close,volume\n\
             0,AAPL,100.00,101.00,99.00,100.50,1002\n\
             60000000000,AAPL,100.50,100.70,99.50,99.60,7\n",
        );
        let trades: Vec<_> = ticks.iter().map(trade).collect();
        let m = 60_000_000_000 / 4;
        assert_eq!(
            trades,
            [
                (0, 10_000, 250),
                (m, 9_900, 250),
                (2 * m, 10_100, 250),
                (3 * m, 10_050, 252),
                (4 * m, 10_050, 1),
                (5 * m, 10_070, 1),
                (6 * m, 9_950, 1),
                (7 * m, 9_960, 4),
            ]
        );
    }

    #[test]
    fn a_file_without_the_needed_columns_is_refused() {
        let instruments = InstrumentTable::default_table();
        for text in ["symbol,price,size\n", "timestamp_ms,time,symbol,price,size\n", "timestamp_ms,symbol,price\n"] {
            let result =
                FileSource::from_reader("m".into(), text.as_bytes(), &config(FileFormat::Trades, "fast"), &instruments);
            assert!(matches!(result, Err(FileError::Columns { .. })), "{text:?}");
        }
        let mut no_interval = config(FileFormat::Bars, "fast");
        no_interval.bar_interval_ms = None;
        let header = "timestamp_ms,symbol,open,high,low,close,volume\n";
        assert!(FileSource::from_reader("m".into(), header.as_bytes(), &no_interval, &instruments).is_err());
    }

    #[test]
    fn pace_scales_the_recorded_waits() {
        let text = "timestamp_ms,symbol,price,size\n0,AAPL,1,1\n1000,AAPL,1,1\n1000,MSFT,1,1\n1500,AAPL,1,1\n";
        let instruments = InstrumentTable::default_table();
        let mut waits = Vec::new();
        for pace in ["recorded", "x4", "x0.5", "fast"] {
            let config = config(FileFormat::Trades, pace);
            let source = FileSource::from_reader("m".into(), text.as_bytes(), &config, &instruments).unwrap();
            let sleeper = RecordingSleeper::default();
            let (sender, mut receiver) = tokio::sync::mpsc::channel(16);
            run(source, config.pace, sleeper.clone(), &sender, &FeedStatus::default());
            drop(sender);
            let mut sent = 0;
            while receiver.try_recv().is_ok() {
                sent += 1;
            }
            assert_eq!(sent, 4);
            waits.push(sleeper.offsets_ns.lock().unwrap().clone());
        }
        let ms = 1_000_000;
        assert_eq!(waits[0], [0, 1000 * ms, 1000 * ms, 1500 * ms]);
        assert_eq!(waits[1], [0, 250 * ms, 250 * ms, 375 * ms]);
        assert_eq!(waits[2], [0, 2000 * ms, 2000 * ms, 3000 * ms]);
        assert_eq!(waits[3], [0, 0, 0, 0]);
        assert!(Pace::try_from("x0".to_string()).is_err());
        assert!(Pace::try_from("slow".to_string()).is_err());
        assert_eq!(String::from(Pace::try_from("x2.5".to_string()).unwrap()), "x2.5");
    }
}
