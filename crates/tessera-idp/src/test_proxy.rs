//! A logging HTTP forward proxy for tests: `CONNECT host:port` tunnels (HTTPS through a proxy) and
//! absolute-form requests (`POST http://host:port/token HTTP/1.1`, plain HTTP through a proxy),
//! each recorded in [`TestProxy::log`] before it is forwarded.
//!
//! Whatever host a request names, the proxy connects to `127.0.0.1` on the port it names: a test
//! can use a name that does not resolve (`http://idp.test:8080/token`) and still never leave this
//! machine. Optionally it requires a `Proxy-Authorization` value (a proxy URL with a user and
//! password) and answers `407` otherwise.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The largest request head the proxy reads.
const MAX_HEAD: usize = 64 * 1024;

/// One request the proxy saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxiedRequest {
    /// `CONNECT`, `POST`, `GET`, ...
    pub method: String,
    /// `host:port` for `CONNECT`, the absolute URL otherwise.
    pub target: String,
    /// The `Proxy-Authorization` header, if any.
    pub proxy_authorization: Option<String>,
    /// The `User-Agent` header, if any (plain HTTP requests carry the client's; a `CONNECT` may not).
    pub user_agent: Option<String>,
    /// Whether it was forwarded (false: refused with 407, or malformed).
    pub forwarded: bool,
}

/// A running proxy on an ephemeral loopback port; stops when dropped.
pub struct TestProxy {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<ProxiedRequest>>>,
    task: JoinHandle<()>,
}

impl TestProxy {
    /// Starts a proxy that forwards everything.
    pub async fn start() -> std::io::Result<TestProxy> {
        TestProxy::start_with_auth(None).await
    }

    /// Starts a proxy that forwards only requests whose `Proxy-Authorization` header is
    /// `required` (e.g. `Basic dXNlcjpwYXNz`), and answers others `407`.
    pub async fn start_with_auth(required: Option<String>) -> std::io::Result<TestProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let required = Arc::new(required);
        let task = tokio::spawn({
            let log = Arc::clone(&log);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(serve(client, Arc::clone(&log), Arc::clone(&required)));
                }
            }
        });
        Ok(TestProxy { addr, log, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, oldest first.
    pub fn log(&self) -> Vec<ProxiedRequest> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads up to the end of the head (`\r\n\r\n`): the head, and whatever body bytes came with it.
async fn read_head(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            return Some((String::from_utf8(buffer).ok()?, rest));
        }
        if buffer.len() > MAX_HEAD {
            return None;
        }
    }
}

/// The port of `host:port` or of an absolute URL's authority (default 80 for `http`).
fn port_of(authority: &str) -> Option<u16> {
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => port.parse().ok(),
        _ => Some(80),
    }
}

async fn serve(mut client: TcpStream, log: Arc<Mutex<Vec<ProxiedRequest>>>, required: Arc<Option<String>>) {
    let Some((head, body_start)) = read_head(&mut client).await else { return };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let (method, target, version) =
        (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or("HTTP/1.1"));
    let headers: Vec<(String, String)> = lines
        .filter(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':').map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())))
        .collect();
    let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let proxy_authorization = header("proxy-authorization");
    let mut entry = ProxiedRequest {
        method: method.to_owned(),
        target: target.to_owned(),
        proxy_authorization: proxy_authorization.clone(),
        user_agent: header("user-agent"),
        forwarded: false,
    };
    let record = |entry: ProxiedRequest| log.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
    if let Some(required) = required.as_ref()
        && proxy_authorization.as_deref() != Some(required.as_str())
    {
        record(entry);
        let _ = client
            .write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic realm=\"test\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await;
        return;
    }
    // CONNECT's target is `host:port`; the absolute form's is `http://host:port/path?query`.
    let absolute = target.strip_prefix("http://").map(|rest| match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    });
    let authority = match (method, absolute) {
        ("CONNECT", _) => target,
        (_, Some((authority, _))) => authority,
        _ => return record(entry),
    };
    let Some(port) = port_of(authority) else { return record(entry) };
    let Ok(mut upstream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await else {
        record(entry);
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n").await;
        return;
    };
    entry.forwarded = true;
    record(entry);
    if method == "CONNECT" {
        if client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err() {
            return;
        }
        if !body_start.is_empty() && upstream.write_all(&body_start).await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        return;
    }
    let path = absolute.map_or("/", |(_, path)| path);
    let mut forwarded = format!("{method} {path} {version}\r\n");
    for (name, value) in &headers {
        let lower = name.to_ascii_lowercase();
        if matches!(lower.as_str(), "proxy-authorization" | "proxy-connection" | "connection" | "keep-alive") {
            continue;
        }
        forwarded.push_str(&format!("{name}: {value}\r\n"));
    }
    // One request per connection: the answer ends when the server closes.
    forwarded.push_str("connection: close\r\n\r\n");
    if upstream.write_all(forwarded.as_bytes()).await.is_err() || upstream.write_all(&body_start).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[cfg(test)]
mod tests {
    use super::port_of;

    #[test]
    fn ports_come_from_the_authority() {
        assert_eq!(port_of("idp.test:8443"), Some(8443));
        assert_eq!(port_of("127.0.0.1:1"), Some(1));
        assert_eq!(port_of("idp.test"), Some(80));
        assert_eq!(port_of("[::1]:9"), Some(9));
        assert_eq!(port_of("idp.test:x"), None);
    }
}
