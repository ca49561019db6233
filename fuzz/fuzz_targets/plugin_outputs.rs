//! Arbitrary plugin outputs (shapes, embeddings, selections, snapshots) through the host's validation.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pilot_plugin_host::testkit::check_plugin_outputs(data).unwrap_or_else(|why| panic!("{why}"))
});
