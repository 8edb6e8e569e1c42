//! Protocol version 3's state and its rules: ids on messages, durable before delivered, tokens,
//! and sessions that outlive a connection (`RESUME`, the resume window, remembered members).
//!
//! Owns [`V3`]: the id generator, the messages held for the store ([`Held`]), the writes the
//! store has not been handed yet, the remembered members ([`Remembered`]), the members within
//! their resume window (detached: no connection, still in the room), and the replays under way.
//! It answers plain questions and returns decisions ([`ResumeDecision`], [`Detached`] members, what a
//! held message becomes); it never sends a line, emits a room event or sees a socket, a disk or
//! a clock (times are passed in). `Core` composes it with the room and the sessions and routes
//! what follows: `resume.rs` (HELLO, RESUME, token login, the window) and `durability.rs` (the
//! store's hand-over and the delivery of held messages).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use chat_common::protocol::v3::VERSION;
use chat_common::protocol::{LeaveReason, ServerMsg};

use super::bans::{Ban, IpNet};
use super::durable::{Entry, Kind, MemberRecord, Write};
use super::held::Held;
use super::msgid::{IdGen, MsgId};
use super::outgoing::Outgoing;
use super::remembered::{Refusal, Remembered};
use super::{ConnId, Now};
use crate::token::Token;

/// Log entries read per replay page at most (fewer when lines may be long: [`replay_page_len`]).
pub const REPLAY_PAGE: usize = 256;
/// What a replayed entry may cost in its member's queue beyond `--max-line` bytes of text: its
/// tags, `HIST <time> `, the line's prefix, the queue's bookkeeping, and an IRC member's copy
/// split into several lines, each with its own prefix and tags.
pub const REPLAY_ENTRY_SLACK: usize = 2048;

/// Entries per resume replay page for a member whose queue may hold `max_queue` bytes, with
/// lines of up to `max_line` bytes. A page is read only once the member's queue is below half
/// of `max_queue`, so a page of the longest lines must fit in the other half: 256 entries of
/// 4000 bytes used to overflow the default 1 MiB queue and drop every resuming member (Round
/// 4 in docs/SECURITY.md). At least one entry, at most [`REPLAY_PAGE`].
pub fn replay_page_len(max_queue: usize, max_line: usize) -> usize {
    let per_entry = max_line.saturating_add(REPLAY_ENTRY_SLACK);
    (max_queue / 2 / per_entry).clamp(1, REPLAY_PAGE)
}

/// Under `--cluster`, ids reserved on disk ahead of the one being given: a member's line goes to
/// the room's log at once when its id is below the reserved ceiling, so only one line in this
/// many waits for a commit before it leaves (the commit that raises the ceiling), not every one.
/// An id another server may have seen is never given again after a crash; a crash skips at
/// most this many ids (ids are opaque, and never reused).
pub const RESERVE_AHEAD: u64 = 1024;

/// Remembered members kept at most. Past it a new member gets no token (its session goes on
/// without one, as when the OS gives no random bytes), while members already remembered keep
/// theirs: with `--auto-approve` every version 3 login was remembered for `--remember` days,
/// and one address made 1000 records in 5.5 s (about 0.9 KiB of memory and 1.5 KiB on disk
/// each) with no bound at all (Round 4 in docs/SECURITY.md).
pub const MAX_REMEMBERED: usize = 50_000;

/// A relayed message waiting for the store.
#[derive(Debug)]
pub(super) enum HeldMsg {
    /// `MSG`/`ACT` from `from` to the room.
    Room {
        from: ConnId,
        speaker: Rc<str>,
        line: Rc<Outgoing>,
    },
    /// A line for one connection that must not go out before the round's writes are on disk
    /// (a resumed member's new `TOKEN`, then its `GAP`).
    Direct { to: ConnId, line: Rc<Outgoing> },
    /// `PRIV` from `from` to `to` (a live connection, or none: detached, kept for its resume).
    Priv {
        from: ConnId,
        to: Option<ConnId>,
        line: Rc<Outgoing>,
    },
    /// A newly admitted version 3 member's first `TOKEN`, held until its record (the token's
    /// hash) is on disk; its history and its live room lines wait behind it.
    Admitted { to: ConnId, token: Rc<Outgoing> },
    /// Under `--cluster`: ids below `upto` are reserved on disk once this is released (its
    /// round's commit carries [`Write::Reserve`]); the lines held behind it may then leave.
    Reserved { upto: u64 },
    /// Under `--cluster`: a `MSG`/`ACT` (`to` `None`) or a `PRIV` to the member named `to`
    /// that the room's log brought back (another server's, or this server's own: `from`, its
    /// sender here), logged here in the log's order and delivered once durable: the room's
    /// one order on every server.
    Logged {
        line: Rc<Outgoing>,
        from: Option<ConnId>,
        to: Option<Rc<str>>,
    },
    /// A room line that needs no storing (`JOIN`, `LEAVE`, `NICK`, `INFO`) waiting for its turn
    /// behind held messages; `history_of`: the name whose `LEAVE`/`NICK` this is, for the
    /// history (checked when it is delivered, after the messages before it).
    Line {
        line: Rc<Outgoing>,
        except: Option<ConnId>,
        history_of: Option<Rc<str>>,
    },
}

impl HeldMsg {
    /// Who must be told when the message is refused (the store failed): the sender of a room
    /// message or a private. A line that needs no storing is delivered anyway (its turn has
    /// come), a new member gets its history without its token, and a direct line (a token) is
    /// dropped: the session goes on without a token and its client falls back to an ordinary
    /// join next time.
    /// A logged line of the room's log (`Logged`) was sent to the room already: it is only
    /// missing here, so nobody is told.
    pub fn refused_sender(&self) -> Option<ConnId> {
        match self {
            HeldMsg::Room { from, .. } | HeldMsg::Priv { from, .. } => Some(*from),
            HeldMsg::Line { .. }
            | HeldMsg::Direct { .. }
            | HeldMsg::Admitted { .. }
            | HeldMsg::Reserved { .. }
            | HeldMsg::Logged { .. } => None,
        }
    }
}

/// A member within its resume window: no connection, still in the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Detached {
    pub name: Rc<str>,
    pub until: Instant,
    /// Its last address: the name is held for it when the window ends (`--name-hold`).
    pub ip: IpAddr,
}

/// A replay under way for a resumed member: which log entries it is shown, and where it is.
#[derive(Debug, Clone)]
pub(super) struct ResumeReplay {
    pub name: Rc<str>,
    /// The last sequence number sent (or asked after).
    pub after: Option<u64>,
    /// Whether a `GAP` check is still due (first page, a last id was given).
    pub check_gap: bool,
    /// A `GAP` went to the member already (one says it; more would say nothing new).
    pub gap_said: bool,
}

