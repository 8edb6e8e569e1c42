//! Trust on first use: the `known_servers` file and certificate fingerprints. A fingerprint is
//! `SHA256:` and the 32 bytes of the SHA-256 of the certificate's DER in lowercase hex pairs
//! joined by `:` (what `openssl x509 -noout -fingerprint -sha256` prints, lowercased).
//!
//! # The file
//! One server a line, `HOST:PORT SHA256:…` (an IPv6 host in brackets), as the client appends
//! them; `#` starts a comment line and blank lines are allowed. A line that is neither is an
//! error naming the file and line, never skipped in silence: a typo must not turn a pinned server
//! into an unknown one. The directory is created with mode 0700 and the file with 0600.
//! This module reads and appends the file; it never asks anyone anything.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::addr::parse_server_key;

/// Overrides the configuration directory (tests, and people who keep it elsewhere).
pub const CONFIG_DIR_ENV: &str = "CHAT_CONFIG_DIR";

/// The file name under the configuration directory.
pub const KNOWN_SERVERS_FILE: &str = "known_servers";

/// The prefix of every fingerprint.
const PREFIX: &str = "SHA256:";

/// The first lines of a new file.
const HEADER: &str = "# chat-client known servers: HOST:PORT SHA256:fingerprint, one a line.\n\
                      # Remove a line to forget a server; its next connection asks again.\n";

/// The SHA-256 fingerprint of a DER certificate, as shown to people and stored in the file.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = String::with_capacity(PREFIX.len() + 3 * digest.as_ref().len());
    out.push_str(PREFIX);
    for (i, byte) in digest.as_ref().iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Normalises a stored fingerprint (either case of hex); `None` if it is not one.
fn parse_fingerprint(s: &str) -> Option<String> {
    let hex = s.strip_prefix(PREFIX)?;
    let pairs: Vec<&str> = hex.split(':').collect();
    let well_formed = pairs.len() == 32
        && pairs
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    well_formed.then(|| format!("{PREFIX}{}", hex.to_ascii_lowercase()))
}

/// Where `known_servers` lives: `$CHAT_CONFIG_DIR`, else `$XDG_CONFIG_HOME/chat`, else
/// `$HOME/.config/chat`. `None` when none of them is set (the caller cannot remember servers).
pub fn default_path() -> Option<PathBuf> {
    path_from(
        std::env::var_os(CONFIG_DIR_ENV),
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
}

/// [`default_path`] as a function of the three variables. Empty or relative values are
/// ignored, as the XDG specification says for `XDG_CONFIG_HOME`.
fn path_from(
    config_dir: Option<OsString>,
    xdg: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let absolute = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    let dir = absolute(config_dir)
        .or_else(|| absolute(xdg).map(|p| p.join("chat")))
        .or_else(|| absolute(home).map(|p| p.join(".config").join("chat")))?;
    Some(dir.join(KNOWN_SERVERS_FILE))
}

/// A `known_servers` file that cannot be read, parsed or written.
#[derive(Debug)]
pub struct KnownServersError {
    /// The file.
    pub path: PathBuf,
    /// The 1-based line at fault, for a malformed line.
    pub line: Option<usize>,
    /// What is wrong, in words.
    pub reason: String,
}

impl fmt::Display for KnownServersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.reason),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}

impl std::error::Error for KnownServersError {}

/// One remembered server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `HOST:PORT`, normalised as [`super::Target::server`] writes it.
    pub server: String,
    /// The fingerprint, lowercase.
    pub fingerprint: String,
    /// Its 1-based line in the file.
    pub line: usize,
}

/// What the file says about a server and a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The server is remembered with this fingerprint.
    Match,
    /// The server is not in the file.
    Unknown,
    /// The server is remembered with another fingerprint: this entry (the first for it).
    Changed(Entry),
}

/// Parses the text of a `known_servers` file; `path` is only for errors.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Entry>, KnownServersError> {
    let mut entries = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let bad = |reason: String| KnownServersError {
            path: path.to_owned(),
            line: Some(line),
            reason,
        };
        let fields: Vec<&str> = content.split_whitespace().collect();
        let [server, fp] = fields[..] else {
            return Err(bad(format!(
                "expected \"HOST:PORT SHA256:FINGERPRINT\", found {content:?}"
            )));
        };
        let server =
            parse_server_key(server).map_err(|e| bad(format!("bad server address: {e}")))?;
        let fingerprint = parse_fingerprint(fp).ok_or_else(|| {
            bad(format!(
                "bad fingerprint {fp:?}: expected SHA256: and 32 hex pairs joined by ':'"
            ))
        })?;
        entries.push(Entry {
            server,
            fingerprint,
            line,
        });
    }
    Ok(entries)
}

/// Reads and parses the file; a missing file is an empty one.
pub fn load(path: &Path) -> Result<Vec<Entry>, KnownServersError> {
    match fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(KnownServersError {
            path: path.to_owned(),
            line: None,
            reason: format!("cannot read: {e}"),
        }),
    }
}

/// Looks `server` (`HOST:PORT`) up. Any entry with this fingerprint is a match (a server may be
/// listed twice while its certificate is replaced); otherwise the first entry for it is reported.
pub fn lookup(entries: &[Entry], server: &str, fingerprint: &str) -> Lookup {
    let mut first = None;
    for entry in entries.iter().filter(|e| e.server == server) {
        if entry.fingerprint.eq_ignore_ascii_case(fingerprint) {
            return Lookup::Match;
        }
        first.get_or_insert(entry);
    }
    match first {
        Some(entry) => Lookup::Changed(entry.clone()),
        None => Lookup::Unknown,
    }
}

