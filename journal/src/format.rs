//! The bytes on disk: segment and frame headers, their field offsets and their checksums.
//!
//! This is the only module that knows the layout. Everything is little-endian. The wire structs are
//! `bytemuck::Pod` with every padding byte spelled out as a reserved field, so that a struct and its
//! bytes are the same thing and no byte on disk is left undefined; their integer fields hold the
//! *little-endian representation* of each value (`to_le` on the way in, `from_le` on the way out,
//! both no-ops on the little-endian machines the venue runs on), so the code is also correct on a
//! big-endian host. The field tables below are what `docs/journal.md` and the crate documentation
//! show, and `tests/layout.rs` checks that the three agree with the structs.

use bytemuck::{Pod, Zeroable};

/// First eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SMXJRNL\0";
/// First eight bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"SMXSNAP\0";
/// Version of the segment, frame and snapshot layouts described here.
pub const FORMAT_VERSION: u16 = 1;

/// Size of the segment header; the first frame starts right after it.
pub const SEGMENT_HEADER_LEN: usize = 64;
/// Size of a frame header; the payload starts right after it.
pub const FRAME_HEADER_LEN: usize = 32;
/// Size of the snapshot file header; the snapshot bytes start right after it.
pub const SNAPSHOT_HEADER_LEN: usize = 64;
/// Frames start at multiples of this many bytes: the payload is padded with zeros to it.
pub const FRAME_ALIGN_BYTES: usize = 8;

/// Smallest segment a writer accepts: a header and room for one frame with a small payload.
pub const MIN_SEGMENT_BYTES: u64 = 128;
/// Largest segment a writer creates or a reader accepts.
pub const MAX_SEGMENT_BYTES: u64 = 1 << 32;
/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// One field of a header: name, offset and size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub offset_bytes: usize,
    pub size_bytes: usize,
}

const fn field(name: &'static str, offset_bytes: usize, size_bytes: usize) -> Field {
    Field { name, offset_bytes, size_bytes }
}

/// The segment header, in order. Integers are little-endian.
pub const SEGMENT_HEADER_FIELDS: [Field; 10] = [
    field("magic", 0, 8),
    field("format_version", 8, 2),
    field("header_len_bytes", 10, 2),
    field("shard", 12, 4),
    field("epoch", 16, 8),
    field("first_seq", 24, 8),
    field("created_ns", 32, 8),
    field("capacity_bytes", 40, 8),
    field("reserved", 48, 12),
    field("header_crc32c", 60, 4),
];

/// The frame header that precedes every record's payload, in order. Integers are little-endian.
pub const FRAME_HEADER_FIELDS: [Field; 7] = [
    field("payload_len_bytes", 0, 4),
    field("record_type", 4, 2),
    field("reserved0", 6, 2),
    field("seq", 8, 8),
    field("timestamp_ns", 16, 8),
    field("crc32c", 24, 4),
    field("reserved1", 28, 4),
];

/// The snapshot file header, in order. Integers are little-endian.
pub const SNAPSHOT_HEADER_FIELDS: [Field; 11] = [
    field("magic", 0, 8),
    field("format_version", 8, 2),
    field("header_len_bytes", 10, 2),
    field("shard", 12, 4),
    field("epoch", 16, 8),
    field("last_seq", 24, 8),
    field("timestamp_ns", 32, 8),
    field("payload_len_bytes", 40, 8),
    field("payload_crc32c", 48, 4),
    field("reserved", 52, 8),
    field("header_crc32c", 60, 4),
];

/// Offset of the segment header's checksum: it covers every byte before it.
pub const SEGMENT_HEADER_CRC_OFFSET: usize = 60;
/// Offset of the frame checksum inside the frame header.
pub const FRAME_CRC_OFFSET: usize = 24;
/// Offset of the snapshot header's checksum: it covers every byte before it.
pub const SNAPSHOT_HEADER_CRC_OFFSET: usize = 60;