/// Where the next page of a replay is read from: after a sequence number of this log, or
/// (`--cluster`, the first page) after the message with this id wherever it is logged here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFrom {
    /// After this sequence number (`None`: from the oldest kept); with `find`, the number
    /// the id has when it is of this log's epoch.
    pub after: Option<u64>,
    /// The last id the member saw, to be found in the log.
    pub find: Option<Box<str>>,
}

impl ResumeReplay {
    /// Whether the first page, starting at `first_seq`, shows that messages after the member's
    /// last one are no longer kept.
    pub fn gap_before(&self, first_seq: Option<u64>) -> bool {
        match (self.check_gap, self.after, first_seq) {
            (true, Some(after), Some(first)) => first > after.saturating_add(1),
            _ => false,
        }
    }

    /// Whether the member is shown `e`: every room message, and only its own privates.
    pub fn shows(&self, e: &Entry) -> bool {
        e.kind != Kind::Priv
            || e.from.eq_ignore_ascii_case(&self.name)
            || e.to.eq_ignore_ascii_case(&self.name)
    }
}

/// Who holds a name a resume asks for, as the room and the sessions see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holder {
    /// Nobody connected holds it.
    Free,
    /// A live member's session: a valid token takes it over.
    Member(ConnId),
    /// A connection that is not a member (waiting for the operator, claiming it).
    Other,
}

/// Why a resume (or a token login) admits nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeRefusal {
    /// `RESUME` before `HELLO 3`.
    NeedsHello,
    /// The token admits nobody (the reason is for the log only; the wire says `bad-token`).
    Token(Refusal),
    /// The name is held by a connection that is not a member (a waiting join).
    NameTaken,
    /// The connection is past its name already (waiting, or a member): a token login is only
    /// for a connection that has not named itself.
    Named,
    /// This server is cut off from its cluster: it admits nobody, by token as by name, until
    /// it is back in the room (the connection is denied, as a join would be).
    CutOff,
}

/// What a `RESUME` (or a token login, [`super::Core::admit_remembered`]) comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeDecision {
    /// Admitted. `kept`: it was within its resume window, so its place in the room was kept
    /// and the room hears nothing; otherwise the room hears a `JOIN`.
    Accept {
        /// The member's record (its name as it spells it, who approved it and when).
        record: MemberRecord,
        /// Whether its place in the room was kept.
        kept: bool,
    },
    /// Admitted in place of `holder`, its live session of the name, which is closed with
    /// `BYE resumed elsewhere` (the room hears nothing).
    Takeover {
        /// The member's record.
        record: MemberRecord,
        /// The session taken over.
        holder: ConnId,
    },
    /// Not admitted.
    Refuse(ResumeRefusal),
}

/// Where a resume's replay starts, from the last id the client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ResumePoint {
    /// The sequence number to replay after (`None`: from the start of what is kept).
    pub after: Option<u64>,
    /// The last id is not this log's: some messages were missed (`GAP`).
    pub gap: bool,
    /// Under `--cluster`: the last id, to be found in the log (every server logs every
    /// server's lines under their origin's ids); `GAP` only when it is not kept here.
    pub find: Option<Box<str>>,
}

/// The version 3 state and its rules.
#[derive(Debug)]
pub(super) struct V3 {
    ids: IdGen,
    /// A store is attached: messages wait for it before they are delivered.
    durable: bool,
    /// A store is attached (on disk or in memory): writes and the log go to it, and resume
    /// replays are read from it.
    attached: bool,
    /// The store failed: messages are refused until it works again.
    down: bool,
    held: Held<HeldMsg>,
    /// Log entries for the store, this round.
    entries: Vec<Entry>,
    /// Other writes for the store, this round.
    writes: Vec<Write>,
    remembered: Remembered,
    /// `--remember`.
    remember: Duration,
    /// Members within their resume window, by lower-case name.
    detached: HashMap<String, Detached>,
    /// Connections whose replay is under way (they get no live room lines until it ends).
    replaying: HashSet<ConnId>,
    replays: HashMap<ConnId, ResumeReplay>,
    /// Replays that need a page read (the shell takes them).
    reads: Vec<(ConnId, ReadFrom)>,
    /// Version 3 connections.
    sessions: HashSet<ConnId>,
    /// Connections of a dialect whose clients keep one fixed password (IRC): their member gets
    /// a token when first admitted (unless `--remember 0`), which a token login never replaces.
    fixed: HashSet<ConnId>,
    resume_window: Duration,
    /// Members kept within their window at once at most (`--max-clients`): past it a dropped
    /// member leaves at once, so members without a connection cannot outnumber connections.
    max_detached: usize,
    /// Members kept from one address at most (`--max-per-ip`; 0: no limit).
    max_detached_per_ip: usize,
    /// [`MAX_REMEMBERED`] (smaller in tests).
    max_remembered: usize,
    /// Record changes (members, bans) for the cluster, this round (`--cluster`, once in the
    /// room: see `shared.rs`).
    pub shared: Vec<Write>,
    /// The cluster shares the records: changes are queued in `shared`.
    pub sharing: bool,
    /// `--cluster`: room messages and privates are logged when the room's log brings them
    /// back ([`V3::log_arrival`]), in its order, so every server keeps (and delivers) the
    /// same sequence; a line's own stamp only reserves its id ([`Write::Reserve`]).
    pub clustered: bool,
    /// The log holds entries (or held some when the store was opened): a (re)join of the room
    /// logs a hole ([`V3::log_hole`]) only then.
    logged: bool,
    /// `--cluster` with a store on disk: ids below this are reserved on disk (a line stamped
    /// with one may go to the room's log without waiting for a commit).
    reserved: u64,
    /// The ceiling asked of the store (at least `reserved`; above it while that commit runs).
    reserving: u64,
    /// The sequence number of the last id given.
    last_seq: u64,
    /// This server's own lines held until their id is reserved: while any is, later ones wait
    /// behind it, so one sender's lines reach the log in its order.
    own_held: usize,
}

