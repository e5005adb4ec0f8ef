//! Whether a guest's sshd really answers.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How long one probe may take at most (a wait gives it less near its end).
pub(crate) const BANNER_WAIT: Duration = Duration::from_secs(10);

/// QEMU's forwarder (and a port forward in general) accepts connections
/// before the guest listens, so only a banner proves that sshd answers.
/// The probe gives up after `within`.
pub(crate) async fn ssh_banner(addr: SocketAddr, within: Duration) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).await.ok()?;
        Some(&buf == b"SSH-")
    };
    matches!(timeout(within, attempt).await, Ok(Some(true)))
}
