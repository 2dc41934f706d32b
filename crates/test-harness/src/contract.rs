//! A service's answers checked against its own OpenAPI document, the one
//! it serves at `/openapi.json` (generated from its handlers): every answer
//! a black-box test gets through [`crate::Api`] must have a status the
//! document lists for that operation, a media type it lists for that
//! status, and a JSON body its schema accepts. A request the document does
//! not know may only be refused as the router refuses it (404, 405).
//!
//! A document that lists no operations (the webshop's: its pages are HTML
//! for browsers) checks nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jsonschema::Validator;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// One service's document, with the validators made from it so far.
pub struct Contract {
    document: Value,
    /// Schema validators by `(path template, method, status, media type)`.
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

impl std::fmt::Debug for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contract").finish_non_exhaustive()
    }
}

/// An answer, as far as the document speaks of it.
pub struct Answered<'a> {
    pub method: &'a Method,
    /// The request's path, with or without its query.
    pub path: &'a str,
    pub status: StatusCode,
    /// The `Content-Type` header, parameters included.
    pub content_type: &'a str,
    pub body: &'a str,
}

impl Contract {
    /// The contract of `document`; `None` when it lists no operation.
    pub fn new(document: Value) -> Option<Contract> {
        let operations = document["paths"].as_object().is_some_and(|paths| {
            paths
                .values()
                .any(|item| item.as_object().is_some_and(|item| !item.is_empty()))
        });
        operations.then(|| Contract {
            document,
            validators: Mutex::default(),
        })
    }

    /// Why `answer` breaks the document, or `None` when it keeps it.
    pub fn breach(&self, answer: &Answered<'_>) -> Option<String> {
        let path = answer.path.split('?').next().unwrap_or_default();
        let method = answer.method.as_str().to_ascii_lowercase();
        let Some((template, operation)) = self.operation(&method, path) else {
            return (!matches!(answer.status.as_u16(), 404 | 405)).then(|| {
                format!(
                    "{} {path} is in no operation of the document, yet answered {}",
                    answer.method, answer.status
                )
            });
        };
        let responses = &operation["responses"];
        let status = answer.status.as_u16();
        let class = format!("{}XX", status / 100);
        let Some(response) = [status.to_string(), class, "default".to_owned()]
            .iter()
            .find_map(|key| responses.get(key.as_str()))
        else {
            let listed: Vec<&String> = responses
                .as_object()
                .map(|r| r.keys().collect())
                .unwrap_or_default();
            return Some(format!(
                "{} {template} answered {status}, which the document does not list (it lists {listed:?})",
                answer.method
            ));
        };
        let response = self.resolve(response);
        // A response documented without content promises no body to check.
        let content = response["content"].as_object().filter(|c| !c.is_empty())?;
        let media = answer
            .content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        let Some(entry) = content.get(media) else {
            return Some(format!(
                "{} {template} answered {status} as {media:?}, the document has {:?}",
                answer.method,
                content.keys().collect::<Vec<_>>()
            ));
        };
        let is_json = media == "application/json" || media.ends_with("+json");
        if !is_json || entry.get("schema").is_none() {
            return None;
        }
        let body: Value = match serde_json::from_str(answer.body) {
            Ok(body) => body,
            Err(error) => {
                return Some(format!(
                "{} {template} answered {status} as {media} with a body that is not JSON: {error}",
                answer.method
            ))
            }
        };
        let key = format!("{template} {method} {status} {media}");
        let validator = match self.validator(&key, &entry["schema"]) {
            Ok(validator) => validator,
            Err(error) => {
                return Some(format!(
                    "the document's schema for {key} is broken: {error}"
                ))
            }
        };
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .take(3)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect();
        (!errors.is_empty()).then(|| {
            format!(
                "{} {template} answered {status} with a body its schema refuses: {}",
                answer.method,
                errors.join("; ")
            )
        })
    }

