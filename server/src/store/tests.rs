//! The store against a real directory: what is kept survives a reopen, ids are never reused,
//! a second server is refused, a corrupt file is left alone, pruning keeps what resumes need.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::token::Token;

const WAKER: mio::Token = mio::Token(7);

struct Dir(PathBuf);

impl Dir {
    fn new(what: &str) -> Dir {
        let p = std::env::temp_dir().join(format!(
            "chat-store-{what}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(dir: &Dir) -> StoreConfig {
    StoreConfig {
        dir: DataDir::Path(dir.0.clone()),
        retain: Duration::from_secs(7 * 86400),
        keep_privates: Duration::from_secs(60),
        remember: Duration::from_secs(30 * 86400),
        history: 50,
    }
}

/// A started store and the poll its waker wakes.
fn start(config: StoreConfig) -> (Store, Loaded, mio::Poll) {
    let poll = mio::Poll::new().unwrap();
    let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), WAKER).unwrap());
    let mut opened = open(config).unwrap();
    let loaded = std::mem::take(&mut opened.loaded);
    (opened.start(waker).unwrap(), loaded, poll)
}

/// The next answer, waiting on the poll (as the reactor does) at most 10 s.
#[track_caller]
fn answer(store: &Store, poll: &mut mio::Poll) -> Answer {
    let mut events = mio::Events::with_capacity(4);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(a) = store.try_recv() {
            return a;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "no answer from the store in 10 s");
        poll.poll(&mut events, Some(left)).unwrap();
    }
}

fn entry(store: &mut Store, kind: Kind, from: &str, to: &str, text: &str) -> Entry {
    let id = store.next_id();
    let line = match kind {
        Kind::Priv => format!("PRIV {from} {to} - {text}"),
        Kind::Act => format!("ACT {from} {text}"),
        Kind::Msg => format!("MSG {from} - {text}"),
        Kind::Gap => String::new(),
    };
    Entry {
        seq: id.seq,
        time_ms: 1_000,
        kind,
        from: from.into(),
        to: to.into(),
        line,
        origin_id: None,
    }
}

fn member(name: &str) -> MemberRecord {
    MemberRecord {
        name: name.into(),
        token_hash: Token::generate().unwrap().hash(),
        approved_by: "console 0".into(),
        approved_at_ms: 5,
        last_seen_ms: u64::MAX / 2,
    }
}

#[test]
fn what_was_durable_is_there_after_a_reopen_and_no_id_is_reused() {
    let dir = Dir::new("reopen");
    let (mut store, loaded, mut poll) = start(config(&dir));
    assert_eq!(loaded.next_seq, 1);
    let epoch = store.epoch();
    let a = entry(&mut store, Kind::Msg, "al", "", "one");
    let b = entry(&mut store, Kind::Act, "al", "", "waves");
    let p = entry(&mut store, Kind::Priv, "al", "bo", "psst");
    store.append(a.clone());
    store.append(b.clone());
    store.append(p.clone());
    store.write(Write::Member(member("Alice")));
    let kept = ban("10.0.0.0/8", Some("flooding"), Some(3_600));
    store.write(Write::Ban(kept.clone()));
    store.write(Write::Ban(ban("10.0.0.9", None, None)));
    store.write(Write::Ban(ban("192.0.2.1", None, None)));
    store.write(Write::Unban("192.0.2.1".parse().unwrap()));
    // Made last in the same millisecond, first in key order: listed last all the same.
    store.write(Write::Ban(ban("1.1.1.1", None, None)));
    let batch = store.flush_round().unwrap().unwrap();
    assert!(matches!(answer(&store, &mut poll), Answer::Durable { batch: b } if b == batch));
    // An id given but never written (its message was refused) is not reused either.
    let _unused = store.next_id();
    store.write(Write::Seen {
        name: "alice".into(),
        at_ms: u64::MAX / 2 + 1,
    });
    let batch = store.flush_round().unwrap().unwrap();
    assert!(matches!(answer(&store, &mut poll), Answer::Durable { batch: b } if b == batch));
    assert!(store.stats().flushes.load(Ordering::Relaxed) >= 1);
    assert_eq!(store.durable_count(), 3);
    drop(store);

    let (mut store, loaded, mut poll) = start(config(&dir));
    assert_eq!(store.epoch(), epoch, "the epoch is the directory's");
    assert_eq!(loaded.next_seq, 5, "{loaded:?}");
    assert_eq!(store.next_id().seq, 5);
    assert_eq!(loaded.recent, vec![a, b], "history holds no privates");
    assert_eq!(loaded.members.len(), 1);
    assert_eq!(loaded.members[0].name, "Alice");
    assert_eq!(loaded.members[0].last_seen_ms, u64::MAX / 2 + 1);
    assert_eq!(
        loaded.bans,
        vec![
            kept,
            ban("10.0.0.9", None, None),
            ban("1.1.1.1", None, None)
        ],
        "whole, and in the order they were made"
    );
    // A ban replacing one of its range keeps that one's place.
    store.write(Write::Ban(ban("10.0.0.0/8", Some("again"), None)));
    let batch = store.flush_round().unwrap().unwrap();
    assert!(matches!(answer(&store, &mut poll), Answer::Durable { batch: b } if b == batch));
    drop(store);
    let (_store, loaded, _poll) = start(config(&dir));
    let order: Vec<String> = loaded.bans.iter().map(|b| b.net.to_string()).collect();
    assert_eq!(order, ["10.0.0.0/8", "10.0.0.9", "1.1.1.1"]);
    assert_eq!(loaded.bans[0].reason.as_deref(), Some("again"));
}

