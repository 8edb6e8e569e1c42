//! The protocol brain, shared by both interfaces (The Elm Architecture, as ratatui describes
//! it): one message type ([`Msg`]), one [`Brain::update`] that changes the state and returns
//! what must happen outside ([`Effect`]s), and views that only read the state (the full screen
//! in `tui/`, line mode in `line/`). The login (name, waiting room, admission), every server
//! line, reconnecting, leaving and what each event shows (the [`Entry`]s in the [`Store`]) are
//! decided here, once. It never touches a socket, a terminal or the clock: events come in with
//! the time ([`Now`]).
//!
//! # The connection, as [`Link`] states
//! `Connecting -> LoggingIn -> (Naming) -> (Waiting) -> Member`. When the view reconnects
//! ([`Settings::reconnect`], the full screen), a connection lost, or ended by the server without
//! a kick (a shutdown), goes to `Retrying` with backoff 1, 2, 4 ... 30 s; a kick or a denial goes
//! to `Ended`, where only `/reconnect` connects again. The scrollback and the name survive all of
//! it; the same name is offered again at the next `NAME?`. When it does not (line mode), every
//! end is an [`Outcome`] at once.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use chat_common::framing::DEFAULT_MAX_LINE;
use chat_common::protocol::v3::{split_tags, V3Msg, V3ParseError, VERSION};
use chat_common::protocol::{
    parse_request, validate_name, ErrorCode, LeaveReason, Request, ServerMsg,
};
use chat_common::sanitize::sanitize;

use std::path::PathBuf;

use super::clock::{day_changed, DayLines, TimeFormat};
use super::compose::{self, Local, Plan};
use super::crowd::{Crowd, RUN_SECONDS};
use super::filter::Filter;
use super::logfile::Log;
use super::query::Query;
use super::roster::{parse_who_header, Roster};
use super::search::{self, Search, Step};
use super::session::{SeenIds, Version};
pub use super::session::{SessionToken, HELLO_TIMEOUT, MAX_IDS, MAX_PENDING_ECHOES};
use super::split::split_request;
use super::store::{Entry, Kind, Store};
use super::who::{Step as WhoStep, WhoReply};
use crate::config_file::FileConfig;
use crate::exit::{ExitCode, Outcome};
use crate::net::Incoming;

/// How long to wait for `BYE` after sending `/leave` before ending anyway; in version 3 also
/// how long `/leave` waits for the `ECHO` of lines already said (so it cannot overtake them).
/// A version 3 session closed before its `/leave` was read is not gone but dropped, kept in
/// the room for the resume window, so this is not short.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest wait between two reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long an own private stays a candidate for an `ERROR no-such-user` answer.
const PRIVATE_ANSWER_WINDOW: Duration = Duration::from_secs(30);

/// Own privates remembered for matching errors, at most.
const MAX_PENDING_PRIVATES: usize = 256;

/// Lines typed ahead before admission, held to be sent once admitted, at most.
pub const MAX_HELD: usize = 100;

/// What the text of a line in the user's name that this client did not send starts with.
pub const NOT_YOURS: &str = "not sent by this client, though in your name:";

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

impl Now {
    /// The current moment, read from the system clocks (views call this; the brain never does).
    pub fn read() -> Now {
        Now::read_in(&TimeFormat::default_time())
    }

    /// The current moment, with the time column in `format` (`time_format` of config.toml).
    pub fn read_in(format: &TimeFormat) -> Now {
        let local = chrono::Local::now();
        Now {
            instant: Instant::now(),
            clock: format.format(&local),
            utc: local.with_timezone(&chrono::Utc),
        }
    }
}

/// Where the connection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// A connection attempt is under way.
    Connecting,
    /// Connected; the server has not admitted us yet.
    LoggingIn,
    /// The server asked for a name and the view asks the user.
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

/// Everything that can happen to the brain: the one message type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// The connection attempt succeeded; `tls` describes the TLS session, if any.
    Connected {
        /// `TLS 1.3, TLS13_AES_256_GCM_SHA384`, or `None` for plain TCP.
        tls: Option<String>,
    },
    /// The connection attempt failed: the exit status it stands for and why.
    Failed(ExitCode, String),
    /// One framed line from the server.
    Line(Incoming),
    /// The connection ended: at end of stream (`None`) or on an error (why).
    Closed(Option<String>),
    /// The user entered `text` (one line, or a pasted block); `confirmed` when a long block was
    /// already confirmed (line mode never asks).
    Enter {
        /// What the input held.
        text: String,
        /// A block over [`compose::CONFIRM_LINES`] lines may be sent.
        confirmed: bool,
    },
    /// Standard input ended (line mode).
    InputEnded,
    /// The user (Ctrl-C or Ctrl-D on an empty line) or the system (SIGTERM, SIGHUP) asks to
    /// leave.
    Leave,
    /// Time passed: timers may be due.
    Tick,
    /// Back to the room from a conversation (the full screen's Esc; `/query` alone).
    Room,
}

/// What the view must do.
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
    /// The entered text was used (sent, held, or a name refused): clear the input.
    TakeInput,
    /// A pasted block of this many lines waits for confirmation (a second Enter).
    AskConfirm(usize),
    /// The entry with this id changed (an own private was refused, a `/who` reply or a run
    /// of joins grew).
    Updated(u64),
    /// A command for the view itself (`/clear`, `/search`).
    View(Local),
    /// Keep this session token for `name` at this server (protocol version 3).
    SaveToken(SessionToken),
    /// Drop the session token of `name` at this server.
    ForgetToken {
        /// The member's name.
        name: String,
    },
}

/// How the view wants the brain to behave.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The server's address, for notices and the status line.
    pub addr: String,
    /// The name to offer first (`--name`).
    pub name: Option<String>,
    /// Ring the bell for mentions and privates.
    pub bell: bool,
    /// Reconnect after a drop (full screen); otherwise every end is final (line mode).
    pub reconnect: bool,
    /// A refused name can be asked for again (a person at a terminal without `--name`);
    /// otherwise a refused name ends the run with status 4.
    pub ask_again: bool,
    /// Ask the server who is here after admission (`/who`), for the online count and
    /// completion.
    pub who_on_join: bool,
    /// What `/help` adds about the view's own keys, if anything.
    pub keys_help: Option<&'static str>,
    /// Speak protocol version 3 when the server does (`HELLO 3`, tags, tokens, resume).
    pub hello: bool,
    /// The session tokens kept for this server, by name.
    pub tokens: Vec<SessionToken>,
    /// The configuration file's preferences (`config_file.rs`): the line limit, time and
    /// date formats, highlight words, the ignore list, hidden joins, logging.
    pub prefs: FileConfig,
    /// Where log files go (`None`: nowhere found; `/log on` says so).
    pub log_dir: Option<PathBuf>,
    /// Runs of joins and leaves, and a `/who` reply over several lines, are one entry that
    /// grows (`Effect::Updated`): the full screen; line mode prints each line as it comes.
    pub coalesce: bool,
}

/// The whole protocol state of a client.
#[derive(Debug)]
pub struct Brain {
    settings: Settings,
    /// Every shown line, as what was said.
    pub store: Store,
    /// The names online, for completion.
    pub roster: Roster,
    /// The connection's state.
    pub link: Link,
    /// The name in the room (or the last one we had).
    me: Option<String>,
    /// The name to offer at `NAME?`.
    wanted: Option<String>,
    /// The name last offered.
    offered: Option<String>,
    /// Why the server refused the name last offered (until the next `NAME?`).
    refused: Option<String>,
    /// Members online as the server last said, adjusted by JOIN and LEAVE.
    online: Option<usize>,
    /// Lines sent before admission, to send once admitted (at most [`MAX_HELD`]).
    held: Vec<String>,
    /// Admitted: send the held lines at the first line that is not HIST.
    flush_held: bool,
    /// Own privates not yet known to be delivered: entry id, lowercase target, when sent.
    pending_privates: VecDeque<(u64, String, Instant)>,
    /// HIST lines are arriving (a separator comes before the first live line).
    in_history: bool,
    /// When the last live line arrived: history older than this is already on screen.
    last_live: Option<chrono::DateTime<chrono::Utc>>,
    /// Reconnection attempts since the last admission.
    pub attempt: u32,
    /// `/leave` was sent: end when the server confirms, or at this deadline.
    leaving: Option<Instant>,
    /// The user left while own lines still awaited their `ECHO` (version 3): `/leave` goes when
    /// they are all in the room, or at this deadline, so nothing said is overtaken by the
    /// leave.
    leave_after_echoes: Option<Instant>,
    /// The protocol version of the current connection.
    version: Version,
    /// Session tokens by lowercase name.
    tokens: HashMap<String, SessionToken>,
    /// `RESUME` was sent on this connection.
    resuming: bool,
    /// The next `NAME?` is a version 2 server's answer to `HELLO 3` (taken for a bad name),
    /// and the prompt was already acted on.
    skip_name_query: bool,
    /// The id of the newest message received (version 3), for the next `RESUME`.
    last_id: Option<String>,
    /// Ids already shown (or given to own lines).
    ids: SeenIds,
    /// Own lines sent in version 3 awaiting their `ECHO`, oldest first: entry ids.
    awaiting_echo: VecDeque<u64>,
    /// Own messages recently sent: entry id, wire length, when sent; an `ERROR
    /// line-too-long` (a server with a lower limit than `max_line`) marks the longest.
    recent_own: VecDeque<(u64, usize, Instant)>,
    /// The ignore list, hidden joins and highlight words.
    pub filter: Filter,
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
    /// The log file, while logging.
    log: Option<Log>,
    /// The open conversation (`/query NAME`), if any.
    query: Option<Query>,
    /// The full screen's `/search`: what is searched and the match shown.
    search: Option<Search>,
    effects: Vec<Effect>,
    /// Set when the interface should end, with how.
    pub outcome: Option<Outcome>,
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

/// Whether a `BYE` says that this session was resumed by another connection (version 3's
/// takeover: `BYE resumed elsewhere`). Resuming it back by itself would make two clients take
/// the session from each other for ever, so the client waits for `/reconnect`.
fn bye_is_takeover(text: &str) -> bool {
    text.to_ascii_lowercase().contains("resumed elsewhere")
}

/// The name a `/nick` line asks for, when the line is a `/nick` with anything after it.
fn nick_argument(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('/')?;
    let (word, args) = rest.split_once(' ').unwrap_or((rest, ""));
    let args = args.trim_matches(' ');
    (word.eq_ignore_ascii_case("nick") && !args.is_empty()).then_some(args)
}

impl Brain {
    /// A new brain, about to connect.
    pub fn new(settings: Settings) -> Self {
        let wanted = settings.name.clone();
        let filter = Filter::new(
            &settings.prefs.ignore,
            settings.prefs.hide_joins,
            &settings.prefs.highlight,
        );
        let tokens = settings
            .tokens
            .iter()
            .map(|t| (t.name.to_ascii_lowercase(), t.clone()))
            .collect();
        Brain {
            settings,
            store: Store::new(),
            roster: Roster::new(),
            link: Link::Connecting,
            me: None,
            wanted,
            offered: None,
            refused: None,
            online: None,
            held: Vec::new(),
            flush_held: false,
            pending_privates: VecDeque::new(),
            in_history: false,
            last_live: None,
            attempt: 0,
            leaving: None,
            leave_after_echoes: None,
            version: Version::Unasked,
            tokens,
            resuming: false,
            skip_name_query: false,
            last_id: None,
            ids: SeenIds::default(),
            awaiting_echo: VecDeque::new(),
            recent_own: VecDeque::new(),
            filter,
            who: None,
            crowd: None,
            days: DayLines::new(),
            today: chrono::Local::now().date_naive(),
            local_now: chrono::Local::now(),
            last_private_from: None,
            log: None,
            query: None,
            search: None,
            effects: Vec::new(),
            outcome: None,
        }
    }

