//! The store's tables in redb and every read and write of them, synchronous.
//!
//! Owns the file format: which tables exist, how a record is laid out, what a commit holds.
//! Called at start (to open and load, before the loop runs) and then only from the disk thread
//! (`disk.rs`); never from the loop. It decides nothing about who is remembered or what a
//! resume replays: it keeps and reads what it is given.

use std::path::Path;
use std::time::{Duration, SystemTime};

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{Entry, Kind, MemberRecord, StoreError, Write};
use crate::chat::bans::{Ban, IpNet};
use crate::token::TokenHash;

/// The room's log: seq -> (time in ms since the epoch, kind, from, to, the v2 line).
const LOG: TableDefinition<'_, u64, (u64, u8, &str, &str, &str)> = TableDefinition::new("log");
/// The private messages in the log, for pruning them sooner: seq -> time in ms.
const PRIVS: TableDefinition<'_, u64, u64> = TableDefinition::new("privs");
/// Under `--cluster`: the id the origin server gave each logged line (seq -> id), when it is
/// not this log's `<epoch>-<seq>`.
const ORIGINS: TableDefinition<'_, u64, &str> = TableDefinition::new("origins");
/// The same the other way (id -> seq): where a resume from an origin's id starts here.
const BY_ORIGIN: TableDefinition<'_, &str, u64> = TableDefinition::new("by_origin");
/// Remembered members: the name in lower case -> (name, token hash, approved by, approved at,
/// last seen), times in ms since the epoch.
const MEMBERS: TableDefinition<'_, &str, (&str, &[u8], &str, u64, u64)> =
    TableDefinition::new("members");
/// Bans as format 1 kept them: range -> when, in ms since the epoch (no reason, author or
/// end). Read once by [`Db::load`], moved into [`BAN_RECORDS`] and deleted.
const BANS_V1: TableDefinition<'_, &str, u64> = TableDefinition::new("bans");
/// Bans, whole: range (`10.0.0.0/8`, `192.0.2.7`) -> (its place in the list: bans are listed
/// in the order they were made, and a ban that replaces one of its range keeps that one's
/// place; since, until or 0 for none, in ms since the epoch; the console that made it; the
/// reason, empty for none).
const BAN_RECORDS: TableDefinition<'_, &str, BanRow<'_>> = TableDefinition::new("ban_records");

/// A row of [`BAN_RECORDS`]: (place, since, until, by, reason).
type BanRow<'a> = (u64, u64, u64, &'a str, &'a str);
/// Counters: `epoch`, `next` (the next sequence number, never lowered), `format` (the file
/// format's version, [`FORMAT`]), `ban_place` (the next ban's place in the list).
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// The file format this server writes. 1 (no `format` key): bans kept only their range and
/// time. 2: bans kept whole (`ban_records`); a format 1 file is moved on when it is opened.
/// 3: the log keeps other servers' lines with their origin's ids (`origins`, `by_origin`),
/// which a format 2 server would replay under its own ids; a format 2 file needs no change.
pub const FORMAT: u64 = 3;
/// Who made a ban that a format 1 file kept (it did not record it).
pub const UNKNOWN_BAN_AUTHOR: &str = "an earlier run";

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "chat.redb";

/// What a store held when it was opened.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The log's epoch.
    pub epoch: u32,
    /// The next sequence number to give.
    pub next_seq: u64,
    /// The oldest sequence number still in the log (`next_seq` when it is empty).
    pub first_seq: u64,
    /// Remembered members.
    pub members: Vec<MemberRecord>,
    /// The bans, whole (expired ones included: the core drops those).
    pub bans: Vec<Ban>,
    /// The log's last entries (for `--history`), oldest first.
    pub recent: Vec<Entry>,
}

fn storage(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Disk(e.into().to_string())
}

