#![no_main]
//! cargo-fuzz target: the `state` check of the in-test fuzzer (tests/fuzz/targets.rs).

#[allow(dead_code)]
#[path = "../../tests/fuzz/engine.rs"]
mod engine;
#[path = "../../tests/fuzz/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    targets::check_state(data);
});
