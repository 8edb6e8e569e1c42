//! The full-screen interface's state and rules: what each server line, key and timer does to
//! the stored messages, the input line, the connection state and the scroll position. It never
//! touches a socket, a terminal or the clock: events come in with the time (`Now`), and what
//! must happen outside (send a line, connect, disconnect, ring the bell, end) goes out as
//! [`Effect`]s that the terminal loop (`tui.rs`) carries out. So every rule is unit-testable.
//!
//! # The connection, as [`Link`] states
//! `Connecting -> LoggingIn -> (Naming) -> (Waiting) -> Member`. A connection lost, or ended by
//! the server without a kick (a shutdown), goes to `Retrying` with backoff 1, 2, 4 ... 30 s; a
//! kick or a denial goes to `Ended`, where only `/reconnect` connects again. The draft, the
//! scrollback and the name survive all of it; the same name is offered again at the next
//! `NAME?`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chat_common::protocol::{
    parse_request, validate_name, ErrorCode, LeaveReason, Request, ServerMsg,
};
use chat_common::sanitize::sanitize;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};
use ratatui::text::Line;

use crate::clock::{day_changed, DayLines};
use crate::compose::{self, Local, Plan, CONFIRM_LINES};
use crate::config_file::FileConfig;
use crate::crowd::{Crowd, RUN_SECONDS};
use crate::editor::Editor;
use crate::exit::{ExitCode, Outcome};
use crate::filter::Filter;
use crate::input::complete;
use crate::layout::{self, Look};
use crate::logfile::Log;
use crate::name_column::{cap_for, NameColumn};
use crate::net::{Incoming, NetEvent};
use crate::paste_speed::{KeySpeed, PASTE_GAP};
use crate::roster::{parse_who_header, Roster};
use crate::split::split_request;
use crate::status_line::{fit, Part};
use crate::store::{Entry, Kind, Store};
use crate::who::{Step as WhoStep, WhoReply};

/// How long to wait for `BYE` after sending `/leave` before ending anyway.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest wait between two reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long an own private stays a candidate for an `ERROR no-such-user` answer.
const PRIVATE_ANSWER_WINDOW: Duration = Duration::from_secs(30);

/// Own privates remembered for matching errors, at most.
const MAX_PENDING_PRIVATES: usize = 256;

/// Lines typed ahead before admission, held to be sent once admitted, at most.
const MAX_HELD: usize = 100;

/// Senders remembered for the name column at most (then forgotten and learnt again).
const MAX_AUTHORS: usize = 10_000;

/// Rows scrolled by one step of the mouse wheel.
const WHEEL_ROWS: usize = 3;

/// The moment an event happened: the monotonic instant (timers) and the local wall-clock
/// `HH:MM` (the time column).
#[derive(Debug, Clone)]
pub struct Now {
    /// For timers.
    pub instant: Instant,
    /// `14:02`, local time.
    pub clock: String,
    /// The wall clock, to compare with the times of HIST lines.
    pub utc: chrono::DateTime<chrono::Utc>,
}

/// Where the connection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// A connection attempt is under way.
    Connecting,
    /// Connected; the server has not admitted us yet.
    LoggingIn,
    /// The server asked for a name and the input line asks the user.
    Naming,
    /// The operator must approve.
    Waiting,
    /// In the room.
    Member,
    /// Disconnected; the next attempt starts at `at`. Giving up ends with `code`.
    Retrying {
        /// When the next attempt starts.
        at: Instant,
        /// The exit status if the user gives up now.
        code: ExitCode,
        /// What happened, for people.
        why: String,
    },
    /// Ended by the server (a kick, a denial): no attempt without `/reconnect`.
    Ended {
        /// The exit status when the user leaves.
        code: ExitCode,
        /// What happened, for people.
        why: String,
    },
}

/// What the terminal loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send this line to the server.
    Send(String),
    /// Start a new connection attempt (the current one, if any, is abandoned).
    Connect,
    /// Close the current connection and ignore whatever it still reports.
    Disconnect,
    /// Ring the terminal bell.
    Bell,
    /// Redraw the whole screen (Ctrl-L).
    Redraw,
    /// Give the terminal back and stop the process (Ctrl-Z), as a shell's job control does;
    /// the screen comes back on `fg`.
    Suspend,
}

/// Settings of the interface.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The server's address, shown in the status line.
    pub addr: String,
    /// The name to offer first (`--name`).
    pub name: Option<String>,
    /// Styles on or off.
    pub look: Look,
    /// Ring the bell for mentions and privates.
    pub bell: bool,
    /// The configuration file's preferences (`config_file.rs`): the line limit, time and
    /// date formats, highlight words, the ignore list, hidden joins, logging.
    pub prefs: FileConfig,
    /// Where log files go (`None`: nowhere found; `/log on` says so).
    pub log_dir: Option<PathBuf>,
}

/// The whole state of the full-screen interface.
#[derive(Debug)]
pub struct App {
    settings: Settings,
    /// Every shown line.
    pub store: Store,
    /// The input line.
    pub editor: Editor,
    roster: Roster,
    /// The connection's state.
    pub link: Link,
    /// The name in the room (or the last one we had), and the one to offer at `NAME?`.
    me: Option<String>,
    wanted: Option<String>,
    /// The chat draft, set aside while the input line asks for a name.
    draft: Option<String>,
    /// Members online as the server last said, adjusted by JOIN and LEAVE.
    online: Option<usize>,
    /// Rows scrolled up from the bottom; 0 follows new lines.
    pub scroll: usize,
    /// Messages that arrived while scrolled up.
    pub unread: usize,
    /// The message pane's size when last drawn: width, height.
    pub pane: (usize, usize),
    /// The name column, and the (pane width, names generation) it was built for.
    names: Option<((usize, u64), NameColumn)>,
    /// Bumped whenever the names that can appear change (the roster, a new sender).
    names_generation: u64,
    /// Senders of stored messages seen so far (bounded by [`MAX_AUTHORS`]; a new one changes
    /// the name column).
    authors: std::collections::HashSet<String>,
    /// Row counts of entries by id, for the (width, prefix column) they were counted at.
    row_cache: ((usize, usize), std::collections::HashMap<u64, usize>),
    /// A pasted block waiting for a second Enter: its line count.
    pub confirm: Option<usize>,
    /// Lines sent before admission, to send once admitted (at most [`MAX_HELD`]).
    held: Vec<String>,
    /// Admitted: send the held lines at the first line that is not HIST.
    flush_held: bool,
    /// Own privates not yet known to be delivered: entry id, lowercase target, when sent.
    pending_privates: VecDeque<(u64, String, Instant)>,
    /// The ignore list, hidden joins and highlight words.
    filter: Filter,
    /// A `/who` reply still gathering names into its entry.
    who: Option<(u64, WhoReply)>,
    /// The run of joins and leaves shown as one row: its entry, the run, when it began.
    crowd: Option<(u64, Crowd, Instant)>,
    /// Day-change lines: the day of the last message shown.
    days: DayLines,
    /// The local date and time of the event being handled (set on every event).
    today: chrono::NaiveDate,
    local_now: chrono::DateTime<chrono::Local>,
    /// Who last wrote to you privately, for `/r`.
    last_private_from: Option<String>,
    /// `/search`: the text, and the entry found last (the next search looks older).
    search: Option<(String, Option<u64>)>,
    /// The "new since you scrolled up" line: its entry, and whether one is due at the next
    /// message while scrolled up.
    marker: Option<u64>,
    marker_due: bool,
    /// The log file, while logging.
    log: Option<Log>,
    /// Keys read faster than a person types are a paste (`paste_speed.rs`); whether the key
    /// being handled is one.
    speed: KeySpeed,
    fast_key: bool,
    /// An Enter read within a fast burst, shown as a line break until the burst goes on
    /// (then it was a pasted line break) or ends (then it was Enter: the break goes and the
    /// input is sent). When it was read.
    pending_enter: Option<Instant>,
    /// When the key being handled was read.
    read_at: Option<Instant>,
    /// Own messages recently sent: entry id, wire length, when sent; an `ERROR
    /// line-too-long` (a server with a lower limit than `max_line`) marks the longest.
    recent_own: VecDeque<(u64, usize, Instant)>,
    /// HIST lines are arriving (a separator comes before the first live line).
    in_history: bool,
    /// When the last live line arrived: history older than this is already on screen.
    last_live: Option<chrono::DateTime<chrono::Utc>>,
    /// Reconnection attempts since the last admission.
    attempt: u32,
    /// The exit status if the user gives up reconnecting: why the connection went.
    give_up_code: ExitCode,
    /// `/leave` was sent: end when the server confirms, or at this deadline.
    leaving: Option<Instant>,
    effects: Vec<Effect>,
    /// Set when the interface should end, with how.
    pub outcome: Option<Outcome>,
}

/// `entry` as a line of the log file: what line mode shows, without colors.
pub fn log_text(entry: &Entry, me: &str) -> String {
    let text = &entry.text;
    match &entry.kind {
        Kind::Msg { from } => format!("<{from}> {text}"),
        Kind::Act { from } => format!("* {from} {text}"),
        Kind::Private { from, to } if entry.own => format!("[private] <{from} -> {to}> {text}"),
        Kind::Private { from, .. } => format!("[private] <{from} -> {me}> {text}"),
        Kind::Event => format!("* {text}"),
        Kind::Notice | Kind::Separator => format!("-- {text}"),
        Kind::Error => format!("! {text}"),
        Kind::Unparsed => format!("?? {text}"),
    }
}

