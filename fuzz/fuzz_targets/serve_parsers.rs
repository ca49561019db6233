//! `pilot serve`'s chat completion and feedback body parsers: no panic, sound bounds.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pilot_serve_parse::testkit::check_serve_parsers(data).unwrap_or_else(|why| panic!("{why}"))
});
