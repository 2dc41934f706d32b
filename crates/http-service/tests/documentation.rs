//! The check every service runs on its router and document, shown to catch
//! both directions of disagreement; and the operational endpoints passing it.

#![allow(clippy::unwrap_used)] // a test whose set-up fails should fail on the spot

use axum::routing::delete;
use http_service::testing::{route_mismatches, RouteMismatch};
use http_service::{routes, service_api, CommonRoutes, OpenApiRouter, ProblemCode};
use prometheus::Registry;
use reqwest::StatusCode;

const CODES: &[ProblemCode] = &[ProblemCode::new(StatusCode::CONFLICT, "item_exists")];

#[utoipa::path(
    get,
    path = "/items/{id}",
    params(("id" = uuid::Uuid, Path, description = "The item")),
    responses((status = OK, description = "The item"), (status = NOT_FOUND))
)]
async fn get_item() {}

#[utoipa::path(
    post,
    path = "/items",
    responses((status = CREATED, description = "Created"), (status = CONFLICT))
)]
async fn create_item() {}

async fn remove_item() {}

fn documented() -> OpenApiRouter {
    let routes = OpenApiRouter::new()
        .routes(routes!(get_item))
        .routes(routes!(create_item));
    service_api(routes, "items", "0.1.0", CODES)
}

#[tokio::test]
async fn a_router_declared_with_routes_matches_its_document() {
    assert_eq!(route_mismatches(documented()).await, vec![]);
}

#[tokio::test]
async fn an_undocumented_route_fails_the_check() {
    #[allow(clippy::disallowed_methods)] // the mistake under test
    let router = documented().route("/items/{id}", delete(remove_item));
    assert_eq!(
        route_mismatches(router).await,
        vec![RouteMismatch::Undocumented {
            method: "DELETE".to_owned(),
            path: "/items/{id}".to_owned()
        }]
    );
}

#[tokio::test]
async fn a_documented_operation_without_a_route_fails_the_check() {
    // A path documented by hand (or left over from a removed handler).
    let mut stale = OpenApiRouter::<()>::new().routes(routes!(get_item));
    let mut document = stale.to_openapi();
    let item = document.paths.paths.remove("/items/{id}").unwrap();
    document
        .paths
        .paths
        .insert("/archive/{id}".to_owned(), item);
    let mut router = documented();
    router.get_openapi_mut().merge(document);
    let router = service_api(router, "items", "0.1.0", CODES);

    assert_eq!(
        route_mismatches(router).await,
        vec![RouteMismatch::Unrouted {
            method: axum::http::Method::GET,
            path: "/archive/{id}".to_owned()
        }]
    );
}

#[tokio::test]
async fn an_error_response_without_problem_codes_fails_the_check() {
    // Not finished with `service_api`: no codes from any table.
    let router = OpenApiRouter::new().routes(routes!(create_item));
    assert_eq!(
        route_mismatches(router).await,
        vec![RouteMismatch::NoProblemCodes {
            method: axum::http::Method::POST,
            path: "/items".to_owned(),
            status: "409".to_owned()
        }]
    );
}

#[tokio::test]
async fn the_operational_endpoints_are_routed_as_documented() {
    let (_, service_doc) = documented().split_for_parts();
    let common = CommonRoutes::new(Registry::new(), service_doc).api();
    let (router, document) = common.split_for_parts();
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert!(document.paths.paths.contains_key(path), "{path}");
    }
    let operational = OpenApiRouter::from(router);
    let mut operational = operational;
    // Only the operational routes are in this router; check them against
    // their part of the document.
    let mut own = document.clone();
    own.paths
        .paths
        .retain(|path, _| !path.starts_with("/items"));
    *operational.get_openapi_mut() = own;
    assert_eq!(route_mismatches(operational).await, vec![]);
}

/// The check cannot see a route on a path the document never mentions;
/// services are kept from declaring one by clippy (`-D warnings`).
#[test]
fn services_may_not_declare_routes_outside_routes_macro() {
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../services/clippy.toml"
    ))
    .unwrap();
    for method in [
        "axum::routing::Router::route\"",
        "axum::routing::Router::route_service\"",
        "axum::routing::Router::nest_service\"",
        "utoipa_axum::router::OpenApiRouter::route\"",
        "utoipa_axum::router::OpenApiRouter::route_service\"",
        "utoipa_axum::router::OpenApiRouter::nest_service\"",
        "axum::routing::any\"",
    ] {
        let entry = format!("path = \"{method}");
        assert!(
            config.contains(&entry),
            "services/clippy.toml does not forbid {method}"
        );
    }
}