    /// Whether the current connection speaks protocol version 3.
    pub fn speaks_v3(&self) -> bool {
        self.version == Version::V3
    }

    /// The session to remember for the current name, if the server gave it a token: its
    /// token and the id of the last message received.
    pub fn session(&self) -> Option<SessionToken> {
        let name = self.me.as_deref().or(self.wanted.as_deref())?;
        let kept = self.tokens.get(&name.to_ascii_lowercase())?;
        Some(SessionToken {
            last_id: self.last_id.clone().or_else(|| kept.last_id.clone()),
            ..kept.clone()
        })
    }

    /// The settings the brain runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The name in the room (or the last one we had).
    pub fn me(&self) -> Option<&str> {
        self.me.as_deref()
    }

    /// Members online, while in the room.
    pub fn online(&self) -> Option<usize> {
        match self.link {
            Link::Member => self.online,
            _ => None,
        }
    }

    /// Whether `/leave` was sent and the answer is awaited.
    pub fn is_leaving(&self) -> bool {
        self.leaving.is_some() || self.leave_after_echoes.is_some()
    }

    /// Whether the user's next line is wanted: a name while naming, a chat line in the room.
    pub fn wants_input(&self) -> bool {
        self.outcome.is_none()
            && !self.is_leaving()
            && matches!(self.link, Link::Naming | Link::Member)
    }

    /// Handles one message and returns what the view must do, in order.
    pub fn update(&mut self, msg: Msg, now: &Now) -> Vec<Effect> {
        self.at(now);
        match msg {
            Msg::Connected { tls } => {
                if let Some(tls) = tls {
                    self.notice(now, &format!("secured with {tls}"));
                }
                if self.link == Link::Connecting {
                    self.link = Link::LoggingIn;
                }
                self.version = if self.settings.hello {
                    Version::Unasked
                } else {
                    Version::V2
                };
                self.resuming = false;
                self.skip_name_query = false;
            }
            Msg::Failed(code, why) => self.failed(now, code, why),
            Msg::Line(Incoming::Line(line)) => self.on_line(&line, now),
            Msg::Line(Incoming::TooLong) => self.note(
                now,
                Kind::Unparsed,
                "(an over-long line from the server was skipped)",
            ),
            Msg::Line(Incoming::BadUtf8) => self.note(
                now,
                Kind::Unparsed,
                "(a line that is not UTF-8 was skipped)",
            ),
            Msg::Closed(why) => self.closed(now, why),
            Msg::Enter { text, confirmed } => self.enter(now, &text, confirmed),
            Msg::InputEnded => {
                if self.link == Link::Naming && !self.settings.ask_again {
                    self.effects.push(Effect::Disconnect);
                    self.outcome = Some(Outcome::fail(
                        ExitCode::Usage,
                        "no name given: standard input ended (use --name NAME)",
                    ));
                } else {
                    self.leave(now);
                }
            }
            Msg::Leave => self.leave(now),
            Msg::Tick => self.tick(now),
            Msg::Room => {
                if self.query.is_some() {
                    self.close_query(now);
                }
            }
        }
        std::mem::take(&mut self.effects)
    }

    fn send(&mut self, line: impl Into<String>) {
        self.effects.push(Effect::Send(line.into()));
    }

    /// Sets the wall clock of the event being handled.
    fn at(&mut self, now: &Now) {
        self.local_now = now.utc.with_timezone(&chrono::Local);
        self.today = self.local_now.date_naive();
    }

    /// Stores `entry`: after a day-change line when its day is not the last one shown's
    /// (dating old history too), and logged when logging.
    fn push(&mut self, mut entry: Entry) -> u64 {
        let date = *entry.date.get_or_insert(self.today);
        if entry.kind != Kind::Separator {
            if let Some(day) = self.days.next(date, self.today) {
                // A separator: line mode has the full date on every history line already.
                let text = format!(
                    "──── {} ────",
                    day_changed(day, &self.settings.prefs.date_format)
                );
                let mut line = Entry::new("", Kind::Separator, &text);
                line.date = Some(day);
                line.history = entry.history;
                self.store.push(line);
            }
        }
        if !entry.history {
            self.log_entry(&entry);
        }
        if let Some(query) = &mut self.query {
            query.count(&entry);
        }
        self.store.push(entry)
    }

