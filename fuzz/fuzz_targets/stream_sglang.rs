//! See servebench::fuzzing::stream_sglang for what this target checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| servebench::fuzzing::stream_sglang(data));
