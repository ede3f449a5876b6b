//! Journal throughput on this machine's disk: appends of 128-byte records under each durability
//! policy and group-commit batch size (with `fdatasync` latency percentiles), and replay speed.
//!
//! ```text
//! cargo bench -p simex-journal --bench append                          # about 1 minute
//! cargo bench -p simex-journal --bench append -- --quick               # a few seconds
//! cargo bench -p simex-journal --bench append -- --output BENCHMARKS.md
//! ```
//!
//! Data goes to a temporary directory under the target directory (`CARGO_TARGET_TMPDIR`), so the disk
//! measured is the one the target directory is on. `--output` writes the tables with a description of
//! the machine to a markdown file.

use simex_journal::{scan, Durability, JournalConfig, JournalReader, JournalWriter};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PAYLOAD_BYTES: usize = 128;
const SHARD: u32 = 0;
const EPOCH: u64 = 1;
const BATCHES: [usize; 4] = [1, 16, 256, 4096];

struct Options {
    quick: bool,
    output: Option<String>,
}

fn options() -> Options {
    let mut options = Options { quick: false, output: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--output" => options.output = args.next(),
            // `cargo bench` passes `--bench`; other harness flags are ignored too.
            _ => {}
        }
    }
    options
}

struct AppendResult {
    durability: Durability,
    batch: usize,
    records: u64,
    elapsed: Duration,
    frame_bytes: u64,
    commits: u64,
    syncs: u64,
    sync_p50_ns: u64,
    sync_p99_ns: u64,
    sync_max_ns: u64,
}

fn bench_append(dir: &Path, durability: Durability, batch: usize, budget: Duration, max_records: u64) -> AppendResult {
    let config = JournalConfig { durability, ..JournalConfig::default() };
    let mut writer = JournalWriter::create(dir, SHARD, EPOCH, config).expect("create journal");
    let mut payload = [0u8; PAYLOAD_BYTES];
    let mut seq = 1u64;
    let started = Instant::now();
    loop {
        for _ in 0..batch {
            payload[..8].copy_from_slice(&seq.to_le_bytes());
            writer.append(1, seq, seq as i64, &payload).expect("append");
            seq += 1;
        }
        writer.commit().expect("commit");
        if started.elapsed() >= budget || seq > max_records {
            break;
        }
    }
    let elapsed = started.elapsed();
    // Write back what this run left dirty before the next run starts, so that runs do not pay for
    // each other's writeback.
    settle(dir);
    let stats = writer.stats();
    let histogram = &stats.sync_latency_ns;
    let percentile = |q: f64| if histogram.is_empty() { 0 } else { histogram.value_at_quantile(q) };
    AppendResult {
        durability,
        batch,
        records: stats.records,
        elapsed,
        frame_bytes: stats.bytes,
        commits: stats.batches,
        syncs: stats.syncs,
        sync_p50_ns: percentile(0.5),
        sync_p99_ns: percentile(0.99),
        sync_max_ns: histogram.max(),
    }
}

struct ReplayResult {
    pass: &'static str,
    records: u64,
    bytes: u64,
    elapsed: Duration,
}

fn replay(root: &Path) -> (u64, u64) {
    let mut reader = JournalReader::open(root, SHARD, Some(EPOCH)).expect("reader");
    let (mut records, mut checksum) = (0u64, 0u64);
    while let Some(record) = reader.next_record().expect("clean journal") {
        records += 1;
        checksum = checksum.wrapping_add(u64::from(record.payload[0]) ^ record.seq);
    }
    (records, checksum)
}

/// fsyncs every segment of the journal in `root` (untimed).
fn settle(root: &Path) {
    for entry in std::fs::read_dir(simex_journal::shard_dir(root, SHARD)).expect("list") {
        std::fs::File::open(entry.expect("entry").path()).and_then(|f| f.sync_all()).expect("sync");
    }
}

/// Asks the kernel to drop the journal's (clean, already synced) pages from the page cache.
fn evict(root: &Path) {
    use std::os::fd::AsRawFd;
    let dir = simex_journal::shard_dir(root, SHARD);
    for entry in std::fs::read_dir(dir).expect("list") {
        let file = std::fs::File::open(entry.expect("entry").path()).expect("open");
        file.sync_all().expect("sync");
        // SAFETY: plain integer arguments; the descriptor is open for the duration of the call.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "posix_fadvise");
    }
}

fn bench_replay(root: &Path, records: u64) -> Vec<ReplayResult> {
    let config = JournalConfig { durability: Durability::None, ..JournalConfig::default() };
    let mut writer = JournalWriter::create(root, SHARD, EPOCH, config).expect("create journal");
    let mut payload = [7u8; PAYLOAD_BYTES];
    for seq in 1..=records {
        payload[..8].copy_from_slice(&seq.to_le_bytes());
        writer.append(1, seq, seq as i64, &payload).expect("append");
        if seq % 4096 == 0 {
            writer.commit().expect("commit");
        }
    }
    writer.commit().expect("commit");
    let bytes = writer.stats().bytes;
    drop(writer);

    let mut results = Vec::new();
    evict(root);
    let started = Instant::now();
    let (read, _) = replay(root);
    results.push(ReplayResult {
        pass: "JournalReader, cold (pages evicted)",
        records: read,
        bytes,
        elapsed: started.elapsed(),
    });
    let started = Instant::now();
    let (read, checksum) = replay(root);
    std::hint::black_box(checksum);
    results.push(ReplayResult {
        pass: "JournalReader, warm page cache",
        records: read,
        bytes,
        elapsed: started.elapsed(),
    });
    let started = Instant::now();
    let report = scan(root, SHARD, Some(EPOCH)).expect("scan");
    assert!(report.is_clean() && report.records == records);
    results.push(ReplayResult { pass: "scan, warm page cache", records, bytes, elapsed: started.elapsed() });
    results
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn micros(ns: u64) -> String {
    if ns == 0 {
        "-".to_owned()
    } else {
        format!("{:.0}", ns as f64 / 1000.0)
    }
}

fn command(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("({program}: {e})"))
}

