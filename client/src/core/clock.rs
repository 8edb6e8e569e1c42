//! Times on screen and in logs: the user's time format for the time column (strftime, checked
//! once: [`TimeFormat`]), its width in cells (the widest any date can make it, so the column
//! never jitters), and the day-change lines weechat and irssi draw between messages of
//! different days, which also date old history ([`DayLines`]). Pure: every time is an argument;
//! nothing here reads the clock.

use std::fmt;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use unicode_width::UnicodeWidthStr;

/// The default time column: hours and minutes.
pub const DEFAULT_TIME: &str = "%H:%M";
/// The default date of day-change lines.
pub const DEFAULT_DATE: &str = "%a %d %b %Y";
/// The longest format accepted, in bytes.
pub const MAX_FORMAT: usize = 64;
/// The widest a formatted time may be, in cells (a format wider than this is refused, so the
/// time column always leaves room for text).
pub const MAX_TIME_WIDTH: usize = 24;

/// A checked strftime format (chrono's syntax, `%H:%M:%S`, `%Y-%m-%d %H:%M`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFormat {
    format: String,
    width: usize,
}

impl TimeFormat {
    /// Checks `raw`: known specifiers only, no control characters, at most [`MAX_FORMAT`] bytes
    /// and [`MAX_TIME_WIDTH`] cells once formatted.
    pub fn parse(raw: &str) -> Result<TimeFormat, String> {
        if raw.is_empty() {
            return Err("empty format".into());
        }
        if raw.len() > MAX_FORMAT {
            return Err(format!("longer than {MAX_FORMAT} bytes"));
        }
        if raw.chars().any(char::is_control) {
            return Err("control characters are not allowed".into());
        }
        if StrftimeItems::new(raw).any(|i| matches!(i, Item::Error)) {
            return Err(format!(
                "{raw:?} has an unknown or unfinished % specifier (see chrono's strftime: %H:%M:%S, %Y-%m-%d ...)"
            ));
        }
        // Time-zone names and the like could format to anything; only the specifiers of a
        // local date and time are allowed.
        if raw.contains("%Z") || raw.contains("%+") {
            return Err("%Z and %+ are not supported; use %z or %:z for the offset".into());
        }
        let width = widest(raw);
        if width > MAX_TIME_WIDTH {
            return Err(format!(
                "formats {width} cells wide; the most is {MAX_TIME_WIDTH}"
            ));
        }
        Ok(TimeFormat {
            format: raw.to_owned(),
            width,
        })
    }

    /// `%H:%M`.
    pub fn default_time() -> TimeFormat {
        TimeFormat {
            format: DEFAULT_TIME.to_owned(),
            width: 5,
        }
    }

    /// `%a %d %b %Y`.
    pub fn default_date() -> TimeFormat {
        TimeFormat {
            format: DEFAULT_DATE.to_owned(),
            width: 15,
        }
    }

    /// The format as written.
    pub fn as_str(&self) -> &str {
        &self.format
    }

    /// The widest this format gets, in cells, over every month and weekday.
    pub fn width(&self) -> usize {
        self.width
    }

    /// `time` in this format, padded on the left to [`TimeFormat::width`] cells.
    pub fn format<Tz: TimeZone>(&self, time: &DateTime<Tz>) -> String
    where
        Tz::Offset: fmt::Display,
    {
        let text = time.format(&self.format).to_string();
        let pad = self.width.saturating_sub(text.width());
        format!("{}{text}", " ".repeat(pad))
    }
}

/// The widest `format` can be: formatted at a late hour of days covering every month and
/// every weekday (names differ in length).
fn widest(format: &str) -> usize {
    let mut widest = 0;
    for month in 1..=12 {
        for day in 20..=26 {
            let Some(date) = NaiveDate::from_ymd_opt(2026, month, day) else {
                continue;
            };
            let Some(time) = date.and_hms_milli_opt(23, 59, 59, 999) else {
                continue;
            };
            let text = time.and_utc().format(format).to_string();
            widest = widest.max(text.width());
        }
    }
    widest
}

/// The text of a day-change line: `day changed to Sun 06 Dec 2026` (irssi's words).
pub fn day_changed(date: NaiveDate, format: &TimeFormat) -> String {
    let midday = date.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc();
    format!(
        "day changed to {}",
        midday.format(format.as_str()).to_string().trim()
    )
}

