//! A small OpenAPI 3.1 document builder. Every document already describes
//! the operational endpoints, the bearer security scheme and the Problem
//! schema; services add their own paths.
//!
//! It is deliberately a builder of plain JSON rather than a derive-based
//! generator: the documents stay short, and the service's request types do
//! not need extra derives.

use std::collections::BTreeMap;

use axum::http::Method;
use serde_json::{json, Map, Value};

/// One operation under a path.
#[derive(Debug, Clone)]
pub struct Operation {
    summary: String,
    public: bool,
    request_body: Option<Value>,
    responses: BTreeMap<u16, Value>,
}

impl Operation {
    pub fn new(summary: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
            public: false,
            request_body: None,
            responses: BTreeMap::new(),
        }
    }

    /// Marks the operation as callable without a token.
    pub fn public(mut self) -> Self {
        self.public = true;
        self
    }

    /// A JSON request body described by `schema` (e.g. a `$ref`).
    pub fn request_body(mut self, schema: Value) -> Self {
        self.request_body = Some(schema);
        self
    }

    /// A response without a described body; 4xx and 5xx responses are
    /// described as problem+json automatically.
    pub fn response(mut self, status: u16, description: &str) -> Self {
        let response = if status >= 400 {
            json!({
                "description": description,
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
            })
        } else {
            json!({ "description": description })
        };
        self.responses.insert(status, response);
        self
    }

    /// A response with a JSON body described by `schema`.
    pub fn response_with(mut self, status: u16, description: &str, schema: Value) -> Self {
        self.responses.insert(
            status,
            json!({
                "description": description,
                "content": {"application/json": {"schema": schema}}
            }),
        );
        self
    }

    fn to_json(&self, path: &str) -> Value {
        let mut operation = Map::new();
        operation.insert("summary".to_owned(), Value::String(self.summary.clone()));
        let parameters = path_parameters(path);
        if !parameters.is_empty() {
            operation.insert("parameters".to_owned(), Value::Array(parameters));
        }
        if let Some(schema) = &self.request_body {
            operation.insert(
                "requestBody".to_owned(),
                json!({"required": true, "content": {"application/json": {"schema": schema}}}),
            );
        }
        let mut responses: Map<String, Value> = self
            .responses
            .iter()
            .map(|(status, response)| (status.to_string(), response.clone()))
            .collect();
        if responses.is_empty() {
            responses.insert("200".to_owned(), json!({"description": "OK"}));
        }
        operation.insert("responses".to_owned(), Value::Object(responses));
        // The document-wide requirement is the bearer token; an empty list
        // here lifts it.
        if self.public {
            operation.insert("security".to_owned(), json!([]));
        }
        Value::Object(operation)
    }
}

/// `{name}` segments become required string path parameters, which OpenAPI
/// insists on declaring. axum 0.8 uses the same template syntax.
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
        })
        .collect()
}

/// An OpenAPI 3.1 document under construction.
#[derive(Debug, Clone)]
pub struct OpenApi {
    title: String,
    version: String,
    description: Option<String>,
    paths: BTreeMap<String, BTreeMap<String, Value>>,
    schemas: Map<String, Value>,
}

impl OpenApi {
    /// A document that already lists `/healthz`, `/readyz`, `/metrics` and
    /// `/openapi.json`, the bearer scheme and the Problem schema.
    pub fn new(title: impl Into<String>, version: impl Into<String>) -> Self {
        let mut schemas = Map::new();
        schemas.insert("Problem".to_owned(), problem_schema());
        Self {
            title: title.into(),
            version: version.into(),
            description: None,
            paths: BTreeMap::new(),
            schemas,
        }
        .operation(
            Method::GET,
            "/healthz",
            Operation::new("Liveness: the process serves HTTP")
                .public()
                .response_with(200, "Alive", json!({"type": "object"})),
        )
        .operation(
            Method::GET,
            "/readyz",
            Operation::new("Readiness: every dependency answered")
                .public()
                .response_with(200, "Ready", json!({"type": "object"}))
                .response(503, "A dependency is not reachable"),
        )
        .operation(
            Method::GET,
            "/metrics",
            Operation::new("Prometheus metrics in text exposition format")
                .public()
                .response(200, "Metrics"),
        )
        .operation(
            Method::GET,
            "/openapi.json",
            Operation::new("This document").public().response_with(
                200,
                "OpenAPI 3.1 document",
                json!({"type": "object"}),
            ),
        )
    }

    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Shorthand for an authenticated operation with undescribed bodies:
    /// `.path(Method::GET, "/carts/me", "The caller's cart", &[(200, "The cart"), (401, "No token")])`.
    pub fn path(
        self,
        method: Method,
        path: &str,
        summary: &str,
        responses: &[(u16, &str)],
    ) -> Self {
        let operation = responses.iter().fold(
            Operation::new(summary),
            |operation, (status, description)| operation.response(*status, description),
        );
        self.operation(method, path, operation)
    }

    pub fn operation(mut self, method: Method, path: &str, operation: Operation) -> Self {
        let rendered = operation.to_json(path);
        self.paths
            .entry(path.to_owned())
            .or_default()
            .insert(method.as_str().to_ascii_lowercase(), rendered);
        self
    }

    /// Adds a schema under `#/components/schemas/<name>`.
    pub fn schema(mut self, name: impl Into<String>, schema: Value) -> Self {
        self.schemas.insert(name.into(), schema);
        self
    }

    pub fn to_json(&self) -> Value {
        let mut info = Map::new();
        info.insert("title".to_owned(), Value::String(self.title.clone()));
        info.insert("version".to_owned(), Value::String(self.version.clone()));
        if let Some(description) = &self.description {
            info.insert("description".to_owned(), Value::String(description.clone()));
        }
        let paths: Map<String, Value> = self
            .paths
            .iter()
            .map(|(path, operations)| {
                let operations: Map<String, Value> = operations
                    .iter()
                    .map(|(method, operation)| (method.clone(), operation.clone()))
                    .collect();
                (path.clone(), Value::Object(operations))
            })
            .collect();
        json!({
            "openapi": "3.1.0",
            "info": info,
            "paths": paths,
            "components": {
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                },
                "schemas": self.schemas,
            },
            "security": [{"bearer": []}],
        })
    }
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details; `code` is stable and machine-readable.",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string"}
        },
        "additionalProperties": true
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn service_paths_join_the_operational_ones() {
        let doc = OpenApi::new("cart", "0.1.0")
            .path(
                Method::PUT,
                "/carts/me/items/{offering_id}",
                "Set an item's quantity",
                &[(200, "The cart"), (422, "Invalid quantity")],
            )
            .to_json();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/healthz"]["get"].is_object());
        let put = &doc["paths"]["/carts/me/items/{offering_id}"]["put"];
        assert_eq!(put["parameters"][0]["name"], "offering_id");
        assert_eq!(
            put["responses"]["422"]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }
}
