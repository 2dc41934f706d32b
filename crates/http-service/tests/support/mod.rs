//! Starts a router the way a service does (`layered` + `serve` on port 0)
//! and hands the test its base URL.

#![allow(dead_code)] // each test binary uses a different part of it
#![allow(clippy::unwrap_used)] // a test whose set-up fails should fail on the spot

use axum::Router;
use http_service::{layered, serve_with_config, HttpConfig};
use prometheus::Registry;
use tokio::{
    net::{TcpListener, TcpSocket},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

pub struct TestServer {
    pub base: String,
    pub registry: Registry,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// Serves `router` behind the shared middleware; `registry` is the one the
/// router's `CommonRoutes` was built with, if any.
pub async fn start(router: Router, registry: Registry) -> TestServer {
    start_with(router, registry, HttpConfig::with_port(0)).await
}

/// The same, with the limits of `config` (its port is ignored).
pub async fn start_with(router: Router, registry: Registry, config: HttpConfig) -> TestServer {
    let listener = listener();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = layered(router, &config, &registry);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let handle = tokio::spawn(async move { serve_with_config(listener, app, &config, stop).await });
    TestServer {
        base,
        registry,
        shutdown,
        handle,
    }
}

/// A listener on a free port of the loopback interface whose accept queue
/// holds as many connections as the kernel allows (`TcpListener::bind` asks
/// for 1024): a test that opens a thousand connections at once must not see
/// the kernel drop handshakes before the server could accept them.
fn listener() -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(4096).unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}