/// A ban made at `BAN_T0`, lasting `secs` when given.
fn ban(net: &str, reason: Option<&str>, secs: Option<u64>) -> crate::chat::bans::Ban {
    crate::chat::bans::Ban {
        net: net.parse().unwrap(),
        reason: reason.map(str::to_owned),
        by: "control:3".into(),
        since: BAN_T0,
        until: secs.map(|s| BAN_T0 + Duration::from_secs(s)),
    }
}

const BAN_T0: std::time::SystemTime = std::time::SystemTime::UNIX_EPOCH;

#[test]
fn ended_bans_are_pruned_and_lasting_ones_kept() {
    let dir = Dir::new("ban-prune");
    let (mut store, _, mut poll) = start(config(&dir));
    store.write(Write::Ban(ban("10.0.0.1", None, Some(60))));
    store.write(Write::Ban(ban("10.0.0.2", Some("spam"), Some(120))));
    store.write(Write::Ban(ban("10.0.0.3", None, None)));
    store.prune(60_000);
    let batch = store.flush_round().unwrap().unwrap();
    assert!(matches!(answer(&store, &mut poll), Answer::Durable { batch: b } if b == batch));
    drop(store);
    let (_store, loaded, _poll) = start(config(&dir));
    let mut left: Vec<String> = loaded.bans.iter().map(|b| b.net.to_string()).collect();
    left.sort();
    assert_eq!(
        left,
        ["10.0.0.2", "10.0.0.3"],
        "the ban that ended at 60 s is gone"
    );
}

