//! Drawing one frame of the full-screen interface with ratatui: the message pane (rows from
//! `App::visible_rows`, laid out by `layout.rs`), the status line, and the input area, which
//! grows to show a pasted block of several lines. Decides where things go on the screen and
//! nothing else: no state changes but the pane size and the scroll clamp, no input, no socket.

use std::time::Instant;

use chat_common::sanitize::is_forbidden;
use ratatui::layout::{Constraint, Layout, Position};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

use super::app::App;

/// The input area shows at most this many rows; a longer draft scrolls to the cursor.
pub const MAX_INPUT_ROWS: usize = 6;

/// What is shown before each further line of a multi-line draft.
const CONTINUATION: &str = "… ";

/// Lays out the prompt and the draft into rows of at most `width` columns, and finds the
/// cursor: its row and column.
pub fn input_rows(
    prompt: &str,
    text: &str,
    cursor: usize,
    width: usize,
) -> (Vec<String>, (usize, usize)) {
    let width = width.max(4);
    let mut rows = vec![prompt.to_owned()];
    let mut used = prompt.width();
    let mut at = (0, used);
    for (index, g) in text.grapheme_indices(true) {
        if g == "\n" {
            if index == cursor {
                at = (rows.len() - 1, used);
            }
            rows.push(CONTINUATION.to_owned());
            used = CONTINUATION.width();
            continue;
        }
        // A pasted control character is never written to the terminal: it shows as one
        // replacement character (what is sent is sanitized separately, in `compose.rs`).
        let g = if g.chars().any(is_forbidden) {
            "�"
        } else {
            g
        };
        let w = g.width();
        // The row break comes before the cursor is placed: a cursor on the first character
        // of a row (after a wrap, or before a wide character that did not fit at the end of
        // the row above) is on that row, not past the end of the one above.
        if used + w > width {
            rows.push(String::new());
            used = 0;
        }
        if index == cursor {
            at = (rows.len() - 1, used);
        }
        if let Some(row) = rows.last_mut() {
            row.push_str(g);
        }
        used += w;
    }
    if cursor >= text.len() {
        if used >= width {
            rows.push(String::new());
            used = 0;
        }
        at = (rows.len() - 1, used);
    }
    (rows, at)
}

/// Draws the frame.
pub fn draw(frame: &mut Frame<'_>, app: &mut App, now: Instant) {
    let area = frame.area();
    let width = usize::from(area.width);
    let (rows, cursor) = input_rows(&app.prompt(), app.editor.text(), app.editor.cursor(), width);
    let input_height = rows.len().clamp(1, MAX_INPUT_ROWS);
    let [pane, status, input] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(input_height as u16),
    ])
    .areas(area);

    let lines = app.visible_rows(usize::from(pane.width), usize::from(pane.height));
    // Bottom-aligned: a short history sits right above the status line, as chat does.
    let pad = usize::from(pane.height).saturating_sub(lines.len());
    let mut shown: Vec<Line<'static>> = vec![Line::raw(""); pad];
    shown.extend(lines);
    frame.render_widget(Paragraph::new(shown), pane);

    let status_style = if app.look().styles {
        Style::default()
            .fg(Color::White)
            .bg(Color::Blue)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::default()
    };
    frame.render_widget(
        Paragraph::new(Line::styled(app.status_for(now, width), status_style)),
        status,
    );

    let first = cursor.0.saturating_sub(input_height - 1);
    let visible: Vec<Line<'static>> = rows
        .into_iter()
        .skip(first)
        .take(input_height)
        .map(Line::raw)
        .collect();
    frame.render_widget(Paragraph::new(visible), input);
    let x = input.x.saturating_add(cursor.1 as u16);
    let y = input.y.saturating_add((cursor.0 - first) as u16);
    frame.set_cursor_position(Position::new(
        x.min(area.right().saturating_sub(1)),
        y.min(area.bottom().saturating_sub(1)),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_wraps_and_finds_the_cursor() {
        let (rows, at) = input_rows("> ", "hello", 5, 80);
        assert_eq!(rows, ["> hello"]);
        assert_eq!(at, (0, 7));
        let (rows, at) = input_rows("> ", "abcdefgh", 3, 6);
        assert_eq!(rows, ["> abcd", "efgh"]);
        assert_eq!(at, (0, 5));
        let (rows, at) = input_rows("> ", "one\ntwo", 7, 80);
        assert_eq!(rows, ["> one", "… two"]);
        assert_eq!(at, (1, 5));
        let (rows, at) = input_rows("> ", "abcd", 4, 6);
        assert_eq!(rows, ["> abcd", ""]);
        assert_eq!(at, (1, 0));
    }

    #[test]
    fn the_cursor_is_on_the_right_cell_at_a_wrap() {
        // Issue 25: 98 b and xyz at 100 columns, Left three times: before the x, which is
        // the first cell of the second row.
        let text = format!("{}xyz", "b".repeat(98));
        let (rows, at) = input_rows("> ", &text, 98, 100);
        assert_eq!(rows, [format!("> {}", "b".repeat(98)), "xyz".to_owned()]);
        assert_eq!(at, (1, 0));
        let (_, at) = input_rows("> ", &text, 97, 100);
        assert_eq!(at, (0, 99));
    }

    #[test]
    fn the_cursor_before_a_wide_character_that_did_not_fit_is_on_its_row() {
        // A wide character does not fit in the last cell of a row: it starts the next row,
        // and so does the cursor placed before it.
        let text = format!("{}日本", "a".repeat(7));
        let (rows, at) = input_rows("> ", &text, 7, 10);
        assert_eq!(rows, ["> aaaaaaa", "日本"]);
        assert_eq!(at, (1, 0));
        let (_, at) = input_rows("> ", &text, 10, 10);
        assert_eq!(at, (1, 2));
        let (_, at) = input_rows("> ", &text, text.len(), 10);
        assert_eq!(at, (1, 4));
    }

    #[test]
    fn pasted_control_characters_are_never_drawn() {
        let (rows, _) = input_rows("> ", "a\x1b[2J\u{202e}b\tc", 0, 80);
        assert_eq!(rows, ["> a�[2J�b�c"]);
    }
}
