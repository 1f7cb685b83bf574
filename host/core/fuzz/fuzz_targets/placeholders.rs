//! Placeholders in any string: parsing never panics, and substituting every reference with
//! a value that holds no `$` gives back the literal text around it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_core::score::placeholder::{Piece, parse, substitute};

fuzz_target!(|text: &str| {
    let Ok(pieces) = parse(text) else {
        return;
    };
    let expected: String = pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.to_string(),
            Piece::Ref(_) => "X".to_string(),
        })
        .collect();
    let out = substitute(text, |_, _| Ok::<_, ()>("X".to_string())).expect("it parsed");
    assert_eq!(out, expected);
});
