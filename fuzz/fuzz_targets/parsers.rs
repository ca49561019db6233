//! Dataset, judge, bandit-log, pairs and embedding loaders: no panic, errors carry a line.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pilot_data::testkit::check_parsers(data).unwrap_or_else(|why| panic!("{why}"))
});
