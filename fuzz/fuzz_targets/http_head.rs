//! See servebench::fuzzing::http_head for what this target checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| servebench::fuzzing::http_head(data));
