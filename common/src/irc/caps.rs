//! The IRCv3 capabilities the server offers (`CAP LS`) and the set a client enabled
//! (`CAP REQ`), as the IRCv3 `cap` specification defines them: a request is acknowledged or
//! refused whole. This module owns the names and the set; it never writes a line.

/// One capability the server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// `server-time`: messages carry `@time=` (when the server relayed them).
    ServerTime,
    /// `message-tags`: messages carry `@msgid=` (the room's message id) and clients may send
    /// tags.
    MessageTags,
    /// `echo-message`: the sender gets its own `PRIVMSG` back as the room got it.
    EchoMessage,
    /// `sasl`: `AUTHENTICATE PLAIN` with the member's token as the password.
    Sasl,
}

impl Cap {
    /// Every capability, in the order `CAP LS` lists them.
    pub const ALL: [Cap; 4] = [
        Cap::ServerTime,
        Cap::MessageTags,
        Cap::EchoMessage,
        Cap::Sasl,
    ];

    /// The capability's name.
    pub fn name(self) -> &'static str {
        match self {
            Cap::ServerTime => "server-time",
            Cap::MessageTags => "message-tags",
            Cap::EchoMessage => "echo-message",
            Cap::Sasl => "sasl",
        }
    }

    /// The capability named `name` (exact, as the specification's names are lowercase).
    pub fn parse(name: &str) -> Option<Cap> {
        Cap::ALL.into_iter().find(|c| c.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSet(u8);

impl CapSet {
    /// Whether `cap` is in the set.
    pub fn has(self, cap: Cap) -> bool {
        self.0 & cap.bit() != 0
    }

    /// Adds or removes `cap`.
    pub fn set(&mut self, cap: Cap, on: bool) {
        if on {
            self.0 |= cap.bit();
        } else {
            self.0 &= !cap.bit();
        }
    }

    /// The names in the set, space-separated (for `CAP LIST`).
    pub fn names(self) -> String {
        let names: Vec<&str> = Cap::ALL
            .into_iter()
            .filter(|&c| self.has(c))
            .map(Cap::name)
            .collect();
        names.join(" ")
    }

    /// Applies a `CAP REQ` list (`cap` enables, `-cap` disables) when every name is offered
    /// (`offered`); returns whether it was acknowledged. A refused request changes nothing.
    pub fn request(&mut self, list: &str, offered: CapSet) -> bool {
        let mut next = *self;
        for item in list.split(' ').filter(|s| !s.is_empty()) {
            let (name, on) = match item.strip_prefix('-') {
                Some(name) => (name, false),
                None => (item, true),
            };
            match Cap::parse(name) {
                Some(cap) if offered.has(cap) => next.set(cap, on),
                _ => return false,
            }
        }
        *self = next;
        true
    }

    /// Every capability.
    pub fn all() -> CapSet {
        let mut set = CapSet::default();
        for cap in Cap::ALL {
            set.set(cap, true);
        }
        set
    }

    /// The `CAP LS` list of this offered set: names, with `sasl=PLAIN` for SASL when the
    /// client asked for version 302 (values are a 302 feature).
    pub fn ls(self, v302: bool) -> String {
        let names: Vec<&str> = Cap::ALL
            .into_iter()
            .filter(|&c| self.has(c))
            .map(|c| match c {
                Cap::Sasl if v302 => "sasl=PLAIN",
                c => c.name(),
            })
            .collect();
        names.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_all_or_nothing() {
        let offered = CapSet::all();
        let mut set = CapSet::default();
        assert!(set.request("server-time echo-message", offered));
        assert!(set.has(Cap::ServerTime) && set.has(Cap::EchoMessage));
        assert!(!set.has(Cap::MessageTags));
        assert!(!set.request("message-tags multi-prefix", offered));
        assert!(!set.has(Cap::MessageTags));
        assert!(set.request("-echo-message  message-tags", offered));
        assert_eq!(set.names(), "server-time message-tags");
        let mut no_sasl = CapSet::all();
        no_sasl.set(Cap::Sasl, false);
        assert!(!set.request("sasl", no_sasl));
        assert!(!set.request("Server-Time", offered));
    }

    #[test]
    fn lists_what_is_offered() {
        assert_eq!(
            CapSet::all().ls(true),
            "server-time message-tags echo-message sasl=PLAIN"
        );
        assert_eq!(
            CapSet::all().ls(false),
            "server-time message-tags echo-message sasl"
        );
    }
}