/// Decides where day-change lines go, message by message in the order shown: before the first
/// message of each new day, and before the first one at all when it is not from today (old
/// history), so every message on screen can be dated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayLines {
    last: Option<NaiveDate>,
}

impl DayLines {
    /// Nothing shown yet.
    pub fn new() -> Self {
        DayLines::default()
    }

    /// A message of `date` comes next; `today` is the local date now. Returns the date of a
    /// day-change line to show before it, if one is due.
    pub fn next(&mut self, date: NaiveDate, today: NaiveDate) -> Option<NaiveDate> {
        let due = match self.last {
            None => date != today,
            Some(last) => last != date,
        };
        self.last = Some(date);
        due.then_some(date)
    }

    /// The day of the last message shown.
    pub fn last(&self) -> Option<NaiveDate> {
        self.last
    }
}

/// Whether two dates are different days of the calendar (a cheap helper for callers holding
/// `Datelike` values of different kinds).
pub fn same_day(a: &impl Datelike, b: &impl Datelike) -> bool {
    a.year() == b.year() && a.ordinal() == b.ordinal()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, s)
            .unwrap()
            .and_utc()
    }

    #[test]
    fn formats_with_seconds_and_of_ones_own() {
        let t = at(2026, 12, 6, 9, 5, 7);
        assert_eq!(TimeFormat::default_time().format(&t), "09:05");
        assert_eq!(
            TimeFormat::parse("%H:%M:%S").unwrap().format(&t),
            "09:05:07"
        );
        assert_eq!(
            TimeFormat::parse("[%d.%m %H:%M]").unwrap().format(&t),
            "[06.12 09:05]"
        );
        assert_eq!(TimeFormat::parse("%H:%M:%S").unwrap().width(), 8);
    }

    #[test]
    fn the_defaults_are_what_parse_gives() {
        assert_eq!(
            TimeFormat::parse(DEFAULT_TIME).unwrap(),
            TimeFormat::default_time()
        );
        assert_eq!(
            TimeFormat::parse(DEFAULT_DATE).unwrap(),
            TimeFormat::default_date()
        );
    }

    #[test]
    fn names_of_months_pad_to_the_widest() {
        let f = TimeFormat::parse("%B %H").unwrap();
        assert_eq!(f.width(), "September 23".len());
        let may = f.format(&at(2026, 5, 1, 1, 0, 0));
        assert_eq!(may.width(), f.width());
        assert!(may.ends_with("May 01"), "{may:?}");
    }

    #[test]
    fn bad_formats_are_refused_with_a_reason() {
        for raw in [
            "",
            "%Q",
            "%H:%",
            "a\tb",
            "%Z",
            &"x".repeat(MAX_FORMAT + 1),
            "%c %c %c",
        ] {
            assert!(TimeFormat::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn day_lines_date_old_history_and_each_new_day() {
        let d = |day| NaiveDate::from_ymd_opt(2026, 12, day).unwrap();
        let today = d(6);
        let mut lines = DayLines::new();
        // History from two days ago, then from yesterday, then today's live lines.
        assert_eq!(lines.next(d(4), today), Some(d(4)));
        assert_eq!(lines.next(d(4), today), None);
        assert_eq!(lines.next(d(5), today), Some(d(5)));
        assert_eq!(lines.next(d(6), today), Some(d(6)));
        assert_eq!(lines.next(d(6), today), None);
        // A session that starts today has no line until midnight passes.
        let mut fresh = DayLines::new();
        assert_eq!(fresh.next(d(6), today), None);
        assert_eq!(fresh.next(d(7), d(7)), Some(d(7)));
        assert_eq!(fresh.last(), Some(d(7)));
    }

    #[test]
    fn the_day_line_says_the_date() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        assert_eq!(
            day_changed(date, &TimeFormat::default_date()),
            "day changed to Sun 06 Dec 2026"
        );
        assert_eq!(
            day_changed(date, &TimeFormat::parse("%Y-%m-%d").unwrap()),
            "day changed to 2026-12-06"
        );
        assert!(same_day(&date, &at(2026, 12, 6, 23, 0, 0)));
        assert!(!same_day(&date, &at(2025, 12, 6, 23, 0, 0)));
    }
}