/// Appends `server fingerprint` to the file, creating its directory (0700) and the file (0600,
/// with a comment header) when missing. Existing modes are left as they are.
pub fn append(path: &Path, server: &str, fingerprint: &str) -> Result<(), KnownServersError> {
    let fail = |what: &str, e: io::Error| KnownServersError {
        path: path.to_owned(),
        line: None,
        reason: format!("cannot {what}: {e}"),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|e| fail("create its directory", e))?;
    }
    let mut options = fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| fail("open", e))?;
    let existing = fs::read(path).map_err(|e| fail("read", e))?;
    let mut text = String::new();
    if existing.is_empty() {
        text.push_str(HEADER);
    } else if !existing.ends_with(b"\n") {
        text.push('\n');
    }
    text.push_str(&format!("{server} {fingerprint}\n"));
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| fail("write", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP_A: &str = "SHA256:00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:\
                        10:11:12:13:14:15:16:17:18:19:1a:1b:1c:1d:1e:1f";

    fn fp_b() -> String {
        FP_A.replace(":1f", ":ff")
    }

    #[test]
    fn fingerprint_is_sha256_in_hex_pairs() {
        // SHA-256 of the empty string, a well-known value.
        assert_eq!(
            fingerprint(b""),
            "SHA256:e3:b0:c4:42:98:fc:1c:14:9a:fb:f4:c8:99:6f:b9:24:\
             27:ae:41:e4:64:9b:93:4c:a4:95:99:1b:78:52:b8:55"
        );
        assert_eq!(
            parse_fingerprint(&fingerprint(b"x")),
            Some(fingerprint(b"x"))
        );
    }

    #[test]
    fn comments_blank_lines_and_either_case() {
        let text = format!(
            "# header\n\n   \n  # indented comment\nExample.org:1 {}\n[::1]:2\t{FP_A}\n",
            FP_A.to_ascii_uppercase()
        );
        let entries = parse(Path::new("k"), &text).expect("valid file");
        assert_eq!(
            entries,
            vec![
                Entry {
                    server: "example.org:1".into(),
                    fingerprint: FP_A.into(),
                    line: 5
                },
                Entry {
                    server: "[::1]:2".into(),
                    fingerprint: FP_A.into(),
                    line: 6
                },
            ]
        );
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_the_line() {
        let cases = [
            ("# ok\nexample.org:1\n", 2),
            (&format!("example.org {FP_A}\n") as &str, 1),
            ("\n\nexample.org:1 SHA256:zz\n", 3),
            (&format!("example.org:1 {FP_A} extra\n"), 1),
            (&format!("example.org:1 {}\n", &FP_A[..FP_A.len() - 3]), 1),
            (&format!("::1:5 {FP_A}\n"), 1),
        ];
        for (text, line) in cases {
            let err = parse(Path::new("/x/known_servers"), text).expect_err(text);
            assert_eq!(err.line, Some(line), "{text:?}");
            assert!(
                err.to_string()
                    .starts_with(&format!("/x/known_servers:{line}: ")),
                "{err}"
            );
        }
    }

    #[test]
    fn lookup_matches_reports_unknown_and_changed() {
        let text = format!("a:1 {FP_A}\na:1 {}\nb:2 {FP_A}\n", fp_b());
        let entries = parse(Path::new("k"), &text).expect("valid");
        assert_eq!(lookup(&entries, "a:1", FP_A), Lookup::Match);
        assert_eq!(lookup(&entries, "a:1", &fp_b()), Lookup::Match);
        assert_eq!(lookup(&entries, "c:3", FP_A), Lookup::Unknown);
        assert_eq!(lookup(&entries, "a:2", FP_A), Lookup::Unknown);
        match lookup(&entries, "b:2", &fp_b()) {
            Lookup::Changed(e) => assert_eq!((e.line, e.fingerprint), (3, FP_A.to_owned())),
            other => panic!("expected Changed, got {other:?}"),
        }
    }

    #[test]
    fn append_creates_private_directory_and_file_and_round_trips() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp
            .path()
            .join("conf")
            .join("chat")
            .join(KNOWN_SERVERS_FILE);
        assert_eq!(load(&path).expect("missing is empty"), vec![]);
        append(&path, "a:1", FP_A).expect("append");
        append(&path, "[::1]:2", &fp_b()).expect("append");
        let entries = load(&path).expect("reload");
        assert_eq!(entries.len(), 2);
        assert_eq!(lookup(&entries, "a:1", FP_A), Lookup::Match);
        assert_eq!(lookup(&entries, "[::1]:2", &fp_b()), Lookup::Match);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().expect("dir")), 0o700);
        }
    }

    #[test]
    fn append_after_a_last_line_without_newline() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join(KNOWN_SERVERS_FILE);
        fs::write(&path, format!("a:1 {FP_A}")).expect("write");
        append(&path, "b:2", FP_A).expect("append");
        let entries = load(&path).expect("reload");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].line, 2);
    }

    #[test]
    fn path_precedence() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            path_from(os("/c"), os("/x"), os("/h")),
            Some(PathBuf::from("/c/known_servers"))
        );
        assert_eq!(
            path_from(None, os("/x"), os("/h")),
            Some(PathBuf::from("/x/chat/known_servers"))
        );
        assert_eq!(
            path_from(os(""), os("relative"), os("/h")),
            Some(PathBuf::from("/h/.config/chat/known_servers"))
        );
        assert_eq!(path_from(None, None, None), None);
    }
}
