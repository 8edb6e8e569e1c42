//! The room beyond this server (`--cluster`): the other servers' members and waiting joins as
//! the room's log tells them, names being claimed in Redis, and what each of the log's events
//! does here. The core stays free of I/O: it asks the cluster through
//! [`Outbox::cluster`] and hears back through [`Core::cluster_input`].
//!
//! A view entry is changed only by an event of the server that owns it, so a late event of a
//! server that has since rejoined under a new id can never remove someone else's member.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use chat_common::protocol::{ErrorCode, LeaveReason, ServerMsg};
use chat_common::sanitize::sanitize;

use super::bus::{wall_ms, Entry, Event, FromBridge, LogId, RemoteEntry, ToBridge};
use super::history::History;
use super::operator::Announcement;
use super::{Audience, ConnId, Core, Now, Outbox, Outgoing, Phase};

/// The BYE a cut-off server says to its members and waiting joins.
pub const CUT_OFF_BYE: &str = "the server lost its cluster; reconnect";
/// The DENIED a cut-off server answers joins with.
pub const CUT_OFF_DENIED: &str = "the server lost its cluster; try another server or later";

/// This server's messages that may wait at once for the room's log to bring them back
/// ([`Remote::awaiting`]); past it a member's message is refused (`ERROR unavailable`) rather
/// than remembered, so a reader that fell behind (or a Redis that takes appends but never
/// answers reads) cannot grow this server's memory without bound. The bridge's queue
/// ([`crate::cluster::QUEUE_LIMIT`]) bounds what is not yet appended; this bounds the rest.
pub const MAX_AWAITING: usize = 65_536;

/// What a claimed name is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Purpose {
    /// A join: admit it at once, or let it wait for an operator.
    Join { wait: bool },
    /// A member's rename from this name.
    Rename { old: Rc<str> },
    /// A `RESUME` or a token login whose token admitted the name: it goes on once the name
    /// is this server's.
    Resume(ResumeAsk),
}

/// What a resume asks for, kept while its name is claimed or waited for: the same for a
/// native `RESUME` and for a token login of another dialect ([`Core::admit_remembered`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ResumeAsk {
    pub token: Box<str>,
    /// The last id the client saw (a `RESUME`'s; a token login has none).
    pub last: Option<Box<str>>,
    /// A token login: the nick it joins the waiting room under when refused (the operator
    /// decides then, as for anyone). `None`: a native `RESUME`, which is told `ERROR` and asked
    /// for a name again.
    pub login: Option<Box<str>>,
}

/// A join waiting on another server.
#[derive(Debug, Clone)]
pub(super) struct RemoteJoin {
    pub name: Rc<str>,
    pub server: Rc<str>,
    pub addr: Box<str>,
    pub since: Instant,
}

/// What this server knows of the rest of the room.
#[derive(Debug, Default)]
pub(super) struct Remote {
    /// In the room (joined and not cut off): only then are joins accepted.
    pub up: bool,
    /// The bridge's epoch of the current membership; older entries are ignored.
    pub epoch: u64,
    /// This server's id in the current epoch.
    pub server: Rc<str>,
    /// Lowercased name -> (name, server) of the other servers' members.
    pub members: HashMap<Box<str>, (Rc<str>, Rc<str>)>,
    /// Lowercased name -> the other servers' waiting joins.
    pub pending: HashMap<Box<str>, RemoteJoin>,
    /// Lowercased name -> the local connection claiming it, and why.
    pub claiming: HashMap<Box<str>, (ConnId, Purpose)>,
    /// How far the log has been read.
    pub read: LogId,
    /// Joins whose name is claimed, waiting for the log to be read up to where it stood at
    /// the claim (so the newcomer's count, `/who` and history include everyone before it);
    /// their names stay in `claiming` meanwhile.
    pub parked: Vec<(ConnId, Rc<str>, bool, LogId)>,
    /// `RESUME`s whose name another server holds, waiting for it to be freed (a dead server's
    /// members are, within `--cluster-timeout`) until their deadline (see `shared.rs`).
    pub resuming: Vec<ResumeWait>,
    /// This server's messages sent to the room's log and not yet read back from it: id ->
    /// the sender (no `ECHO` or fan-out to it then). At most [`MAX_AWAITING`]; emptied by a
    /// cut-off.
    pub awaiting: HashMap<Box<str>, ConnId>,
    /// Lowercased names another server handed over to this one for a waiting `RESUME`
    /// ([`Event::Handover`]): admitted as kept (the room hears nothing). At most one per
    /// waiting resume; dropped (with a `LEAVE` to the room) when that resume fails.
    pub handed: HashSet<Box<str>>,
}

