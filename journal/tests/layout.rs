//! The bytes on disk are the documented layout: the field tables in `docs/journal.md` and in the
//! crate documentation match the code's constants, and a written segment and snapshot have each field
//! at its documented offset, little-endian.

use simex_journal::format::{
    Field, FORMAT_VERSION, FRAME_HEADER_FIELDS, SEGMENT_HEADER_FIELDS, SEGMENT_MAGIC, SNAPSHOT_HEADER_FIELDS,
    SNAPSHOT_MAGIC,
};
use simex_journal::{Durability, JournalConfig, JournalWriter, SnapshotConfig, SnapshotStore};
use std::fs;

fn docs(path: &str) -> String {
    fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect("documentation file")
}

fn check_table(text: &str, what: &str, fields: &[Field]) {
    for field in fields {
        let row = format!("| {} | {} | `{}` |", field.offset_bytes, field.size_bytes, field.name);
        assert!(text.contains(&row), "{what} lacks the row {row:?}");
    }
}

#[test]
fn the_documented_tables_match_the_code() {
    for (what, text) in [("docs/journal.md", docs("../docs/journal.md")), ("src/lib.rs", docs("src/lib.rs"))] {
        check_table(&text, what, &SEGMENT_HEADER_FIELDS);
        check_table(&text, what, &FRAME_HEADER_FIELDS);
        check_table(&text, what, &SNAPSHOT_HEADER_FIELDS);
    }
}

fn field<'a>(bytes: &'a [u8], fields: &[Field], name: &str) -> &'a [u8] {
    let field = fields.iter().find(|f| f.name == name).expect("field");
    &bytes[field.offset_bytes..field.offset_bytes + field.size_bytes]
}

#[test]
fn a_segment_on_disk_is_little_endian_at_the_documented_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (shard, epoch, first_seq) = (0x0102_0304u32, 0x1122_3344_5566_7788u64, 0x0A0B_0C0Du64);
    let config = JournalConfig { segment_size_bytes: 4096, buffer_bytes: 4096, durability: Durability::Sync };
    let mut writer = JournalWriter::create_from(dir.path(), shard, epoch, first_seq, config).expect("create");
    writer.append(0xBEEF, first_seq, -2, b"abc").expect("append");
    writer.commit().expect("commit");
    let path = dir.path().join(format!("shard-{shard}")).join(format!("{first_seq:020}.seg"));
    let bytes = fs::read(&path).expect("segment");
    assert_eq!(bytes.len(), 4096, "preallocated");

    let header = &bytes[..64];
    let h = |name| field(header, &SEGMENT_HEADER_FIELDS, name);
    assert_eq!(h("magic"), SEGMENT_MAGIC);
    assert_eq!(h("magic"), b"SMXJRNL\0");
    assert_eq!(h("format_version"), FORMAT_VERSION.to_le_bytes());
    assert_eq!(h("header_len_bytes"), [64, 0]);
    assert_eq!(h("shard"), [4, 3, 2, 1]);
    assert_eq!(h("epoch"), [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    assert_eq!(h("first_seq"), first_seq.to_le_bytes());
    assert_eq!(h("capacity_bytes"), 4096u64.to_le_bytes());
    assert_eq!(h("reserved"), [0; 12]);
    assert_eq!(h("header_crc32c"), crc32c::crc32c(&header[..60]).to_le_bytes());
    let created_ns = i64::from_le_bytes(h("created_ns").try_into().expect("8 bytes"));
    assert!(created_ns > 1_600_000_000_000_000_000, "{created_ns}");

    let frame = &bytes[64..104];
    let f = |name| field(frame, &FRAME_HEADER_FIELDS, name);
    assert_eq!(f("payload_len_bytes"), [3, 0, 0, 0]);
    assert_eq!(f("record_type"), [0xEF, 0xBE]);
    assert_eq!(f("reserved0"), [0, 0]);
    assert_eq!(f("seq"), first_seq.to_le_bytes());
    assert_eq!(f("timestamp_ns"), [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    assert_eq!(f("reserved1"), [0; 4]);
    assert_eq!(&frame[32..35], b"abc");
    assert_eq!(&frame[35..40], [0; 5], "padding to 8 bytes");
    let mut unsealed = frame.to_vec();
    unsealed[24..28].fill(0);
    assert_eq!(f("crc32c"), crc32c::crc32c(&unsealed).to_le_bytes());
    assert!(bytes[104..].iter().all(|&b| b == 0), "the unwritten tail is zeros");
}

#[test]
fn a_snapshot_on_disk_is_little_endian_at_the_documented_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SnapshotStore::open(dir.path(), 5, 0x0102, SnapshotConfig::default()).expect("open");
    let info = store.write(0x0304, -1, b"state bytes").expect("write");
    let bytes = fs::read(&info.path).expect("snapshot");
    let header = &bytes[..64];
    let s = |name| field(header, &SNAPSHOT_HEADER_FIELDS, name);
    assert_eq!(s("magic"), SNAPSHOT_MAGIC);
    assert_eq!(s("format_version"), [1, 0]);
    assert_eq!(s("header_len_bytes"), [64, 0]);
    assert_eq!(s("shard"), [5, 0, 0, 0]);
    assert_eq!(s("epoch"), [2, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(s("last_seq"), [4, 3, 0, 0, 0, 0, 0, 0]);
    assert_eq!(s("timestamp_ns"), [0xFF; 8]);
    assert_eq!(s("payload_len_bytes"), 11u64.to_le_bytes());
    assert_eq!(s("payload_crc32c"), crc32c::crc32c(b"state bytes").to_le_bytes());
    assert_eq!(s("reserved"), [0; 8]);
    assert_eq!(s("header_crc32c"), crc32c::crc32c(&header[..60]).to_le_bytes());
    assert_eq!(&bytes[64..], b"state bytes");
}
