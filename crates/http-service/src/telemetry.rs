//! Process-wide tracing set-up: an `EnvFilter` from `RUST_LOG` and either
//! JSON lines (`LOG_FORMAT=json`, for log shippers) or compact text (for
//! people reading a terminal), coloured only when a terminal shows it.

use std::io::IsTerminal;

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
    // The text format writes to stdout.
    let colour = colour_wanted(
        std::env::var("LOG_COLOR").ok().as_deref(),
        std::env::var("NO_COLOR").ok().as_deref(),
        std::io::stdout().is_terminal(),
    );

    let installed = if json {
        fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        fmt()
            .compact()
            .with_ansi(colour)
            .with_env_filter(filter)
            .try_init()
    };

    if installed.is_ok() {
        tracing::info!(service, "tracing initialised");
    }
}

/// Whether text logs get ANSI colours: `LOG_COLOR=always` or `never` says so
/// outright; otherwise (`auto`, unset or anything else) only on a terminal,
/// and not when `NO_COLOR` is set to anything but the empty string. A file
/// or a pipe gets plain text, so logs stay greppable.
///
/// The local launcher uses the same rule for its own output and tells the
/// services it starts (whose stdout is a pipe to it) what it decided.
pub fn colour_wanted(log_color: Option<&str>, no_color: Option<&str>, is_terminal: bool) -> bool {
    match log_color.map(str::trim) {
        Some(choice) if choice.eq_ignore_ascii_case("always") => true,
        Some(choice) if choice.eq_ignore_ascii_case("never") => false,
        _ => is_terminal && no_color.is_none_or(str::is_empty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_unless_told() {
        assert!(colour_wanted(None, None, true));
        assert!(!colour_wanted(None, None, false));
        assert!(!colour_wanted(Some("auto"), None, false));
        assert!(!colour_wanted(None, Some("1"), true));
        assert!(colour_wanted(None, Some(""), true));
        assert!(colour_wanted(Some("always"), Some("1"), false));
        assert!(!colour_wanted(Some("never"), None, true));
    }
}
