#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| outlyer_agent::fuzzing::fuzz_net_dev(data));
