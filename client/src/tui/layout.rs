//! How a stored message becomes screen rows: the client decides every row. Each message's first
//! row is `14:02`, a prefix column (the sender, or `*`, `--`, `!!`) that only the client writes,
//! and a separator `│`; its text wraps at word boundaries into continuation rows whose time and
//! prefix columns are blank. Whatever a peer sends (spaces to pad a line to the terminal's width,
//! `<alice>`, wide or zero-width characters) lands in the text column, so no peer can start a
//! row that looks like someone else's message. Pure: an [`Entry`] and a width in, rows out;
//! nothing here knows the terminal, so a resize is just a new call with the new width.

use chat_common::markup::{self, Style as Markup};
use chat_common::protocol::Color as ChatColor;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

use crate::core::store::{Entry, Kind};
use crate::tui::name_column::{Frame, NameColumn};

/// Width of the time column, `14:02`.
pub const TIME_WIDTH: usize = 5;
/// Narrowest and widest prefix column.
pub const MIN_PREFIX: usize = 6;
/// Widest prefix column: longer names are cut with `…`.
pub const MAX_PREFIX: usize = 16;
/// What separates the prefix column from the text: `" │ "`, `" ┃ "` on a highlighted line.
const SEPARATOR: &str = " │ ";
const SEPARATOR_HIGHLIGHT: &str = " ┃ ";
/// Width of [`SEPARATOR`].
const SEPARATOR_WIDTH: usize = 3;

/// The colors a nick can get: stable per name (see [`nick_color`]).
const NICK_COLORS: [Color; 12] = [
    Color::Red,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::LightRed,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightCyan,
];

/// The color of a nick: the same name (in any case) gets the same color in every run.
pub fn nick_color(name: &str) -> Color {
    // FNV-1a: stable across runs and platforms, unlike the std hasher.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte.to_ascii_lowercase());
        hash = hash.wrapping_mul(0x0100_0193);
    }
    NICK_COLORS[hash as usize % NICK_COLORS.len()]
}

/// Maps a chat color to the terminal's.
pub fn term_color(color: ChatColor) -> Color {
    match color {
        ChatColor::Black => Color::Black,
        ChatColor::Red => Color::Red,
        ChatColor::Green => Color::Green,
        ChatColor::Yellow => Color::Yellow,
        ChatColor::Blue => Color::Blue,
        ChatColor::Magenta => Color::Magenta,
        ChatColor::Cyan => Color::Cyan,
        ChatColor::White => Color::White,
    }
}

/// The width of the prefix column for a pane `width` wide, given the widest prefix seen.
pub fn prefix_width(width: usize, widest: usize) -> usize {
    let cap = (width / 4).clamp(MIN_PREFIX, MAX_PREFIX);
    widest.clamp(MIN_PREFIX, cap)
}

/// Below this many columns of text the time column is left out, to leave room for the text.
pub const MIN_TEXT: usize = 10;

/// Where the text column starts, with the default time column.
pub fn text_column(prefix: usize) -> usize {
    text_column_at(TIME_WIDTH, prefix)
}

/// Where the text column starts with a time column `time` wide.
fn text_column_at(time: usize, prefix: usize) -> usize {
    time + 1 + prefix + SEPARATOR_WIDTH
}

/// Whether a pane `width` wide shows the time column.
fn shows_time(width: usize, time: usize, prefix: usize) -> bool {
    width >= text_column_at(time, prefix) + MIN_TEXT
}

/// The prefix column's words for `entry`: only the client ever writes them.
pub fn prefix_text(entry: &Entry) -> String {
    match &entry.kind {
        Kind::Msg { from } => from.clone(),
        Kind::Private { from, to } => {
            if entry.own {
                format!("→*{to}*")
            } else {
                format!("*{from}*")
            }
        }
        Kind::Act { .. } => "*".to_owned(),
        Kind::Event | Kind::Rename | Kind::Notice | Kind::Separator => "--".to_owned(),
        Kind::Error => "!!".to_owned(),
        Kind::Unparsed => "??".to_owned(),
    }
}

/// One character cell group: a grapheme, its width, its style.
#[derive(Debug, Clone)]
struct Cell {
    text: String,
    width: usize,
    style: Style,
    space: bool,
}

/// Styles on (colors, bold, ...) or off (`NO_COLOR`, `--color never`): then every row is plain
/// and markup stays visible as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    /// Whether any style is used.
    pub styles: bool,
    /// The time column's width in cells (the time format's widest, `clock.rs`).
    pub time_width: usize,
    /// The interface colors (`[colors]` of config.toml).
    pub palette: Palette,
}

