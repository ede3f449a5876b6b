//! Interval logs written by simex are read by the standard tools: the Java `HistogramLogProcessor`
//! (Debian's `libhdrhistogram-java`) and the Python `hdrhistogram` package. `tools/test` installs
//! both and sets `SIMEX_REQUIRE_HLOG_READERS=1`, so a missing reader fails the test there instead of
//! being skipped.

use simex::runtime::{write_interval_log, Interval, Stage, StageHistograms};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

const JAVA_JAR: &str = "/usr/share/java/hdrhistogram.jar";

fn write_log(path: &Path) {
    let mut histograms = StageHistograms::default();
    for value in 1..=10_000 {
        histograms.record(Stage::MatchRisk, 0, value * 10);
    }
    let mut file = std::fs::File::create(path).unwrap();
    let interval = Interval {
        tag: "shard0",
        start_offset: Duration::ZERO,
        length: Duration::from_secs(1),
        histograms: &histograms,
    };
    write_interval_log(&mut file, SystemTime::now(), &[interval]).unwrap();
}

fn required() -> bool {
    std::env::var("SIMEX_REQUIRE_HLOG_READERS").is_ok_and(|v| v == "1")
}

fn run(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn java_histogram_log_processor_reads_simex_logs() {
    let dir = std::env::temp_dir().join(format!("simex-hlog-java-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("run.hlog");
    write_log(&log);
    let output = run(Command::new("java")
        .args(["-cp", JAVA_JAR, "org.HdrHistogram.HistogramLogProcessor", "-i"])
        .arg(&log)
        .args(["-tag", "shard0.match_risk"]));
    match output {
        Some(text) => {
            assert!(text.contains("Total count    =        10000"), "unexpected processor output:\n{text}");
        }
        None if required() => {
            panic!("java or {JAVA_JAR} is missing (apt-get install default-jre-headless libhdrhistogram-java)")
        }
        None => eprintln!("skipped: java or {JAVA_JAR} not installed"),
    }
}

#[test]
fn python_hdrhistogram_reads_simex_logs() {
    let dir = std::env::temp_dir().join(format!("simex-hlog-python-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("run.hlog");
    write_log(&log);
    let script = "import sys\nfrom hdrh.histogram import HdrHistogram\nfrom hdrh.log import HistogramLogReader\nr = HistogramLogReader(sys.argv[1], HdrHistogram(1, 60_000_000_000, 3))\nh = r.get_next_interval_histogram()\nprint(h.get_tag(), h.get_total_count(), h.get_value_at_percentile(50))\n";
    let python = std::env::var("SIMEX_PYTHON").unwrap_or_else(|_| "python3".into());
    match run(Command::new(python).args(["-c", script]).arg(&log)) {
        Some(text) => {
            let fields: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(fields[..2], ["shard0.match_risk", "10000"], "{text}");
            let p50: u64 = fields[2].parse().unwrap();
            assert!((49_900..=50_100).contains(&p50), "p50 {p50} ns");
        }
        None if required() => panic!("python3 with the hdrhistogram package is missing (pip install hdrhistogram)"),
        None => eprintln!("skipped: python3 -c 'import hdrh' failed"),
    }
}
