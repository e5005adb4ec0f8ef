//! Whether a guest's sshd really answers.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// QEMU's forwarder (and a port forward in general) accepts connections
/// before the guest listens, so only a banner proves that sshd answers.
pub(crate) async fn ssh_banner(addr: SocketAddr) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).await.ok()?;
        Some(&buf == b"SSH-")
    };
    matches!(
        timeout(Duration::from_secs(10), attempt).await,
        Ok(Some(true))
    )
}