/// An open store: a redb file (`--data-dir DIR`), or plain memory (`--data-dir none`: nothing
/// to make durable, so no B-tree, no page copies, no commits; a bounded map of the log).
#[derive(Debug)]
pub enum Db {
    /// On disk.
    File(FileDb),
    /// In memory. (`RefCell`: the disk thread alone uses it once started.)
    Memory(std::cell::RefCell<super::memory::MemLog>),
}

impl Db {
    /// Opens (or creates) the database at `path`; a crashed one is repaired by redb.
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        FileDb::open(path).map(Db::File)
    }

    /// A store in memory (`--data-dir none`).
    pub fn in_memory() -> Result<Db, StoreError> {
        Ok(Db::Memory(Default::default()))
    }

    /// Creates the tables if needed, gives a new log its epoch, and reads what start needs.
    pub fn load(&self, recent: usize) -> Result<Loaded, StoreError> {
        match self {
            Db::File(f) => f.load(recent),
            Db::Memory(m) => m.borrow_mut().load(recent),
        }
    }

    /// Applies `writes` at once (on disk: one transaction whose commit is an fsync).
    pub fn commit(&self, writes: &mut Vec<Write>, next_seq: u64) -> Result<(), StoreError> {
        match self {
            // A failed commit leaves `writes` to the caller, to retry.
            Db::File(f) => f.commit(writes, next_seq),
            // Memory never fails: it keeps the writes themselves.
            Db::Memory(m) => {
                m.borrow_mut().commit(std::mem::take(writes), next_seq);
                Ok(())
            }
        }
    }

    /// Up to `max` entries with a sequence number above `after`, oldest first, and whether
    /// more follow.
    pub fn read_after(
        &self,
        after: Option<u64>,
        max: usize,
    ) -> Result<(Vec<Entry>, bool), StoreError> {
        match self {
            Db::File(f) => f.read_after(after, max),
            Db::Memory(m) => Ok(m.borrow().read_after(after, max)),
        }
    }

    /// The oldest sequence number in the log, if any.
    pub fn first_seq(&self) -> Result<Option<u64>, StoreError> {
        match self {
            Db::File(f) => f.first_seq(),
            Db::Memory(m) => Ok(m.borrow().first_seq()),
        }
    }

    /// The sequence number the message `id` is kept at here, if it is kept: a line logged
    /// with its origin's id (`--cluster`), or else `own`, the number `id` has when it is of
    /// this log's epoch, if that entry was logged under its own id.
    pub fn locate(&self, id: &str, own: Option<u64>) -> Result<Option<u64>, StoreError> {
        match self {
            Db::File(f) => f.locate(id, own),
            Db::Memory(m) => Ok(m.borrow().locate(id, own)),
        }
    }
}

/// A redb database file.
#[derive(Debug)]
pub struct FileDb {
    db: Database,
}

