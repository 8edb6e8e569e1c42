//! The session tokens of protocol version 3, kept per server and name in the `tokens` file
//! beside `known_servers` (`$CHAT_CONFIG_DIR`, else `$XDG_CONFIG_HOME/chat`, else
//! `~/.config/chat`). A token is the member's proof of approval: the file is created with mode
//! 0600 in a directory of mode 0700, rewritten whole (a temporary file renamed over it), and
//! its secrets are never shown or logged. One line per record:
//! `SERVER NAME TOKEN LAST-ID` (`-` when no id is known), `#` starts a comment. This module
//! only keeps and reads; when to use a token is the brain's business (`core/brain.rs`).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chat_common::protocol::v3::{is_id, is_token};
use chat_common::protocol::validate_name;

use crate::core::brain::{Effect, SessionToken};
use crate::tls::known;

/// The file's name, in the configuration directory.
pub const FILE_NAME: &str = "tokens";

/// The most records kept (the oldest go first), so the file stays small whatever happens.
pub const MAX_RECORDS: usize = 1000;

/// The file's first line.
const HEADER: &str =
    "# chat-client session tokens: SERVER NAME TOKEN LAST-ID. Secret: keep private.\n";

/// One remembered session. Its `Debug` shows the token's length, never the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The server as the client names it (`127.0.0.1:55555`, `tls://host:55556`).
    pub server: String,
    /// The member's name.
    pub name: String,
    /// The secret.
    pub token: String,
    /// The id of the last message this client got, if any.
    pub last_id: Option<String>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("server", &self.server)
            .field("name", &self.name)
            .field("token", &format_args!("<{} bytes>", self.token.len()))
            .field("last_id", &self.last_id)
            .finish()
    }
}

impl Record {
    fn is(&self, server: &str, name: &str) -> bool {
        self.server == server && self.name.eq_ignore_ascii_case(name)
    }
}

/// Where the tokens file lives, or `None` when no configuration directory is known.
pub fn default_path() -> Option<PathBuf> {
    known::default_path().map(|p| p.with_file_name(FILE_NAME))
}

/// Parses the file's text; lines that are not well-formed records are skipped.
pub fn parse(text: &str) -> Vec<Record> {
    let mut records = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let [server, name, token, last] = fields.as_slice() else {
            continue;
        };
        if server.is_empty() || validate_name(name).is_err() || !is_token(token) {
            continue;
        }
        let last_id = match *last {
            "-" => None,
            id if is_id(id) => Some(id.to_owned()),
            _ => continue,
        };
        records.push(Record {
            server: (*server).to_owned(),
            name: (*name).to_owned(),
            token: (*token).to_owned(),
            last_id,
        });
    }
    let excess = records.len().saturating_sub(MAX_RECORDS);
    records.drain(..excess);
    records
}

/// Reads the file; a missing file has no records.
pub fn load(path: &Path) -> io::Result<Vec<Record>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(parse(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The records of `server`.
pub fn of_server(records: &[Record], server: &str) -> Vec<Record> {
    records
        .iter()
        .filter(|r| r.server == server)
        .cloned()
        .collect()
}

/// Writes `records` as the whole file: a temporary file (0600) renamed over it, in a directory
/// created with mode 0700 when missing.
pub fn save(path: &Path, records: &[Record]) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
    }
    let mut text = String::from(HEADER);
    for r in records {
        let last = r.last_id.as_deref().unwrap_or("-");
        text.push_str(&format!("{} {} {} {last}\n", r.server, r.name, r.token));
    }
    let temp = path.with_file_name(format!(".{FILE_NAME}.{}", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&temp, path)) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    Ok(())
}

/// Keeps `token` (and `last_id`) for `name` at `server`, replacing an older record.
pub fn put(
    path: &Path,
    server: &str,
    name: &str,
    token: &str,
    last_id: Option<&str>,
) -> io::Result<()> {
    let mut records = load(path)?;
    records.retain(|r| !r.is(server, name));
    records.push(Record {
        server: server.to_owned(),
        name: name.to_owned(),
        token: token.to_owned(),
        last_id: last_id.map(str::to_owned),
    });
    let excess = records.len().saturating_sub(MAX_RECORDS);
    records.drain(..excess);
    save(path, &records)
}

/// Drops the token of `name` at `server`, or every token of `server` when `name` is `None`;
/// returns how many were dropped. Nothing is written when nothing is dropped.
pub fn forget(path: &Path, server: &str, name: Option<&str>) -> io::Result<usize> {
    let mut records = load(path)?;
    let before = records.len();
    records.retain(|r| match name {
        Some(name) => !r.is(server, name),
        None => r.server != server,
    });
    let dropped = before - records.len();
    if dropped > 0 {
        save(path, &records)?;
    }
    Ok(dropped)
}

/// A view's link between the brain's tokens and the file: loads this server's tokens, keeps
/// and drops them as the brain says. A failure to read or write the file never ends a session:
/// it is returned, for the view to show.
#[derive(Debug, Clone)]
pub struct Keeper {
    path: Option<PathBuf>,
    server: String,
}

