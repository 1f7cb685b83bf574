//! The OpenAPI 3.1 document: generated from the handlers' annotations, then completed
//! here with what every operation shares (the problem document of each error status,
//! the bearer-token security), so that no handler can forget it.

use serde_json::{Value, json};

/// Operations that need no token.
const PUBLIC: &[&str] = &["/healthz", "/readyz", "/api/v1/openapi.json"];

/// The statuses of errors every authenticated operation can answer with, and why.
const COMMON_ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "The request is malformed or invalid; `detail` names the field",
    ),
    (
        "401",
        "No token, or a token that is unknown, revoked or expired",
    ),
    (
        "403",
        "The policy chain denied the action; `detail` names the policy and its reason",
    ),
    ("404", "The thing named in the path does not exist"),
    ("500", "The server failed; the cause is in its log"),
];

/// Extra error statuses by method.
fn method_errors(method: &str) -> &'static [(&'static str, &'static str)] {
    match method {
        "post" => &[
            ("409", "It exists already, or conflicts with what exists"),
            ("413", "The request body is too large"),
        ],
        "put" | "patch" => &[
            ("409", "It conflicts with what exists"),
            ("412", "`If-Match` does not name the current version"),
            ("413", "The request body is too large"),
        ],
        "delete" => &[("409", "It is still in use; `detail` names by what")],
        _ => &[],
    }
}

/// Completes the generated document: the problem schema, the security scheme, and on
/// every operation its error responses and security.
pub(crate) fn complete(openapi: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(openapi).expect("the OpenAPI document serializes");
    doc["openapi"] = json!("3.1.0");
    let problem = json!({
        "type": "object",
        "description": "An RFC 9457 problem document.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": { "type": "string", "description": "A URI naming the kind of problem" },
            "title": { "type": "string", "description": "The status's reason phrase" },
            "status": { "type": "integer", "description": "The HTTP status" },
            "detail": { "type": "string", "description": "What went wrong and what to fix" },
            "problems": {
                "type": "array",
                "description": "For invalid documents (Score files, deltas): every problem, with the JSON Pointer of the value at fault",
                "items": {
                    "type": "object",
                    "required": ["path", "message"],
                    "properties": { "path": { "type": "string" }, "message": { "type": "string" } }
                }
            }
        }
    });
    let components = doc
        .as_object_mut()
        .expect("an object")
        .entry("components")
        .or_insert_with(|| json!({}));
    components["schemas"]["Problem"] = problem;
    components["securitySchemes"]["bearer"] = json!({
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`wharf_...`), from `wharf login` or the tokens endpoint."
    });
    doc["security"] = json!([{ "bearer": [] }]);
    let paths = doc["paths"].as_object_mut().expect("paths is an object");
    paths.insert(
        "/api/v1/openapi.json".into(),
        json!({ "get": {
            "tags": ["health"],
            "summary": "This document.",
            "operationId": "getOpenApiDocument",
            "responses": { "200": {
                "description": "The OpenAPI 3.1 document of this API",
                "content": { "application/json": { "schema": { "type": "object" } } }
            } }
        } }),
    );
    // A component is raw bytes: documented as application/octet-stream, which generic
    // clients and generators know how to send (the server takes any content type, and
    // `application/wasm` is the natural one).
    if let Some(body) = paths
        .get_mut("/api/v1/plugins")
        .and_then(|p| p.pointer_mut("/post/requestBody"))
    {
        body["content"] = json!({ "application/octet-stream": {
            "schema": { "type": "string", "format": "binary" }
        } });
    }
    for (path, item) in paths.iter_mut() {
        let public = PUBLIC.contains(&path.as_str());
        for (method, op) in item.as_object_mut().expect("a path item").iter_mut() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let responses = op["responses"].as_object_mut().expect("responses");
            let errors: Vec<(&str, &str)> = if public {
                vec![("500", "The server failed; the cause is in its log")]
            } else {
                COMMON_ERRORS
                    .iter()
                    .chain(method_errors(method))
                    .copied()
                    .collect()
            };
            for (status, why) in errors {
                responses.entry(status).or_insert_with(|| {
                    json!({
                        "description": why,
                        "content": { "application/problem+json": {
                            "schema": { "$ref": "#/components/schemas/Problem" }
                        } }
                    })
                });
            }
            if public {
                op["security"] = json!([]);
            }
        }
    }
    doc
}
