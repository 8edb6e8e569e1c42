//! Both interfaces are views of one brain: the same recorded server session, played by a fake
//! server to line mode (a pipe) and to the full screen (a pseudo-terminal read back with
//! vt100), shows the same conversation, entry for entry and in the same order.

#![allow(clippy::unwrap_used)]

mod util;

use util::screen::Screen;
use util::{fake_server, Client};

/// A recorded session after `WELCOME bob 3`: history, every kind of live line, a line the
/// client cannot parse and hostile padding.
const RECORDING: &[&str] = &[
    "HIST 2026-12-01T16:05:09.123Z MSG alice - from the **past**",
    "HIST 2026-12-01T16:06:10.000Z ACT alice waved then",
    "JOIN carol",
    "MSG alice - hello bob",
    "MSG carol green in **green**",
    "ACT alice waves",
    "PRIV alice bob - psst",
    "PRIV carol alice - not for bob to see as his",
    "NICK alice al",
    "INFO the room is open",
    "ERROR usage say what?",
    "XYZZY a line nobody knows",
    "MSG mallory - ok          <alice> forged?",
    "LEAVE carol quit",
    "INFO end of recording",
];

/// Plays the recording to one client, then answers its `/leave`.
fn play() -> (String, std::thread::JoinHandle<()>) {
    fake_server(|mut conn| {
        conn.send("NAME? name please");
        conn.expect("bob");
        conn.send("WELCOME bob 3");
        for line in RECORDING {
            conn.send(line);
        }
        conn.expect("/leave");
        conn.send("BYE goodbye");
    })
}

/// What a line of line mode says: a class (speaker, `note`, `!`, `??`) and the text.
fn from_line(line: &str) -> Option<String> {
    let line = match line.strip_prefix('[') {
        // A history line: `[time] ` first.
        Some(rest) if !line.starts_with("[private] ") => rest.split_once("] ")?.1,
        _ => line,
    };
    if let Some(rest) = line.strip_prefix("[private] <") {
        let (from, rest) = rest.split_once(" -> ")?;
        let (to, text) = rest.split_once("> ")?;
        let other = if from == "you" { to } else { from };
        return Some(format!("private {other}|{text}"));
    }
    if let Some(rest) = line.strip_prefix('<') {
        let (from, text) = rest.split_once("> ")?;
        return Some(format!("{from}|{text}"));
    }
    for (marker, class) in [("* ", "note"), ("-- ", "note"), ("! ", "!"), ("?? ", "??")] {
        if let Some(text) = line.strip_prefix(marker) {
            return Some(format!("{class}|{text}"));
        }
    }
    None
}

/// What a row of the full screen's message pane says, in the same terms; `None` for rows that
/// are not an entry's first row (continuations, the history separator, status and input).
fn from_row(row: &str) -> Option<String> {
    let (left, text) = row.split_once(" │ ").or_else(|| row.split_once(" ┃ "))?;
    let prefix = left.get(5..)?.trim();
    let text = text.trim_end();
    if prefix.is_empty() || text.starts_with("────") {
        return None;
    }
    let class = match prefix {
        "*" | "--" => "note".to_owned(),
        "!!" => "!".to_owned(),
        "??" => "??".to_owned(),
        p if p.starts_with("→*") => format!(
            "private {}",
            p.trim_start_matches("→*").trim_end_matches('*')
        ),
        p if p.starts_with('*') => format!("private {}", p.trim_matches('*')),
        p => p.to_owned(),
    };
    Some(format!("{class}|{}", one_space(text)))
}

/// Runs of spaces as one: line mode shortens them (so a terminal's own wrapping cannot forge a
/// row); the full screen lays the row out itself and keeps them.
fn one_space(text: &str) -> String {
    text.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn line_mode_and_full_screen_show_the_same_conversation() {
    // Line mode, in a pipe.
    let (addr, script) = play();
    let mut line = Client::start(&["--name", "bob", &addr], &[]);
    line.stdout.expect("-- end of recording");
    let seen = line.stdout.seen.clone();
    line.close_stdin();
    assert_eq!(line.wait().0, 0);
    script.join().unwrap();
    let said_in_lines: Vec<String> = seen.iter().filter_map(|l| from_line(l)).collect();

    // The full screen, wide enough that nothing wraps.
    let (addr, script) = play();
    let mut screen = Screen::start(&["--name", "bob", &addr], &[("NO_COLOR", "1")], 50, 200);
    let rows = screen.wait_text("end of recording");
    screen.keys("/quit\r");
    assert_eq!(screen.wait_exit(), 0);
    script.join().unwrap();
    let said_on_screen: Vec<String> = rows.iter().filter_map(|r| from_row(r)).collect();

    // The full screen says where it connects and asks who is here; the rest is the same.
    let tail = |said: &[String]| -> Vec<String> {
        let start = said
            .iter()
            .position(|s| s.starts_with("note|you are in as bob"))
            .unwrap_or_else(|| panic!("no welcome in {said:#?}"));
        let end = said
            .iter()
            .position(|s| s == "note|end of recording")
            .unwrap_or_else(|| panic!("no end in {said:#?}"));
        said[start..=end].to_vec()
    };
    let (lines, rows) = (tail(&said_in_lines), tail(&said_on_screen));
    assert_eq!(lines, rows, "line mode {seen:#?}");
    // And it is the whole recording: every line shows once.
    assert_eq!(lines.len(), RECORDING.len() + 1, "{lines:#?}");
}
