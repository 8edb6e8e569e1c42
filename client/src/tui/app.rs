//! The full-screen view's own state and rules: the input line, the keys, the scroll position
//! and what the message pane shows. Everything about the protocol (the login, server lines,
//! reconnecting, what each event stores) is the shared [`Brain`]'s; this module feeds it
//! [`Msg`]s and carries out its effects that concern the screen. It never touches a socket, a
//! terminal or the clock, so every rule is unit-testable; `tui/mod.rs` runs the loop.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chat_common::sanitize::sanitize;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};
use ratatui::text::Line;

use super::complete::complete;
use super::editor::Editor;
use super::layout::{self, Look};
use super::name_column::{cap_for, Frame, NameColumn};
use super::paste_speed::{KeySpeed, PASTE_GAP};
use super::status_line::{brief, fit, fits, Part};
use crate::config_file::FileConfig;
use crate::core::brain::{self, Brain, Link, Msg, Now};
use crate::core::compose::Local;
use crate::core::search::Search;
use crate::core::store::{Entry, Kind};
use crate::net::{Incoming, NetEvent};

/// Rows scrolled by one step of the mouse wheel.
const WHEEL_ROWS: usize = 3;

/// What `/help` adds about the keys of the full screen.
const KEYS_HELP: &str = "keys: Enter sends; Ctrl-C clears the line, or leaves on an empty one; \
                         Up/Down history; Ctrl-R searches it; Tab completes; Home/End edit; \
                         PgUp/PgDn, Ctrl-Home/Ctrl-End and the mouse wheel scroll; Ctrl-Z \
                         suspends; Esc leaves a query. The client's own commands: /r TEXT \
                         answers the last private, /query NAME talks privately with NAME \
                         (/query alone: the room), /search TEXT, /clear, /ignore [NAME], \
                         /unignore NAME, /log [on|off], /reconnect, /forget";

/// The line between what was read and what came after scrolling up.
const MARKER: &str = "──── new since you scrolled up ────";

/// The name column is at least this wide where the pane allows (a quarter of it).
const COMFORTABLE_COLUMN: usize = 7;

/// Senders remembered for the name column at most (then forgotten and learnt again).
const MAX_AUTHORS: usize = 10_000;

/// The "new since you scrolled up" line, laid out for the pane.
fn marker_rows(width: usize, names: &NameColumn, look: Look) -> Vec<Line<'static>> {
    layout::layout_named(&Entry::new("", Kind::Separator, MARKER), width, names, look)
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
    /// Keep or drop a session token (the brain's `SaveToken` and `ForgetToken`).
    Token(brain::Effect),
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
    /// The session tokens kept for this server.
    pub tokens: Vec<brain::SessionToken>,
    /// The configuration file's preferences.
    pub prefs: FileConfig,
    /// Where log files go.
    pub log_dir: Option<PathBuf>,
}

/// The whole state of the full-screen interface: the brain, and the view's own state.
#[derive(Debug)]
pub struct App {
    /// The protocol state, shared with line mode.
    pub brain: Brain,
    look: Look,
    /// The input line.
    pub editor: Editor,
    /// The chat draft, set aside while the input line asks for a name.
    draft: Option<String>,
    /// Rows scrolled up from the bottom; 0 follows new lines.
    pub scroll: usize,
    /// Messages that arrived while scrolled up.
    pub unread: usize,
    /// The message pane's size when last drawn: width, height.
    pub pane: (usize, usize),
    /// The name column, and the (pane width, names generation) it was built for.
    names: Option<((usize, u64), NameColumn)>,
    /// Bumped whenever the names that can appear may have changed (the roster, a sender).
    names_generation: u64,
    /// Senders of stored messages seen so far (bounded by [`MAX_AUTHORS`]).
    authors: HashSet<String>,
    /// What the widest frame of a name shown so far adds (`*name*` 2, `→*name*` 3), so the
    /// column fits the names present in the frames in use.
    frame_extra: usize,
    /// The "new since you scrolled up" line goes above this entry; one is due at the next
    /// message from someone else while scrolled up.
    marker: Option<u64>,
    marker_due: bool,
    /// Keys read faster than a person types are a paste (`paste_speed.rs`); whether the key
    /// being handled is one, and when it was read.
    speed: KeySpeed,
    fast_key: bool,
    read_at: Option<Instant>,
    /// An Enter read within a fast burst, shown as a line break until the burst goes on
    /// (then it was a pasted line break) or ends (then it was Enter: the break goes and the
    /// input is sent). When it was read.
    pending_enter: Option<Instant>,
    /// Row counts of entries by id, for the (width, prefix column) they were counted at.
    row_cache: ((usize, usize), std::collections::HashMap<u64, usize>),
    /// A pasted block waiting for a second Enter: its line count.
    pub confirm: Option<usize>,
    /// The newest stored entry already accounted for (scroll position, prefix width).
    seen: u64,
    effects: Vec<Effect>,
}

