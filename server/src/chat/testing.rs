//! Unit and property tests of the core, driven through a recording [`Outbox`]: no socket, no
//! clock, no reactor.
