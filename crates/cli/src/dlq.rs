//! `sked dlq ls|show|stats|replay|replays`: calls the replayer's DLQ API and renders its answers.
//!
//! Requests are `sked_api::dlq` types. Answers are parsed leniently (`serde_json::Value`), so
//! a field the replayer adds later, or one a replayer of an older version lacks, does not break
//! the CLI; a body of an unexpected shape is an [`Error`], never a panic.

use std::time::{Duration, Instant};

use serde_json::Value;
use sked_api::dlq::ReplayRequest;

use crate::{
    api::Client,
    args::{DlqCommand, DlqFilter, ReplayArgs},
    confirm,
    error::{Error, exit},
    table,
};

/// How often a running replay is polled.
const POLL: Duration = Duration::from_millis(250);
/// How often a progress line is printed on stderr while a replay runs.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// Longest error message shown in the `ls` table, in characters.
const ERROR_CHARS: usize = 60;

/// Runs one `sked dlq` command; `Ok` holds stdout.
pub async fn run(client: &Client, command: DlqCommand, json: bool) -> Result<String, Error> {
    match command {
        DlqCommand::Ls {
            filter,
            limit,
            by_offset,
        } => {
            let mut query = filter_pairs(&filter);
            query.push(("limit", Some(limit.to_string())));
            query.push((
                "order",
                Some(if by_offset { "offset" } else { "newest" }.into()),
            ));
            let answer = client.get_with(&["v1", "dlq"], &query).await?;
            if json {
                return Ok(raw(answer.body));
            }
            list(&parse(&answer.body)?)
        }
        DlqCommand::Show { at: (p, o) } => {
            let answer = client
                .get_with(&["v1", "dlq", &p.to_string(), &o.to_string()], &[])
                .await?;
            if json {
                return Ok(raw(answer.body));
            }
            show(&parse(&answer.body)?)
        }
        DlqCommand::Stats { filter } => {
            let answer = client
                .get_with(&["v1", "dlq", "stats"], &filter_pairs(&filter))
                .await?;
            if json {
                return Ok(raw(answer.body));
            }
            stats(&parse(&answer.body)?)
        }
        DlqCommand::Replay(args) => replay(client, &args, json).await,
        DlqCommand::Replays { limit } => {
            let answer = client
                .get_with(
                    &["v1", "dlq", "replays"],
                    &[("limit", Some(limit.to_string()))],
                )
                .await?;
            if json {
                return Ok(raw(answer.body));
            }
            replays(&parse(&answer.body)?)
        }
    }
}

fn raw(mut body: String) -> String {
    if !body.ends_with('\n') {
        body.push('\n');
    }
    body
}

fn parse(body: &str) -> Result<Value, Error> {
    serde_json::from_str(body).map_err(|e| {
        Error::new(
            exit::FAILURE,
            format!("unexpected answer from the replayer: {e}"),
        )
    })
}

fn filter_pairs(f: &DlqFilter) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("app", f.app.clone()),
        ("reason", f.reason.clone()),
        ("stage", f.stage.clone()),
        ("error", f.error.clone()),
        ("since", f.since.clone()),
        ("until", f.until.clone()),
        ("job_id", f.job_id.clone()),
        ("tenant", f.tenant.clone()),
    ]
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("-")
}

