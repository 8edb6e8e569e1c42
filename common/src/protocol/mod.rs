//! The wire protocol's messages, both ways, with exact formatting and parsing.
//!
//! [`ServerMsg`] is every line the server sends; [`Request`] is every line a member sends after
//! admission; [`validate_name`] is the rule for the first line and for `/nick`. Types borrow from
//! the line they were parsed from and format into a caller's buffer, so the server's hot path
//! neither parses into nor formats through fresh allocations. This module never touches a
//! socket, and never panics on any input: malformed lines are typed errors that carry their
//! wire code.
//!
//! `docs/PROTOCOL.md` is the contract this module implements.
//!
//! # Layout
//! - `tokens`: colors, leave reasons and error codes (one macro writes each vocabulary).
//! - `names`: the name rule.
//! - `server_msg`: server -> client lines.
//! - `request`: member -> server lines.
//! - [`v3`]: the version 3 additions: tag prefixes and ids, `HELLO`/`TOKEN`/`ECHO`/`GAP`, and
//!   the opening lines `HELLO` and `RESUME`.

mod names;
mod request;
mod server_msg;
mod tokens;
pub mod v3;

pub use names::{validate_name, NameError, MAX_NAME_LEN, RESERVED_NAME};
pub use request::{
    parse_request, Request, RequestError, HELP_LINES, USAGE_COLOR, USAGE_HELP, USAGE_LEAVE,
    USAGE_ME, USAGE_MSG, USAGE_NICK, USAGE_PRIVATE, USAGE_QUIT, USAGE_WHO,
};
pub use server_msg::{ParseError, ServerMsg};
pub use tokens::{Color, ErrorCode, LeaveReason};

/// Splits off the first space-separated word; the rest keeps its spaces.
fn word(s: &str) -> (&str, &str) {
    crate::scan::split_space(s).unwrap_or((s, ""))
}
