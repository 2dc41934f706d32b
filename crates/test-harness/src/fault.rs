//! Faults injected in front of a real service: a TCP proxy that a test puts
//! between a service and its peer, then switches between forwarding,
//! refusing connections, answering late, or answering `500`.
//!
//! The peer itself stays the real service; only the path to it misbehaves.
//!
//! ```ignore
//! let proxy = FaultProxy::start(&points_service.base_url).await;
//! let settings = Settings { user_points_url: proxy.url(), .. };
//! proxy.set(Fault::Refuse);            // user-points is "down"
//! proxy.set(Fault::Delay(Duration::from_secs(3)));
//! proxy.set(Fault::Forward);           // back up
//! ```
//!
//! Switching closes the connections opened under the previous fault, so a
//! client's pooled keep-alive connection cannot carry on as before.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How the proxy treats each new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Passes bytes both ways: the peer as it is.
    Forward,
    /// Closes each connection as soon as it is accepted: the peer is down.
    Refuse,
    /// Passes each request on at once but holds the answer back this long:
    /// a slow peer, which does the work while its caller times out and
    /// never hears of it.
    Delay(Duration),
    /// Reads the request and answers `500 Internal Server Error` without
    /// asking the peer: a failing peer.
    Fail500,
}

#[derive(Debug)]
struct Current {
    fault: Fault,
    /// Cancelled when the fault changes, ending its connections.
    generation: CancellationToken,
}

/// A proxy listening on a free loopback port in front of one service.
/// Dropping it stops it.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    current: Arc<Mutex<Current>>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy that forwards to `target_base_url` (`http://127.0.0.1:PORT`).
    ///
    /// # Panics
    /// When the URL has no host and port or no port can be bound.
    pub async fn start(target_base_url: &str) -> FaultProxy {
        let url = reqwest::Url::parse(target_base_url).expect("a base URL");
        let target = format!(
            "{}:{}",
            url.host_str().expect("a host"),
            url.port_or_known_default().expect("a port")
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        let addr = listener.local_addr().expect("a local address");
        let current = Arc::new(Mutex::new(Current {
            fault: Fault::Forward,
            generation: CancellationToken::new(),
        }));
        let shared = current.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (fault, generation) = {
                    let current = lock(&shared);
                    (current.fault, current.generation.clone())
                };
                tokio::spawn(handle(client, target.clone(), fault, generation));
            }
        });
        FaultProxy {
            addr,
            current,
            task,
        }
    }

    /// The proxy's base URL, to configure in place of the service's.
    pub fn url(&self) -> reqwest::Url {
        reqwest::Url::parse(&format!("http://{}", self.addr)).expect("a URL")
    }

    /// Applies `fault` to every connection from now on, and closes the
    /// connections opened before.
    pub fn set(&self, fault: Fault) {
        let mut current = lock(&self.current);
        current.generation.cancel();
        *current = Current {
            fault,
            generation: CancellationToken::new(),
        };
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        lock(&self.current).generation.cancel();
    }
}

fn lock(current: &Mutex<Current>) -> std::sync::MutexGuard<'_, Current> {
    current
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn handle(client: TcpStream, target: String, fault: Fault, generation: CancellationToken) {
    match fault {
        Fault::Forward => forward(client, &target, Duration::ZERO, &generation).await,
        Fault::Refuse => drop(client),
        Fault::Delay(delay) => forward(client, &target, delay, &generation).await,
        Fault::Fail500 => fail(client).await,
    }
}

/// Copies bytes both ways; what the peer answers starts flowing back only
/// after `answer_delay`.
async fn forward(
    client: TcpStream,
    target: &str,
    answer_delay: Duration,
    generation: &CancellationToken,
) {
    let Ok(upstream) = TcpStream::connect(target).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let requests = async {
        let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
        // The client is done sending; keep the peer's side open for its answer.
        let _ = upstream_write.shutdown().await;
        std::future::pending::<()>().await;
    };
    let answers = async {
        tokio::time::sleep(answer_delay).await;
        let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
    };
    tokio::select! {
        () = requests => {}
        () = answers => {}
        () = generation.cancelled() => {}
    }
}

/// Reads one request (head and `Content-Length` body) and answers 500 as a
/// failing service of the fleet would.
async fn fail(mut client: TcpStream) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = find(&request, b"\r\n\r\n") {
            break end + 4;
        }
        match client.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        match client.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let body = r#"{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"Injected failure.","code":"internal_error"}"#;
    let response = format!(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
