//! Checks a service's test suite runs against its own router: every route
//! is documented, every documented operation is routed, and every documented
//! error response names the problem codes it can carry.
//!
//! axum cannot list a router's routes, so the check asks the router itself:
//! each documented path is requested with a method no route serves. A path
//! that is routed answers that with 405 and an `Allow` header naming exactly
//! the methods routed there (no handler runs); a path that is not routed
//! answers with the router's fallback. Comparing `Allow` with the document
//! finds documented operations without a route and undocumented methods on
//! a documented path. A route on a path the document never mentions cannot be
//! found this way; services are kept from declaring one by `clippy.toml`
//! (`disallowed-methods`: plain `route`, `route_service`, `nest_service`,
//! `any`), so every route comes from `routes!` and carries its documentation.

use std::{collections::BTreeSet, fmt};

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use tower::ServiceExt;
use utoipa::openapi::RefOr;
use utoipa_axum::router::OpenApiRouter;

use crate::server::{documented_operations, PROBLEM_CODES_EXTENSION};

/// One way a router and its document disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMismatch {
    /// The router serves `method` at `path`, the document does not say so.
    Undocumented { method: String, path: String },
    /// The document describes `method` at `path`, no route serves it.
    Unrouted { method: Method, path: String },
    /// An error response documents no problem code.
    NoProblemCodes {
        method: Method,
        path: String,
        status: String,
    },
}

impl fmt::Display for RouteMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteMismatch::Undocumented { method, path } => {
                write!(f, "{method} {path} is routed but not documented")
            }
            RouteMismatch::Unrouted { method, path } => {
                write!(f, "{method} {path} is documented but not routed")
            }
            RouteMismatch::NoProblemCodes {
                method,
                path,
                status,
            } => write!(
                f,
                "{method} {path} documents a {status} without problem codes"
            ),
        }
    }
}

/// Every disagreement between `router`'s routes and its own document.
pub async fn route_mismatches(router: OpenApiRouter) -> Vec<RouteMismatch> {
    let (router, document) = router.split_for_parts();
    let mut mismatches = Vec::new();

    for path in document.paths.paths.keys() {
        let documented: BTreeSet<String> = documented_operations_of(&document, path);
        let routed = routed_methods(&router, path).await;
        for method in &documented {
            if !routed.contains(method) {
                mismatches.push(RouteMismatch::Unrouted {
                    method: Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET),
                    path: path.clone(),
                });
            }
        }
        for method in &routed {
            // axum answers HEAD wherever it answers GET.
            let implied_head = method == "HEAD" && routed.contains("GET");
            if !documented.contains(method) && !implied_head {
                mismatches.push(RouteMismatch::Undocumented {
                    method: method.clone(),
                    path: path.clone(),
                });
            }
        }
    }

    for (method, path) in documented_operations(&document) {
        let Some(operation) = operation(&document, &method, &path) else {
            continue;
        };
        for (status, response) in &operation.responses.responses {
            let is_error = status.starts_with('4') || status.starts_with('5');
            let listed = match response {
                RefOr::T(response) => response
                    .extensions
                    .as_ref()
                    .and_then(|ext| ext.get(PROBLEM_CODES_EXTENSION))
                    .and_then(|codes| codes.as_array())
                    .is_some_and(|codes| !codes.is_empty()),
                RefOr::Ref(_) => true,
            };
            if is_error && !listed {
                mismatches.push(RouteMismatch::NoProblemCodes {
                    method: method.clone(),
                    path: path.clone(),
                    status: status.clone(),
                });
            }
        }
    }
    mismatches
}

/// Fails the test, listing every disagreement, unless `router` and its
/// document agree.
pub async fn assert_routes_match_documentation(router: OpenApiRouter) {
    let mismatches = route_mismatches(router).await;
    assert!(
        mismatches.is_empty(),
        "the router and its OpenAPI document disagree:\n{}",
        mismatches
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn documented_operations_of(document: &utoipa::openapi::OpenApi, path: &str) -> BTreeSet<String> {
    documented_operations(document)
        .into_iter()
        .filter(|(_, documented)| documented == path)
        .map(|(method, _)| method.as_str().to_owned())
        .collect()
}

fn operation<'a>(
    document: &'a utoipa::openapi::OpenApi,
    method: &Method,
    path: &str,
) -> Option<&'a utoipa::openapi::path::Operation> {
    let item = document.paths.paths.get(path)?;
    match *method {
        Method::GET => item.get.as_ref(),
        Method::PUT => item.put.as_ref(),
        Method::POST => item.post.as_ref(),
        Method::DELETE => item.delete.as_ref(),
        Method::OPTIONS => item.options.as_ref(),
        Method::HEAD => item.head.as_ref(),
        Method::PATCH => item.patch.as_ref(),
        Method::TRACE => item.trace.as_ref(),
        _ => None,
    }
}

/// The methods `router` serves at `template` (its `{param}`s filled in),
/// read from the `Allow` header of a 405 to a method nobody serves.
async fn routed_methods(router: &axum::Router, template: &str) -> BTreeSet<String> {
    let path: String = template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "probe"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    let Ok(method) = Method::from_bytes(b"PROBE") else {
        return BTreeSet::new();
    };
    let Ok(request) = Request::builder()
        .method(method)
        .uri(&path)
        .body(Body::empty())
    else {
        return BTreeSet::new();
    };
    let Ok(response) = router.clone().oneshot(request).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return BTreeSet::new();
    }
    response
        .headers()
        .get_all(header::ALLOW)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|method| method.trim().to_owned())
        .filter(|method| !method.is_empty())
        .collect()
}