/// The colors of the parts of the pane, from `[colors]` of the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    /// The time column.
    pub time: Color,
    /// The prefix of a mention or a private (besides its reversed video); `Reset`: none.
    pub highlight: Color,
    /// Joins, leaves, renames, separators and day lines.
    pub events: Color,
    /// Errors and `✗ not delivered`.
    pub errors: Color,
    /// A stable color per name.
    pub nicks: bool,
}

impl Palette {
    /// The colors before any configuration.
    pub const DEFAULT: Palette = Palette {
        time: Color::DarkGray,
        highlight: Color::Reset,
        events: Color::DarkGray,
        errors: Color::Red,
        nicks: true,
    };

    /// The palette `[colors]` asks for.
    pub fn from_config(colors: &crate::config_file::Colors) -> Palette {
        let pick = |c: crate::config_file::UiColor| match c {
            crate::config_file::UiColor::Default => Color::Reset,
            crate::config_file::UiColor::Indexed(i) => [
                Color::Black,
                Color::Red,
                Color::Green,
                Color::Yellow,
                Color::Blue,
                Color::Magenta,
                Color::Cyan,
                Color::Gray,
                Color::DarkGray,
                Color::LightRed,
                Color::LightGreen,
                Color::LightYellow,
                Color::LightBlue,
                Color::LightMagenta,
                Color::LightCyan,
                Color::White,
            ]
            .get(usize::from(i))
            .copied()
            .unwrap_or(Color::Reset),
        };
        Palette {
            time: pick(colors.time),
            highlight: pick(colors.highlight),
            events: pick(colors.events),
            errors: pick(colors.errors),
            nicks: colors.nicks,
        }
    }

    /// A name's color, or none when names are not colored.
    fn nick(self, name: &str) -> Style {
        if self.nicks {
            Style::default().fg(nick_color(name))
        } else {
            Style::default()
        }
    }
}

impl Look {
    /// Styles on or off, with the default `%H:%M` time column and colors.
    pub const fn new(styles: bool) -> Look {
        Look {
            styles,
            time_width: TIME_WIDTH,
            palette: Palette::DEFAULT,
        }
    }
}

impl Look {
    fn pick(self, style: Style) -> Style {
        if self.styles {
            style
        } else {
            Style::default()
        }
    }
}

/// The terminal style of a markup span over `base`.
fn markup_style(base: Style, m: Markup) -> Style {
    let mut style = base;
    if m.bold {
        style = style.add_modifier(Modifier::BOLD);
    }
    if m.italic {
        style = style.add_modifier(Modifier::ITALIC);
    }
    if m.strike {
        style = style.add_modifier(Modifier::CROSSED_OUT);
    }
    if m.code {
        style = style.fg(Color::White).bg(Color::DarkGray);
    }
    style
}

/// Splits `text` into cells in `style`; every whitespace character becomes one plain space, so
/// no wide or odd space can hide from the wrapping.
fn push_cells(cells: &mut Vec<Cell>, text: &str, style: Style) {
    for g in text.graphemes(true) {
        if g.chars().all(char::is_whitespace) {
            cells.push(Cell {
                text: " ".to_owned(),
                width: 1,
                style,
                space: true,
            });
        } else {
            cells.push(Cell {
                text: g.to_owned(),
                width: g.width(),
                style,
                space: false,
            });
        }
    }
}

/// The text cells of an entry, styled.
fn text_cells(entry: &Entry, look: Look) -> Vec<Cell> {
    let mut base = Style::default();
    if let Some(c) = entry.color {
        base = base.fg(term_color(c));
    }
    match entry.kind {
        Kind::Event | Kind::Rename | Kind::Unparsed => base = base.fg(look.palette.events),
        Kind::Error => base = base.fg(look.palette.errors),
        Kind::Separator => base = base.fg(look.palette.events),
        _ => {}
    }
    if entry.history {
        base = base.add_modifier(Modifier::DIM);
    }
    let mut cells = Vec::new();
    if let Kind::Act { from } = &entry.kind {
        let who = if entry.own {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            look.palette.nick(from)
        };
        push_cells(&mut cells, from, look.pick(who.patch(dim(entry))));
        push_cells(&mut cells, " ", Style::default());
    }
    if entry.has_markup() && look.styles {
        for span in markup::parse(&entry.text) {
            push_cells(&mut cells, span.text, markup_style(base, span.style));
        }
    } else if entry.has_markup() {
        push_cells(&mut cells, &markup::unstyled(&entry.text), Style::default());
    } else {
        push_cells(&mut cells, &entry.text, look.pick(base));
    }
    cells
}

