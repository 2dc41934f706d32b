//! Process-wide tracing set-up: an `EnvFilter` from `RUST_LOG` and either
//! JSON lines (`LOG_FORMAT=json`, for log shippers) or compact text (for
//! people reading a terminal).

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber.
///
/// Safe to call more than once: tests and the local launcher start several
/// services in one process, and only the first call wins. Later calls are
/// ignored rather than treated as errors because the subscriber already in
/// place is just as good.
pub fn init_tracing(service: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));

    let installed = if json {
        fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        fmt().compact().with_env_filter(filter).try_init()
    };

    if installed.is_ok() {
        tracing::info!(service, "tracing initialised");
    }
}
