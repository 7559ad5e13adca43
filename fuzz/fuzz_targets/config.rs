//! `lc::fuzzing::config`; the invariants are there.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| lc::fuzzing::config(data));
