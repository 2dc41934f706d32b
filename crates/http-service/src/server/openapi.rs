//! The OpenAPI 3.1 document, generated from the code: handlers carry
//! `#[utoipa::path]`, request and response types derive `ToSchema` /
//! `IntoParams`, and services register them with [`OpenApiRouter`] and
//! [`routes!`](crate::server::routes), so a route and its documentation are
//! declared together.
//!
//! What is the same in every document is added here: the bearer JWT scheme
//! (required unless an operation says `security(())`), the `Problem` schema,
//! and on each 4xx/5xx response the problem+json body and the stable codes it
//! can carry, taken from the service's error table and the shared edge's.

use std::collections::BTreeSet;

use axum::http::Method;
use utoipa::{
    openapi::{
        content::Content,
        extensions::Extensions,
        path::{Operation, ParameterIn, PathItem},
        response::Response,
        schema::{ObjectBuilder, Schema, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
        Components, Info, OpenApi, RefOr,
    },
    PartialSchema, ToSchema,
};
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ProblemCode, EDGE_CODES};
use crate::problem::{Problem, PROBLEM_CONTENT_TYPE};

/// The name of the security scheme every document declares.
pub const BEARER_SCHEME: &str = "bearer";

/// The extension that lists, on an error response, the `code`s it can carry.
pub const PROBLEM_CODES_EXTENSION: &str = "x-problem-codes";

/// Finishes a service's documented router: the document's title and
/// version, and the problem codes of each error response from `codes` (the
/// service's `ErrorTable::CODES`) and the shared edge's.
///
/// ```ignore
/// pub fn router(state: ServiceState) -> OpenApiRouter {
///     let routes = OpenApiRouter::new().merge(balance::router()).with_state(state);
///     service_api(routes, "user-points", env!("CARGO_PKG_VERSION"), ApiError::CODES)
/// }
/// ```
pub fn service_api<S>(
    mut router: OpenApiRouter<S>,
    title: &str,
    version: &str,
    codes: &[ProblemCode],
) -> OpenApiRouter<S>
where
    S: Send + Sync + Clone + 'static,
{
    let doc = router.get_openapi_mut();
    doc.info = Info::new(title, version);
    document_edge_responses(doc);
    document_problems(doc, codes);
    router
}

/// Adds to every operation of `doc` the error responses the shared edge
/// gives before or around its handler, where the handler does not list
/// them itself: with a body, 400 (malformed), 413, 415 and 422 (invalid);
/// with query parameters or an `Idempotency-Key`, 400; with path
/// parameters, 404 (a value that is no id of anything); with a bearer
/// token required, 401; and 503 everywhere (overloaded, timed out, the
/// database busy). A client, or a fuzzer, reading the document then meets
/// no status it does not announce.
pub fn document_edge_responses(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for (_, operation) in operations_mut(item) {
            let parameters = operation.parameters.as_deref().unwrap_or_default();
            let has = |place: ParameterIn| {
                parameters
                    .iter()
                    .any(|parameter| parameter.parameter_in == place)
            };
            let (query, path, header) = (
                has(ParameterIn::Query),
                has(ParameterIn::Path),
                has(ParameterIn::Header),
            );
            // `security(())` on an operation makes it public: one empty requirement.
            let public = operation.security.as_ref().is_some_and(|requirements| {
                requirements.iter().all(|requirement| {
                    serde_json::to_value(requirement)
                        .is_ok_and(|value| value.as_object().is_some_and(|map| map.is_empty()))
                })
            });
            let mut edge = vec![(
                503,
                "The service is overloaded, timed out or its database busy",
            )];
            if operation.request_body.is_some() {
                edge.extend([
                    (400, "The body is not well-formed JSON"),
                    (413, "The body is over the size limit"),
                    (415, "The body is not `application/json`"),
                    (422, "The body is well-formed but invalid"),
                ]);
            }
            if query || header {
                edge.push((400, "A query parameter or header is malformed"));
            }
            if path {
                edge.push((404, "Nothing exists at this path"));
            }
            if !public {
                edge.push((401, "No valid bearer token"));
            }
            let responses = &mut operation.responses.responses;
            for (status, description) in edge {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::T(Response::new(description)));
            }
        }
    }
}

