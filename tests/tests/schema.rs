//! The schedule-request JSON Schema (`docs/schedule-request.schema.json`) and the parser
//! (`sked_core::request::parse`) agree on a corpus of requests (`tests/data/requests/`): each
//! case says whether it is schema-valid and parser-valid, and every case where the two differ
//! says why (`semantic`). Needs no service.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sked_core::request::{Limits, Origin, parse};

const SCHEMA: &str = include_str!("../../docs/schedule-request.schema.json");
const CORPUS: &str = include_str!("../data/requests/corpus.json");

#[test]
fn schema_and_parser_agree_on_the_corpus() {
    let schema: Value = serde_json::from_str(SCHEMA).expect("schema is JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("schema compiles");
    let corpus: Value = serde_json::from_str(CORPUS).expect("corpus is JSON");
    let cases = corpus["cases"].as_array().expect("cases");
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let now: DateTime<Utc> = "2026-06-10T10:00:00Z".parse().expect("now");
    let origin = Origin::new(now);
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let raw = match case.get("raw").and_then(Value::as_str) {
            Some(raw) => raw.to_owned(),
            None => case["request"].to_string(),
        };
        let value: Value = serde_json::from_str(&raw).expect("request is JSON");
        let schema_valid = validator.is_valid(&value);
        let parsed = parse(raw.as_bytes(), &Limits::default(), &origin);
        let want_schema = case["schema_valid"].as_bool().expect("schema_valid");
        let want_parser = case["parser_valid"].as_bool().expect("parser_valid");
        let semantic = case.get("semantic").and_then(Value::as_str);
        if (want_schema != want_parser) != semantic.is_some() {
            failures.push(format!(
                "{name}: mark a case `semantic` exactly when schema and parser differ"
            ));
        }
        if schema_valid != want_schema {
            let why: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| e.to_string())
                .collect();
            failures.push(format!(
                "{name}: schema says valid={schema_valid}, expected {want_schema} {why:?}"
            ));
        }
        match (&parsed, want_parser) {
            (Ok(_), false) => failures.push(format!("{name}: the parser accepted it")),
            (Err(e), true) => failures.push(format!("{name}: the parser rejected it: {e}")),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