fn machine(dir: &Path) -> String {
    let dir = dir.to_string_lossy();
    let model = command("lscpu", &[])
        .lines()
        .find_map(|line| line.strip_prefix("Model name:").map(|m| m.trim().to_owned()))
        .unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "- CPU: {model}, `nproc` = {}", command("nproc", &[]));
    let _ = writeln!(out, "- Kernel: {}", command("uname", &["-r"]));
    let _ = writeln!(out, "- {}", command("rustc", &["--version"]));
    let _ = writeln!(
        out,
        "- File system of the target directory (`df -hT`):\n\n```\n{}\n```",
        command("df", &["-hT", &dir])
    );
    out
}

const METHOD: &str = "\
- One writer thread appends records with 128-byte payloads and commits every `batch` records (group \
commit); each row runs for 2.5 s or 3 million records, whichever comes first (`--quick`: 0.3 s or \
300,000). Segments are the default 64 MiB, preallocated with `posix_fallocate`; the write buffer is the \
default 1 MiB.
- `Sync` rows call `fdatasync` on every commit (`Batch` does exactly the same), so at batch 1 the \
throughput is about one record per `fdatasync`; larger batches amortize it. `None` never syncs: it \
measures encoding, checksumming and `pwrite` into the page cache. The latency percentiles are the \
writer's own histogram of every `fdatasync` (segment rolls included).
- Between rows the previous row's files are fsynced outside the timed region, so that no row pays for \
another's writeback.
- Replay writes the records once (`None`, batch 4096), then reads them back with `JournalReader` \
(every frame's CRC32C and sequence checked, payload borrowed) and with `scan`. The cold pass first \
drops the files' pages with `posix_fadvise(POSIX_FADV_DONTNEED)`; on a virtual machine the host may \
still serve them from its own cache, so it is an upper bound for a cold disk.
- This is a KVM guest with a virtual disk: `fdatasync` latency and cold reads say more about the \
host's storage stack than about a physical device. Numbers vary by tens of percent between runs.
";

fn main() {
    let options = options();
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(base).expect("target tmpdir");
    let budget = if options.quick { Duration::from_millis(300) } else { Duration::from_millis(2500) };
    let max_records = if options.quick { 300_000 } else { 3_000_000 };
    let replay_records = if options.quick { 300_000 } else { 4_000_000 };

    let mut appends = Vec::new();
    for durability in [Durability::None, Durability::Sync] {
        for batch in BATCHES {
            let dir = tempfile::tempdir_in(base).expect("tempdir");
            let result = bench_append(dir.path(), durability, batch, budget, max_records);
            eprintln!(
                "{durability:?} batch {batch}: {:.0} records/s, fdatasync p50 {} us",
                per_second(result.records, result.elapsed),
                micros(result.sync_p50_ns)
            );
            appends.push(result);
        }
    }
    let replay_dir = tempfile::tempdir_in(base).expect("tempdir");
    let replays = bench_replay(replay_dir.path(), replay_records);

    let mut table = String::new();
    let _ = writeln!(
        table,
        "### Append, {PAYLOAD_BYTES}-byte payloads ({} B frames), 64 MiB segments\n",
        PAYLOAD_BYTES + 32
    );
    let _ = writeln!(
        table,
        "| durability | batch (records per commit) | records | records/s | MB/s | commits | fdatasyncs | fdatasync p50 (µs) | p99 (µs) | max (µs) |"
    );
    let _ = writeln!(table, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in &appends {
        let _ = writeln!(
            table,
            "| {:?} | {} | {} | {:.0} | {:.1} | {} | {} | {} | {} | {} |",
            r.durability,
            r.batch,
            r.records,
            per_second(r.records, r.elapsed),
            per_second(r.frame_bytes, r.elapsed) / 1e6,
            r.commits,
            r.syncs,
            micros(r.sync_p50_ns),
            micros(r.sync_p99_ns),
            micros(r.sync_max_ns),
        );
    }
    let _ = writeln!(table, "\n### Replay ({replay_records} records of {PAYLOAD_BYTES} bytes)\n");
    let _ = writeln!(table, "| pass | records | records/s | MB/s |");
    let _ = writeln!(table, "| --- | ---: | ---: | ---: |");
    for r in &replays {
        let _ = writeln!(
            table,
            "| {} | {} | {:.0} | {:.0} |",
            r.pass,
            r.records,
            per_second(r.records, r.elapsed),
            per_second(r.bytes, r.elapsed) / 1e6
        );
    }
    println!("{table}");

    if let Some(path) = options.output {
        let mode = if options.quick { " -- --quick" } else { "" };
        let report = format!(
            "# Journal benchmarks\n\nMeasured by `cargo bench -p simex-journal --bench append{mode}` \
             (`journal/benches/append.rs`).\n\n## Machine\n\n{}\n## Method\n\n{METHOD}\n## Results\n\n{table}",
            machine(base)
        );
        std::fs::write(&path, report).expect("write report");
        eprintln!("wrote {path}");
    }
}
