//! The first connection of a run ([`connect_first`]) and the one question TLS may ask there: a
//! server whose certificate chains to no trusted root and is not in `known_servers` is shown by
//! its SHA-256 fingerprint, and the user answers yes or no on the terminal before any interface
//! starts, as ssh does. `--trust-new` answers yes without asking; with nobody to ask (standard
//! input is not a terminal) the answer is no, and the error says what to do instead. The
//! module `tls` remembers a yes in `known_servers`; reconnections never ask (`net.rs`).
//!
//! Questions and notices go to standard error, so they never mix with the chat on standard
//! output (a pipe, in line mode); answers are read from standard input.

use std::io::{self, Write};

use crate::exit::{ExitCode, Outcome};
use crate::line::input::{read_plain_line, Input};
use crate::net::{Connector, Stream};
use crate::tls;

/// Connects for the first time. `can_ask`: standard input is a terminal with a person at it.
pub fn connect_first(connector: &mut Connector, can_ask: bool) -> Result<Stream, Outcome> {
    let trust_new = connector.trust_new;
    let remembered = match &connector.tls.known_servers {
        Some(path) => format!("remembered in {}", path.display()),
        None => {
            "not remembered: no configuration directory (set CHAT_CONFIG_DIR or HOME)".to_owned()
        }
    };
    // The server and fingerprint that could not be asked about, for the error.
    let mut unasked: Option<(String, String)> = None;
    let result = connector.connect(|server, fingerprint| {
        if trust_new {
            say(&format!(
                "accepted the certificate of {server} on first use (--trust-new), {remembered}: \
                 {fingerprint}"
            ));
            return true;
        }
        if !can_ask {
            unasked = Some((server.to_owned(), fingerprint.to_owned()));
            return false;
        }
        let yes = ask(&tls::first_use_question(server, fingerprint), fingerprint);
        if yes {
            say(&format!("the certificate of {server} is {remembered}"));
        }
        yes
    });
    match (result, unasked) {
        (Err(outcome), Some((server, fingerprint))) if outcome.code == ExitCode::Untrusted => Err(
            Outcome::fail(ExitCode::Untrusted, cannot_ask(&server, &fingerprint)),
        ),
        (result, _) => result,
    }
}

/// The error for an unknown server when nobody can be asked.
fn cannot_ask(server: &str, fingerprint: &str) -> String {
    format!(
        "the certificate of {server} is not signed by a trusted authority ({fingerprint}) and \
         standard input is not a terminal to ask about it: use --trust-new to accept it on \
         first use, or --ca FILE to trust the authority that signed it"
    )
}

/// One line on standard error, `chat-client: ...`.
fn say(text: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "chat-client: {text}");
    let _ = err.flush();
}

/// Asks `question` until the answer is yes, no, or `fingerprint` itself (as ssh accepts);
/// the end of input, or input that cannot be read, is no.
fn ask(question: &str, fingerprint: &str) -> bool {
    let mut prompt = format!("{question} ");
    loop {
        {
            let mut err = io::stderr().lock();
            let _ = err.write_all(prompt.as_bytes());
            let _ = err.flush();
        }
        let answer = match read_plain_line(&mut io::stdin().lock()) {
            Ok(Input::Line(line)) => line,
            Ok(Input::End) | Err(_) => return false,
        };
        match answer_of(&answer, fingerprint) {
            Some(yes) => return yes,
            None => prompt = "Please type 'yes', 'no' or the fingerprint: ".to_owned(),
        }
    }
}

/// What a typed answer means: `Some(true)` for yes (or the fingerprint), `Some(false)` for no,
/// `None` for anything else.
fn answer_of(answer: &str, fingerprint: &str) -> Option<bool> {
    let answer = answer.trim();
    if answer.eq_ignore_ascii_case("yes") || answer.eq_ignore_ascii_case(fingerprint) {
        Some(true)
    } else if answer.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_yes_no_or_the_fingerprint() {
        let fp = "SHA256:ab:cd";
        assert_eq!(answer_of("yes", fp), Some(true));
        assert_eq!(answer_of(" YES ", fp), Some(true));
        assert_eq!(answer_of("SHA256:AB:CD", fp), Some(true));
        assert_eq!(answer_of("no", fp), Some(false));
        assert_eq!(answer_of("y", fp), None);
        assert_eq!(answer_of("", fp), None);
        assert_eq!(answer_of("SHA256:ab:ce", fp), None);
    }

    #[test]
    fn the_refusal_without_a_terminal_is_one_line_naming_both_ways_out() {
        let text = cannot_ask("example.org:55555", "SHA256:00");
        assert!(!text.contains('\n'));
        for part in ["example.org:55555", "SHA256:00", "--trust-new", "--ca FILE"] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
    }
}