fn dim(entry: &Entry) -> Style {
    if entry.history {
        Style::default().add_modifier(Modifier::DIM)
    } else {
        Style::default()
    }
}

/// Wraps cells into rows of at most `width` columns, breaking at spaces; a space run at a break
/// is dropped, and a word longer than a row is cut. Returns at least one row.
fn wrap(cells: Vec<Cell>, width: usize) -> Vec<Vec<Cell>> {
    let width = width.max(1);
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    let mut row: Vec<Cell> = Vec::new();
    let mut used = 0;
    let mut cells = cells.into_iter().peekable();
    while let Some(first) = cells.next() {
        let space = first.space;
        let mut token = vec![first];
        while let Some(next) = cells.next_if(|c| c.space == space) {
            token.push(next);
        }
        let token_width: usize = token.iter().map(|c| c.width).sum();
        if space {
            if row.is_empty() && !rows.is_empty() {
                continue;
            }
            if used + token_width <= width {
                used += token_width;
                row.extend(token);
            } else {
                rows.push(std::mem::take(&mut row));
                used = 0;
            }
            continue;
        }
        if used + token_width <= width {
            used += token_width;
            row.extend(token);
            continue;
        }
        if token_width <= width {
            rows.push(std::mem::take(&mut row));
            used = token_width;
            row.extend(token);
            continue;
        }
        for cell in token {
            if used + cell.width > width && !row.is_empty() {
                rows.push(std::mem::take(&mut row));
                used = 0;
            }
            used += cell.width;
            row.push(cell);
        }
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(row);
    }
    for row in &mut rows {
        while row.last().is_some_and(|c| c.space) {
            row.pop();
        }
    }
    rows
}

/// Cuts `text` to `width` columns, with `…` when something was cut.
fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for g in text.graphemes(true) {
        if used + g.width() + 1 > width {
            break;
        }
        used += g.width();
        out.push_str(g);
    }
    out.push('…');
    out
}

/// The prefix column's words for `entry` with names as `names` shows them: whole, or in a
/// short form no other known name shares (`name_column.rs`).
pub fn prefix_shown(entry: &Entry, names: &NameColumn) -> String {
    match &entry.kind {
        Kind::Msg { from } => names.show(from, Frame::Plain),
        Kind::Private { to, .. } if entry.own => names.show(to, Frame::PrivateTo),
        Kind::Private { from, .. } => names.show(from, Frame::Private),
        _ => prefix_text(entry),
    }
}

/// Lays out `entry` for a pane `width` columns wide with a prefix column `prefix` wide
/// (a name longer than the column is cut with `…`: for tests and transcripts; the
/// interface uses [`layout_named`], whose short forms are unique).
pub fn layout(entry: &Entry, width: usize, prefix: usize, look: Look) -> Vec<Line<'static>> {
    layout_with(entry, width, prefix, fit(&prefix_text(entry), prefix), look)
}

/// Lays out `entry` for a pane `width` columns wide with the name column `names`.
pub fn layout_named(
    entry: &Entry,
    width: usize,
    names: &NameColumn,
    look: Look,
) -> Vec<Line<'static>> {
    layout_with(
        entry,
        width,
        names.width(),
        prefix_shown(entry, names),
        look,
    )
}

