//! `cargo bench -p simex-benches --bench recovery [-- OPTIONS]`: how long a journaled venue takes
//! to start on a long journal, with and without a snapshot set (see benches/README.md).
//!
//! Prints progress to stderr and the markdown report to stdout. Every recovery is checked against
//! the state the journal's writer had; a mismatch fails the run.

use clap::Parser;
use simex_benches::recovery::{self, Options};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(about = "simex recovery benchmark: start-up time on a long journal, with and without a snapshot set")]
struct Cli {
    /// Tiny sizes: checks that every case runs, in seconds. The numbers mean nothing.
    #[arg(long)]
    quick: bool,
    /// Records in the journal [default: 10000000; 200000 with --quick].
    #[arg(long)]
    records: Option<u64>,
    /// Records after the mid-journal snapshot set [default: 500000, the venue's default snapshot
    /// interval; 50000 with --quick].
    #[arg(long)]
    tail_records: Option<u64>,
    /// Recoveries per case [default: 5; 1 with --quick].
    #[arg(long)]
    runs: Option<usize>,
    /// Directory the journal is written under [default: the system's temporary directory].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Ignored: cargo bench passes it.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let cli = Cli::parse();
    let options = Options {
        records: cli.records.unwrap_or(if cli.quick { 200_000 } else { 10_000_000 }),
        tail_records: cli.tail_records.unwrap_or(if cli.quick { 50_000 } else { 500_000 }),
        runs: cli.runs.unwrap_or(if cli.quick { 1 } else { 5 }).max(1),
        dir: cli.dir.unwrap_or_else(std::env::temp_dir),
    };
    eprintln!("writing a journal of {} records under {}", options.records, options.dir.display());
    let written = recovery::write(&options);
    let cases = recovery::measure(&written, options.runs);
    print!("{}", recovery::report(&written, &cases));
    let _ = std::fs::remove_dir_all(&written.root);
}