/// A `RESUME` waiting for its name to be freed by another server.
#[derive(Debug, Clone)]
pub(super) struct ResumeWait {
    pub id: ConnId,
    pub name: Rc<str>,
    pub ask: ResumeAsk,
    pub until: Instant,
}

/// Who spoke a relayed `MSG` or `ACT` line (another server's bytes: parsed).
pub(super) fn speaker_of(line: &Outgoing) -> Option<Rc<str>> {
    match line.msg()? {
        ServerMsg::Msg { from, .. } | ServerMsg::Act { from, .. } => Some(Rc::from(from)),
        _ => None,
    }
}

fn fold(name: &str) -> Box<str> {
    name.to_ascii_lowercase().into_boxed_str()
}

/// What an other server's `LEAVE` did to the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Departure {
    /// Its member left the room.
    Member(Rc<str>),
    /// Its waiting join was withdrawn.
    Withdrawn,
}

impl Remote {
    /// Remembers that `from` sent the message `id` to the room's log; `false` (nothing
    /// remembered) when [`MAX_AWAITING`] messages wait already.
    pub fn await_log(&mut self, id: &str, from: ConnId) -> bool {
        if self.awaiting.len() >= MAX_AWAITING {
            return false;
        }
        self.awaiting.insert(id.into(), from);
        true
    }

    /// Whether another server (or a claim under way here) holds `name`.
    pub fn taken(&self, name: &str) -> bool {
        let key = fold(name);
        self.members.contains_key(&key)
            || self.pending.contains_key(&key)
            || self.claiming.contains_key(&key)
    }

    /// Whether server `origin` owns the member or waiting join whose server is `server`.
    fn owns(server: &Rc<str>, origin: &str) -> bool {
        **server == *origin
    }

    /// `name` joined on server `origin`: a member of the view now (its waiting join, when it
    /// was that server's, is gone). Returns the name and whether it had waited; `None` when
    /// the name is a member already.
    pub fn joined(&mut self, name: &str, origin: &str) -> Option<(Rc<str>, bool)> {
        let key = fold(name);
        if self.members.contains_key(&key) {
            return None;
        }
        let waited = self
            .pending
            .get(&key)
            .is_some_and(|j| Remote::owns(&j.server, origin));
        if waited {
            self.pending.remove(&key);
        }
        let name: Rc<str> = Rc::from(name);
        self.members
            .insert(key, (Rc::clone(&name), Rc::from(origin)));
        Some((name, waited))
    }

    /// `name` left on server `origin`: only that server's member or waiting join goes.
    pub fn left(&mut self, name: &str, origin: &str) -> Option<Departure> {
        let key = fold(name);
        if self
            .members
            .get(&key)
            .is_some_and(|(_, s)| Remote::owns(s, origin))
        {
            return self
                .members
                .remove(&key)
                .map(|(name, _)| Departure::Member(name));
        }
        if self
            .pending
            .get(&key)
            .is_some_and(|j| Remote::owns(&j.server, origin))
        {
            self.pending.remove(&key);
            return Some(Departure::Withdrawn);
        }
        None
    }

    /// Server `origin`'s member `old` is called `new` now (only that server's member is
    /// renamed). Returns both names as the view spells them.
    pub fn renamed(&mut self, old: &str, new: &str, origin: &str) -> Option<(Rc<str>, Rc<str>)> {
        let key = fold(old);
        if !self
            .members
            .get(&key)
            .is_some_and(|(_, s)| Remote::owns(s, origin))
        {
            return None;
        }
        let (old, server) = self.members.remove(&key)?;
        let new: Rc<str> = Rc::from(new);
        self.members.insert(fold(&new), (Rc::clone(&new), server));
        Some((old, new))
    }

    /// A join called `name` from `addr` waits on server `origin` since `now`.
    pub fn requested(&mut self, name: &str, origin: &str, addr: &str, now: Instant) -> Rc<str> {
        let name: Rc<str> = Rc::from(name);
        self.pending.insert(
            fold(&name),
            RemoteJoin {
                name: Rc::clone(&name),
                server: Rc::from(origin),
                addr: addr.into(),
                since: now,
            },
        );
        name
    }

