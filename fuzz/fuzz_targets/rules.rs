//! The rules compiler on arbitrary bytes, split into files at each 0xFF byte, through the entry
//! point the server uses when it loads a rules folder. The invariants are in
//! `tests/support/fuzz_invariants.rs`, shared with the regression tests that replay findings.

#![no_main]

use libfuzzer_sys::fuzz_target;

// Each target uses only its half of the shared checks.
#[allow(dead_code)]
#[path = "../../tests/support/fuzz_invariants.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    invariants::check_rules(&invariants::rules_files(data));
});
