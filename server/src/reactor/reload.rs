//! SIGHUP: the TLS certificate and key are read again from the same files, for new connections
//! only (open ones keep the pair they started with, so nobody is dropped). A file that does not
//! load leaves the old pair in place; either way the consoles are told.
//!
//! The files are small and local, so they are read in the loop; nothing here touches a socket.

use super::Reactor;
use crate::chat::{Audience, Outbox};

impl Reactor {
    pub(super) fn reload_tls(&mut self) {
        let Some((files, config)) = &mut self.tls else {
            log::info!("SIGHUP ignored: no TLS certificate to reload (no --tls-listen)");
            return;
        };
        match files.load() {
            Ok(fresh) => {
                *config = fresh;
                let cert = files.cert.display().to_string();
                log::info!("reloaded the TLS certificate from {cert}");
                self.shell.console(
                    Audience::All,
                    format_args!("reloaded the TLS certificate from {cert}"),
                );
            }
            Err(e) => {
                log::warn!("cannot reload the TLS certificate: {e}");
                self.shell.console(
                    Audience::All,
                    format_args!("error: cannot reload the TLS certificate: {e}"),
                );
            }
        }
    }
}