    /// The operation `method` of the path template that matches `path`:
    /// the one with the fewest parameters when several do.
    fn operation(&self, method: &str, path: &str) -> Option<(&str, &Value)> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        self.document["paths"]
            .as_object()?
            .iter()
            .filter_map(|(template, item)| {
                let parts: Vec<&str> = template.trim_end_matches('/').split('/').collect();
                let matches = parts.len() == segments.len()
                    && parts.iter().zip(&segments).all(|(part, segment)| {
                        part == segment || (part.starts_with('{') && !segment.is_empty())
                    });
                let operation = item.get(method)?;
                let parameters = parts.iter().filter(|part| part.starts_with('{')).count();
                matches.then_some((parameters, template.as_str(), operation))
            })
            .min_by_key(|(parameters, _, _)| *parameters)
            .map(|(_, template, operation)| (template, operation))
    }

    /// `value`, or what its `$ref` into this document points at.
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => self.document.pointer(pointer).unwrap_or(value),
            None => value,
        }
    }

    /// The validator of `schema`, whose `$ref`s point into this document's
    /// components.
    fn validator(&self, key: &str, schema: &Value) -> Result<Arc<Validator>, String> {
        let mut validators = self.validators.lock().expect("validators");
        if let Some(validator) = validators.get(key) {
            return Ok(validator.clone());
        }
        let mut rooted = match schema {
            Value::Object(schema) => schema.clone(),
            other => return Err(format!("not a schema object: {other}")),
        };
        rooted.insert("components".to_owned(), self.document["components"].clone());
        let validator = Arc::new(
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .build(&Value::Object(rooted))
                .map_err(|error| error.to_string())?,
        );
        validators.insert(key.to_owned(), validator.clone());
        Ok(validator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contract() -> Contract {
        Contract::new(json!({
            "paths": {
                "/v1/cart/items/{offering_id}": {
                    "put": {"responses": {
                        "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Cart"}}}},
                        "422": {"content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
                    }}
                },
                "/v1/cart/items/all": {"delete": {"responses": {"204": {"description": "emptied"}}}}
            },
            "components": {"schemas": {
                "Cart": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array"}}},
                "Problem": {"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}}
            }}
        }))
        .expect("a document with operations")
    }

    fn breach(method: Method, path: &str, status: u16, media: &str, body: &str) -> Option<String> {
        contract().breach(&Answered {
            method: &method,
            path,
            status: StatusCode::from_u16(status).expect("a status"),
            content_type: media,
            body,
        })
    }

    #[test]
    fn an_answer_as_documented_keeps_the_contract() {
        let cart = r#"{"items": []}"#;
        assert_eq!(
            breach(
                Method::PUT,
                "/v1/cart/items/42?x=1",
                200,
                "application/json",
                cart
            ),
            None
        );
        let problem = r#"{"code": "invalid_quantity"}"#;
        assert_eq!(
            breach(
                Method::PUT,
                "/v1/cart/items/42",
                422,
                "application/problem+json",
                problem
            ),
            None
        );
        assert_eq!(
            breach(Method::DELETE, "/v1/cart/items/all", 204, "", ""),
            None
        );
        assert_eq!(
            breach(
                Method::GET,
                "/v1/nowhere",
                404,
                "application/problem+json",
                "{}"
            ),
            None
        );
    }

    #[test]
    fn each_way_of_breaking_it_is_named() {
        let undocumented = breach(
            Method::PUT,
            "/v1/cart/items/42",
            409,
            "application/json",
            "{}",
        );
        assert!(undocumented.is_some_and(|b| b.contains("409")));
        let media = breach(Method::PUT, "/v1/cart/items/42", 200, "text/plain", "hi");
        assert!(media.is_some_and(|b| b.contains("text/plain")));
        let shape = breach(
            Method::PUT,
            "/v1/cart/items/42",
            200,
            "application/json",
            r#"{"items": 3}"#,
        );
        assert!(
            shape.is_some_and(|b| b.contains("/items")),
            "the field is named"
        );
        let unknown = breach(Method::GET, "/v1/nowhere", 200, "application/json", "{}");
        assert!(unknown.is_some_and(|b| b.contains("no operation")));
    }

    #[test]
    fn a_document_without_operations_checks_nothing() {
        assert!(Contract::new(json!({"paths": {}})).is_none());
    }
}
