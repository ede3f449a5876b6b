//! `simex-journal`: the operator's tool for a venue's journal directory.
//!
//! Argument parsing and exit codes only; the commands are `simex_tools::journal`, and what each
//! one does, with examples, is in `docs/operations.md`.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use simex_tools::journal::point::{parse_point, parse_time, Point};
use simex_tools::journal::venue::Venue;
use simex_tools::journal::view::ReplayOptions;
use simex_tools::journal::{self, dump, install_panic_hook, stats, verify, view, write, ErrorKind, ToolError};

/// Verifies, dumps, replays, snapshots and measures a simex journal directory (the venue's journal
/// root, holding shard-<k>/ segment directories and snapshots/).
///
/// Exit status: 0 success (verify: the venue will start by itself; a torn tail is reported but is
/// not a failure); 1 the journal is damaged or a record cannot be applied; 2 wrong arguments, a path
/// that is not a journal, or an I/O error. See docs/operations.md.
#[derive(Debug, Parser)]
#[command(name = "simex-journal", version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check every segment, record and snapshot of every shard; print a summary per shard and each
    /// shard's first problem (segment, offset, sequence, what is wrong).
    Verify {
        /// Journal root directory.
        root: PathBuf,
    },
    /// Print records as text lines (or JSON lines), shards merged in time order.
    Dump {
        /// Journal root directory.
        root: PathBuf,
        /// One JSON object per line, with raw integers and the record's segment and offset.
        #[arg(long)]
        json: bool,
        /// First sequence to print (per shard).
        #[arg(long, value_name = "SEQ")]
        from_seq: Option<u64>,
        /// Last sequence to print (per shard).
        #[arg(long, value_name = "SEQ")]
        to_seq: Option<u64>,
        /// First time to print: RFC 3339 (2026-01-05T14:30:00Z) or nanoseconds since 1970.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        from: Option<i64>,
        /// Last time to print: RFC 3339 or nanoseconds since 1970.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        to: Option<i64>,
        /// Only records about this portfolio (either side of a fill).
        #[arg(long, value_name = "ID")]
        portfolio: Option<u32>,
        /// Only records about this symbol (e.g. AAPL).
        #[arg(long, value_name = "SYMBOL")]
        symbol: Option<String>,
        /// Only these event types (fill, order_accepted, rejected, ...; comma-separated or repeated).
        #[arg(long = "type", value_name = "TYPE")]
        types: Vec<String>,
        /// Only this shard.
        #[arg(long, value_name = "K")]
        shard: Option<u32>,
    },
    /// Rebuild the state at a point (newest usable snapshot set, then records) and print portfolios,
    /// positions, book tops and state hashes; or compare two points with --diff.
    Replay {
        /// Journal root directory.
        root: PathBuf,
        /// The point: a sequence of the shard given with --shard (needed with several shards), or a
        /// time for all shards (RFC 3339, or nanoseconds with an ns suffix). Default: the end.
        #[arg(long, value_name = "SEQ|TIME", value_parser = parse_point, conflicts_with = "diff")]
        until: Option<Point>,
        /// Compare the state at two points and print what changed.
        #[arg(long, num_args = 2, value_names = ["A", "B"], value_parser = parse_point)]
        diff: Option<Vec<Point>>,
        /// The shard a sequence point belongs to.
        #[arg(long, value_name = "K")]
        shard: Option<u32>,
        /// Book levels to show per side.
        #[arg(long, value_name = "N", default_value_t = 5)]
        depth: usize,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        /// Replay every record from the start instead of starting at a snapshot set (a cross-check
        /// of the snapshots).
        #[arg(long)]
        no_snapshot: bool,
    },
    /// Replay the whole journal and write a fresh snapshot per shard and of the ledger (only while
    /// the venue is stopped).
    Snapshot {
        /// Journal root directory.
        root: PathBuf,
    },
    /// Records per type, rates, bytes and size per day.
    Stats {
        /// Journal root directory.
        root: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
}

fn run(command: Command, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8, ToolError> {
    match command {
        Command::Verify { root } => verify::run(&Venue::open(&root)?, out),
        Command::Dump { root, json, from_seq, to_seq, from, to, portfolio, symbol, types, shard } => {
            let venue = Venue::open(&root)?;
            let symbol = match symbol {
                None => None,
                Some(name) => Some(venue.instruments.by_symbol(&name).map(|i| i.symbol_id).ok_or_else(|| {
                    ToolError::usage(format!("unknown symbol `{name}` (instruments: {})", venue.instruments_source))
                })?),
            };
            let filter = dump::Filter {
                from_seq,
                to_seq,
                from_ns: from,
                to_ns: to,
                portfolio,
                symbol,
                types: dump::parse_types(&types)?,
                shard,
            };
            dump::run(&venue, &filter, json, out, err)
        }
        Command::Replay { root, until, diff, shard, depth, json, no_snapshot } => {
            let venue = Venue::open(&root)?;
            let options = ReplayOptions { shard, depth, json, use_snapshots: !no_snapshot };
            match diff.as_deref() {
                Some(&[a, b]) => view::run_diff(&venue, a, b, &options, out, err),
                _ => view::run_state(&venue, until, &options, out, err),
            }
        }
        Command::Snapshot { root } => write::run(&Venue::open(&root)?, out, err),
        Command::Stats { root, json } => stats::run(&Venue::open(&root)?, json, out, err),
    }
}

fn main() -> ExitCode {
    install_panic_hook();
    let args = Args::parse();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut err = io::stderr();
    let result = run(args.command, &mut out, &mut err);
    let flushed = out.flush();
    match result {
        Ok(status) => {
            if let Err(error) = flushed {
                let error = ToolError::output(error);
                if error.kind != ErrorKind::OutputClosed {
                    eprintln!("simex-journal: error: {error}");
                    return ExitCode::from(journal::EXIT_USAGE);
                }
            }
            ExitCode::from(status)
        }
        Err(error) if error.kind == ErrorKind::OutputClosed => ExitCode::SUCCESS,
        Err(error) => {
            let label = if error.kind == ErrorKind::Damaged { "damaged" } else { "error" };
            eprintln!("simex-journal: {label}: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
