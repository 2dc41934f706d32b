//! What a call to a peer can end in besides success, and how that becomes
//! this service's own answer.
//!
//! A peer that refuses the request for a reason of its own (a 4xx problem
//! such as `409 insufficient_points`) is a fact the caller may act on or pass
//! to its client unchanged. A peer that cannot answer — down, too slow,
//! failing with 5xx, answering garbage, refusing our service token — is one
//! thing to the caller's client: `503 dependency_unavailable`, naming the
//! peer and nothing internal. Its cause is logged once, where it happened.

use std::{error::Error as StdError, fmt::Write as _};

use http_service::Problem;
use reqwest::StatusCode;

use crate::token::TokenError;

/// The stable code of a peer that could not answer.
pub const DEPENDENCY_UNAVAILABLE: &str = "dependency_unavailable";

/// A call to a peer that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The peer answered 4xx; its problem (status, `code`, `detail` and
    /// extension members such as `decline_code`) is kept as it was sent.
    #[error("{peer} refused the call: {problem}")]
    Rejected { peer: String, problem: Problem },
    /// The peer could not be used; see [`Unavailable`] for why.
    #[error("{peer} is unavailable: {cause}")]
    Unavailable {
        peer: String,
        #[source]
        cause: Unavailable,
    },
    /// The request could not be built (a path that is no URL, a body that
    /// does not serialise): a bug on this side, not the peer's.
    #[error("call to {peer} could not be built: {reason}")]
    Invalid { peer: String, reason: String },
}

/// Why a peer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("cannot connect")]
    Connect(#[source] reqwest::Error),
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("request failed")]
    Transport(#[source] reqwest::Error),
    #[error("answered {0}")]
    Status(StatusCode),
    #[error("refused the service token even after it was renewed")]
    TokenRefused,
    #[error("answered a body that does not decode: {0}")]
    Malformed(String),
    #[error("no service token")]
    Token(#[source] TokenError),
}

impl CallError {
    /// The peer's problem, when it refused the call with one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            CallError::Rejected { problem, .. } => Some(problem),
            CallError::Unavailable { .. } | CallError::Invalid { .. } => None,
        }
    }

    /// The status this error answers with: the peer's 4xx, 503 for an
    /// unavailable peer, 500 for a call that could not be built.
    pub fn status(&self) -> StatusCode {
        match self {
            CallError::Rejected { problem, .. } => problem.status(),
            CallError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            CallError::Invalid { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The peer's `code` when it refused the call, else this error's own.
    pub fn code(&self) -> &str {
        match self {
            CallError::Rejected { problem, .. } => problem.code(),
            CallError::Unavailable { .. } => DEPENDENCY_UNAVAILABLE,
            CallError::Invalid { .. } => "internal_error",
        }
    }

    /// True when the peer refused with `code`, e.g. `insufficient_points`.
    pub fn is_rejected_with(&self, code: &str) -> bool {
        self.problem().is_some_and(|problem| problem.code() == code)
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, CallError::Unavailable { .. })
    }

    pub fn peer(&self) -> &str {
        match self {
            CallError::Rejected { peer, .. }
            | CallError::Unavailable { peer, .. }
            | CallError::Invalid { peer, .. } => peer,
        }
    }
}

impl From<CallError> for Problem {
    fn from(err: CallError) -> Self {
        match err {
            CallError::Rejected { problem, .. } => problem,
            CallError::Unavailable { peer, .. } => Problem::service_unavailable(
                DEPENDENCY_UNAVAILABLE,
                format!("The {peer} service is unavailable. Please try again shortly."),
            ),
            CallError::Invalid { .. } => Problem::internal(),
        }
    }
}

/// `err: cause: cause's cause`, for the one log line of a failed call.
pub(crate) fn chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}
