//! `sked job describe`: every section of a [`JobDescription`] for people.

use sked_api::jobs::{JobDescription, PauseInfo, RunInfo};

use crate::table;

/// `key: value` lines, then the next fire times, the recent fires and the stored spec.
pub fn render(d: &JobDescription) -> String {
    let labels: Vec<String> = d.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let c = &d.counters;
    let mut out = table::fields(&[
        ("id", d.id.clone()),
        ("app", d.app.clone()),
        ("tenant", table::or_dash(d.tenant.as_deref())),
        ("state", d.state.as_str().to_owned()),
        (
            "paused",
            d.paused.as_ref().map_or_else(|| "no".to_owned(), pause),
        ),
        ("kind", d.kind.as_str().to_owned()),
        ("schedule", d.schedule.clone()),
        ("in words", table::or_dash(Some(&d.description))),
        ("excludes", table::or_dash(Some(&d.calendars.join(", ")))),
        ("next due", table::time_or_dash(d.next_due.as_ref())),
        ("labels", table::or_dash(Some(&labels.join(", ")))),
        ("etag", d.etag.clone()),
        (
            "run",
            d.run.as_ref().map_or_else(|| "none yet".to_owned(), run),
        ),
        (
            "counters",
            format!(
                "fired {}, missed {}, skipped {}, excluded {}, retried {}, dead {}, triggered {}, \
                 backfilled {}",
                c.fired,
                c.missed,
                c.skipped,
                c.excluded,
                c.retried,
                c.dead,
                c.triggered,
                c.backfilled
            ),
        ),
    ]);
    out.push_str("\nnext fires:\n");
    if d.next.is_empty() {
        out.push_str("  none\n");
    }
    for t in &d.next {
        out.push_str(&format!("  {}\n", table::time(t)));
    }
    out.push_str("\nrecent fires (newest first):\n");
    if d.history.is_empty() {
        out.push_str("  none\n");
    } else {
        let mut rows = vec![
            [
                "FIRE ID", "DUE AT", "FIRED AT", "LATENESS", "ORIGIN", "OUTCOME", "ATTEMPTS",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        for f in &d.history {
            rows.push(vec![
                f.fire_id.clone(),
                table::time(&f.due_at),
                table::time_or_dash(f.fired_at.as_ref()),
                f.lateness_ms.map_or_else(|| "-".to_owned(), lateness),
                wire(&f.origin),
                wire(&f.outcome),
                f.attempts.map_or_else(|| "-".to_owned(), |a| a.to_string()),
            ]);
        }
        for line in table::render(&rows).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out.push_str("\njob:\n");
    let spec =
        serde_json::to_string_pretty(&d.job.value()).unwrap_or_else(|_| d.job.get().to_owned());
    for line in spec.lines() {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

/// The serde name of a unit enum variant (`schedule`, `succeeded`).
fn wire<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "?".to_owned(),
    }
}

/// `job since <time>` or `app since <time>: <note>`.
fn pause(p: &PauseInfo) -> String {
    let mut out = format!("{} since {}", p.scope.as_str(), table::time(&p.at));
    if let Some(note) = &p.note {
        out.push_str(&format!(": {note}"));
    }
    out
}

/// `1.250s`, `40ms`, `-` for a negative lateness (early is never expected; shown raw).
fn lateness(ms: i64) -> String {
    if ms.unsigned_abs() >= 1000 {
        format!("{:.3}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

/// `succeeded (attempt 2, 12 ms)`, `dead (attempt 3, 5 ms): <last error>`, with the fire.
fn run(r: &RunInfo) -> String {
    let mut out = format!("{} (attempt {}", r.state, r.attempts);
    if let Some(ms) = r.last_duration_ms {
        out.push_str(&format!(", {ms} ms"));
    }
    out.push(')');
    if let Some(fire) = &r.fire_id {
        out.push_str(&format!(" fire {fire}"));
    }
    if let Some(t) = &r.updated_at {
        out.push_str(&format!(" at {}", table::time(t)));
    }
    if let Some(err) = &r.last_error {
        out.push_str(&format!(": {err}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_is_shown() {
        let d: JobDescription = serde_json::from_str(
            r#"{"id":"r1","app":"sms","tenant":"acme","state":"paused","kind":"cron",
            "schedule":"cron 0 9 * * 1-5 Asia/Dhaka","labels":{"team":"pay","tier":"1"},
            "description":"at 09:00, Monday through Friday, Asia/Dhaka","calendars":["bd-holidays"],
            "next_due":"2026-11-23T03:00:00Z","etag":"7",
            "paused":{"scope":"job","note":"migration","at":"2026-11-20T00:00:00Z"},
            "next":["2026-11-23T03:00:00Z","2026-11-24T03:00:00Z"],
            "history":[{"fire_id":"r1@1","due_at":"2026-11-20T03:00:00Z","fired_at":"2026-11-20T03:00:01.250Z",
              "lateness_ms":1250,"origin":"schedule","outcome":"succeeded","attempts":2}],
            "counters":{"fired":3,"retried":1},
            "run":{"state":"succeeded","attempts":2,"last_error":"http status 500","last_duration_ms":12,
              "fire_id":"r1@1","updated_at":null},
            "job":{"app":"sms","payload":{"n":1}}}"#,
        )
        .unwrap();
        let out = render(&d);
        for want in [
            "id:       r1\n",
            "tenant:   acme\n",
            "paused:   job since 2026-11-20T00:00:00Z: migration\n",
            "schedule: cron 0 9 * * 1-5 Asia/Dhaka\n",
            "in words: at 09:00, Monday through Friday, Asia/Dhaka\n",
            "excludes: bd-holidays\n",
            "labels:   team=pay, tier=1\n",
            "etag:     7\n",
            "run:      succeeded (attempt 2, 12 ms) fire r1@1: http status 500\n",
            "counters: fired 3, missed 0, skipped 0, excluded 0, retried 1, dead 0, triggered 0, backfilled 0\n",
            "next fires:\n  2026-11-23T03:00:00Z\n  2026-11-24T03:00:00Z\n",
            "  FIRE ID  DUE AT                FIRED AT                  LATENESS  ORIGIN    OUTCOME    ATTEMPTS\n",
            "  r1@1     2026-11-20T03:00:00Z  2026-11-20T03:00:01.250Z  1.250s    schedule  succeeded  2\n",
            "job:\n  {\n    \"app\": \"sms\",\n",
        ] {
            assert!(out.contains(want), "missing {want:?} in\n{out}");
        }
    }
}
