//! The writer thread: the core's requests to Redis, the heartbeat, the reaping of dead servers,
//! and joining (again) after a cut-off.
//!
//! It owns one Redis connection, used in order, so the server's events reach the log in the
//! order the core made them. A command that fails (timeout, reset) is retried on a new
//! connection: every script is idempotent (the per-server sequence number for appends, the
//! claim's owner check), and the new connection first kills the old one by its client id, so a
//! command still buffered on the old socket can never run after a later one. When no heartbeat
//! got through for the cluster timeout, or the others declared this server dead, the core is
//! told [`FromBridge::Down`]; the writer then joins again under a new server id.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Connection, RedisResult, Value};

use super::event::{wall_ms, Event, FromBridge, LogId, RemoteEntry, ToBridge};
use super::{deliver, scripts, ClusterConfig, ReadFrom, Shared, BATCH, LOG_MAXLEN};

/// Entries read per page while seeding the history.
const HISTORY_PAGE: usize = 1000;
/// Pause between attempts while Redis does not answer.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// What one attempt at a request came to.
enum Outcome {
    Done,
    /// This server is no longer in the room.
    Dead,
}

pub(super) struct Writer {
    config: ClusterConfig,
    client: redis::Client,
    shared: Arc<Shared>,
    from_core: Receiver<ToBridge>,
    to_core: SyncSender<FromBridge>,
    waker: Arc<mio::Waker>,
    left: SyncSender<()>,
    con: Option<Connection>,
    /// The client id of `con`, killed when a new connection replaces it.
    con_id: Option<i64>,
    heartbeat_script: redis::Script,
    publish_script: redis::Script,
    claim_script: redis::Script,
    release_script: redis::Script,
    snapshot_script: redis::Script,
    prune_forgets_script: redis::Script,
    /// When the forget records past `keep_forgets` are dropped next (at a join, then every
    /// [`super::PRUNE_FORGETS_INTERVAL`]).
    next_prune: Instant,
    /// This epoch's server id; `None` while not in the room.
    server: Option<String>,
    epoch: u64,
    /// Sequence number of the last event handed to Redis in this epoch.
    seq: u64,
    /// Requests taken from the core, not yet done.
    pending: VecDeque<ToBridge>,
    /// Ids this server used before (cut off, or a join that failed half-way): a command of
    /// theirs that was stuck in a stopped Redis may still run and bring them back to life, so
    /// they are made to leave the room before the next join.
    stale: Vec<String>,
    /// The last reason a join failed, so each new one is logged once.
    last_join_error: Option<String>,
    next_beat: Instant,
}

impl Writer {
    pub(super) fn new(
        config: ClusterConfig,
        client: redis::Client,
        shared: Arc<Shared>,
        from_core: Receiver<ToBridge>,
        to_core: SyncSender<FromBridge>,
        waker: Arc<mio::Waker>,
        left: SyncSender<()>,
    ) -> Writer {
        let now = Instant::now();
        Writer {
            config,
            client,
            shared,
            from_core,
            to_core,
            waker,
            left,
            con: None,
            con_id: None,
            heartbeat_script: redis::Script::new(&scripts::heartbeat()),
            publish_script: redis::Script::new(scripts::PUBLISH),
            claim_script: redis::Script::new(scripts::CLAIM),
            release_script: redis::Script::new(scripts::RELEASE),
            snapshot_script: redis::Script::new(scripts::SNAPSHOT),
            prune_forgets_script: redis::Script::new(scripts::PRUNE_FORGETS),
            next_prune: now,
            server: None,
            epoch: 0,
            seq: 0,
            pending: VecDeque::new(),
            stale: Vec::new(),
            last_join_error: None,
            next_beat: now,
        }
    }

