//! Golden tests of `simex-script`: the example scripts' full output is pinned, and the edge cases
//! of its input handling (exact decimals, malformed lines, time) are checked end to end through the
//! real binary, exit codes included.
//!
//! Each `examples/<name>.jsonl` runs with `--state --check` (plus the arguments in
//! `examples/<name>.args`, if that file exists) and its standard output must equal
//! `tests/golden/<name>.out`. After an intended change of behaviour, rewrite the golden files with
//! `SIMEX_BLESS=1 cargo test -p simex-tools --test golden` and review the diff.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary from the crate directory with `args`, feeding `stdin`.
fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_simex-script"))
        .current_dir(crate_dir())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("simex-script starts");
    child.stdin.take().expect("stdin is piped").write_all(stdin.as_bytes()).expect("writing the script");
    child.wait_with_output().expect("simex-script finishes")
}

/// Runs a script given as text on standard input.
fn run_script(script: &str, extra: &[&str]) -> Output {
    let mut args = vec!["-"];
    args.extend_from_slice(extra);
    run(&args, script)
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// Every event line of a run's standard output, parsed.
fn events(output: &Output) -> Vec<serde_json::Value> {
    stdout(output).lines().map(|line| serde_json::from_str(line).expect("each output line is JSON")).collect()
}

fn first_difference(expected: &str, actual: &str) -> String {
    let mut expected_lines = expected.lines();
    let mut actual_lines = actual.lines();
    let mut number = 1;
    loop {
        match (expected_lines.next(), actual_lines.next()) {
            (None, None) => return "no difference".to_string(),
            (e, a) if e == a => number += 1,
            (e, a) => {
                return format!(
                    "first difference at output line {number}:\n  expected: {}\n  actual:   {}",
                    e.unwrap_or("<end>"),
                    a.unwrap_or("<end>")
                )
            }
        }
    }
}

fn examples() -> Vec<PathBuf> {
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(crate_dir().join("examples"))
        .expect("examples directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    scripts.sort();
    scripts
}

fn name_of(path: &Path) -> String {
    path.file_stem().expect("a file name").to_string_lossy().into_owned()
}

/// Runs `examples/<name>.jsonl` with `--state --check` and the arguments in `<name>.args`.
fn run_example(name: &str) -> Output {
    let script = format!("examples/{name}.jsonl");
    let extra = std::fs::read_to_string(crate_dir().join(format!("examples/{name}.args"))).unwrap_or_default();
    let mut args = vec![script.as_str(), "--state", "--check"];
    args.extend(extra.split_whitespace());
    run(&args, "")
}

#[test]
fn examples_match_their_golden_output() {
    let bless = std::env::var("SIMEX_BLESS").is_ok_and(|v| v == "1");
    let golden_dir = crate_dir().join("tests/golden");
    let scripts = examples();
    assert!(scripts.len() >= 3, "the examples are missing: {scripts:?}");
    let mut failures = Vec::new();
    for script in &scripts {
        let name = name_of(script);
        let output = run_example(&name);
        assert!(output.status.success(), "{name}: exit {:?}\n{}", output.status.code(), stderr(&output));
        assert!(stderr(&output).contains("replay: state hash matches"), "{name}: {}", stderr(&output));
        let actual = stdout(&output);
        let golden = golden_dir.join(format!("{name}.out"));
        if bless {
            std::fs::write(&golden, &actual).expect("writing a golden file");
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{name}: output differs from {}; {}",
                golden.display(),
                first_difference(&expected, &actual)
            )),
            Err(error) => failures.push(format!("{name}: {}: {error}", golden.display())),
        }
    }
    // A golden file whose example is gone would pass silently forever.
    for entry in std::fs::read_dir(&golden_dir).expect("golden directory") {
        let path = entry.expect("directory entry").path();
        let name = name_of(&path);
        if !scripts.iter().any(|s| name_of(s) == name) {
            failures.push(format!("{} has no example script", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended: SIMEX_BLESS=1 cargo test -p simex-tools --test golden",
        failures.join("\n")
    );
}

#[test]
fn the_examples_trigger_every_reject_reason() {
    let mut seen = std::collections::BTreeSet::new();
    for name in ["rejections", "restricted"] {
        let output = run_example(name);
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        for line in stdout(&output).lines().filter(|l| l.starts_with("{\"seq\"")) {
            let event: serde_json::Value = serde_json::from_str(line).expect("event line");
            if event["type"] == "rejected" {
                seen.insert(event["reason"].as_str().expect("reason").to_string());
            }
        }
    }
    let missing: Vec<String> = simex_engine::RejectReason::ALL
        .iter()
        .map(|reason| serde_json::to_value(reason).expect("a reason serializes"))
        .map(|name| name.as_str().expect("a name").to_string())
        .filter(|name| !seen.contains(name))
        .collect();
    assert!(missing.is_empty(), "no example triggers {missing:?}: add them to examples/rejections.jsonl");
}

#[test]
fn prices_are_converted_exactly_and_off_tick_is_a_rejection_on_its_line() {
    let output = run_script(
        concat!(
            "{\"type\":\"create_portfolio\",\"portfolio\":1,\"cash\":\"100000\"}\n",
            "# 150.255 is not a multiple of AAPL's 0.01 tick: refused, never rounded\n",
            "{\"type\":\"order\",\"portfolio\":1,\"symbol\":\"AAPL\",\"side\":\"buy\",\"price\":150.255,\"qty\":1,\"client_order_id\":\"x\"}\n",
            "{\"type\":\"order\",\"portfolio\":1,\"symbol\":\"AAPL\",\"side\":\"buy\",\"price\":150.25,\"qty\":\"10\"}\n",
            "{\"type\":\"order\",\"portfolio\":1,\"symbol\":\"BTC-USD\",\"side\":\"buy\",\"price\":\"60000.01\",\"qty\":\"0.00001\"}\n",
        ),
        &["--check"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let events = events(&output);
    let rejected = &events[1];
    assert_eq!(rejected["type"], "rejected");
    assert_eq!(rejected["reason"], "price_not_on_tick");
    assert_eq!(rejected["line"], 3);
    assert_eq!(rejected["seq"], 2, "the rejection is part of the sequence");
    assert_eq!(rejected["portfolio"], 1);
    assert_eq!(rejected["client_order_id"], "x");
    let accepted = &events[2];
    assert_eq!(accepted["type"], "order_accepted");
    assert_eq!(accepted["price"], "150.25");
    assert_eq!(accepted["price_ticks"], 15025);
    assert_eq!(accepted["qty_lots"], 10);
    assert_eq!(accepted["reserved_cash"], "1502.650250");
    let btc = &events[3];
    assert_eq!(btc["price"], "60000.01");
    assert_eq!(btc["qty"], "0.00001000");
    assert_eq!(btc["qty_lots"], 1000);
    assert!(stderr(&output).contains("replay: state hash matches"));
}

#[test]
fn bad_json_stops_with_exit_code_2_and_the_line_number() {
    let output = run_script(
        concat!(
            "{\"type\":\"create_portfolio\",\"portfolio\":1,\"cash\":\"100000\"}\n",
            "\n",
            "{\"type\":\"order\",\"portfolio\":1,\n",
            "{\"type\":\"create_portfolio\",\"portfolio\":2,\"cash\":\"1\"}\n",
        ),
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("script error"), "{message}");
    // What ran before the bad line is printed; nothing after it runs.
    assert_eq!(events(&output).len(), 1);
}

#[test]
fn unknown_fields_types_and_exponents_are_script_errors() {
    for (line, needle) in [
        (r#"{"type":"create_portfolio","portfolio":1,"cahs":"1"}"#, "unknown field `cahs`"),
        (r#"{"type":"deposit_cash","portfolio":1}"#, "unknown type"),
        (r#"{"type":"create_portfolio","portfolio":1,"cash":1e6}"#, "exponent"),
    ] {
        let output = run_script(&format!("# first line\n{line}\n"), &[]);
        assert_eq!(output.status.code(), Some(2), "{line}");
        let message = stderr(&output);
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains(needle), "{message}");
    }
}

#[test]
fn time_going_backwards_is_a_script_error() {
    let output = run_script(
        concat!(
            "{\"type\":\"create_portfolio\",\"portfolio\":1,\"cash\":\"1\",\"at\":\"2026-01-05T15:00:00Z\"}\n",
            "{\"type\":\"advance_time\",\"at\":\"2026-01-05T14:59:59.999999999Z\"}\n",
        ),
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("backwards"), "{message}");
}

#[test]
fn time_defaults_and_explicit_forms() {
    let output = run_script(
        concat!(
            "{\"type\":\"create_portfolio\",\"portfolio\":1,\"cash\":\"1\"}\n",
            "{\"type\":\"create_portfolio\",\"portfolio\":2,\"cash\":\"1\"}\n",
            "{\"type\":\"create_portfolio\",\"portfolio\":3,\"cash\":\"1\",\"at_ns\":1767700000123456789}\n",
            "{\"type\":\"create_portfolio\",\"portfolio\":4,\"cash\":\"1\",\"at\":\"2026-01-06T13:00:00+01:00\"}\n",
        ),
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let at: Vec<_> = events(&output).iter().map(|e| e["at"].as_str().unwrap().to_string()).collect();
    assert_eq!(
        at,
        [
            "2026-01-05T14:30:00.000000000Z",
            "2026-01-05T14:30:00.001000000Z",
            "2026-01-06T11:46:40.123456789Z",
            "2026-01-06T12:00:00.000000000Z",
        ]
    );
}

#[test]
fn unreadable_files_exit_1() {
    let output = run(&["examples/no-such-script.jsonl"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no-such-script"));
    let output = run(&["-", "--instruments", "examples/basic.jsonl"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("instruments"));
}