/// Gives every 4xx and 5xx response of `doc` the problem+json body and lists
/// the codes of that status (from `codes` and the shared edge's) in its
/// description and in `x-problem-codes`. Responses that list theirs already
/// are left alone, so it may run more than once.
pub fn document_problems(doc: &mut OpenApi, codes: &[ProblemCode]) {
    for item in doc.paths.paths.values_mut() {
        for (_, operation) in operations_mut(item) {
            for (status, response) in operation.responses.responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                let Ok(status) = status.parse::<u16>() else {
                    continue;
                };
                if status < 400
                    || response
                        .extensions
                        .as_ref()
                        .is_some_and(|ext| ext.contains_key(PROBLEM_CODES_EXTENSION))
                {
                    continue;
                }
                let listed: BTreeSet<&str> = codes
                    .iter()
                    .chain(EDGE_CODES)
                    .filter(|row| row.status.as_u16() == status)
                    .map(|row| row.code)
                    .collect();
                let listed: Vec<&str> = listed.into_iter().collect();
                let named = listed
                    .iter()
                    .map(|code| format!("`{code}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                response.description = match response.description.trim() {
                    "" => format!("Problem codes: {named}."),
                    text => format!("{text} (problem codes: {named})"),
                };
                response.content.clear();
                response.content.insert(
                    PROBLEM_CONTENT_TYPE.to_owned(),
                    Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        Problem::name(),
                    )))),
                );
                response
                    .extensions
                    .get_or_insert_with(Extensions::default)
                    .insert(PROBLEM_CODES_EXTENSION.to_owned(), listed.into());
            }
        }
    }
}

/// Adds what every served document has: the bearer JWT scheme as the
/// default requirement and the `Problem` schema.
pub fn complete(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Components::new);
    components.add_security_scheme(
        BEARER_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    components
        .schemas
        .insert(Problem::name().into_owned(), Problem::schema());
    doc.security = Some(vec![SecurityRequirement::new(
        BEARER_SCHEME,
        Vec::<String>::new(),
    )]);
}

/// Each `(method, path)` the document describes.
pub fn documented_operations(doc: &OpenApi) -> Vec<(Method, String)> {
    let mut operations = Vec::new();
    for (path, item) in &doc.paths.paths {
        let mut item = item.clone();
        for (method, _) in operations_mut(&mut item) {
            operations.push((method, path.clone()));
        }
    }
    operations
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (Method, &mut Operation)> {
    [
        (Method::GET, item.get.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
        (Method::OPTIONS, item.options.as_mut()),
        (Method::HEAD, item.head.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
        (Method::TRACE, item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
}

impl PartialSchema for Problem {
    fn schema() -> RefOr<Schema> {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        ObjectBuilder::new()
            .description(Some(
                "RFC 9457 problem details; `code` is stable and machine-readable.",
            ))
            .property(
                "type",
                string().format(Some(utoipa::openapi::SchemaFormat::Custom(
                    "uri".to_owned(),
                ))),
            )
            .property("title", string())
            .property("status", ObjectBuilder::new().schema_type(Type::Integer))
            .property("detail", string())
            .property("code", string())
            .required("type")
            .required("title")
            .required("status")
            .required("detail")
            .required("code")
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(true),
            ))
            .into()
    }
}

impl ToSchema for Problem {
    fn name() -> std::borrow::Cow<'static, str> {
        "Problem".into()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use serde_json::Value;

    #[utoipa::path(
        put,
        path = "/carts/me/items/{offering_id}",
        params(("offering_id" = uuid::Uuid, Path, description = "The offering")),
        responses(
            (status = OK, description = "The cart"),
            (status = UNPROCESSABLE_ENTITY, description = "Invalid quantity"),
            (status = CONFLICT),
        )
    )]
    async fn set_quantity() {}

    const CART_CODES: &[ProblemCode] = &[
        ProblemCode::new(StatusCode::CONFLICT, "offering_unavailable"),
        ProblemCode::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_quantity"),
    ];

    #[test]
    fn error_responses_are_problems_listing_their_codes() {
        let router: OpenApiRouter = OpenApiRouter::new().routes(utoipa_axum::routes!(set_quantity));
        let mut router = service_api(router, "cart", "0.1.0", CART_CODES);
        // Twice changes nothing.
        document_problems(router.get_openapi_mut(), CART_CODES);
        let mut doc = router.into_openapi();
        complete(&mut doc);
        let doc: Value = serde_json::to_value(&doc).unwrap();

        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "cart");
        let put = &doc["paths"]["/carts/me/items/{offering_id}"]["put"];
        assert_eq!(put["parameters"][0]["name"], "offering_id");
        let invalid = &put["responses"]["422"];
        assert_eq!(
            invalid["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        assert_eq!(
            invalid["x-problem-codes"],
            serde_json::json!(["invalid_body", "invalid_pagination", "invalid_quantity"])
        );
        assert_eq!(
            invalid["description"],
            "Invalid quantity (problem codes: `invalid_body`, `invalid_pagination`, `invalid_quantity`)"
        );
        assert_eq!(
            put["responses"]["409"]["description"],
            "Problem codes: `offering_unavailable`."
        );
        assert!(put["responses"]["200"].get("x-problem-codes").is_none());
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
        assert_eq!(
            doc["components"]["schemas"]["Problem"]["required"],
            serde_json::json!(["type", "title", "status", "detail", "code"])
        );
    }
}