/// Bytes a frame with `payload_len_bytes` of payload takes on disk, header and padding included.
pub const fn frame_len_bytes(payload_len_bytes: u64) -> u64 {
    let align = FRAME_ALIGN_BYTES as u64;
    FRAME_HEADER_LEN as u64 + payload_len_bytes.div_ceil(align) * align
}

/// Largest payload a segment of `capacity_bytes` can hold in one frame (and that the length field can
/// express).
pub const fn max_payload_bytes(capacity_bytes: u64) -> u64 {
    let room = capacity_bytes.saturating_sub((SEGMENT_HEADER_LEN + FRAME_HEADER_LEN) as u64);
    let room = room / FRAME_ALIGN_BYTES as u64 * FRAME_ALIGN_BYTES as u64;
    if room > u32::MAX as u64 {
        u32::MAX as u64 / FRAME_ALIGN_BYTES as u64 * FRAME_ALIGN_BYTES as u64
    } else {
        room
    }
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct SegmentHeaderWire {
    magic: [u8; 8],
    format_version: u16,
    header_len_bytes: u16,
    shard: u32,
    epoch: u64,
    first_seq: u64,
    created_ns: i64,
    capacity_bytes: u64,
    reserved: [u8; 12],
    header_crc32c: u32,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct FrameHeaderWire {
    payload_len_bytes: u32,
    record_type: u16,
    reserved0: u16,
    seq: u64,
    timestamp_ns: i64,
    crc32c: u32,
    reserved1: u32,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct SnapshotHeaderWire {
    magic: [u8; 8],
    format_version: u16,
    header_len_bytes: u16,
    shard: u32,
    epoch: u64,
    last_seq: u64,
    timestamp_ns: i64,
    payload_len_bytes: u64,
    payload_crc32c: u32,
    reserved: [u8; 8],
    header_crc32c: u32,
}

const _: () = assert!(size_of::<SegmentHeaderWire>() == SEGMENT_HEADER_LEN);
const _: () = assert!(size_of::<FrameHeaderWire>() == FRAME_HEADER_LEN);
const _: () = assert!(size_of::<SnapshotHeaderWire>() == SNAPSHOT_HEADER_LEN);

/// Why a segment or snapshot header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderFault {
    /// The file is shorter than a header.
    TooShort {
        len_bytes: u64,
    },
    BadMagic,
    UnsupportedVersion {
        found: u16,
    },
    BadChecksum,
    /// The checksum verifies but a field is impossible: header length, capacity or reserved bytes.
    BadLayout,
}

/// A decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub shard: u32,
    /// The journal's epoch, chosen when it was created; every segment of a journal carries it.
    pub epoch: u64,
    /// Sequence of the first record in the segment (also the number in its file name).
    pub first_seq: u64,
    /// Wall-clock time the segment was created, nanoseconds since the Unix epoch.
    pub created_ns: i64,
    /// Size the segment was preallocated to; frames never extend past it.
    pub capacity_bytes: u64,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let wire = SegmentHeaderWire {
            magic: SEGMENT_MAGIC,
            format_version: FORMAT_VERSION.to_le(),
            header_len_bytes: (SEGMENT_HEADER_LEN as u16).to_le(),
            shard: self.shard.to_le(),
            epoch: self.epoch.to_le(),
            first_seq: self.first_seq.to_le(),
            created_ns: self.created_ns.to_le(),
            capacity_bytes: self.capacity_bytes.to_le(),
            reserved: [0; 12],
            header_crc32c: 0,
        };
        let mut bytes = [0u8; SEGMENT_HEADER_LEN];
        bytes.copy_from_slice(bytemuck::bytes_of(&wire));
        let crc = crc32c::crc32c(&bytes[..SEGMENT_HEADER_CRC_OFFSET]);
        bytes[SEGMENT_HEADER_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Decodes and checks the first [`SEGMENT_HEADER_LEN`] bytes of `bytes`. Checks magic, version,
    /// checksum and layout only; whether the header belongs to the journal being read (shard, epoch,
    /// sequence) is the reader's business.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, HeaderFault> {
        let Some(bytes) = bytes.get(..SEGMENT_HEADER_LEN) else {
            return Err(HeaderFault::TooShort { len_bytes: bytes.len() as u64 });
        };
        let wire: SegmentHeaderWire = bytemuck::pod_read_unaligned(bytes);
        if wire.magic != SEGMENT_MAGIC {
            return Err(HeaderFault::BadMagic);
        }
        let version = u16::from_le(wire.format_version);
        if version != FORMAT_VERSION {
            return Err(HeaderFault::UnsupportedVersion { found: version });
        }
        if crc32c::crc32c(&bytes[..SEGMENT_HEADER_CRC_OFFSET]) != u32::from_le(wire.header_crc32c) {
            return Err(HeaderFault::BadChecksum);
        }
        let header = SegmentHeader {
            shard: u32::from_le(wire.shard),
            epoch: u64::from_le(wire.epoch),
            first_seq: u64::from_le(wire.first_seq),
            created_ns: i64::from_le(wire.created_ns),
            capacity_bytes: u64::from_le(wire.capacity_bytes),
        };
        let capacity_ok = (MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&header.capacity_bytes)
            && header.capacity_bytes % FRAME_ALIGN_BYTES as u64 == 0;
        if usize::from(u16::from_le(wire.header_len_bytes)) != SEGMENT_HEADER_LEN
            || !capacity_ok
            || wire.reserved != [0; 12]
        {
            return Err(HeaderFault::BadLayout);
        }
        Ok(header)
    }
}

/// A decoded frame header. Decoding checks nothing; [`FrameHeader::checksum`] and the reader do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub payload_len_bytes: u32,
    pub record_type: u16,
    pub seq: u64,
    pub timestamp_ns: i64,
    pub crc32c: u32,
    /// Both reserved fields are zero, as format version 1 requires.
    pub reserved_zero: bool,
}

