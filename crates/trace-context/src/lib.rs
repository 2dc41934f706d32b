//! W3C trace context (`traceparent`), carried from an HTTP request or a
//! Kafka message to the events written while handling it.
//!
//! The HTTP layer runs each request, and the consumer runner each message,
//! inside the context it arrived with ([`TraceParent::scope`]); the outbox
//! stamps every event it writes with a child of the current context
//! ([`TraceParent::current_or_new`]), so the trace id follows the work across
//! services. Work outside any context starts a new trace.

use std::fmt;

use rand::Rng;

tokio::task_local! {
    static CURRENT: TraceParent;
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
}
