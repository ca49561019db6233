//! Arbitrary select / update / save / restore / add / remove sequences with NaN and huge values.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pilot_bandit::testkit::check_policy_ops(data).unwrap_or_else(|why| panic!("{why}"))
});
