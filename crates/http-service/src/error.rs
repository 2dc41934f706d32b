//! The error model of a service's edge: one table that gives each error its
//! status and stable `code` (used for the response and for the OpenAPI
//! document alike), and the named database constraints that mean a client
//! error.
//!
//! A service declares its one edge error with [`error_table!`](crate::error_table):
//!
//! ```ignore
//! http_service::error_table! {
//!     /// Everything a handler of this service can answer besides success.
//!     pub enum ApiError {
//!         #[error("not enough points are available")]
//!         InsufficientPoints => (CONFLICT, "insufficient_points"),
//!     }
//!     constraints {
//!         "accounts_available_not_negative" => ApiError::InsufficientPoints,
//!     }
//! }
//! ```

use std::fmt;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::problem::Problem;

/// One row of an error table: the status and the stable `code` it answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemCode {
    pub status: StatusCode,
    pub code: &'static str,
}

impl ProblemCode {
    pub const fn new(status: StatusCode, code: &'static str) -> Self {
        Self { status, code }
    }
}

/// The row of every unexpected failure.
pub const INTERNAL: ProblemCode =
    ProblemCode::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error");

/// The codes the shared edge answers with before (or instead of) a service's
/// handler: authentication, roles, extractors, pagination, limits. Every
/// service's document lists them next to its own.
pub const EDGE_CODES: &[ProblemCode] = &[
    ProblemCode::new(StatusCode::BAD_REQUEST, "malformed_json"),
    ProblemCode::new(StatusCode::BAD_REQUEST, "malformed_body"),
    ProblemCode::new(StatusCode::BAD_REQUEST, "invalid_query"),
    ProblemCode::new(StatusCode::UNAUTHORIZED, "unauthorized"),
    ProblemCode::new(StatusCode::FORBIDDEN, "forbidden"),
    ProblemCode::new(StatusCode::NOT_FOUND, "not_found"),
    ProblemCode::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
    ProblemCode::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
    ProblemCode::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    ProblemCode::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
    ProblemCode::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        crate::pagination::INVALID_PAGINATION,
    ),
    INTERNAL,
    ProblemCode::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
    // The shared limits (see `server::layered`) may answer any request so.
    ProblemCode::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
    ProblemCode::new(StatusCode::SERVICE_UNAVAILABLE, "request_timeout"),
];

/// The row of a request whose database statement ran past the statement
/// timeout or waited past the lock timeout, or that found no free
/// connection in the pool in time: the database was busy, not the request
/// wrong, so it may be tried again.
pub const DATABASE_BUSY: ProblemCode =
    ProblemCode::new(StatusCode::SERVICE_UNAVAILABLE, "database_busy");

/// SQLSTATEs of a statement cancelled by `statement_timeout` and of a lock
/// not had within `lock_timeout`.
const TIMED_OUT_STATES: [&str; 2] = ["57014", "55P03"];

/// Whether `error`, or any of its causes, is the database giving up on a
/// statement by a timeout, or the pool having no connection free in time.
fn database_timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if matches!(
            error.downcast_ref::<sqlx::Error>(),
            Some(sqlx::Error::PoolTimedOut)
        ) {
            return true;
        }
        let state = match error.downcast_ref::<sqlx::Error>() {
            Some(error) => error.as_database_error().and_then(|db| db.code()),
            None => error
                .downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .map(|db| std::borrow::Cow::Borrowed(db.code())),
        };
        if state.is_some_and(|state| TIMED_OUT_STATES.contains(&state.as_ref())) {
            return true;
        }
        cause = error.source();
    }
    false
}

/// `503 database_busy` with `Retry-After: 1` when `error` is the database
/// giving up on a statement by a timeout or the pool having no connection
/// free in time (logged as a warning): overload, which a client may retry.
pub(crate) fn database_busy(error: &(dyn std::error::Error + 'static)) -> Option<Response> {
    if !database_timed_out(error) {
        return None;
    }
    tracing::warn!(code = DATABASE_BUSY.code, error = %Chain(error), "the database gave up on a statement");
    Some(
        Problem::new(
            DATABASE_BUSY.status,
            DATABASE_BUSY.code,
            "The database is busy right now; try again shortly.",
        )
        .with_header(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        )
        .into_response(),
    )
}

/// A service's edge error, as [`error_table!`](crate::error_table) declares it.
pub trait ErrorTable: std::error::Error + Sized + 'static {
    /// The service's own rows, one per variant, for the OpenAPI document.
    const CODES: &'static [ProblemCode];

    /// This error's row; `None` for a problem the shared edge answered with.
    fn problem_code(&self) -> Option<ProblemCode>;

    /// The shared edge's problem, or the error itself.
    fn into_edge(self) -> Result<Problem, Self>;
}

