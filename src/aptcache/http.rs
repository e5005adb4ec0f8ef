//! Just enough HTTP/1.1 for apt talking to a forward proxy: request heads
//! (`GET http://host/path HTTP/1.1`) in, response heads out. Bodies are
//! sent with a Content-Length, so a connection carries request after
//! request (apt pipelines them; they are answered in order).

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

const MAX_LINE: usize = 16 * 1024;
const MAX_HEADERS: usize = 100;

/// One request as apt sends it to a proxy.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The absolute URI of the request line, as sent.
    pub target: String,
    /// Headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub keep_alive: bool,
}

impl Request {
    #[cfg(test)]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the next request head; `None` when the client closed the
/// connection between requests, `Err` on a malformed or oversized head.
pub async fn read_request<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Option<Request>> {
    let Some(line) = read_line(r).await? else {
        return Ok(None);
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    let mut headers = Vec::new();
    loop {
        let Some(line) = read_line(r).await? else {
            return Err(bad("connection closed in a request head"));
        };
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(bad("too many headers"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad("malformed header"));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let connection = headers
        .iter()
        .filter(|(n, _)| n == "connection" || n == "proxy-connection")
        .map(|(_, v)| v.to_ascii_lowercase())
        .collect::<Vec<_>>();
    let keep_alive = if version == "HTTP/1.0" {
        connection.iter().any(|v| v.contains("keep-alive"))
    } else {
        !connection.iter().any(|v| v.contains("close"))
    };
    Ok(Some(Request {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        keep_alive,
    }))
}

async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE {
        return Err(bad("header line too long"));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| bad("request head is not UTF-8"))
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

/// A response head with a Content-Length (`None`: no body, no length).
pub fn response_head(
    status: u16,
    length: Option<u64>,
    headers: &[(&str, String)],
    keep_alive: bool,
) -> String {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    if let Some(length) = length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    for (name, value) in headers {
        if !value.contains(['\r', '\n']) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let connection = if keep_alive { "keep-alive" } else { "close" };
    head.push_str(&format!("Connection: {connection}\r\n\r\n"));
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_pipelined_requests_in_order() {
        let wire = b"GET http://h/a HTTP/1.1\r\nHost: h\r\nAuthorization: Basic eDp5\r\n\r\n\
                     GET http://h/b HTTP/1.1\r\nConnection: close\r\n\r\n";
        let mut r = tokio::io::BufReader::new(&wire[..]);
        let a = read_request(&mut r).await.unwrap().unwrap();
        assert_eq!(
            (a.method.as_str(), a.target.as_str()),
            ("GET", "http://h/a")
        );
        assert_eq!(a.header("authorization"), Some("Basic eDp5"));
        assert!(a.keep_alive);
        let b = read_request(&mut r).await.unwrap().unwrap();
        assert!(!b.keep_alive && b.target == "http://h/b");
        assert!(read_request(&mut r).await.unwrap().is_none());
        let head = response_head(200, Some(3), &[("Content-Type", "x".into())], true);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"));
    }
}
