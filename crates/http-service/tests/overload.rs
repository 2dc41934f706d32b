//! A service stays up under abuse: past its cap on requests in flight it
//! refuses at once with `503 overloaded` and `Retry-After` while its probes
//! still answer; a request past its deadline answers `503 request_timeout`;
//! clients that trickle a request head, stall a body or send nothing are
//! disconnected; and every response carries the security headers.

#![allow(clippy::unwrap_used)] // a test whose set-up fails should fail on the spot

mod support;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    http::{header, HeaderValue},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
    Router,
};
use http_service::{CommonRoutes, HttpConfig, OpenApiRouter};
use prometheus::Registry;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Barrier,
    task::JoinSet,
};

/// How long the slow handler takes.
const SLOW_HANDLER: Duration = Duration::from_millis(1000);

fn app(registry: &Registry) -> Router {
    let (_, openapi) = OpenApiRouter::<()>::new().split_for_parts();
    Router::new()
        .route("/fast", get(|| async { axum::Json(json!({"ok": true})) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(SLOW_HANDLER).await;
                axum::Json(json!({"ok": true}))
            }),
        )
        .route(
            "/stuck",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        )
        .route(
            "/echo",
            post(|body: Bytes| async move { axum::Json(json!({"bytes": body.len()})) }),
        )
        .route(
            "/page",
            get(|| async { Html("<!doctype html><title>A page</title><p>Hello</p>") }),
        )
        .route("/page-with-own-policy", get(page_with_own_policy))
        .merge(CommonRoutes::new(registry.clone(), openapi).router())
}

async fn page_with_own_policy() -> Response {
    let policy = http_service::server::content_security_policy(["https://shop.example"]);
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&policy).unwrap(),
        )],
        Html("<!doctype html><title>Pay</title><form method=post></form>"),
    )
        .into_response()
}

fn limits(max_concurrent_requests: usize, request_timeout: Duration) -> HttpConfig {
    HttpConfig {
        max_concurrent_requests,
        request_timeout,
        header_read_timeout: Duration::from_millis(1500),
        body_read_timeout: Duration::from_millis(1000),
        ..HttpConfig::with_port(0)
    }
}

async fn start(config: HttpConfig) -> support::TestServer {
    let registry = Registry::new();
    support::start_with(app(&registry), registry, config).await
}

/// What a raw connection saw: the status and headers of an answer, or the
/// server closing it without one.
#[derive(Debug)]
struct Seen {
    status: Option<u16>,
    head: String,
    body: String,
    after: Duration,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Writes `parts` (pausing `pause` between them) while reading, until the
/// server closes the connection; panics if it has not after `give_up` (a
/// hang). The client never closes its side first: a slow client does not.
async fn exchange(address: &str, parts: &[&[u8]], pause: Duration, give_up: Duration) -> Seen {
    exchange_together(address, None, parts, pause, give_up).await
}

/// [`exchange`], but after connecting it waits at `together` (if any) for
/// the other clients, so that all of them are connected at once.
async fn exchange_together(
    address: &str,
    together: Option<&Barrier>,
    parts: &[&[u8]],
    pause: Duration,
    give_up: Duration,
) -> Seen {
    let (mut reader, mut writer) = TcpStream::connect(address).await.unwrap().into_split();
    if let Some(barrier) = together {
        tokio::time::timeout(give_up, barrier.wait())
            .await
            .expect("a client could not connect");
    }
    let started = Instant::now();
    let writing = async {
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(pause).await;
            }
            // The server may close while the client still writes (it timed
            // the client out); what it answered is read all the same.
            if writer.write_all(part).await.is_err() {
                break;
            }
        }
        // Keeps the write half, so the connection stays open from this side.
        std::future::pending::<()>().await
    };
    let reading = async {
        let mut received = Vec::new();
        // A reset after the server gave up counts as closed.
        let _ = reader.read_to_end(&mut received).await;
        received
    };
    let talk = async {
        tokio::select! {
            received = reading => received,
            () = writing => unreachable!("writing never ends"),
        }
    };
    let received = tokio::time::timeout(give_up, talk)
        .await
        .unwrap_or_else(|_| {
            let sent = parts.first().map(|part| String::from_utf8_lossy(part));
            panic!("connection still open after {give_up:?}: a hang (it sent {sent:?})")
        });
    let text = String::from_utf8_lossy(&received).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    Seen {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
        after: started.elapsed(),
    }
}

