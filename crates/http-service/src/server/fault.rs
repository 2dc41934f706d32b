//! A planted fault for proving that the fleet's fuzzing catches a broken
//! handler: `HEYBLUE_FAULT_PANIC_ROUTE="<METHOD> <route>"` (the route as
//! the router declares it, e.g. `GET /v1/cart` or
//! `GET /v1/offerings/{id}`) makes that route panic before its handler
//! runs, so the catch-panic layer answers it `500 internal_error`.
//!
//! Only debug builds read the variable: release builds (the Docker image,
//! any deployment) compile this to nothing, so no setting can break a
//! production service. A debug service that honours it says so at WARN
//! when it starts.

use axum::{
    extract::{MatchedPath, Request},
    http::Method,
    middleware::Next,
    response::Response,
};

/// The variable that names the route to break.
pub const FAULT_PANIC_ROUTE_ENV: &str = "HEYBLUE_FAULT_PANIC_ROUTE";

/// The route the fault breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PanicRoute {
    method: Method,
    route: String,
}

impl PanicRoute {
    /// `GET /v1/cart` → the method and the route; anything else is `None`.
    fn parse(value: &str) -> Option<PanicRoute> {
        let (method, route) = value.trim().split_once(' ')?;
        let method = Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes()).ok()?;
        let route = route.trim();
        route.starts_with('/').then(|| PanicRoute {
            method,
            route: route.to_owned(),
        })
    }

    /// The fault [`FAULT_PANIC_ROUTE_ENV`] asks for, in a debug build.
    pub(crate) fn from_env() -> Option<PanicRoute> {
        if !cfg!(debug_assertions) {
            return None;
        }
        let value = std::env::var(FAULT_PANIC_ROUTE_ENV).ok()?;
        let fault = PanicRoute::parse(&value);
        match &fault {
            Some(fault) => tracing::warn!(
                method = %fault.method,
                route = %fault.route,
                "{FAULT_PANIC_ROUTE_ENV} is set: this route panics on purpose"
            ),
            None => tracing::warn!(
                value = %value,
                "{FAULT_PANIC_ROUTE_ENV} is not `<METHOD> <route>`; no fault planted"
            ),
        }
        fault
    }
}

/// Panics on the planted route; passes every other request on.
pub(crate) async fn panic_on_route(
    axum::extract::State(fault): axum::extract::State<PanicRoute>,
    request: Request,
    next: Next,
) -> Response {
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|path| path.as_str() == fault.route);
    if matched && request.method() == fault.method {
        panic!("planted fault: {} {}", fault.method, fault.route);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_names_a_method_and_a_route() {
        assert_eq!(
            PanicRoute::parse("get /v1/offerings/{id}"),
            Some(PanicRoute {
                method: Method::GET,
                route: "/v1/offerings/{id}".to_owned()
            })
        );
        assert_eq!(PanicRoute::parse("/v1/cart"), None);
        assert_eq!(PanicRoute::parse("GET v1/cart"), None);
    }
}
