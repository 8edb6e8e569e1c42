//! Fuzz target for what a client reads: `chat_common::protocol::ServerMsg::parse`.
//!
//! Properties: a line that parses formats (`to_string`) to a canonical line, which parses to the
//! same message and formats to itself; and that canonical line equals the input, except in two
//! ways where the parser is deliberately lenient and the server never sends the lenient form:
//! - a line whose last field, the free text, is empty may leave out the space before it
//!   (`BYE`, `MSG al -`): it formats with the space (`BYE `, `MSG al - `);
//! - `WELCOME`'s count is read by `usize::from_str`, which also takes a `+` sign and leading
//!   zeros (`WELCOME al +03`): it formats as plain decimal (`WELCOME al 3`).
//!
//! Any other difference fails.
#![no_main]

use chat_common::protocol::ServerMsg;
use libfuzzer_sys::fuzz_target;

/// The free-text field, for the messages whose last field is one.
fn text_field<'a>(msg: &ServerMsg<'a>) -> Option<&'a str> {
    match *msg {
        ServerMsg::NameQuery { prompt: text }
        | ServerMsg::Wait { text }
        | ServerMsg::Denied { text }
        | ServerMsg::Msg { text, .. }
        | ServerMsg::Priv { text, .. }
        | ServerMsg::Act { text, .. }
        | ServerMsg::Info { text }
        | ServerMsg::Error { text, .. }
        | ServerMsg::Bye { text } => Some(text),
        ServerMsg::Welcome { .. }
        | ServerMsg::Join { .. }
        | ServerMsg::Leave { .. }
        | ServerMsg::Nick { .. }
        | ServerMsg::Hist { .. } => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(msg) = ServerMsg::parse(line) else {
        return;
    };
    let formatted = msg.to_string();
    assert!(
        line.contains('\n') || !formatted.contains('\n'),
        "{formatted:?}"
    );
    assert_eq!(
        ServerMsg::parse(&formatted),
        Ok(msg),
        "format is not canonical"
    );
    assert_eq!(
        ServerMsg::parse(&formatted).map(|m| m.to_string()),
        Ok(formatted.clone())
    );
    if formatted == line {
        return;
    }
    let text_without_space = text_field(&msg) == Some("") && formatted == format!("{line} ");
    let lenient_count = match msg {
        ServerMsg::Welcome { name, online } => {
            let count = line.strip_prefix(&format!("WELCOME {name} ")).unwrap_or("");
            let digits = count.strip_prefix('+').unwrap_or(count);
            !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse() == Ok(online)
        }
        _ => false,
    };
    assert!(
        text_without_space || lenient_count,
        "parse then format changed the line: {line:?} -> {formatted:?}"
    );
});