fn get_request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Lets this process hold `wanted` open files if the hard limit allows;
/// returns how many it may hold.
fn raise_open_files_limit(wanted: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft >= wanted {
        return soft;
    }
    let target = wanted.min(hard);
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => target,
        Err(_) => soft,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// How a connection ended; anything else (a 5xx but the two refusals, a
/// success without a body) fails the test.
fn classify(seen: &Seen) -> Outcome {
    match seen.status {
        Some(200) => Outcome::Answered,
        Some(503) if seen.body.contains("\"overloaded\"") => Outcome::Refused,
        Some(503) if seen.body.contains("\"request_timeout\"") => Outcome::TimedOut,
        // Closed without an answer, or a client error: a body that stopped
        // arriving is a bad body.
        None => Outcome::CutOff,
        Some(status) if (400..500).contains(&status) => Outcome::CutOff,
        Some(other) => panic!("answered {other}: {}\n{}", seen.head, seen.body),
    }
}

#[derive(Debug)]
enum Outcome {
    Answered,
    Refused,
    TimedOut,
    /// A trickling or silent client the server disconnected (or answered
    /// 4xx/408) within the timeouts.
    CutOff,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_are_each_answered_or_refused_while_health_checks_keep_answering() {
    // Each connection takes two descriptors here, the client's and the
    // server's end; leave room for the runtime and the test harness.
    let connections: usize = 1000;
    let allowed = raise_open_files_limit(4096);
    let connections = connections.min(((allowed.saturating_sub(200)) / 2) as usize);
    println!("open files allowed: {allowed}; connections: {connections}");

    let config = limits(64, Duration::from_secs(5));
    let header_read_timeout = config.header_read_timeout;
    let server = start(config).await;
    let address = server.base.trim_start_matches("http://").to_owned();

    // Health checks every 10 ms on fresh connections while the storm lasts.
    let stop_probing = tokio_util::sync::CancellationToken::new();
    let prober = tokio::spawn({
        let address = address.clone();
        let stop = stop_probing.clone();
        async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            while !stop.is_cancelled() {
                let seen = exchange(
                    &address,
                    &[&get_request("/healthz")],
                    Duration::ZERO,
                    Duration::from_secs(10),
                )
                .await;
                if seen.status == Some(200) {
                    latencies.push(seen.after);
                } else {
                    failures += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (latencies, failures)
        }
    });

    // The give-up bound is generous: it only tells a hang from slowness on
    // a busy two-core machine.
    let give_up = Duration::from_secs(30);
    let mut clients = JoinSet::new();
    let open = Arc::new(AtomicUsize::new(0));
    let peak_open = Arc::new(AtomicUsize::new(0));
    let together = Arc::new(Barrier::new(connections));
    for i in 0..connections {
        // Connections open in quick waves rather than all in one instant:
        // should the kernel's accept queue overflow, a silent client whose
        // handshake it dropped would wait for ever on a connection the
        // server never saw. That would be the kernel's doing, not the
        // service's (the test's listener has a deep queue, see `support`).
        // Every client then waits until all are connected, so the storm
        // starts with all of them open at once.
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let address = address.clone();
        let open = Arc::clone(&open);
        let peak_open = Arc::clone(&peak_open);
        let together = Arc::clone(&together);
        clients.spawn(async move {
            let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
            peak_open.fetch_max(now_open, Ordering::SeqCst);
            let seen = match i % 10 {
                // Slow clients: a request head sent a byte at a time, never
                // finished.
                0 => {
                    let head = b"GET /fast HTTP/1.1\r\nHost: test\r\nX-Slow: ".repeat(4);
                    let bytes: Vec<&[u8]> = head.chunks(1).collect();
                    exchange_together(
                        &address,
                        Some(&together),
                        &bytes,
                        Duration::from_millis(100),
                        give_up,
                    )
                    .await
                }
                // A body announced and never finished.
                1 => {
                    let head = b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n";
                    exchange_together(
                        &address,
                        Some(&together),
                        &[head, b"only a little", &[]],
                        Duration::from_secs(20),
                        give_up,
                    )
                    .await
                }
                // Connected and silent.
                2 => {
                    exchange_together(&address, Some(&together), &[], Duration::ZERO, give_up)
                        .await
                }
                // The rest ask for the slow handler, a few for a quick one.
                n => {
                    let path = if n == 3 { "/fast" } else { "/slow" };
                    exchange_together(
                        &address,
                        Some(&together),
                        &[&get_request(path)],
                        Duration::ZERO,
                        give_up,
                    )
                    .await
                }
            };
            open.fetch_sub(1, Ordering::SeqCst);
            (classify(&seen), seen)
        });
    }

    let (mut answered, mut refused, mut timed_out, mut cut_off) = (0, 0, 0, 0);
    let mut longest_cut_off = Duration::ZERO;
    while let Some(joined) = clients.join_next().await {
        let (outcome, seen) = joined.unwrap();
        match outcome {
            Outcome::Answered => answered += 1,
            Outcome::TimedOut => timed_out += 1,
            Outcome::Refused => {
                refused += 1;
                assert_eq!(seen.header("retry-after"), Some("1"), "{}", seen.head);
                assert_eq!(
                    seen.header("content-type"),
                    Some("application/problem+json")
                );
                assert_eq!(seen.header("x-content-type-options"), Some("nosniff"));
            }
            Outcome::CutOff => {
                cut_off += 1;
                longest_cut_off = longest_cut_off.max(seen.after);
            }
        }
    }
    stop_probing.cancel();
    let (mut latencies, health_failures) = prober.await.unwrap();
    latencies.sort();

    println!(
        "peak of connections open at once: {}",
        peak_open.load(Ordering::SeqCst)
    );
    println!(
        "{connections} connections: {answered} answered, {refused} refused with 503 overloaded, \
         {timed_out} timed out, {cut_off} slow or silent clients cut off (the last after {longest_cut_off:?})"
    );
    println!(
        "health checks during the storm: {} answered, {health_failures} failed; p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
    );

    assert_eq!(health_failures, 0, "a health check failed under load");
    assert!(
        !latencies.is_empty(),
        "no health check ran during the storm"
    );
    assert!(answered > 0, "nothing was answered");
    assert!(refused > 0, "the cap refused nothing");
    assert_eq!(answered + refused + timed_out + cut_off, connections);
    // Header and body read timeouts, plus generous slack for a busy machine.
    assert!(
        longest_cut_off < header_read_timeout + Duration::from_secs(10),
        "a slow client held its connection for {longest_cut_off:?}"
    );

    // Afterwards the service is fine, and its metrics saw the refusals.
    let after = exchange(&address, &[&get_request("/fast")], Duration::ZERO, give_up).await;
    assert_eq!(after.status, Some(200));
    let metrics = support::client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let overloaded = format!("http_requests_refused_total{{reason=\"overloaded\"}} {refused}");
    assert!(
        metrics.contains(&overloaded),
        "{overloaded} not in\n{metrics}"
    );
}

#[tokio::test]
async fn past_the_cap_a_request_is_refused_at_once_but_health_checks_answer() {
    let server = start(limits(2, Duration::from_secs(5))).await;
    let client = support::client();
    let busy: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client.get(server.url("/slow")).send()))
        .collect();
    // Let both slow requests take their place.
    tokio::time::sleep(SLOW_HANDLER / 4).await;

    let started = Instant::now();
    let refused = client.get(server.url("/fast")).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(started.elapsed() < SLOW_HANDLER / 2, "the refusal waited");
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "overloaded");

    for path in ["/healthz", "/readyz", "/metrics"] {
        let probe = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(probe.status(), 200, "{path} while the service is full");
    }
    for request in busy {
        assert_eq!(request.await.unwrap().unwrap().status(), 200);
    }
    assert_eq!(
        client
            .get(server.url("/fast"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_handler_past_the_request_timeout_answers_503_request_timeout() {
    let timeout = Duration::from_millis(300);
    let server = start(limits(8, timeout)).await;

    let started = Instant::now();
    let response = support::client()
        .get(server.url("/stuck"))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();

    assert_eq!(response.status(), 503);
    assert!(took >= timeout && took < Duration::from_secs(5), "{took:?}");
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "request_timeout");

    let metrics = support::client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("http_requests_refused_total{reason=\"request_timeout\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_client_that_never_finishes_its_request_head_is_disconnected() {
    let config = limits(8, Duration::from_secs(5));
    let header_read_timeout = config.header_read_timeout;
    let server = start(config).await;
    let address = server.base.trim_start_matches("http://");

    let head = b"GET /fast HTTP/1.1\r\nHost: test\r\nX-Slow: ".repeat(10);
    let bytes: Vec<&[u8]> = head.chunks(1).collect();
    let seen = exchange(
        address,
        &bytes,
        Duration::from_millis(50),
        Duration::from_secs(20),
    )
    .await;

    assert!(
        seen.after >= header_read_timeout && seen.after < header_read_timeout * 4,
        "{:?}",
        seen.after
    );
    assert!(
        seen.status.is_none_or(|status| status == 408),
        "{}",
        seen.head
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_as_a_bad_request() {
    let server = start(limits(8, Duration::from_secs(10))).await;
    let address = server.base.trim_start_matches("http://");

    let head = b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n";
    let seen = exchange(
        address,
        &[head, b"ten bytes.", &[]],
        Duration::from_secs(30),
        Duration::from_secs(20),
    )
    .await;

    assert_eq!(seen.status, Some(400), "{}\n{}", seen.head, seen.body);
    assert!(seen.after < Duration::from_secs(5), "{:?}", seen.after);
    assert_eq!(
        seen.header("content-type"),
        Some("application/problem+json")
    );
}

#[tokio::test]
async fn every_response_says_nosniff_and_html_pages_also_forbid_framing_and_set_a_policy() {
    let server = start(limits(8, Duration::from_secs(5))).await;
    let client = support::client();

    for (method, path, status) in [
        ("GET", "/fast", 200),
        ("GET", "/healthz", 200),
        ("GET", "/metrics", 200),
        ("GET", "/nowhere", 404),
        ("DELETE", "/fast", 405),
        ("GET", "/page", 200),
    ] {
        let response = client
            .request(method.parse().unwrap(), server.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{method} {path}"
        );
        assert_eq!(response.headers()["referrer-policy"], "no-referrer");
        let html = path == "/page";
        assert_eq!(
            response.headers().contains_key("x-frame-options"),
            html,
            "{method} {path}"
        );
        assert_eq!(
            response.headers().contains_key("content-security-policy"),
            html,
            "{method} {path}"
        );
    }

    let page = client.get(server.url("/page")).send().await.unwrap();
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(
        page.headers()["content-security-policy"],
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    );
    assert!(page.text().await.unwrap().contains("Hello"));

    let own = client
        .get(server.url("/page-with-own-policy"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        own.headers()["content-security-policy"],
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self' https://shop.example"
    );
    assert_eq!(own.headers()["x-frame-options"], "DENY");
}
