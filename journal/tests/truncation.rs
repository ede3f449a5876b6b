//! Property: cutting a valid journal at any byte (as a crash during a write may leave it, with the
//! segments after the cut never created) recovers to exactly the records wholly before the cut, and
//! appending then continues the sequence.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use simex_journal::format::SEGMENT_HEADER_LEN;
use simex_journal::{recover, Durability, JournalWriter, RecoveryOptions};
use std::fs;

#[test]
fn any_truncation_point_recovers_to_a_prefix() {
    let pristine = tempfile::tempdir().expect("tempdir");
    let records = recs(1..=300);
    drop(write_journal(pristine.path(), &records, 4096));
    let segments = segment_paths(pristine.path());
    let locations = locations(pristine.path());
    let lens: Vec<u64> = segments.iter().map(|p| fs::metadata(p).expect("stat").len()).collect();
    let total: u64 = lens.iter().sum();
    assert!(segments.len() > 10, "{} segments", segments.len());

    let mut runner = TestRunner::new(Config { cases: 200, ..Config::default() });
    runner
        .run(&(0..total), |cut| {
            let dir = tempfile::tempdir().expect("tempdir");
            copy_dir(pristine.path(), dir.path());
            // The segment the cut falls in, and how much of it is left.
            let mut before = 0;
            let index = lens
                .iter()
                .position(|len| {
                    before += len;
                    cut < before
                })
                .expect("cut inside the journal");
            let kept_bytes = cut - (before - lens[index]);
            let cut_segment = moved(&segments[index], pristine.path(), dir.path());
            fs::OpenOptions::new().write(true).open(&cut_segment).expect("open").set_len(kept_bytes).expect("truncate");
            for later in &segments[index + 1..] {
                fs::remove_file(moved(later, pristine.path(), dir.path())).expect("remove");
            }

            let expected_records = locations
                .iter()
                .take_while(|(path, offset, len)| {
                    let segment = segments.iter().position(|s| s == path).expect("segment");
                    segment < index
                        || (segment == index && kept_bytes >= SEGMENT_HEADER_LEN as u64 && offset + len <= kept_bytes)
                })
                .count();

            let options = RecoveryOptions { epoch: Some(EPOCH), allow_corruption: false, scan_from_seq: None };
            let recovered =
                recover(dir.path(), SHARD, &options).map_err(|e| TestCaseError::fail(format!("cut {cut}: {e}")))?;
            prop_assert_eq!(recovered.records(), expected_records as u64, "cut {}", cut);
            prop_assert_eq!(read_clean(dir.path()), records[..expected_records].to_vec());

            let mut writer =
                JournalWriter::open_for_append(&recovered, config(4096, Durability::None)).expect("reopen");
            append_all(&mut writer, &records[expected_records..], 64);
            drop(writer);
            prop_assert_eq!(read_clean(dir.path()), records.clone());
            Ok(())
        })
        .expect("every cut recovers to a prefix");
}
