//! Any bytes as a saved plan: a plan or a typed error, never a panic. A plan
//! that loads encodes and loads again; saving it withholds whatever sensitive
//! value the bytes held, and saving it once more changes nothing.
#![no_main]

use infra_core::plan::Plan;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(plan) = Plan::decode(data) {
        let once = Plan::decode(&plan.encode()).expect("an encoded plan loads");
        let twice = Plan::decode(&once.encode()).expect("an encoded plan loads again");
        assert_eq!(once, twice);
    }
});
