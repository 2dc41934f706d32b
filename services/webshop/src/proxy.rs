//! The public API on the webshop's origin: `/v1/...` is forwarded by its
//! first path segment to the service that owns it (DESIGN §3), with the
//! method, query, body and the caller's own headers (`Authorization`,
//! `Idempotency-Key`, content type, webhook signatures), and the service's
//! answer comes back as it was given.
//!
//! The webshop adds nothing and checks nothing here: each service
//! authenticates and validates its own requests. The session cookie is not
//! passed on (it means something to the webshop only), and redirects are
//! handed to the caller rather than followed.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, Method, Uri};
use axum::response::{IntoResponse, Response};
use fleet::Service;
use http_service::Problem;

use crate::api::Api;

/// The first segment after `/v1/` and the service that owns it.
const OWNERS: &[(&str, Service)] = &[
    ("businesses", fleet::CATALOG),
    ("offerings", fleet::CATALOG),
    ("cart", fleet::CART),
    ("carts", fleet::CART),
    ("checkouts", fleet::CHECKOUT),
    ("points", fleet::USER_POINTS),
    ("payments", fleet::PAYMENT_GATEWAY),
    ("webhooks", fleet::PAYMENT_GATEWAY),
    ("orders", fleet::ORDER),
    ("dispatch", fleet::DISPATCHER),
    ("notifications", fleet::NOTIFICATION),
];

/// The service that answers `path` (`/v1/orders/…` → order).
pub fn owner(path: &str) -> Option<Service> {
    let rest = path.strip_prefix("/v1/")?;
    let segment = rest.split('/').next().unwrap_or_default();
    OWNERS
        .iter()
        .find(|(prefix, _)| *prefix == segment)
        .map(|(_, service)| *service)
}

/// Headers that describe one connection, not the request (RFC 9110 §7.6.1),
/// and those the HTTP client or server sets itself.
const NOT_FORWARDED: &[HeaderName] = &[
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
    header::HOST,
    header::CONTENT_LENGTH,
];

fn forwarded(name: &HeaderName) -> bool {
    !NOT_FORWARDED.contains(name) && name.as_str() != "keep-alive"
}

/// Forwards one request; see the module documentation.
#[tracing::instrument(skip_all, fields(%method, path = %uri.path(), service = tracing::field::Empty))]
pub async fn forward(
    State(api): State<Api>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(service) = owner(uri.path()) else {
        return Problem::not_found(format!("No service answers {}.", uri.path())).into_response();
    };
    tracing::Span::current().record("service", service.name);
    let body = match body {
        Ok(body) => body,
        // The only reason a body is refused here is its size (1 MiB).
        Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            return Problem::payload_too_large().into_response()
        }
        Err(rejection) => {
            return Problem::bad_request("invalid_body", rejection.body_text()).into_response()
        }
    };
    let Some(base) = api.peers().of(&service) else {
        return unavailable(service);
    };
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let url = format!("{}{path_and_query}", base.as_str().trim_end_matches('/'));

    let mut request = api.http().request(method, url);
    for (name, value) in &headers {
        if forwarded(name) && name != header::COOKIE {
            request = request.header(name, value);
        }
    }
    let answer = match request.body(body).send().await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(service = service.name, error = %error, "service unavailable");
            return unavailable(service);
        }
    };
    let status = answer.status();
    let mut response_headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if forwarded(name) {
            response_headers.append(name, value.clone());
        }
    }
    let bytes = match answer.bytes().await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(service = service.name, error = %error, "service's answer was cut off");
            return unavailable(service);
        }
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    response
}

fn unavailable(service: Service) -> Response {
    Problem::service_unavailable(
        "dependency_unavailable",
        format!(
            "The {} service is unavailable; try again shortly.",
            service.name
        ),
    )
    .with("service", service.name)
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_public_prefix_goes_to_the_service_that_owns_it() {
        let cases = [
            ("/v1/offerings", "catalog"),
            ("/v1/businesses/1", "catalog"),
            ("/v1/cart/items/1", "cart"),
            ("/v1/carts/1", "cart"),
            ("/v1/checkouts/quote", "checkout"),
            ("/v1/points/balance", "user-points"),
            ("/v1/payments/sandbox/authentications/1", "payment-gateway"),
            ("/v1/webhooks/stripe", "payment-gateway"),
            ("/v1/orders", "order"),
            ("/v1/dispatch/orders/1/confirm", "dispatcher"),
            ("/v1/notifications", "notification"),
        ];
        for (path, service) in cases {
            assert_eq!(owner(path).map(|s| s.name), Some(service), "{path}");
        }
    }

    #[test]
    fn a_prefix_no_service_owns_goes_nowhere() {
        assert_eq!(owner("/v1/ordersx"), None);
        assert_eq!(owner("/v1/"), None);
        assert_eq!(owner("/v2/orders"), None);
    }
}
