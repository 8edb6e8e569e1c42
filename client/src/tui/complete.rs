//! Tab completion for the full-screen input line: commands, colors and the names in the
//! [`Roster`]. Pure: it only reads the roster.

use chat_common::protocol::Color;

use crate::core::roster::Roster;

/// The commands offered by Tab, with a space after those that take arguments.
pub const COMMANDS: [&str; 20] = [
    "/private ",
    "/msg ",
    "/color ",
    "/me ",
    "/nick ",
    "/who",
    "/help",
    "/leave",
    "/quit",
    "/reconnect",
    "/r ",
    "/clear",
    "/search ",
    "/ignore ",
    "/unignore ",
    "/log ",
    "/reply ",
    "/forget",
    "/query ",
    "/unquery",
];

/// Completion candidates for `line` (the text before the cursor): where the completed word
/// starts, and the replacements for it. Commands as the first word; colors after `/color`;
/// names after `/private` (or `/msg`) and anywhere else; `/color` after `/private NAME`.
pub fn complete(line: &str, roster: &Roster) -> (usize, Vec<String>) {
    let start = line.rfind(' ').map_or(0, |i| i + 1);
    let word = &line[start..];
    let before: Vec<&str> = line[..start].split(' ').filter(|w| !w.is_empty()).collect();
    let is = |w: &str, command: &str| w.eq_ignore_ascii_case(command);
    let starts = |candidate: &str| {
        candidate.len() >= word.len()
            && candidate.as_bytes()[..word.len()].eq_ignore_ascii_case(word.as_bytes())
    };
    let colors = || -> Vec<String> {
        Color::ALL
            .iter()
            .map(|c| format!("{c} "))
            .filter(|c| starts(c))
            .collect()
    };
    let names = || -> Vec<String> { roster.matching(word).into_iter().map(|n| n + " ").collect() };
    let candidates = match before.as_slice() {
        [] if word.starts_with('/') => COMMANDS
            .iter()
            .filter(|c| starts(c))
            .map(|c| (*c).to_owned())
            .collect(),
        [c] if is(c, "/color") => colors(),
        [p] if is(p, "/private") || is(p, "/msg") || is(p, "/query") => names(),
        [p, _] if (is(p, "/private") || is(p, "/msg")) && word.starts_with('/') => {
            if starts("/color ") {
                vec!["/color ".to_owned()]
            } else {
                Vec::new()
            }
        }
        [p, _, c] if (is(p, "/private") || is(p, "/msg")) && is(c, "/color") => colors(),
        _ if word.starts_with('/') => Vec::new(),
        // A name at the start of the line is someone being addressed: `alice: ` (weechat's
        // nick_completer, irssi's completion_char).
        [] => roster
            .matching(word)
            .into_iter()
            .map(|n| n + ": ")
            .collect(),
        _ => names(),
    };
    (start, candidates)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chat_common::protocol::ServerMsg;

    fn roster() -> Roster {
        let mut r = Roster::new();
        r.set_me("bob");
        for name in ["alice", "albert", "bob", "carol"] {
            r.observe(&ServerMsg::Join { name });
        }
        r
    }

    fn c(line: &str) -> (usize, Vec<String>) {
        complete(line, &roster())
    }

    #[test]
    fn commands_complete_as_the_first_word() {
        assert_eq!(c("/p"), (0, vec!["/private ".to_owned()]));
        assert_eq!(c("/m"), (0, vec!["/msg ".to_owned(), "/me ".to_owned()]));
        assert_eq!(c("/").1.len(), COMMANDS.len());
        assert_eq!(c("/Le"), (0, vec!["/leave".to_owned()]));
        assert_eq!(c("/L").1, ["/leave", "/log "]);
        assert_eq!(c("/cl").1, ["/clear"]);
        assert_eq!(c("/msg al").1, ["albert ", "alice "]);
        assert_eq!(c("/x").1, Vec::<String>::new());
    }

    #[test]
    fn names_complete_after_private_and_in_text() {
        assert_eq!(
            c("/private al"),
            (9, vec!["albert ".into(), "alice ".into()])
        );
        assert_eq!(c("/private c"), (9, vec!["carol ".into()]));
        assert_eq!(c("hi ca"), (3, vec!["carol ".into()]));
        // At the start of the line a name is someone addressed.
        assert_eq!(c("ca"), (0, vec!["carol: ".into()]));
        assert_eq!(c("A").1, ["albert: ", "alice: "]);
        // Never yourself.
        assert_eq!(c("/private b").1, Vec::<String>::new());
    }

    #[test]
    fn colors_complete_after_color() {
        assert_eq!(c("/color r"), (7, vec!["red ".into()]));
        assert_eq!(c("/COLOR b").1, ["black ", "blue "]);
        assert_eq!(c("/private alice /c"), (15, vec!["/color ".into()]));
        assert_eq!(c("/private alice /color g"), (22, vec!["green ".into()]));
    }
}
