//! See servebench::fuzzing::whole_body for what this target checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| servebench::fuzzing::whole_body(data));