impl FrameHeader {
    /// The header of a frame with a zero checksum field, as the checksum is computed over it.
    pub fn encode_unsealed(
        payload_len_bytes: u32,
        record_type: u16,
        seq: u64,
        timestamp_ns: i64,
    ) -> [u8; FRAME_HEADER_LEN] {
        let wire = FrameHeaderWire {
            payload_len_bytes: payload_len_bytes.to_le(),
            record_type: record_type.to_le(),
            reserved0: 0,
            seq: seq.to_le(),
            timestamp_ns: timestamp_ns.to_le(),
            crc32c: 0,
            reserved1: 0,
        };
        let mut bytes = [0u8; FRAME_HEADER_LEN];
        bytes.copy_from_slice(bytemuck::bytes_of(&wire));
        bytes
    }

    /// Decodes the first [`FRAME_HEADER_LEN`] bytes of `bytes`, or `None` if there are fewer.
    pub fn decode(bytes: &[u8]) -> Option<FrameHeader> {
        let wire: FrameHeaderWire = bytemuck::pod_read_unaligned(bytes.get(..FRAME_HEADER_LEN)?);
        Some(FrameHeader {
            payload_len_bytes: u32::from_le(wire.payload_len_bytes),
            record_type: u16::from_le(wire.record_type),
            seq: u64::from_le(wire.seq),
            timestamp_ns: i64::from_le(wire.timestamp_ns),
            crc32c: u32::from_le(wire.crc32c),
            reserved_zero: wire.reserved0 == 0 && wire.reserved1 == 0,
        })
    }

