//! Fuzz target for the operator console parser, `chat_server::console::parse`.
//!
//! Properties: never panics; a blank line is no command and a non-blank line is never "no
//! command"; names and texts it returns are non-empty slices of the line, without surrounding
//! whitespace; a name is one word; an error's message never carries a control character (the
//! console must not echo escapes back to the operator's terminal).
#![no_main]

use chat_common::sanitize::is_forbidden;
use chat_server::console::{parse, Command, Target};
use libfuzzer_sys::fuzz_target;

fn within(whole: &str, part: &str) -> bool {
    let start = whole.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    at >= start && at + part.len() <= start + whole.len()
}

fn check_arg(line: &str, arg: &str, one_word: bool) {
    assert!(!arg.is_empty(), "empty argument from {line:?}");
    assert!(within(line, arg), "argument not taken from the line");
    assert_eq!(arg.trim(), arg, "argument keeps surrounding whitespace");
    if one_word {
        assert!(
            !arg.contains(char::is_whitespace),
            "name {arg:?} is not one word"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    match parse(line) {
        Ok(None) => assert!(line.trim().is_empty(), "{line:?} ignored"),
        Ok(Some(cmd)) => match cmd {
            Command::Approve(Target::Named(n)) | Command::Deny(Target::Named(n)) => {
                check_arg(line, n, true)
            }
            Command::Kick { name, reason } => {
                check_arg(line, name, true);
                if let Some(reason) = reason {
                    check_arg(line, reason, false);
                }
            }
            Command::Ban {
                reason: Some(reason),
                ..
            } => check_arg(line, reason, false),
            Command::Say(text) => check_arg(line, text, false),
            _ => {}
        },
        Err(e) => {
            assert!(!line.trim().is_empty());
            let shown = e.to_string();
            assert!(!shown.chars().any(is_forbidden), "error echoes {shown:?}");
        }
    }
});