impl App {
    /// A new interface, about to connect.
    pub fn new(settings: Settings) -> Self {
        let brain = Brain::new(brain::Settings {
            addr: settings.addr,
            name: settings.name,
            bell: settings.bell,
            reconnect: true,
            ask_again: true,
            who_on_join: true,
            keys_help: Some(KEYS_HELP),
            hello: true,
            tokens: settings.tokens,
            prefs: settings.prefs,
            log_dir: settings.log_dir,
            coalesce: true,
        });
        App {
            brain,
            look: settings.look,
            editor: Editor::new(),
            draft: None,
            scroll: 0,
            unread: 0,
            pane: (80, 20),
            names: None,
            names_generation: 0,
            authors: HashSet::new(),
            frame_extra: 0,
            marker: None,
            marker_due: false,
            speed: KeySpeed::new(),
            fast_key: false,
            read_at: None,
            pending_enter: None,
            row_cache: ((0, 0), std::collections::HashMap::new()),
            confirm: None,
            seen: 0,
            effects: Vec::new(),
        }
    }

    /// The effects produced so far, in order; the caller carries them out.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// The look (styles on or off).
    pub fn look(&self) -> Look {
        self.look
    }

    /// The connection's state.
    pub fn link(&self) -> &Link {
        &self.brain.link
    }

    /// Hands `msg` to the brain, then carries out what concerns the view and queues the rest.
    fn update(&mut self, msg: Msg, now: &Now) {
        for effect in self.brain.update(msg, now) {
            match effect {
                brain::Effect::Send(line) => self.effects.push(Effect::Send(line)),
                brain::Effect::Connect => self.effects.push(Effect::Connect),
                brain::Effect::Disconnect => self.effects.push(Effect::Disconnect),
                brain::Effect::Bell => self.effects.push(Effect::Bell),
                brain::Effect::TakeInput => {
                    self.confirm = None;
                    self.editor.take();
                }
                brain::Effect::AskConfirm(lines) => self.confirm = Some(lines),
                brain::Effect::Updated(id) => {
                    self.row_cache.1.remove(&id);
                    self.names_generation += 1;
                }
                brain::Effect::View(Local::Clear | Local::Query(_)) => {
                    // The brain cleared its store, or the view changed between the room and
                    // a conversation: laid out again from the bottom.
                    self.row_cache.1.clear();
                    (self.scroll, self.unread) = (0, 0);
                    (self.marker, self.marker_due) = (None, false);
                }
                brain::Effect::View(Local::Search(text)) => {
                    if let Some(id) = self.brain.search_step(now, &text) {
                        self.scroll_to(id);
                    }
                }
                brain::Effect::View(_) => {}
                effect @ (brain::Effect::SaveToken(_) | brain::Effect::ForgetToken { .. }) => {
                    self.effects.push(Effect::Token(effect));
                }
            }
        }
        self.sync();
    }

