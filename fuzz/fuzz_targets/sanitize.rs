//! Fuzz target for `chat_common::sanitize`.
//!
//! Properties: the output holds no forbidden character; it is the input with each tab turned
//! into a space and each other forbidden character removed, in order; it is borrowed exactly when
//! nothing had to change; sanitizing twice changes nothing more; and `is_forbidden` agrees with
//! the rule written out by code point (C0, DEL, C1, U+2028-U+2029, U+202A-U+202E,
//! U+2066-U+2069).
//! Invalid UTF-8 is replaced (lossily) so that every input yields text to sanitize.
#![no_main]

use std::borrow::Cow;

use chat_common::sanitize::{is_forbidden, sanitize};
use libfuzzer_sys::fuzz_target;

/// The rule as docs/PROTOCOL.md states it, independent of `char::is_control`.
fn forbidden_by_code_point(c: char) -> bool {
    matches!(u32::from(c), 0..=0x1f | 0x7f..=0x9f | 0x2028..=0x2029 | 0x202a..=0x202e | 0x2066..=0x2069)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for c in text.chars() {
        assert_eq!(
            is_forbidden(c),
            forbidden_by_code_point(c),
            "U+{:04X}",
            u32::from(c)
        );
    }
    let out = sanitize(&text);
    assert!(!out.chars().any(is_forbidden), "{out:?}");
    let want: String = text
        .chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if is_forbidden(c) => None,
            c => Some(c),
        })
        .collect();
    assert_eq!(out, want.as_str());
    assert_eq!(
        matches!(out, Cow::Borrowed(_)),
        !text.chars().any(is_forbidden),
        "borrowed iff clean"
    );
    assert!(matches!(sanitize(&out), Cow::Borrowed(_)), "not idempotent");
});