    /// Server `origin` handed its member `name` over to server `to` (a cross-server takeover):
    /// the view moves it there, or out of the view when `to` is this server (which admits its
    /// waiting `RESUME` as kept). Whether it was `origin`'s member.
    pub fn handed_over(&mut self, name: &str, origin: &str, to: &str) -> bool {
        let key = fold(name);
        let Some((_, server)) = self.members.get_mut(&key) else {
            return false;
        };
        if !Remote::owns(server, origin) {
            return false;
        }
        if *self.server == *to {
            self.members.remove(&key);
            self.handed.insert(key);
        } else {
            *server = Rc::from(to);
        }
        true
    }

    /// Server `origin` decided its waiting join `name`: whether it was that server's (and is
    /// gone now).
    pub fn decided(&mut self, name: &str, origin: &str) -> bool {
        let key = fold(name);
        let owned = self
            .pending
            .get(&key)
            .is_some_and(|j| Remote::owns(&j.server, origin));
        if owned {
            self.pending.remove(&key);
        }
        owned
    }

    /// Server `server` left the room: its waiting joins are gone, and its members, whose names
    /// are returned.
    pub fn server_down(&mut self, server: &str) -> Vec<Rc<str>> {
        self.pending.retain(|_, j| *j.server != *server);
        let gone: Vec<Box<str>> = self
            .members
            .iter()
            .filter(|(_, (_, s))| **s == *server)
            .map(|(k, _)| k.clone())
            .collect();
        gone.into_iter()
            .filter_map(|k| self.members.remove(&k).map(|(name, _)| name))
            .collect()
    }

    /// Redis answered `id`'s claim of `name`: the claim, if it is still `id`'s (it is no
    /// longer under way).
    pub fn answered(&mut self, name: &str, id: ConnId) -> Option<Purpose> {
        let key = fold(name);
        match self.claiming.get(&key) {
            Some((c, _)) if *c == id => self.claiming.remove(&key).map(|(_, p)| p),
            _ => None,
        }
    }

    /// A join whose claim of `name` succeeded with the log at `tip`: when the log has not been
    /// read that far, it is parked (its name stays claimed) until it has, so the newcomer's
    /// count, `/who` and history include everyone before it. Whether it was parked.
    pub fn park(&mut self, id: ConnId, name: &Rc<str>, wait: bool, tip: LogId) -> bool {
        if tip <= self.read {
            return false;
        }
        self.claiming
            .insert(fold(name), (id, Purpose::Join { wait }));
        self.parked.push((id, Rc::clone(name), wait, tip));
        true
    }

    /// The log has been read up to `last`: the parked joins it covers, which go on now (their
    /// claims are no longer under way).
    pub fn caught_up(&mut self, last: LogId) -> Vec<(ConnId, Rc<str>, bool)> {
        self.read = self.read.max(last);
        let read = self.read;
        if self.parked.iter().all(|p| p.3 > read) {
            return Vec::new();
        }
        let (ready, parked): (Vec<_>, Vec<_>) = self.parked.drain(..).partition(|p| p.3 <= read);
        self.parked = parked;
        ready
            .into_iter()
            .map(|(id, name, wait, _)| {
                self.claiming.remove(&fold(&name));
                (id, name, wait)
            })
            .collect()
    }

    /// Cut off from the room: the view is emptied (the epoch stays, so older entries are
    /// still ignored); whether it was in the room.
    pub fn cut_off(&mut self) -> bool {
        if !self.up {
            return false;
        }
        *self = Remote {
            epoch: self.epoch,
            ..Remote::default()
        };
        true
    }

    /// Whether `id` has a rename claim under way.
    pub fn renaming(&self, id: ConnId) -> bool {
        self.claiming
            .values()
            .any(|(c, p)| *c == id && matches!(p, Purpose::Rename { .. }))
    }

    /// The member of another server called `name` (any case): its name and server.
    pub fn member(&self, name: &str) -> Option<(Rc<str>, Rc<str>)> {
        self.members.get(&fold(name)).cloned()
    }

    /// The other servers' members with their servers, sorted by name (any case).
    pub fn members_sorted(&self) -> Vec<(Rc<str>, Rc<str>)> {
        let mut all: Vec<(Rc<str>, Rc<str>)> = self.members.values().cloned().collect();
        all.sort_by_key(|(n, _)| n.to_ascii_lowercase());
        all
    }

    /// The join waiting on another server called `name` (any case), or the oldest one.
    pub fn join(&self, name: Option<&str>) -> Option<RemoteJoin> {
        match name {
            Some(n) => self.pending.get(&fold(n)).cloned(),
            None => self.pending.values().min_by_key(|j| j.since).cloned(),
        }
    }

