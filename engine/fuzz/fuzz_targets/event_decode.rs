//! Journal event payloads read back from disk: whatever the bytes and the record type, decoding
//! either fails with an error or yields an event whose encoding is exactly those bytes. Never a
//! panic, and never two encodings of one event.
//!
//! The first two bytes are a record type that is also tried (any `u16`, mostly unknown ones); the
//! rest is the payload, decoded under every event record type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simex_engine::codec::{decode_event, encode_event, payload_len, record_type, PAYLOAD_MAX};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let raw_type = u16::from_le_bytes([data[0], data[1]]);
    let payload = &data[2..];
    for record_type in record_type::ALL.into_iter().chain([raw_type]) {
        let seq = payload.len() as u64;
        let timestamp_ns = -(record_type as i64);
        let Ok(event) = decode_event(record_type, seq, timestamp_ns, payload) else { continue };
        assert_eq!(payload_len(record_type), Some(payload.len()));
        assert_eq!((event.seq, event.timestamp_ns), (seq, timestamp_ns));
        let mut again = [0u8; PAYLOAD_MAX];
        let (encoded_type, len) = encode_event(&event.body, &mut again);
        assert_eq!(encoded_type, record_type, "{event:?}");
        assert_eq!(&again[..len], payload, "{event:?} has another encoding");
    }
});