/// The response for a service error: its row's status and code, the
/// variant's message as `detail`. A 5xx says nothing internal; its cause is
/// logged here, once, with its whole chain.
pub fn respond<E: ErrorTable>(error: E) -> Response {
    let error = match error.into_edge() {
        Ok(problem) => return problem.into_response(),
        Err(error) => error,
    };
    let row = error.problem_code().unwrap_or(ProblemCode::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
    ));
    if row.status == StatusCode::INTERNAL_SERVER_ERROR {
        if let Some(busy) = database_busy(&error) {
            return busy;
        }
    }
    if row.status.is_server_error() {
        tracing::error!(code = row.code, error = %Chain(&error), "request failed");
        if row.status == StatusCode::INTERNAL_SERVER_ERROR {
            return Problem::internal().into_response();
        }
        return Problem::new(
            row.status,
            row.code,
            "The service cannot answer right now. The cause has been logged.",
        )
        .into_response();
    }
    Problem::new(row.status, row.code, error.to_string()).into_response()
}

/// Displays an error and each of its sources, `outer: inner: root`.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// Declares a service's one edge error: the enum (with `thiserror`'s
/// `#[error(...)]` on each variant), each variant's status and stable code in
/// one table, and optionally which named database constraints mean which
/// variant.
///
/// It adds two variants: `Edge(Problem)` for problems the shared edge
/// answers with (`caller.require_role(..)?`, extractors), and
/// `Internal(anyhow::Error)`, a 500 logged once with its chain. It implements
/// [`ErrorTable`], `IntoResponse`, `From<Problem>` and `From<anyhow::Error>`.
/// With a `constraints { "name" => expr, .. }` block it also implements
/// `From<sqlx::Error>`: a violated constraint in the block becomes its
/// client error, every other database error `Internal`. The calling crate
/// depends on `thiserror` and `anyhow` (and `sqlx` for `constraints`).
///
/// Give every variant a message (`#[error("...")]`, `#[error("{0}")]`):
/// `#[error(transparent)]` does not survive the macro's expansion.
#[macro_export]
macro_rules! error_table {
    (
        $(#[$($meta:tt)*])*
        $vis:vis enum $name:ident {
            $(
                $(#[$($vmeta:tt)*])*
                $variant:ident $( ( $($tuple:tt)* ) )? $( { $($fields:tt)* } )?
                    => ($status:ident, $code:literal)
            ),* $(,)?
        }
        $(
            constraints {
                $( $constraint:literal => $mapped:expr ),* $(,)?
            }
        )?
    ) => {
        $(#[$($meta)*])*
        #[derive(Debug, ::thiserror::Error)]
        $vis enum $name {
            $(
                $(#[$($vmeta)*])*
                $variant $( ( $($tuple)* ) )? $( { $($fields)* } )?,
            )*
            /// A problem the shared edge answered with (authentication,
            /// roles, extractors); its code is in `http_service::error::EDGE_CODES`.
            #[error(transparent)]
            Edge($crate::problem::Problem),
            /// Anything unexpected: a logged 500 that reveals nothing.
            #[error(transparent)]
            Internal(#[from] ::anyhow::Error),
        }

        impl $crate::error::ErrorTable for $name {
            const CODES: &'static [$crate::error::ProblemCode] = &[
                $( $crate::error::ProblemCode::new($crate::__private::StatusCode::$status, $code), )*
                $crate::error::INTERNAL,
                $crate::error::DATABASE_BUSY,
            ];

            fn problem_code(&self) -> ::core::option::Option<$crate::error::ProblemCode> {
                match self {
                    $(
                        Self::$variant { .. } => ::core::option::Option::Some(
                            $crate::error::ProblemCode::new($crate::__private::StatusCode::$status, $code),
                        ),
                    )*
                    Self::Edge(_) => ::core::option::Option::None,
                    Self::Internal(_) => ::core::option::Option::Some($crate::error::INTERNAL),
                }
            }

            fn into_edge(self) -> ::core::result::Result<$crate::problem::Problem, Self> {
                match self {
                    Self::Edge(problem) => ::core::result::Result::Ok(problem),
                    other => ::core::result::Result::Err(other),
                }
            }
        }

        impl ::core::convert::From<$crate::problem::Problem> for $name {
            fn from(problem: $crate::problem::Problem) -> Self {
                Self::Edge(problem)
            }
        }

        impl $crate::__private::IntoResponse for $name {
            fn into_response(self) -> $crate::__private::Response {
                $crate::error::respond(self)
            }
        }

        $(
            impl ::core::convert::From<::sqlx::Error> for $name {
                fn from(error: ::sqlx::Error) -> Self {
                    if let ::sqlx::Error::Database(database) = &error {
                        match database.constraint() {
                            $( ::core::option::Option::Some($constraint) => return $mapped, )*
                            _ => {}
                        }
                    }
                    Self::Internal(::anyhow::Error::new(error))
                }
            }
        )?
    };
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("disk on fire")]
    struct Root;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to store the order")]
    struct Outer(#[source] Root);

    #[test]
    fn chain_shows_every_cause() {
        assert_eq!(
            Chain(&Outer(Root)).to_string(),
            "failed to store the order: disk on fire"
        );
    }
}
