//! `lc::fuzzing::ftp_command`; the invariants are there.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| lc::fuzzing::ftp_command(data));
