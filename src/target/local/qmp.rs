//! A minimal QMP client: greeting, `qmp_capabilities`, then one command at
//! a time. Asynchronous events in between are skipped.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::target::TargetError;

const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Qmp {
    vm: String,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Qmp {
    /// Connects to the QMP socket `socket` of VM `vm`.
    pub async fn connect(vm: &str, socket: &Path) -> Result<Self, TargetError> {
        let stream = connect_unix(socket)
            .await
            .map_err(|e| qmp_err(vm, format!("connect: {e}")))?;
        let (read, writer) = stream.into_split();
        let mut qmp = Self {
            vm: vm.to_string(),
            reader: BufReader::new(read),
            writer,
        };
        let greeting = qmp.read_message().await?;
        if greeting.get("QMP").is_none() {
            return Err(qmp_err(vm, format!("unexpected greeting {greeting}")));
        }
        qmp.execute("qmp_capabilities").await?;
        Ok(qmp)
    }

    /// Runs `command` (no arguments) and returns its `return` value.
    pub async fn execute(&mut self, command: &str) -> Result<Value, TargetError> {
        let line = format!("{}\n", json!({ "execute": command }));
        self.writer
            .write_all(line.as_bytes())
            .await
            .map_err(|e| qmp_err(&self.vm, format!("{command}: {e}")))?;
        loop {
            let message = self.read_message().await?;
            if let Some(ret) = message.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = message.get("error") {
                return Err(qmp_err(&self.vm, format!("{command}: {err}")));
            }
        }
    }

    async fn read_message(&mut self) -> Result<Value, TargetError> {
        let mut line = String::new();
        let read = tokio::time::timeout(TIMEOUT, self.reader.read_line(&mut line)).await;
        match read {
            Ok(Ok(0)) => Err(qmp_err(&self.vm, "connection closed".into())),
            Ok(Ok(_)) => serde_json::from_str(&line)
                .map_err(|e| qmp_err(&self.vm, format!("bad message: {e}"))),
            Ok(Err(e)) => Err(qmp_err(&self.vm, e.to_string())),
            Err(_) => Err(qmp_err(&self.vm, "no answer within 10 s".into())),
        }
    }
}

fn qmp_err(vm: &str, message: String) -> TargetError {
    TargetError::Qmp {
        name: vm.to_string(),
        message,
    }
}

/// Connects to a UNIX socket whose path may exceed the 107-byte limit, by
/// going through an open handle on its folder (`/proc/self/fd/N/name`).
pub async fn connect_unix(path: &Path) -> std::io::Result<UnixStream> {
    if path.as_os_str().len() < 100 {
        return UnixStream::connect(path).await;
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return UnixStream::connect(path).await;
    };
    let handle = std::fs::File::open(dir)?;
    let short = Path::new("/proc/self/fd")
        .join(handle.as_raw_fd().to_string())
        .join(name);
    let stream = UnixStream::connect(&short).await;
    drop(handle);
    stream
}

#[cfg(test)]
mod tests {
    use tokio::net::UnixListener;

    use super::*;

    /// A fake QMP server that greets, accepts capabilities, sends an event,
    /// then answers one command.
    async fn serve(listener: UnixListener, answer: &'static str) {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write
            .write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n")
            .await
            .unwrap();
        assert!(
            lines
                .next_line()
                .await
                .unwrap()
                .unwrap()
                .contains("qmp_capabilities")
        );
        write.write_all(b"{\"return\": {}}\n").await.unwrap();
        let cmd = lines.next_line().await.unwrap().unwrap();
        assert!(cmd.contains("system_powerdown"), "{cmd}");
        write
            .write_all(b"{\"event\": \"POWERDOWN\", \"timestamp\": {}}\n")
            .await
            .unwrap();
        write.write_all(answer.as_bytes()).await.unwrap();
    }

    #[tokio::test]
    async fn executes_a_command_over_a_long_socket_path() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a".repeat(60)).join("b".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let sock = deep.join("qmp.sock");
        assert!(sock.as_os_str().len() > 108);
        // Bind through the folder handle too: the full path is too long.
        let folder = std::fs::File::open(&deep).unwrap();
        let short = Path::new("/proc/self/fd")
            .join(folder.as_raw_fd().to_string())
            .join("qmp.sock");
        let std_listener = std::os::unix::net::UnixListener::bind(short).unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let listener = UnixListener::from_std(std_listener).unwrap();
        let server = tokio::spawn(serve(listener, "{\"return\": {}}\n"));
        let mut qmp = Qmp::connect("web", &sock).await.unwrap();
        assert_eq!(qmp.execute("system_powerdown").await.unwrap(), json!({}));
        server.await.unwrap();
    }

    #[tokio::test]
    async fn an_error_answer_names_the_vm_and_command() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = tokio::spawn(serve(
            listener,
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}\n",
        ));
        let mut qmp = Qmp::connect("web", &sock).await.unwrap();
        let err = qmp
            .execute("system_powerdown")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("vm `web`: qmp: system_powerdown: "),
            "{err}"
        );
        server.await.unwrap();
    }
}