impl FileDb {
    /// Opens (or creates) the database at `path`; a crashed one is repaired by redb.
    pub fn open(path: &Path) -> Result<FileDb, StoreError> {
        let db = Database::builder()
            .set_cache_size(super::CACHE_BYTES)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::Storage(redb::StorageError::Corrupted(msg)) => {
                    StoreError::Corrupt(format!("{}: {msg}", path.display()))
                }
                redb::DatabaseError::UpgradeRequired(v) => StoreError::Corrupt(format!(
                    "{}: written in an unknown format (version {v})",
                    path.display()
                )),
                other => StoreError::Disk(format!("{}: {other}", path.display())),
            })?;
        Ok(FileDb { db })
    }

    /// Creates the tables if needed, gives a new log its epoch, and reads what start needs.
    pub fn load(&self, recent: usize) -> Result<Loaded, StoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let mut out = Loaded::default();
        {
            let mut meta = txn.open_table(META).map_err(storage)?;
            let epoch = meta.get("epoch").map_err(storage)?.map(|v| v.value());
            let format = meta
                .get("format")
                .map_err(storage)?
                .map_or(1, |v| v.value());
            if format > FORMAT {
                return Err(StoreError::Corrupt(format!(
                    "written by a newer server (file format {format}; this one reads up to \
                     {FORMAT})"
                )));
            }
            if format < FORMAT {
                meta.insert("format", FORMAT).map_err(storage)?;
            }
            let epoch = match epoch {
                Some(e) => u32::try_from(e).map_err(|_| corrupt("epoch"))?,
                None => {
                    let e = super::new_epoch()
                        .map_err(|_| StoreError::Disk("no random bytes from the OS".into()))?;
                    meta.insert("epoch", u64::from(e)).map_err(storage)?;
                    e
                }
            };
            out.epoch = epoch;
            let next = meta.get("next").map_err(storage)?.map_or(1, |v| v.value());
            out.next_seq = next.max(1);
            let log = txn.open_table(LOG).map_err(storage)?;
            if let Some((k, _)) = log.last().map_err(storage)? {
                // The meta counter is written in the same commit as the entries; this only
                // guards against a counter that was somehow behind.
                out.next_seq = out.next_seq.max(k.value() + 1);
            }
            out.first_seq = log
                .first()
                .map_err(storage)?
                .map_or(out.next_seq, |(k, _)| k.value());
            let origins = txn.open_table(ORIGINS).map_err(storage)?;
            txn.open_table(BY_ORIGIN).map_err(storage)?;
            let mut recent_rev = Vec::new();
            for row in log.iter().map_err(storage)?.rev() {
                if recent_rev.len() >= recent {
                    break;
                }
                let (k, v) = row.map_err(storage)?;
                let mut entry = entry_of(k.value(), v.value())?;
                if entry.kind.in_history() {
                    entry.origin_id = origin_of(&origins, entry.seq)?;
                    recent_rev.push(entry);
                }
            }
            recent_rev.reverse();
            out.recent = recent_rev;
            let members = txn.open_table(MEMBERS).map_err(storage)?;
            for row in members.iter().map_err(storage)? {
                let (_, v) = row.map_err(storage)?;
                out.members.push(member_of(v.value())?);
            }
            let mut bans = txn.open_table(BAN_RECORDS).map_err(storage)?;
            migrate_bans(&txn, &mut bans, &mut meta)?;
            let mut placed = Vec::new();
            for row in bans.iter().map_err(storage)? {
                let (k, v) = row.map_err(storage)?;
                let v = v.value();
                match ban_of(k.value(), v) {
                    Some(ban) => placed.push((v.0, ban)),
                    // Kept as it is (never rewritten); the room goes on without it.
                    None => log::warn!("store: skipped an unreadable ban record {:?}", k.value()),
                }
            }
            // In the order they were made, as `bans` lists them (the table is in key order).
            placed.sort_by_key(|(place, _)| *place);
            out.bans = placed.into_iter().map(|(_, ban)| ban).collect();
            txn.open_table(PRIVS).map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(out)
    }

    /// Applies `writes` in one transaction and commits it (an fsync: durable when this returns
    /// `Ok`). The next sequence number is persisted with them: at least `next_seq`, and past
    /// every entry written, so no id is ever given twice.
    pub fn commit(&self, writes: &[Write], mut next_seq: u64) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut log = txn.open_table(LOG).map_err(storage)?;
            let mut privs = txn.open_table(PRIVS).map_err(storage)?;
            let mut members = txn.open_table(MEMBERS).map_err(storage)?;
            let mut bans = txn.open_table(BAN_RECORDS).map_err(storage)?;
            let mut meta = txn.open_table(META).map_err(storage)?;
            // Opened only when a write needs them: a single server's commits never do (its
            // lines are logged under their own ids), so its hot path is as it was.
            let (mut origins, mut by_origin) = if writes.iter().any(needs_origins) {
                (
                    Some(txn.open_table(ORIGINS).map_err(storage)?),
                    Some(txn.open_table(BY_ORIGIN).map_err(storage)?),
                )
            } else {
                (None, None)
            };
            for w in writes {
                match w {
                    Write::Append(entries) => {
                        for e in entries {
                            next_seq = next_seq.max(e.seq.saturating_add(1));
                            log.insert(
                                e.seq,
                                (e.time_ms, e.kind as u8, &*e.from, &*e.to, &*e.line),
                            )
                            .map_err(storage)?;
                            if e.kind == Kind::Priv {
                                privs.insert(e.seq, e.time_ms).map_err(storage)?;
                            }
                            if let (Some(id), Some(origins), Some(by_origin)) =
                                (&e.origin_id, origins.as_mut(), by_origin.as_mut())
                            {
                                origins.insert(e.seq, &**id).map_err(storage)?;
                                by_origin.insert(&**id, e.seq).map_err(storage)?;
                            }
                        }
                    }
                    Write::Reserve(next) => next_seq = next_seq.max(*next),
                    Write::Member(m) => {
                        let key = m.name.to_ascii_lowercase();
                        members
                            .insert(
                                &*key,
                                (
                                    &*m.name,
                                    &m.token_hash.0[..],
                                    &*m.approved_by,
                                    m.approved_at_ms,
                                    m.last_seen_ms,
                                ),
                            )
                            .map_err(storage)?;
                    }
                    Write::Seen { name, at_ms } => {
                        let key = name.to_ascii_lowercase();
                        let found = members
                            .get(&*key)
                            .map_err(storage)?
                            .map(|v| member_of(v.value()));
                        if let Some(Ok(mut m)) = found {
                            m.last_seen_ms = m.last_seen_ms.max(*at_ms);
                            members
                                .insert(
                                    &*key,
                                    (
                                        &*m.name,
                                        &m.token_hash.0[..],
                                        &*m.approved_by,
                                        m.approved_at_ms,
                                        m.last_seen_ms,
                                    ),
                                )
                                .map_err(storage)?;
                        }
                    }
                    Write::Forget(name) => {
                        members
                            .remove(&*name.to_ascii_lowercase())
                            .map_err(storage)?;
                    }
                    Write::Ban(ban) => {
                        let key = ban.net.to_string();
                        let kept = bans.get(&*key).map_err(storage)?.map(|v| v.value().0);
                        let place = match kept {
                            Some(place) => place,
                            None => next_ban_place(&mut meta)?,
                        };
                        bans.insert(&*key, row_of(place, ban)).map_err(storage)?;
                    }
                    Write::Unban(net) => {
                        bans.remove(&*net.to_string()).map_err(storage)?;
                    }
                    Write::Prune {
                        room_before_ms,
                        priv_before_ms,
                        members_before_ms,
                        bans_ended_ms,
                        max_entries,
                    } => {
                        let ended: Vec<String> = bans
                            .iter()
                            .map_err(storage)?
                            .filter_map(|r| r.ok())
                            .filter(|(_, v)| {
                                let until = v.value().2;
                                until != 0 && until <= *bans_ended_ms
                            })
                            .map(|(k, _)| k.value().to_owned())
                            .collect();
                        for key in ended {
                            bans.remove(&*key).map_err(storage)?;
                        }
                        let old_privs: Vec<u64> = privs
                            .iter()
                            .map_err(storage)?
                            .map_while(|r| r.ok())
                            .take_while(|(_, t)| t.value() < *priv_before_ms)
                            .map(|(k, _)| k.value())
                            .collect();
                        for seq in old_privs {
                            privs.remove(seq).map_err(storage)?;
                            log.remove(seq).map_err(storage)?;
                            forget_origin(origins.as_mut(), by_origin.as_mut(), seq)?;
                        }
                        let excess = log.len().map_err(storage)?.saturating_sub(*max_entries);
                        let mut old = Vec::new();
                        for (i, row) in log.iter().map_err(storage)?.enumerate() {
                            let (k, v) = row.map_err(storage)?;
                            if (i as u64) < excess || v.value().0 < *room_before_ms {
                                old.push(k.value());
                            } else {
                                break;
                            }
                        }
                        for seq in old {
                            log.remove(seq).map_err(storage)?;
                            privs.remove(seq).map_err(storage)?;
                            forget_origin(origins.as_mut(), by_origin.as_mut(), seq)?;
                        }
                        let gone: Vec<String> = members
                            .iter()
                            .map_err(storage)?
                            .filter_map(|r| r.ok())
                            .filter(|(_, v)| v.value().4 < *members_before_ms)
                            .map(|(k, _)| k.value().to_owned())
                            .collect();
                        for key in gone {
                            members.remove(&*key).map_err(storage)?;
                        }
                    }
                }
            }
            let stored = meta.get("next").map_err(storage)?.map_or(1, |v| v.value());
            if next_seq > stored {
                meta.insert("next", next_seq).map_err(storage)?;
            }
        }
        txn.commit().map_err(storage)
    }

    /// Up to `max` entries with a sequence number above `after`, oldest first, and whether
    /// more follow. `None` for `after` reads from the start.
    pub fn read_after(
        &self,
        after: Option<u64>,
        max: usize,
    ) -> Result<(Vec<Entry>, bool), StoreError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let log = txn.open_table(LOG).map_err(storage)?;
        // A single server's log has no origins: no lookup per entry then.
        let origins = open_origins(&txn)?.filter(|t| t.len().map_or(true, |n| n > 0));
        let start = after.map_or(0, |a| a.saturating_add(1));
        let mut out = Vec::new();
        for row in log.range(start..).map_err(storage)? {
            if out.len() >= max {
                return Ok((out, true));
            }
            let (k, v) = row.map_err(storage)?;
            let mut entry = entry_of(k.value(), v.value())?;
            if let Some(origins) = &origins {
                entry.origin_id = origin_of(origins, entry.seq)?;
            }
            out.push(entry);
        }
        Ok((out, false))
    }

    /// See [`Db::locate`].
    pub fn locate(&self, id: &str, own: Option<u64>) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let origins = open_origins(&txn)?;
        if origins.is_some() {
            let by_origin = txn.open_table(BY_ORIGIN).map_err(storage)?;
            if let Some(seq) = by_origin.get(id).map_err(storage)? {
                return Ok(Some(seq.value()));
            }
        }
        let Some(seq) = own else {
            return Ok(None);
        };
        let log = txn.open_table(LOG).map_err(storage)?;
        if log.get(seq).map_err(storage)?.is_none() {
            return Ok(None);
        }
        // Kept at that number under its own id, not another server's line that took it.
        match &origins {
            Some(origins) if origins.get(seq).map_err(storage)?.is_some() => Ok(None),
            _ => Ok(Some(seq)),
        }
    }

    /// The oldest sequence number in the log, if any.
    pub fn first_seq(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let log = txn.open_table(LOG).map_err(storage)?;
        let first = log.first().map_err(storage)?.map(|(k, _)| k.value());
        Ok(first)
    }
}