fn layout_with(
    entry: &Entry,
    width: usize,
    prefix: usize,
    shown_prefix: String,
    look: Look,
) -> Vec<Line<'static>> {
    let time = shows_time(width, look.time_width, prefix);
    let column = if time {
        text_column_at(look.time_width, prefix)
    } else {
        prefix + SEPARATOR_WIDTH
    };
    let text_width = width.saturating_sub(column).max(1);
    let mut rows = wrap(text_cells(entry, look), text_width);
    if let Some(why) = &entry.failed {
        let mut cells = Vec::new();
        push_cells(
            &mut cells,
            &format!("✗ not delivered: {why}"),
            look.pick(Style::default().fg(look.palette.errors)),
        );
        rows.extend(wrap(cells, text_width));
    }
    let separator = if entry.highlight {
        SEPARATOR_HIGHLIGHT
    } else {
        SEPARATOR
    };
    let time_style = look.pick(Style::default().fg(look.palette.time).patch(dim(entry)));
    let prefix_style = look.pick(prefix_style(entry, look.palette));
    let pad = prefix.saturating_sub(shown_prefix.width());
    let mut lines = Vec::with_capacity(rows.len());
    for (index, row) in rows.into_iter().enumerate() {
        let mut spans = Vec::new();
        if index == 0 {
            if time {
                spans.push(Span::styled(
                    format!("{:<w$} ", entry.time, w = look.time_width),
                    time_style,
                ));
            }
            spans.push(Span::raw(" ".repeat(pad)));
            spans.push(Span::styled(shown_prefix.clone(), prefix_style));
        } else {
            spans.push(Span::raw(" ".repeat(column - SEPARATOR_WIDTH)));
        }
        spans.push(Span::styled(separator, time_style));
        let mut run = String::new();
        let mut run_style = Style::default();
        for cell in row {
            if cell.style != run_style && !run.is_empty() {
                spans.push(Span::styled(std::mem::take(&mut run), run_style));
            }
            run_style = cell.style;
            run.push_str(&cell.text);
        }
        if !run.is_empty() {
            spans.push(Span::styled(run, run_style));
        }
        lines.push(Line::from(spans));
    }
    lines
}

/// The style of the prefix column.
fn prefix_style(entry: &Entry, palette: Palette) -> Style {
    let mut style = match &entry.kind {
        Kind::Msg { from } if !entry.own => palette.nick(from),
        Kind::Msg { .. } | Kind::Act { .. } => Style::default().add_modifier(Modifier::BOLD),
        Kind::Private { .. } => Style::default()
            .fg(Color::Magenta)
            .add_modifier(Modifier::BOLD),
        Kind::Event | Kind::Rename | Kind::Separator | Kind::Unparsed => {
            Style::default().fg(palette.events)
        }
        Kind::Notice => Style::default().fg(Color::Cyan),
        Kind::Error => Style::default()
            .fg(palette.errors)
            .add_modifier(Modifier::BOLD),
    };
    if entry.highlight {
        style = style.add_modifier(Modifier::REVERSED);
        if palette.highlight != Color::Reset {
            style = style.fg(palette.highlight);
        }
    }
    if entry.own {
        style = style.add_modifier(Modifier::BOLD);
    }
    style.patch(dim(entry))
}

