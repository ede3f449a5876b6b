//! Decimal text from outside: parsing never panics, conversion to a grid is exact, and formatting a
//! converted value gives text that converts back to the same number of steps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simex_engine::decimal::{Decimal, Step};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(decimal) = Decimal::parse(text) else { return };
    for step in ["0.01", "0.00001", "0.001", "1", "0.00000001", "0.05", "25"] {
        let step = Step::parse(step).expect("valid step");
        if let Ok(steps) = decimal.to_steps(step) {
            let formatted = step.format(steps).to_string();
            let again = Decimal::parse(&formatted).expect("formatted text parses");
            assert_eq!(again.to_steps(step), Ok(steps), "{text} -> {formatted}");
        }
    }
});