/// A data directory written by the previous format (1: bans kept as range -> time, no
/// `format` key), laid out as main's server wrote it, opens: its bans come back with no
/// reason or end, its log and ids go on, and the file is moved to the current format.
#[test]
fn a_format_1_directory_opens_and_keeps_its_bans() {
    use redb::TableDefinition;
    let dir = Dir::new("format1");
    std::fs::create_dir_all(&dir.0).unwrap();
    {
        let log: TableDefinition<'_, u64, (u64, u8, &str, &str, &str)> =
            TableDefinition::new("log");
        let bans: TableDefinition<'_, &str, u64> = TableDefinition::new("bans");
        let meta: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
        let db = redb::Database::create(dir.0.join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut m = txn.open_table(meta).unwrap();
            m.insert("epoch", 77).unwrap();
            m.insert("next", 4).unwrap();
            let mut l = txn.open_table(log).unwrap();
            l.insert(3, (1_000, 0, "al", "", "MSG al - old")).unwrap();
            let mut b = txn.open_table(bans).unwrap();
            b.insert("10.0.0.0/8", 5_000).unwrap();
            b.insert("2001:db8::7", 6_000).unwrap();
        }
        txn.commit().unwrap();
    }
    let (mut store, loaded, _poll) = start(config(&dir));
    assert_eq!(store.epoch(), 77);
    assert_eq!(store.next_id().seq, 4);
    assert_eq!(loaded.recent.len(), 1);
    let mut bans = loaded.bans;
    bans.sort_by_key(|b| b.net);
    let old = |net: &str, ms: u64| crate::chat::bans::Ban {
        net: net.parse().unwrap(),
        reason: None,
        by: UNKNOWN_BAN_AUTHOR.into(),
        since: BAN_T0 + Duration::from_millis(ms),
        until: None,
    };
    assert_eq!(
        bans,
        vec![old("10.0.0.0/8", 5_000), old("2001:db8::7", 6_000)]
    );
    drop(store);
    // Moved on: the current format, the old table gone, the bans still there.
    let db = redb::Database::create(dir.0.join(DB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let meta: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
    let m = txn.open_table(meta).unwrap();
    assert_eq!(m.get("format").unwrap().unwrap().value(), FORMAT);
    let bans: TableDefinition<'_, &str, u64> = TableDefinition::new("bans");
    assert!(txn.open_table(bans).is_err(), "the format 1 table is gone");
    drop((m, txn, db));
    let (_store, loaded, _poll) = start(config(&dir));
    assert_eq!(loaded.bans.len(), 2);
}

#[test]
fn a_directory_from_a_newer_format_is_refused_untouched() {
    use redb::TableDefinition;
    let dir = Dir::new("format9");
    std::fs::create_dir_all(&dir.0).unwrap();
    {
        let meta: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
        let db = redb::Database::create(dir.0.join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(meta)
            .unwrap()
            .insert("format", FORMAT + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    match open(config(&dir)) {
        Err(StoreError::Corrupt(why)) => assert!(why.contains("newer server"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_second_server_on_the_directory_is_refused_with_the_holders_name() {
    let dir = Dir::new("lock");
    let (_store, _, _poll) = start(config(&dir));
    match open(config(&dir)) {
        Err(StoreError::Lock(LockError::Held { holder, .. })) => {
            assert!(holder.contains(&std::process::id().to_string()), "{holder}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_corrupt_file_is_refused_and_left_untouched() {
    let dir = Dir::new("corrupt");
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join(DB_FILE);
    let junk: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &junk).unwrap();
    let err = open(config(&dir)).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt(_) | StoreError::Disk(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains(DB_FILE), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), junk, "nothing was rewritten");
}

#[test]
fn reads_page_through_the_log_and_pruning_drops_privates_first() {
    let dir = Dir::new("prune");
    let (mut store, _, mut poll) = start(config(&dir));
    let mut all = Vec::new();
    for i in 0..10 {
        let kind = if i % 3 == 0 { Kind::Priv } else { Kind::Msg };
        let e = entry(&mut store, kind, "al", "bo", &i.to_string());
        all.push(e.clone());
        store.append(e);
    }
    store.flush_round().unwrap().unwrap();
    assert!(matches!(answer(&store, &mut poll), Answer::Durable { .. }));
    let req = store.read(Some(3), None, 4).unwrap();
    match answer(&store, &mut poll) {
        Answer::Page {
            request,
            entries,
            more,
            first_seq,
            missing,
        } => {
            assert!(!missing);
            assert_eq!(request, req);
            assert_eq!(entries, all[3..7].to_vec());
            assert!(more);
            assert_eq!(first_seq, Some(1));
        }
        other => panic!("{other:?}"),
    }
    // Privates older than the window go; room messages stay within --retain.
    store.prune(1_000 + 61_000);
    store.flush_round().unwrap().unwrap();
    assert!(matches!(answer(&store, &mut poll), Answer::Durable { .. }));
    store.read(None, None, 100).unwrap();
    match answer(&store, &mut poll) {
        Answer::Page { entries, more, .. } => {
            let want: Vec<Entry> = all.into_iter().filter(|e| e.kind != Kind::Priv).collect();
            assert_eq!(entries, want);
            assert!(!more);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn many_rounds_share_flushes_when_the_disk_is_busy() {
    let dir = Dir::new("batch");
    let (mut store, _, mut poll) = start(config(&dir));
    let rounds = 200;
    for i in 0..rounds {
        let e = entry(&mut store, Kind::Msg, "al", "", &i.to_string());
        store.append(e);
        store.flush_round().unwrap().unwrap();
    }
    let mut durable = 0;
    while durable < rounds {
        match answer(&store, &mut poll) {
            Answer::Durable { .. } => durable += 1,
            other => panic!("{other:?}"),
        }
    }
    let flushes = store.stats().flushes.load(Ordering::Relaxed);
    assert!(flushes <= rounds, "{flushes}");
    assert_eq!(store.durable_count(), rounds);
}

#[test]
fn in_memory_stores_work_and_leave_no_file() {
    let mut c = config(&Dir::new("unused"));
    c.dir = DataDir::Memory;
    let (mut store, loaded, mut poll) = start(c);
    assert_eq!(loaded.next_seq, 1);
    let e = entry(&mut store, Kind::Msg, "al", "", "x");
    store.append(e);
    store.flush_round().unwrap().unwrap();
    // Nothing waits for an in-memory batch: the first answer is the page read after it,
    // holding the entry (requests are taken in order).
    store.read(None, None, 10).unwrap();
    match answer(&store, &mut poll) {
        Answer::Page { entries, .. } => assert_eq!(entries.len(), 1),
        other => panic!("expected the page, got {other:?}"),
    }
}

#[test]
fn the_default_directory_follows_xdg_then_home() {
    assert_eq!(DataDir::parse("none"), DataDir::Memory);
    assert_eq!(DataDir::parse("/x"), DataDir::Path("/x".into()));
    // Not asserting on the process's own environment beyond its shape.
    match DataDir::default_dir() {
        DataDir::Path(p) => assert!(p.ends_with("chat-server"), "{}", p.display()),
        DataDir::Memory => {}
    }
}

/// Under `--cluster` every server logs every server's lines at its own numbers, with their
/// origin's ids: a resume finds its last id wherever it is kept, reads what follows with the
/// origins' ids, and is told when the id is not kept (never written here, or pruned). A
/// reserved id is never given again after a reopen. On disk and in memory alike.
#[test]
fn origin_ids_are_found_read_back_pruned_and_reserved_ids_never_reused() {
    let dir = Dir::new("origins");
    for config in [
        config(&dir),
        StoreConfig {
            dir: DataDir::Memory,
            ..config(&dir)
        },
    ] {
        let (mut store, _, mut poll) = start(config.clone());
        let epoch = store.epoch();
        let mut logged = Vec::new();
        for (i, origin) in ["0000000a-7", "0000000b-3", "0000000a-8"]
            .iter()
            .enumerate()
        {
            let mut e = entry(&mut store, Kind::Msg, "al", "", &i.to_string());
            e.time_ms = 1_000 + i as u64;
            e.origin_id = Some((*origin).to_owned());
            logged.push(e.clone());
            store.append(e);
        }
        // An own line of this server: its id reserved (sent to the room's log), logged later.
        let reserved = store.next_id();
        store.write(Write::Reserve(reserved.seq + 1));
        store.flush_round().unwrap();
        if config.dir != DataDir::Memory {
            assert!(matches!(answer(&store, &mut poll), Answer::Durable { .. }));
        }
        let page = |store: &mut Store, poll: &mut mio::Poll, find: &str| {
            store.read(None, Some(find), 10).unwrap();
            match answer(store, poll) {
                Answer::Page {
                    entries, missing, ..
                } => (entries, missing),
                other => panic!("{other:?}"),
            }
        };
        let (entries, missing) = page(&mut store, &mut poll, "0000000b-3");
        assert!(!missing);
        assert_eq!(
            entries,
            logged[2..].to_vec(),
            "after it, with the origin's id"
        );
        let (entries, missing) = page(&mut store, &mut poll, "0000000b-4");
        assert!(missing, "never logged here");
        assert_eq!(entries, logged, "so from the oldest kept");
        // Pruned: its id goes with it.
        store.write(Write::Prune {
            room_before_ms: 1_001,
            priv_before_ms: 0,
            members_before_ms: 0,
            bans_ended_ms: 0,
            max_entries: 100,
        });
        store.flush_round().unwrap();
        if config.dir != DataDir::Memory {
            assert!(matches!(answer(&store, &mut poll), Answer::Durable { .. }));
        }
        let (entries, missing) = page(&mut store, &mut poll, "0000000a-7");
        assert!(missing, "pruned");
        assert_eq!(entries, logged[1..].to_vec());
        // An id of this log's own epoch is found at its number only when it was logged there
        // under its own id (a single server's line), not where another server's line is kept.
        let own = MsgId {
            epoch,
            seq: logged[1].seq,
        }
        .to_string();
        store.read(Some(logged[1].seq), Some(&own), 10).unwrap();
        assert!(matches!(
            answer(&store, &mut poll),
            Answer::Page { missing: true, .. }
        ));
        if config.dir == DataDir::Memory {
            continue;
        }
        drop(store);
        let (_, loaded, _) = start(config);
        assert_eq!(
            loaded.next_seq,
            reserved.seq + 1,
            "the reserved id is never given again"
        );
        assert_eq!(
            loaded.recent,
            logged[1..].to_vec(),
            "with their origin's ids"
        );
    }
}

/// In memory, privates past their bound are dropped: a resume from an id that is still kept
/// but was followed by a dropped private reads on from it and is told something is missing.
#[test]
fn in_memory_a_found_id_followed_by_a_dropped_private_reads_as_missing() {
    let dir = Dir::new("mem-found-gap");
    let (mut store, _, mut poll) = start(StoreConfig {
        dir: DataDir::Memory,
        ..config(&dir)
    });
    let mut room = entry(&mut store, Kind::Msg, "al", "", "x");
    room.origin_id = Some("0000000a-1".into());
    store.append(room);
    for i in 0..=memory::MAX_PRIVATES_IN_MEMORY {
        let mut p = entry(&mut store, Kind::Priv, "al", "bo", &i.to_string());
        p.origin_id = Some(format!("0000000b-{i}"));
        store.append(p);
    }
    store.flush_round().unwrap();
    store.write(Write::Prune {
        room_before_ms: 0,
        priv_before_ms: 0,
        members_before_ms: 0,
        bans_ended_ms: 0,
        max_entries: 100,
    });
    store.flush_round().unwrap();
    store.read(None, Some("0000000a-1"), 10).unwrap();
    match answer(&store, &mut poll) {
        Answer::Page {
            entries, missing, ..
        } => {
            assert!(missing, "the oldest private after it is gone");
            assert_eq!(entries[0].origin_id.as_deref(), Some("0000000b-1"));
        }
        other => panic!("{other:?}"),
    }
}
