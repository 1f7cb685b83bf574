//! A delta (JSON Patch) on a set: any operations are applied within the bounds or refused
//! with problems, never a panic, and what results is a valid set.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use wharf_core::set::{MAX_SET_BYTES, Set};

fn base() -> &'static Set {
    static BASE: OnceLock<Set> = OnceLock::new();
    BASE.get_or_init(|| {
        let (workload, _) = wharf_core::score::load(
            "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  main:\n    \
             image: busybox\n    command: [serve]\n    variables:\n      A: x\n",
        )
        .expect("the base loads");
        Set::new(vec![workload]).expect("one workload is a set")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(patch) = serde_json::from_slice::<json_patch::Patch>(data) else {
        return;
    };
    match base().apply(&patch) {
        Ok(next) => {
            assert!(next.to_json().to_string().len() <= 2 * MAX_SET_BYTES);
            assert_eq!(
                Set::from_json(next.to_json())
                    .expect("a result reloads")
                    .id(),
                next.id()
            );
        }
        Err(problems) => assert!(!problems.is_empty()),
    }
});
