//! The catalog importer on arbitrary bytes: a CSV and, after the first 0xFF byte, the
//! exclusive-sets JSON. Whatever it accepts must come out as rules that compile and hold every row
//! of the CSV. The invariants are in `tests/support/fuzz_invariants.rs`, shared with the
//! regression tests that replay findings.

#![no_main]

use libfuzzer_sys::fuzz_target;

// Each target uses only its half of the shared checks.
#[allow(dead_code)]
#[path = "../../tests/support/fuzz_invariants.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    let (csv, json) = invariants::catalog_parts(data);
    invariants::check_catalog(csv, json);
});
