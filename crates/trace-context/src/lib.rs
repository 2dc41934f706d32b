//! W3C trace context (`traceparent`), carried from an HTTP request or a
//! Kafka message to the events written while handling it.
//!
//! The HTTP layer runs each request, and the consumer runner each message,
//! inside the context it arrived with ([`TraceParent::scope`]); the outbox
//! stamps every event it writes with a child of the current context
//! ([`TraceParent::current_or_new`]), so the trace id follows the work across
//! services. Work outside any context starts a new trace.
//!
//! Next to it lives the request id ([`RequestId`]): the `x-request-id` of the
//! HTTP request being handled, which calls to other services pass on so that
//! one id finds a request's log lines in every service it touched.

use std::fmt;

use rand::Rng;

tokio::task_local! {
    static CURRENT: TraceParent;
    static REQUEST_ID: RequestId;
}

/// `00-<trace id>-<parent span id>-<flags>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: u128,
    pub span_id: u64,
    pub sampled: bool,
}

impl TraceParent {
    /// A new trace.
    pub fn new_root() -> Self {
        let mut rng = rand::rng();
        TraceParent {
            trace_id: rng.random::<u128>().max(1),
            span_id: rng.random::<u64>().max(1),
            sampled: true,
        }
    }

    /// A new span in the same trace.
    pub fn child(&self) -> Self {
        TraceParent {
            span_id: rand::rng().random::<u64>().max(1),
            ..*self
        }
    }

    /// Parses a `traceparent` header; `None` when it is not version 00 or malformed.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        if version != "00" || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
        let span_id = u64::from_str_radix(span, 16).ok().filter(|s| *s != 0)?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(TraceParent {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The context the caller runs in, if any: to carry it into a task the
    /// caller spawns.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// The context the caller runs in, as a child span, or a new trace.
    pub fn current_or_new() -> Self {
        CURRENT
            .try_with(|current| current.child())
            .unwrap_or_else(|_| TraceParent::new_root())
    }

    /// Runs `future` with `self` as the current trace context.
    pub async fn scope<F: std::future::Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }

    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

/// The id of the HTTP request being handled (its `x-request-id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    pub fn new(id: impl Into<String>) -> Self {
        RequestId(id.into())
    }

    /// The id of the request the caller handles, if it runs inside one.
    pub fn current() -> Option<Self> {
        REQUEST_ID.try_with(Clone::clone).ok()
    }

    /// Runs `future` with `self` as the current request id.
    pub async fn scope<F: std::future::Future>(self, future: F) -> F::Output {
        REQUEST_ID.scope(self, future).await
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_survives_formatting_and_parsing() {
        let root = TraceParent::new_root();
        assert_eq!(TraceParent::parse(&root.to_string()), Some(root));
        assert_eq!(
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                .map(|t| t.trace_id_hex()),
            Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned())
        );
        assert_eq!(TraceParent::parse("01-abc-def-00"), None);
        assert_eq!(TraceParent::parse("garbage"), None);
    }

    #[tokio::test]
    async fn events_written_inside_a_handler_continue_its_trace() {
        let incoming = TraceParent::new_root();
        let outgoing = incoming
            .scope(async { TraceParent::current_or_new() })
            .await;
        assert_eq!(outgoing.trace_id, incoming.trace_id);
        assert_ne!(outgoing.span_id, incoming.span_id);
        assert_ne!(TraceParent::current_or_new().trace_id, incoming.trace_id);
    }

    #[tokio::test]
    async fn the_request_id_is_known_inside_its_scope_only() {
        let id = RequestId::new("req-1");
        let inside = id.clone().scope(async { RequestId::current() }).await;
        assert_eq!(inside, Some(id));
        assert_eq!(RequestId::current(), None);
    }
}
