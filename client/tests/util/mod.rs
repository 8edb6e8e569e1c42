//! Helpers for the client's integration tests: the real `chat-server` on a free port (the test
//! kit's launcher, with the address as the client takes it), raw TCP
//! peers, a scripted fake server, and the real `chat-client` with its output read by threads.
//! Every wait has a deadline ([`TIMEOUT`]); every child is killed when its guard drops.
#![allow(dead_code, clippy::unwrap_used)]

pub mod screen;
pub mod terminals;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long any one expected event may take: generous, for a loaded 2-core machine; only a
/// failing test ever waits this long.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The client binary under test.
pub fn client_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chat-client"))
}

/// Lines of a child's output, read by a thread (the test kit's, with this suite's deadline).
pub type Lines = chat_testkit::PipeLines;

/// How the server's operator console is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// A pipe the test writes operator commands into.
    Piped,
    /// `/dev/null`: without --auto-approve every join is denied at once.
    Closed,
}

/// The real server on a free port (the test kit's launcher), killed on drop; its address as
/// the client takes it on the command line. Derefs to the kit's `Server` (console, signals).
pub struct Server {
    inner: chat_testkit::Server,
    pub addr: String,
}

impl Server {
    #[track_caller]
    pub fn start(auto_approve: bool, console: Console) -> Self {
        Server::start_on("127.0.0.1:0", auto_approve, console)
    }

    /// Starts the server listening on `addr` (a fixed port, to restart it on the same one).
    #[track_caller]
    pub fn start_on(addr: &str, auto_approve: bool, console: Console) -> Self {
        Server::start_with(addr, auto_approve, console, &[])
    }

    /// Starts the server listening on `addr` with `extra` flags (`--tls-listen ...`).
    #[track_caller]
    pub fn start_with(addr: &str, auto_approve: bool, console: Console, extra: &[&str]) -> Self {
        let mut builder = chat_testkit::Server::builder()
            .listen(addr)
            .args(extra)
            .console(match console {
                Console::Piped => chat_testkit::Console::Piped,
                Console::Closed => chat_testkit::Console::Null,
            });
        if auto_approve {
            builder = builder.args(&["--auto-approve"]);
        }
        let inner = builder.start();
        let addr = inner.addr().to_string();
        Server { inner, addr }
    }
}

impl std::ops::Deref for Server {
    type Target = chat_testkit::Server;

    fn deref(&self) -> &chat_testkit::Server {
        &self.inner
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut chat_testkit::Server {
        &mut self.inner
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// A member speaking raw protocol over TCP.
pub struct Peer {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    pub seen: Vec<String>,
}

impl Peer {
    #[track_caller]
    pub fn connect(addr: &str) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Peer {
            stream,
            reader,
            seen: Vec::new(),
        }
    }

    /// Connects and joins as `name` on a server that admits at once.
    #[track_caller]
    pub fn join(addr: &str, name: &str) -> Self {
        let mut peer = Peer::connect(addr);
        peer.expect("NAME?");
        peer.send(name);
        peer.expect("WELCOME ");
        peer
    }

    pub fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// Reads lines until one starts with `prefix`; returns it.
    #[track_caller]
    pub fn expect(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {prefix:?}; seen {:#?}",
                self.seen
            );
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => panic!("connection closed before {prefix:?}; seen {:#?}", self.seen),
                Ok(_) => {
                    let line = line.trim_end_matches('\n').to_owned();
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "read failed waiting for {prefix:?}: {e}; seen {:#?}",
                    self.seen
                ),
            }
        }
    }
}

impl Peer {
    /// Reads until the other side closes the connection, ignoring what it sends.
    #[track_caller]
    pub fn expect_closed(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        let mut line = String::new();
        loop {
            assert!(Instant::now() < deadline, "connection still open");
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) => self.seen.push(line.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("read failed waiting for the close: {e}"),
            }
        }
    }
}

/// A one-connection server played by the test: `script` gets the accepted connection (with
/// read timeouts set) on its own thread.
pub fn fake_server<F>(script: F) -> (String, thread::JoinHandle<()>)
where
    F: FnOnce(Peer) + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        script(Peer {
            stream,
            reader,
            seen: Vec::new(),
        });
    });
    (addr, handle)
}

/// A server played by the test for several connections in turn, on one address: each script
/// gets the next accepted connection (with read timeouts set), on one thread, in order.
pub fn fake_server_sessions(
    scripts: Vec<Box<dyn FnOnce(Peer) + Send>>,
) -> (String, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = thread::spawn(move || {
        for script in scripts {
            let (stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            let reader = BufReader::new(stream.try_clone().unwrap());
            script(Peer {
                stream,
                reader,
                seen: Vec::new(),
            });
        }
    });
    (addr, handle)
}

/// The real client, with piped standard streams; killed on drop.
pub struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    pub stdout: Lines,
    pub stderr: Lines,
    /// The client's configuration directory (`CHAT_CONFIG_DIR`) unless `envs` named one, so a
    /// test never writes the user's `known_servers` or session tokens.
    _config: tempfile::TempDir,
}

impl Client {
    /// Starts `chat-client ARGS`, with `NO_COLOR` removed unless `envs` sets it, and a
    /// configuration directory of its own unless `envs` sets `CHAT_CONFIG_DIR`.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let config = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(client_bin());
        cmd.args(args)
            .env_remove("NO_COLOR")
            .env("CHAT_CONFIG_DIR", config.path())
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take();
        let stdout = Lines::with_timeout(child.stdout.take().unwrap(), TIMEOUT);
        let stderr = Lines::spawn(child.stderr.take().unwrap());
        Client {
            child,
            stdin,
            stdout,
            stderr,
            _config: config,
        }
    }

    /// Types a line on the client's standard input.
    pub fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin closed");
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Types a line if the client still reads: one that has already exited (refusing to
    /// connect) leaves a broken pipe, which is no failure here.
    pub fn offer_line(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin
                .write_all(format!("{line}\n").as_bytes())
                .and_then(|()| stdin.flush());
        }
    }

    /// Closes the client's standard input (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the client to exit; returns its status and standard error.
    #[track_caller]
    pub fn wait(&mut self) -> (i32, String) {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "client did not exit; stdout so far: {:#?}",
                self.stdout.seen
            );
            thread::sleep(Duration::from_millis(10));
        };
        let code = status.code().expect("client killed by a signal");
        (code, self.stderr.rest().join("\n"))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
