//! Restores arbitrary bytes into every bandit policy: no panic, state unchanged on error, valid on success.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pilot_bandit::testkit::check_snapshot_bytes(data).unwrap_or_else(|why| panic!("{why}"))
});
