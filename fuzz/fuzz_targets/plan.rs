//! Any bytes as a saved plan: a plan or a typed error, never a panic; a plan
//! that loads encodes and loads again to the same plan.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(plan) = infra_core::plan::Plan::decode(data) {
        let again = infra_core::plan::Plan::decode(&plan.encode()).expect("an encoded plan loads");
        assert_eq!(again, plan);
    }
});
