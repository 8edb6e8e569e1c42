//! The full-screen view's own state and rules: the input line, the keys, the scroll position
//! and what the message pane shows. Everything about the protocol (the login, server lines,
//! reconnecting, what each event stores) is the shared [`Brain`]'s; this module feeds it
//! [`Msg`]s and carries out its effects that concern the screen. It never touches a socket, a
//! terminal or the clock, so every rule is unit-testable; `tui/mod.rs` runs the loop.

use std::time::Instant;

use chat_common::sanitize::sanitize;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};
use ratatui::text::Line;
use unicode_width::UnicodeWidthStr;

use super::complete::complete;
use super::editor::Editor;
use super::layout::{self, Look};
use crate::core::brain::{self, Brain, Link, Msg, Now};
use crate::net::{Incoming, NetEvent};

/// Rows scrolled by one step of the mouse wheel.
const WHEEL_ROWS: usize = 3;

/// What `/help` adds about the keys of the full screen.
const KEYS_HELP: &str = "keys: Enter sends; Ctrl-C clears the line, or leaves on an empty one; \
                         Up/Down history; Ctrl-R searches it; Tab completes; PgUp/PgDn, Home/End \
                         and the mouse wheel scroll; /reconnect connects again";

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
    /// The widest prefix seen, for the prefix column.
    widest_prefix: usize,
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
        });
        App {
            brain,
            look: settings.look,
            editor: Editor::new(),
            draft: None,
            scroll: 0,
            unread: 0,
            pane: (80, 20),
            widest_prefix: 0,
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
                }
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
            fresh.push(entry);
        }
        for entry in fresh.into_iter().rev() {
            self.widest_prefix = self.widest_prefix.max(layout::prefix_text(entry).width());
            if self.scroll > 0 {
                let prefix = layout::prefix_width(width, self.widest_prefix);
                self.scroll += layout::layout(entry, width, prefix, self.look).len();
                if entry.has_markup() {
                    self.unread += 1;
                }
            }
            self.seen = entry.id;
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

    /// Timers: a due reconnection attempt, the end of a leave that got no answer.
    pub fn tick(&mut self, now: &Now) {
        self.update(Msg::Tick, now);
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
        if rows >= 0 {
            self.scroll = self.scroll.saturating_add(rows.unsigned_abs());
        } else {
            self.scroll = self.scroll.saturating_sub(rows.unsigned_abs());
        }
        if self.scroll == 0 {
            self.unread = 0;
        }
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
                self.editor.insert(&text);
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
                } else {
                    self.editor.insert(s);
                }
            }
            KeyCode::Enter => {
                if self.editor.search().is_some() {
                    self.editor.accept_search();
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
                let roster = &self.brain.roster;
                self.editor.tab(|before| complete(before, roster));
            }
            KeyCode::PageUp => self.scroll_by(self.page()),
            KeyCode::PageDown => self.scroll_by(-self.page()),
            KeyCode::Home => self.scroll = usize::MAX,
            KeyCode::End => self.scroll_by(isize::MIN),
            _ => {}
        }
    }

    /// How many rows `entry` takes at `width` with a `prefix` column, remembered per entry
    /// until the width or the prefix column changes (scrolling far back stays cheap).
    fn row_count(&mut self, index: usize, width: usize, prefix: usize) -> usize {
        if self.row_cache.0 != (width, prefix) {
            self.row_cache = ((width, prefix), std::collections::HashMap::new());
        }
        let Some(entry) = self.brain.store.newest(index) else {
            return 0;
        };
        if let Some(&n) = self.row_cache.1.get(&entry.id) {
            return n;
        }
        let n = layout::layout(entry, width, prefix, self.look).len();
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
        let prefix = layout::prefix_width(width, self.widest_prefix);
        // Pass 1: row counts from the newest entry up, until the window is covered.
        let want = self.scroll.saturating_add(height);
        let mut total = 0;
        let mut counts = Vec::new();
        for index in 0..self.brain.store.len() {
            let n = self.row_count(index, width, prefix);
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
            let mut rows = layout::layout(entry, width, prefix, self.look);
            // Rows of this entry below the window's bottom, and above its top.
            rows.truncate(n.saturating_sub(low.saturating_sub(start)));
            let skip_top = end.saturating_sub(high);
            rows.drain(..skip_top.min(rows.len()));
            chunks.push(rows);
        }
        chunks.into_iter().rev().flatten().collect()
    }

    /// The status line's words: server, name, online count, connection state, unread mark.
    pub fn status(&self, now: Instant) -> String {
        let name = self.brain.me().unwrap_or("-");
        let online = match self.brain.online() {
            Some(n) => format!(" · {n} online"),
            None => String::new(),
        };
        let state = match &self.brain.link {
            Link::Connecting => "connecting...".to_owned(),
            Link::LoggingIn => "logging in...".to_owned(),
            Link::Naming => "choose a name".to_owned(),
            Link::Waiting => "waiting for approval".to_owned(),
            Link::Member if self.brain.is_leaving() => "leaving...".to_owned(),
            Link::Member => "connected".to_owned(),
            Link::Retrying { at, why, .. } => format!(
                "reconnecting in {} s (try {}) · /reconnect · Ctrl-C gives up · {}",
                at.saturating_duration_since(now).as_secs() + 1,
                self.brain.attempt,
                why
            ),
            Link::Ended { .. } => "disconnected · /reconnect · Ctrl-C quits".to_owned(),
        };
        let mut status = format!(
            "[ {} · {}{} · {} ]",
            sanitize(&self.brain.settings().addr),
            name,
            online,
            state
        );
        if let Some(lines) = self.confirm {
            status.push_str(&format!(
                " [ paste of {lines} lines: Enter sends them, Esc goes back ]"
            ));
        } else if self.scroll > 0 {
            status.push_str(&format!(" [ more below: {} new ]", self.unread));
        }
        status
    }

    /// The prompt before the input text.
    pub fn prompt(&self) -> String {
        if let Some(search) = self.editor.search() {
            let state = if search.found.is_some() || search.query.is_empty() {
                "search"
            } else {
                "failing search"
            };
            format!("({state}) '{}': ", search.query)
        } else if self.brain.link == Link::Naming {
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
            look: Look { styles: false },
            bell: true,
            tokens: Vec::new(),
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
        assert!(text[at + 3].starts_with("* │ alice waves"), "{text:?}");
        assert!(
            text[at + 4].starts_with("-- │ alice is now known as al"),
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
        let prefix = layout::prefix_width(50, a.widest_prefix);
        let all: Vec<String> = a
            .brain
            .store
            .iter()
            .flat_map(|e| layout::layout(e, 50, prefix, a.look()))
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
        key(&mut a, KeyCode::End, KeyModifiers::NONE);
        assert!(small(&mut a).last().unwrap().contains("new one"));
        key(&mut a, KeyCode::Home, KeyModifiers::NONE);
        assert!(small(&mut a)
            .iter()
            .any(|r| r.contains("you are in as bob")));
    }
}
