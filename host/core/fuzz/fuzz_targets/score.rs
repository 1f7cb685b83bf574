//! A Score file, as a developer sends it: any text is either a workload or a list of
//! problems, never a panic, and a workload that loads makes a set whose JSON loads again.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match wharf_core::score::load(text) {
        Ok((workload, _)) => {
            let set = wharf_core::set::Set::new(vec![workload]).expect("one workload is a set");
            let again = wharf_core::set::Set::from_json(set.to_json()).expect("a set reloads");
            assert_eq!(again.id(), set.id());
        }
        Err(problems) => assert!(!problems.is_empty(), "a refusal names its problems"),
    }
});