    /// The other servers' waiting joins, oldest first.
    pub fn joins(&self) -> Vec<RemoteJoin> {
        let mut joins: Vec<RemoteJoin> = self.pending.values().cloned().collect();
        joins.sort_by_key(|j| j.since);
        joins
    }
}

impl Core {
    /// Members in the whole room (every server's, and those kept within their resume window):
    /// the count of [`Core::names`].
    pub(super) fn everyone(&self) -> usize {
        self.room.online()
            + self.v3.detached_count()
            + self.remote.as_ref().map_or(0, |r| r.members.len())
    }

    /// Whether the cluster is on and this server is cut off from it.
    pub(super) fn cut_off(&self) -> bool {
        self.remote.as_ref().is_some_and(|r| !r.up)
    }

    /// Appends an event to the room's log (nothing without `--cluster` or while cut off).
    /// `event` is only built when there is a cluster to publish to: without `--cluster` the hot
    /// path pays nothing (no copy of the line).
    pub(super) fn publish(&self, event: impl FnOnce() -> Event, now: Now, out: &mut impl Outbox) {
        match self.remote.as_ref() {
            Some(r) if r.up && !self.shutting_down => out.cluster(ToBridge::Publish {
                event: event(),
                wall_ms: wall_ms(now.wall),
                epoch: r.epoch,
            }),
            _ => {}
        }
    }

    /// Frees a name in Redis (nothing without `--cluster`).
    pub(super) fn release(&self, name: &str, out: &mut impl Outbox) {
        match self.remote.as_ref() {
            Some(r) if r.up && !self.shutting_down => out.cluster(ToBridge::Release {
                name: name.into(),
                epoch: r.epoch,
            }),
            _ => {}
        }
    }

    /// Asks Redis for `name` on behalf of `id`; `release`: the old name of a rename.
    pub(super) fn claim(
        &mut self,
        id: ConnId,
        name: &str,
        purpose: Purpose,
        out: &mut impl Outbox,
    ) {
        let Some(remote) = self.remote.as_mut() else {
            return;
        };
        let release = match &purpose {
            Purpose::Rename { old } => Some(old.to_string()),
            Purpose::Join { .. } | Purpose::Resume(_) => None,
        };
        remote.claiming.insert(fold(name), (id, purpose));
        out.cluster(ToBridge::Claim {
            id,
            name: name.into(),
            release,
            epoch: remote.epoch,
        });
    }

    /// Whether `id` has a rename claim under way.
    pub(super) fn renaming(&self, id: ConnId) -> bool {
        self.remote.as_ref().is_some_and(|r| r.renaming(id))
    }

    /// The other servers' member names.
    pub(super) fn remote_names(&self) -> Vec<Rc<str>> {
        self.remote.as_ref().map_or_else(Vec::new, |r| {
            r.members.values().map(|(n, _)| Rc::clone(n)).collect()
        })
    }

    /// A member of another server called `name` (any case): its name and server.
    pub(super) fn remote_member(&self, name: &str) -> Option<(Rc<str>, Rc<str>)> {
        self.remote.as_ref().and_then(|r| r.member(name))
    }

    /// A join waiting on another server called `name` (any case), or the oldest one.
    pub(super) fn remote_join(&self, name: Option<&str>) -> Option<RemoteJoin> {
        self.remote.as_ref().and_then(|r| r.join(name))
    }

    /// The other servers' waiting joins, oldest first.
    pub(super) fn remote_joins(&self) -> Vec<RemoteJoin> {
        self.remote.as_ref().map_or_else(Vec::new, Remote::joins)
    }

    /// The other servers' members with their servers, for the console's `who`.
    pub(super) fn remote_members(&self) -> Vec<(Rc<str>, Rc<str>)> {
        self.remote
            .as_ref()
            .map_or_else(Vec::new, Remote::members_sorted)
    }

