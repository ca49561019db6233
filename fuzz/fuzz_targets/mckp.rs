//! MCKP solvers differentially: exact == DP == brute force, LP ≥ exact ≥ greedy, choices valid.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pilot_budget::testkit::check_mckp_bytes(data).unwrap_or_else(|why| panic!("{why}"))
});