    /// Writes `entry` to the log, if logging; a failed write stops logging, said once.
    fn log_entry(&mut self, entry: &Entry) {
        let Some(log) = &mut self.log else { return };
        let text = log_text(entry, self.me.as_deref().unwrap_or("you"));
        if let Err(e) = log.write(&self.local_now, &text) {
            let path = log.path().display().to_string();
            self.log = None;
            let clock = self.settings.prefs.time_format.format(&self.local_now);
            let text = format!("logging stopped: cannot write {path}: {e}");
            self.store.push(Entry::new(&clock, Kind::Error, &text));
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

    /// Whether the conversation is being logged.
    pub fn is_logging(&self) -> bool {
        self.log.is_some()
    }

    /// `/clear`: forgets the stored lines (the view empties its pane or its terminal).
    pub fn clear(&mut self) {
        self.store.clear();
        (self.who, self.crowd, self.search) = (None, None, None);
        self.days = DayLines::new();
    }

    /// The open conversation (`/query NAME`), if any.
    pub fn query(&self) -> Option<&Query> {
        self.query.as_ref()
    }

    /// Whether the current view shows `entry`: everything in the room, only the
    /// conversation's privates (and errors) in a conversation.
    pub fn shows(&self, entry: &Entry) -> bool {
        self.query.as_ref().is_none_or(|q| q.shows(entry))
    }

    /// `/query NAME`: opens the conversation with NAME (said either way).
    fn open_query(&mut self, now: &Now, name: &str) {
        match Query::open(name) {
            Ok(query) => {
                let with = query.with().to_owned();
                self.query = Some(query);
                self.search = None;
                let absent = self.me.is_some()
                    && !self
                        .roster
                        .matching(&with)
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(&with));
                let note = if absent {
                    " (not online now: lines to them are refused until they are)"
                } else {
                    ""
                };
                self.notice(
                    now,
                    &format!(
                        "talking privately with {with}{note}: plain lines go to {with} only; \
                         /query alone goes back to the room"
                    ),
                );
                self.effects.push(Effect::View(Local::Query(Some(with))));
            }
            Err(refusal) => self.problem(now, &refusal.0),
        }
    }

    /// `/query` alone (or Esc in the full screen): back to the room; says what it missed.
    fn close_query(&mut self, now: &Now) {
        let Some(query) = self.query.take() else {
            self.notice(
                now,
                "in the room already (/query NAME talks privately with NAME)",
            );
            return;
        };
        self.search = None;
        self.notice(
            now,
            &format!(
                "back in the room (left the conversation with {}; {} new in the room meanwhile)",
                query.with(),
                query.unread()
            ),
        );
        self.effects.push(Effect::View(Local::Query(None)));
    }

    /// The full screen's `/search TEXT` (`/search` alone: the next older match): the entry
    /// to show, if any; no match is said in the pane.
    pub fn search_step(&mut self, now: &Now, text: &str) -> Option<u64> {
        let query = self.query.clone();
        let shown = |e: &Entry| query.as_ref().is_none_or(|q| q.shows(e));
        let Some((found, step)) = Search::step(self.search.as_ref(), text, &self.store, shown)
        else {
            self.notice(now, "usage: /search TEXT (then /search for older matches)");
            return None;
        };
        let query = found.query.clone();
        self.search = Some(found);
        match step {
            Step::Found(id) => Some(id),
            Step::NoMatch => {
                self.notice(now, &format!("{}{query}: no match", search::NOTE));
                None
            }
            Step::NoOlder => {
                self.notice(now, &format!("{}{query}: no older match", search::NOTE));
                None
            }
        }
    }

    /// The full screen's search: its text and the match shown, if any.
    pub fn search(&self) -> Option<&Search> {
        self.search.as_ref()
    }

    /// Line mode's `/search TEXT`: says how many kept lines hold TEXT and returns their ids,
    /// oldest first (at most [`search::MAX_LISTED`], the newest), for the view to print.
    pub fn search_list(&mut self, now: &Now, text: &str) -> Vec<u64> {
        if text.is_empty() {
            self.notice(
                now,
                "usage: /search TEXT (prints the kept lines holding TEXT)",
            );
            return Vec::new();
        }
        let (found, left_out) = search::matches(&self.store, text);
        let ids: Vec<u64> = found.iter().map(|e| e.id).collect();
        let note = match (ids.len(), left_out) {
            (0, _) => format!("{}{text}: no match", search::NOTE),
            (n, 0) => format!("{}{text}: {n} kept line(s), oldest first:", search::NOTE),
            (n, more) => format!(
                "{}{text}: the newest {n} kept lines, oldest first ({more} older not shown):",
                search::NOTE
            ),
        };
        self.notice(now, &note);
        ids
    }

    fn note(&mut self, now: &Now, kind: Kind, text: &str) {
        self.push(Entry::new(&now.clock, kind, text));
    }

    /// A notice from the client itself (`connecting to ...`).
    pub fn notice(&mut self, now: &Now, text: &str) {
        self.note(now, Kind::Notice, text);
    }

    /// An error shown where messages are (a view's own refusals use it too).
    pub fn problem(&mut self, now: &Now, text: &str) {
        self.note(now, Kind::Error, text);
    }

    fn failed(&mut self, now: &Now, code: ExitCode, why: String) {
        if code != ExitCode::Unreachable {
            // The server's certificate (changed, untrusted, expired, wrong host) or the local
            // setup: trying again cannot help, so only `/reconnect` does.
            self.stop(now, code, &why, false);
            return;
        }
        if !self.settings.reconnect {
            self.effects.push(Effect::Disconnect);
            self.outcome = Some(Outcome::fail(code, why));
            return;
        }
        // A failed attempt only updates the status line: the pane already says why the
        // connection went. Giving up now means the connection is lost (status 6).
        self.attempt = self.attempt.saturating_add(1);
        let wait = backoff(self.attempt);
        self.effects.push(Effect::Disconnect);
        self.link = Link::Retrying {
            at: now.instant + wait,
            code: ExitCode::Lost,
            why,
        };
    }

    fn closed(&mut self, now: &Now, why: Option<String>) {
        if self.is_leaving() {
            self.outcome = Some(Outcome::success());
            return;
        }
        if matches!(self.link, Link::Ended { .. } | Link::Retrying { .. }) {
            return;
        }
        if let (None, Some(refusal)) = (&why, &self.refused) {
            if !self.settings.ask_again {
                let name = self.offered.clone().unwrap_or_default();
                let why = format!("name {name:?} refused: {refusal}");
                self.stop(now, ExitCode::Refused, &why, false);
                return;
            }
        }
        let why = match why {
            Some(why) => format!("lost the connection: {why}"),
            None if self.link == Link::Member => "the server closed the connection".to_owned(),
            None => "the server closed the connection before admitting you".to_owned(),
        };
        self.stop(now, ExitCode::Lost, &why, true);
    }

    /// The connection is over, for `why`: retry (`retry`, when the view reconnects), wait for
    /// `/reconnect`, or end (line mode).
    fn stop(&mut self, now: &Now, code: ExitCode, why: &str, retry: bool) {
        self.effects.push(Effect::Disconnect);
        if !self.settings.reconnect {
            self.outcome = Some(Outcome::fail(code, why));
        } else if retry {
            self.retry(now, why);
        } else {
            self.end(now, code, why);
        }
    }

    /// Schedules the next attempt with backoff. Giving up while retrying exits with status 6
    /// (the connection was lost), whatever ended it (`exit.rs`).
    fn retry(&mut self, now: &Now, why: &str) {
        self.attempt = self.attempt.saturating_add(1);
        let wait = backoff(self.attempt);
        self.problem(now, &format!("{why}; reconnecting in {} s", wait.as_secs()));
        self.link = Link::Retrying {
            at: now.instant + wait,
            code: ExitCode::Lost,
            why: why.to_owned(),
        };
    }

    /// Disconnected for good (a kick, a denial): only `/reconnect` connects again.
    fn end(&mut self, now: &Now, code: ExitCode, why: &str) {
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
    }

    /// `/reconnect`, or a retry that is due: a new connection attempt now.
    fn reconnect(&mut self, now: &Now) {
        if matches!(
            self.link,
            Link::Member | Link::Waiting | Link::LoggingIn | Link::Naming | Link::Connecting
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
    fn tick(&mut self, now: &Now) {
        if let Version::Asked { prompt, at, acted } = &self.version {
            if now.instant >= *at {
                // Nobody answered `HELLO 3`: a version 1 or 2 server (or a person).
                let (prompt, acted) = (prompt.clone(), *acted);
                self.version = Version::V2;
                if !acted {
                    self.name_query(now, &prompt);
                }
            }
        }
        if let Link::Retrying { at, .. } = self.link {
            if now.instant >= at {
                self.reconnect(now);
            }
        }
        if self.leave_after_echoes.is_some_and(|at| now.instant >= at) {
            self.send_leave(now);
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

    fn is_me(&self, name: &str) -> bool {
        self.me
            .as_deref()
            .is_some_and(|me| me.eq_ignore_ascii_case(name))
    }

    /// One line from the server.
    fn on_line(&mut self, raw: &str, now: &Now) {
        // A version 2 line never starts with `@`; a prefix on any line is read and set aside.
        let (tags, line) = split_tags(raw);
        let id = tags.and_then(|t| t.id()).map(str::to_owned);
        let time = tags.and_then(|t| t.time()).map(str::to_owned);
        match V3Msg::parse(line) {
            Ok(v3) => return self.on_v3(now, v3, raw),
            Err(V3ParseError::NotV3) => {}
            Err(_) => return self.note(now, Kind::Unparsed, raw),
        }
        let Ok(msg) = ServerMsg::parse(line) else {
            // A version 3 replay may carry a PRIV in HIST, which a version 2 reader refuses.
            if let Some((time, inner)) = line.strip_prefix("HIST ").and_then(|r| r.split_once(' '))
            {
                if matches!(ServerMsg::parse(inner), Ok(ServerMsg::Priv { .. })) && id.is_some() {
                    if id.as_deref().is_some_and(|id| self.ids.contains(id)) {
                        return;
                    }
                    return self.history(now, time, inner, id.as_deref());
                }
            }
            self.note(now, Kind::Unparsed, raw);
            return;
        };
        if let Version::Asked { prompt, acted, .. } = &self.version {
            // Anything but `HELLO 3`: a version 1 or 2 server. Its refusal of `HELLO 3` is
            // not shown, so the session looks exactly as a version 2 one.
            let (prompt, acted) = (prompt.clone(), *acted);
            self.version = Version::V2;
            match msg {
                ServerMsg::Error { code, .. } => {
                    // A version 2 server takes `HELLO 3` for a bad name and asks again (a
                    // `NAME?` follows); one that calls it an unknown command does not.
                    if acted {
                        self.skip_name_query = code == ErrorCode::BadName;
                    } else if code != ErrorCode::BadName {
                        self.name_query(now, &prompt);
                    }
                    return;
                }
                // The server asks again without saying why: the prompt was answered already.
                ServerMsg::NameQuery { .. } if acted => return,
                _ => {}
            }
        }
        if let (
            Some(id),
            ServerMsg::Msg { .. }
            | ServerMsg::Act { .. }
            | ServerMsg::Priv { .. }
            | ServerMsg::Hist { .. },
        ) = (&id, &msg)
        {
            if self.ids.contains(id) {
                // Already shown (a resume replays from the last id this client reported).
                return;
            }
        }
        self.roster.observe(&msg);
        if self.in_history && !matches!(msg, ServerMsg::Hist { .. }) {
            self.in_history = false;
            self.note(now, Kind::Separator, "──── history above, live below ────");
        }
        if self.flush_held && !matches!(msg, ServerMsg::Hist { .. }) {
            self.send_held(now);
        }
        if matches!(
            msg,
            ServerMsg::Msg { .. } | ServerMsg::Act { .. } | ServerMsg::Priv { .. }
        ) {
            self.last_live = Some(now.utc);
        }
        match msg {
            ServerMsg::NameQuery { prompt } => self.name_query(now, prompt),
            ServerMsg::Wait { text } => {
                self.link = Link::Waiting;
                self.notice(now, &format!("waiting for approval... ({text})"));
            }
            ServerMsg::Welcome { name, online } => {
                self.link = Link::Member;
                self.me = Some(name.to_owned());
                self.wanted = Some(name.to_owned());
                self.refused = None;
                self.resuming = false;
                self.roster.set_me(name);
                self.online = Some(online);
                self.attempt = 0;
                let others = if online <= 1 {
                    "nobody else is here yet".to_owned()
                } else {
                    format!("{online} online, you included")
                };
                self.notice(now, &format!("you are in as {name}; {others}"));
                if self.settings.who_on_join {
                    // Who is here, for the count and for Tab completion.
                    self.send("/who");
                }
                // Held lines go after the room's history, at the first line that is not HIST
                // (the answer to /who at the latest), so they show below it.
                self.flush_held = true;
            }
            ServerMsg::Denied { text } => {
                let why = format!("refused: {}", sanitize(text));
                self.stop(now, ExitCode::Refused, &why, false);
            }
            ServerMsg::Join { name } => {
                self.online = self.online.map(|n| n + 1);
                if self.filter.shows_membership(name) {
                    self.membership(now, &format!("{name} joined"), |crowd| crowd.join(name));
                }
            }
            ServerMsg::Leave { name, reason } if self.is_me(name) => match reason {
                LeaveReason::Kicked => self.stop(
                    now,
                    ExitCode::Removed,
                    "the operator removed you (kicked)",
                    false,
                ),
                _ => self.stop(
                    now,
                    ExitCode::Lost,
                    &format!("the server dropped you ({})", reason.as_str()),
                    true,
                ),
            },
            ServerMsg::Leave { name, reason } => {
                self.online = self.online.map(|n| n.saturating_sub(1));
                if self.filter.shows_membership(name) {
                    let single = left_text(name, reason);
                    self.membership(now, &single, |crowd| crowd.leave(name, reason.as_str()));
                }
            }
            ServerMsg::Msg { .. } | ServerMsg::Act { .. } | ServerMsg::Priv { .. } => {
                let clock = time
                    .as_deref()
                    .and_then(|t| self.clock_of(t))
                    .unwrap_or_else(|| now.clock.clone());
                if let Some(entry) = message_entry(&msg, &clock) {
                    self.said(now, entry, id.as_deref());
                }
            }
            ServerMsg::Nick { new, .. } if self.is_me(new) && !self.is_me_renaming(&msg) => {
                // Nobody else can take the name this client holds: a lying server.
                self.problem(
                    now,
                    &format!("the server says someone else is now {new}, your name; not believed"),
                );
            }
            ServerMsg::Nick { old, new } => {
                if self.is_me(old) {
                    // The token goes with the name (the contract's `/nick`).
                    if let Some(mut kept) = self.tokens.remove(&old.to_ascii_lowercase()) {
                        kept.name = new.to_owned();
                        self.effects.push(Effect::ForgetToken {
                            name: old.to_owned(),
                        });
                        self.effects.push(Effect::SaveToken(SessionToken {
                            last_id: self.last_id.clone().or(kept.last_id.clone()),
                            ..kept.clone()
                        }));
                        self.tokens.insert(new.to_ascii_lowercase(), kept);
                    }
                    self.me = Some(new.to_owned());
                    self.wanted = Some(new.to_owned());
                    self.roster.set_me(new);
                    self.note(now, Kind::Rename, &format!("you are now known as {new}"));
                } else {
                    if let Some(query) = &mut self.query {
                        query.renamed(old, new);
                    }
                    self.note(now, Kind::Rename, &format!("{old} is now known as {new}"));
                }
            }
            ServerMsg::Hist { time, line } => self.history(now, time, line, id.as_deref()),
            ServerMsg::Info { text } => {
                // A /who reply's further lines join its entry.
                if let Some((id, reply)) = self.who.as_mut().filter(|_| self.settings.coalesce) {
                    let id = *id;
                    let step = reply.feed(text);
                    let whole = reply.text().to_owned();
                    if step == WhoStep::Done {
                        self.who = None;
                    }
                    if step != WhoStep::NotPart && self.store.set_text(id, &whole) {
                        self.effects.push(Effect::Updated(id));
                        return;
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
                    self.notice(now, &format!("bye: {text}"));
                    self.effects.push(Effect::Disconnect);
                    self.outcome = Some(Outcome::success());
                    return;
                }
                let why = format!("the server ended the session: {}", sanitize(text));
                let again = !bye_is_kick(text) && !bye_is_takeover(text);
                self.stop(now, ExitCode::Removed, &why, again);
            }
        }
    }

    /// Sends the lines held while logging in, in order (once admitted).
    fn send_held(&mut self, now: &Now) {
        self.flush_held = false;
        if self.link == Link::Member {
            for line in std::mem::take(&mut self.held) {
                self.echo(now, &line);
                self.send(line);
            }
        }
    }

    /// `NAME?`: say `HELLO 3` first (once per connection), then offer the wanted name, ask the
    /// user, or (a refused name that cannot be asked for again) end.
    fn name_query(&mut self, now: &Now, prompt: &str) {
        if std::mem::take(&mut self.skip_name_query) {
            return;
        }
        if self.version == Version::Unasked {
            self.send(format!("HELLO {VERSION}"));
            // Only a RESUME waits for the answer; a name goes at once, so a version 2
            // server costs no round trip.
            let resume = self
                .wanted
                .as_ref()
                .is_some_and(|name| self.tokens.contains_key(&name.to_ascii_lowercase()));
            self.version = Version::Asked {
                prompt: prompt.to_owned(),
                at: now.instant + HELLO_TIMEOUT,
                acted: !resume,
            };
            if resume {
                return;
            }
        }
        if let Some(why) = self.refused.take() {
            if !self.settings.ask_again {
                let name = self.offered.clone().unwrap_or_default();
                let why = format!("name {name:?} refused: {why}");
                self.stop(now, ExitCode::Refused, &why, false);
                return;
            }
        }
        match self.wanted.clone() {
            Some(name) => {
                self.link = Link::LoggingIn;
                self.offer(name);
            }
            None => {
                self.notice(now, prompt);
                self.link = Link::Naming;
            }
        }
    }

    /// Offers `name`: by `RESUME` with its token when version 3 and a token is kept (once per
    /// connection), else plainly.
    fn offer(&mut self, name: String) {
        self.offered = Some(name.clone());
        if self.version == Version::V3 && !self.resuming {
            if let Some(kept) = self.tokens.get(&name.to_ascii_lowercase()) {
                let last = self
                    .last_id
                    .as_deref()
                    .or(kept.last_id.as_deref())
                    .unwrap_or("-");
                let line = format!("RESUME {name} {} {last}", kept.token);
                self.resuming = true;
                self.send(line);
                return;
            }
        }
        self.send(name);
    }

    /// A version 3 line (`HELLO`, `TOKEN`, `ECHO`, `GAP`); `raw` is shown as not understood
    /// when the session does not speak version 3.
    fn on_v3(&mut self, now: &Now, msg: V3Msg<'_>, raw: &str) {
        match (msg, &self.version) {
            (V3Msg::Hello { version }, Version::Asked { prompt, acted, .. }) => {
                let (prompt, acted) = (prompt.clone(), *acted);
                self.version = if version >= VERSION {
                    Version::V3
                } else {
                    Version::V2
                };
                if !acted {
                    self.name_query(now, &prompt);
                }
            }
            (V3Msg::Token { secret }, Version::V3) => {
                let Some(name) = self.me.clone().or_else(|| self.offered.clone()) else {
                    return;
                };
                let kept = SessionToken {
                    name: name.clone(),
                    token: secret.to_owned(),
                    last_id: self.last_id.clone(),
                };
                self.tokens.insert(name.to_ascii_lowercase(), kept.clone());
                self.effects.push(Effect::SaveToken(kept));
            }
            (V3Msg::Echo { id }, Version::V3) => {
                if let Some(entry) = self.awaiting_echo.pop_front() {
                    self.store.set_msg_id(entry, id);
                }
                self.ids.insert(id);
                self.last_id = Some(id.to_owned());
                self.echoes_settled(now);
            }
            (V3Msg::Gap { text }, Version::V3) => {
                self.problem(
                    now,
                    &format!("some messages were missed while you were away: {text}"),
                );
            }
            _ => self.note(now, Kind::Unparsed, raw),
        }
    }

    /// Whether `msg` is the rename this client asked for (`NICK <me> <new>`).
    fn is_me_renaming(&self, msg: &ServerMsg<'_>) -> bool {
        matches!(msg, ServerMsg::Nick { old, .. } if self.is_me(old))
    }

    /// A message line (live or replayed): shown, unless it is an own line whose `ECHO` was
    /// lost (then it only gets its id), or flagged when it claims the user's name but is not
    /// theirs.
    fn said(&mut self, now: &Now, mut entry: Entry, id: Option<&str>) {
        let from_me = match &entry.kind {
            Kind::Msg { from } | Kind::Act { from } | Kind::Private { from, .. } => {
                self.is_me(from)
            }
            _ => false,
        };
        if let Some(id) = id {
            self.last_id = Some(id.to_owned());
            if from_me {
                // An own line whose ECHO never came (the connection dropped): it is already
                // shown, and now has its id.
                let pending = self.awaiting_echo.iter().position(|&e| {
                    self.store
                        .get(e)
                        .is_some_and(|own| own.kind == entry.kind && own.text == entry.text)
                });
                if let Some(at) = pending {
                    if let Some(own) = self.awaiting_echo.remove(at) {
                        self.store.set_msg_id(own, id);
                    }
                    self.ids.insert(id);
                    return;
                }
            }
            self.ids.insert(id);
            entry.msg_id = Some(id.to_owned());
        }
        if from_me {
            // The server never sends a member its own MSG, ACT or PRIV back: this line is not
            // the user's, whatever name it carries, and must not look like theirs.
            let text = &entry.text;
            let body = match &entry.kind {
                Kind::Msg { from } => format!("<{from}> {text}"),
                Kind::Act { from } => format!("* {from} {text}"),
                Kind::Private { from, to } => format!("[private] <{from} -> {to}> {text}"),
                _ => text.clone(),
            };
            self.problem(now, &format!("{NOT_YOURS} {body}"));
            return;
        }
        let private = matches!(entry.kind, Kind::Private { .. });
        self.incoming(entry, private);
    }

    /// A message from someone else (or a private to ourselves): highlight and bell.
    fn incoming(&mut self, mut entry: Entry, private: bool) {
        let me = self.me.clone().unwrap_or_default();
        if let Kind::Msg { from } | Kind::Act { from } | Kind::Private { from, .. } = &entry.kind {
            if self.filter.is_ignored(from) {
                return;
            }
            if private && !entry.history && !from.eq_ignore_ascii_case(&me) {
                self.last_private_from = Some(from.clone());
            }
        }
        entry.highlight = private || self.filter.highlights(&entry.text, &me);
        if entry.highlight && self.settings.bell {
            self.effects.push(Effect::Bell);
        }
        self.push(entry);
    }

    /// A `HIST` line: shown dimmed with its own time, unless already on screen from before a
    /// reconnection.
    fn history(&mut self, now: &Now, time: &str, line: &str, id: Option<&str>) {
        if id.is_none() {
            // Version 2 has no ids: what is older than the last line seen live is on screen.
            if let (Some(last), Ok(at)) =
                (self.last_live, chrono::DateTime::parse_from_rfc3339(time))
            {
                if at.with_timezone(&chrono::Utc) <= last {
                    return;
                }
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
        let parsed = ServerMsg::parse(line);
        let mut entry = match parsed.as_ref().ok().and_then(|m| message_entry(m, &clock)) {
            Some(entry) => entry,
            // A departure or rename of someone who spoke in the history (issue 20), shown as
            // the live line is: the room's state is not changed by it.
            None => match parsed {
                Ok(ServerMsg::Leave { name, reason }) => {
                    Entry::new(&clock, Kind::Event, &left_text(name, reason))
                }
                Ok(ServerMsg::Nick { old, new }) => Entry::new(
                    &clock,
                    Kind::Rename,
                    &format!("{old} is now known as {new}"),
                ),
                _ => Entry::new(&now.clock, Kind::Unparsed, line),
            },
        };
        entry.history = true;
        entry.stamp = Some(sanitize(time).into_owned());
        entry.date = when.map(|t| t.date_naive());
        if entry.has_markup() {
            self.said(now, entry, id);
            return;
        }
        self.push(entry);
    }

    fn server_error(&mut self, now: &Now, code: ErrorCode, text: &str) {
        match code {
            ErrorCode::BadName | ErrorCode::NameTaken if !matches!(self.link, Link::Member) => {
                let why = format!("{} ({code})", sanitize(text));
                if self.settings.ask_again {
                    self.problem(now, &format!("error ({code}): {text}; choose another name"));
                }
                self.refused = Some(why);
                self.wanted = None;
            }
            ErrorCode::BadToken if self.resuming => {
                self.resuming = false;
                if let Some(name) = self.offered.clone() {
                    self.tokens.remove(&name.to_ascii_lowercase());
                    self.effects.push(Effect::ForgetToken { name });
                }
                self.notice(
                    now,
                    &format!("the session could not be resumed ({text}); joining again"),
                );
            }
            ErrorCode::ServerFull if !matches!(self.link, Link::Member) => {
                let why = format!("the server is full: {}", sanitize(text));
                self.stop(now, ExitCode::Refused, &why, true);
            }
            ErrorCode::Unavailable if !self.awaiting_echo.is_empty() => {
                // The room could not keep the oldest own line awaiting its ECHO (a full or
                // failing disk): it reached nobody, and says so against it.
                if let Some(id) = self.awaiting_echo.pop_front() {
                    self.echoes_settled(now);
                    if self.store.fail(id, text) {
                        self.log_failed(id, text);
                        self.effects.push(Effect::Updated(id));
                        return;
                    }
                }
                self.problem(now, &format!("error ({code}): {text}"));
            }
            ErrorCode::NoSuchUser => {
                if let Some(id) = self.unanswered_private() {
                    // It gets no ECHO either.
                    self.awaiting_echo.retain(|&e| e != id);
                    self.echoes_settled(now);
                    if self.store.fail(id, text) {
                        self.log_failed(id, text);
                        self.effects.push(Effect::Updated(id));
                        return;
                    }
                }
                self.problem(now, &format!("error ({code}): {text}"));
            }
            ErrorCode::LineTooLong => {
                if let Some(id) = self.too_long_line(now.instant) {
                    let why = format!(
                        "the server's line limit is lower than {} bytes ({})",
                        self.settings.prefs.max_line,
                        sanitize(text)
                    );
                    self.awaiting_echo.retain(|&e| e != id);
                    if self.store.fail(id, &why) {
                        self.log_failed(id, &why);
                        self.effects.push(Effect::Updated(id));
                        return;
                    }
                }
                self.problem(now, &format!("error ({code}): {text}"));
            }
            _ => self.problem(now, &format!("error ({code}): {text}")),
        }
    }

    /// Logs that own entry `id` was not delivered.
    fn log_failed(&mut self, id: u64, why: &str) {
        if let Some(text) = self.store.get(id).map(|e| e.text.clone()) {
            let line = format!("not delivered ({why}): {text}");
            self.log_entry(&Entry::new("", Kind::Error, &line));
        }
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

    fn remember_own(&mut self, id: u64, len: usize, at: Instant) {
        if self.recent_own.len() == MAX_PENDING_PRIVATES {
            self.recent_own.pop_front();
        }
        self.recent_own.push_back((id, len, at));
    }

    /// A join or leave: the run of them with nothing said in between is one row.
    fn membership(&mut self, now: &Now, single: &str, change: impl FnOnce(&mut Crowd)) {
        let newest = self.store.newest(0).map(|e| e.id);
        let window = Duration::from_secs(RUN_SECONDS);
        let (id, mut crowd, began) = match self.crowd.take() {
            Some((id, crowd, began))
                if self.settings.coalesce
                    && Some(id) == newest
                    && now.instant.saturating_duration_since(began) < window =>
            {
                (Some(id), crowd, began)
            }
            _ => (None, Crowd::new(), now.instant),
        };
        change(&mut crowd);
        let text = crowd.text();
        if let Some(id) = id.filter(|&id| self.store.set_text(id, &text)) {
            self.effects.push(Effect::Updated(id));
            self.crowd = Some((id, crowd, began));
            // The log keeps one line per join or leave.
            self.log_entry(&Entry::new("", Kind::Event, single));
            return;
        }
        let id = self.push(Entry::new(&now.clock, Kind::Event, &text));
        self.crowd = Some((id, crowd, began));
    }

    /// The time column's text for an RFC 3339 time, in the user's format.
    fn clock_of(&self, rfc3339: &str) -> Option<String> {
        let time = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
        Some(
            self.settings
                .prefs
                .time_format
                .format(&time.with_timezone(&chrono::Local)),
        )
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
                if self.is_leaving() {
                    return;
                }
                if self.version == Version::V3 && !self.awaiting_echo.is_empty() {
                    self.leave_after_echoes = Some(now.instant + LEAVE_TIMEOUT);
                } else {
                    self.send_leave(now);
                }
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

    /// `/forget`: drops this server's token for the current name, so the next connection
    /// joins as a new member.
    fn forget(&mut self, now: &Now) {
        let Some(name) = self.me.clone().or_else(|| self.wanted.clone()) else {
            self.notice(now, "no name yet: no token to forget");
            return;
        };
        self.tokens.remove(&name.to_ascii_lowercase());
        self.effects
            .push(Effect::ForgetToken { name: name.clone() });
        self.notice(
            now,
            &format!(
                "forgot the session token for {name} at {}: the next connection joins as a new member",
                self.settings.addr
            ),
        );
    }

    /// Sends `/leave` and waits, at most [`LEAVE_TIMEOUT`], for the server's `BYE`.
    fn send_leave(&mut self, now: &Now) {
        self.leave_after_echoes = None;
        if self.leaving.is_none() {
            self.send("/leave");
            self.leaving = Some(now.instant + LEAVE_TIMEOUT);
        }
    }

    /// Own lines stopped awaiting their ECHO: a leave that waited for them goes now.
    fn echoes_settled(&mut self, now: &Now) {
        if self.awaiting_echo.is_empty() && self.leave_after_echoes.is_some() {
            self.send_leave(now);
        }
    }

    /// The user entered `text`.
    fn enter(&mut self, now: &Now, text: &str, confirmed: bool) {
        if self.link == Link::Naming {
            self.enter_name(now, text);
            return;
        }
        // In a conversation, plain lines go to its member.
        let addressed = match self.query.as_ref().map(|q| q.address(text)) {
            Some(Ok(addressed)) => addressed,
            Some(Err(refusal)) => {
                self.problem(now, &refusal.0);
                return;
            }
            None => text.to_owned(),
        };
        let plan = match compose::plan(&addressed) {
            Ok(plan) => plan,
            Err(refusal) => {
                self.problem(now, &refusal.0);
                return;
            }
        };
        match plan {
            Plan::Nothing => self.effects.push(Effect::TakeInput),
            Plan::Leave => {
                self.effects.push(Effect::TakeInput);
                // Lines typed before it go first, whatever the server is still sending.
                if self.flush_held {
                    self.send_held(now);
                }
                self.leave(now);
            }
            Plan::Local(Local::Reconnect) => {
                self.effects.push(Effect::TakeInput);
                self.reconnect(now);
            }
            Plan::Local(Local::Forget) => {
                self.effects.push(Effect::TakeInput);
                self.forget(now);
            }
            Plan::Local(Local::Reply(text)) => match self.last_private_from.clone() {
                // The same path as typing it: split, echoed, marked if refused.
                Some(name) => self.enter(now, &format!("/private {name} {text}"), confirmed),
                None => self.problem(now, "/r: nobody has written to you privately yet"),
            },
            Plan::Local(Local::Ignore(None)) => {
                self.effects.push(Effect::TakeInput);
                let names: Vec<&str> = self.filter.ignored().collect();
                let text = if names.is_empty() {
                    "nobody is ignored (/ignore NAME hides a name's lines)".to_owned()
                } else {
                    format!("ignored: {} (/unignore NAME)", names.join(", "))
                };
                self.notice(now, &text);
            }
            Plan::Local(Local::Ignore(Some(name))) => {
                self.effects.push(Effect::TakeInput);
                match self.filter.ignore(&name) {
                    Ok(true) => self.notice(
                        now,
                        &format!("ignoring {name}: their lines, joins and leaves are hidden"),
                    ),
                    Ok(false) => self.notice(now, &format!("{name} is ignored already")),
                    Err(e) => self.problem(now, &e.to_string()),
                }
            }
            Plan::Local(Local::Unignore(name)) => {
                self.effects.push(Effect::TakeInput);
                let text = if self.filter.unignore(&name) {
                    format!("no longer ignoring {name}")
                } else {
                    format!("{name} was not ignored")
                };
                self.notice(now, &text);
            }
            Plan::Local(Local::Log(on)) => {
                self.effects.push(Effect::TakeInput);
                match on {
                    Some(true) => self.start_log(now),
                    Some(false) => self.stop_log(now),
                    None => {
                        let text = match &self.log {
                            Some(log) => {
                                format!("logging to {} (/log off stops)", log.path().display())
                            }
                            None => "not logging (/log on starts)".to_owned(),
                        };
                        self.notice(now, &text);
                    }
                }
            }
            Plan::Local(Local::Query(name)) => {
                self.effects.push(Effect::TakeInput);
                match name {
                    Some(name) => self.open_query(now, &name),
                    None => self.close_query(now),
                }
            }
            Plan::Local(Local::Clear) => {
                // The brain forgets what it stores; the view clears its pane or terminal.
                self.effects.push(Effect::TakeInput);
                self.clear();
                self.effects.push(Effect::View(Local::Clear));
            }
            Plan::Local(command @ Local::Search(_)) => {
                // Each view runs its kind of search (`search_step`, `search_list`).
                self.effects.push(Effect::TakeInput);
                self.effects.push(Effect::View(command));
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
                if let [line] = lines.as_slice() {
                    if let Some(Err(why)) = nick_argument(line).map(validate_name) {
                        // Said here, with the reason: the server would only answer `usage`.
                        self.problem(now, &format!("{why}"));
                        return;
                    }
                }
                // Admitted but the held lines not sent yet (the history is still coming): these
                // go after them, so the order typed is the order sent.
                let behind_held =
                    self.link == Link::Member && self.flush_held && !self.held.is_empty();
                if (behind_held
                    || matches!(
                        self.link,
                        Link::Connecting | Link::LoggingIn | Link::Waiting
                    ))
                    && self.held.len() + lines.len() <= MAX_HELD
                {
                    // Typed ahead while logging in: sent, in order, once admitted.
                    self.effects.push(Effect::TakeInput);
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
                if lines.len() > compose::CONFIRM_LINES && !confirmed {
                    self.effects.push(Effect::AskConfirm(lines.len()));
                    return;
                }
                self.effects.push(Effect::TakeInput);
                for line in lines {
                    self.echo(now, &line);
                    self.send(line);
                }
            }
        }
    }

    /// A name typed while naming: offered when valid; otherwise explained (and the input
    /// cleared for the next try) or, when nobody can be asked again, the end.
    fn enter_name(&mut self, now: &Now, typed: &str) {
        if typed.trim().is_empty() {
            self.effects.push(Effect::TakeInput);
            return;
        }
        self.effects.push(Effect::TakeInput);
        match validate_name(typed) {
            Ok(name) => {
                let name = name.to_owned();
                self.link = Link::LoggingIn;
                self.offer(name);
            }
            Err(why) if self.settings.ask_again => {
                self.problem(now, &format!("{why}; try another name"));
            }
            Err(why) => {
                let why = format!("name {:?} refused: {why}", sanitize(typed));
                self.stop(now, ExitCode::Refused, &why, false);
            }
        }
    }

    /// Shows an own line exactly as it was sent (the server never sends it back).
    fn echo(&mut self, now: &Now, line: &str) {
        if line.len() > self.settings.prefs.max_line.max(DEFAULT_MAX_LINE) {
            // Never sent that long (split first); a guard, not a path.
            return;
        }
        let me = self.me.clone().unwrap_or_default();
        let mut entry = match parse_request(line) {
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
                self.last_live = Some(now.utc);
                self.await_echo(id);
                if self.pending_privates.len() == MAX_PENDING_PRIVATES {
                    self.pending_privates.pop_front();
                }
                self.pending_privates
                    .push_back((id, to.to_ascii_lowercase(), now.instant));
                return;
            }
            Ok(Request::Help) => {
                if let Some(keys) = self.settings.keys_help {
                    self.notice(now, keys);
                }
                return;
            }
            _ => return,
        };
        entry.own = true;
        let id = self.push(entry);
        self.remember_own(id, line.len(), now.instant);
        // History older than this is on screen (a version 2 reconnection does not repeat it).
        self.last_live = Some(now.utc);
        self.await_echo(id);
    }

    /// In version 3, the own line `entry` gets its id from the next `ECHO`.
    fn await_echo(&mut self, entry: u64) {
        if self.version != Version::V3 {
            return;
        }
        if self.awaiting_echo.len() >= MAX_PENDING_ECHOES {
            self.awaiting_echo.pop_front();
        }
        self.awaiting_echo.push_back(entry);
    }
}

/// `entry` as a line of the log file: what line mode shows, without colors.
pub fn log_text(entry: &Entry, me: &str) -> String {
    let text = &entry.text;
    match &entry.kind {
        Kind::Msg { from } => format!("<{from}> {text}"),
        Kind::Act { from } => format!("* {from} {text}"),
        Kind::Private { from, to } if entry.own => format!("[private] <{from} -> {to}> {text}"),
        Kind::Private { from, .. } => format!("[private] <{from} -> {me}> {text}"),
        Kind::Event | Kind::Rename => format!("* {text}"),
        Kind::Notice | Kind::Separator => format!("-- {text}"),
        Kind::Error => format!("! {text}"),
        Kind::Unparsed => format!("?? {text}"),
    }
}

/// `bob left`, or `bob left (kicked)` for any other reason than leaving.
fn left_text(name: &str, reason: LeaveReason) -> String {
    match reason {
        LeaveReason::Left => format!("{name} left"),
        other => format!("{name} left ({})", other.as_str()),
    }
}

/// The entry for a `MSG`, `ACT` or `PRIV` line, at `clock`; `None` for other lines.
fn message_entry(msg: &ServerMsg<'_>, clock: &str) -> Option<Entry> {
    let (kind, color, text) = match *msg {
        ServerMsg::Msg { from, color, text } => (
            Kind::Msg {
                from: from.to_owned(),
            },
            color,
            text,
        ),
        ServerMsg::Act { from, text } => (
            Kind::Act {
                from: from.to_owned(),
            },
            None,
            text,
        ),
        ServerMsg::Priv {
            from,
            to,
            color,
            text,
        } => (
            Kind::Private {
                from: from.to_owned(),
                to: to.to_owned(),
            },
            color,
            text,
        ),
        _ => return None,
    };
    let mut entry = Entry::new(clock, kind, text);
    entry.color = color;
    Some(entry)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::line::render;

    const TOKEN: &str = "abcdefghijklmnopqrstuvwxyz012345";
    const NEW_TOKEN: &str = "ZYXWVUTSRQPONMLKJIHGFEDCBA_-9876";
    const T: &str = "2026-12-01T16:05:09.123Z";

    fn now() -> Now {
        Now {
            instant: Instant::now(),
            clock: "12:00".to_owned(),
            utc: chrono::Utc::now(),
        }
    }

    fn settings(reconnect: bool, tokens: Vec<SessionToken>) -> Settings {
        Settings {
            addr: "127.0.0.1:55555".into(),
            name: Some("bob".into()),
            bell: false,
            reconnect,
            ask_again: reconnect,
            who_on_join: false,
            keys_help: None,
            hello: true,
            tokens,
            prefs: crate::config_file::FileConfig::default(),
            log_dir: None,
            coalesce: true,
        }
    }

    fn token(last: Option<&str>) -> SessionToken {
        SessionToken {
            name: "bob".into(),
            token: TOKEN.into(),
            last_id: last.map(str::to_owned),
        }
    }

    fn line(b: &mut Brain, l: &str, n: &Now) -> Vec<Effect> {
        b.update(Msg::Line(Incoming::Line(l.to_owned())), n)
    }

    fn sends(effects: &[Effect]) -> Vec<&str> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(l) => Some(l.as_str()),
                _ => None,
            })
            .collect()
    }

    /// What line mode shows of the whole store, without styles.
    fn shown(b: &Brain) -> Vec<String> {
        let mut out = termcolor::Buffer::no_color();
        for e in b.store.iter() {
            render::entry(&mut out, e, b.me()).unwrap();
        }
        String::from_utf8(out.into_inner())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn connected(settings: Settings) -> (Brain, Now) {
        let mut b = Brain::new(settings);
        let n = now();
        b.update(Msg::Connected { tls: None }, &n);
        (b, n)
    }

    #[test]
    fn version_3_says_hello_keeps_the_token_and_knows_its_own_lines_by_echo() {
        let (mut b, n) = connected(settings(true, Vec::new()));
        // The name goes right after HELLO 3: no token, so nothing to wait for.
        assert_eq!(sends(&line(&mut b, "NAME? name?", &n)), ["HELLO 3", "bob"]);
        assert!(line(&mut b, "HELLO 3", &n).is_empty());
        assert!(b.speaks_v3());
        line(&mut b, "WELCOME bob 2", &n);
        let effects = line(&mut b, &format!("TOKEN {TOKEN}"), &n);
        assert_eq!(effects, [Effect::SaveToken(token(None))]);
        line(&mut b, &format!("@id=e1-1;time={T} MSG alice - hi bob"), &n);
        let said = b.update(
            Msg::Enter {
                text: "hello alice".into(),
                confirmed: true,
            },
            &n,
        );
        assert_eq!(sends(&said), ["hello alice"]);
        line(&mut b, "ECHO e1-2", &n);
        let own = b.store.newest(0).unwrap();
        assert!(own.own && own.msg_id.as_deref() == Some("e1-2"));
        let msg = b.store.newest(1).unwrap();
        assert_eq!(msg.msg_id.as_deref(), Some("e1-1"));
        assert_eq!(msg.time, local_clock(T).unwrap(), "the tag's time");
        assert_eq!(b.session(), Some(token(Some("e1-2"))));
        // A tag on any line is set aside; unknown tags are ignored.
        line(&mut b, "@x=y;id=e1-3 JOIN carol", &n);
        assert_eq!(shown(&b).last().unwrap(), "* carol joined");
    }

    #[test]
    fn a_version_2_server_sees_hello_refused_and_the_session_shows_as_version_2() {
        // The same server lines but the answer to HELLO 3, with and without it.
        let v2 = [
            "NAME? name?",
            "WELCOME bob 2",
            "MSG alice - hi",
            "JOIN carol",
        ];
        let mut plain = Brain::new(Settings {
            hello: false,
            ..settings(false, Vec::new())
        });
        let n = now();
        plain.update(Msg::Connected { tls: None }, &n);
        let mut plain_sent = Vec::new();
        for l in v2 {
            plain_sent.extend(line(&mut plain, l, &n));
        }
        assert_eq!(sends(&plain_sent), ["bob"]);
        for refusal in [
            // The server took HELLO 3 for a name, and asks again.
            &[
                "ERROR bad-name a name may hold only A-Z a-z 0-9 _ - (not ' ')",
                "NAME? name?",
            ][..],
            // A server that calls it an unknown command.
            &["ERROR unknown-command HELLO"][..],
        ] {
            let (mut b, n) = connected(settings(false, Vec::new()));
            let mut sent = line(&mut b, v2[0], &n);
            for l in refusal.iter().chain(&v2[1..]) {
                sent.extend(line(&mut b, l, &n));
            }
            assert_eq!(sends(&sent), ["HELLO 3", "bob"], "{refusal:?}");
            assert!(!b.speaks_v3());
            assert_eq!(shown(&b), shown(&plain), "{refusal:?}");
            assert_eq!(b.link, Link::Member);
        }
        // A netcat-like server that answers nothing: the name already went.
        let (mut b, n) = connected(settings(false, Vec::new()));
        assert_eq!(sends(&line(&mut b, "NAME? name?", &n)), ["HELLO 3", "bob"]);
        let later = Now {
            instant: n.instant + HELLO_TIMEOUT,
            ..n.clone()
        };
        assert!(b.update(Msg::Tick, &later).is_empty());
        line(&mut b, "WELCOME bob 1", &later);
        assert_eq!(b.link, Link::Member);
        assert!(!b.speaks_v3());
    }

    #[test]
    fn a_kept_token_resumes_and_every_missed_message_shows_once_in_order() {
        let (mut b, n) = connected(settings(false, vec![token(Some("e1-5"))]));
        // With a token, the answer to HELLO 3 decides between RESUME and a name.
        assert_eq!(sends(&line(&mut b, "NAME? name?", &n)), ["HELLO 3"]);
        assert_eq!(
            sends(&line(&mut b, "HELLO 3", &n)),
            [format!("RESUME bob {TOKEN} e1-5").as_str()]
        );
        line(&mut b, "WELCOME bob 2", &n);
        let effects = line(&mut b, &format!("TOKEN {NEW_TOKEN}"), &n);
        assert!(matches!(&effects[..], [Effect::SaveToken(t)] if t.token == NEW_TOKEN));
        for l in [
            "GAP messages before e1-6 are no longer kept".to_owned(),
            format!("@id=e1-6;time={T} HIST {T} MSG alice - one"),
            format!("@id=e1-7;time={T} HIST {T} PRIV alice bob - two"),
            format!("@id=e1-6;time={T} HIST {T} MSG alice - one"),
            "INFO online (2): alice, bob".to_owned(),
            format!("@id=e1-8;time={T} MSG alice - three"),
            format!("@id=e1-7;time={T} PRIV alice bob - two"),
        ] {
            line(&mut b, &l, &n);
        }
        let shown = shown(&b);
        let tail: Vec<&str> = shown.iter().map(String::as_str).skip(1).collect();
        assert_eq!(
            tail,
            [
                "! some messages were missed while you were away: messages before e1-6 are no longer kept",
                &format!("[{T}] <alice> one"),
                &format!("[{T}] [private] <alice -> you> two"),
                "-- online (2): alice, bob",
                "<alice> three",
            ]
        );
        assert_eq!(b.session().unwrap().last_id.as_deref(), Some("e1-8"));
    }

    #[test]
    fn a_refused_token_is_dropped_and_the_join_goes_on_as_usual() {
        let (mut b, n) = connected(settings(false, vec![token(None)]));
        line(&mut b, "NAME? name?", &n);
        assert_eq!(
            sends(&line(&mut b, "HELLO 3", &n)),
            [format!("RESUME bob {TOKEN} -").as_str()]
        );
        let effects = line(&mut b, "ERROR bad-token unknown or expired token", &n);
        assert!(effects.contains(&Effect::ForgetToken { name: "bob".into() }));
        assert_eq!(sends(&line(&mut b, "NAME? name?", &n)), ["bob"]);
        line(&mut b, "WELCOME bob 1", &n);
        assert_eq!(b.link, Link::Member);
        assert!(b.session().is_none());
        // A version 2 server that never answers HELLO: RESUME is never sent.
        let (mut b, n) = connected(settings(false, vec![token(None)]));
        line(&mut b, "NAME? name?", &n);
        let later = Now {
            instant: n.instant + HELLO_TIMEOUT,
            ..n.clone()
        };
        assert_eq!(sends(&b.update(Msg::Tick, &later)), ["bob"]);
    }

    #[test]
    fn after_a_drop_the_full_screen_resumes_by_itself_without_repeating_a_line() {
        let (mut b, n) = connected(settings(true, Vec::new()));
        line(&mut b, "NAME? name?", &n);
        line(&mut b, "HELLO 3", &n);
        line(&mut b, "WELCOME bob 2", &n);
        line(&mut b, &format!("TOKEN {TOKEN}"), &n);
        line(&mut b, &format!("@id=e1-1;time={T} MSG alice - before"), &n);
        // An own line whose ECHO is lost in the drop.
        b.update(
            Msg::Enter {
                text: "mine".into(),
                confirmed: true,
            },
            &n,
        );
        b.update(Msg::Closed(None), &n);
        let later = Now {
            instant: n.instant + MAX_BACKOFF,
            ..n.clone()
        };
        assert_eq!(b.update(Msg::Tick, &later), [Effect::Connect]);
        b.update(Msg::Connected { tls: None }, &later);
        assert_eq!(sends(&line(&mut b, "NAME? name?", &later)), ["HELLO 3"]);
        assert_eq!(
            sends(&line(&mut b, "HELLO 3", &later)),
            [format!("RESUME bob {TOKEN} e1-1").as_str()]
        );
        let before = shown(&b).len();
        for l in [
            "WELCOME bob 2".to_owned(),
            format!("TOKEN {NEW_TOKEN}"),
            format!("@id=e1-2;time={T} HIST {T} MSG bob - mine"),
            format!("@id=e1-3;time={T} HIST {T} MSG alice - missed"),
        ] {
            line(&mut b, &l, &later);
        }
        let shown = shown(&b);
        let new: Vec<&str> = shown[before..].iter().map(String::as_str).collect();
        assert_eq!(
            new,
            [
                "-- you are in as bob; 2 online, you included",
                &format!("[{T}] <alice> missed"),
            ],
            "the own line is not repeated and not taken for someone else's"
        );
        let own = b.store.iter().find(|e| e.text == "mine").unwrap();
        assert_eq!(own.msg_id.as_deref(), Some("e1-2"));
    }

    #[test]
    fn lines_in_the_users_name_that_it_did_not_send_never_look_like_its_own() {
        // Issue 20: MSG <your-name> and NICK alice <your-name> from a lying server.
        let (mut b, n) = connected(settings(false, Vec::new()));
        for l in [
            "NAME? name?",
            "ERROR unknown-command HELLO",
            "WELCOME bob 2",
        ] {
            line(&mut b, l, &n);
        }
        b.update(
            Msg::Enter {
                text: "hi".into(),
                confirmed: true,
            },
            &n,
        );
        for l in [
            "MSG bob - hi",
            "ACT bob waves",
            "PRIV bob carol - psst",
            // Newer than the own line (so not a repeat of it after a reconnection).
            "HIST 2099-01-01T00:00:00.000Z MSG bob - earlier",
            "NICK alice bob",
            "MSG BOB - shouting",
        ] {
            line(&mut b, l, &n);
        }
        let shown = shown(&b);
        assert_eq!(
            &shown[1..],
            [
                "<bob> hi",
                "! not sent by this client, though in your name: <bob> hi",
                "! not sent by this client, though in your name: * bob waves",
                "! not sent by this client, though in your name: [private] <bob -> carol> psst",
                "! not sent by this client, though in your name: <bob> earlier",
                "! the server says someone else is now bob, your name; not believed",
                "! not sent by this client, though in your name: <BOB> shouting",
            ]
        );
        assert_eq!(b.me(), Some("bob"));
        let own: Vec<bool> = b.store.iter().map(|e| e.own).collect();
        assert_eq!(own.iter().filter(|o| **o).count(), 1);
    }

    #[test]
    fn refused_own_lines_get_no_echo_and_later_echoes_stay_in_step() {
        let (mut b, n) = connected(settings(false, Vec::new()));
        for l in ["NAME? name?", "HELLO 3", "WELCOME bob 1"] {
            line(&mut b, l, &n);
        }
        for text in ["/private zed hi", "kept?", "third"] {
            let enter = Msg::Enter {
                text: text.into(),
                confirmed: true,
            };
            b.update(enter, &n);
        }
        line(&mut b, "ERROR no-such-user nobody named zed", &n);
        line(
            &mut b,
            "ERROR unavailable the room cannot keep messages now",
            &n,
        );
        line(&mut b, "ECHO e1-9", &n);
        let by_text = |t: &str| b.store.iter().find(|e| e.text == t).unwrap().clone();
        assert_eq!(by_text("hi").failed.as_deref(), Some("nobody named zed"));
        let kept = by_text("kept?");
        assert_eq!(
            kept.failed.as_deref(),
            Some("the room cannot keep messages now")
        );
        assert_eq!(kept.msg_id, None);
        assert_eq!(by_text("third").msg_id.as_deref(), Some("e1-9"));
    }

    #[test]
    fn departures_and_renames_in_the_history_show_as_live_ones_do_marked_as_history() {
        let (mut b, n) = connected(settings(false, Vec::new()));
        for l in [
            "NAME? name?",
            "ERROR unknown-command HELLO",
            "WELCOME bob 2",
            &format!("HIST {T} MSG alice - first"),
            &format!("HIST {T} LEAVE alice quit"),
            &format!("HIST {T} NICK carol alice"),
            &format!("HIST {T} MSG alice - second"),
        ] {
            line(&mut b, l, &n);
        }
        assert_eq!(
            &shown(&b)[1..],
            [
                format!("[{T}] <alice> first"),
                format!("[{T}] * alice left (quit)"),
                format!("[{T}] -- carol is now known as alice"),
                format!("[{T}] <alice> second"),
            ]
        );
        assert!(b.store.iter().skip(1).all(|e| e.history));
        assert_eq!(b.online(), Some(2), "history changes no count");
    }

    #[test]
    fn a_session_resumed_elsewhere_is_not_taken_back_by_itself() {
        let (mut b, n) = connected(settings(true, vec![token(None)]));
        for l in ["NAME? name?", "HELLO 3", "WELCOME bob 1"] {
            line(&mut b, l, &n);
        }
        line(&mut b, "BYE resumed elsewhere", &n);
        assert!(matches!(b.link, Link::Ended { .. }), "{:?}", b.link);
        let later = Now {
            instant: n.instant + MAX_BACKOFF,
            ..n.clone()
        };
        assert!(b.update(Msg::Tick, &later).is_empty(), "no reconnection");
        // A shutdown still reconnects.
        let (mut b, n) = connected(settings(true, Vec::new()));
        for l in [
            "NAME? name?",
            "HELLO 3",
            "WELCOME bob 1",
            "BYE server shutting down",
        ] {
            line(&mut b, l, &n);
        }
        assert!(matches!(b.link, Link::Retrying { .. }));
    }

    #[test]
    fn leaving_waits_for_the_echo_of_every_line_said_so_the_leave_overtakes_nothing() {
        let (mut b, n) = connected(settings(false, Vec::new()));
        for l in ["NAME? name?", "HELLO 3", "WELCOME bob 1"] {
            line(&mut b, l, &n);
        }
        for text in ["one", "two"] {
            let enter = Msg::Enter {
                text: text.into(),
                confirmed: true,
            };
            b.update(enter, &n);
        }
        assert!(sends(&b.update(Msg::InputEnded, &n)).is_empty());
        assert!(b.is_leaving() && !b.wants_input());
        assert!(sends(&line(&mut b, "ECHO e1-1", &n)).is_empty());
        assert_eq!(sends(&line(&mut b, "ECHO e1-2", &n)), ["/leave"]);
        line(&mut b, "BYE goodbye", &n);
        assert_eq!(b.outcome, Some(Outcome::success()));
        // An ECHO that never comes delays the leave by LEAVE_TIMEOUT at most.
        let (mut b, n) = connected(settings(false, Vec::new()));
        for l in ["NAME? name?", "HELLO 3", "WELCOME bob 1"] {
            line(&mut b, l, &n);
        }
        let enter = Msg::Enter {
            text: "lost".into(),
            confirmed: true,
        };
        b.update(enter, &n);
        b.update(Msg::Leave, &n);
        let later = Now {
            instant: n.instant + LEAVE_TIMEOUT,
            ..n.clone()
        };
        assert_eq!(sends(&b.update(Msg::Tick, &later)), ["/leave"]);
    }

    #[test]
    fn a_rename_carries_the_token_to_the_new_name() {
        let (mut b, n) = connected(settings(false, Vec::new()));
        for l in ["NAME? name?", "HELLO 3", "WELCOME bob 1"] {
            line(&mut b, l, &n);
        }
        line(&mut b, &format!("TOKEN {TOKEN}"), &n);
        let effects = line(&mut b, "NICK bob robert", &n);
        assert_eq!(
            effects,
            [
                Effect::ForgetToken { name: "bob".into() },
                Effect::SaveToken(SessionToken {
                    name: "robert".into(),
                    ..token(None)
                }),
            ]
        );
        assert_eq!(b.session().unwrap().name, "robert");
    }

    #[test]
    fn a_query_addresses_plain_lines_counts_the_room_and_follows_a_rename() {
        let (mut b, n) = connected(settings(false, Vec::new()));
        for l in ["NAME? name?", "HELLO 3", "WELCOME bob 3"] {
            line(&mut b, l, &n);
        }
        let enter = |b: &mut Brain, text: &str| {
            b.update(
                Msg::Enter {
                    text: text.into(),
                    confirmed: true,
                },
                &n,
            )
        };
        enter(&mut b, "/query carol");
        assert_eq!(b.query().map(Query::with), Some("carol"));
        assert_eq!(sends(&enter(&mut b, "hi")), ["/private carol hi"]);
        line(&mut b, "MSG alice - room talk", &n);
        line(&mut b, "PRIV carol bob - psst", &n);
        assert_eq!(b.query().map(Query::unread), Some(1));
        line(&mut b, "NICK carol carla", &n);
        assert_eq!(
            sends(&enter(&mut b, "still you?")),
            ["/private carla still you?"]
        );
        let shown: Vec<&str> = b
            .store
            .iter()
            .filter(|e| b.shows(e))
            .map(|e| e.text.as_str())
            .collect();
        assert!(
            shown.contains(&"psst") && !shown.contains(&"room talk"),
            "{shown:?}"
        );
        assert!(sends(&b.update(Msg::Room, &n)).is_empty());
        assert!(b.query().is_none());
        assert_eq!(sends(&enter(&mut b, "all")), ["all"]);
        // Line mode's /search lists what is kept, oldest first.
        let ids = b.search_list(&n, "STILL");
        assert_eq!(ids.len(), 1);
        assert_eq!(b.store.get(ids[0]).unwrap().text, "still you?");
    }

    #[test]
    fn forget_drops_the_token_of_the_current_name() {
        let (mut b, n) = connected(settings(false, vec![token(None)]));
        for l in ["NAME? name?", "HELLO 3", "WELCOME bob 1"] {
            line(&mut b, l, &n);
        }
        let effects = b.update(
            Msg::Enter {
                text: "/forget".into(),
                confirmed: true,
            },
            &n,
        );
        assert!(effects.contains(&Effect::ForgetToken { name: "bob".into() }));
        assert!(sends(&effects).is_empty(), "nothing goes to the server");
        assert!(b.session().is_none());
    }
}