    /// A message of `from` (`MSG`, `ACT`, `PRIV`), durable here, goes to the room's log; it is
    /// delivered here too when the log brings it back ([`Core::arrived`]), in the log's order.
    /// A server out of the room cannot send it: `ERROR unavailable`.
    pub(super) fn send_through_log(
        &mut self,
        from: ConnId,
        line: &Outgoing,
        now: Now,
        out: &mut impl Outbox,
    ) {
        let id = line.id.as_deref().unwrap_or_default();
        let shutting_down = self.shutting_down;
        match self.remote.as_mut() {
            Some(r) if r.up && !shutting_down => {
                if !id.is_empty() && !r.await_log(id, from) {
                    log::warn!("{MAX_AWAITING} messages wait for the room's log: one refused");
                    return self.send_error(
                        from,
                        ErrorCode::Unavailable,
                        "too many messages wait for the room's log; yours was not sent",
                        out,
                    );
                }
                let id = id.to_owned();
                let event = match line.msg() {
                    Some(ServerMsg::Priv { to, .. }) => Event::Priv {
                        to: to.to_owned(),
                        line: line.line().to_vec(),
                        id,
                    },
                    _ => Event::Msg {
                        line: line.line().to_vec(),
                        id,
                    },
                };
                out.cluster(ToBridge::Publish {
                    event,
                    wall_ms: wall_ms(line.wall.unwrap_or(now.wall)),
                    epoch: r.epoch,
                });
            }
            _ => self.send_error(
                from,
                ErrorCode::Unavailable,
                "the server is out of the room; yours was not sent",
                out,
            ),
        }
    }

    /// The cluster bridge reports something.
    pub fn cluster_input(&mut self, msg: FromBridge, now: Now, out: &mut impl Outbox) {
        if self.remote.is_none() || self.shutting_down {
            return;
        }
        match msg {
            FromBridge::Up {
                epoch,
                server,
                at,
                remote,
                history,
                shared,
            } => {
                self.cluster_up(epoch, &server, remote, history, now, out);
                if let Some(r) = self.remote.as_mut() {
                    r.read = at;
                }
                self.adopt_shared(shared, now, out);
            }
            FromBridge::Entries {
                epoch,
                entries,
                last,
            } => {
                if self
                    .remote
                    .as_ref()
                    .is_some_and(|r| r.up && r.epoch == epoch)
                {
                    for entry in entries {
                        self.remote_event(entry, now, out);
                    }
                    self.caught_up(last, now, out);
                    self.retry_resumes(now, out);
                }
            }
            FromBridge::Claimed { id, name, ok, tip } => {
                self.claimed(id, &name, ok, tip, now, out);
            }
            FromBridge::Down { why } => self.cluster_down(&why, out),
            FromBridge::NotJoined { why } => {
                let why = sanitize(&why);
                out.console(
                    Audience::All,
                    format_args!(
                        "cluster: cannot join the room: {why}; joins are refused until it can (retrying)"
                    ),
                );
            }
        }
    }

    fn cluster_up(
        &mut self,
        epoch: u64,
        server: &str,
        entries: Vec<RemoteEntry>,
        history: Vec<(SystemTime, Vec<u8>, String)>,
        now: Now,
        out: &mut impl Outbox,
    ) {
        let server: Rc<str> = Rc::from(server);
        let mut remote = Remote {
            up: true,
            epoch,
            server: Rc::clone(&server),
            ..Remote::default()
        };
        let mut servers: HashMap<String, Rc<str>> = HashMap::new();
        for e in entries {
            let origin = Rc::clone(
                servers
                    .entry(e.server.clone())
                    .or_insert_with(|| Rc::from(e.server.as_str())),
            );
            let name: Rc<str> = Rc::from(e.name.as_str());
            match e.waiting {
                None => {
                    remote.members.insert(fold(&name), (name, origin));
                }
                Some(addr) => {
                    remote.pending.insert(
                        fold(&name),
                        RemoteJoin {
                            name,
                            server: origin,
                            addr: addr.into_boxed_str(),
                            since: now.at,
                        },
                    );
                }
            }
        }
        let (members, waiting) = (remote.members.len(), remote.pending.len());
        self.remote = Some(remote);
        // What the room logged while this server was out of it is not in its log.
        self.v3.log_hole(wall_ms(now.wall));
        self.history = History::new(self.config.history);
        for (at, line, id) in history {
            let id = (!id.is_empty()).then(|| id.into_boxed_str());
            let line = Outgoing::from_line_with_id(&line, Some(at), id);
            if let Some(speaker) = speaker_of(&line) {
                self.history.record(&line, &speaker);
            }
        }
        out.console(
            Audience::All,
            format_args!(
                "cluster: in the room as server {server} ({members} members and {waiting} waiting joins on other servers)"
            ),
        );
    }

