//! Free loopback ports for SSH forwarding.

use std::net::{Ipv4Addr, TcpListener};

/// A TCP port on 127.0.0.1 that was free a moment ago. Another process may
/// take it before QEMU binds it; the caller retries with a new port when
/// QEMU cannot bind.
pub fn free_loopback_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picked_port_is_free_and_bindable() {
        let port = free_loopback_port().unwrap();
        assert_ne!(port, 0);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        assert_eq!(listener.local_addr().unwrap().port(), port);
    }

    #[test]
    fn a_port_in_use_is_not_picked_again() {
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let busy = held.local_addr().unwrap().port();
        for _ in 0..20 {
            assert_ne!(free_loopback_port().unwrap(), busy);
        }
    }
}