/// Milliseconds since the Unix epoch.
pub(super) fn wall_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The wall time of `ms` since the Unix epoch.
pub(super) fn wall_of(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl V3 {
    /// Fresh state; `remember` is `--remember`, `resume_window` `--resume-window`.
    pub fn new(resume_window: Duration, remember: Duration) -> V3 {
        V3 {
            ids: IdGen::ephemeral(),
            durable: false,
            attached: false,
            down: false,
            held: Held::default(),
            entries: Vec::new(),
            writes: Vec::new(),
            remembered: Remembered::new(Vec::new(), remember),
            remember,
            detached: HashMap::new(),
            replaying: HashSet::new(),
            replays: HashMap::new(),
            reads: Vec::new(),
            sessions: HashSet::new(),
            fixed: HashSet::new(),
            resume_window,
            max_detached: usize::MAX,
            max_detached_per_ip: 0,
            max_remembered: MAX_REMEMBERED,
            shared: Vec::new(),
            sharing: false,
            clustered: false,
            logged: false,
            reserved: 0,
            reserving: 0,
            last_seq: 0,
            own_held: 0,
        }
    }

    /// Bounds the members kept within their window: `total` at once (`--max-clients`), and
    /// `per_ip` from one address (`--max-per-ip`, 0: no limit). A member kept counts as the
    /// connection it had: without this one address could leave thousands of members in the
    /// room, whatever its connection limits (Round 4 in docs/SECURITY.md).
    pub fn limit_detached(&mut self, total: usize, per_ip: usize) {
        self.max_detached = total;
        self.max_detached_per_ip = per_ip;
    }

    /// Whether one more member from `ip` may be kept within its window.
    fn may_keep(&self, ip: IpAddr) -> bool {
        if self.detached.len() >= self.max_detached {
            return false;
        }
        self.max_detached_per_ip == 0
            || self.detached.values().filter(|d| d.ip == ip).count() < self.max_detached_per_ip
    }

    /// A store is attached: ids go on from its log, its members are remembered, and
    /// (`durable`) messages wait for it before they are delivered.
    pub fn attach(&mut self, epoch: u32, next_seq: u64, members: Vec<MemberRecord>, durable: bool) {
        self.ids = IdGen::new(epoch, next_seq);
        self.logged = next_seq > 1;
        self.attached = true;
        self.durable = durable;
        self.remembered = Remembered::new(members, self.remember);
    }

    /// The log's epoch (the first half of every id).
    pub fn epoch(&self) -> u32 {
        self.ids.epoch()
    }

    /// The remembered members (read by the cluster's sharing, `shared.rs`).
    pub fn remembered(&self) -> &Remembered {
        &self.remembered
    }

    /// The remembered members, to keep another server's newer record (`shared.rs`).
    pub fn remembered_mut(&mut self) -> &mut Remembered {
        &mut self.remembered
    }

    /// Queues a record write for the store (dropped without one), and for the cluster when it
    /// shares the records.
    pub fn write(&mut self, w: Write) {
        if self.sharing && !matches!(w, Write::Append(_) | Write::Prune { .. }) {
            self.shared.push(w.clone());
        }
        self.write_local(w);
    }

    /// Queues a record write for the store only (a change another server made).
    pub fn write_local(&mut self, w: Write) {
        if self.attached {
            self.writes.push(w);
        }
    }

    /// The writes of this round for the store (log entries last, in relay order).
    pub fn take_writes(&mut self) -> Vec<Write> {
        let mut writes = std::mem::take(&mut self.writes);
        if !self.entries.is_empty() {
            writes.push(Write::Append(std::mem::take(&mut self.entries)));
        }
        writes
    }

    // --- durable before delivered ---

    /// The round's writes were handed to the store as `batch`.
    pub fn seal(&mut self, batch: u64) {
        self.held.seal(batch);
    }

    /// The store could not take the round's writes: its messages, given back to be refused.
    pub fn unhold_round(&mut self) -> Vec<HeldMsg> {
        let items = self.held.unhold_round();
        self.given_back(items)
    }

    /// Every message of `batch` (and earlier) is on disk: they may be delivered, in order.
    pub fn release(&mut self, batch: u64) -> Vec<HeldMsg> {
        let items = self.held.release(batch);
        self.given_back(items)
    }

    /// `batch` is not on disk: its messages, to be refused.
    pub fn fail(&mut self, batch: u64) -> Vec<HeldMsg> {
        let items = self.held.fail(batch);
        self.given_back(items)
    }

    /// How many messages wait for the store.
    pub fn backlog(&self) -> usize {
        self.held.len()
    }

    /// The store failed (`true`) or works again.
    pub fn set_down(&mut self, down: bool) {
        self.down = down;
    }

    /// Whether room messages are refused now (the store is down).
    pub fn refuses_messages(&self) -> bool {
        self.down
    }

    /// Whether room messages wait for the store, so other room lines must wait behind them.
    pub fn holds_room_lines(&self) -> bool {
        self.durable && !self.held.is_empty()
    }

    /// Holds an item behind the messages waiting for the store; it is given back with the
    /// last of them (whether they are delivered or refused).
    pub fn hold_behind(&mut self, m: HeldMsg) {
        self.held.hold_behind(m);
    }

    /// A message that must be durable before it is delivered: held for the store (`None`), or
    /// given back to be delivered now when no store on disk is attached.
    pub fn hold_or_pass(&mut self, m: HeldMsg) -> Option<HeldMsg> {
        if self.durable {
            self.held.hold(m);
            None
        } else {
            Some(m)
        }
    }

    /// A line for `to` that must not arrive before the round's record writes are durable (a
    /// resumed member's `TOKEN`, its `GAP`): held (`None`) or given back to be sent now.
    /// Under `--cluster`: this server's own line (just stamped) goes to the room's log now when
    /// its id is reserved on disk and none of its own lines waits, else it waits behind the
    /// reservation (`None`). Without `--cluster` as [`V3::hold_or_pass`].
    pub fn hold_own(&mut self, m: HeldMsg) -> Option<HeldMsg> {
        if !self.clustered || !self.durable {
            return self.hold_or_pass(m);
        }
        if self.own_held == 0 && self.last_seq < self.reserved {
            return Some(m);
        }
        self.own_held += 1;
        self.held.hold_behind(m);
        None
    }

    /// Held items given back (released, failed or unheld): the own lines among them no
    /// longer wait (under `--cluster` every held `Room`/`Priv` was held by [`V3::hold_own`]).
    fn given_back(&mut self, items: Vec<HeldMsg>) -> Vec<HeldMsg> {
        if self.clustered && self.own_held > 0 {
            let own = items
                .iter()
                .filter(|m| matches!(m, HeldMsg::Room { .. } | HeldMsg::Priv { .. }))
                .count();
            self.own_held = self.own_held.saturating_sub(own);
        }
        items
    }

    /// A reservation is on disk (`true`: ids below `upto` may be given freely), or failed
    /// (the next line asks again).
    pub fn reservation(&mut self, upto: u64, durable: bool) {
        if durable {
            self.reserved = self.reserved.max(upto);
        } else {
            self.reserving = self.reserved;
        }
    }

    pub fn hold_direct(&mut self, to: ConnId, line: Rc<Outgoing>) -> Option<Rc<Outgoing>> {
        if self.durable && self.replaying.contains(&to) {
            self.held.hold(HeldMsg::Direct { to, line });
            None
        } else {
            Some(line)
        }
    }

    /// A newly admitted member's first `TOKEN` (`to` a version 3 session): with a store on
    /// disk it is held with this round's writes, which hold its record, and the member gets no
    /// room lines until it is delivered (its history comes after it; the room's lines held
    /// meanwhile come after that), so a client never holds a token the disk does not know.
    /// Without one it is given back to be sent now.
    pub fn hold_first_token(&mut self, to: ConnId, token: Rc<Outgoing>) -> Option<Rc<Outgoing>> {
        if self.durable {
            self.replaying.insert(to);
            self.held.hold(HeldMsg::Admitted { to, token });
            None
        } else {
            Some(token)
        }
    }

    /// Gives `msg` its id and builds it once (`to`: a private's recipient); logs it when a
    /// store is attached (no copy of the line otherwise).
    pub fn stamp(
        &mut self,
        msg: &ServerMsg<'_>,
        to: &str,
        wall: SystemTime,
        fmt: &mut Vec<u8>,
    ) -> Rc<Outgoing> {
        let id = self.ids.next_id();
        let line = Outgoing::stamped(msg, wall, id.text().as_str(), fmt);
        if !self.attached {
            return line;
        }
        self.last_seq = id.seq;
        if self.clustered {
            // Logged when the room's log brings it back; its id is reserved on disk before it
            // leaves, [`RESERVE_AHEAD`] at a time.
            if self.durable && id.seq >= self.reserving {
                self.reserving = id.seq.saturating_add(RESERVE_AHEAD);
                self.writes.push(Write::Reserve(self.reserving));
                self.held.hold(HeldMsg::Reserved {
                    upto: self.reserving,
                });
            }
            return line;
        }
        let (kind, from) = match msg {
            ServerMsg::Msg { from, .. } => (Kind::Msg, *from),
            ServerMsg::Act { from, .. } => (Kind::Act, *from),
            ServerMsg::Priv { from, .. } => (Kind::Priv, *from),
            _ => (Kind::Msg, ""),
        };
        // Written from `&str` pieces: UTF-8 (checked, not repaired: the lossy path cost a
        // scan of its own per message).
        let text = match std::str::from_utf8(line.line()) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(line.line()),
        };
        self.logged = true;
        self.entries.push(Entry {
            seq: id.seq,
            time_ms: wall_ms(wall),
            kind,
            from: from.to_owned(),
            to: to.to_owned(),
            line: text.trim_end_matches('\n').to_owned(),
            origin_id: None,
        });
        line
    }

    /// Under `--cluster`: logs a line the room's log brought back (`id`: the origin's, this
    /// server's own included) at this log's next sequence number, so the log keeps the room's
    /// order: `msg` as read from `line` (its canonical form, LF included) by the caller. Nothing
    /// without a store.
    pub fn log_arrival(&mut self, id: &str, time_ms: u64, msg: &ServerMsg<'_>, line: &str) {
        if !self.attached {
            return;
        }
        let (kind, from, to) = match *msg {
            ServerMsg::Msg { from, .. } => (Kind::Msg, from.to_owned(), String::new()),
            ServerMsg::Act { from, .. } => (Kind::Act, from.to_owned(), String::new()),
            ServerMsg::Priv { from, to, .. } => (Kind::Priv, from.to_owned(), to.to_owned()),
            _ => return,
        };
        self.logged = true;
        self.entries.push(Entry {
            seq: self.ids.next_id().seq,
            time_ms,
            kind,
            from,
            to,
            line: line.trim_end_matches('\n').to_owned(),
            origin_id: (!id.is_empty()).then(|| id.to_owned()),
        });
    }

    /// Under `--cluster`, this server (re)joins the room: the log gets a hole marker
    /// ([`Kind::Gap`]) when it holds anything, since what other servers logged while this one
    /// was out of the room is not here. Nothing without a store, or in an empty log.
    pub fn log_hole(&mut self, time_ms: u64) {
        if !self.attached || !self.logged {
            return;
        }
        self.entries.push(Entry {
            seq: self.ids.next_id().seq,
            time_ms,
            kind: Kind::Gap,
            from: String::new(),
            to: String::new(),
            line: String::new(),
            origin_id: None,
        });
    }

    /// A ban was made (or replaced one of its range): the store keeps it whole.
    pub fn ban_made(&mut self, ban: &Ban) {
        self.write(Write::Ban(ban.clone()));
    }

    /// A ban was lifted or ran out: the store drops it.
    pub fn ban_lifted(&mut self, net: IpNet) {
        self.write(Write::Unban(net));
    }

    // --- sessions, tokens, resumes ---

    /// `HELLO version` from `id`: the version answered (any from 3 up speaks 3; 1 and 2 stay
    /// as they are, answered as 2), and whether `id` speaks version 3 from now on.
    pub fn hello(&mut self, id: ConnId, version: u32) -> (u32, bool) {
        let version = version.min(VERSION);
        let v3 = version >= VERSION;
        if v3 {
            self.sessions.insert(id);
        }
        (version.max(2), v3)
    }

    /// Whether `id` speaks version 3.
    pub fn is_session(&self, id: ConnId) -> bool {
        self.sessions.contains(&id)
    }

    /// `id` speaks a dialect whose clients keep one fixed password (IRC): see [`V3::fixed`].
    pub fn fix_token(&mut self, id: ConnId) {
        self.fixed.insert(id);
    }

    /// Whether `id`'s member keeps its token (a token login does not replace it).
    pub fn has_fixed_token(&self, id: ConnId) -> bool {
        self.fixed.contains(&id)
    }

    /// `id` is gone (or taken over): it is no version 3 session and replays nothing; whether
    /// it was a version 3 session.
    pub fn end_session(&mut self, id: ConnId) -> bool {
        self.replaying.remove(&id);
        self.replays.remove(&id);
        self.fixed.remove(&id);
        self.sessions.remove(&id)
    }

    /// A new token for member `name` connected as `id` (a version 3 session, or one with a
    /// fixed token while `--remember` is not 0): remembered with its first approver, and the
    /// store told. `None` for other sessions, when [`MAX_REMEMBERED`] members are remembered
    /// and `name` is not one of them, or when the OS gives no random bytes (the session goes on
    /// without a token).
    pub fn new_token(
        &mut self,
        id: ConnId,
        name: &str,
        approved_by: &str,
        wall: SystemTime,
    ) -> Option<Token> {
        let fixed = self.fixed.contains(&id) && !self.remember.is_zero();
        if !self.sessions.contains(&id) && !fixed {
            return None;
        }
        if self.remembered.len() >= self.max_remembered && !self.remembered.knows(name) {
            log::warn!(
                "{} members remembered (the most kept): no token for {name}",
                self.remembered.len()
            );
            return None;
        }
        let Ok(token) = Token::generate() else {
            log::error!("no random bytes from the OS: no token for {name}");
            return None;
        };
        let record = self
            .remembered
            .remember(name, token.hash(), approved_by, wall_ms(wall));
        self.write(Write::Member(record));
        Some(token)
    }

    /// Whether `token` admits `name` now, and how, given who holds the name (`holder`). Within
    /// the resume window the token admits even with `--remember 0`. Changes nothing: the core
    /// applies an admission with [`V3::resumed`].
    pub fn decide_resume(
        &self,
        name: &str,
        token: &str,
        wall: SystemTime,
        holder: Holder,
    ) -> ResumeDecision {
        let kept = self.detached.contains_key(&fold(name));
        let record = match self.remembered.check(name, token, wall_ms(wall), kept) {
            Ok(r) => r.clone(),
            Err(why) => return ResumeDecision::Refuse(ResumeRefusal::Token(why)),
        };
        match holder {
            Holder::Free => ResumeDecision::Accept { record, kept },
            Holder::Member(holder) => ResumeDecision::Takeover { record, holder },
            Holder::Other => ResumeDecision::Refuse(ResumeRefusal::NameTaken),
        }
    }

    /// Where a resume's replay starts, from the last id the client gave (`None`: none).
    pub fn resume_point(&self, last: Option<&str>) -> ResumePoint {
        match (last, last.map(MsgId::parse)) {
            (Some(text), Some(Some(m))) if self.clustered => ResumePoint {
                after: (m.epoch == self.ids.epoch()).then_some(m.seq),
                gap: false,
                find: Some(text.into()),
            },
            (_, None) => ResumePoint {
                after: None,
                gap: false,
                find: None,
            },
            (_, Some(Some(m))) if m.epoch == self.ids.epoch() => ResumePoint {
                after: Some(m.seq),
                gap: false,
                find: None,
            },
            (_, Some(_)) => ResumePoint {
                after: None,
                gap: true,
                find: None,
            },
        }
    }

    /// `id` resumed as `name`: out of the window if it was in it, and its replay starts after
    /// `after` (it gets no live room lines until the replay ends). Returns whether a page must
    /// be read from the store (without one the replay is over at once).
    pub fn resumed(&mut self, id: ConnId, name: &Rc<str>, from: ReadFrom) -> bool {
        self.detached.remove(&fold(name));
        self.replaying.insert(id);
        self.replays.insert(
            id,
            ResumeReplay {
                name: Rc::clone(name),
                after: from.after,
                // A found id is kept by definition; the page says when it is not.
                check_gap: from.after.is_some() && from.find.is_none(),
                gap_said: false,
            },
        );
        if self.attached {
            self.reads.push((id, from));
        }
        self.attached
    }

    /// `name` is back in the room without a replay from the log (a fixed-password login):
    /// out of its window if it was in it.
    pub fn rejoined(&mut self, name: &str) {
        self.detached.remove(&fold(name));
    }

    /// The replay reads the shell should issue now.
    pub fn take_reads(&mut self) -> Vec<(ConnId, ReadFrom)> {
        std::mem::take(&mut self.reads)
    }

    /// `id`'s replay, if one is under way.
    pub fn replay_of(&self, id: ConnId) -> Option<&ResumeReplay> {
        self.replays.get(&id)
    }

    /// `id`'s replay has sent up to `last`.
    pub fn replay_read(&mut self, id: ConnId, last: Option<u64>, gap_said: bool) {
        if let Some(r) = self.replays.get_mut(&id) {
            r.after = last;
            r.check_gap = false;
            r.gap_said |= gap_said;
        }
    }

    /// `id`'s replay is over: it gets live lines again.
    pub fn replay_over(&mut self, id: ConnId) {
        self.replays.remove(&id);
        self.replaying.remove(&id);
    }

    /// Whether any replay is under way (the fan-out's fast check).
    pub fn any_replaying(&self) -> bool {
        !self.replaying.is_empty()
    }

    /// Whether `id` is replaying (it gets no live room lines yet).
    pub fn is_replaying(&self, id: ConnId) -> bool {
        !self.replaying.is_empty() && self.replaying.contains(&id)
    }

    /// Version 3 member `id` called `name` lost its connection for `reason` (`leaving`: the
    /// server is shutting down): it ends its session, and within the resume window it stays in
    /// the room. Returns whether (and until when) it was kept so.
    pub fn detach(
        &mut self,
        id: ConnId,
        name: &Rc<str>,
        ip: IpAddr,
        reason: LeaveReason,
        now: Now,
        shutting_down: bool,
    ) -> Option<Instant> {
        let fixed = self.fixed.contains(&id);
        if !self.end_session(id) || shutting_down {
            // A member with a fixed token (IRC) has no window, but its visit counts for
            // `--remember`.
            let now_ms = wall_ms(now.wall);
            if fixed && !shutting_down && self.remembered.seen(name, now_ms) {
                self.write(Write::Seen {
                    name: name.to_string(),
                    at_ms: now_ms,
                });
            }
            return None;
        }
        let now_ms = wall_ms(now.wall);
        self.remembered.seen(name, now_ms);
        self.write(Write::Seen {
            name: name.to_string(),
            at_ms: now_ms,
        });
        if !matches!(reason, LeaveReason::Quit | LeaveReason::Dropped)
            || self.resume_window.is_zero()
            || !self.may_keep(ip)
        {
            return None;
        }
        let until = now.at + self.resume_window;
        self.detached.insert(
            fold(name),
            Detached {
                name: Rc::clone(name),
                until,
                ip,
            },
        );
        Some(until)
    }

    /// The resume window (`--resume-window`).
    pub fn resume_window(&self) -> Duration {
        self.resume_window
    }

    /// The detached members whose window is over at `now`, taken out of the room's keeping.
    pub fn expired(&mut self, now: Instant) -> Vec<Detached> {
        let over: Vec<String> = self
            .detached
            .iter()
            .filter(|(_, d)| d.until <= now)
            .map(|(k, _)| k.clone())
            .collect();
        over.into_iter()
            .filter_map(|k| self.detached.remove(&k))
            .collect()
    }

    /// The detached member called `name` (any case), if any.
    pub fn detached_name(&self, name: &str) -> Option<Rc<str>> {
        self.detached.get(&fold(name)).map(|d| Rc::clone(&d.name))
    }

    /// Every detached member's name.
    pub fn detached_names(&self) -> impl Iterator<Item = Rc<str>> + '_ {
        self.detached.values().map(|d| Rc::clone(&d.name))
    }

    /// How many members are kept within their resume window (they never left the room).
    pub fn detached_count(&self) -> usize {
        self.detached.len()
    }

    /// Voids `name`'s token (kick, `forget`), and the store is told. Returns whether it was
    /// remembered, and the detached member whose window ends with it (the room hears it
    /// leave), if any.
    pub fn void(&mut self, name: &str) -> (bool, Option<Detached>) {
        let known = self.remembered.forget(name).is_some();
        self.write(Write::Forget(name.to_owned()));
        (known, self.detached.remove(&fold(name)))
    }

    /// `/nick` carries the token (and the store is told).
    pub fn rename(&mut self, old: &str, new: &str) {
        if let Some(record) = self.remembered.rename(old, new) {
            self.write(Write::Forget(old.to_owned()));
            self.write(Write::Member(record));
        }
    }

    /// The name a remembered member goes by (its own spelling), for `name` in any case.
    pub fn remembered_as(&self, name: &str) -> Option<&str> {
        self.remembered.get(name).map(|r| r.name.as_str())
    }

    /// Every remembered member, sorted by name.
    pub fn members(&self) -> Vec<&MemberRecord> {
        self.remembered.list()
    }
}