    /// Cut off from the room: every member and waiting join here is told BYE and closed (the
    /// other servers announce them gone), and joins are refused until the bridge is back.
    fn cluster_down(&mut self, why: &str, out: &mut impl Outbox) {
        if !self.remote.as_mut().is_some_and(Remote::cut_off) {
            return;
        }
        let bye = self.format(&ServerMsg::Bye { text: CUT_OFF_BYE });
        let mut cut = 0;
        for key in 0..self.sessions.slots() {
            let Some(id) = self.id_at(key) else { continue };
            let in_room = self
                .session(id)
                .is_some_and(|s| !matches!(s.phase, Phase::AwaitingName));
            if !in_room {
                continue;
            }
            let Some(session) = self.take_session(id) else {
                continue;
            };
            match &session.phase {
                Phase::Member { name } => self.room.remove(name, id),
                Phase::Waiting { name, .. } => {
                    self.room.remove(name, id);
                    self.admission.unpend(session.addr.ip());
                }
                Phase::Claiming { .. } | Phase::AwaitingName => {}
            }
            out.send(id, &bye);
            out.close(id);
            cut += 1;
        }
        log::warn!("cluster lost ({why}): {cut} connections cut");
        out.console(
            Audience::All,
            format_args!(
                "cluster lost ({why}): {cut} members and waiting joins cut off; joins are refused until Redis answers"
            ),
        );
    }

    /// The log has been read up to `last`: parked joins it covers go on.
    fn caught_up(&mut self, last: LogId, now: Now, out: &mut impl Outbox) {
        let ready = self
            .remote
            .as_mut()
            .map_or_else(Vec::new, |r| r.caught_up(last));
        for (id, name, wait) in ready {
            let claiming = matches!(self.session(id).map(|s| &s.phase),
                Some(Phase::Claiming { name: n }) if *n == name);
            if claiming {
                self.proceed(id, &name, wait, now, out);
            } else {
                self.release(&name, out);
            }
        }
    }

    /// Redis answered a claim.
    fn claimed(
        &mut self,
        id: ConnId,
        name: &str,
        ok: bool,
        tip: LogId,
        now: Now,
        out: &mut impl Outbox,
    ) {
        let purpose = match self.remote.as_mut() {
            Some(r) if r.up => r.answered(name, id),
            _ => return,
        };
        let phase = self.session(id).map(|s| s.phase.clone());
        match (purpose, phase) {
            (Some(Purpose::Join { wait }), Some(Phase::Claiming { name: n })) if &*n == name => {
                if ok {
                    // Parked until the log is read up to its claim, or on its way now.
                    let parked = self
                        .remote
                        .as_mut()
                        .is_some_and(|r| r.park(id, &n, wait, tip));
                    if !parked {
                        self.proceed(id, name, wait, now, out);
                    }
                } else {
                    if let Some(s) = self.session_mut(id) {
                        s.phase = Phase::AwaitingName;
                    }
                    let text = format!("the name {name} is taken");
                    self.send_error(id, ErrorCode::NameTaken, &text, out);
                    self.prompt(id, out);
                }
            }
            (Some(Purpose::Resume(ask)), Some(Phase::Claiming { name: n })) if &*n == name => {
                if let Some(s) = self.session_mut(id) {
                    s.phase = Phase::AwaitingName;
                }
                if ok {
                    let decision =
                        self.resume_with(id, name, &ask.token, ask.last.as_deref(), now, out);
                    let admitted = !matches!(decision, super::v3::ResumeDecision::Refuse(_));
                    if !admitted {
                        // Not when a connection here holds it (a waiting join): the claim
                        // found the name already this server's.
                        if self.room.holder(name).is_none() {
                            self.release(name, out);
                        }
                        self.drop_handed(name, now, out);
                    }
                    if let super::v3::ResumeDecision::Refuse(why) = decision {
                        self.resume_refused(id, name, why, ask.login.as_deref(), now, out);
                        self.name_again_in_time(id, now, out);
                    }
                } else {
                    self.wait_for_name(id, name, ask, now, out);
                }
            }
            (Some(Purpose::Rename { old }), Some(Phase::Member { name: current }))
                if current == old =>
            {
                if ok {
                    self.apply_rename(id, &old, name, now, out);
                } else {
                    let text = format!("the name {name} is taken");
                    self.send_error(id, ErrorCode::NameTaken, &text, out);
                }
            }
            _ => {
                if ok {
                    self.release(name, out);
                }
            }
        }
    }