/// The origins table for reading, `None` in a file written before it existed (opened read-only
/// before [`FileDb::load`] made it: never in practice, but a read must not fail for it).
fn open_origins(
    txn: &redb::ReadTransaction,
) -> Result<Option<redb::ReadOnlyTable<u64, &'static str>>, StoreError> {
    match txn.open_table(ORIGINS) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(storage(e)),
    }
}

/// The origin's id of the entry at `seq`, if it has one.
fn origin_of(
    origins: &impl ReadableTable<u64, &'static str>,
    seq: u64,
) -> Result<Option<String>, StoreError> {
    Ok(origins
        .get(seq)
        .map_err(storage)?
        .map(|v| v.value().to_owned()))
}

/// Whether a write touches the origins' tables (a line logged with its origin's id, or a
/// prune, which drops the ids of what it drops).
fn needs_origins(w: &Write) -> bool {
    match w {
        Write::Append(entries) => entries.iter().any(|e| e.origin_id.is_some()),
        Write::Prune { .. } => true,
        _ => false,
    }
}

/// Drops the origin's id of the entry at `seq` (pruned), both ways.
fn forget_origin(
    origins: Option<&mut redb::Table<'_, u64, &str>>,
    by_origin: Option<&mut redb::Table<'_, &str, u64>>,
    seq: u64,
) -> Result<(), StoreError> {
    let (Some(origins), Some(by_origin)) = (origins, by_origin) else {
        return Ok(());
    };
    let id = origins
        .remove(seq)
        .map_err(storage)?
        .map(|v| v.value().to_owned());
    if let Some(id) = id {
        by_origin.remove(&*id).map_err(storage)?;
    }
    Ok(())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("a malformed {what} record"))
}