    /// Follows the brain: new entries keep the view still when scrolled up and widen the
    /// prefix column; the input line asks for a name while naming, then gives the draft back.
    fn sync(&mut self) {
        let (width, _) = self.pane;
        let mut fresh = Vec::new();
        for entry in self.brain.store.iter().rev() {
            if entry.id <= self.seen {
                break;
            }
            fresh.push(entry.clone());
        }
        let mut changed_names = false;
        let mut marker_at = None;
        for entry in &fresh {
            match &entry.kind {
                Kind::Msg { from } | Kind::Act { from } | Kind::Private { from, .. } => {
                    let to = match &entry.kind {
                        Kind::Private { to, .. } => Some(to),
                        _ => None,
                    };
                    let extra = match (&entry.kind, entry.own) {
                        (Kind::Private { .. }, true) => Frame::PrivateTo.extra(),
                        (Kind::Private { .. }, false) => Frame::Private.extra(),
                        _ => 0,
                    };
                    if extra > self.frame_extra {
                        self.frame_extra = extra;
                        changed_names = true;
                    }
                    for name in std::iter::once(from).chain(to) {
                        if !self.authors.contains(name) {
                            if self.authors.len() >= MAX_AUTHORS {
                                self.authors.clear();
                            }
                            self.authors.insert(name.clone());
                            changed_names = true;
                        }
                    }
                }
                // The roster changes with joins, leaves, renames and /who replies.
                _ => changed_names = true,
            }
        }
        if changed_names {
            self.names_generation += 1;
        }
        let names = self.name_column(width).clone();
        for entry in fresh.iter().rev() {
            if self.scroll > 0 && self.brain.shows(entry) {
                if self.marker_due && entry.has_markup() && !entry.own {
                    self.marker_due = false;
                    marker_at = Some(entry.id);
                    self.scroll += marker_rows(width, &names, self.look).len();
                }
                self.scroll += layout::layout_named(entry, width, &names, self.look).len();
                if entry.has_markup() {
                    self.unread += 1;
                }
            }
            self.seen = entry.id;
        }
        if let Some(id) = marker_at {
            self.marker = Some(id);
        }
        let naming = self.brain.link == Link::Naming;
        if naming && self.draft.is_none() {
            self.draft = Some(self.editor.text().to_owned());
            self.editor.set("");
        } else if !naming {
            if let Some(draft) = self.draft.take() {
                self.editor.set(&draft);
            }
        }
    }

    /// A notice from the client itself.
    pub fn notice(&mut self, now: &Now, text: &str) {
        self.brain.notice(now, text);
        self.sync();
    }

    /// A problem the view found (a refused paste, a full input), shown as an error.
    fn problem(&mut self, now: &Now, text: &str) {
        self.brain.problem(now, text);
        self.sync();
    }

    /// The connection attempt succeeded (the terminal loop keeps the writing half).
    pub fn connected(&mut self, tls: Option<String>, now: &Now) {
        self.update(Msg::Connected { tls }, now);
    }

    /// A report of the network thread (of the current connection attempt).
    pub fn on_net(&mut self, event: NetEvent, now: &Now) {
        let msg = match event {
            NetEvent::Connected(writer) => Msg::Connected {
                tls: writer.tls_description(),
            },
            NetEvent::Failed(code, why) => Msg::Failed(code, why),
            NetEvent::Line(incoming) => Msg::Line(incoming),
            NetEvent::Closed(why) => Msg::Closed(why),
        };
        self.update(msg, now);
    }

    /// One line from the server.
    pub fn on_line(&mut self, line: &str, now: &Now) {
        self.update(Msg::Line(Incoming::Line(line.to_owned())), now);
    }

    /// Timers: a due reconnection attempt, the end of a leave that got no answer, an Enter
    /// held within a burst of keys. Returns whether a held Enter was settled: the screen
    /// changed even when nothing goes to the server (`/query`, `/clear`, `/search`, typed by
    /// `tmux send-keys ... Enter`, were not drawn until the next key).
    pub fn tick(&mut self, now: &Now) -> bool {
        let settled = self
            .pending_enter
            .is_some_and(|at| now.instant.saturating_duration_since(at) >= PASTE_GAP);
        if settled {
            self.resolve_enter(now);
        }
        self.update(Msg::Tick, now);
        settled
    }

    /// Asks to leave: by `/leave` when in the room, at once otherwise.
    fn leave(&mut self, now: &Now) {
        self.update(Msg::Leave, now);
    }

    /// The process was asked to end (SIGTERM, SIGHUP): leave as the user would.
    pub fn terminate(&mut self, now: &Now) {
        self.leave(now);
    }

