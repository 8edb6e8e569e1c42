//! The terminals every screen test of issue 25 runs in: 20, 40, 80 and 200 columns, each with
//! and without `NO_COLOR`, and how to read the message pane back as entries (a row with a
//! prefix starts one, rows with a blank prefix continue it), so a test asserts what a person
//! reads whatever the width wraps.
#![allow(dead_code, clippy::unwrap_used)]

use super::screen::Screen;

/// The terminal widths every test runs at.
pub const WIDTHS: [u16; 4] = [20, 40, 80, 200];

/// One test terminal.
#[derive(Debug, Clone, Copy)]
pub struct Term {
    /// Columns.
    pub cols: u16,
    /// `NO_COLOR=1` in the client's environment.
    pub no_color: bool,
}

impl Term {
    /// `80 cols, NO_COLOR`: for failure messages.
    pub fn label(&self) -> String {
        let color = if self.no_color { "NO_COLOR" } else { "colors" };
        format!("{} cols, {color}", self.cols)
    }

    /// A short name unique to this terminal (`u80c`, `u80n`), for a client joining a room
    /// that the other terminals' clients may still be leaving.
    pub fn name(&self, base: &str) -> String {
        format!(
            "{base}{}{}",
            self.cols,
            if self.no_color { 'n' } else { 'c' }
        )
    }
}

/// Every width, with and without `NO_COLOR`.
pub fn every() -> Vec<Term> {
    WIDTHS
        .iter()
        .flat_map(|&cols| [false, true].map(|no_color| Term { cols, no_color }))
        .collect()
}

/// `chat-client EXTRA... ARGS...` in a `rows` x `term.cols` terminal, with `NO_COLOR` as `term`
/// says and a configuration and state directory of its own (empty, returned to be kept alive).
pub fn start(term: Term, rows: u16, args: &[&str]) -> (Screen, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_owned();
    let mut envs: Vec<(&str, &str)> = vec![("XDG_CONFIG_HOME", &path), ("XDG_STATE_HOME", &path)];
    if term.no_color {
        envs.push(("NO_COLOR", "1"));
    }
    let screen = Screen::start(args, &envs, rows, term.cols);
    (screen, dir)
}

/// A client named `name` joined to `addr` in `term`, `rows` high; waits until it is in.
pub fn joined(term: Term, rows: u16, name: &str, addr: &str) -> (Screen, tempfile::TempDir) {
    let (screen, dir) = start(term, rows, &["--name", name, addr]);
    screen.wait_text("connected");
    (screen, dir)
}

/// Where a pane row's separator is (`│`, `┃`, or `»` on a /search match), in chars.
fn separator(row: &str) -> Option<usize> {
    row.chars().position(|c| matches!(c, '│' | '┃' | '»'))
}

/// The display column of the separator of the first row holding `needle`.
#[track_caller]
pub fn separator_column(rows: &[String], needle: &str) -> usize {
    let row = rows
        .iter()
        .find(|r| r.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in {rows:#?}"));
    separator(row).unwrap_or_else(|| panic!("no separator in {row:?}"))
}

/// One entry of the message pane as read back: what stands left of the separator on its
/// first row (time and prefix), and its text with its rows joined by one space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// Time and prefix, trimmed.
    pub head: String,
    /// The prefix alone: the last word of the head (`alice`, `--`, `*bob*`).
    pub prefix: String,
    /// The text of every row of the entry, each trimmed, joined by one space.
    pub text: String,
    /// The rows' texts as they are (after the separator and its one space).
    pub rows: Vec<String>,
}

/// The message pane's entries, top to bottom (rows without a separator, the status and
/// input lines, are not part of it).
pub fn entries(rows: &[String]) -> Vec<Shown> {
    let mut out: Vec<Shown> = Vec::new();
    for row in rows {
        let Some(at) = separator(row) else { continue };
        let head: String = row.chars().take(at).collect();
        let body: String = row.chars().skip(at + 1).collect();
        let body = body
            .strip_prefix(' ')
            .unwrap_or(&body)
            .trim_end()
            .to_owned();
        let head = head.trim().to_owned();
        match out.last_mut() {
            Some(last) if head.is_empty() => {
                if !body.trim().is_empty() {
                    last.text = format!("{} {}", last.text, body.trim());
                }
                last.rows.push(body);
            }
            _ => out.push(Shown {
                prefix: head.rsplit(' ').next().unwrap_or("").to_owned(),
                head,
                text: body.trim().to_owned(),
                rows: vec![body],
            }),
        }
    }
    out
}

/// `text` without any whitespace: at 20 columns a word longer than the pane's text area (5
/// cells) is cut between characters, so texts read back are compared without spaces.
pub fn flat(text: &str) -> String {
    text.split_whitespace().collect()
}

/// The entries whose text holds `needle` (compared [`flat`]).
pub fn entries_with(rows: &[String], needle: &str) -> Vec<Shown> {
    let needle = flat(needle);
    entries(rows)
        .into_iter()
        .filter(|e| flat(&e.text).contains(&needle))
        .collect()
}

/// Waits until an entry of the pane holds `needle` (compared [`flat`]); returns the rows.
#[track_caller]
pub fn wait_entry(screen: &Screen, needle: &str) -> Vec<String> {
    screen.wait_for(&format!("an entry holding {needle:?}"), |rows| {
        !entries_with(rows, needle).is_empty()
    })
}

/// The status line: the row above the input line's first row, which starts with `prompt`
/// (`> `, `[bob] `).
#[track_caller]
pub fn status(rows: &[String], prompt: &str) -> String {
    // The emulator trims a row's trailing spaces: an empty input line is `>`.
    let prompt = prompt.trim_end();
    let input = rows
        .iter()
        .rposition(|r| r.starts_with(prompt))
        .unwrap_or_else(|| panic!("no input line starting {prompt:?} in {rows:#?}"));
    rows[input.saturating_sub(1)].clone()
}
