//! A `redis-server` of a test's own (on a free port, without persistence), killed when dropped,
//! for the cluster's tests. `redis-server` must be installed (scripts/test.sh installs it): a
//! test without it fails, it never skips. It can be stopped and continued with signals (an
//! outage that keeps its data), or restarted empty on the same port (an outage that loses it).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A running `redis-server`.
#[derive(Debug)]
pub struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts one on a free loopback port and waits (bounded) until it answers `PING`.
    #[track_caller]
    pub fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Redis::start_on(port)
    }

    /// Starts one on `port` (a port a test chose before, say for a server started first) and
    /// waits (bounded) until it answers `PING`.
    #[track_caller]
    pub fn start_on(port: u16) -> Redis {
        let redis = Redis {
            child: spawn(port),
            port,
        };
        redis.wait_for_ping();
        redis
    }

    /// Kills it (`SIGKILL`) and starts a new, empty one on the same port: Redis lost its data.
    #[track_caller]
    pub fn restart(&mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
        self.child = spawn(self.port);
        self.wait_for_ping();
    }

    #[track_caller]
    fn wait_for_ping(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pings() {
            assert!(Instant::now() < deadline, "redis-server did not answer");
            // Waiting for another process to open its port: no event to wait on.
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it answers `PING` now.
    pub fn pings(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// Its `redis://` URL, for `--cluster`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it and starts a new, empty one on the same port (no persistence: everything it
    /// held is gone), waiting (bounded) until it answers `PING`.
    #[track_caller]
    pub fn restart_empty(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server again: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pings() {
            assert!(
                Instant::now() < deadline,
                "the new redis-server did not answer"
            );
            // Waiting for another process to open its port: no event to wait on.
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends it a signal by name (`STOP`, `CONT`, ...): an outage without losing its data.
    #[track_caller]
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} redis-server failed");
    }
}

/// A `redis-server` on `port` without persistence.
#[track_caller]
fn spawn(port: u16) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start redis-server (scripts/test.sh installs it): {e}"))
}

impl Drop for Redis {
    fn drop(&mut self) {
        // A stopped server would outlive the kill until continued.
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
