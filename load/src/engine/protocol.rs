//! What a received line means: chat (`ServerMsg`) or IRC lines move a member through its
//! admission, JOIN notices are checked against the members of the run, and load messages are
//! deliveries, checked for loss, duplicates and order, timed, and counted towards their
//! sender's window. Nothing here reads or writes a socket; replies are appended to the member's
//! output.

use chat_common::protocol::ServerMsg;

use super::members::State;
use super::Engine;
use crate::config::Proto;
use crate::irc::{self, IrcLine, NumericKind};
use crate::order::Outcome;
use crate::text;

impl Engine<'_> {
    pub(super) fn on_line(&mut self, i: usize, line: &[u8], now_ns: u64) {
        let proto = self.cfg.proto.of(i);
        // The hot path: one line in a million is anything else.
        let fast = match proto {
            Proto::Irc => text::irc_privmsg_text(line),
            Proto::Chat | Proto::Mixed => text::chat_msg_text(line),
        };
        if let Some(text) = fast {
            self.on_delivery(i, text, now_ns);
            return;
        }
        // Everything else is parsed as text, so it must be UTF-8 (the framer did not check).
        let Ok(line) = std::str::from_utf8(line) else {
            self.report.foreign += 1;
            return;
        };
        match proto {
            Proto::Irc => self.on_irc_line(i, line, now_ns),
            Proto::Chat | Proto::Mixed => self.on_chat_line(i, line, now_ns),
        }
    }

    pub(super) fn on_chat_line(&mut self, i: usize, line: &str, now_ns: u64) {
        let Ok(msg) = ServerMsg::parse(line) else {
            self.report.foreign += 1;
            return;
        };
        match msg {
            ServerMsg::Msg { text, .. } => self.on_delivery(i, text.as_bytes(), now_ns),
            ServerMsg::NameQuery { .. } => {
                let m = &mut self.members[i];
                if m.state == State::AwaitPrompt {
                    m.out.extend_from_slice(m.name.as_bytes());
                    m.out.push(b'\n');
                    m.state = State::AwaitWelcome;
                } else {
                    // Our name was refused (taken, or bad): this member cannot get in.
                    self.report.server_errors += 1;
                    self.close(i, "the server asked for a name again");
                }
            }
            ServerMsg::Welcome { .. } => self.on_admitted(i),
            ServerMsg::Join { name } => self.on_join(i, name),
            ServerMsg::Wait { .. } => {
                // Not an auto-approving server: nobody will admit us. Say so rather than
                // waiting for the timeout in silence.
                self.close(i, "the server made us WAIT: run it with --auto-approve");
            }
            ServerMsg::Denied { .. } | ServerMsg::Bye { .. } => self.report.refused += 1,
            ServerMsg::Error { .. } => self.report.server_errors += 1,
            ServerMsg::Leave { .. }
            | ServerMsg::Info { .. }
            | ServerMsg::Priv { .. }
            | ServerMsg::Act { .. }
            | ServerMsg::Nick { .. }
            | ServerMsg::Hist { .. } => {}
        }
    }

    pub(super) fn on_irc_line(&mut self, i: usize, line: &str, now_ns: u64) {
        let Some(l) = IrcLine::parse(line) else {
            self.report.foreign += 1;
            return;
        };
        match l.command {
            "PRIVMSG" => match l.param(1) {
                Some(text) => self.on_delivery(i, text.as_bytes(), now_ns),
                None => self.report.foreign += 1,
            },
            "PING" => {
                let m = &mut self.members[i];
                irc::pong(l.param(0).unwrap_or(""), &mut m.out);
            }
            "001" => {
                let m = &mut self.members[i];
                if m.state == State::AwaitRegistered {
                    irc::join(&self.cfg.channel, &mut m.out);
                    m.state = State::AwaitJoinEcho;
                }
            }
            "JOIN" => {
                let nick = l.nick().unwrap_or("");
                if nick.eq_ignore_ascii_case(&self.members[i].name) {
                    if self.members[i].state == State::AwaitJoinEcho {
                        self.on_admitted(i);
                    }
                } else {
                    self.on_join(i, nick);
                }
            }
            "ERROR" => self.report.refused += 1,
            c => match irc::classify_numeric(c) {
                NumericKind::Refusal => {
                    self.report.server_errors += 1;
                    if matches!(
                        self.members[i].state,
                        State::AwaitRegistered | State::AwaitJoinEcho
                    ) {
                        self.close(i, &format!("registration refused: {line}"));
                    }
                }
                NumericKind::SendRefused => self.report.server_errors += 1,
                // 422 (no MOTD) after 001, and every other command or numeric.
                NumericKind::Harmless => {}
            },
        }
    }

    /// Member `i` received the JOIN notice of `name`. Join-storm checks each against the
    /// members admitted after `i`, in order: one skipped counts as missing (unless it comes
    /// later: then out of order), one seen twice or of an earlier member as duplicated, one of
    /// no member of the run as foreign. Only new ones count towards `joins_total`, so a
    /// duplicate cannot stand in for a missing one.
    pub(super) fn on_join(&mut self, i: usize, name: &str) {
        let Some(tracker) = self.join_trackers.get_mut(i) else {
            self.joins_total += 1;
            return;
        };
        let index = name
            .strip_prefix(self.cfg.prefix.as_str())
            .filter(|n| !n.starts_with('0') || n.len() == 1)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&j| j < self.cfg.members);
        let Some(index) = index else {
            self.report.foreign += 1;
            return;
        };
        if index <= i {
            // Admitted before (or as) `i`: no notice of it is owed to `i`.
            self.joins_duplicated += 1;
            return;
        }
        match tracker.record(0, (index - i - 1) as u64) {
            Outcome::InOrder | Outcome::Reordered => self.joins_total += 1,
            Outcome::Duplicate => self.joins_duplicated += 1,
            Outcome::Invalid => self.report.foreign += 1,
        }
    }

    pub(super) fn on_delivery(&mut self, i: usize, text: &[u8], now_ns: u64) {
        let (Some(stamp), Some(tracker)) = (text::decode(text), self.trackers.get_mut(i)) else {
            self.report.foreign += 1;
            return;
        };
        let s = stamp.sender as usize;
        match tracker.record(s, stamp.seq) {
            Outcome::InOrder | Outcome::Reordered => {}
            Outcome::Duplicate => return,
            Outcome::Invalid => {
                self.report.foreign += 1;
                return;
            }
        }
        self.hist.record(now_ns.saturating_sub(stamp.sent_ns));
        self.delivered += 1;
        self.t_last_delivery_ns = now_ns;
        let (Some(window), Some(sender)) = (self.cfg.window, self.senders.get_mut(s)) else {
            return;
        };
        if stamp.seq < sender.acked || stamp.seq >= sender.next_seq {
            return;
        }
        let receivers = (self.cfg.members - 1) as u32;
        let w = window as usize;
        // stamp.seq - acked < window (at most a window is in flight), so one wrap at most.
        let mut slot = sender.head + (stamp.seq - sender.acked) as usize;
        if slot >= w {
            slot -= w;
        }
        sender.ring[slot] += 1;
        let mut moved = false;
        while sender.acked < sender.next_seq && sender.ring[sender.head] >= receivers {
            sender.ring[sender.head] = 0;
            sender.head += 1;
            if sender.head == w {
                sender.head = 0;
            }
            sender.acked += 1;
            moved = true;
        }
        if moved && !sender.queued {
            sender.queued = true;
            self.ready.push(s);
        }
    }
}
