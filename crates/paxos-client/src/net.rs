//! Addresses and UDP sockets, as the daemons and the clients use them.
//!
//! Members are written in the cluster file as `host:port`: an IP literal or a
//! host name (a compose service name), resolved here. Sockets get large
//! kernel buffers, so that datagrams that arrive while a node is busy (in an
//! fsync) wait in the kernel rather than being lost.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

/// The receive and send buffer sizes asked of the kernel (which may cap them):
/// while a batch is being synced, the datagrams that arrive wait here.
pub const SOCKET_BUFFER_BYTES: usize = 8 << 20;

/// The kernel's actual buffer sizes of a bound socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferSizes {
    /// SO_RCVBUF as the kernel reports it.
    pub recv_bytes: usize,
    /// SO_SNDBUF as the kernel reports it.
    pub send_bytes: usize,
}

/// Binds a non-blocking UDP socket at `addr` with buffers of
/// [`SOCKET_BUFFER_BYTES`] (or what the kernel grants). An IPv6 wildcard
/// socket also receives IPv4. Must be called within a tokio runtime.
///
/// # Errors
/// When the socket cannot be created or bound (e.g. the address is in use).
pub fn bind_udp(addr: SocketAddr) -> io::Result<(UdpSocket, BufferSizes)> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Best effort: some systems forbid dual-stack sockets.
        let _ = socket.set_only_v6(false);
    }
    // The kernel caps these at net.core.{r,w}mem_max; what it granted is reported.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let sizes = BufferSizes { recv_bytes: socket.recv_buffer_size()?, send_bytes: socket.send_buffer_size()? };
    let socket = UdpSocket::from_std(socket.into())?;
    Ok((socket, sizes))
}

/// An IPv4 address written as IPv4-mapped IPv6 (as a dual-stack socket
/// reports it) becomes plain IPv4, so that addresses compare equal.
pub fn normalize(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// Resolves `host:port` (an IP literal or a host name) to its addresses, normalized.
///
/// # Errors
/// When the name does not resolve or resolves to nothing.
pub async fn resolve(spec: &str) -> io::Result<Vec<SocketAddr>> {
    if let Ok(addr) = spec.parse::<SocketAddr>() {
        return Ok(vec![normalize(addr)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(spec).await?.map(normalize).collect();
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("{spec} resolves to no address")));
    }
    Ok(addrs)
}

/// Resolves `host:port` without a runtime, blocking (for start-up paths).
///
/// # Errors
/// When the name does not resolve or resolves to nothing.
pub fn resolve_blocking(spec: &str) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = spec.to_socket_addrs()?.map(normalize).collect();
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("{spec} resolves to no address")));
    }
    Ok(addrs)
}

/// A client socket for a cluster whose members have the addresses `specs`:
/// bound to an ephemeral port of the loopback interface when every member is
/// on it, of every interface otherwise; IPv6 (dual-stack) when any member is.
/// Returns the socket and whether it is IPv6.
///
/// # Errors
/// When the socket cannot be bound.
pub fn client_socket<'a>(specs: impl IntoIterator<Item = &'a String>) -> io::Result<(UdpSocket, bool)> {
    let literals: Vec<Option<SocketAddr>> = specs.into_iter().map(|a| a.parse::<SocketAddr>().ok()).collect();
    let v6 = literals.iter().flatten().any(|a| normalize(*a).is_ipv6());
    let all_loopback = literals.iter().all(|a| a.is_some_and(|a| a.ip().is_loopback()));
    let local: IpAddr = match (v6, all_loopback) {
        (true, true) => Ipv6Addr::LOCALHOST.into(),
        (true, false) => Ipv6Addr::UNSPECIFIED.into(),
        (false, true) => Ipv4Addr::LOCALHOST.into(),
        (false, false) => Ipv4Addr::UNSPECIFIED.into(),
    };
    let (socket, _) = bind_udp(SocketAddr::new(local, 0))?;
    Ok((socket, v6))
}

/// The address to send to for the member address `spec`, as a socket of the
/// family `v6` can reach it; `None` when the name does not resolve (yet),
/// which callers treat as silence and retry.
pub async fn resolve_member(spec: &str, v6: bool) -> Option<SocketAddr> {
    let addrs = resolve(spec).await.unwrap_or_default();
    let addr = addrs.iter().find(|a| a.is_ipv4() != v6).or(addrs.first()).copied();
    addr.map(|a| match (a, v6) {
        (SocketAddr::V4(v4), true) => SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port()),
        _ => a,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_compare_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:7001".parse().unwrap();
        assert_eq!(normalize(mapped), "127.0.0.1:7001".parse::<SocketAddr>().unwrap());
        let v6: SocketAddr = "[::1]:7001".parse().unwrap();
        assert_eq!(normalize(v6), v6);
    }

    #[tokio::test]
    async fn host_names_resolve() {
        let addrs = resolve("localhost:7001").await.expect("localhost resolves");
        assert!(addrs.iter().all(|a| a.port() == 7001));
        assert!(addrs.iter().any(|a| a.ip().is_loopback()));
        assert_eq!(resolve("127.0.0.1:5").await.unwrap(), vec!["127.0.0.1:5".parse().unwrap()]);
    }
}