fn entry_of(
    seq: u64,
    (time_ms, kind, from, to, line): (u64, u8, &str, &str, &str),
) -> Result<Entry, StoreError> {
    Ok(Entry {
        seq,
        time_ms,
        kind: Kind::from_u8(kind).ok_or_else(|| corrupt("log"))?,
        from: from.to_owned(),
        to: to.to_owned(),
        line: line.to_owned(),
        origin_id: None,
    })
}

fn ms_of(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn time_of(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// A ban as its row (its key is `ban.net` written out): until 0 is none, an empty reason is
/// none. An end at the epoch itself (never made by a console) is kept as 1 ms after it, so it
/// stays an end.
fn row_of(place: u64, ban: &Ban) -> BanRow<'_> {
    (
        place,
        ms_of(ban.since),
        ban.until.map_or(0, |t| ms_of(t).max(1)),
        &ban.by,
        ban.reason.as_deref().unwrap_or(""),
    )
}

/// The next ban's place in the list, counted in `meta`.
fn next_ban_place(meta: &mut redb::Table<'_, &str, u64>) -> Result<u64, StoreError> {
    let place = meta
        .get("ban_place")
        .map_err(storage)?
        .map_or(0, |v| v.value());
    meta.insert("ban_place", place + 1).map_err(storage)?;
    Ok(place)
}

/// A ban from its row; `None` when its key is no range.
fn ban_of(key: &str, (_, since, until, by, reason): BanRow<'_>) -> Option<Ban> {
    Some(Ban {
        net: key.parse::<IpNet>().ok()?,
        reason: (!reason.is_empty()).then(|| reason.to_owned()),
        by: by.to_owned(),
        since: time_of(since),
        until: (until != 0).then(|| time_of(until)),
    })
}

/// Moves a format 1 file's bans (range and time only) into `bans`, with no reason or end and
/// [`UNKNOWN_BAN_AUTHOR`], placed in the order of their times, and deletes their old table. A
/// record already in `bans` wins.
fn migrate_bans(
    txn: &redb::WriteTransaction,
    bans: &mut redb::Table<'_, &str, BanRow<'_>>,
    meta: &mut redb::Table<'_, &str, u64>,
) -> Result<(), StoreError> {
    let old: Vec<(String, u64)> = {
        let v1 = txn.open_table(BANS_V1).map_err(storage)?;
        let mut rows = Vec::new();
        for row in v1.iter().map_err(storage)? {
            let (k, v) = row.map_err(storage)?;
            rows.push((k.value().to_owned(), v.value()));
        }
        rows
    };
    let mut old = old;
    old.sort_by_key(|(_, since)| *since);
    for (key, since) in old {
        if bans.get(&*key).map_err(storage)?.is_none() {
            let place = next_ban_place(meta)?;
            bans.insert(&*key, (place, since, 0, UNKNOWN_BAN_AUTHOR, ""))
                .map_err(storage)?;
        }
    }
    txn.delete_table(BANS_V1).map_err(storage)?;
    Ok(())
}

fn member_of(
    (name, hash, approved_by, approved_at_ms, last_seen_ms): (&str, &[u8], &str, u64, u64),
) -> Result<MemberRecord, StoreError> {
    Ok(MemberRecord {
        name: name.to_owned(),
        token_hash: TokenHash::from_slice(hash).ok_or_else(|| corrupt("member"))?,
        approved_by: approved_by.to_owned(),
        approved_at_ms,
        last_seen_ms,
    })
}