/// What the store loaded at start, for [`super::Core::restore`].
#[derive(Debug, Default)]
pub struct Restored {
    /// The log's epoch.
    pub epoch: u32,
    /// The next sequence number.
    pub next_seq: u64,
    /// Remembered members.
    pub members: Vec<MemberRecord>,
    /// The bans in force, whole.
    pub bans: Vec<Ban>,
    /// The last room messages, oldest first (for `--history`).
    pub recent: Vec<Entry>,
    /// Whether messages wait until they are on disk before they are delivered (a store on
    /// disk); in memory they are delivered at once and logged beside.
    pub durable: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const WINDOW: Duration = Duration::from_secs(30);
    const REMEMBER: Duration = Duration::from_secs(86_400);

    fn id(n: u64) -> ConnId {
        ConnId {
            key: usize::try_from(n).unwrap(),
            serial: n,
        }
    }

    fn ip() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))
    }

    /// A V3 with a store attached (on disk when `durable`) and `alice` connected as a version 3
    /// session with a token.
    fn with_alice(durable: bool, wall: SystemTime) -> (V3, Token) {
        let mut v = V3::new(WINDOW, REMEMBER);
        v.attach(7, 1, Vec::new(), durable);
        assert_eq!(v.hello(id(1), 3), (3, true));
        let token = v.new_token(id(1), "Alice", "stdin", wall).unwrap();
        (v, token)
    }

    fn record_name(d: &ResumeDecision) -> Option<&str> {
        match d {
            ResumeDecision::Accept { record, .. } | ResumeDecision::Takeover { record, .. } => {
                Some(&record.name)
            }
            ResumeDecision::Refuse(_) => None,
        }
    }

    #[test]
    fn a_replay_page_of_the_longest_lines_fits_in_half_a_queue() {
        for (max_queue, max_line) in [(1 << 20, 4096), (64 * 1024, 4096), (8192, 8000)] {
            let page = replay_page_len(max_queue, max_line);
            assert!(page >= 1);
            assert!(page == 1 || page * (max_line + REPLAY_ENTRY_SLACK) <= max_queue / 2);
        }
        assert_eq!(replay_page_len(1 << 20, 4096), 85);
        assert_eq!(replay_page_len(usize::MAX, 10), REPLAY_PAGE);
    }

    #[test]
    fn hello_3_or_more_is_a_version_3_session_and_1_or_2_stays_2() {
        let mut v = V3::new(WINDOW, REMEMBER);
        assert_eq!(v.hello(id(1), 9), (3, true));
        assert_eq!(v.hello(id(2), 2), (2, false));
        assert_eq!(v.hello(id(3), 1), (2, false));
        assert!(v.is_session(id(1)) && !v.is_session(id(2)));
        assert!(v.end_session(id(1)));
        assert!(!v.is_session(id(1)));
        assert_eq!(
            v.new_token(id(2), "bob", "stdin", SystemTime::now())
                .map(|t| t.expose().to_owned()),
            None,
            "no token for a version 2 session"
        );
    }

    #[test]
    fn a_fixed_token_session_gets_a_token_unless_remember_is_0_and_forgets_it_when_it_ends() {
        let wall = SystemTime::now();
        let mut v = V3::new(WINDOW, REMEMBER);
        assert!(v.new_token(id(4), "irc", "stdin", wall).is_none());
        v.fix_token(id(4));
        assert!(!v.is_session(id(4)) && v.has_fixed_token(id(4)));
        let token = v.new_token(id(4), "irc", "stdin", wall).unwrap();
        let d = v.decide_resume("irc", token.expose(), wall, Holder::Free);
        assert_eq!(record_name(&d), Some("irc"));
        assert!(!v.end_session(id(4)), "no version 3 session");
        assert!(!v.has_fixed_token(id(4)));
        let mut never = V3::new(WINDOW, Duration::ZERO);
        never.fix_token(id(5));
        assert!(never.new_token(id(5), "irc", "stdin", wall).is_none());
    }

    #[test]
    fn a_token_admits_its_member_a_live_session_is_taken_over_and_a_waiting_one_refuses() {
        let wall = SystemTime::now();
        let (v, token) = with_alice(false, wall);
        let d = v.decide_resume("ALICE", token.expose(), wall, Holder::Free);
        assert_eq!(record_name(&d), Some("Alice"));
        assert!(matches!(d, ResumeDecision::Accept { kept: false, .. }));
        let d = v.decide_resume("alice", token.expose(), wall, Holder::Member(id(1)));
        assert!(matches!(d, ResumeDecision::Takeover { holder, .. } if holder == id(1)));
        assert_eq!(
            v.decide_resume("alice", token.expose(), wall, Holder::Other),
            ResumeDecision::Refuse(ResumeRefusal::NameTaken)
        );
        let other = Token::generate().unwrap();
        assert_eq!(
            v.decide_resume("alice", other.expose(), wall, Holder::Free),
            ResumeDecision::Refuse(ResumeRefusal::Token(Refusal::Mismatch))
        );
        assert_eq!(
            v.decide_resume("bob", token.expose(), wall, Holder::Free),
            ResumeDecision::Refuse(ResumeRefusal::Token(Refusal::Unknown))
        );
    }

    #[test]
    fn the_window_keeps_a_dropped_member_until_it_ends_and_then_lets_go() {
        let (at, wall) = (Instant::now(), SystemTime::now());
        let (mut v, token) = with_alice(true, wall);
        let name: Rc<str> = Rc::from("Alice");
        let until = v.detach(
            id(1),
            &name,
            ip(),
            LeaveReason::Dropped,
            Now { at, wall },
            false,
        );
        assert_eq!(until, Some(at + WINDOW));
        assert!(!v.is_session(id(1)), "the connection's session ended");
        assert_eq!(v.detached_name("alice").as_deref(), Some("Alice"));
        assert!(matches!(
            v.decide_resume("alice", token.expose(), wall, Holder::Free),
            ResumeDecision::Accept { kept: true, .. }
        ));
        assert!(v.expired(at + WINDOW - Duration::from_millis(1)).is_empty());
        let gone = v.expired(at + WINDOW);
        assert_eq!(gone.len(), 1);
        assert_eq!((&*gone[0].name, gone[0].ip), ("Alice", ip()));
        assert_eq!(v.detached_name("alice"), None);
        assert!(
            matches!(
                v.decide_resume("alice", token.expose(), wall, Holder::Free),
                ResumeDecision::Accept { kept: false, .. }
            ),
            "after the window the token still admits (remembered)"
        );
        let writes = v.take_writes();
        assert!(writes
            .iter()
            .any(|w| matches!(w, Write::Seen { name, .. } if name == "Alice")));
    }

    #[test]
    fn members_kept_without_a_connection_are_bounded_in_all_and_per_address() {
        let (at, wall) = (Instant::now(), SystemTime::now());
        let mut v = V3::new(WINDOW, REMEMBER);
        v.limit_detached(3, 2);
        let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
        let mut kept = Vec::new();
        for (n, from) in [(1, ip()), (2, ip()), (3, ip()), (4, other), (5, other)] {
            v.hello(id(n), 3);
            let name: Rc<str> = Rc::from(format!("m{n}").as_str());
            let until = v.detach(
                id(n),
                &name,
                from,
                LeaveReason::Dropped,
                Now { at, wall },
                false,
            );
            kept.push(until.is_some());
        }
        // Two from one address, then one from another fills the three places.
        assert_eq!(kept, [true, true, false, true, false]);
        assert_eq!(v.detached_names().count(), 3);
    }

    #[test]
    fn past_the_most_remembered_a_new_member_gets_no_token_and_the_known_keep_theirs() {
        let wall = SystemTime::now();
        let (mut v, _) = with_alice(true, wall);
        v.max_remembered = 2;
        v.hello(id(2), 3);
        assert!(v.new_token(id(2), "bob", "stdin", wall).is_some());
        v.hello(id(3), 3);
        assert!(v.new_token(id(3), "carol", "stdin", wall).is_none(), "full");
        assert!(
            v.new_token(id(2), "Bob", "stdin", wall).is_some(),
            "bob is known"
        );
        assert_eq!(v.members().len(), 2);
    }

    #[test]
    fn only_a_drop_or_a_quit_of_a_version_3_member_is_kept_and_never_at_shutdown() {
        let (at, wall) = (Instant::now(), SystemTime::now());
        let name: Rc<str> = Rc::from("Alice");
        for (reason, down, kept) in [
            (LeaveReason::Quit, false, true),
            (LeaveReason::Dropped, false, true),
            (LeaveReason::Left, false, false),
            (LeaveReason::Kicked, false, false),
            (LeaveReason::Dropped, true, false),
        ] {
            let (mut v, _) = with_alice(true, wall);
            let until = v.detach(id(1), &name, ip(), reason, Now { at, wall }, down);
            assert_eq!(until.is_some(), kept, "{reason:?}, shutting down: {down}");
        }
        let mut v = V3::new(Duration::ZERO, REMEMBER);
        v.hello(id(1), 3);
        let until = v.detach(
            id(1),
            &name,
            ip(),
            LeaveReason::Dropped,
            Now { at, wall },
            false,
        );
        assert_eq!(until, None, "--resume-window 0 keeps nobody");
        let mut v = V3::new(WINDOW, REMEMBER);
        let until = v.detach(
            id(1),
            &name,
            ip(),
            LeaveReason::Dropped,
            Now { at, wall },
            false,
        );
        assert_eq!(until, None, "a version 2 member is never kept");
    }

    #[test]
    fn kick_or_forget_voids_the_token_and_ends_the_window() {
        let (at, wall) = (Instant::now(), SystemTime::now());
        let (mut v, token) = with_alice(true, wall);
        let name: Rc<str> = Rc::from("Alice");
        v.detach(
            id(1),
            &name,
            ip(),
            LeaveReason::Dropped,
            Now { at, wall },
            false,
        );
        let (known, detached) = v.void("alice");
        assert!(known);
        assert_eq!(detached.map(|d| d.name), Some(name));
        assert_eq!(
            v.decide_resume("alice", token.expose(), wall, Holder::Free),
            ResumeDecision::Refuse(ResumeRefusal::Token(Refusal::Unknown))
        );
        assert_eq!(v.void("alice"), (false, None));
        assert!(v
            .take_writes()
            .iter()
            .any(|w| matches!(w, Write::Forget(n) if n == "alice")));
    }

    #[test]
    fn remembering_expires_after_the_last_session_but_not_within_the_window() {
        let (at, wall) = (Instant::now(), SystemTime::now());
        let (mut v, token) = with_alice(true, wall);
        let later = wall + REMEMBER + Duration::from_secs(1);
        assert_eq!(
            v.decide_resume("alice", token.expose(), later, Holder::Free),
            ResumeDecision::Refuse(ResumeRefusal::Token(Refusal::Expired))
        );
        let name: Rc<str> = Rc::from("Alice");
        v.detach(
            id(1),
            &name,
            ip(),
            LeaveReason::Dropped,
            Now { at, wall },
            false,
        );
        // Seen at `wall` again; within the window any age admits.
        assert!(matches!(
            v.decide_resume("alice", token.expose(), later, Holder::Free),
            ResumeDecision::Accept { kept: true, .. }
        ));
    }

    #[test]
    fn a_rename_carries_the_token() {
        let wall = SystemTime::now();
        let (mut v, token) = with_alice(false, wall);
        v.rename("alice", "Alicia");
        assert_eq!(
            record_name(&v.decide_resume("alicia", token.expose(), wall, Holder::Free)),
            Some("Alicia")
        );
        assert_eq!(v.members().len(), 1);
    }

    #[test]
    fn a_resume_point_in_this_log_replays_after_it_and_a_foreign_one_is_a_gap() {
        let (v, _) = with_alice(true, SystemTime::now());
        let here = MsgId { epoch: 7, seq: 41 }.to_string();
        let there = MsgId { epoch: 8, seq: 41 }.to_string();
        assert_eq!(
            v.resume_point(Some(&here)),
            ResumePoint {
                after: Some(41),
                gap: false,
                find: None
            }
        );
        assert_eq!(
            v.resume_point(Some(&there)),
            ResumePoint {
                after: None,
                gap: true,
                find: None
            }
        );
        assert_eq!(
            v.resume_point(Some("nonsense")),
            ResumePoint {
                after: None,
                gap: true,
                find: None
            }
        );
        assert_eq!(
            v.resume_point(None),
            ResumePoint {
                after: None,
                gap: false,
                find: None
            }
        );
        // Under --cluster every server logs every server's lines under their origin's ids:
        // any id is looked for in the log (a GAP only when it is not kept there).
        let mut v = v;
        v.clustered = true;
        assert_eq!(
            v.resume_point(Some(&there)),
            ResumePoint {
                after: None,
                gap: false,
                find: Some(there.as_str().into())
            }
        );
        assert_eq!(
            v.resume_point(Some(&here)),
            ResumePoint {
                after: Some(41),
                gap: false,
                find: Some(here.as_str().into())
            }
        );
        assert!(v.resume_point(Some("nonsense")).gap);
    }

    #[test]
    fn a_replay_shows_room_messages_and_only_its_own_privates_and_sees_gaps() {
        let (mut v, _) = with_alice(true, SystemTime::now());
        let name: Rc<str> = Rc::from("Alice");
        let from = ReadFrom {
            after: Some(10),
            find: None,
        };
        assert!(v.resumed(id(1), &name, from.clone()), "a page is read");
        assert_eq!(v.take_reads(), vec![(id(1), from)]);
        assert!(v.is_replaying(id(1)) && !v.is_replaying(id(2)));
        let entry = |kind, from: &str, to: &str| Entry {
            seq: 1,
            time_ms: 0,
            kind,
            from: from.to_owned(),
            to: to.to_owned(),
            line: String::new(),
            origin_id: None,
        };
        let r = v.replay_of(id(1)).unwrap();
        assert!(r.shows(&entry(Kind::Msg, "bob", "")));
        assert!(r.shows(&entry(Kind::Priv, "bob", "alice")));
        assert!(r.shows(&entry(Kind::Priv, "ALICE", "bob")));
        assert!(!r.shows(&entry(Kind::Priv, "bob", "carol")));
        assert!(!r.gap_before(Some(11)), "the next one is kept");
        assert!(r.gap_before(Some(12)), "number 11 is gone");
        v.replay_read(id(1), Some(20), false);
        assert!(!v.replay_of(id(1)).unwrap().gap_before(Some(99)), "once");
        v.replay_over(id(1));
        assert!(!v.any_replaying());
    }

    #[test]
    fn a_first_token_waits_for_its_record_on_disk_and_its_member_for_it() {
        let wall = SystemTime::now();
        let (mut v, token) = with_alice(true, wall);
        let line = Outgoing::from_line(format!("TOKEN {}\n", token.expose()).as_bytes(), None);
        assert!(v.hold_first_token(id(1), line).is_none(), "held");
        assert!(v.is_replaying(id(1)), "no room lines before the token");
        assert!(v.holds_room_lines(), "the room's lines wait behind it");
        let writes = v.take_writes();
        assert!(
            matches!(&writes[..], [Write::Member(r)] if r.name == "Alice"),
            "the record goes with the round that holds the token: {writes:?}"
        );
        v.seal(3);
        let back = v.release(3);
        assert!(matches!(&back[..], [HeldMsg::Admitted { to, .. }] if *to == id(1)));
        assert_eq!(
            back[0].refused_sender(),
            None,
            "refused, it is dropped quietly"
        );

        let (mut v, token) = with_alice(false, wall);
        let line = Outgoing::from_line(format!("TOKEN {}\n", token.expose()).as_bytes(), None);
        assert!(
            v.hold_first_token(id(1), line).is_some(),
            "in memory: at once"
        );
        assert!(!v.is_replaying(id(1)));
    }

    #[test]
    fn under_a_cluster_ids_are_reserved_ahead_and_only_the_first_line_of_a_block_waits() {
        let wall = SystemTime::now();
        let mut fmt = Vec::new();
        let msg = ServerMsg::Msg {
            from: "Alice",
            color: None,
            text: "hi",
        };
        let (mut v, _) = with_alice(true, wall);
        v.clustered = true;
        v.take_writes();
        let room = |v: &mut V3, fmt: &mut Vec<u8>| HeldMsg::Room {
            from: id(1),
            speaker: Rc::from("Alice"),
            line: v.stamp(&msg, "", wall, fmt),
        };
        let first = room(&mut v, &mut fmt);
        assert!(v.hold_own(first).is_none(), "waits for its reservation");
        let second = room(&mut v, &mut fmt);
        assert!(v.hold_own(second).is_none(), "waits behind the first");
        let writes = v.take_writes();
        let [Write::Reserve(upto)] = writes[..] else {
            panic!("one reservation, no log entry: {writes:?}");
        };
        assert_eq!(upto, 1 + RESERVE_AHEAD);
        v.seal(1);
        let back = v.release(1);
        assert!(matches!(
            &back[..],
            [
                HeldMsg::Reserved { .. },
                HeldMsg::Room { .. },
                HeldMsg::Room { .. }
            ]
        ));
        v.reservation(upto, true);
        let third = room(&mut v, &mut fmt);
        assert!(v.hold_own(third).is_some(), "reserved: it leaves at once");
        assert!(v.take_writes().is_empty(), "no commit for it");
        // The block used up: the next line reserves the next block (and a failed reservation
        // is asked again by the line after).
        v.ids = IdGen::new(7, upto);
        let last = room(&mut v, &mut fmt);
        assert!(v.hold_own(last).is_none());
        assert!(matches!(v.take_writes()[..], [Write::Reserve(n)] if n == upto + RESERVE_AHEAD));
        v.seal(2);
        let failed = v.fail(2);
        assert_eq!(failed.len(), 2);
        v.reservation(upto + RESERVE_AHEAD, false);
        let again = room(&mut v, &mut fmt);
        assert!(v.hold_own(again).is_none());
        assert_eq!(v.take_writes().len(), 1, "asked again");
    }

    #[test]
    fn messages_wait_for_the_store_on_disk_and_pass_without_one() {
        let wall = SystemTime::now();
        let mut fmt = Vec::new();
        let msg = ServerMsg::Msg {
            from: "Alice",
            color: None,
            text: "hi",
        };
        let (mut v, _) = with_alice(true, wall);
        v.take_writes();
        let line = v.stamp(&msg, "", wall, &mut fmt);
        assert!(line.id.is_some());
        let held = HeldMsg::Room {
            from: id(1),
            speaker: Rc::from("Alice"),
            line,
        };
        assert!(v.hold_or_pass(held).is_none(), "held for the store");
        assert!(v.holds_room_lines());
        let writes = v.take_writes();
        assert!(matches!(&writes[..], [Write::Append(e)] if e.len() == 1 && e[0].seq == 1));
        v.seal(5);
        assert!(v.release(4).is_empty());
        assert_eq!(v.release(5).len(), 1);
        assert!(!v.holds_room_lines());

        let mut v = V3::new(WINDOW, REMEMBER);
        let line = v.stamp(&msg, "", wall, &mut fmt);
        let m = HeldMsg::Direct { to: id(1), line };
        assert!(v.hold_or_pass(m).is_some(), "no store: delivered at once");
        assert!(v.take_writes().is_empty(), "no store: nothing logged");
    }
}