impl Keeper {
    /// Tokens of `server` in the file at `path` (none when `path` is `None`).
    pub fn new(path: Option<PathBuf>, server: &str) -> Keeper {
        Keeper {
            path,
            server: server.to_owned(),
        }
    }

    /// The tokens kept for this server, for the brain's settings.
    pub fn load(&self) -> Result<Vec<SessionToken>, String> {
        let Some(path) = &self.path else {
            return Ok(Vec::new());
        };
        let records = load(path).map_err(|e| self.failed("read", path, &e))?;
        Ok(of_server(&records, &self.server)
            .into_iter()
            .map(|r| SessionToken {
                name: r.name,
                token: r.token,
                last_id: r.last_id,
            })
            .collect())
    }

    /// Keeps `session` for this server.
    pub fn keep(&self, session: &SessionToken) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        put(
            path,
            &self.server,
            &session.name,
            &session.token,
            session.last_id.as_deref(),
        )
        .map_err(|e| self.failed("write", path, &e))
    }

    /// Drops the token of `name` (every name when `None`) for this server.
    pub fn forget(&self, name: Option<&str>) -> Result<usize, String> {
        let Some(path) = &self.path else {
            return Ok(0);
        };
        forget(path, &self.server, name).map_err(|e| self.failed("write", path, &e))
    }

    /// What a view does at start: `--forget` (`forget`) drops this server's token for `name`
    /// (or every name), then the tokens left are loaded. Returns them and what to tell the user.
    pub fn start(&self, forget: bool, name: Option<&str>) -> (Vec<SessionToken>, Vec<String>) {
        let mut notes = Vec::new();
        if forget {
            match self.forget(name) {
                Ok(n) => notes.push(format!(
                    "forgot {n} session token(s) for {}: joining as a new member",
                    self.server
                )),
                Err(why) => notes.push(why),
            }
        }
        match self.load() {
            Ok(tokens) => (tokens, notes),
            Err(why) => {
                notes.push(why);
                (Vec::new(), notes)
            }
        }
    }

    /// Carries out a token effect of the brain; `Err` says why it failed, for the user.
    pub fn apply(&self, effect: &Effect) -> Result<(), String> {
        match effect {
            Effect::SaveToken(session) => self.keep(session),
            Effect::ForgetToken { name } => self.forget(Some(name)).map(drop),
            _ => Ok(()),
        }
    }

    fn failed(&self, what: &str, path: &Path, e: &io::Error) -> String {
        format!(
            "cannot {what} the session tokens in {}: {e}",
            path.display()
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TOKEN: &str = "abcdefghijklmnopqrstuvwxyz012345";
    const OTHER: &str = "ZYXWVUTSRQPONMLKJIHGFEDCBA_-9876";

    #[test]
    fn a_records_debug_shows_the_tokens_length_never_the_token() {
        let record = Record {
            server: "127.0.0.1:1".to_owned(),
            name: "alice".to_owned(),
            token: TOKEN.to_owned(),
            last_id: None,
        };
        let shown = format!("{record:?} {record:#?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(
            shown.contains("<32 bytes>") && shown.contains("alice"),
            "{shown}"
        );
    }

    #[test]
    fn tokens_are_kept_per_server_and_name_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf").join(FILE_NAME);
        put(&path, "127.0.0.1:1", "alice", TOKEN, None).unwrap();
        put(&path, "127.0.0.1:1", "bob", OTHER, Some("e1-5")).unwrap();
        put(&path, "127.0.0.1:2", "alice", OTHER, None).unwrap();
        // A new token for the same name (any case) replaces the old one.
        put(&path, "127.0.0.1:1", "ALICE", OTHER, Some("e1-9")).unwrap();
        let all = load(&path).unwrap();
        assert_eq!(all.len(), 3);
        let here = of_server(&all, "127.0.0.1:1");
        assert_eq!(here.len(), 2);
        let alice = here.iter().find(|r| r.name == "ALICE").unwrap();
        assert_eq!(
            (alice.token.as_str(), alice.last_id.as_deref()),
            (OTHER, Some("e1-9"))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        assert_eq!(forget(&path, "127.0.0.1:1", Some("alice")).unwrap(), 1);
        assert_eq!(forget(&path, "127.0.0.1:1", Some("alice")).unwrap(), 0);
        assert_eq!(forget(&path, "127.0.0.1:2", None).unwrap(), 1);
        let left = load(&path).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].name, "bob");
    }

    #[test]
    fn malformed_lines_are_skipped_and_a_missing_file_is_empty() {
        let text = format!(
            "# comment\nsrv alice {TOKEN} -\nsrv bad! {TOKEN} -\nsrv bob short -\n\
             srv carol {TOKEN} bad.id\nsrv dave {TOKEN}\nsrv erin {TOKEN} e-1 extra\n"
        );
        let records = parse(&text);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].name, "alice");
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&dir.path().join("none")).unwrap().is_empty());
    }

    #[test]
    fn the_file_is_bounded() {
        let text: String = (0..MAX_RECORDS + 5)
            .map(|i| format!("srv n{i} {TOKEN} -\n"))
            .collect();
        let records = parse(&text);
        assert_eq!(records.len(), MAX_RECORDS);
        assert_eq!(records[0].name, "n5");
    }
}
