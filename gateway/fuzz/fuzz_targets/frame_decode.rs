//! Bytes from a client, as the binary gateway reads them: whatever they are, `decode` asks for
//! more, returns an error, or returns a frame; never a panic. A decoded frame encodes back to
//! exactly the bytes it came from (the header's reserved field aside, which decoding ignores),
//! and a stream of frames decodes frame by frame until the first error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simex::binary::protocol::{decode, encode, FRAME_MAX, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let mut offset = 0;
    while offset < data.len() {
        let rest = &data[offset..];
        match decode(rest) {
            Ok(None) => {
                let length = rest.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
                assert!(rest.len() < FRAME_MAX || length.is_none(), "more bytes asked for a full frame");
                break;
            }
            Ok(Some((frame, len))) => {
                assert!((HEADER_LEN..=FRAME_MAX).contains(&len) && len <= rest.len());
                let mut again = Vec::new();
                encode(&frame.message, frame.sequence, &mut again);
                assert_eq!(again.len(), len);
                assert_eq!(&again[..6], &rest[..6]);
                assert_eq!(&again[8..], &rest[8..len], "{frame:?} has another encoding");
                offset += len;
            }
            Err(error) => {
                if let Some(len) = error.frame_len() {
                    assert!(len <= rest.len());
                    offset += len;
                } else {
                    break;
                }
            }
        }
    }
});
