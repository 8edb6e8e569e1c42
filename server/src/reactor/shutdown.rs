//! Stopping: SIGINT and SIGTERM act like the console's `quit`; the listeners close, every
//! connection gets BYE, and the loop exits once every BYE is out or the grace period ends.
//! SIGHUP is read here too: when standard input is a terminal that hung up it is the hang-up
//! (`console::terminal_hung_up`), otherwise a request to reload the TLS certificate (`reload`).

use super::Reactor;
use crate::chat::{Audience, Now, Outbox};
use crate::config::SHUTDOWN_GRACE;

impl Reactor {
    pub(super) fn read_signals(&mut self, now: Now) {
        let mut got = false;
        let mut hangup = false;
        for signal in self.signals.pending() {
            log::info!("signal {signal}");
            if signal == signal_hook::consts::SIGHUP {
                hangup = true;
            } else {
                got = true;
            }
        }
        if hangup && self.stdin_hung_up() {
            // The terminal's hang-up, not a reload request (`systemctl reload` has no terminal).
            self.terminal_hung_up(now);
        } else if hangup {
            self.reload_tls();
        }
        if got {
            self.begin_shutdown("signal", now);
        }
    }

    /// Stops accepting, says BYE to every connection and arms the grace deadline.
    pub(super) fn begin_shutdown(&mut self, why: &str, now: Now) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        log::info!("shutting down ({why})");
        self.shell
            .console(Audience::All, format_args!("shutting down"));
        self.shutdown_deadline = Some(now.at + SHUTDOWN_GRACE);
        self.shell.shutting_down = true;
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        for mut listener in [
            self.tls_listener.take(),
            self.irc_listener.take(),
            self.irc_tls_listener.take(),
        ]
        .into_iter()
        .flatten()
        {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.close_web_listeners();
        self.core.shutdown(&mut self.shell);
        // A script's console (`ctl quit now`) still learns how its commands went.
        let quiet: Vec<usize> = self
            .shell
            .controls
            .iter()
            .filter(|(_, c)| c.quiet)
            .map(|(key, _)| key)
            .collect();
        for key in quiet {
            self.end_of_control_input(key);
        }
        if let Some(link) = self.shell.cluster.as_mut() {
            // The other servers announce this one's members gone and their names are freed.
            link.leave();
        }
    }
}
