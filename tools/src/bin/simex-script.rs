//! `simex-script`: runs a scenario script through one engine and prints the events as JSON lines.
//!
//! Argument parsing and exit codes only; the runner is `simex_tools::script`, and the script format,
//! output and exit codes are documented in `docs/script.md`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use simex_engine::{EngineConfig, InstrumentTable};
use simex_tools::script::run::{RunError, Runner};

/// Runs a simex scenario script (JSON lines) through one engine and prints every event as a JSON
/// line on standard output.
///
/// Exit codes: 0 the script ran to the end (rejections are ordinary output); 1 a file could not be
/// read or written, or the instrument table is invalid; 2 the script is malformed (the message names
/// the line) or the arguments are wrong; 3 the engine failed (a panic, or under --check a broken
/// invariant or a replay that disagrees). See docs/script.md.
#[derive(Debug, Parser)]
#[command(name = "simex-script", version)]
struct Args {
    /// The script: one JSON command per line (`-` reads standard input).
    script: PathBuf,

    /// After the events, print the final portfolios and order books as one JSON document.
    #[arg(long)]
    state: bool,

    /// Check the engine's invariants after every line, and at the end replay every event into a
    /// fresh engine and compare state hashes (the verdict goes to standard error).
    #[arg(long)]
    check: bool,

    /// Instrument table (TOML, the format of the built-in default_instruments.toml) to use instead
    /// of the built-in one.
    #[arg(long, value_name = "FILE")]
    instruments: Option<PathBuf>,

    /// Most open orders the engine holds; a new order beyond it is rejected `book_full`.
    #[arg(
        long,
        value_name = "N",
        default_value_t = EngineConfig::default().orders_max,
        value_parser = clap::value_parser!(u32).range(1..=16_777_216),
    )]
    orders_max: u32,
}

/// How a run ended, for the exit code.
enum Failure {
    Setup(anyhow::Error),
    Run(RunError),
}

fn instruments(path: Option<&PathBuf>) -> anyhow::Result<InstrumentTable> {
    let Some(path) = path else {
        return Ok(InstrumentTable::default_table());
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading instruments {}", path.display()))?;
    InstrumentTable::from_toml(&text).with_context(|| format!("instruments {}", path.display()))
}

fn open_script(path: &PathBuf) -> anyhow::Result<Box<dyn BufRead>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufReader::new(io::stdin())));
    }
    let file = File::open(path).with_context(|| format!("opening script {}", path.display()))?;
    Ok(Box::new(BufReader::new(file)))
}

fn run(args: &Args) -> Result<(), Failure> {
    let instruments = instruments(args.instruments.as_ref()).map_err(Failure::Setup)?;
    let input = open_script(&args.script).map_err(Failure::Setup)?;
    let config = EngineConfig { orders_max: args.orders_max, ..EngineConfig::default() };
    let mut runner = Runner::new(config, instruments, args.check);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = runner.run(input, &mut out);
    if let Err(error) = result {
        // What ran before the failure is part of the report.
        let _ = out.flush();
        return Err(Failure::Run(error));
    }
    if args.state {
        writeln!(out, "{}", runner.state().to_pretty()).map_err(|e| Failure::Run(e.into()))?;
    }
    out.flush().map_err(|e| Failure::Run(e.into()))?;
    if args.check {
        let report = runner.verify_replay().map_err(Failure::Run)?;
        eprintln!(
            "replay: state hash matches ({} events, {} lines, state hash {:016x})",
            report.events,
            runner.lines_run(),
            report.state_hash
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Setup(error)) => {
            eprintln!("simex-script: error: {error:#}");
            ExitCode::from(1)
        }
        Err(Failure::Run(error)) => {
            let kind = match error {
                RunError::Script(_) => "script error",
                RunError::Engine { .. } => "engine failure",
                RunError::Io(_) => "error",
            };
            eprintln!("simex-script: {kind}: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
