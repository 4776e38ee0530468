#![allow(clippy::unwrap_used)]
use serde_json::Value;

use super::*;

const COMMITTED: &str = include_str!("../../../../docs/openapi.json");

#[test]
fn committed_document_is_up_to_date() {
    assert!(
        COMMITTED == openapi_json(),
        "docs/openapi.json is stale: regenerate it with \
         `cargo run -p sked-api --example openapi > docs/openapi.json`"
    );
}

#[test]
fn document_is_openapi_3_1_with_every_path() {
    let doc: Value = serde_json::from_str(&openapi_json()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/jobs", "post"),
        ("/v1/jobs", "get"),
        ("/v1/jobs/{id}", "get"),
        ("/v1/jobs/{id}", "put"),
        ("/v1/jobs/{id}", "delete"),
        ("/v1/jobs/{id}/pause", "post"),
        ("/v1/jobs/{id}/resume", "post"),
        ("/v1/jobs/{id}/trigger", "post"),
        ("/v1/jobs/{id}/backfill", "post"),
        ("/v1/jobs/{id}/reschedule", "post"),
        ("/v1/apps/{app}/pause", "post"),
        ("/v1/apps/{app}/resume", "post"),
        ("/v1/tenants/{tenant}/pause", "post"),
        ("/v1/tenants/{tenant}/resume", "post"),
        ("/v1/pauses", "get"),
        ("/v1/stats", "get"),
        ("/v1/schedules/preview", "post"),
        ("/v1/operations", "post"),
        ("/v1/operations", "get"),
        ("/v1/operations/{id}", "get"),
        ("/v1/operations/{id}/cancel", "post"),
        ("/v1/dlq", "get"),
        ("/v1/dlq/stats", "get"),
        ("/v1/dlq/{partition}/{offset}", "get"),
        ("/v1/dlq/replays", "post"),
        ("/v1/dlq/replays", "get"),
        ("/v1/dlq/replays/{id}", "get"),
        ("/v1/openapi.json", "get"),
    ] {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path} missing");
        let responses = op["responses"].as_object().unwrap();
        // Every error answer is the one error shape.
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
        for status in ["405", "429", "500", "503"] {
            assert!(
                responses.contains_key(status),
                "{method} {path} lacks {status}"
            );
        }
    }
    let put = &paths["/v1/jobs/{id}"]["put"]["responses"];
    assert!(put["412"].is_object() && put["409"].is_object() && put["413"].is_object());
}
