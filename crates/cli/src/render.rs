//! Human output of each command, made from the server's JSON answers or the topic outcomes.
//!
//! Answers are parsed leniently (unknown fields ignored, most fields optional) and a body of an
//! unexpected shape is an [`Error`], never a panic.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, value::RawValue};
use sked_core::kafka::topics::Outcome;

use crate::error::{Error, exit};

/// `POST /v1/jobs` answer.
#[derive(Debug, Deserialize)]
struct Submitted {
    id: String,
    status: String,
    #[serde(default)]
    due_at: Option<String>,
}

/// `DELETE /v1/jobs/{id}` answer.
#[derive(Debug, Deserialize)]
struct Cancelled {
    id: String,
    status: String,
}

/// `GET /v1/jobs/{id}` answer.
#[derive(Debug, Deserialize)]
struct JobView {
    id: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    next_due: Option<String>,
    #[serde(default)]
    job: Option<JobSpec>,
    #[serde(default)]
    run: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct JobSpec {
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    schedule: Option<Value>,
    /// Kept raw, so numbers and strings print as they were submitted.
    #[serde(default)]
    payload: Option<Box<RawValue>>,
}

fn parse<'a, T: Deserialize<'a>>(body: &'a str) -> Result<T, Error> {
    serde_json::from_str(body).map_err(|e| {
        Error::new(
            exit::FAILURE,
            format!("unexpected answer from the sked API: {e}"),
        )
    })
}

/// `created job <id>, due <time>`, `updated job <id>, due <time>`, `duplicate of job <id>`.
pub fn submitted(body: &str) -> Result<String, Error> {
    let s: Submitted = parse(body)?;
    let due = s.due_at.map(|d| format!(", due {d}")).unwrap_or_default();
    Ok(match s.status.as_str() {
        "duplicate" => format!("duplicate of job {}\n", s.id),
        status => format!("{status} job {}{due}\n", s.id),
    })
}

/// `cancelled job <id>` or `job <id> was already cancelled`.
pub fn cancelled(body: &str) -> Result<String, Error> {
    let c: Cancelled = parse(body)?;
    Ok(match c.status.as_str() {
        "already_cancelled" => format!("job {} was already cancelled\n", c.id),
        status => format!("{status} job {}\n", c.id),
    })
}

/// Aligned `key: value` lines: id, app, state, next due, schedule, payload (raw JSON).
pub fn job(body: &str) -> Result<String, Error> {
    let view: JobView = parse(body)?;
    let spec = view.job.as_ref();
    let lines = [
        ("id", view.id.clone()),
        (
            "app",
            spec.and_then(|j| j.app.clone())
                .unwrap_or_else(|| "-".to_owned()),
        ),
        (
            "state",
            view.state.clone().unwrap_or_else(|| "-".to_owned()),
        ),
        (
            "next due",
            view.next_due.clone().unwrap_or_else(|| "none".to_owned()),
        ),
        (
            "schedule",
            spec.and_then(|j| j.schedule.as_ref())
                .map_or_else(|| "-".to_owned(), schedule),
        ),
        (
            "run",
            view.run.as_ref().map_or_else(|| "none yet".to_owned(), run),
        ),
        (
            "payload",
            spec.and_then(|j| j.payload.as_deref())
                .map_or("null", RawValue::get)
                .to_owned(),
        ),
    ];
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    Ok(lines
        .iter()
        .map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:")))
        .collect())
}

/// `succeeded (attempt 2, 12 ms)`, `dead (attempt 3, 5 ms): <last error>`.
fn run(r: &Value) -> String {
    if r.is_null() {
        return "none yet".to_owned();
    }
    let state = r.get("state").and_then(Value::as_str).unwrap_or("?");
    let mut out = format!(
        "{state} (attempt {}",
        r.get("attempts").and_then(Value::as_u64).unwrap_or(0)
    );
    if let Some(ms) = r.get("last_duration_ms").and_then(Value::as_u64) {
        out.push_str(&format!(", {ms} ms"));
    }
    match r.get("last_error").and_then(Value::as_str) {
        Some(err) if state == "succeeded" => {
            out.push_str(&format!("; an earlier attempt failed: {err})"))
        }
        Some(err) => out.push_str(&format!("): {err}")),
        None => out.push(')'),
    }
    out
}

/// `once at <t>`, `cron "<expr>" in <tz>`, `every 1h`, with bounds; else the JSON as sent.
fn schedule(s: &Value) -> String {
    let text = |key: &str| s.get(key).and_then(Value::as_str);
    let mut out = match text("kind") {
        Some("once") => match text("at") {
            Some(at) => format!("once at {at}"),
            None => return s.to_string(),
        },
        Some("cron") => match (text("expr"), text("tz")) {
            (Some(expr), Some(tz)) => format!("cron \"{expr}\" in {tz}"),
            (Some(expr), None) => format!("cron \"{expr}\""),
            _ => return s.to_string(),
        },
        Some("every") => match s.get("interval_ms").and_then(Value::as_u64) {
            Some(ms) => format!(
                "every {}",
                humantime::format_duration(Duration::from_millis(ms))
            ),
            None => return s.to_string(),
        },
        _ => return s.to_string(),
    };
    if let Some(start) = text("start_at") {
        out.push_str(&format!(", from {start}"));
    }
    if let Some(end) = text("end_at") {
        out.push_str(&format!(", until {end}"));
    }
    if let Some(n) = s.get("max_runs").and_then(Value::as_u64) {
        out.push_str(&format!(", at most {n} runs"));
    }
    out
}

/// One line per topic: `created sked.due (12 partitions)`, `exists sked.ingest (12
/// partitions)`, `exists sked.dlq with 3 partitions, config says 12: left unchanged`.
pub fn topics(outcomes: &[(String, Outcome)]) -> String {
    outcomes
        .iter()
        .map(|(topic, outcome)| match outcome {
            Outcome::Created { partitions } => format!("created {topic} ({partitions} partitions)\n"),
            Outcome::Exists { partitions } => format!("exists {topic} ({partitions} partitions)\n"),
            Outcome::ExistsWithOtherPartitions { partitions, configured } => {
                format!("exists {topic} with {partitions} partitions, config says {configured}: left unchanged\n")
            }
        })
        .collect()
}

/// One topic's outcome as JSON: `{"topic": "sked.due", "outcome": "created", "partitions": 12}`.
#[derive(Debug, serde::Serialize)]
struct TopicJson<'a> {
    topic: &'a str,
    #[serde(flatten)]
    outcome: &'a Outcome,
}

