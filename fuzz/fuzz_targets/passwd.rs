//! `lc::fuzzing::passwd`; the invariants are there.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| lc::fuzzing::passwd(data));
