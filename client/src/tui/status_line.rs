//! Fitting the status line to the terminal's width by priority: each part (a waiting paste's
//! question, the connection state with its reason, the unread count, your name, the online
//! count, the server) comes in a long and shorter wordings, and a narrow terminal drops the
//! least important parts first and shortens before it drops, so the part that needs the user
//! (the paste prompt, why reconnection fails) is the last to go and is never cut while a less
//! important part is shown. Parts keep their display order whatever their priority. Only as a
//! last resort, when the most important part's shortest wording alone is too wide, is it cut
//! with `…`. Pure: parts and a width in, a line out.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// What separates two parts.
pub const SEPARATOR: &str = " · ";

/// One part of the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Lower is more important: kept first, shortened last.
    pub priority: u8,
    /// Its wordings, longest (preferred) first; none empty.
    pub wordings: Vec<String>,
}

impl Part {
    /// A part with one or more wordings, longest first.
    pub fn new(priority: u8, wordings: impl IntoIterator<Item = impl Into<String>>) -> Part {
        Part {
            priority,
            wordings: wordings.into_iter().map(Into::into).collect(),
        }
    }
}

/// The status line for `parts` (in display order) in `width` cells.
pub fn fit(parts: &[Part], width: usize) -> String {
    let mut order: Vec<usize> = (0..parts.len())
        .filter(|&i| !parts[i].wordings.is_empty())
        .collect();
    order.sort_by_key(|&i| (parts[i].priority, i));
    // Which wording each part uses (None: dropped). First take the parts in priority order
    // at their shortest, while they fit.
    let mut pick: Vec<Option<usize>> = vec![None; parts.len()];
    let total = |pick: &[Option<usize>]| -> usize {
        let shown: Vec<usize> = pick
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.map(|w| parts[i].wordings[w].width()))
            .collect();
        shown.iter().sum::<usize>() + SEPARATOR.width() * shown.len().saturating_sub(1)
    };
    for &i in &order {
        pick[i] = Some(parts[i].wordings.len() - 1);
        if total(&pick) > width {
            pick[i] = None;
            if order.first() == Some(&i) {
                // Even the most important part's shortest wording is too wide: cut it.
                return cut(&parts[i].wordings[parts[i].wordings.len() - 1], width);
            }
            break;
        }
    }
    // Then give each part, in priority order, the longest wording that still fits.
    for &i in &order {
        let Some(current) = pick[i] else { break };
        for w in 0..current {
            let before = pick[i];
            pick[i] = Some(w);
            if total(&pick) <= width {
                break;
            }
            pick[i] = before;
        }
    }
    pick.iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|w| parts[i].wordings[w].as_str()))
        .collect::<Vec<_>>()
        .join(SEPARATOR)
}

/// Whether `parts` fit `width` without cutting anything: the most important part's shortest
/// wording fits (the caller then knows that brackets around the line cost nothing).
pub fn fits(parts: &[Part], width: usize) -> bool {
    parts
        .iter()
        .filter(|p| !p.wordings.is_empty())
        .min_by_key(|p| p.priority)
        .and_then(|p| p.wordings.last())
        .is_none_or(|w| w.width() <= width)
}

/// A reason for a lost or failed connection in a word or two, for the narrowest status line
/// (`the server closed the connection` -> `closed`, `... Connection refused (os error 111)`
/// -> `refused`); the reason's last words when it is none of the usual ones.
pub fn brief(why: &str) -> &str {
    let lower = why.to_ascii_lowercase();
    for (word, brief) in [
        ("refused", "refused"),
        ("reset", "reset"),
        ("timed out", "timed out"),
        ("unreachable", "unreachable"),
        ("closed", "closed"),
        ("kick", "kicked"),
        ("full", "server full"),
        ("resolve", "no such host"),
        ("lookup", "no such host"),
        ("certificate", "certificate"),
    ] {
        if lower.contains(word) {
            return brief;
        }
    }
    why.rsplit(": ").next().unwrap_or(why)
}

/// `text` cut to `width` cells with `…` at the end (never splitting a character).
pub fn cut(text: &str, width: usize) -> String {
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
    if width > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reconnecting() -> Vec<Part> {
        vec![
            Part::new(5, ["127.0.0.1:56711"]),
            Part::new(3, ["alice"]),
            Part::new(4, ["2 online"]),
            Part::new(
                1,
                [
                    "reconnecting in 4 s (try 3) · /reconnect · Ctrl-C gives up · cannot connect: connection refused",
                    "reconnecting in 4 s · cannot connect: connection refused",
                    "retry in 4 s: connection refused",
                ],
            ),
        ]
    }

    #[test]
    fn wide_terminals_show_everything_at_length() {
        let line = fit(&reconnecting(), 200);
        assert_eq!(
            line,
            "127.0.0.1:56711 · alice · 2 online · reconnecting in 4 s (try 3) · /reconnect · Ctrl-C gives up · cannot connect: connection refused"
        );
    }

    #[test]
    fn the_reason_survives_at_100_and_40_columns() {
        for width in [100, 80, 60, 40] {
            let line = fit(&reconnecting(), width);
            assert!(line.width() <= width, "{width}: {line}");
            assert!(line.contains("connection refused"), "{width}: {line}");
            assert!(!line.contains('…'), "{width}: {line}");
        }
        // At 40 the less important parts went first.
        assert_eq!(
            fit(&reconnecting(), 40),
            "alice · retry in 4 s: connection refused"
        );
        assert_eq!(fit(&reconnecting(), 39), "retry in 4 s: connection refused");
        let line = fit(&reconnecting(), 100);
        assert!(
            line.contains("alice") && line.contains("cannot connect"),
            "{line}"
        );
    }

    #[test]
    fn the_most_important_part_is_cut_only_as_a_last_resort() {
        let line = fit(&reconnecting(), 20);
        assert_eq!(line.width(), 20);
        assert!(
            line.starts_with("retry in 4 s") && line.ends_with('…'),
            "{line}"
        );
        assert_eq!(fit(&reconnecting(), 0), "");
    }

    #[test]
    fn display_order_is_kept() {
        let parts = vec![
            Part::new(2, ["a"]),
            Part::new(1, ["b"]),
            Part::new(3, ["c"]),
        ];
        assert_eq!(fit(&parts, 80), "a · b · c");
        assert_eq!(fit(&parts, 5), "a · b");
        assert_eq!(fit(&parts, 3), "b");
    }

    #[test]
    fn a_reason_in_brief_and_whether_brackets_cost_a_cut() {
        assert_eq!(brief("the server closed the connection"), "closed");
        assert_eq!(
            brief("cannot connect to 127.0.0.1:5: Connection refused (os error 111)"),
            "refused"
        );
        assert_eq!(brief("odd: something else"), "something else");
        assert!(fits(&reconnecting(), 32));
        assert!(!fits(&reconnecting(), 31));
    }

    #[test]
    fn cutting_respects_wide_characters() {
        assert_eq!(cut("日本語のテキスト", 5), "日本…");
        assert_eq!(cut("short", 10), "short");
    }
}
