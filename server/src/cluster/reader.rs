//! The reader thread: follows the room's log with blocking `XREAD`s on its own connection and
//! hands the other servers' entries to the core, in the log's order, with this server's own
//! messages (`MSG`/`ACT`/`PRIV`), which it delivers only as the log brings them back.
//!
//! It starts from the position of the writer's latest snapshot and resumes from the last id it
//! saw after any failure, so an outage shorter than the cluster timeout loses and repeats
//! nothing. Entries are handed over only while their epoch is still the current one (checked
//! under the same lock the writer holds while it sends `Up`), so the core never sees an entry
//! from before its snapshot.

use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use redis::{Connection, Value};

use super::event::{from_wall_ms, Entry, Event, FromBridge, LogId};
use super::{deliver, ClusterConfig, Shared, READ_COUNT};

/// How long one `XREAD` blocks: also how soon the thread notices a new epoch or a stop.
const BLOCK: Duration = Duration::from_millis(500);
/// Pause before reconnecting after a failure.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

pub(super) struct Reader {
    config: ClusterConfig,
    client: redis::Client,
    shared: Arc<Shared>,
    to_core: SyncSender<FromBridge>,
    waker: Arc<mio::Waker>,
}

impl Reader {
    pub(super) fn new(
        config: ClusterConfig,
        client: redis::Client,
        shared: Arc<Shared>,
        to_core: SyncSender<FromBridge>,
        waker: Arc<mio::Waker>,
    ) -> Reader {
        Reader {
            config,
            client,
            shared,
            to_core,
            waker,
        }
    }

    pub(super) fn run(self) {
        let log = self.config.key("log");
        let mut con: Option<Connection> = None;
        let (mut epoch, mut server, mut last) = (0, String::new(), String::new());
        loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                return;
            }
            {
                let Ok(from) = self.shared.read_from.lock() else {
                    return;
                };
                if from.epoch != epoch {
                    epoch = from.epoch;
                    server.clone_from(&from.server);
                    last.clone_from(&from.id);
                }
            }
            if epoch == 0 {
                std::thread::sleep(BLOCK / 5);
                continue;
            }
            if con.is_none() {
                match self.connect() {
                    Ok(c) => con = Some(c),
                    Err(e) => {
                        log::debug!("cluster reader: cannot connect: {e}");
                        std::thread::sleep(RETRY_PAUSE);
                        continue;
                    }
                }
            }
            let Some(c) = con.as_mut() else { continue };
            let answer: redis::RedisResult<Value> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(500))
                .arg("STREAMS")
                .arg(&log)
                .arg(&last)
                .query(c);
            let value = match answer {
                Ok(v) => v,
                Err(e) => {
                    log::debug!("cluster reader: XREAD failed: {e}");
                    con = None;
                    std::thread::sleep(RETRY_PAUSE);
                    continue;
                }
            };
            let mut entries = Vec::new();
            let mut read_any = false;
            for stream in as_array(&value) {
                let parts = as_array(stream);
                if let Some(list) = parts.get(1) {
                    for (id, entry) in parse_entries(list) {
                        last = id;
                        read_any = true;
                        // This server's own messages come back too: it delivers them in
                        // the log's order, as every server does (one order for the room).
                        if let Some(entry) = entry.filter(|e| {
                            e.origin != server
                                || matches!(e.event, Event::Msg { .. } | Event::Priv { .. })
                        }) {
                            entries.push(entry);
                        }
                    }
                }
            }
            if !read_any {
                continue;
            }
            let last_id = LogId::parse(&last).unwrap_or_default();
            let Ok(from) = self.shared.read_from.lock() else {
                return;
            };
            if from.epoch == epoch
                && !deliver(
                    &self.to_core,
                    &self.waker,
                    FromBridge::Entries {
                        epoch,
                        entries,
                        last: last_id,
                    },
                )
            {
                return;
            }
        }
    }

    fn connect(&self) -> redis::RedisResult<Connection> {
        let limit = self.config.heartbeat();
        let con = self.client.get_connection_with_timeout(limit)?;
        con.set_read_timeout(Some(BLOCK + limit))?;
        con.set_write_timeout(Some(limit))?;
        Ok(con)
    }
}

fn as_array(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) | Value::Set(items) => items,
        _ => &[],
    }
}

fn as_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// A list of stream entries (`[[id, [field, value, ...]], ...]`): each id, with its entry when
/// it decodes.
pub(super) fn parse_entries(list: &Value) -> Vec<(String, Option<Entry>)> {
    as_array(list)
        .iter()
        .filter_map(|item| {
            let parts = as_array(item);
            let id = String::from_utf8(as_bytes(parts.first()?)?.to_vec()).ok()?;
            let fields = parts.get(1).map_or(&[][..], as_array);
            Some((id, parse_fields(fields)))
        })
        .collect()
}

fn parse_fields(fields: &[Value]) -> Option<Entry> {
    let (mut origin, mut kind, mut t, mut a, mut b, mut c) = (None, None, None, None, None, None);
    for pair in fields.chunks_exact(2) {
        let value = as_bytes(&pair[1]);
        match as_bytes(&pair[0])? {
            b"o" => origin = value,
            b"k" => kind = value,
            b"t" => t = value,
            b"a" => a = value,
            b"b" => b = value,
            b"c" => c = value,
            _ => {}
        }
    }
    let ms: u64 = std::str::from_utf8(t?).ok()?.parse().ok()?;
    Some(Entry {
        origin: String::from_utf8(origin?.to_vec()).ok()?,
        wall: from_wall_ms(ms),
        event: Event::decode(kind?, a.unwrap_or(b""), b.unwrap_or(b""), c.unwrap_or(b""))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    #[test]
    fn entries_decode_and_garbage_is_skipped_not_fatal() {
        let good = Value::Array(vec![
            bulk(b"1-0"),
            Value::Array(
                [
                    &b"o"[..],
                    b"s1",
                    b"k",
                    b"M",
                    b"t",
                    b"1000",
                    b"a",
                    b"MSG a - hi\n",
                ]
                .iter()
                .map(|s| bulk(s))
                .collect(),
            ),
        ]);
        let bad = Value::Array(vec![bulk(b"2-0"), Value::Array(vec![bulk(b"k")])]);
        let got = parse_entries(&Value::Array(vec![good, bad, Value::Nil]));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "1-0");
        let entry = got[0].1.as_ref().map(|e| (&e.origin[..], &e.event));
        assert_eq!(
            entry,
            Some((
                "s1",
                &Event::Msg {
                    line: b"MSG a - hi\n".to_vec(),
                    id: String::new(),
                }
            ))
        );
        assert_eq!(got[1], ("2-0".to_owned(), None));
    }
}