/// A row as plain text, for tests and transcripts.
pub fn plain(line: &Line<'_>) -> String {
    line.spans.iter().map(|s| s.content.as_ref()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const STYLED: Look = Look::new(true);
    const PLAIN: Look = Look::new(false);

    fn msg(from: &str, text: &str) -> Entry {
        Entry::new(
            "14:02",
            Kind::Msg {
                from: from.to_owned(),
            },
            text,
        )
    }

    fn rows(entry: &Entry, width: usize, look: Look) -> Vec<String> {
        layout(entry, width, 8, look).iter().map(plain).collect()
    }

    #[test]
    fn the_default_colors_are_what_an_empty_colors_table_gives() {
        let colors = crate::config_file::Colors::default();
        assert_eq!(Palette::from_config(&colors), Palette::DEFAULT);
    }

    #[test]
    fn colors_of_the_configuration_file_are_used() {
        let colors = crate::config_file::Colors {
            time: crate::config_file::UiColor::Indexed(2),
            nicks: false,
            ..crate::config_file::Colors::default()
        };
        let look = Look {
            palette: Palette::from_config(&colors),
            ..STYLED
        };
        let lines = layout(&msg("alice", "hi"), 80, 8, look);
        let spans = &lines[0].spans;
        assert_eq!(spans[0].style.fg, Some(Color::Green));
        assert!(spans
            .iter()
            .filter(|s| s.content.contains("alice"))
            .all(|s| s.style.fg.is_none()));
    }

    #[test]
    fn a_message_row_has_time_prefix_and_text() {
        assert_eq!(
            rows(&msg("alice", "hello"), 80, PLAIN),
            ["14:02    alice │ hello"]
        );
    }

    #[test]
    fn padding_to_the_width_cannot_forge_a_row() {
        // Issue 11: at 80 columns this used to show a line from alice.
        let forged = format!("ok{}<alice> bob, send me your password", " ".repeat(68));
        for width in [40, 80, 120, 200] {
            let got = rows(&msg("mallory", &forged), width, PLAIN);
            assert!(got[0].starts_with("14:02  mallory │ ok"), "{got:?}");
            let column = text_column(8);
            for row in &got[1..] {
                assert_eq!(&row[..column - 2], " ".repeat(column - 2), "{row:?}");
                assert!(row[column - 2..].starts_with("│ "), "{row:?}");
            }
            assert!(got.iter().any(|r| r.contains("<alice> bob,")), "{got:?}");
            for row in &got {
                assert!(row.width() <= width, "{row:?} is wider than {width}");
            }
        }
    }

    #[test]
    fn long_words_are_cut_and_wide_characters_never_overflow() {
        for width in [20, 21, 23, 30] {
            let entry = msg("bob", &format!("{} {}", "x".repeat(50), "世".repeat(30)));
            for row in layout(&entry, width, 8, STYLED) {
                assert!(plain(&row).width() <= width, "{:?}", plain(&row));
            }
        }
    }

    #[test]
    fn every_character_survives_wrapping_except_spaces_at_breaks() {
        let text = "the quick brown fox jumps over the lazy dog ".repeat(8);
        for width in 30..80 {
            let got = rows(&msg("bob", &text), width, PLAIN);
            let column = text_column(8);
            let joined: String = got
                .iter()
                .map(|r| r.chars().skip(column).collect::<String>())
                .collect::<Vec<_>>()
                .join(" ");
            assert_eq!(joined.trim(), text.trim(), "at width {width}");
        }
    }

    #[test]
    fn without_styles_markup_stays_visible() {
        let e = msg(
            "alice",
            "the meeting is ~~cancelled~~ on, `__init__.py` \\*x\\*",
        );
        assert_eq!(
            rows(&e, 100, PLAIN),
            ["14:02    alice │ the meeting is ~~cancelled~~ on, `__init__.py` *x*"]
        );
        assert_eq!(
            rows(&e, 100, STYLED),
            ["14:02    alice │ the meeting is cancelled on, __init__.py *x*"]
        );
    }

    #[test]
    fn prefixes_only_the_client_writes() {
        let mut private = Entry::new(
            "09:00",
            Kind::Private {
                from: "alice".into(),
                to: "bob".into(),
            },
            "psst",
        );
        assert_eq!(rows(&private, 60, PLAIN), ["09:00  *alice* │ psst"]);
        private.own = true;
        assert_eq!(rows(&private, 60, PLAIN), ["09:00   →*bob* │ psst"]);
        let act = Entry::new(
            "09:00",
            Kind::Act {
                from: "alice".into(),
            },
            "waves",
        );
        assert_eq!(rows(&act, 60, PLAIN), ["09:00        * │ alice waves"]);
        let mut failed = private.clone();
        failed.failed = Some("nobody named bob is in the room".into());
        assert_eq!(
            rows(&failed, 80, PLAIN),
            [
                "09:00   →*bob* │ psst",
                "               │ ✗ not delivered: nobody named bob is in the room"
            ]
        );
    }

    #[test]
    fn narrow_panes_leave_the_time_out() {
        assert_eq!(
            rows(&msg("bob", "hello there"), 24, PLAIN),
            ["     bob │ hello there"]
        );
        for width in 1..30 {
            for row in layout(&msg("bob", "some words 世界"), width, 8, PLAIN) {
                assert!(plain(&row).width() <= width.max(13), "{:?}", plain(&row));
            }
        }
    }

    #[test]
    fn long_names_are_cut_in_the_prefix_column() {
        let got = rows(&msg("a_very_long_name_indeed", "hi"), 80, PLAIN);
        assert_eq!(got, ["14:02 a_very_… │ hi"]);
    }

    #[test]
    fn nick_colors_are_stable_and_ignore_case() {
        assert_eq!(nick_color("alice"), nick_color("ALICE"));
        assert_eq!(nick_color("alice"), nick_color("alice"));
        let distinct: std::collections::HashSet<_> = ["alice", "bob", "carol", "dave", "eve"]
            .iter()
            .map(|n| nick_color(n))
            .collect();
        assert!(distinct.len() >= 3);
    }

    #[test]
    fn prefix_width_adapts() {
        assert_eq!(prefix_width(80, 3), MIN_PREFIX);
        assert_eq!(prefix_width(80, 10), 10);
        assert_eq!(prefix_width(200, 40), MAX_PREFIX);
        assert_eq!(prefix_width(30, 20), 7);
        assert_eq!(prefix_width(20, 20), MIN_PREFIX);
    }
}
