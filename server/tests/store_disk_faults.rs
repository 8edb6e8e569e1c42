//! A data directory on a disk that fails, for real: a small tmpfs mounted over it in a mount
//! namespace of the server's own (`unshare`).
//!
//! - Full: most of the tmpfs is taken by a filler file, so writes fail with ENOSPC as on a real
//!   full disk: senders get `ERROR unavailable`, the consoles say `store: cannot write (...)`,
//!   nothing kept before is lost, and once space is freed the store writes again and a
//!   member's resume replays every message any member received, in order, once.
//!   (`durable.rs` and `hostile_v3.rs` fake a full disk with a file-size limit.)
//! - Read-only: the server does not start; exit status 4 and a message naming the directory.
//!
//! `unshare` (util-linux) is Debian's; as root the namespace needs no more, otherwise a user
//! namespace (`unshare -Urm`). A machine that allows neither fails the test with the reason.
//! The real binary on real sockets (127.0.0.1); every wait is a read with a deadline.

use std::net::Shutdown;
use std::path::PathBuf;
use std::time::Duration;

use chat_common::protocol::v3::split_tags;
use chat_testkit::{login_v3, Client, Server, TempDir};

/// The tmpfs's size, and the filler's: the store gets what is left (about 2 MiB).
const TMPFS: &str = "8m";
const FILLER_KIB: u32 = 6 * 1024;

/// Whether this process runs as root (then `unshare -m` alone can mount).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// `unshare`'s arguments for a mount namespace of the server's own.
fn unshare() -> &'static [&'static str] {
    if is_root() {
        &["unshare", "-m"]
    } else {
        &["unshare", "-Urm"]
    }
}

/// The body after the tag prefix, and the id.
#[track_caller]
fn id_and_rest(line: &str) -> (String, String) {
    let (tags, rest) = split_tags(line);
    let id = tags
        .and_then(|t| t.id())
        .unwrap_or_else(|| panic!("no id in {line:?}"));
    (id.to_owned(), rest.to_owned())
}

#[test]
fn a_full_disk_refuses_messages_loudly_loses_nothing_and_recovers() {
    let dir = TempDir::new("store-full-disk");
    let mount = format!(
        "mount -t tmpfs -o size={TMPFS} tmpfs \"$0\" \
         && dd if=/dev/zero of=\"$0/filler\" bs=1k count={FILLER_KIB} 2>/dev/null \
         && exec \"$@\""
    );
    let mut wrapper: Vec<&str> = unshare().to_vec();
    wrapper.extend(["sh", "-c", &mount, dir.arg()]);
    let mut server = Server::builder()
        .wrapper(&wrapper)
        .args(&["--auto-approve", "--rate", "0", "--data-dir", dir.arg()])
        .start();
    // The filler as the server's namespace sees it (the mount is not visible from here).
    let filler = PathBuf::from(format!("/proc/{}/root", server.pid()))
        .join(dir.path().strip_prefix("/").unwrap_or(dir.path()))
        .join("filler");
    assert!(
        filler.exists(),
        "no filler at {}: the tmpfs was not mounted",
        filler.display()
    );

    let mut reader = server.connect();
    let token = login_v3(&mut reader, "reader");
    let mut writer = server.connect();
    login_v3(&mut writer, "writer");
    reader.expect("JOIN writer");
    writer.send_line("start");
    writer.expect("ECHO ");
    let (start, rest) = id_and_rest(&reader.next_line());
    assert_eq!(rest, "MSG writer - start");

    // Fill the disk: each line answered by its ECHO (kept and sent) or the refusal.
    let filler_line = "f".repeat(3000);
    let mut refused = false;
    for i in 0..5000u32 {
        writer.send_line(&format!("{i} {filler_line}"));
        let answer = until_any(&mut writer, &["ECHO ", "ERROR "]);
        if answer.starts_with("ERROR unavailable") {
            refused = true;
            break;
        }
        assert!(answer.starts_with("ECHO "), "{answer}");
    }
    assert!(refused, "the writer never got ERROR unavailable");
    let said = server.expect_console("store: cannot write");
    assert!(said.contains("space"), "not a full disk: {said}");
    assert!(
        !said.contains("(store:"),
        "the reason says `store:` twice: {said}"
    );

    // Everything the reader got, up to the refusal.
    writer.send_line("/who");
    writer.skip_until("INFO online");
    reader.send_line("/who");
    let mut received = Vec::new();
    loop {
        let line = reader.next_line();
        if line.starts_with("INFO online") {
            break;
        }
        let (id, rest) = id_and_rest(&line);
        received.push((id, rest));
    }
    assert!(
        !received.is_empty(),
        "nothing was kept before the disk filled"
    );
    reader.stream().shutdown(Shutdown::Both).unwrap_or(());
    drop(reader);

    // Space again: the store writes again by itself.
    std::fs::remove_file(&filler).unwrap_or_else(|e| panic!("rm {}: {e}", filler.display()));
    server.expect_console("store: writing again");
    writer.send_line("after");
    let answer = until_any(&mut writer, &["ECHO ", "ERROR "]);
    assert!(answer.starts_with("ECHO "), "{answer}");

    // The reader resumes from `start`: every message it received, then `after`, once each.
    let mut again = server.connect();
    again.expect("NAME? ");
    again.send_line("HELLO 3");
    again.expect_exact("HELLO 3");
    again.send_line(&format!("RESUME reader {token} {start}"));
    again.expect_welcome("reader");
    let mut replayed = Vec::new();
    loop {
        let line = again.next_line();
        if line.starts_with("INFO online") {
            break;
        }
        if line.starts_with("TOKEN ") {
            continue;
        }
        // A replayed line is the line as it was, after `HIST <time> `.
        let (id, rest) = id_and_rest(&line);
        let was = rest
            .strip_prefix("HIST ")
            .and_then(|r| r.split_once(' '))
            .map_or(rest.clone(), |(_, was)| was.to_owned());
        replayed.push((id, was));
    }
    let mut want = received.clone();
    let after = replayed.last().cloned().unwrap_or_default();
    assert_eq!(after.1, "MSG writer - after", "{:?}", replayed.last());
    want.push(after);
    assert_eq!(
        replayed.len(),
        want.len(),
        "replayed {} of {}",
        replayed.len(),
        want.len()
    );
    assert!(
        replayed == want,
        "the replay differs from what was received"
    );
    eprintln!(
        "full disk: {} messages kept before the refusal ({said}); all replayed after it",
        received.len()
    );
}

/// Skips lines until one starts with any of `prefixes`; returns it.
#[track_caller]
fn until_any(c: &mut Client, prefixes: &[&str]) -> String {
    loop {
        let line = c.next_line();
        if prefixes.iter().any(|p| line.starts_with(p)) {
            return line;
        }
    }
}

#[test]
fn a_read_only_data_directory_stops_the_start_with_status_4() {
    let dir = TempDir::new("store-read-only");
    let mut wrapper: Vec<&str> = unshare().to_vec();
    let mount = "mount -t tmpfs -o ro,size=1m tmpfs \"$0\" && exec \"$@\"";
    wrapper.extend(["sh", "-c", mount, dir.arg()]);
    let (status, _, err) = Server::run_wrapped_to_exit(
        &wrapper,
        &["--listen", "127.0.0.1:0", "--data-dir", dir.arg()],
        Duration::from_secs(10),
    );
    assert_eq!(status.code(), Some(4), "{err}");
    assert!(err.starts_with("chat-server: "), "{err}");
    assert!(
        err.contains(dir.arg()) && err.contains("Read-only"),
        "{err}"
    );
}
