//! Decimal literals: never panic; an accepted number keeps its value (the f64 Rust reads
//! from the same text) and its canonical text is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usersync_core::scim::filter::{Decimal, DecimalError};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    match Decimal::parse(input) {
        Ok(d) => {
            let value: f64 = input.parse().expect("a JSON number is a Rust float literal");
            assert_eq!(d.to_f64().to_bits(), value.to_bits());
            assert_eq!(Decimal::parse(d.as_str()), Ok(d));
        }
        Err(DecimalError::OutOfRange) => {
            assert!(input.parse::<f64>().is_ok_and(f64::is_infinite));
        }
        Err(DecimalError::Malformed) => {}
    }
});