    /// The checksum of a whole frame (header, payload and padding) as stored in its header: CRC32C
    /// of the frame's bytes with the checksum field read as zero. `frame` is exactly one frame.
    pub fn checksum(frame: &[u8]) -> u32 {
        let crc = crc32c::crc32c(&frame[..FRAME_CRC_OFFSET]);
        let crc = crc32c::crc32c_append(crc, &[0; 4]);
        crc32c::crc32c_append(crc, &frame[FRAME_CRC_OFFSET + 4..])
    }
}

/// A decoded snapshot file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotHeader {
    pub shard: u32,
    pub epoch: u64,
    /// Sequence of the last journal record the snapshot includes.
    pub last_seq: u64,
    pub timestamp_ns: i64,
    pub payload_len_bytes: u64,
    pub payload_crc32c: u32,
}

impl SnapshotHeader {
    pub fn encode(&self) -> [u8; SNAPSHOT_HEADER_LEN] {
        let wire = SnapshotHeaderWire {
            magic: SNAPSHOT_MAGIC,
            format_version: FORMAT_VERSION.to_le(),
            header_len_bytes: (SNAPSHOT_HEADER_LEN as u16).to_le(),
            shard: self.shard.to_le(),
            epoch: self.epoch.to_le(),
            last_seq: self.last_seq.to_le(),
            timestamp_ns: self.timestamp_ns.to_le(),
            payload_len_bytes: self.payload_len_bytes.to_le(),
            payload_crc32c: self.payload_crc32c.to_le(),
            reserved: [0; 8],
            header_crc32c: 0,
        };
        let mut bytes = [0u8; SNAPSHOT_HEADER_LEN];
        bytes.copy_from_slice(bytemuck::bytes_of(&wire));
        let crc = crc32c::crc32c(&bytes[..SNAPSHOT_HEADER_CRC_OFFSET]);
        bytes[SNAPSHOT_HEADER_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Decodes and checks magic, version, header checksum and layout of a snapshot header.
    pub fn decode(bytes: &[u8]) -> Result<SnapshotHeader, HeaderFault> {
        let Some(bytes) = bytes.get(..SNAPSHOT_HEADER_LEN) else {
            return Err(HeaderFault::TooShort { len_bytes: bytes.len() as u64 });
        };
        let wire: SnapshotHeaderWire = bytemuck::pod_read_unaligned(bytes);
        if wire.magic != SNAPSHOT_MAGIC {
            return Err(HeaderFault::BadMagic);
        }
        let version = u16::from_le(wire.format_version);
        if version != FORMAT_VERSION {
            return Err(HeaderFault::UnsupportedVersion { found: version });
        }
        if crc32c::crc32c(&bytes[..SNAPSHOT_HEADER_CRC_OFFSET]) != u32::from_le(wire.header_crc32c) {
            return Err(HeaderFault::BadChecksum);
        }
        if usize::from(u16::from_le(wire.header_len_bytes)) != SNAPSHOT_HEADER_LEN || wire.reserved != [0; 8] {
            return Err(HeaderFault::BadLayout);
        }
        Ok(SnapshotHeader {
            shard: u32::from_le(wire.shard),
            epoch: u64::from_le(wire.epoch),
            last_seq: u64::from_le(wire.last_seq),
            timestamp_ns: i64::from_le(wire.timestamp_ns),
            payload_len_bytes: u64::from_le(wire.payload_len_bytes),
            payload_crc32c: u32::from_le(wire.payload_crc32c),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    fn check(fields: &[Field], offsets: &[usize], total: usize) {
        assert_eq!(fields.len(), offsets.len());
        for (field, &offset) in fields.iter().zip(offsets) {
            assert_eq!(field.offset_bytes, offset, "{}", field.name);
        }
        for pair in fields.windows(2) {
            assert_eq!(
                pair[0].offset_bytes + pair[0].size_bytes,
                pair[1].offset_bytes,
                "{} is not contiguous",
                pair[1].name
            );
        }
        let last = fields.last().expect("fields");
        assert_eq!(last.offset_bytes + last.size_bytes, total);
    }

    #[test]
    fn tables_match_the_wire_structs() {
        check(
            &SEGMENT_HEADER_FIELDS,
            &[
                offset_of!(SegmentHeaderWire, magic),
                offset_of!(SegmentHeaderWire, format_version),
                offset_of!(SegmentHeaderWire, header_len_bytes),
                offset_of!(SegmentHeaderWire, shard),
                offset_of!(SegmentHeaderWire, epoch),
                offset_of!(SegmentHeaderWire, first_seq),
                offset_of!(SegmentHeaderWire, created_ns),
                offset_of!(SegmentHeaderWire, capacity_bytes),
                offset_of!(SegmentHeaderWire, reserved),
                offset_of!(SegmentHeaderWire, header_crc32c),
            ],
            SEGMENT_HEADER_LEN,
        );
        check(
            &FRAME_HEADER_FIELDS,
            &[
                offset_of!(FrameHeaderWire, payload_len_bytes),
                offset_of!(FrameHeaderWire, record_type),
                offset_of!(FrameHeaderWire, reserved0),
                offset_of!(FrameHeaderWire, seq),
                offset_of!(FrameHeaderWire, timestamp_ns),
                offset_of!(FrameHeaderWire, crc32c),
                offset_of!(FrameHeaderWire, reserved1),
            ],
            FRAME_HEADER_LEN,
        );
        check(
            &SNAPSHOT_HEADER_FIELDS,
            &[
                offset_of!(SnapshotHeaderWire, magic),
                offset_of!(SnapshotHeaderWire, format_version),
                offset_of!(SnapshotHeaderWire, header_len_bytes),
                offset_of!(SnapshotHeaderWire, shard),
                offset_of!(SnapshotHeaderWire, epoch),
                offset_of!(SnapshotHeaderWire, last_seq),
                offset_of!(SnapshotHeaderWire, timestamp_ns),
                offset_of!(SnapshotHeaderWire, payload_len_bytes),
                offset_of!(SnapshotHeaderWire, payload_crc32c),
                offset_of!(SnapshotHeaderWire, reserved),
                offset_of!(SnapshotHeaderWire, header_crc32c),
            ],
            SNAPSHOT_HEADER_LEN,
        );
        assert_eq!(SEGMENT_HEADER_FIELDS[9].offset_bytes, SEGMENT_HEADER_CRC_OFFSET);
        assert_eq!(FRAME_HEADER_FIELDS[5].offset_bytes, FRAME_CRC_OFFSET);
        assert_eq!(SNAPSHOT_HEADER_FIELDS[10].offset_bytes, SNAPSHOT_HEADER_CRC_OFFSET);
    }

    #[test]
    fn segment_header_round_trips_and_detects_every_bit_flip() {
        let header = SegmentHeader {
            shard: 3,
            epoch: 77,
            first_seq: 1001,
            created_ns: 1_700_000_000_000_000_000,
            capacity_bytes: 4096,
        };
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        for bit in 0..SEGMENT_HEADER_LEN * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(SegmentHeader::decode(&flipped).is_err(), "bit {bit}");
        }
        assert_eq!(SegmentHeader::decode(&bytes[..10]), Err(HeaderFault::TooShort { len_bytes: 10 }));
    }

    #[test]
    fn frame_sizes() {
        assert_eq!(frame_len_bytes(1), 40);
        assert_eq!(frame_len_bytes(8), 40);
        assert_eq!(frame_len_bytes(9), 48);
        assert_eq!(frame_len_bytes(128), 160);
        assert_eq!(max_payload_bytes(128), 32);
        assert_eq!(frame_len_bytes(max_payload_bytes(4096)) + SEGMENT_HEADER_LEN as u64, 4096);
        assert_eq!(max_payload_bytes(MAX_SEGMENT_BYTES), (1 << 32) - 96);
        assert_eq!(max_payload_bytes(1 << 40), u32::MAX as u64 / 8 * 8);
    }
}
