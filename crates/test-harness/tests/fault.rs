//! The fault proxy does what each fault says, and switching faults takes
//! effect even on a client's kept-alive connection.

use std::time::Duration;

use axum::routing::get;
use test_harness::fault::{Fault, FaultProxy};

async fn hello_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let app = axum::Router::new().route("/hello", get(|| async { "hello" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn each_fault_shows_as_a_client_sees_it() {
    let proxy = FaultProxy::start(&hello_server().await).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let url = proxy.url().join("/hello").expect("url");
    let get = || client.get(url.clone()).send();

    let answer = get().await.expect("forwarded");
    assert_eq!(answer.text().await.expect("body"), "hello");

    proxy.set(Fault::Refuse);
    let refused = get().await.expect_err("refused");
    assert!(!refused.is_timeout(), "{refused}");

    proxy.set(Fault::Fail500);
    let failed = get().await.expect("answered");
    assert_eq!(failed.status(), 500);
    assert_eq!(failed.headers()["content-type"], "application/problem+json");

    proxy.set(Fault::Delay(Duration::from_secs(2)));
    let slow = get().await.expect_err("too slow");
    assert!(slow.is_timeout(), "{slow}");

    proxy.set(Fault::Forward);
    let answer = get().await.expect("forwarded again");
    assert_eq!(answer.status(), 200);
}