    /// Sends what the input line holds (Enter).
    fn submit(&mut self, now: &Now) {
        let text = self.editor.text().to_owned();
        let confirmed = self.confirm.is_some();
        self.update(Msg::Enter { text, confirmed }, now);
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

    /// Leaving the newest line: the old "new since" line goes (while at the bottom, so the
    /// view does not move), a new one is due at the next message.
    fn leave_bottom(&mut self) {
        if let Some(id) = self.marker.take() {
            self.row_cache.1.remove(&id);
        }
        self.marker_due = true;
    }

    /// Scrolls so that entry `id` is in the middle of the pane.
    fn scroll_to(&mut self, id: u64) {
        let (width, height) = self.pane;
        let names = self.name_column(width).clone();
        let mut below: usize = 0;
        for index in 0..self.brain.store.len() {
            let Some(entry_id) = self.brain.store.newest(index).map(|e| e.id) else {
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
            KeyCode::Esc if self.editor.search().is_some() => self.editor.cancel_search(),
            // Esc leaves a conversation for the room, as closing a query window does.
            KeyCode::Esc if self.brain.query().is_some() => self.update(Msg::Room, now),
            KeyCode::Esc => {}
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
                let roster = &self.brain.roster;
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

    /// How many rows `entry` takes at `width` with a `prefix` column, remembered per entry
    /// until the width or the prefix column changes (scrolling far back stays cheap).
    fn row_count(&mut self, index: usize, width: usize, names: &NameColumn) -> usize {
        let prefix = names.width();
        if self.row_cache.0 != (width, prefix) {
            self.row_cache = ((width, prefix), std::collections::HashMap::new());
        }
        let Some(entry) = self.brain.store.newest(index) else {
            return 0;
        };
        if let Some(&n) = self.row_cache.1.get(&entry.id) {
            return n;
        }
        // What the view hides (the room, in a conversation) takes no rows.
        if !self.brain.shows(entry) {
            return 0;
        }
        let mut n = layout::layout_named(entry, width, names, self.look).len();
        if self.marker == Some(entry.id) {
            n += marker_rows(width, names, self.look).len();
        }
        let id = entry.id;
        if self.row_cache.1.len() >= crate::core::store::MAX_ENTRIES * 2 {
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
        let hit = self.brain.search().and_then(|s| s.at);
        // Pass 1: row counts from the newest entry up, until the window is covered.
        let want = self.scroll.saturating_add(height);
        let mut total = 0;
        let mut counts = Vec::new();
        for index in 0..self.brain.store.len() {
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
        for (entry, n) in self.brain.store.iter().rev().zip(counts) {
            let (start, end) = (below, below + n);
            below = end;
            if end <= low {
                continue;
            }
            if start >= high {
                break;
            }
            if n == 0 {
                continue;
            }
            let mut rows = layout::layout_named(entry, width, &names, self.look);
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
            if self.marker == Some(entry.id) {
                let mut marked = marker_rows(width, &names, self.look);
                marked.extend(rows);
                rows = marked;
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
        let name = sanitize(self.brain.me().unwrap_or("-")).into_owned();
        let mut parts = vec![
            Part::new(5, [sanitize(&self.brain.settings().addr).into_owned()]),
            Part::new(3, [name]),
        ];
        if let Some(n) = self.brain.online() {
            parts.push(Part::new(4, [format!("{n} online")]));
        }
        let state: Vec<String> = match &self.brain.link {
            Link::Connecting => vec!["connecting...".into()],
            Link::LoggingIn => vec!["logging in...".into()],
            Link::Naming => vec!["choose a name".into()],
            Link::Waiting => vec!["waiting for approval".into(), "waiting".into()],
            Link::Member if self.brain.is_leaving() => vec!["leaving...".into()],
            Link::Member => vec!["connected".into()],
            Link::Retrying { at, why, .. } => {
                let secs = at.saturating_duration_since(now).as_secs() + 1;
                vec![
                    format!(
                        "reconnecting in {secs} s (try {}) · /reconnect · Ctrl-C gives up · {why}",
                        self.brain.attempt
                    ),
                    format!("reconnecting in {secs} s · {why}"),
                    format!("retry in {secs} s: {why}"),
                    // The reason's last words (`Connection refused`), without the address.
                    format!(
                        "retry in {secs} s: {}",
                        why.rsplit(": ").next().unwrap_or(why)
                    ),
                    // In a word (`closed`, `refused`), for 20 to 40 columns.
                    format!("retry {secs}s: {}", brief(why)),
                ]
            }
            Link::Ended { .. } => vec![
                "disconnected · /reconnect · Ctrl-C quits".into(),
                "disconnected · /reconnect".into(),
                "disconnected".into(),
            ],
        };
        if let Some(query) = self.brain.query() {
            // Before the state, so it wins a tie while connected: plain lines go privately
            // here, which must never be mistaken for the room. Disconnected, the state (and
            // why) matters more.
            let (with, n) = (query.with(), query.unread());
            let connected = self.brain.link == Link::Member;
            parts.push(Part::new(
                if connected { 1 } else { 2 },
                [
                    format!("query {with} · room: {n} new · Esc: room"),
                    format!("query {with} · room: {n} new"),
                    format!("query {with} +{n}"),
                    format!("[{with}] +{n}"),
                ],
            ));
        }
        // All is well when connected: then the unread count and a query matter more (at 20
        // columns `↓ 1 new` is kept before `connected`).
        let calm = self.brain.link == Link::Member && !self.brain.is_leaving();
        parts.push(Part::new(if calm { 3 } else { 1 }, state));
        if let Some(lines) = self.confirm {
            parts.push(Part::new(
                0,
                [
                    format!("paste of {lines} lines: Enter sends them, Esc goes back"),
                    format!("paste of {lines} lines: Enter sends, Esc back"),
                    format!("{lines} lines: Enter/Esc"),
                ],
            ));
        } else if let (Some(Search { query, at: Some(_) }), true) =
            (self.brain.search(), self.scroll > 0)
        {
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
        // `[ ... ]` around it when there is room for the brackets: never at the cost of
        // cutting the most important part (`8 lines: Enter/Esc` at 20 columns).
        let inner_width = width.saturating_sub(4);
        if inner_width > 0 && fits(&parts, inner_width) {
            format!("[ {} ]", fit(&parts, inner_width))
        } else {
            fit(&parts, width)
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
        let (roster, me, authors) = (&self.brain.roster, self.brain.me(), &self.authors);
        let extra = self.frame_extra;
        let (_, column) = self.names.get_or_insert_with(|| {
            let mut present = roster.matching("");
            present.extend(me.map(str::to_owned));
            // Never narrower than a usual name where the pane has room: names of members who
            // left stay whole as long as they are short.
            let cap = cap_for(width);
            let widest = (present.iter().map(String::len).max().unwrap_or(0) + extra)
                .max(COMFORTABLE_COLUMN.min(cap));
            let known = present.iter().chain(authors.iter()).map(String::as_str);
            (stamp, NameColumn::new(known, widest, cap))
        });
        column
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
        } else if self.brain.link == Link::Naming {
            "name: ".to_owned()
        } else if let Some(query) = self.brain.query() {
            format!("[{}] ", query.with())
        } else {
            "> ".to_owned()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::core::brain::{backoff, mentions};
    use crate::exit::{ExitCode, Outcome};
    use crossterm::event::KeyEvent;
    use std::time::Duration;

    fn now() -> Now {
        Now {
            instant: Instant::now(),
            clock: "12:00".to_owned(),
            utc: chrono::Utc::now(),
        }
    }

    fn settings() -> Settings {
        Settings {
            addr: "127.0.0.1:55555".into(),
            name: Some("bob".into()),
            look: Look::new(false),
            bell: true,
            tokens: Vec::new(),
            prefs: FileConfig::default(),
            log_dir: None,
        }
    }

    fn app() -> App {
        App::new(settings())
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
        // HELLO 3 first; the name goes at once (no token to resume with, so no wait).
        assert_eq!(
            a.take_effects(),
            [Effect::Send("HELLO 3".into()), Effect::Send("bob".into())]
        );
        a.on_line("WELCOME bob 3", &n);
        assert_eq!(a.take_effects(), [Effect::Send("/who".into())]);
        assert_eq!(a.brain.link, Link::Member);
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
        assert_eq!(a.brain.outcome, Some(Outcome::success()));
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
            ["HELLO 3", "bob", "/who"].map(|l| Effect::Send(l.into()))
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
        assert!(matches!(a.brain.link, Link::Retrying { .. }));
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
        assert_eq!(
            a.take_effects(),
            [Effect::Send("HELLO 3".into()), Effect::Send("bob".into())]
        );
        assert_eq!(a.editor.text(), "draft");
    }

    #[test]
    fn giving_up_reconnecting_exits_lost_whatever_ended_the_connection() {
        // Regression (issue 19): 5 after a server's TERM, 6 after its kill -9, while exit.rs
        // said 3. Now 6 ("gave up reconnecting") after a shutdown, a drop, a full server, and
        // while attempts fail to connect.
        let shutdown = "BYE server shutting down";
        let full = "ERROR server-full the room is full";
        for end in [Some(shutdown), None, Some(full)] {
            let mut a = match end {
                Some(line) if line == full => {
                    let mut a = app();
                    a.on_net(NetEvent::Connected(dummy_writer()), &now());
                    a
                }
                _ => joined(),
            };
            let n = now();
            match end {
                Some(line) => a.on_line(line, &n),
                None => a.on_net(NetEvent::Closed(None), &n),
            }
            assert!(matches!(a.brain.link, Link::Retrying { .. }), "{end:?}");
            key(&mut a, KeyCode::Char('c'), KeyModifiers::CONTROL);
            assert_eq!(
                a.brain.outcome.as_ref().unwrap().code,
                ExitCode::Lost,
                "{end:?}"
            );
        }
        // An attempt that failed to connect: still 6.
        let mut a = joined();
        let n = now();
        a.on_net(NetEvent::Closed(Some("reset".into())), &n);
        let later = Now {
            instant: n.instant + Duration::from_secs(2),
            ..n.clone()
        };
        a.tick(&later);
        assert_eq!(a.take_effects(), [Effect::Disconnect, Effect::Connect]);
        let refused = "cannot connect to 127.0.0.1:55555: connection refused";
        a.on_net(
            NetEvent::Failed(ExitCode::Unreachable, refused.into()),
            &later,
        );
        key(&mut a, KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(a.brain.outcome.as_ref().unwrap().code, ExitCode::Lost);
    }

    #[test]
    fn a_refused_name_is_cleared_from_the_prompt() {
        // Regression (issue 19): `you` refused, then `Alice` typed, sent `youAlice`.
        let mut a = App::new(Settings {
            name: None,
            ..settings()
        });
        let n = now();
        a.on_net(NetEvent::Connected(dummy_writer()), &n);
        a.on_line("NAME? your name?", &n);
        assert_eq!(a.take_effects(), [Effect::Send("HELLO 3".into())]);
        typed(&mut a, "you");
        key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
        assert!(a.take_effects().is_empty());
        assert_eq!(a.editor.text(), "");
        assert!(rows(&mut a).iter().any(|r| r.contains("reserved")));
        typed(&mut a, "Alice");
        key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(a.take_effects(), [Effect::Send("Alice".into())]);
        // Refused by the server this time: asked again with an empty prompt.
        a.on_line("ERROR name-taken somebody is Alice", &n);
        a.on_line("NAME? another", &n);
        assert_eq!(a.editor.text(), "");
        typed(&mut a, "Bob");
        key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(a.take_effects(), [Effect::Send("Bob".into())]);
    }

    #[test]
    fn nick_to_a_bad_name_says_why() {
        // Regression (issue 19): `/nick bad name!` went out and came back as `usage`.
        let mut a = joined();
        for (line, why) in [
            ("/nick bad name!", "A-Z a-z 0-9 _ - (not ' ')"),
            ("/nick alice!", "(not '!')"),
            ("/NICK you", "reserved"),
            (&format!("/nick {}", "x".repeat(40)), "at most 32"),
        ] {
            typed(&mut a, line);
            key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
            assert!(a.take_effects().is_empty(), "{line}");
            let shown = rows(&mut a);
            let last = shown.iter().rev().find(|r| !r.trim().is_empty()).unwrap();
            assert!(
                last.contains("!! │") && last.contains(why),
                "{line}: {last}"
            );
            // The line stays for editing.
            assert_eq!(a.editor.text(), line);
            a.editor.take();
        }
        typed(&mut a, "/nick robert");
        key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(a.take_effects(), [Effect::Send("/nick robert".into())]);
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
            a.brain.link,
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
        let outcome = a.brain.outcome.as_ref().unwrap();
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
            a.brain.link,
            Link::Ended {
                code: ExitCode::Removed,
                ..
            }
        ));
        key(&mut a, KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(a.brain.outcome.as_ref().unwrap().code, ExitCode::Removed);
    }

    #[test]
    fn history_already_on_screen_is_not_repeated_after_a_reconnection() {
        let mut a = joined();
        let n = now();
        a.on_line("MSG alice - seen live", &n);
        a.on_line("LEAVE bob dropped", &n);
        assert!(matches!(
            a.brain.link,
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
        let flags: Vec<bool> = a
            .brain
            .store
            .iter()
            .rev()
            .take(3)
            .map(|e| e.highlight)
            .collect();
        assert_eq!(flags, [true, false, true]);
        let mut quiet = App::new(Settings {
            bell: false,
            ..settings()
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
            .brain
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
        // Only short names present: the column is back to its comfortable width.
        assert!(row.starts_with("12:00   alice │ after"), "{row:?}");
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
        let own = a.brain.store.iter().filter(|e| e.own).count();
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
            .brain
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
            ..settings()
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
            .brain
            .store
            .iter()
            .filter(|e| e.text.contains("member"))
            .collect();
        assert_eq!(who.len(), 1);
        assert_eq!(who[0].text, format!("online (65): {}", names.join(", ")));
        assert!(a
            .brain
            .store
            .iter()
            .any(|e| e.text == "the operator says hi"));
    }

    #[test]
    fn sixty_joins_are_one_row_and_a_message_starts_a_new_run() {
        let mut a = joined();
        let n = now();
        for i in 0..60 {
            a.on_line(&format!("JOIN m{i}"), &n);
        }
        let events: Vec<&Entry> = a
            .brain
            .store
            .iter()
            .filter(|e| e.kind == Kind::Event)
            .collect();
        assert_eq!(events.len(), 1, "{events:#?}");
        assert_eq!(events[0].text, "60 joined: m0, m1, m2, m3, m4 and 55 more");
        a.on_line("MSG m1 - hi", &n);
        a.on_line("LEAVE m2 quit", &n);
        let last = a.brain.store.newest(0).unwrap();
        assert_eq!(last.text, "m2 left (quit)");
        assert_eq!(a.brain.online(), Some(2 + 60 - 1));
    }

    #[test]
    fn ignored_names_and_hidden_joins_are_not_shown() {
        let prefs = crate::config_file::FileConfig {
            hide_joins: true,
            ..crate::config_file::FileConfig::default()
        };
        let mut a = with_prefs(prefs);
        let n = now();
        a.on_line("JOIN carol", &n);
        assert!(!a.brain.store.iter().any(|e| e.text.contains("carol")));
        command(&mut a, "/ignore spammer");
        a.on_line("MSG spammer - buy now", &n);
        a.on_line("PRIV spammer bob - psst", &n);
        a.on_line("MSG carol - real", &n);
        assert!(!a
            .brain
            .store
            .iter()
            .any(|e| e.text.contains("buy") || e.text == "psst"));
        assert!(a.brain.store.iter().any(|e| e.text == "real"));
        assert!(
            a.take_effects().is_empty(),
            "no bell for an ignored private"
        );
        command(&mut a, "/ignore");
        assert!(a
            .brain
            .store
            .newest(0)
            .unwrap()
            .text
            .contains("ignored: spammer"));
        command(&mut a, "/unignore SPAMMER");
        a.on_line("MSG spammer - back", &n);
        assert_eq!(a.brain.store.newest(0).unwrap().text, "back");
    }

    #[test]
    fn highlight_words_mark_and_ring() {
        let prefs = crate::config_file::FileConfig {
            highlight: vec!["deploy".into()],
            ..crate::config_file::FileConfig::default()
        };
        let mut a = with_prefs(prefs);
        a.on_line("MSG alice - the DEPLOY is done", &now());
        assert!(a.brain.store.newest(0).unwrap().highlight);
        assert_eq!(a.take_effects(), [Effect::Bell]);
        a.on_line("MSG alice - redeployed", &now());
        assert!(!a.brain.store.newest(0).unwrap().highlight);
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
        assert!(a.brain.store.is_empty());
        a.on_line("MSG alice - after", &now());
        assert_eq!(a.brain.store.len(), 1);
    }

    #[test]
    fn a_query_shows_one_conversation_and_esc_goes_back_to_the_room() {
        let mut a = joined();
        let n = now();
        a.on_line("MSG alice - in the room", &n);
        command(&mut a, "/query carol");
        assert_eq!(a.prompt(), "[carol] ");
        a.on_line("MSG alice - more room talk", &n);
        a.on_line("PRIV carol bob - psst", &n);
        a.on_line("PRIV dave bob - not carol", &n);
        let shown = rows(&mut a).join("\n");
        assert!(shown.contains("psst"), "{shown}");
        assert!(
            !shown.contains("room talk") && !shown.contains("not carol"),
            "{shown}"
        );
        assert!(a.status(n.instant).contains("query carol · room: 2 new"));
        a.take_effects();
        typed(&mut a, "hi");
        key(&mut a, KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(sent(&mut a), ["/private carol hi"]);
        // Esc keeps a draft, and goes back to the room.
        typed(&mut a, "draft");
        key(&mut a, KeyCode::Esc, KeyModifiers::NONE);
        assert_eq!(a.prompt(), "> ");
        assert_eq!(a.editor.text(), "draft");
        let shown = rows(&mut a).join("\n");
        assert!(
            shown.contains("room talk") && shown.contains("not carol"),
            "{shown}"
        );
        assert!(!a.status(n.instant).contains("query"));
        // At 20 columns the query is shown while connected; the retry and why, once not.
        a.editor.take();
        command(&mut a, "/query carol");
        assert!(a.status_for(n.instant, 20).contains("carol"));
        a.on_net(NetEvent::Closed(None), &n);
        let bar = a.status_for(n.instant, 20);
        assert!(bar.contains("retry") && bar.contains("closed"), "{bar}");
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
        assert!(a.brain.store.newest(0).unwrap().text.contains("no match"));
    }

    #[test]
    fn a_line_marks_what_is_new_since_you_scrolled_up() {
        let mut a = joined();
        let n = now();
        for i in 0..50 {
            a.on_line(&format!("MSG alice - old {i}"), &n);
        }
        let view = |a: &mut App| -> Vec<String> {
            a.visible_rows(80, 10).iter().map(layout::plain).collect()
        };
        view(&mut a);
        key(&mut a, KeyCode::PageUp, KeyModifiers::NONE);
        let before = view(&mut a);
        a.on_line("MSG alice - new one", &n);
        a.on_line("MSG alice - new two", &n);
        // The view stays still while scrolled up.
        assert_eq!(view(&mut a), before);
        key(&mut a, KeyCode::End, KeyModifiers::CONTROL);
        let rows = view(&mut a);
        let at = rows.iter().position(|r| r.contains("new one")).unwrap();
        assert!(rows[at - 1].contains(MARKER), "{rows:#?}");
        assert!(rows[at - 2].contains("old 49"), "{rows:#?}");
        // Scrolling up again moves the line: one at a time.
        key(&mut a, KeyCode::PageUp, KeyModifiers::NONE);
        a.on_line("MSG alice - newer", &n);
        key(&mut a, KeyCode::End, KeyModifiers::CONTROL);
        let rows = view(&mut a);
        assert_eq!(
            rows.iter().filter(|r| r.contains(MARKER)).count(),
            1,
            "{rows:#?}"
        );
        let at = rows.iter().position(|r| r.contains("newer")).unwrap();
        assert!(rows[at - 1].contains(MARKER), "{rows:#?}");
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
            ..settings()
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
        let prefs = crate::config_file::FileConfig {
            time_format: crate::core::clock::TimeFormat::parse("%H:%M:%S").unwrap(),
            ..crate::config_file::FileConfig::default()
        };
        let mut a = with_prefs(prefs);
        a.on_line("HIST 2026-12-01T16:05:09.123Z MSG alice - earlier", &now());
        let entry = a.brain.store.iter().find(|e| e.text == "earlier").unwrap();
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