/// Whether `text` mentions `name` as a word (without regard to ASCII case).
pub fn mentions(text: &str, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    let hay = text.to_ascii_lowercase();
    let needle = name.to_ascii_lowercase();
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    hay.match_indices(&needle).any(|(at, _)| {
        let before = hay[..at].chars().next_back();
        let after = hay[at + needle.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

/// The local `HH:MM` of an RFC 3339 time, or `None` when it does not parse.
pub fn local_clock(rfc3339: &str) -> Option<String> {
    let time = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    Some(
        time.with_timezone(&chrono::Local)
            .format("%H:%M")
            .to_string(),
    )
}

/// The wait before reconnection attempt `attempt` (1-based): 1, 2, 4, ... 30 s.
pub fn backoff(attempt: u32) -> Duration {
    let secs = 1u64 << attempt.saturating_sub(1).min(5);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// Whether a `BYE` that the user did not ask for means a kick. Version 1 and 2 of the
/// protocol give `BYE` no reason code, so the words are the only sign; a new server wording
/// at worst makes the client try to reconnect after a kick.
fn bye_is_kick(text: &str) -> bool {
    text.to_ascii_lowercase().contains("kick")
}

impl App {
    /// A new interface, about to connect.
    pub fn new(settings: Settings) -> Self {
        let wanted = settings.name.clone();
        let filter = Filter::new(
            &settings.prefs.ignore,
            settings.prefs.hide_joins,
            &settings.prefs.highlight,
        );
        App {
            settings,
            store: Store::new(),
            editor: Editor::new(),
            roster: Roster::new(),
            link: Link::Connecting,
            me: None,
            wanted,
            draft: None,
            online: None,
            scroll: 0,
            unread: 0,
            pane: (80, 20),
            names: None,
            names_generation: 0,
            authors: std::collections::HashSet::new(),
            row_cache: ((0, 0), std::collections::HashMap::new()),
            confirm: None,
            held: Vec::new(),
            flush_held: false,
            pending_privates: VecDeque::new(),
            recent_own: VecDeque::new(),
            filter,
            who: None,
            crowd: None,
            days: DayLines::new(),
            today: chrono::Local::now().date_naive(),
            local_now: chrono::Local::now(),
            last_private_from: None,
            search: None,
            marker: None,
            marker_due: false,
            log: None,
            speed: KeySpeed::new(),
            fast_key: false,
            pending_enter: None,
            read_at: None,
            in_history: false,
            last_live: None,
            attempt: 0,
            give_up_code: ExitCode::Lost,
            leaving: None,
            effects: Vec::new(),
            outcome: None,
        }
    }

    /// The effects produced so far, in order; the caller carries them out.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// The look (styles on or off).
    pub fn look(&self) -> Look {
        self.settings.look
    }

    fn send(&mut self, line: impl Into<String>) {
        self.effects.push(Effect::Send(line.into()));
    }

    /// Stores `entry`, keeping the view still when scrolled up: after a day-change line when
    /// its day is not the last one shown's, after the "new since you scrolled up" line when
    /// it is the first message since, and logged when logging.
    fn push(&mut self, mut entry: Entry) -> u64 {
        let date = *entry.date.get_or_insert(self.today);
        if entry.kind != Kind::Separator {
            if let Some(day) = self.days.next(date, self.today) {
                let text = day_changed(day, &self.settings.prefs.date_format);
                let mut line = Entry::new("", Kind::Separator, &text);
                line.date = Some(day);
                self.store_entry(line);
            }
        }
        if self.scroll > 0 && self.marker_due && entry.has_markup() && !entry.own {
            self.marker_due = false;
            let mut line = Entry::new("", Kind::Separator, "──── new since you scrolled up ────");
            line.date = Some(date);
            self.marker = Some(self.store_entry(line));
        }
        if !entry.history {
            self.log_entry(&entry);
        }
        self.store_entry(entry)
    }

    /// Writes `entry` to the log, if logging; a failed write stops logging, said once.
    fn log_entry(&mut self, entry: &Entry) {
        let Some(log) = &mut self.log else { return };
        let text = log_text(entry, self.me.as_deref().unwrap_or("you"));
        if let Err(e) = log.write(&self.local_now, &text) {
            let path = log.path().display().to_string();
            self.log = None;
            let text = format!("logging stopped: cannot write {path}: {e}");
            self.store_entry(Entry::new(&self.clock(), Kind::Error, &text));
        }
    }

    /// The time column's text now.
    fn clock(&self) -> String {
        self.settings.prefs.time_format.format(&self.local_now)
    }

    /// Stores `entry` as it is, keeping the view still when scrolled up.
    fn store_entry(&mut self, entry: Entry) -> u64 {
        if let Kind::Msg { from } | Kind::Act { from } | Kind::Private { from, .. } = &entry.kind {
            let to = match &entry.kind {
                Kind::Private { to, .. } => Some(to),
                _ => None,
            };
            for name in std::iter::once(from).chain(to) {
                if !self.authors.contains(name) {
                    if self.authors.len() >= MAX_AUTHORS {
                        self.authors.clear();
                    }
                    self.authors.insert(name.clone());
                    self.names_generation += 1;
                }
            }
        }
        if self.scroll > 0 {
            let (width, _) = self.pane;
            let look = self.settings.look;
            let rows = layout::layout_named(&entry, width, self.name_column(width), look).len();
            self.scroll += rows;
            if entry.has_markup() {
                self.unread += 1;
            }
        }
        self.store.push(entry)
    }

    fn note(&mut self, now: &Now, kind: Kind, text: &str) {
        self.push(Entry::new(&now.clock, kind, text));
    }

    /// A notice from the client itself.
    pub fn notice(&mut self, now: &Now, text: &str) {
        self.at(now);
        self.note(now, Kind::Notice, text);
    }

    fn problem(&mut self, now: &Now, text: &str) {
        self.note(now, Kind::Error, text);
    }

    /// The connection attempt succeeded (the terminal loop keeps the writing half).
    pub fn connected(&mut self) {
        if self.link == Link::Connecting {
            self.link = Link::LoggingIn;
        }
    }

    /// A report of the network thread (of the current connection attempt).
    pub fn on_net(&mut self, event: NetEvent, now: &Now) {
        self.at(now);
        match event {
            NetEvent::Connected(_) => self.connected(),
            NetEvent::Failed(code, why) if code != ExitCode::Unreachable => {
                // The server's certificate (changed, untrusted, expired, wrong host) or the
                // local setup: trying again cannot help, so only `/reconnect` does.
                self.end(now, code, &why);
            }
            NetEvent::Failed(_, why) => {
                // A failed attempt only updates the status line: the pane already says why
                // the connection went.
                let code = match &self.link {
                    Link::Connecting if self.attempt > 0 => self.give_up_code,
                    _ => ExitCode::Unreachable,
                };
                self.attempt = self.attempt.saturating_add(1);
                let wait = backoff(self.attempt);
                self.effects.push(Effect::Disconnect);
                self.link = Link::Retrying {
                    at: now.instant + wait,
                    code,
                    why,
                };
            }
            NetEvent::Line(Incoming::Line(line)) => self.on_line(&line, now),
            NetEvent::Line(Incoming::TooLong) => self.note(
                now,
                Kind::Unparsed,
                "(an over-long line from the server was skipped)",
            ),
            NetEvent::Line(Incoming::BadUtf8) => self.note(
                now,
                Kind::Unparsed,
                "(a line that is not UTF-8 was skipped)",
            ),
            NetEvent::Closed(why) => {
                if self.leaving.is_some() {
                    self.outcome = Some(Outcome::success());
                    return;
                }
                if matches!(self.link, Link::Ended { .. } | Link::Retrying { .. }) {
                    return;
                }
                let why = match why {
                    Some(why) => format!("lost the connection: {why}"),
                    None => "the server closed the connection".to_owned(),
                };
                self.retry(now, ExitCode::Lost, &why);
            }
        }
    }

    /// Disconnects and schedules the next attempt with backoff.
    fn retry(&mut self, now: &Now, code: ExitCode, why: &str) {
        self.give_up_code = code;
        self.attempt = self.attempt.saturating_add(1);
        let wait = backoff(self.attempt);
        self.effects.push(Effect::Disconnect);
        self.problem(now, &format!("{why}; reconnecting in {} s", wait.as_secs()));
        self.link = Link::Retrying {
            at: now.instant + wait,
            code,
            why: why.to_owned(),
        };
        self.end_naming();
    }

    /// Disconnects for good (a kick, a denial): only `/reconnect` connects again.
    fn end(&mut self, now: &Now, code: ExitCode, why: &str) {
        self.effects.push(Effect::Disconnect);
        // A reason of several lines (the warning about a changed certificate) is shown line
        // by line; the way on goes after the last.
        let mut lines: Vec<&str> = why.lines().filter(|l| !l.trim().is_empty()).collect();
        let last = lines.pop().unwrap_or_default();
        let last = last.strip_suffix('.').unwrap_or(last);
        for line in lines {
            self.problem(now, line);
        }
        self.problem(
            now,
            &format!("{last}; /reconnect to try again, Ctrl-C on an empty line to quit"),
        );
        self.link = Link::Ended {
            code,
            why: why.to_owned(),
        };
        self.end_naming();
    }

    /// `/reconnect`, or a retry that is due: a new connection attempt now.
    fn reconnect(&mut self, now: &Now) {
        if matches!(
            self.link,
            Link::Member | Link::Waiting | Link::LoggingIn | Link::Naming
        ) {
            self.notice(now, "already connected");
            return;
        }
        if matches!(self.link, Link::Ended { .. }) || self.attempt <= 1 {
            self.notice(now, &format!("connecting to {}...", self.settings.addr));
        }
        self.link = Link::Connecting;
        self.effects.push(Effect::Connect);
    }

    /// Timers: a due reconnection attempt, the end of a leave that got no answer, forgetting
    /// old privates.
    pub fn tick(&mut self, now: &Now) {
        self.at(now);
        if self
            .pending_enter
            .is_some_and(|at| now.instant.saturating_duration_since(at) >= PASTE_GAP)
        {
            self.resolve_enter(now);
        }
        if let Link::Retrying { at, .. } = self.link {
            if now.instant >= at {
                self.reconnect(now);
            }
        }
        if let Some(deadline) = self.leaving {
            if now.instant >= deadline {
                self.outcome = Some(Outcome::success());
            }
        }
        while self
            .pending_privates
            .front()
            .is_some_and(|(_, _, at)| now.instant.duration_since(*at) > PRIVATE_ANSWER_WINDOW)
        {
            self.pending_privates.pop_front();
        }
    }

    /// Stops asking for a name; the chat draft comes back.
    fn end_naming(&mut self) {
        if let Some(draft) = self.draft.take() {
            self.editor.set(&draft);
        }
    }

    fn start_naming(&mut self, now: &Now, prompt: &str) {
        self.notice(now, prompt);
        if self.draft.is_none() {
            self.draft = Some(self.editor.text().to_owned());
            self.editor.set("");
        }
        self.link = Link::Naming;
    }

    fn is_me(&self, name: &str) -> bool {
        self.me
            .as_deref()
            .is_some_and(|me| me.eq_ignore_ascii_case(name))
    }

    /// Sets the wall clock of the event being handled.
    fn at(&mut self, now: &Now) {
        self.local_now = now.utc.with_timezone(&chrono::Local);
        self.today = self.local_now.date_naive();
    }

    /// One line from the server.
    pub fn on_line(&mut self, line: &str, now: &Now) {
        self.at(now);
        let Ok(msg) = ServerMsg::parse(line) else {
            self.note(now, Kind::Unparsed, line);
            return;
        };
        self.roster.observe(&msg);
        if matches!(
            msg,
            ServerMsg::Join { .. }
                | ServerMsg::Leave { .. }
                | ServerMsg::Nick { .. }
                | ServerMsg::Info { .. }
                | ServerMsg::Welcome { .. }
        ) {
            self.names_generation += 1;
        }
        if self.in_history && !matches!(msg, ServerMsg::Hist { .. }) {
            self.in_history = false;
            self.note(now, Kind::Separator, "──── history above, live below ────");
        }
        if self.flush_held && !matches!(msg, ServerMsg::Hist { .. }) {
            self.flush_held = false;
            if self.link == Link::Member {
                for line in std::mem::take(&mut self.held) {
                    self.echo(now, &line);
                    self.send(line);
                }
            }
        }
        if matches!(
            msg,
            ServerMsg::Msg { .. } | ServerMsg::Act { .. } | ServerMsg::Priv { .. }
        ) {
            self.last_live = Some(now.utc);
        }
        match msg {
            ServerMsg::NameQuery { prompt } => match self.wanted.clone() {
                Some(name) => {
                    self.link = Link::LoggingIn;
                    self.send(name);
                }
                None => self.start_naming(now, prompt),
            },
            ServerMsg::Wait { text } => {
                self.link = Link::Waiting;
                self.notice(now, &format!("waiting for approval... ({text})"));
            }
            ServerMsg::Welcome { name, online } => {
                self.link = Link::Member;
                self.me = Some(name.to_owned());
                self.wanted = Some(name.to_owned());
                self.roster.set_me(name);
                self.online = Some(online);
                self.attempt = 0;
                self.end_naming();
                let others = if online <= 1 {
                    "nobody else is here yet".to_owned()
                } else {
                    format!("{online} online, you included")
                };
                self.notice(now, &format!("you are in as {name}; {others}"));
                // Who is here, for the count and for Tab completion.
                self.send("/who");
                // Held lines go after the room's history, at the first line that is not HIST
                // (the answer to /who at the latest), so they show below it.
                self.flush_held = true;
            }
            ServerMsg::Denied { text } => {
                let why = format!("refused: {}", sanitize(text));
                self.end(now, ExitCode::Refused, &why);
            }
            ServerMsg::Join { name } => {
                self.online = self.online.map(|n| n + 1);
                if self.filter.shows_membership(name) {
                    self.membership(now, &format!("{name} joined"), |crowd| crowd.join(name));
                }
            }
            ServerMsg::Leave { name, reason } if self.is_me(name) => match reason {
                LeaveReason::Kicked => self.end(now, ExitCode::Removed, "the operator removed you"),
                _ => self.retry(
                    now,
                    ExitCode::Lost,
                    &format!("the server dropped you ({})", reason.as_str()),
                ),
            },
            ServerMsg::Leave { name, reason } => {
                self.online = self.online.map(|n| n.saturating_sub(1));
                if self.filter.shows_membership(name) {
                    let single = match reason {
                        LeaveReason::Left => format!("{name} left"),
                        other => format!("{name} left ({})", other.as_str()),
                    };
                    self.membership(now, &single, |crowd| crowd.leave(name, reason.as_str()));
                }
            }
            ServerMsg::Msg { from, color, text } => {
                let mut entry = Entry::new(
                    &now.clock,
                    Kind::Msg {
                        from: from.to_owned(),
                    },
                    text,
                );
                entry.color = color;
                self.incoming(entry, false);
            }
            ServerMsg::Act { from, text } => {
                let entry = Entry::new(
                    &now.clock,
                    Kind::Act {
                        from: from.to_owned(),
                    },
                    text,
                );
                self.incoming(entry, false);
            }
            ServerMsg::Priv {
                from,
                to,
                color,
                text,
            } => {
                let mut entry = Entry::new(
                    &now.clock,
                    Kind::Private {
                        from: from.to_owned(),
                        to: to.to_owned(),
                    },
                    text,
                );
                entry.color = color;
                self.incoming(entry, true);
            }
            ServerMsg::Nick { old, new } => {
                if self.is_me(old) {
                    self.me = Some(new.to_owned());
                    self.wanted = Some(new.to_owned());
                    self.roster.set_me(new);
                    self.note(now, Kind::Event, &format!("you are now known as {new}"));
                } else {
                    self.note(now, Kind::Event, &format!("{old} is now known as {new}"));
                }
            }
            ServerMsg::Hist { time, line } => self.history(now, time, line),
            ServerMsg::Info { text } => {
                // A /who reply's further lines join its entry.
                if let Some((id, reply)) = &mut self.who {
                    let id = *id;
                    let step = reply.feed(text);
                    let whole = reply.text().to_owned();
                    if step == WhoStep::Done {
                        self.who = None;
                    }
                    if step != WhoStep::NotPart {
                        if let Some(entry) = self.store.get_mut(id) {
                            entry.text = sanitize(&whole).into_owned();
                            self.row_cache.1.remove(&id);
                            return;
                        }
                    }
                    self.who = None;
                }
                if let Some((count, _)) = parse_who_header(text) {
                    self.online = Some(count);
                }
                self.notice(now, text);
                if let Some(reply) = WhoReply::start(text).filter(|r| !r.is_complete()) {
                    if let Some(entry) = self.store.newest(0) {
                        self.who = Some((entry.id, reply));
                    }
                }
            }
            ServerMsg::Error { code, text } => self.server_error(now, code, text),
            ServerMsg::Bye { text } => {
                if self.leaving.is_some() {
                    self.outcome = Some(Outcome::success());
                    return;
                }
                let why = format!("the server ended the session: {}", sanitize(text));
                if bye_is_kick(text) {
                    self.end(now, ExitCode::Removed, &why);
                } else {
                    self.retry(now, ExitCode::Removed, &why);
                }
            }
        }
    }

    /// A message from someone else (or a private to ourselves): highlight and bell.
    fn incoming(&mut self, mut entry: Entry, private: bool) {
        let me = self.me.clone().unwrap_or_default();
        if let Kind::Msg { from } | Kind::Act { from } | Kind::Private { from, .. } = &entry.kind {
            if self.filter.is_ignored(from) {
                return;
            }
            if private && !from.eq_ignore_ascii_case(&me) {
                self.last_private_from = Some(from.clone());
            }
        }
        self.crowd = None;
        entry.highlight = private || self.filter.highlights(&entry.text, &me);
        if entry.highlight && self.settings.bell {
            self.effects.push(Effect::Bell);
        }
        self.push(entry);
    }

    /// A `HIST` line: shown dimmed with its own time, unless already on screen from before a
    /// reconnection.
    fn history(&mut self, now: &Now, time: &str, line: &str) {
        if let (Some(last), Ok(at)) = (self.last_live, chrono::DateTime::parse_from_rfc3339(time)) {
            if at.with_timezone(&chrono::Utc) <= last {
                return;
            }
        }
        self.in_history = true;
        let when = chrono::DateTime::parse_from_rfc3339(time)
            .ok()
            .map(|t| t.with_timezone(&chrono::Local));
        let clock = match &when {
            Some(t) => self.settings.prefs.time_format.format(t),
            None => "--:--".to_owned(),
        };
        let entry = match ServerMsg::parse(line) {
            Ok(ServerMsg::Msg { from, color, text }) => {
                let mut e = Entry::new(
                    &clock,
                    Kind::Msg {
                        from: from.to_owned(),
                    },
                    text,
                );
                e.color = color;
                e.own = self.is_me(from);
                e
            }
            Ok(ServerMsg::Act { from, text }) => {
                let mut e = Entry::new(
                    &clock,
                    Kind::Act {
                        from: from.to_owned(),
                    },
                    text,
                );
                e.own = self.is_me(from);
                e
            }
            _ => Entry::new(&now.clock, Kind::Unparsed, line),
        };
        let mut entry = entry;
        if let Kind::Msg { from } | Kind::Act { from } = &entry.kind {
            if self.filter.is_ignored(from) {
                return;
            }
        }
        entry.history = true;
        entry.date = when.map(|t| t.date_naive());
        self.push(entry);
    }

    /// A join or leave: the run of them with nothing said in between is one row.
    fn membership(&mut self, now: &Now, single: &str, change: impl FnOnce(&mut Crowd)) {
        let newest = self.store.newest(0).map(|e| e.id);
        let window = Duration::from_secs(RUN_SECONDS);
        let (id, mut crowd, began) = match self.crowd.take() {
            Some((id, crowd, began))
                if Some(id) == newest && now.instant.saturating_duration_since(began) < window =>
            {
                (Some(id), crowd, began)
            }
            _ => (None, Crowd::new(), now.instant),
        };
        change(&mut crowd);
        let text = crowd.text();
        if let Some(entry) = id.and_then(|id| self.store.get_mut(id)) {
            entry.text = text;
            let id = entry.id;
            self.row_cache.1.remove(&id);
            self.crowd = Some((id, crowd, began));
            // The log keeps one line per join or leave.
            self.log_entry(&Entry::new("", Kind::Event, single));
            return;
        }
        let id = self.push(Entry::new(&now.clock, Kind::Event, &text));
        self.crowd = Some((id, crowd, began));
    }

    fn server_error(&mut self, now: &Now, code: ErrorCode, text: &str) {
        match code {
            ErrorCode::BadName | ErrorCode::NameTaken if !matches!(self.link, Link::Member) => {
                self.problem(now, &format!("{text} ({code}); choose another name"));
                self.wanted = None;
            }
            ErrorCode::ServerFull if !matches!(self.link, Link::Member) => {
                self.retry(
                    now,
                    ExitCode::Refused,
                    &format!("the server is full: {text}"),
                );
            }
            ErrorCode::NoSuchUser => {
                if let Some(id) = self.unanswered_private() {
                    if self.mark_failed(id, sanitize(text).into_owned()) {
                        return;
                    }
                }
                self.problem(now, &format!("{text} ({code})"));
            }
            ErrorCode::LineTooLong => {
                if let Some(id) = self.too_long_line(now.instant) {
                    let why = format!(
                        "the server's line limit is lower than {} bytes ({})",
                        self.settings.prefs.max_line,
                        sanitize(text)
                    );
                    if self.mark_failed(id, why) {
                        return;
                    }
                }
                self.problem(now, &format!("{text} ({code})"));
            }
            _ => self.problem(now, &format!("{text} ({code})")),
        }
    }

    /// Marks own entry `id` `✗ not delivered` for `why` (and logs it); false when it is no
    /// longer kept.
    fn mark_failed(&mut self, id: u64, why: String) -> bool {
        let Some(entry) = self.store.get_mut(id) else {
            return false;
        };
        entry.failed = Some(why.clone());
        let line = format!("not delivered ({why}): {}", entry.text);
        self.row_cache.1.remove(&id);
        self.log_entry(&Entry::new("", Kind::Error, &line));
        true
    }

    /// The own private that an `ERROR no-such-user` answers: the server answers in order, and
    /// only privates to someone not online fail, so the oldest pending one to a name the
    /// roster does not know (or else the oldest pending one).
    fn unanswered_private(&mut self) -> Option<u64> {
        let at = self
            .pending_privates
            .iter()
            .position(|(_, to, _)| {
                self.roster
                    .matching(to)
                    .iter()
                    .all(|n| !n.eq_ignore_ascii_case(to))
            })
            .unwrap_or(0);
        self.pending_privates.remove(at).map(|(id, _, _)| id)
    }

    /// Asks to leave: by `/leave` when in the room, at once otherwise.
    fn leave(&mut self, now: &Now) {
        match &self.link {
            Link::Member => {
                self.send("/leave");
                self.leaving = Some(now.instant + LEAVE_TIMEOUT);
            }
            Link::Retrying { code, why, .. } | Link::Ended { code, why } => {
                self.outcome = Some(Outcome::fail(*code, why.clone()));
            }
            Link::Connecting | Link::LoggingIn | Link::Naming | Link::Waiting => {
                self.effects.push(Effect::Disconnect);
                self.outcome = Some(Outcome::success());
            }
        }
    }

    /// The process was asked to end (SIGTERM, SIGHUP): leave as the user would.
    pub fn terminate(&mut self, now: &Now) {
        self.leave(now);
    }

    /// Sends what the input line holds (Enter).
    fn submit(&mut self, now: &Now) {
        if self.link == Link::Naming {
            let typed = self.editor.text().to_owned();
            match validate_name(&typed) {
                Ok(name) => {
                    let name = name.to_owned();
                    self.editor.take();
                    self.wanted = Some(name.clone());
                    self.link = Link::LoggingIn;
                    self.send(name);
                    self.end_naming();
                }
                Err(why) => self.problem(now, &format!("{why}; try another name")),
            }
            return;
        }
        let plan = match compose::plan(self.editor.text()) {
            Ok(plan) => plan,
            Err(refusal) => {
                self.problem(now, &refusal.0);
                return;
            }
        };
        match plan {
            Plan::Nothing => {
                self.editor.take();
            }
            Plan::Leave => {
                self.editor.take();
                self.leave(now);
            }
            Plan::Local(Local::Reconnect) => {
                self.editor.take();
                self.reconnect(now);
            }
            Plan::Local(Local::Reply(text)) => match self.last_private_from.clone() {
                Some(name) => {
                    // The same path as typing it: split, echoed, marked if refused.
                    self.editor.set(&format!("/private {name} {text}"));
                    self.submit(now);
                }
                None => self.problem(now, "/r: nobody has written to you privately yet"),
            },
            Plan::Local(command) => {
                self.editor.take();
                self.local(now, command);
            }
            Plan::Send(lines) => {
                // A line over the server's limit is sent in pieces that fit, or (when it is
                // no message) not at all, said before anything is sent.
                let mut fitted = Vec::with_capacity(lines.len());
                for line in &lines {
                    match split_request(line, self.settings.prefs.max_line) {
                        Ok(pieces) => fitted.extend(pieces),
                        Err(refused) => {
                            self.problem(now, &refused.to_string());
                            return;
                        }
                    }
                }
                let lines = fitted;
                if matches!(
                    self.link,
                    Link::Connecting | Link::LoggingIn | Link::Waiting
                ) && self.held.len() + lines.len() <= MAX_HELD
                {
                    // Typed ahead while logging in: sent, in order, once admitted.
                    self.editor.take();
                    self.notice(
                        now,
                        &format!("held until you are in: {} line(s)", lines.len()),
                    );
                    self.held.extend(lines);
                    return;
                }
                if self.link != Link::Member {
                    self.problem(
                        now,
                        "not in the room: the line stays in the input until you are",
                    );
                    return;
                }
                if lines.len() > CONFIRM_LINES && self.confirm.is_none() {
                    self.confirm = Some(lines.len());
                    return;
                }
                self.confirm = None;
                self.editor.take();
                for line in lines {
                    self.echo(now, &line);
                    self.send(line);
                }
            }
        }
    }

    /// The client's own commands (`compose::Local`), but `/reconnect` and `/r`.
    fn local(&mut self, now: &Now, command: Local) {
        match command {
            Local::Clear => {
                self.store.clear();
                self.row_cache.1.clear();
                (self.scroll, self.unread) = (0, 0);
                (self.who, self.crowd, self.search, self.marker) = (None, None, None, None);
                self.days = DayLines::new();
            }
            Local::Ignore(None) => {
                let names: Vec<&str> = self.filter.ignored().collect();
                let text = if names.is_empty() {
                    "nobody is ignored (/ignore NAME hides a name's lines)".to_owned()
                } else {
                    format!("ignored: {} (/unignore NAME)", names.join(", "))
                };
                self.notice(now, &text);
            }
            Local::Ignore(Some(name)) => match self.filter.ignore(&name) {
                Ok(true) => self.notice(
                    now,
                    &format!("ignoring {name}: their lines, joins and leaves are hidden"),
                ),
                Ok(false) => self.notice(now, &format!("{name} is ignored already")),
                Err(e) => self.problem(now, &e.to_string()),
            },
            Local::Unignore(name) => {
                let text = if self.filter.unignore(&name) {
                    format!("no longer ignoring {name}")
                } else {
                    format!("{name} was not ignored")
                };
                self.notice(now, &text);
            }
            Local::Log(Some(true)) => self.start_log(now),
            Local::Log(Some(false)) => self.stop_log(now),
            Local::Log(None) => {
                let text = match &self.log {
                    Some(log) => format!("logging to {} (/log off stops)", log.path().display()),
                    None => "not logging (/log on starts)".to_owned(),
                };
                self.notice(now, &text);
            }
            Local::Search(text) => self.search_back(now, text),
            Local::Reconnect | Local::Reply(_) => {}
        }
    }

    /// Starts logging this server's conversation to its file (said either way).
    pub fn start_log(&mut self, now: &Now) {
        self.at(now);
        if let Some(log) = &self.log {
            let text = format!("logging to {} already", log.path().display());
            self.notice(now, &text);
            return;
        }
        let Some(dir) = self.settings.log_dir.clone() else {
            self.problem(
                now,
                "cannot log: no log directory (set log_dir in config.toml, or HOME)",
            );
            return;
        };
        match Log::open(&dir, &self.settings.addr, &self.local_now) {
            Ok(log) => {
                let text = format!("logging to {}", log.path().display());
                self.log = Some(log);
                self.notice(now, &text);
            }
            Err(e) => self.problem(now, &format!("cannot log to {}: {e}", dir.display())),
        }
    }

    /// Stops logging (marking the end in the file).
    pub fn stop_log(&mut self, now: &Now) {
        self.at(now);
        match self.log.take() {
            Some(log) => {
                let path = log.path().display().to_string();
                match log.close(&self.local_now) {
                    Ok(()) => self.notice(now, &format!("stopped logging to {path}")),
                    Err(e) => self.problem(now, &format!("closing {path}: {e}")),
                }
            }
            None => self.notice(now, "not logging"),
        }
    }

    /// `/search TEXT`: scrolls to the newest message holding TEXT (any case), above the last
    /// match when the text is the same or empty.
    fn search_back(&mut self, now: &Now, text: String) {
        let (query, before) = match (&self.search, text.is_empty()) {
            (Some((q, at)), true) => (q.clone(), *at),
            (Some((q, at)), false) if q.eq_ignore_ascii_case(&text) => (q.clone(), *at),
            (_, false) => (text, None),
            (None, true) => {
                self.problem(now, "usage: /search TEXT (then /search for older matches)");
                return;
            }
        };
        let needle = query.to_lowercase();
        let found = self
            .store
            .iter()
            .rev()
            .filter(|e| before.is_none_or(|b| e.id < b))
            .find(|e| {
                e.kind != Kind::Separator
                    && (e.text.to_lowercase().contains(&needle)
                        || layout::prefix_text(e).to_lowercase().contains(&needle))
            })
            .map(|e| e.id);
        match found {
            Some(id) => {
                self.search = Some((query, Some(id)));
                self.scroll_to(id);
            }
            None => {
                let older = if before.is_some() {
                    "no older match"
                } else {
                    "no match"
                };
                self.search = Some((query.clone(), before));
                self.problem(now, &format!("/search {query}: {older}"));
            }
        }
    }

    /// Scrolls so that entry `id` is in the middle of the pane.
    fn scroll_to(&mut self, id: u64) {
        let (width, height) = self.pane;
        let names = self.name_column(width).clone();
        let mut below: usize = 0;
        for index in 0..self.store.len() {
            let Some(entry_id) = self.store.newest(index).map(|e| e.id) else {
                break;
            };
            let rows = self.row_count(index, width, &names);
            if entry_id == id {
                let middle = height.saturating_sub(rows) / 2;
                if self.scroll == 0 {
                    self.leave_bottom();
                }
                self.scroll = below.saturating_sub(middle);
                return;
            }
            below += rows;
        }
    }

    /// Shows an own line exactly as it was sent (the server never sends it back).
    fn echo(&mut self, now: &Now, line: &str) {
        let me = self.me.clone().unwrap_or_default();
        let entry = match parse_request(line) {
            Ok(Request::Say { color, text }) => {
                let mut e = Entry::new(&now.clock, Kind::Msg { from: me }, text);
                e.color = color;
                e
            }
            Ok(Request::Me { text }) => Entry::new(&now.clock, Kind::Act { from: me }, text),
            Ok(Request::Private { to, color, text }) => {
                let mut e = Entry::new(
                    &now.clock,
                    Kind::Private {
                        from: me,
                        to: to.to_owned(),
                    },
                    text,
                );
                e.color = color;
                e.own = true;
                let id = self.push(e);
                self.remember_own(id, line.len(), now.instant);
                if self.pending_privates.len() == MAX_PENDING_PRIVATES {
                    self.pending_privates.pop_front();
                }
                self.pending_privates
                    .push_back((id, to.to_ascii_lowercase(), now.instant));
                return;
            }
            Ok(Request::Help) => {
                self.notice(
                    now,
                    "keys: Enter sends; Ctrl-C clears the line, or leaves on an empty one; \
                     Up/Down history; Ctrl-R searches it; Tab completes; Home/End edit; \
                     PgUp/PgDn, Ctrl-Home/Ctrl-End and the mouse wheel scroll; Ctrl-Z suspends. \
                     The client's own commands: /r TEXT answers the last private, /search TEXT, \
                     /clear, /ignore [NAME], /unignore NAME, /log [on|off], /reconnect",
                );
                return;
            }
            _ => return,
        };
        let mut entry = entry;
        entry.own = true;
        let id = self.push(entry);
        self.remember_own(id, line.len(), now.instant);
    }

    fn remember_own(&mut self, id: u64, len: usize, at: Instant) {
        if self.recent_own.len() == MAX_PENDING_PRIVATES {
            self.recent_own.pop_front();
        }
        self.recent_own.push_back((id, len, at));
    }

    /// The own line an `ERROR line-too-long` answers: the longest sent within the answer
    /// window (version 2 errors name no line; the longest is the one over any limit first).
    fn too_long_line(&mut self, now: Instant) -> Option<u64> {
        let at = self
            .recent_own
            .iter()
            .enumerate()
            .filter(|(_, (_, _, sent))| {
                now.saturating_duration_since(*sent) <= PRIVATE_ANSWER_WINDOW
            })
            .max_by_key(|(_, (_, len, _))| *len)
            .map(|(i, _)| i)?;
        self.recent_own.remove(at).map(|(id, _, _)| id)
    }

    /// Scrolls up (positive) or down (negative) by `rows`.
    fn scroll_by(&mut self, rows: isize) {
        if self.scroll == 0 && rows > 0 {
            self.leave_bottom();
        }
        if rows >= 0 {
            self.scroll = self.scroll.saturating_add(rows.unsigned_abs());
        } else {
            self.scroll = self.scroll.saturating_sub(rows.unsigned_abs());
        }
        if self.scroll == 0 {
            self.unread = 0;
        }
    }

    /// A terminal event read at `read_at` by the key thread: keys that follow each other
    /// faster than a person types are a paste (an Enter among them is a line break).
    pub fn on_terminal_read(&mut self, event: Event, read_at: Instant, now: &Now) {
        self.fast_key = match &event {
            Event::Key(key) if key.kind != KeyEventKind::Release => self.speed.key(read_at),
            Event::Key(_) => self.fast_key,
            _ => {
                self.speed.reset();
                false
            }
        };
        self.read_at = Some(read_at);
        self.on_terminal(event, now);
        self.fast_key = false;
        self.read_at = None;
    }

    /// An Enter held as a line break turned out to end its burst: it was Enter after all.
    fn resolve_enter(&mut self, now: &Now) {
        if self.pending_enter.take().is_some() {
            if self.editor.text()[..self.editor.cursor()].ends_with('\n') {
                self.editor.backspace();
            }
            self.submit(now);
        }
    }

    /// How soon [`App::tick`] has something to do (a held Enter to settle), if sooner than
    /// the loop's usual wait.
    pub fn next_timer(&self, now: Instant) -> Option<Duration> {
        self.pending_enter
            .map(|at| (at + PASTE_GAP).saturating_duration_since(now))
    }

    /// A terminal event: a key, a paste, the mouse, a resize.
    pub fn on_terminal(&mut self, event: Event, now: &Now) {
        self.at(now);
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => self.on_key(key, now),
            Event::Paste(text) => {
                self.confirm = None;
                if self.editor.search().is_some() {
                    self.editor.accept_search();
                }
                // Whole or not at all, and said: the clipboard still holds all of it.
                if let Err(refused) = self.editor.try_insert(&text) {
                    self.problem(now, &refused.to_string());
                }
            }
            Event::Mouse(mouse) => match mouse.kind {
                MouseEventKind::ScrollUp => self.scroll_by(WHEEL_ROWS as isize),
                MouseEventKind::ScrollDown => self.scroll_by(-(WHEEL_ROWS as isize)),
                _ => {}
            },
            _ => {}
        }
    }

    /// Leaving the newest line: the old "new since" line goes (while at the bottom, so the
    /// view does not move), a new one is due at the next message.
    fn leave_bottom(&mut self) {
        if let Some(id) = self.marker.take() {
            self.store.remove(id);
        }
        self.marker_due = true;
    }

    fn page(&self) -> isize {
        self.pane.1.saturating_sub(1).max(1) as isize
    }

    fn on_key(&mut self, key: KeyEvent, now: &Now) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        if self.pending_enter.is_some() {
            if self.fast_key {
                // The burst goes on: the held Enter was a pasted line break; it stays.
                self.pending_enter = None;
            } else {
                self.resolve_enter(now);
            }
        }
        if self.confirm.is_some() && key.code != KeyCode::Enter {
            self.confirm = None;
            if key.code == KeyCode::Esc {
                return;
            }
        }
        match key.code {
            KeyCode::Char('c') if ctrl => {
                if self.editor.search().is_some() {
                    self.editor.cancel_search();
                } else if self.editor.is_empty() {
                    self.leave(now);
                } else {
                    // Cleared, not lost: Up brings it back.
                    self.editor.take();
                }
            }
            KeyCode::Char('d') if ctrl => {
                if self.editor.is_empty() {
                    self.leave(now);
                } else {
                    self.editor.delete();
                }
            }
            KeyCode::Char('g') if ctrl => self.editor.cancel_search(),
            KeyCode::Char('r') if ctrl => self.editor.search_back(),
            KeyCode::Char('a') if ctrl => self.editor.home(),
            KeyCode::Char('e') if ctrl => self.editor.end(),
            KeyCode::Char('u') if ctrl => self.editor.kill_before(),
            KeyCode::Char('k') if ctrl => self.editor.kill_after(),
            KeyCode::Char('w') if ctrl => self.editor.delete_word(),
            KeyCode::Char('l') if ctrl => self.effects.push(Effect::Redraw),
            KeyCode::Char('z') if ctrl => self.effects.push(Effect::Suspend),
            // Typed before raw mode, Enter reached the terminal's line discipline, which turned
            // it into LF: it arrives as Ctrl-J. It is Enter all the same.
            KeyCode::Char('j') if ctrl => {
                self.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE), now)
            }
            KeyCode::Char('b') if alt => self.editor.word_left(),
            KeyCode::Char('f') if alt => self.editor.word_right(),
            KeyCode::Char(_) if ctrl || alt => {}
            KeyCode::Char(c) => {
                let mut buf = [0u8; 4];
                let s = c.encode_utf8(&mut buf);
                if self.editor.search().is_some() {
                    self.editor.search_type(s);
                } else if self.editor.try_insert(s).is_err() {
                    self.problem(now, "the input is full: send or cut some of it first");
                }
            }
            KeyCode::Enter => {
                if self.editor.search().is_some() {
                    self.editor.accept_search();
                } else if self.fast_key {
                    // Within a burst of keys faster than typing: held as a line break. If
                    // the burst goes on it was a paste the terminal did not bracket, and no
                    // pasted line runs as a command (irssi's paste detection); if it ends
                    // here it was Enter (`tick`).
                    if self.editor.try_insert("\n").is_err() {
                        self.problem(now, "the input is full: send or cut some of it first");
                    } else {
                        self.pending_enter = self.read_at;
                    }
                } else {
                    self.submit(now);
                }
            }
            KeyCode::Esc => self.editor.cancel_search(),
            KeyCode::Backspace if alt => self.editor.delete_word(),
            KeyCode::Backspace => self.editor.backspace(),
            KeyCode::Delete => self.editor.delete(),
            KeyCode::Left if ctrl => self.editor.word_left(),
            KeyCode::Right if ctrl => self.editor.word_right(),
            KeyCode::Left => self.editor.left(),
            KeyCode::Right => self.editor.right(),
            KeyCode::Up => self.editor.up(),
            KeyCode::Down => self.editor.down(),
            KeyCode::Tab => {
                let roster = &self.roster;
                self.editor.tab(|before| complete(before, roster));
            }
            KeyCode::PageUp => self.scroll_by(self.page()),
            KeyCode::PageDown => self.scroll_by(-self.page()),
            // Home and End edit, as in every line editor; with Ctrl or Alt they scroll to the
            // oldest kept message and back to the newest (weechat's Alt-Home and Alt-End).
            KeyCode::Home if ctrl || alt => {
                self.scroll_by(1);
                self.scroll = usize::MAX;
            }
            KeyCode::End if ctrl || alt => self.scroll_by(isize::MIN),
            KeyCode::Home => self.editor.home(),
            KeyCode::End => self.editor.end(),
            _ => {}
        }
    }

    /// The name column for a pane `width` wide: every name that can appear (the roster, you,
    /// the senders kept) takes part, so short forms are unique; rebuilt only when the names
    /// or the width change.
    fn name_column(&mut self, width: usize) -> &NameColumn {
        let stamp = (width, self.names_generation);
        if self.names.as_ref().is_some_and(|(at, _)| *at != stamp) {
            self.names = None;
        }
        let (roster, me, authors) = (&self.roster, &self.me, &self.authors);
        let (_, column) = self.names.get_or_insert_with(|| {
            let mut present = roster.matching("");
            present.extend(me.clone());
            let widest = present.iter().map(String::len).max().unwrap_or(0);
            let known = present.iter().chain(authors.iter()).map(String::as_str);
            (stamp, NameColumn::new(known, widest, cap_for(width)))
        });
        column
    }

    /// How many rows `entry` takes at `width` with a `prefix` column, remembered per entry
    /// until the width or the prefix column changes (scrolling far back stays cheap).
    fn row_count(&mut self, index: usize, width: usize, names: &NameColumn) -> usize {
        let prefix = names.width();
        if self.row_cache.0 != (width, prefix) {
            self.row_cache = ((width, prefix), std::collections::HashMap::new());
        }
        let Some(entry) = self.store.newest(index) else {
            return 0;
        };
        if let Some(&n) = self.row_cache.1.get(&entry.id) {
            return n;
        }
        let n = layout::layout_named(entry, width, names, self.settings.look).len();
        let id = entry.id;
        if self.row_cache.1.len() >= crate::store::MAX_ENTRIES * 2 {
            self.row_cache.1.clear();
        }
        self.row_cache.1.insert(id, n);
        n
    }

    /// The rows of the message pane, `width` by `height`, at the current scroll position
    /// (clamped here to the top of what is stored).
    pub fn visible_rows(&mut self, width: usize, height: usize) -> Vec<Line<'static>> {
        self.pane = (width, height);
        let names = self.name_column(width).clone();
        let hit = self.search.as_ref().and_then(|(_, at)| *at);
        // Pass 1: row counts from the newest entry up, until the window is covered.
        let want = self.scroll.saturating_add(height);
        let mut total = 0;
        let mut counts = Vec::new();
        for index in 0..self.store.len() {
            let n = self.row_count(index, width, &names);
            counts.push(n);
            total += n;
            if total >= want {
                break;
            }
        }
        if total < want {
            self.scroll = total.saturating_sub(height);
        }
        if self.scroll == 0 {
            self.unread = 0;
        }
        // Pass 2: lay out only the entries that reach into the window.
        let (low, high) = (self.scroll, self.scroll + height);
        let mut below = 0;
        let mut chunks: Vec<Vec<Line<'static>>> = Vec::new();
        for (entry, n) in self.store.iter().rev().zip(counts) {
            let (start, end) = (below, below + n);
            below = end;
            if end <= low {
                continue;
            }
            if start >= high {
                break;
            }
            let mut rows = layout::layout_named(entry, width, &names, self.settings.look);
            if hit == Some(entry.id) {
                // The /search match: its separator points at it, with styles or without.
                for row in &mut rows {
                    for span in &mut row.spans {
                        if matches!(span.content.as_ref(), " │ " | " ┃ ") {
                            span.content = " » ".into();
                        }
                    }
                }
            }
            // Rows of this entry below the window's bottom, and above its top.
            rows.truncate(n.saturating_sub(low.saturating_sub(start)));
            let skip_top = end.saturating_sub(high);
            rows.drain(..skip_top.min(rows.len()));
            chunks.push(rows);
        }
        chunks.into_iter().rev().flatten().collect()
    }

    /// The status line's words at any width: server, name, online count, connection state,
    /// and a waiting paste's question or the unread mark.
    pub fn status(&self, now: Instant) -> String {
        self.status_for(now, usize::MAX)
    }

    /// The status line fitted to `width` cells by priority (`status_line.rs`): a waiting
    /// paste's question first, then the connection state with its reason, the unread mark,
    /// your name, the online count, the server; shorter wordings before anything is dropped.
    pub fn status_for(&self, now: Instant, width: usize) -> String {
        let name = sanitize(self.me.as_deref().unwrap_or("-")).into_owned();
        let mut parts = vec![
            Part::new(5, [sanitize(&self.settings.addr).into_owned()]),
            Part::new(3, [name]),
        ];
        if let (Link::Member, Some(n)) = (&self.link, self.online) {
            parts.push(Part::new(4, [format!("{n} online")]));
        }
        let state: Vec<String> = match &self.link {
            Link::Connecting => vec!["connecting...".into()],
            Link::LoggingIn => vec!["logging in...".into()],
            Link::Naming => vec!["choose a name".into()],
            Link::Waiting => vec!["waiting for approval".into(), "waiting".into()],
            Link::Member if self.leaving.is_some() => vec!["leaving...".into()],
            Link::Member => vec!["connected".into()],
            Link::Retrying { at, why, .. } => {
                let secs = at.saturating_duration_since(now).as_secs() + 1;
                vec![
                    format!(
                        "reconnecting in {secs} s (try {}) · /reconnect · Ctrl-C gives up · {why}",
                        self.attempt
                    ),
                    format!("reconnecting in {secs} s · {why}"),
                    format!("retry in {secs} s: {why}"),
                ]
            }
            Link::Ended { .. } => vec![
                "disconnected · /reconnect · Ctrl-C quits".into(),
                "disconnected · /reconnect".into(),
                "disconnected".into(),
            ],
        };
        parts.push(Part::new(1, state));
        if let Some(lines) = self.confirm {
            parts.push(Part::new(
                0,
                [
                    format!("paste of {lines} lines: Enter sends them, Esc goes back"),
                    format!("paste of {lines} lines: Enter sends, Esc back"),
                    format!("{lines} lines: Enter/Esc"),
                ],
            ));
        } else if let (Some((query, Some(_))), true) = (&self.search, self.scroll > 0) {
            parts.push(Part::new(
                2,
                [
                    format!("search {query:?} · /search: older · Ctrl-End: back"),
                    format!("search {query:?}"),
                ],
            ));
        } else if self.scroll > 0 {
            parts.push(Part::new(
                2,
                [
                    format!("more below: {} new", self.unread),
                    format!("↓ {} new", self.unread),
                ],
            ));
        }
        // `[ ... ]` around it when there is room for the brackets.
        let inner = fit(&parts, width.saturating_sub(4));
        if inner.is_empty() {
            fit(&parts, width)
        } else {
            format!("[ {inner} ]")
        }
    }

    /// The prompt before the input text.
    pub fn prompt(&self) -> String {
        if let Some(search) = self.editor.search() {
            let state = match (search.failing, search.found) {
                (false, _) => "search",
                (true, Some(_)) => "no older match",
                (true, None) => "no match",
            };
            format!("({state}) '{}': ", search.query)
        } else if self.link == Link::Naming {
            "name: ".to_owned()
        } else {
            "> ".to_owned()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crossterm::event::KeyEvent;

    fn now() -> Now {
        Now {
            instant: Instant::now(),
            clock: "12:00".to_owned(),
            utc: chrono::Utc::now(),
        }
    }

    fn app() -> App {
        App::new(Settings {
            addr: "127.0.0.1:55555".into(),
            name: Some("bob".into()),
            look: Look::new(false),
            bell: true,
            prefs: FileConfig::default(),
            log_dir: None,
        })
    }

    fn joined() -> App {
        let mut a = app();
        let n = now();
        a.on_net(NetEvent::Connected(dummy_writer()), &n);
        for line in ["NAME? name please", "WELCOME bob 2"] {
            a.on_line(line, &n);
        }
        a.take_effects();
        a
    }

    fn dummy_writer() -> crate::net::Writer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        crate::net::Writer::new(crate::net::Stream::Plain(stream))
    }

    fn key(app: &mut App, code: KeyCode, mods: KeyModifiers) {
        app.on_terminal(Event::Key(KeyEvent::new(code, mods)), &now());
    }

    fn typed(app: &mut App, text: &str) {
        for c in text.chars() {
            key(app, KeyCode::Char(c), KeyModifiers::NONE);
        }
    }

    fn rows(app: &mut App) -> Vec<String> {
        app.visible_rows(80, 30).iter().map(layout::plain).collect()
    }

    #[test]
    fn login_offers_the_name_and_asks_who_is_here() {
        let mut a = app();
        let n = now();
        a.on_line("NAME? choose", &n);
        assert_eq!(a.take_effects(), [Effect::Send("bob".into())]);
        a.on_line("WELCOME bob 3", &n);
        assert_eq!(a.take_effects(), [Effect::Send("/who".into())]);
        assert_eq!(a.link, Link::Member);
        assert!(a.status(n.instant).contains("bob · 3 online · connected"));
    }

    #[test]
    fn ctrl_c_clears_a_line_and_leaves_only_on_an_empty_one() {
        let mut a = joined();
        typed(&mut a, "half a thought");
        key(&mut a, KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(a.editor.text(), "");
        assert!(a.take_effects().is_empty());
        key(&mut a, KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(a.take_effects(), [Effect::Send("/leave".into())]);
        a.on_line("BYE goodbye", &now());
        assert_eq!(a.outcome, Some(Outcome::success()));
    }

    #[test]
    fn lines_typed_before_admission_are_held_until_welcome() {
        // Regression: typed-ahead lines were kept in the input and glued together.
        let mut a = app();
        let n = now();
        a.on_net(NetEvent::Connected(dummy_writer()), &n);
        typed(&mut a, "one");
        key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
        typed(&mut a, "/me two");
        key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
        assert!(a.take_effects().is_empty());
        assert!(a.editor.is_empty());
        a.on_line("NAME? name", &n);
        a.on_line("WELCOME bob 1", &n);
        a.on_line("HIST 2026-12-01T16:05:09.123Z MSG alice - earlier", &n);
        assert_eq!(
            a.take_effects(),
            ["bob", "/who"].map(|l| Effect::Send(l.into()))
        );
        a.on_line("INFO online (1): bob", &n);
        assert_eq!(
            a.take_effects(),
            ["one", "/me two"].map(|l| Effect::Send(l.into()))
        );
        let shown = rows(&mut a);
        let earlier = shown.iter().position(|r| r.contains("earlier")).unwrap();
        let one = shown.iter().position(|r| r.contains("│ one")).unwrap();
        assert!(earlier < one, "{shown:#?}");
    }

    #[test]
    fn ctrl_j_is_enter() {
        // Typed before raw mode, Enter comes as Ctrl-J.
        let mut a = joined();
        typed(&mut a, "one");
        key(&mut a, KeyCode::Char('j'), KeyModifiers::CONTROL);
        typed(&mut a, "two");
        key(&mut a, KeyCode::Char('j'), KeyModifiers::CONTROL);
        assert_eq!(
            a.take_effects(),
            [Effect::Send("one".into()), Effect::Send("two".into())]
        );
    }

    #[test]
    fn own_lines_show_once_as_sent() {
        let mut a = joined();
        typed(&mut a, "hello **all**");
        key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(a.take_effects(), [Effect::Send("hello **all**".into())]);
        let shown = rows(&mut a);
        assert_eq!(
            shown.iter().filter(|r| r.contains("hello")).count(),
            1,
            "{shown:?}"
        );
    }

    #[test]
    fn a_private_to_nobody_shows_the_error_against_it() {
        let mut a = joined();
        typed(&mut a, "/private zed secret");
        key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
        a.take_effects();
        a.on_line("ERROR no-such-user nobody named zed is in the room", &now());
        let shown = rows(&mut a);
        let at = shown.iter().position(|r| r.contains("→*zed*")).unwrap();
        assert!(
            shown[at + 1].contains("✗ not delivered: nobody named zed"),
            "{shown:?}"
        );
        assert!(!shown.iter().any(|r| r.contains("!!")), "{shown:?}");
    }

    #[test]
    fn a_big_paste_waits_for_a_second_enter() {
        let mut a = joined();
        a.on_terminal(Event::Paste("1\n2\n3\n4\n5\n6".into()), &now());
        key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
        assert!(a.take_effects().is_empty());
        assert!(a.status(Instant::now()).contains("paste of 6 lines"));
        key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(a.take_effects().len(), 6);
        assert!(a.editor.is_empty());
    }

    #[test]
    fn a_shutdown_reconnects_with_backoff_and_keeps_the_draft() {
        let mut a = joined();
        typed(&mut a, "draft");
        let n = now();
        a.on_line("BYE server shutting down", &n);
        assert_eq!(a.take_effects(), [Effect::Disconnect]);
        assert!(matches!(a.link, Link::Retrying { .. }));
        assert_eq!(a.editor.text(), "draft");
        a.tick(&n);
        assert!(a.take_effects().is_empty());
        let later = Now {
            instant: n.instant + Duration::from_secs(2),
            ..n.clone()
        };
        a.tick(&later);
        assert_eq!(a.take_effects(), [Effect::Connect]);
        a.on_net(NetEvent::Connected(dummy_writer()), &later);
        a.on_line("NAME? again", &later);
        assert_eq!(a.take_effects(), [Effect::Send("bob".into())]);
        assert_eq!(a.editor.text(), "draft");
    }

    #[test]
    fn a_changed_certificate_on_reconnection_is_not_retried() {
        let mut a = joined();
        let n = now();
        a.on_line("BYE server shutting down", &n);
        let later = Now {
            instant: n.instant + Duration::from_secs(2),
            ..n.clone()
        };
        a.tick(&later);
        assert_eq!(a.take_effects(), [Effect::Disconnect, Effect::Connect]);
        let warning = "\n@@@\nWARNING: SERVER CERTIFICATE HAS CHANGED!\nConnection refused.";
        a.on_net(
            NetEvent::Failed(ExitCode::CertificateChanged, warning.into()),
            &later,
        );
        assert_eq!(a.take_effects(), [Effect::Disconnect]);
        assert!(matches!(
            a.link,
            Link::Ended {
                code: ExitCode::CertificateChanged,
                ..
            }
        ));
        let shown = rows(&mut a);
        assert!(
            shown.iter().any(|r| r.contains("CERTIFICATE HAS CHANGED")),
            "{shown:#?}"
        );
        // No timer brings it back.
        a.tick(&Now {
            instant: later.instant + Duration::from_secs(3600),
            ..later.clone()
        });
        assert!(a.take_effects().is_empty());
        key(&mut a, KeyCode::Char('c'), KeyModifiers::CONTROL);
        let outcome = a.outcome.as_ref().unwrap();
        assert_eq!(outcome.code, ExitCode::CertificateChanged);
        assert_eq!(outcome.message.as_deref(), Some(warning));
        assert!(
            shown
                .iter()
                .any(|r| r.contains("Connection refused; /reconnect to try again")),
            "{shown:#?}"
        );
    }

    #[test]
    fn a_kick_does_not_reconnect() {
        let mut a = joined();
        a.on_line("BYE kicked by the operator", &now());
        assert!(matches!(
            a.link,
            Link::Ended {
                code: ExitCode::Removed,
                ..
            }
        ));
        key(&mut a, KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(a.outcome.as_ref().unwrap().code, ExitCode::Removed);
    }

    #[test]
    fn history_already_on_screen_is_not_repeated_after_a_reconnection() {
        let mut a = joined();
        let n = now();
        a.on_line("MSG alice - seen live", &n);
        a.on_line("LEAVE bob dropped", &n);
        assert!(matches!(
            a.link,
            Link::Retrying {
                code: ExitCode::Lost,
                ..
            }
        ));
        a.take_effects();
        let later = Now {
            instant: n.instant + Duration::from_secs(2),
            utc: n.utc + chrono::Duration::seconds(60),
            ..n.clone()
        };
        a.tick(&later);
        a.on_net(NetEvent::Connected(dummy_writer()), &later);
        a.on_line("NAME? again", &later);
        a.on_line("WELCOME bob 2", &later);
        let old = (n.utc - chrono::Duration::seconds(1)).to_rfc3339();
        let new = (n.utc + chrono::Duration::seconds(30)).to_rfc3339();
        a.on_line(&format!("HIST {old} MSG alice - seen live"), &later);
        a.on_line(&format!("HIST {new} MSG alice - said while away"), &later);
        a.on_line("INFO online (2): alice, bob", &later);
        let shown = rows(&mut a);
        assert_eq!(
            shown.iter().filter(|r| r.contains("seen live")).count(),
            1,
            "{shown:#?}"
        );
        assert_eq!(
            shown
                .iter()
                .filter(|r| r.contains("said while away"))
                .count(),
            1
        );
    }

    #[test]
    fn the_mouse_wheel_scrolls() {
        use crossterm::event::{MouseEvent, MouseEventKind};
        let mut a = joined();
        let n = now();
        for i in 0..50 {
            a.on_line(&format!("MSG alice - line {i}"), &n);
        }
        a.visible_rows(80, 10);
        let wheel = |kind| {
            Event::Mouse(MouseEvent {
                kind,
                column: 0,
                row: 0,
                modifiers: KeyModifiers::NONE,
            })
        };
        a.on_terminal(wheel(MouseEventKind::ScrollUp), &n);
        assert_eq!(a.scroll, WHEEL_ROWS);
        a.on_terminal(wheel(MouseEventKind::ScrollDown), &n);
        assert_eq!(a.scroll, 0);
    }

    #[test]
    fn mentions_and_privates_highlight_and_ring_unless_told_not_to() {
        let mut a = joined();
        let n = now();
        a.on_line("MSG alice - hey Bob, look", &n);
        a.on_line("MSG alice - nothing for bobby", &n);
        a.on_line("PRIV alice bob - psst", &n);
        assert_eq!(a.take_effects(), [Effect::Bell, Effect::Bell]);
        let flags: Vec<bool> = a.store.iter().rev().take(3).map(|e| e.highlight).collect();
        assert_eq!(flags, [true, false, true]);
        let mut quiet = App::new(Settings {
            bell: false,
            ..a.settings.clone()
        });
        quiet.on_line("PRIV alice bob - psst", &n);
        assert!(quiet.take_effects().is_empty());
    }

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let secs: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn mentions_are_whole_words() {
        assert!(mentions("hi bob!", "bob"));
        assert!(mentions("BOB: hi", "bob"));
        assert!(!mentions("bobby", "bob"));
        assert!(!mentions("jim-bob", "bob"));
        assert!(!mentions("anything", ""));
    }

    #[test]
    fn version_2_lines_render() {
        let mut a = joined();
        let n = now();
        a.on_line("HIST 2026-12-01T16:05:09.123Z MSG alice - earlier", &n);
        a.on_line("HIST 2026-12-01T16:06:09.123Z ACT alice waved", &n);
        a.on_line("ACT alice waves", &n);
        a.on_line("NICK alice al", &n);
        let shown = rows(&mut a);
        let text: Vec<&str> = shown.iter().map(|r| r[6..].trim_start()).collect();
        let at = text.iter().position(|r| r.ends_with("earlier")).unwrap();
        assert!(text[at].starts_with("alice │ earlier"), "{text:?}");
        assert!(text[at + 1].starts_with("* │ alice waved"), "{text:?}");
        assert!(
            text[at + 2].contains("history above, live below"),
            "{text:?}"
        );
        // Old history is dated, and so is the return to today.
        assert!(
            text[at - 1].contains("day changed to Tue 01 Dec 2026"),
            "{text:?}"
        );
        assert!(text[at + 3].contains("day changed to "), "{text:?}");
        assert!(text[at + 4].starts_with("* │ alice waves"), "{text:?}");
        assert!(
            text[at + 5].starts_with("-- │ alice is now known as al"),
            "{text:?}"
        );
    }

    #[test]
    fn every_scroll_position_shows_the_right_window() {
        let mut a = joined();
        let n = now();
        for i in 0..40 {
            let words = "word ".repeat(i % 7 * 9);
            a.on_line(&format!("MSG alice - m{i} {words}"), &n);
        }
        let names = a.name_column(50).clone();
        let all: Vec<String> = a
            .store
            .iter()
            .flat_map(|e| layout::layout_named(e, 50, &names, a.look()))
            .map(|l| layout::plain(&l))
            .collect();
        for scroll in 0..all.len() + 5 {
            a.scroll = scroll;
            let got: Vec<String> = a.visible_rows(50, 7).iter().map(layout::plain).collect();
            let end = all.len() - a.scroll.min(all.len() - 7);
            assert_eq!(got, all[end - 7..end], "scroll {scroll}");
        }
    }

    #[test]
    fn look_alike_names_never_look_alike_with_or_without_colors() {
        let mut a = joined();
        let n = now();
        for name in ["trustedadminbot_real", "trustedadminbot_fake"] {
            a.on_line(&format!("JOIN {name}"), &n);
            a.on_line(&format!("MSG {name} - I am the real one"), &n);
        }
        for width in [40, 80, 100, 200] {
            let rows: Vec<String> = a
                .visible_rows(width, 10)
                .iter()
                .map(layout::plain)
                .collect();
            let prefixes: Vec<String> = rows
                .iter()
                .filter(|r| r.contains("I am the real one"))
                .map(|r| r.split('│').next().unwrap().trim().to_owned())
                .collect();
            assert_eq!(prefixes.len(), 2, "{rows:#?}");
            assert_ne!(prefixes[0], prefixes[1], "at {width}: {rows:#?}");
            if width >= 100 {
                assert!(prefixes[0].ends_with("trustedadminbot_real"), "{rows:#?}");
            }
        }
    }

    #[test]
    fn the_name_column_follows_the_members_present() {
        let mut a = joined();
        let n = now();
        let long = "a_rather_long_name_of_25ch";
        a.on_line(&format!("JOIN {long}"), &n);
        a.on_line(&format!("MSG {long} - hello"), &n);
        let wide = a
            .visible_rows(200, 10)
            .iter()
            .map(layout::plain)
            .collect::<Vec<_>>();
        let row = wide.iter().find(|r| r.contains("hello")).unwrap();
        assert!(row.contains(&format!("{long} │ hello")), "{row}");
        a.on_line(&format!("LEAVE {long} quit"), &n);
        a.on_line("MSG alice - after", &n);
        let rows = a
            .visible_rows(200, 10)
            .iter()
            .map(layout::plain)
            .collect::<Vec<_>>();
        let row = rows.iter().find(|r| r.contains("after")).unwrap();
        // Only short names present: the column is narrow again.
        assert!(row.starts_with("12:00  alice │ after"), "{row:?}");
    }

    fn sent(a: &mut App) -> Vec<String> {
        a.take_effects()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Send(line) => Some(line),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_over_long_message_is_sent_in_pieces_that_fit() {
        let mut a = joined();
        a.take_effects();
        let words = "lorem ipsum dolor sit amet ".repeat(400);
        a.on_terminal(Event::Paste(format!("/private alice {words}")), &now());
        key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
        let lines = sent(&mut a);
        assert!(lines.len() >= 3, "{}", lines.len());
        for line in &lines {
            assert!(line.len() <= 4096 && line.starts_with("/private alice "));
        }
        assert!(a.editor.is_empty());
        // Each piece is echoed as sent, none marked failed.
        let own = a.store.iter().filter(|e| e.own).count();
        assert_eq!(own, lines.len());
    }

    #[test]
    fn an_over_long_command_is_refused_before_sending_and_kept() {
        let mut a = joined();
        a.take_effects();
        let line = format!("/nick {}", "x".repeat(5000));
        a.on_terminal(Event::Paste(line.clone()), &now());
        key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
        assert!(sent(&mut a).is_empty());
        assert_eq!(a.editor.text(), line);
        assert!(rows(&mut a)
            .iter()
            .any(|r| r.contains("not sent: the line is 5006 bytes")));
    }

    #[test]
    fn a_paste_over_the_input_cap_is_refused_whole_and_said() {
        let mut a = joined();
        typed(&mut a, "keep me");
        let paste = "a pasted line of some length\n".repeat(10_000);
        a.on_terminal(Event::Paste(paste), &now());
        assert_eq!(a.editor.text(), "keep me");
        let shown = rows(&mut a).join("\n");
        assert!(shown.contains("paste refused: 10001 lines"), "{shown}");
    }

    #[test]
    fn a_line_the_server_finds_too_long_is_marked_not_delivered() {
        let mut a = joined();
        a.take_effects();
        typed(&mut a, "short one");
        key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
        let long = "word ".repeat(600);
        a.on_terminal(Event::Paste(long.trim().to_owned()), &now());
        key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
        a.on_line("ERROR line-too-long line too long", &now());
        let failed: Vec<bool> = a
            .store
            .iter()
            .filter(|e| e.own)
            .map(|e| e.failed.is_some())
            .collect();
        assert_eq!(failed, [false, true]);
        assert!(rows(&mut a).iter().any(|r| r.contains("✗ not delivered")));
    }

    fn with_prefs(prefs: FileConfig) -> App {
        let mut a = App::new(Settings {
            prefs,
            ..app().settings.clone()
        });
        let n = now();
        a.on_net(NetEvent::Connected(dummy_writer()), &n);
        for line in ["NAME? name please", "WELCOME bob 2"] {
            a.on_line(line, &n);
        }
        a.take_effects();
        a
    }

    fn command(a: &mut App, line: &str) {
        a.on_terminal(Event::Paste(line.to_owned()), &now());
        key(a, KeyCode::Enter, KeyModifiers::NONE);
    }

    #[test]
    fn a_who_reply_over_several_lines_is_one_entry() {
        let mut a = joined();
        let n = now();
        let names: Vec<String> = (0..65).map(|i| format!("member{i:02}")).collect();
        a.on_line(
            &format!("INFO online (65): {},", names[..30].join(", ")),
            &n,
        );
        a.on_line(&format!("INFO  {},", names[30..60].join(", ")), &n);
        a.on_line(&format!("INFO  {}", names[60..].join(", ")), &n);
        a.on_line("INFO the operator says hi", &n);
        let who: Vec<&Entry> = a
            .store
            .iter()
            .filter(|e| e.text.contains("member"))
            .collect();
        assert_eq!(who.len(), 1);
        assert_eq!(who[0].text, format!("online (65): {}", names.join(", ")));
        assert!(a.store.iter().any(|e| e.text == "the operator says hi"));
    }

    #[test]
    fn sixty_joins_are_one_row_and_a_message_starts_a_new_run() {
        let mut a = joined();
        let n = now();
        for i in 0..60 {
            a.on_line(&format!("JOIN m{i}"), &n);
        }
        let events: Vec<&Entry> = a.store.iter().filter(|e| e.kind == Kind::Event).collect();
        assert_eq!(events.len(), 1, "{events:#?}");
        assert_eq!(events[0].text, "60 joined: m0, m1, m2, m3, m4 and 55 more");
        a.on_line("MSG m1 - hi", &n);
        a.on_line("LEAVE m2 quit", &n);
        let last = a.store.newest(0).unwrap();
        assert_eq!(last.text, "m2 left (quit)");
        assert_eq!(a.online, Some(2 + 60 - 1));
    }

    #[test]
    fn ignored_names_and_hidden_joins_are_not_shown() {
        let prefs = FileConfig {
            hide_joins: true,
            ..FileConfig::default()
        };
        let mut a = with_prefs(prefs);
        let n = now();
        a.on_line("JOIN carol", &n);
        assert!(!a.store.iter().any(|e| e.text.contains("carol")));
        command(&mut a, "/ignore spammer");
        a.on_line("MSG spammer - buy now", &n);
        a.on_line("PRIV spammer bob - psst", &n);
        a.on_line("MSG carol - real", &n);
        assert!(!a
            .store
            .iter()
            .any(|e| e.text.contains("buy") || e.text == "psst"));
        assert!(a.store.iter().any(|e| e.text == "real"));
        assert!(
            a.take_effects().is_empty(),
            "no bell for an ignored private"
        );
        command(&mut a, "/ignore");
        assert!(a.store.newest(0).unwrap().text.contains("ignored: spammer"));
        command(&mut a, "/unignore SPAMMER");
        a.on_line("MSG spammer - back", &n);
        assert_eq!(a.store.newest(0).unwrap().text, "back");
    }

    #[test]
    fn highlight_words_mark_and_ring() {
        let prefs = FileConfig {
            highlight: vec!["deploy".into()],
            ..FileConfig::default()
        };
        let mut a = with_prefs(prefs);
        a.on_line("MSG alice - the DEPLOY is done", &now());
        assert!(a.store.newest(0).unwrap().highlight);
        assert_eq!(a.take_effects(), [Effect::Bell]);
        a.on_line("MSG alice - redeployed", &now());
        assert!(!a.store.newest(0).unwrap().highlight);
    }

    #[test]
    fn r_answers_the_last_private() {
        let mut a = joined();
        a.take_effects();
        command(&mut a, "/r too early");
        assert!(sent(&mut a).is_empty());
        // Refused, and kept for editing.
        assert_eq!(a.editor.take(), "/r too early");
        a.on_line("PRIV carol bob - are you there?", &now());
        a.take_effects();
        command(&mut a, "/r yes, here");
        assert_eq!(sent(&mut a), ["/private carol yes, here"]);
        assert!(a.editor.is_empty());
    }

    #[test]
    fn clear_empties_the_pane() {
        let mut a = joined();
        a.on_line("MSG alice - something", &now());
        command(&mut a, "/clear");
        assert!(a.store.is_empty());
        a.on_line("MSG alice - after", &now());
        assert_eq!(a.store.len(), 1);
    }

    #[test]
    fn search_scrolls_to_the_newest_match_then_older_ones() {
        let mut a = joined();
        let n = now();
        for i in 0..100 {
            a.on_line(&format!("MSG alice - line {i}"), &n);
        }
        a.visible_rows(80, 10);
        command(&mut a, "/search LINE 1");
        let rows: Vec<String> = a.visible_rows(80, 10).iter().map(layout::plain).collect();
        assert!(a.scroll > 0);
        assert!(rows.iter().any(|r| r.contains(" » line 19")), "{rows:#?}");
        assert!(a.status(n.instant).contains("search \"LINE 1\""));
        command(&mut a, "/search");
        let rows: Vec<String> = a.visible_rows(80, 10).iter().map(layout::plain).collect();
        assert!(rows.iter().any(|r| r.contains(" » line 18")), "{rows:#?}");
        command(&mut a, "/search no such words");
        assert!(a.store.newest(0).unwrap().text.contains("no match"));
    }

    #[test]
    fn a_line_marks_what_is_new_since_you_scrolled_up() {
        let mut a = joined();
        let n = now();
        for i in 0..50 {
            a.on_line(&format!("MSG alice - old {i}"), &n);
        }
        a.visible_rows(80, 10);
        key(&mut a, KeyCode::PageUp, KeyModifiers::NONE);
        a.on_line("MSG alice - new one", &n);
        a.on_line("MSG alice - new two", &n);
        let texts: Vec<&str> = a
            .store
            .iter()
            .rev()
            .take(3)
            .map(|e| e.text.as_str())
            .collect();
        assert_eq!(
            texts,
            ["new two", "new one", "──── new since you scrolled up ────"]
        );
        // Scrolling up again moves the line.
        key(&mut a, KeyCode::End, KeyModifiers::CONTROL);
        a.visible_rows(80, 10);
        key(&mut a, KeyCode::PageUp, KeyModifiers::NONE);
        a.on_line("MSG alice - newer", &n);
        let markers = a
            .store
            .iter()
            .filter(|e| e.text.contains("new since"))
            .count();
        assert_eq!(markers, 1);
        assert_eq!(
            a.store.newest(1).unwrap().text,
            "──── new since you scrolled up ────"
        );
    }

    #[test]
    fn keys_faster_than_typing_are_a_paste_and_run_nothing() {
        let mut a = joined();
        a.take_effects();
        let t0 = Instant::now();
        let mut at = t0;
        let mut feed = |a: &mut App, code: KeyCode, gap_us: u64| {
            at += Duration::from_micros(gap_us);
            let event = Event::Key(KeyEvent::new(code, KeyModifiers::NONE));
            a.on_terminal_read(event, at, &now());
        };
        // A paste without brackets: "hi", Enter, "/leave", Enter, "x", microseconds apart.
        feed(&mut a, KeyCode::Char('h'), 0);
        for code in [KeyCode::Char('i'), KeyCode::Enter]
            .into_iter()
            .chain("/leave".chars().map(KeyCode::Char))
            .chain([KeyCode::Enter, KeyCode::Char('x')])
        {
            feed(&mut a, code, 20);
        }
        assert!(sent(&mut a).is_empty());
        assert_eq!(a.editor.text(), "hi\n/leave\nx");
        // Typed at a person's pace, Enter sends (the block: every line as text).
        feed(&mut a, KeyCode::Enter, 200_000);
        assert_eq!(sent(&mut a), ["hi", "//leave", "x"]);
        // A fast "ok" + Enter at the end of a burst is Enter, once the burst is over.
        feed(&mut a, KeyCode::Char('o'), 200_000);
        feed(&mut a, KeyCode::Char('k'), 20);
        feed(&mut a, KeyCode::Enter, 20);
        assert!(sent(&mut a).is_empty());
        let later = Now {
            instant: at + PASTE_GAP,
            ..now()
        };
        assert!(a.next_timer(at).is_some());
        a.tick(&later);
        assert_eq!(sent(&mut a), ["ok"]);
        assert!(a.editor.is_empty());
    }

    #[test]
    fn logging_writes_plain_lines_with_times() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = App::new(Settings {
            log_dir: Some(dir.path().to_owned()),
            ..app().settings.clone()
        });
        let n = now();
        a.on_net(NetEvent::Connected(dummy_writer()), &n);
        a.on_line("NAME? name please", &n);
        a.on_line("WELCOME bob 2", &n);
        command(&mut a, "/log on");
        a.on_line("MSG alice - hi \x1b[31mthere", &n);
        a.on_line("PRIV alice bob - psst", &n);
        command(&mut a, "/log off");
        a.on_line("MSG alice - not logged", &n);
        let file = dir.path().join("127.0.0.1_55555.log");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(" <alice> hi [31mthere\n"), "{text}");
        assert!(text.contains(" [private] <alice -> bob> psst\n"), "{text}");
        assert!(
            !text.contains("not logged") && !text.contains('\x1b'),
            "{text}"
        );
        assert!(
            text.lines()
                .all(|l| l.starts_with("--- ") || l.starts_with("20")),
            "{text}"
        );
    }

    #[test]
    fn history_times_follow_the_time_format() {
        let prefs = FileConfig {
            time_format: crate::clock::TimeFormat::parse("%H:%M:%S").unwrap(),
            ..FileConfig::default()
        };
        let mut a = with_prefs(prefs);
        a.on_line("HIST 2026-12-01T16:05:09.123Z MSG alice - earlier", &now());
        let entry = a.store.iter().find(|e| e.text == "earlier").unwrap();
        assert!(entry.time.ends_with(":05:09"), "{:?}", entry.time);
    }

    #[test]
    fn home_and_end_edit_the_input() {
        let mut a = joined();
        typed(&mut a, "ello");
        key(&mut a, KeyCode::Home, KeyModifiers::NONE);
        typed(&mut a, "h");
        key(&mut a, KeyCode::End, KeyModifiers::NONE);
        typed(&mut a, "!");
        assert_eq!(a.editor.text(), "hello!");
        assert_eq!(a.scroll, 0);
    }

    #[test]
    fn scrolled_up_the_view_stays_and_counts_unread() {
        let mut a = joined();
        let n = now();
        for i in 0..100 {
            a.on_line(&format!("MSG alice - line {i}"), &n);
        }
        let small = |a: &mut App| -> Vec<String> {
            a.visible_rows(80, 10).iter().map(layout::plain).collect()
        };
        small(&mut a);
        key(&mut a, KeyCode::PageUp, KeyModifiers::NONE);
        let before = small(&mut a);
        assert!(!before.last().unwrap().contains("line 99"), "{before:?}");
        a.on_line("MSG alice - new one", &n);
        assert_eq!(small(&mut a), before);
        assert!(a.status(n.instant).contains("1 new"));
        key(&mut a, KeyCode::End, KeyModifiers::CONTROL);
        assert!(small(&mut a).last().unwrap().contains("new one"));
        key(&mut a, KeyCode::Home, KeyModifiers::ALT);
        assert!(small(&mut a)
            .iter()
            .any(|r| r.contains("you are in as bob")));
    }
}
