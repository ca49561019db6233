//! Online budget policies under arbitrary cost/value streams: spend never exceeds the budget.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pilot_budget::testkit::check_online_bytes(data).unwrap_or_else(|why| panic!("{why}"))
});
