//! CTCP in `PRIVMSG` text: `ACTION` (what `/me` sends) in and out; every other CTCP request
//! (`VERSION`, `PING`, `DCC`...) is recognised so the server can refuse it instead of relaying
//! it as words. This module owns the `0x01` framing only; it never panics.

/// The CTCP delimiter.
pub const DELIM: char = '\x01';

/// What a `PRIVMSG` text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctcp<'a> {
    /// Plain text, no CTCP.
    Text(&'a str),
    /// `\x01ACTION text\x01`: the action's text (the closing `\x01` is optional, as clients
    /// and modern.ircdocs.horse allow).
    Action(&'a str),
    /// Another CTCP request: its command (`VERSION`, `PING`...).
    Other(&'a str),
}

/// Reads a `PRIVMSG` text.
pub fn parse(text: &str) -> Ctcp<'_> {
    let Some(inner) = text.strip_prefix(DELIM) else {
        return Ctcp::Text(text);
    };
    let inner = inner.strip_suffix(DELIM).unwrap_or(inner);
    let (command, rest) = inner.split_once(' ').unwrap_or((inner, ""));
    if command.eq_ignore_ascii_case("ACTION") {
        Ctcp::Action(rest)
    } else {
        Ctcp::Other(command)
    }
}

/// The bytes an action's text is wrapped in: what comes before and after it.
pub const ACTION_OPEN: &str = "\x01ACTION ";
/// See [`ACTION_OPEN`].
pub const ACTION_CLOSE: &str = "\x01";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_actions_and_other_requests() {
        assert_eq!(parse("hello"), Ctcp::Text("hello"));
        assert_eq!(parse("\x01ACTION waves\x01"), Ctcp::Action("waves"));
        assert_eq!(parse("\x01action waves hello"), Ctcp::Action("waves hello"));
        assert_eq!(parse("\x01ACTION\x01"), Ctcp::Action(""));
        assert_eq!(parse("\x01VERSION\x01"), Ctcp::Other("VERSION"));
        assert_eq!(parse("\x01"), Ctcp::Other(""));
        assert_eq!(
            parse("a \x01ACTION x\x01"),
            Ctcp::Text("a \x01ACTION x\x01")
        );
    }
}