    /// One entry of another server.
    fn remote_event(&mut self, entry: Entry, now: Now, out: &mut impl Outbox) {
        let Some(remote) = self.remote.as_mut() else {
            return;
        };
        let origin = entry.origin;
        // This server's own entries come back only as messages (the reader leaves out the
        // rest): they are delivered here in the log's order, like everyone's.
        let own = *remote.server == *origin;
        if own && !matches!(entry.event, Event::Msg { .. } | Event::Priv { .. }) {
            return;
        }
        match entry.event {
            Event::Join { name } => {
                let Some((name, was_waiting)) = remote.joined(&name, &origin) else {
                    return;
                };
                self.broadcast(&ServerMsg::Join { name: &name }, None, out);
                let online = self.everyone();
                let how = if was_waiting { "approved" } else { "joined" };
                out.console(
                    Audience::All,
                    format_args!("{how} {name} on server {origin} ({online} online)"),
                );
            }
            Event::Leave {
                name,
                reason,
                owner,
            } => match remote.left(&name, &origin) {
                Some(Departure::Member(name)) => {
                    if let Some(ip) = owner.and_then(|o| o.parse().ok()) {
                        self.admission.hold_name(&name, ip, now.at);
                    }
                    let msg = ServerMsg::Leave {
                        name: &name,
                        reason,
                    };
                    self.announce_in_room(&msg, &name, now, out);
                    out.console(
                        Audience::All,
                        format_args!("left {name} ({})", reason.as_str()),
                    );
                }
                Some(Departure::Withdrawn) => self.announce(
                    Announcement::Withdrawn,
                    now,
                    out,
                    format_args!("join request withdrawn: {name}"),
                ),
                None => {}
            },
            Event::Nick { old, new, owner } => {
                let Some((old, new)) = remote.renamed(&old, &new, &origin) else {
                    return;
                };
                if let Some(ip) = owner.and_then(|o| o.parse().ok()) {
                    self.admission.hold_name(&old, ip, now.at);
                }
                let msg = ServerMsg::Nick {
                    old: &old,
                    new: &new,
                };
                self.announce_in_room(&msg, &old, now, out);
                out.console(Audience::All, format_args!("renamed {old} {new}"));
            }
            Event::Msg { line, id } | Event::Priv { line, id, .. } => {
                // The origin's id and time: a version 3 member sees them in the tags.
                let from = if own {
                    remote.awaiting.remove(id.as_str())
                } else {
                    None
                };
                self.arrived(&line, id, entry.wall, from, now, out);
            }
            Event::Info { line } => {
                let line = Outgoing::from_line(&line, None);
                self.fan_out(&line, None, out);
            }
            Event::Request { name, addr } => {
                let name = remote.requested(&name, &origin, &addr, now.at);
                self.announce(
                    Announcement::Request,
                    now,
                    out,
                    format_args!(
                        "join request: {name} from {addr} on server {origin} (approve {name} / deny {name})"
                    ),
                );
            }
            Event::Decided { name, how } => {
                if !remote.decided(&name, &origin) {
                    return;
                }
                match how.as_str() {
                    "withdrawn" => self.announce(
                        Announcement::Withdrawn,
                        now,
                        out,
                        format_args!("join request withdrawn: {name}"),
                    ),
                    _ => out.console(Audience::All, format_args!("denied {name}")),
                }
            }
            Event::Approve { server, name, by } => {
                if *remote.server == *server {
                    self.decide_by_name(&name, true, &sanitize(&by), now, out);
                }
            }
            Event::Deny { server, name, by } => {
                if *remote.server == *server {
                    self.decide_by_name(&name, false, &sanitize(&by), now, out);
                }
            }
            Event::Kick { server, name, note } => {
                if *remote.server == *server {
                    self.kick_by_name(&name, &note, now, out);
                }
            }
            shared @ (Event::Member { .. }
            | Event::Forget { .. }
            | Event::Ban { .. }
            | Event::Unban { .. }) => {
                self.apply_shared(shared, Some(&origin), now, out);
            }
            Event::Takeover { server, name } => {
                if *remote.server == *server {
                    self.hand_over(&name, &origin, now, out);
                }
            }
            Event::Handover { name, to } => {
                if remote.handed_over(&name, &origin, &to) {
                    log::info!("{name} moved from server {origin} to server {to}");
                }
            }
            Event::Joined { server } => {
                out.console(
                    Audience::All,
                    format_args!("cluster: server {} joined the room", sanitize(&server)),
                );
            }
            Event::Down { server } => {
                out.console(
                    Audience::All,
                    format_args!("cluster: server {} left the room", sanitize(&server)),
                );
                for name in remote.server_down(&server) {
                    let msg = ServerMsg::Leave {
                        name: &name,
                        reason: LeaveReason::Quit,
                    };
                    self.announce_in_room(&msg, &name, now, out);
                    out.console(Audience::All, format_args!("left {name} (quit)"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owning_server_changes_its_members_and_joins() {
        let t = Instant::now();
        let mut r = Remote::default();
        r.requested("Zed", "s2", "10.0.0.2:1", t);
        assert!(r.taken("zed"));
        assert!(!r.decided("zed", "s3"), "s3 cannot decide s2's join");
        assert_eq!(r.joined("zed", "s2").map(|(_, w)| w), Some(true));
        assert!(r.join(Some("zed")).is_none(), "no longer waiting");
        assert_eq!(r.joined("ZED", "s3"), None, "a member already");
        assert_eq!(
            r.left("zed", "s3"),
            None,
            "s3's LEAVE cannot remove s2's member"
        );
        assert_eq!(r.renamed("zed", "zack", "s3"), None);
        let (old, new) = r
            .renamed("zed", "Zack", "s2")
            .unwrap_or_else(|| panic!("renamed"));
        assert_eq!((&*old, &*new), ("zed", "Zack"));
        assert_eq!(r.member("zack").map(|(_, s)| s), Some(Rc::from("s2")));
        assert_eq!(
            r.left("zack", "s2"),
            Some(Departure::Member(Rc::from("Zack")))
        );
        assert!(!r.taken("zack"));
    }

    #[test]
    fn a_claimed_join_is_parked_until_the_log_is_read_up_to_its_claim() {
        let id = |n| ConnId { key: n, serial: 1 };
        let mut r = Remote {
            up: true,
            epoch: 4,
            read: LogId(10, 0),
            ..Remote::default()
        };
        r.claiming
            .insert(fold("amy"), (id(1), Purpose::Join { wait: true }));
        assert_eq!(r.answered("amy", id(2)), None, "not its claim");
        assert_eq!(r.answered("AMY", id(1)), Some(Purpose::Join { wait: true }));
        assert!(!r.taken("amy"), "answered: no longer under way");
        let amy: Rc<str> = Rc::from("amy");
        assert!(
            !r.park(id(1), &amy, true, LogId(10, 0)),
            "the log is read that far"
        );
        assert!(r.park(id(1), &amy, true, LogId(12, 0)));
        assert!(r.taken("amy"), "its name stays claimed while parked");
        assert!(r.caught_up(LogId(11, 0)).is_empty());
        assert_eq!(
            r.caught_up(LogId(12, 0)),
            vec![(id(1), Rc::clone(&amy), true)]
        );
        assert!(!r.taken("amy"));
        assert!(
            r.caught_up(LogId(5, 0)).is_empty() && r.read == LogId(12, 0),
            "read never goes back"
        );
        r.joined("zed", "s2");
        assert!(r.cut_off());
        assert!(!r.up && r.members.is_empty() && r.epoch == 4);
        assert!(!r.cut_off(), "once");
    }

    #[test]
    fn messages_waiting_for_the_room_s_log_are_bounded() {
        let mut r = Remote::default();
        let from = ConnId { key: 1, serial: 1 };
        for n in 0..MAX_AWAITING {
            assert!(r.await_log(&format!("0000000a-{n}"), from));
        }
        assert!(!r.await_log("0000000a-x", from), "full");
        assert_eq!(r.awaiting.len(), MAX_AWAITING);
        r.awaiting.remove("0000000a-0");
        assert!(r.await_log("0000000a-x", from), "room again");
    }

    #[test]
    fn a_withdrawn_join_and_a_server_going_down_clear_the_view() {
        let t = Instant::now();
        let mut r = Remote::default();
        r.requested("amy", "s2", "10.0.0.2:1", t);
        r.requested(
            "bea",
            "s3",
            "10.0.0.3:1",
            t + std::time::Duration::from_secs(1),
        );
        assert_eq!(
            r.join(None).map(|j| j.name),
            Some(Rc::from("amy")),
            "the oldest"
        );
        assert_eq!(
            r.joins().iter().map(|j| &*j.name).collect::<Vec<_>>(),
            ["amy", "bea"]
        );
        assert_eq!(r.left("amy", "s2"), Some(Departure::Withdrawn));
        r.joined("cy", "s3");
        r.joined("Al", "s3");
        r.joined("di", "s2");
        let mut gone = r.server_down("s3");
        gone.sort();
        assert_eq!(gone, [Rc::from("Al"), Rc::from("cy")]);
        assert!(r.joins().is_empty(), "s3's waiting join went with it");
        assert_eq!(
            r.members_sorted()
                .iter()
                .map(|(n, _)| &**n)
                .collect::<Vec<_>>(),
            ["di"]
        );
    }
}
