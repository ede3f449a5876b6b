//! An instrument table from outside: any text is either a valid table or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simex_engine::InstrumentTable;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(table) = InstrumentTable::from_toml(text) {
        for instrument in table.iter() {
            let _ = instrument.notional_ceil_micros(i64::MAX, i64::MAX);
            let _ = instrument.next_session_close_ns(i64::MAX / 2);
        }
    }
});
