//! `lc::fuzzing::render`; the invariants are there.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| lc::fuzzing::render(data));
