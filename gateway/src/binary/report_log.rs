//! The binary gateway's report journal: every execution report, so that resend survives a restart.
//!
//! Reports are numbered per user by the gateway, which is the only place that knows the number, so
//! it keeps its own journal (a `simex-journal` log under `<root>/shard-0`, one record per report:
//! the user and the report's wire body). On start the gateway reads it back into the users' report
//! logs; while running it appends each report and commits once per turn of its loop, before any
//! session is pumped, so no client sees a report the journal does not have.
//!
//! Known gap: a report is derived from an engine event after the shard has journaled the event. A
//! crash between the two leaves the event in the shard's journal and its report nowhere: after the
//! restart the state is right but that report cannot be resent.

use super::auth::UserId;
use super::protocol::ExecutionReport;
use bytemuck::{Pod, Zeroable};
use simex_journal::{Durability, JournalConfig, JournalReader, JournalWriter, RecoveryOptions};
use std::path::Path;

/// The record type of a journaled report.
pub const RECORD_REPORT: u16 = 1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct JournaledReport {
    pub user_id: u64,
    pub report: ExecutionReport,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportJournalError {
    #[error("report journal: {0}")]
    Journal(String),
    #[error("report journal record {seq} is not a report (type {record_type}, {len} bytes)")]
    BadRecord { seq: u64, record_type: u16, len: usize },
}

pub struct ReportJournal {
    writer: JournalWriter,
}

impl ReportJournal {
    /// Opens (recovering) or creates the journal at `root`, returning every report in it in order.
    pub fn open(
        root: &Path,
        durability: Durability,
    ) -> Result<(ReportJournal, Vec<JournaledReport>), ReportJournalError> {
        let fail = |e: &dyn std::fmt::Display| ReportJournalError::Journal(e.to_string());
        let config = JournalConfig { durability, ..JournalConfig::default() };
        let dir = simex_journal::shard_dir(root, 0);
        let has_segments = std::fs::read_dir(&dir)
            .map(|entries| entries.flatten().any(|e| e.path().extension().is_some_and(|x| x == "seg")))
            .unwrap_or(false);
        if !has_segments {
            let epoch =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
            let writer = JournalWriter::create(root, 0, epoch, config).map_err(|e| fail(&e))?;
            return Ok((ReportJournal { writer }, Vec::new()));
        }
        let recovered = simex_journal::recover(root, 0, &RecoveryOptions::default()).map_err(|e| fail(&e))?;
        if let Some(torn) = &recovered.torn_tail {
            tracing::warn!("report journal: truncated a torn tail: {torn}");
        }
        let mut reader = JournalReader::open(root, 0, recovered.epoch).map_err(|e| fail(&e))?;
        let mut reports = Vec::new();
        while let Some(record) = reader.next_record().map_err(|e| fail(&e))? {
            if record.record_type != RECORD_REPORT || record.payload.len() != size_of::<JournaledReport>() {
                return Err(ReportJournalError::BadRecord {
                    seq: record.seq,
                    record_type: record.record_type,
                    len: record.payload.len(),
                });
            }
            reports.push(bytemuck::pod_read_unaligned(record.payload));
        }
        let writer = JournalWriter::open_for_append(&recovered, config).map_err(|e| fail(&e))?;
        Ok((ReportJournal { writer }, reports))
    }

    /// Buffers one report; durable after the next `commit`.
    pub fn append(
        &mut self,
        user_id: UserId,
        report: &ExecutionReport,
        timestamp_ns: i64,
    ) -> Result<(), ReportJournalError> {
        let record = JournaledReport { user_id, report: *report };
        let seq = self.writer.next_seq();
        self.writer
            .append(RECORD_REPORT, seq, timestamp_ns, bytemuck::bytes_of(&record))
            .map_err(|e| ReportJournalError::Journal(e.to_string()))
    }

    pub fn commit(&mut self) -> Result<(), ReportJournalError> {
        self.writer.commit().map_err(|e| ReportJournalError::Journal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_come_back_after_reopening() {
        let root = std::env::temp_dir().join(format!("simex-report-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        {
            let (mut journal, reports) = ReportJournal::open(&root, Durability::None).unwrap();
            assert!(reports.is_empty());
            for seq in 1..=3 {
                journal.append(7, &ExecutionReport { report_seq: seq, ..Default::default() }, 1).unwrap();
            }
            journal.commit().unwrap();
        }
        let (mut journal, reports) = ReportJournal::open(&root, Durability::None).unwrap();
        assert_eq!(
            reports.iter().map(|r| (r.user_id, r.report.report_seq)).collect::<Vec<_>>(),
            [(7, 1), (7, 2), (7, 3)]
        );
        journal.append(8, &ExecutionReport { report_seq: 1, ..Default::default() }, 2).unwrap();
        journal.commit().unwrap();
        drop(journal);
        let (_, reports) = ReportJournal::open(&root, Durability::None).unwrap();
        assert_eq!(reports.len(), 4);
        let _ = std::fs::remove_dir_all(&root);
    }
}