/// The `ls` table: one row per letter, then how many matched.
fn list(body: &Value) -> Result<String, Error> {
    let letters = body
        .get("letters")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Error::new(
                exit::FAILURE,
                "unexpected answer from the replayer: no letters",
            )
        })?;
    let mut rows = vec![[
        "AT".to_owned(),
        "TIME".to_owned(),
        "APP".to_owned(),
        "STAGE".to_owned(),
        "REASON".to_owned(),
        "JOB ID".to_owned(),
        "ERROR".to_owned(),
    ]];
    for l in letters {
        let at = format!(
            "{}/{}",
            l.get("partition").and_then(Value::as_i64).unwrap_or(-1),
            l.get("offset").and_then(Value::as_i64).unwrap_or(-1)
        );
        let time = text(l, "at");
        let time = time.get(..19).map_or(time.to_owned(), |t| format!("{t}Z"));
        let error: String = text(l, "error")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let error = match error.char_indices().nth(ERROR_CHARS) {
            Some((cut, _)) => format!("{}…", &error[..cut]),
            None => error,
        };
        rows.push([
            at,
            time,
            text(l, "app").to_owned(),
            text(l, "stage").to_owned(),
            text(l, "reason").to_owned(),
            text(l, "job_id").to_owned(),
            error,
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i == row.len() - 1 {
                    cell.clone()
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    let matched = body.get("matched").and_then(Value::as_u64).unwrap_or(0);
    out.push_str(&format!(
        "{} of {matched} matching dead letters\n",
        letters.len()
    ));
    Ok(out)
}

/// The `replays` table: one row per replay, newest first.
fn replays(body: &Value) -> Result<String, Error> {
    let replays = body
        .get("replays")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Error::new(
                exit::FAILURE,
                "unexpected answer from the replayer: no replays",
            )
        })?;
    let mut rows = vec![
        ["ID", "CREATED", "STATUS", "SELECTED", "PUBLISHED", "FILTER"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for r in replays {
        let n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0).to_string();
        let created = r
            .get("created_at")
            .and_then(Value::as_i64)
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map_or_else(|| "-".to_owned(), |t| table::time(&t));
        let status = if r.get("dry_run").and_then(Value::as_bool) == Some(true) {
            "dry run".to_owned()
        } else {
            text(r, "status").to_owned()
        };
        let filter: Vec<String> = r
            .get("filter")
            .and_then(Value::as_object)
            .map(|f| {
                f.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                    .collect()
            })
            .unwrap_or_default();
        rows.push(vec![
            text(r, "id").to_owned(),
            created,
            status,
            n("selected"),
            n("published"),
            if filter.is_empty() {
                "(all)".to_owned()
            } else {
                filter.join(" ")
            },
        ]);
    }
    let mut out = table::render(&rows);
    out.push_str(&format!("{} replays\n", replays.len()));
    Ok(out)
}

fn bytes(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(none)".to_owned(),
        Some(v) => match (v.get("text"), v.get("base64")) {
            (Some(Value::String(t)), _) => t.clone(),
            (_, Some(Value::String(b))) => format!("base64:{b}"),
            _ => v.to_string(),
        },
    }
}

/// `show`: the summary, every header, the key and the value.
fn show(l: &Value) -> Result<String, Error> {
    let mut out = String::new();
    let lines = [
        (
            "at",
            format!(
                "{}/{}",
                l.get("partition").and_then(Value::as_i64).unwrap_or(-1),
                l.get("offset").and_then(Value::as_i64).unwrap_or(-1)
            ),
        ),
        ("failed at", text(l, "at").to_owned()),
        ("app", text(l, "app").to_owned()),
        ("stage", text(l, "stage").to_owned()),
        ("reason", text(l, "reason").to_owned()),
        ("job id", text(l, "job_id").to_owned()),
        ("error", text(l, "error").to_owned()),
        ("original topic", text(l, "original_topic").to_owned()),
        (
            "replays",
            l.get("replay_count")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .to_string(),
        ),
        ("key", bytes(l.get("key"))),
    ];
    for (k, v) in lines {
        out.push_str(&format!("{:<16}{v}\n", format!("{k}:")));
    }
    out.push_str("headers:\n");
    if let Some(headers) = l.get("headers").and_then(Value::as_object) {
        for (k, v) in headers {
            out.push_str(&format!("  {k}: {}\n", bytes(Some(v))));
        }
    }
    out.push_str(&format!("value:\n{}\n", bytes(l.get("value"))));
    Ok(out)
}

/// `stats`: the total, then counts by app, reason and stage, largest first.
fn stats(s: &Value) -> Result<String, Error> {
    let total = s.get("total").and_then(Value::as_u64).ok_or_else(|| {
        Error::new(
            exit::FAILURE,
            "unexpected answer from the replayer: no total",
        )
    })?;
    let mut out = format!("total: {total}\n");
    for (key, title) in [
        ("by_app", "by app"),
        ("by_reason", "by reason"),
        ("by_stage", "by stage"),
    ] {
        let mut counts: Vec<(&String, u64)> = s
            .get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k, v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let width = counts.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        out.push_str(&format!("{title}:\n"));
        for (k, n) in counts {
            out.push_str(&format!("  {k:<width$}  {n}\n"));
        }
    }
    Ok(out)
}

fn replay_body(args: &ReplayArgs, dry_run: bool) -> ReplayRequest {
    let f = &args.filter;
    ReplayRequest {
        app: f.app.clone(),
        reason: f.reason.clone(),
        stage: f.stage.clone(),
        error: f.error.clone(),
        since: f.since.clone(),
        until: f.until.clone(),
        job_id: f.job_id.clone(),
        tenant: f.tenant.clone(),
        limit: args.limit,
        dry_run,
        rate: args.rate,
        target_topic: args.target_topic.clone(),
    }
}

/// `replay`: confirm, start, follow to the end, summarise.
async fn replay(client: &Client, args: &ReplayArgs, json: bool) -> Result<String, Error> {
    let path = ["v1", "dlq", "replays"];
    if !args.dry_run && !args.yes {
        let dry = parse(
            &client
                .post_json(&path, &replay_body(args, true))
                .await?
                .body,
        )?;
        let selected = dry.get("selected").and_then(Value::as_u64).unwrap_or(0);
        if selected == 0 {
            return finish(&dry, json, Duration::ZERO);
        }
        confirm::ask(
            &format!("replay {selected} dead letters to {}?", targets(&dry)),
            &format!("replay {selected} dead letters"),
        )?;
    }
    let started = Instant::now();
    let mut progress = parse(
        &client
            .post_json(&path, &replay_body(args, args.dry_run))
            .await?
            .body,
    )?;
    let id = progress
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::new(
                exit::FAILURE,
                "unexpected answer from the replayer: no replay id",
            )
        })?
        .to_owned();
    let mut last_line = Instant::now();
    while progress.get("status").and_then(Value::as_str) != Some("done") {
        tokio::time::sleep(POLL).await;
        progress = parse(
            &client
                .get_with(&["v1", "dlq", "replays", &id], &[])
                .await?
                .body,
        )?;
        if last_line.elapsed() >= PROGRESS_EVERY {
            last_line = Instant::now();
            eprintln!(
                "sked: replay {id}: published {} of {}",
                progress
                    .get("published")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                progress
                    .get("selected")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            );
        }
    }
    finish(&progress, json, started.elapsed())
}

