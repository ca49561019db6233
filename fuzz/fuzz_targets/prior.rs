//! Prior files from arbitrary bytes: no panic, errors name the file, a decoded prior is valid.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pilot_prior::testkit::check_prior_bytes(data).unwrap_or_else(|why| panic!("{why}"))
});
