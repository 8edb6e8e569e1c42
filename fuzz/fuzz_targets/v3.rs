//! Fuzz target for the version 3 syntax: `chat_common::protocol::v3`.
//!
//! Properties: nothing panics; a tag prefix is split off exactly (the rest is the line's tail,
//! after one space, and the prefix holds no space); a `HELLO`/`RESUME` opening that parses
//! formats back to the same line (`HELLO` versions may lose leading zeros), and a version 3
//! server line that parses formats back to itself (the same leniency for `HELLO`).
#![no_main]

use chat_common::protocol::v3::{parse_opening, split_tags, Opening, V3Msg};
use libfuzzer_sys::fuzz_target;

/// `HELLO 003` formats as `HELLO 3`: the only change parse-then-format may make.
fn same_but_leading_zeros(line: &str, formatted: &str) -> bool {
    match (
        line.strip_prefix("HELLO "),
        formatted.strip_prefix("HELLO "),
    ) {
        (Some(a), Some(b)) => {
            a.trim_start_matches('0') == b || (b == "0" && a.bytes().all(|c| c == b'0'))
        }
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let (tags, rest) = split_tags(line);
    if let Some(tags) = tags {
        assert!(!tags.as_str().contains(' '));
        assert_eq!(line.len(), 1 + tags.as_str().len() + 1 + rest.len());
        assert!(line.ends_with(rest));
        let _ = (tags.id(), tags.time(), tags.iter().count());
    } else {
        assert_eq!(rest, line);
    }
    match parse_opening(line) {
        Ok(Opening::Name(name)) => assert_eq!(name, line),
        Ok(opening) => {
            let formatted = opening.to_string();
            assert!(
                formatted == line || same_but_leading_zeros(line, &formatted),
                "{line:?} -> {formatted:?}"
            );
            assert_eq!(parse_opening(&formatted), Ok(opening));
        }
        Err(_) => {}
    }
    if let Ok(msg) = V3Msg::parse(line) {
        let formatted = msg.to_string();
        assert!(
            formatted == line || same_but_leading_zeros(line, &formatted),
            "{line:?} -> {formatted:?}"
        );
        assert_eq!(V3Msg::parse(&formatted), Ok(msg));
    }
});