fn targets(p: &Value) -> String {
    let names: Vec<String> = p
        .get("by_target")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(t, n)| format!("{t} ({n})")).collect())
        .unwrap_or_default();
    if names.is_empty() {
        "-".to_owned()
    } else {
        names.join(", ")
    }
}

/// The summary of a finished (or dry-run) replay.
fn finish(p: &Value, json: bool, took: Duration) -> Result<String, Error> {
    if json {
        return Ok(format!("{p}\n"));
    }
    let n = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
    let skipped = format!(
        "skipped {} (at the replay cap: {}, no target topic: {}, duplicate letters: {})",
        n("skipped_max_replays") + n("skipped_no_target") + n("skipped_duplicates"),
        n("skipped_max_replays"),
        n("skipped_no_target"),
        n("skipped_duplicates")
    );
    if p.get("dry_run").and_then(Value::as_bool) == Some(true) {
        return Ok(format!(
            "dry run: would replay {} dead letters to {}; {skipped}\n",
            n("selected"),
            targets(p)
        ));
    }
    let mut out = format!(
        "replay {} done: published {} of {} selected to {}; {skipped}",
        text(p, "id"),
        n("published"),
        n("selected"),
        targets(p)
    );
    if n("missing") > 0 {
        out.push_str(&format!("; {} no longer in the dlq", n("missing")));
    }
    if n("resumes") > 0 {
        out.push_str(&format!(
            "; resumed {} times ({} found already published)",
            n("resumes"),
            n("already_published")
        ));
    }
    if !took.is_zero() {
        out.push_str(&format!(" in {:.1}s", took.as_secs_f64()));
    }
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn ls_table_aligns_and_truncates_errors() {
        let body = json!({"letters": [
            {"partition": 0, "offset": 7, "at": "2027-01-15T08:00:00.123Z", "app": "sms",
             "stage": "execute", "reason": "timeout", "job_id": "a1",
             "error": format!("timed out {}", "x".repeat(100))},
            {"partition": 11, "offset": 12345, "at": null, "app": null, "stage": "ingest",
             "reason": "invalid_json", "job_id": null, "error": "bad\njson"}
        ], "matched": 3});
        let out = list(&body).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("AT        TIME"), "{out}");
        assert!(
            lines[1].starts_with("0/7       2027-01-15T08:00:00Z  sms"),
            "{out}"
        );
        assert!(lines[1].ends_with('…'), "{out}");
        assert!(
            lines[2].contains("invalid_json") && lines[2].ends_with("bad json"),
            "{out}"
        );
        assert_eq!(lines[3], "2 of 3 matching dead letters");
    }

    #[test]
    fn replays_table_names_dry_runs_and_filters() {
        let body = json!({"replays": [
            {"id": "r2", "created_at": 1_800_000_000_000i64, "status": "done", "dry_run": true,
             "selected": 3, "published": 0, "filter": {"app": "sms", "tenant": null}},
            {"id": "r1", "created_at": 1_800_000_000_500i64, "status": "running",
             "dry_run": false, "selected": 10, "published": 4, "filter": {}}
        ]});
        let out = replays(&body).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "ID  CREATED                   STATUS   SELECTED  PUBLISHED  FILTER"
        );
        assert_eq!(
            lines[1],
            "r2  2027-01-15T08:00:00Z      dry run  3         0          app=sms"
        );
        assert_eq!(
            lines[2],
            "r1  2027-01-15T08:00:00.500Z  running  10        4          (all)"
        );
        assert_eq!(lines[3], "2 replays");
        assert!(replays(&json!({"letters": []})).is_err());
    }

    #[test]
    fn stats_sort_by_count() {
        let body = json!({"total": 3, "by_app": {"a": 1, "b": 2}, "by_reason": {}, "by_stage": {"execute": 3}});
        let out = stats(&body).unwrap();
        assert_eq!(
            out,
            "total: 3\nby app:\n  b  2\n  a  1\nby reason:\nby stage:\n  execute  3\n"
        );
    }

    #[test]
    fn show_prints_text_or_base64() {
        let body = json!({"partition": 1, "offset": 2, "key": {"text": "k"},
            "value": {"base64": "//4="}, "headers": {"sked-app": {"text": "sms"}}});
        let out = show(&body).unwrap();
        assert!(out.contains("key:            k\n"), "{out}");
        assert!(out.contains("  sked-app: sms\n"), "{out}");
        assert!(out.ends_with("value:\nbase64://4=\n"), "{out}");
    }
}