/// The outcomes as a JSON array, one object per topic.
pub fn topics_json(outcomes: &[(String, Outcome)]) -> Result<String, Error> {
    let items: Vec<TopicJson<'_>> = outcomes
        .iter()
        .map(|(topic, outcome)| TopicJson { topic, outcome })
        .collect();
    serde_json::to_string_pretty(&items)
        .map(|s| s + "\n")
        .map_err(|e| Error::new(exit::FAILURE, format!("cannot encode the outcomes: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = r#"{"n": 12345, "big": 12345678901234567890, "s": "héllo ✓"}"#;

    #[test]
    fn submit_answers() {
        let created = r#"{"id":"a","status":"created","due_at":"2026-11-23T10:00:00Z"}"#;
        assert_eq!(
            submitted(created).unwrap(),
            "created job a, due 2026-11-23T10:00:00Z\n"
        );
        let updated = r#"{"id":"a","status":"updated","due_at":"2026-11-23T10:00:00Z"}"#;
        assert_eq!(
            submitted(updated).unwrap(),
            "updated job a, due 2026-11-23T10:00:00Z\n"
        );
        assert_eq!(
            submitted(r#"{"id":"b","status":"duplicate"}"#).unwrap(),
            "duplicate of job b\n"
        );
    }

    #[test]
    fn cancel_answers() {
        assert_eq!(
            cancelled(r#"{"id":"a","status":"cancelled"}"#).unwrap(),
            "cancelled job a\n"
        );
        assert_eq!(
            cancelled(r#"{"id":"a","status":"already_cancelled"}"#).unwrap(),
            "job a was already cancelled\n"
        );
    }

    #[test]
    fn job_lines_are_aligned_and_payload_raw() {
        let body = format!(
            r#"{{"id":"r1","state":"pending","next_due":"2026-11-23T04:00:00Z","job":{{"id":"r1","app":"sms",
            "payload":{PAYLOAD},"schedule":{{"kind":"cron","expr":"0 10 * * *","tz":"Asia/Dhaka","misfire":"fire_once"}},
            "first_due":"2026-11-23T04:00:00Z","priority":"normal","labels":{{}},"format":"native"}}}}"#
        );
        let out = job(&body).unwrap();
        assert_eq!(
            out,
            format!(
                "id:       r1\napp:      sms\nstate:    pending\nnext due: 2026-11-23T04:00:00Z\n\
                 schedule: cron \"0 10 * * *\" in Asia/Dhaka\nrun:      none yet\npayload:  {PAYLOAD}\n"
            )
        );
        let dead = body.replacen(
            r#""id":"r1","state""#,
            r#""id":"r1","run":{"state":"dead","attempts":3,"last_error":"http status 500","last_duration_ms":12},"state""#,
            1,
        );
        assert!(
            job(&dead)
                .unwrap()
                .contains("run:      dead (attempt 3, 12 ms): http status 500\n")
        );
    }

    #[test]
    fn schedules_read_well() {
        let v = |s: &str| schedule(&serde_json::from_str(s).unwrap());
        assert_eq!(
            v(r#"{"kind":"once","at":"2026-01-01T00:00:00Z"}"#),
            "once at 2026-01-01T00:00:00Z"
        );
        assert_eq!(
            v(
                r#"{"kind":"every","interval_ms":5400000,"end_at":"2027-01-01T00:00:00Z","max_runs":3}"#
            ),
            "every 1h 30m, until 2027-01-01T00:00:00Z, at most 3 runs"
        );
        assert_eq!(
            v(r#"{"kind":"weekly","day":1}"#),
            r#"{"day":1,"kind":"weekly"}"#
        );
    }

    #[test]
    fn sparse_or_odd_answers_do_not_panic() {
        let out =
            job(r#"{"id":"x","state":"done","next_due":null,"job":{"schedule":"?"}}"#).unwrap();
        assert!(
            out.contains("next due: none\n") && out.contains("payload:  null\n"),
            "{out}"
        );
        for body in [
            "",
            "not json",
            "[]",
            r#"{"id": 5}"#,
            r#"{"status":"created"}"#,
        ] {
            assert_eq!(job(body).unwrap_err().code, exit::FAILURE, "{body}");
            assert_eq!(submitted(body).unwrap_err().code, exit::FAILURE, "{body}");
            assert_eq!(cancelled(body).unwrap_err().code, exit::FAILURE, "{body}");
        }
    }

    #[test]
    fn topic_lines_and_json() {
        let outcomes = vec![
            (
                "sked.dlq".to_owned(),
                Outcome::ExistsWithOtherPartitions {
                    partitions: 3,
                    configured: 12,
                },
            ),
            ("sked.due".to_owned(), Outcome::Created { partitions: 12 }),
            ("sked.ingest".to_owned(), Outcome::Exists { partitions: 12 }),
        ];
        assert_eq!(
            topics(&outcomes),
            "exists sked.dlq with 3 partitions, config says 12: left unchanged\n\
             created sked.due (12 partitions)\n\
             exists sked.ingest (12 partitions)\n"
        );
        let json: Value = serde_json::from_str(&topics_json(&outcomes).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"topic": "sked.dlq", "outcome": "exists_with_other_partitions", "partitions": 3, "configured": 12},
                {"topic": "sked.due", "outcome": "created", "partitions": 12},
                {"topic": "sked.ingest", "outcome": "exists", "partitions": 12},
            ])
        );
    }
}