    pub(super) fn run(mut self) {
        loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                return;
            }
            if self.shared.reset.swap(false, Ordering::Relaxed) {
                self.cut_off("its queue to Redis overflowed", true);
            }
            if self.server.is_some() && !self.shared.joined.load(Ordering::SeqCst) {
                // The watchdog cut the server off while this thread was stuck.
                self.stale.extend(self.server.take());
                self.pending.clear();
            }
            if self.server.is_none() {
                if !self.discard_until_joined() {
                    return;
                }
                continue;
            }
            if !self.take_requests() {
                return;
            }
            if Instant::now() >= self.next_beat {
                self.beat();
            }
            if self.server.is_some() && Instant::now() >= self.next_prune {
                self.prune_forgets();
            }
            if self.server.is_some() && !self.work() {
                return;
            }
            if self.server.is_some() && self.shared.since_ok() > self.config.timeout {
                self.cut_off("Redis did not answer in time", false);
            }
        }
    }

    /// While out of the room: requests are dropped (the core has forgotten its sessions), a
    /// `Leave` is answered, and joining is tried again every heartbeat. False: stop.
    fn discard_until_joined(&mut self) -> bool {
        loop {
            match self.from_core.try_recv() {
                Ok(msg) => {
                    self.took(&msg);
                    if msg == ToBridge::Leave {
                        let _ = self.left.try_send(());
                        return false;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
        self.pending.clear();
        match self.join() {
            Ok(true) => true,
            Ok(false) => false,
            Err(e) => {
                // Once per outage at warn (a wrong password or address must be seen), then debug.
                let text = e.to_string();
                if self.last_join_error.as_deref() != Some(text.as_str()) {
                    log::warn!("cluster: cannot join the room yet: {text}");
                    let why = FromBridge::NotJoined { why: text.clone() };
                    if !deliver(&self.to_core, &self.waker, why) {
                        return false;
                    }
                    self.last_join_error = Some(text);
                } else {
                    log::debug!("cluster: cannot join yet: {e}");
                }
                self.con = None;
                std::thread::sleep(self.config.heartbeat());
                true
            }
        }
    }

    fn took(&self, msg: &ToBridge) {
        self.shared.queued.fetch_sub(msg.cost(), Ordering::Relaxed);
    }

    /// Waits for requests until the next heartbeat (not at all when some are pending). False:
    /// the reactor is gone.
    fn take_requests(&mut self) -> bool {
        if self.pending.is_empty() {
            let wait = self.next_beat.saturating_duration_since(Instant::now());
            match self.from_core.recv_timeout(wait) {
                Ok(msg) => {
                    self.took(&msg);
                    self.pending.push_back(msg);
                }
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
        while self.pending.len() < BATCH * 4 {
            match self.from_core.try_recv() {
                Ok(msg) => {
                    self.took(&msg);
                    self.pending.push_back(msg);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
        true
    }

    /// Does the pending requests in order. False: stop (after a `Leave`).
    fn work(&mut self) -> bool {
        while let Some(front) = self.pending.front() {
            if Instant::now() >= self.next_beat {
                return true;
            }
            let result = match front {
                ToBridge::Leave => {
                    self.leave();
                    let _ = self.left.try_send(());
                    return false;
                }
                ToBridge::Publish { .. } => self.publish(),
                ToBridge::Claim { .. } | ToBridge::Release { .. } => self.claim_or_release(),
            };
            match result {
                Ok(Outcome::Done) => {}
                Ok(Outcome::Dead) => {
                    self.cut_off("the other servers declared it dead", false);
                    return true;
                }
                Err(e) => {
                    log::debug!("cluster: Redis command failed: {e}");
                    self.con = None;
                    std::thread::sleep(RETRY_PAUSE);
                    return true;
                }
            }
        }
        true
    }

    /// The connection, opened (with timeouts) when there is none.
    fn con(&mut self) -> RedisResult<&mut Connection> {
        if self.con.is_none() {
            let limit = self.config.heartbeat();
            let mut con = self.client.get_connection_with_timeout(limit)?;
            con.set_read_timeout(Some(limit))?;
            con.set_write_timeout(Some(limit))?;
            if let Some(old) = self.con_id.take() {
                // Whatever the old socket still holds must not run after what comes next.
                let _: RedisResult<Value> = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("ID")
                    .arg(old)
                    .query(&mut con);
            }
            self.con_id = redis::cmd("CLIENT").arg("ID").query(&mut con).ok();
            self.con = Some(con);
        }
        self.con
            .as_mut()
            .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::IoError, "no connection")))
    }

    fn keys(&self) -> [String; 5] {
        ["servers", "names", "who", "seq", "log"].map(|k| self.config.key(k))
    }

    fn heartbeat(&mut self, server: &str, mode: &str) -> RedisResult<i64> {
        let keys = self.keys();
        let interval = u64::try_from(self.config.timeout.as_millis()).unwrap_or(u64::MAX);
        let script = self.heartbeat_script.clone();
        let mut inv = script.prepare_invoke();
        for k in &keys {
            inv.key(k);
        }
        inv.arg(server).arg(mode).arg(interval).arg(LOG_MAXLEN);
        let con = self.con()?;
        inv.invoke(con)
    }

    /// Drops the forget records older than `keep_forgets` from Redis: past it no server admits
    /// the token they voided anyway (a failure is retried at the next interval).
    fn prune_forgets(&mut self) {
        self.next_prune = Instant::now() + super::PRUNE_FORGETS_INTERVAL;
        let keep = u64::try_from(self.config.keep_forgets.as_millis()).unwrap_or(u64::MAX);
        let before = wall_ms(std::time::SystemTime::now()).saturating_sub(keep);
        let script = self.prune_forgets_script.clone();
        let mut inv = script.prepare_invoke();
        inv.key(self.config.key("members")).arg(before);
        let result: RedisResult<u64> = match self.con() {
            Ok(con) => inv.invoke(con),
            Err(e) => Err(e),
        };
        match result {
            Ok(0) => {}
            Ok(n) => log::info!(
                "cluster: {n} forget records older than the --remember bound dropped from Redis"
            ),
            Err(e) => log::debug!("cluster: pruning forget records failed: {e}"),
        }
    }

    fn beat(&mut self) {
        let Some(server) = self.server.clone() else {
            return;
        };
        self.next_beat = Instant::now() + self.config.heartbeat();
        match self.heartbeat(&server, "beat") {
            Ok(-1) => self.cut_off("the other servers declared it dead", false),
            Ok(-2) => self.cut_off(
                "Redis lost the room's data (it restarted empty or was flushed)",
                false,
            ),
            Ok(reaped) => {
                self.shared.mark_ok();
                if reaped > 0 {
                    log::info!("cluster: {reaped} silent servers declared dead");
                }
            }
            Err(e) => {
                log::debug!("cluster: heartbeat failed: {e}");
                self.con = None;
            }
        }
    }

    /// Appends the run of `Publish` requests of one epoch at the front of the queue (up to
    /// [`BATCH`]), under that epoch's server id.
    ///
    /// The fence: Redis appends them only while that id is in the room (the script checks it
    /// atomically with the `XADD`s). A request the core made before a cut-off may reach this
    /// thread after it has rejoined under a new id (the core had not heard of the cut-off yet):
    /// it is still sent under its own, old id, which Redis refuses, and then it is dropped.
    fn publish(&mut self) -> RedisResult<Outcome> {
        let Some(epoch) = self.pending.front().and_then(ToBridge::epoch) else {
            return Ok(Outcome::Done);
        };
        let current = self.server.is_some() && epoch == self.epoch;
        let server = server_id(&self.config.name, epoch);
        let count = self
            .pending
            .iter()
            .take(BATCH)
            .take_while(|m| matches!(m, ToBridge::Publish { epoch: e, .. } if *e == epoch))
            .count();
        let script = self.publish_script.clone();
        let mut inv = script.prepare_invoke();
        for k in ["servers", "who", "seq", "log", "names", "members", "bans"] {
            inv.key(self.config.key(k));
        }
        // An earlier epoch's sequence is gone with it: 1 is the lowest, so a retry could never
        // append twice even if Redis still knew the id.
        let first = if current { self.seq + 1 } else { 1 };
        inv.arg(&server).arg(first).arg(LOG_MAXLEN);
        for msg in self.pending.iter().take(count) {
            if let ToBridge::Publish { event, wall_ms, .. } = msg {
                let (kind, [a, b, c]) = event.encode();
                inv.arg(kind).arg(*wall_ms).arg(&*a).arg(&*b).arg(&*c);
            }
        }
        let answer: i64 = inv.invoke(self.con()?)?;
        if !current {
            self.pending.drain(..count);
            if answer < 0 {
                log::info!(
                    "cluster: {count} events made as {server} before it was cut off were \
                     refused by Redis (that id is out of the room)"
                );
            } else {
                log::warn!("cluster: {count} events of the earlier id {server} were appended");
            }
            return Ok(Outcome::Done);
        }
        if answer < 0 {
            return Ok(Outcome::Dead);
        }
        self.seq += count as u64;
        self.pending.drain(..count);
        Ok(Outcome::Done)
    }

    /// Claims or frees a name under the id of the epoch the request was made in; a request of
    /// an earlier epoch is refused by Redis (that id is out of the room) and dropped, as
    /// [`Writer::publish`] does.
    fn claim_or_release(&mut self) -> RedisResult<Outcome> {
        let Some(front) = self.pending.front().cloned() else {
            return Ok(Outcome::Done);
        };
        let Some(epoch) = front.epoch() else {
            return Ok(Outcome::Done);
        };
        let current = self.server.is_some() && epoch == self.epoch;
        let server = server_id(&self.config.name, epoch);
        let names = self.config.key("names");
        let servers = self.config.key("servers");
        let answer = match front {
            ToBridge::Claim {
                id, name, release, ..
            } => {
                let script = self.claim_script.clone();
                let mut inv = script.prepare_invoke();
                inv.key(servers).key(names).key(self.config.key("log"));
                inv.arg(&server)
                    .arg(name.to_ascii_lowercase())
                    .arg(release.map(|r| r.to_ascii_lowercase()).unwrap_or_default());
                let (answer, tip): (i64, String) = inv.invoke(self.con()?)?;
                self.pending.pop_front();
                if answer >= 0 && current {
                    let ok = answer == 1;
                    let tip = LogId::parse(&tip).unwrap_or_default();
                    let claimed = FromBridge::Claimed { id, name, ok, tip };
                    if !deliver(&self.to_core, &self.waker, claimed) {
                        self.shared.stop.store(true, Ordering::Relaxed);
                    }
                }
                answer
            }
            ToBridge::Release { name, .. } => {
                let script = self.release_script.clone();
                let mut inv = script.prepare_invoke();
                inv.key(servers)
                    .key(names)
                    .arg(&server)
                    .arg(name.to_ascii_lowercase());
                let answer: i64 = inv.invoke(self.con()?)?;
                self.pending.pop_front();
                answer
            }
            ToBridge::Publish { .. } | ToBridge::Leave => return Ok(Outcome::Done),
        };
        if answer < 0 && current {
            return Ok(Outcome::Dead);
        }
        if answer < 0 {
            log::info!(
                "cluster: a name request made as {server} before it was cut off was refused"
            );
        }
        Ok(Outcome::Done)
    }

    /// Joins the room under a new id: heartbeat, snapshot, history, then `Up` to the core
    /// (sent while the reader's start point is held, so the reader's entries come after it).
    /// Ok(false): the reactor is gone.
    fn join(&mut self) -> RedisResult<bool> {
        while let Some(old) = self.stale.last().cloned() {
            self.heartbeat(&old, "leave")?;
            self.stale.pop();
        }
        // The first join is under the server's name; a rejoin after a cut-off under `name~N`
        // (the old id may still be in the room until the others time it out).
        let server = server_id(&self.config.name, self.epoch + 1);
        if self.heartbeat(&server, "join")? == -3 {
            return Err(redis::RedisError::from((
                redis::ErrorKind::ResponseError,
                "the name is in use",
                format!(
                    "a live server in the room is named {server} (this one's previous run, until \
                     it times out, or another server: give each its own --cluster-name)"
                ),
            )));
        }
        self.stale.push(server.clone());
        let script = self.snapshot_script.clone();
        let mut inv = script.prepare_invoke();
        for k in ["who", "log", "members", "bans"] {
            inv.key(self.config.key(k));
        }
        type Snapshot = (String, Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<Vec<u8>>);
        let (at, who, members, bans): Snapshot = inv.invoke(self.con()?)?;
        let remote = parse_who(&who);
        let shared: Vec<Event> = members
            .iter()
            .chain(bans.iter())
            .filter_map(|v| parse_shared(v))
            .collect();
        let history = self.history(&at)?;
        self.epoch += 1;
        self.seq = 0;
        self.shared.mark_ok();
        self.next_beat = Instant::now() + self.config.heartbeat();
        log::info!(
            "cluster: joined room {} as {server}: {} members and waiting joins elsewhere",
            self.config.room,
            remote.len()
        );
        let up = FromBridge::Up {
            epoch: self.epoch,
            server: server.clone(),
            at: LogId::parse(&at).unwrap_or_default(),
            remote,
            history,
            shared,
        };
        let Ok(mut from) = self.shared.read_from.lock() else {
            return Ok(false);
        };
        *from = ReadFrom {
            epoch: self.epoch,
            server: server.clone(),
            id: at,
        };
        self.stale.retain(|s| *s != server);
        self.last_join_error = None;
        self.next_prune = Instant::now();
        self.server = Some(server);
        self.shared.joined.store(true, Ordering::SeqCst);
        Ok(deliver(&self.to_core, &self.waker, up))
    }

    /// The last history-worth of `MSG`/`ACT` entries at or before log id `at`, oldest first.
    fn history(&mut self, at: &str) -> RedisResult<Vec<(std::time::SystemTime, Vec<u8>, String)>> {
        let want = self.config.history;
        let mut got = Vec::new();
        if want == 0 || at == "0-0" {
            return Ok(got);
        }
        let log = self.config.key("log");
        let mut end = at.to_owned();
        let mut scanned = 0;
        while got.len() < want && scanned < LOG_MAXLEN {
            let page: Value = redis::cmd("XREVRANGE")
                .arg(&log)
                .arg(&end)
                .arg("-")
                .arg("COUNT")
                .arg(HISTORY_PAGE)
                .query(self.con()?)?;
            let entries = super::reader::parse_entries(&page);
            if entries.is_empty() {
                break;
            }
            scanned += entries.len();
            for (id, entry) in &entries {
                end = format!("({id}");
                if let Some(entry) = entry {
                    if let super::event::Event::Msg { line, id } = &entry.event {
                        got.push((entry.wall, line.clone(), id.clone()));
                        if got.len() == want {
                            break;
                        }
                    }
                }
            }
            if entries.len() < HISTORY_PAGE {
                break;
            }
        }
        got.reverse();
        Ok(got)
    }

    /// Out of the room: the core is told; with `leave`, this server's members are announced
    /// gone and its names freed first (it was not declared dead by the others).
    fn cut_off(&mut self, why: &str, leave: bool) {
        if self.server.is_none() {
            return;
        }
        if leave {
            self.leave();
        }
        self.stale.extend(self.server.take());
        self.pending.clear();
        self.shared.cut_off(&self.to_core, &self.waker, why);
    }

    /// Leaves the room now: what is pending is appended first (best effort, one try each).
    fn leave(&mut self) {
        let Some(server) = self.server.clone() else {
            return;
        };
        while let Some(front) = self.pending.front() {
            let result = match front {
                ToBridge::Publish { .. } => self.publish(),
                ToBridge::Claim { .. } | ToBridge::Release { .. } => self.claim_or_release(),
                ToBridge::Leave => {
                    self.pending.pop_front();
                    Ok(Outcome::Done)
                }
            };
            if !matches!(result, Ok(Outcome::Done)) {
                break;
            }
        }
        if let Err(e) = self.heartbeat(&server, "leave") {
            log::warn!("cluster: could not leave the room cleanly: {e}");
        }
    }
}

/// The server's id in the room in bridge epoch `epoch`: its name in the first, `name~N` in
/// the N-th (a rejoin after a cut-off, while the old id may still be in the room until the
/// others time it out). Unique per epoch, so "this id is in the room" is Redis's fence for
/// every write made in that epoch.
fn server_id(name: &str, epoch: u64) -> String {
    if epoch <= 1 {
        name.to_owned()
    } else {
        format!("{name}~{epoch}")
    }
}

/// A value of the `members` or `bans` hash (`stamp \t kind \t a \t c`) as the event that
/// wrote it; `None` for anything that does not decode (a stray writer is skipped, not fatal).
fn parse_shared(value: &[u8]) -> Option<Event> {
    let mut parts = value.splitn(4, |&b| b == b'\t');
    let (stamp, kind, a) = (parts.next()?, parts.next()?, parts.next()?);
    let c = parts.next().unwrap_or(b"");
    if !matches!(kind, b"T" | b"F" | b"B" | b"O") {
        return None;
    }
    Event::decode(kind, a, stamp, c)
}

/// The `who` hash, flattened: lowercased name, `server \t M|W \t Name [\t addr]`.
fn parse_who(flat: &[Vec<u8>]) -> Vec<RemoteEntry> {
    flat.chunks_exact(2)
        .filter_map(|pair| {
            let v = std::str::from_utf8(&pair[1]).ok()?;
            let mut parts = v.split('\t');
            let server = parts.next()?.to_owned();
            let state = parts.next()?;
            let name = parts.next()?.to_owned();
            let waiting = match state {
                "M" => None,
                "W" => Some(parts.next().unwrap_or("?").to_owned()),
                _ => return None,
            };
            Some(RemoteEntry {
                server,
                name,
                waiting,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_records_read_back_as_their_events() {
        let hash = "0f".repeat(32);
        let member = format!("20\tT\tAl\t{hash}\t10\tstdin");
        let got = parse_shared(member.as_bytes());
        assert!(
            matches!(&got, Some(Event::Member { record }) if record.name == "Al"
                && record.last_seen_ms == 20 && record.approved_at_ms == 10),
            "{got:?}"
        );
        assert_eq!(
            parse_shared(b"30\tF\tAl\t"),
            Some(Event::Forget {
                name: "Al".into(),
                at_ms: 30
            })
        );
        assert_eq!(
            parse_shared(b"40\tO\t10.0.0.0/8\t"),
            Some(Event::Unban {
                net: "10.0.0.0/8".into(),
                at_ms: 40
            })
        );
        assert_eq!(parse_shared(b"40\tM\tMSG a - x\n\t"), None, "not a record");
        assert_eq!(parse_shared(b"garbage"), None);
    }

    #[test]
    fn every_epoch_has_an_id_of_its_own() {
        assert_eq!(server_id("s1", 0), "s1");
        assert_eq!(server_id("s1", 1), "s1");
        assert_eq!(server_id("s1", 2), "s1~2");
        assert_eq!(server_id("s1", 7), "s1~7");
    }

    #[test]
    fn the_who_hash_reads_members_and_waiting_joins() {
        let flat: Vec<Vec<u8>> = [
            "al",
            "s1\tM\tAl",
            "bo",
            "s2\tW\tBo\t127.0.0.1:5",
            "x",
            "garbage",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        let got = parse_who(&flat);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "Al");
        assert_eq!(got[0].waiting, None);
        assert_eq!(got[1].waiting.as_deref(), Some("127.0.0.1:5"));
    }
}
