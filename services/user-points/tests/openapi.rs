//! user-points's routes and its OpenAPI document agree: every route documented,
//! every documented operation routed, every error response naming its codes.

use test_harness::offline_state;

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_routed() {
    http_service::testing::assert_routes_match_documentation(user_points::http::router(
        offline_state(),
    ))
    .await;
}

#[tokio::test]
async fn error_responses_name_the_codes_of_the_error_table() {
    let document = user_points::http::router(offline_state()).into_openapi();
    let document = serde_json::to_value(&document).expect("document serializes");
    let awards = &document["paths"]["/v1/points/awards"]["post"];
    assert_eq!(
        awards["responses"]["422"]["x-problem-codes"],
        serde_json::json!([
            "idempotency_key_reused",
            "invalid_body",
            "invalid_pagination"
        ])
    );
    assert_eq!(
        awards["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/AwardRequest"
    );
    let ledger = &document["paths"]["/v1/points/ledger"]["get"];
    let params: Vec<&str> = ledger["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(params, ["limit", "cursor"]);
    assert_eq!(
        ledger["responses"]["422"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
}
