//! `sked job ls|describe|pause|resume|trigger|backfill|reschedule|update`, `sked app|tenant
//! pause|resume`, `sked pauses`, `sked stats`: calls of the REST API with `sked_api` bodies,
//! answers rendered for people (or printed unchanged with `--json`).

use sked_api::jobs::{
    ActionResponse, BackfillRequest, JobDescription, JobList, JobSummary, ListQuery, PauseList,
    PauseRequest, RescheduleRequest, ScopeResponse, Selector, TriggerRequest,
};
use sked_api::stats::Stats;

use crate::{
    api::{Answer, Client, decode},
    args::{JobCommand, ListArgs, ScopeCommand},
    describe,
    error::{Error, exit},
    render, request, table,
};

/// A 2xx body as stdout: unchanged, ending in a newline.
pub fn raw(mut body: String) -> String {
    if !body.ends_with('\n') {
        body.push('\n');
    }
    body
}

/// Runs one of the management verbs of `sked job`; `Ok` holds stdout.
pub async fn job(client: &Client, command: JobCommand, json: bool) -> Result<String, Error> {
    match command {
        JobCommand::Ls(args) => list(client, &args, json).await,
        JobCommand::Describe { id, next, history } => {
            let mut query = vec![format!("next={next}")];
            if let Some(h) = history {
                query.push(format!("history={h}"));
            }
            let answer = client
                .get_query(&["v1", "jobs", &id], &query.join("&"))
                .await?;
            if json {
                return Ok(raw(answer.body));
            }
            Ok(describe::render(&decode::<JobDescription>(&answer.body)?))
        }
        JobCommand::Pause { id, note } => {
            let answer = client
                .post_json(&["v1", "jobs", &id, "pause"], &PauseRequest { note })
                .await?;
            action(answer, json, None)
        }
        JobCommand::Resume { id } => {
            let answer = client.post_empty(&["v1", "jobs", &id, "resume"]).await?;
            action(answer, json, None)
        }
        JobCommand::Trigger(args) => {
            let key = args
                .key
                .clone()
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
            if args.key.is_none() && json {
                eprintln!(
                    "sked: trigger key {key} (pass --key {key} to retry without firing twice)"
                );
            }
            let body = TriggerRequest {
                key: Some(key.clone()),
            };
            let answer = client
                .post_json(&["v1", "jobs", &args.id, "trigger"], &body)
                .await?;
            action(answer, json, Some(&key))
        }
        JobCommand::Backfill(args) => {
            let body = BackfillRequest {
                from: args.from,
                to: args.to,
            };
            let answer = client
                .post_json(&["v1", "jobs", &args.id, "backfill"], &body)
                .await?;
            action(answer, json, None)
        }
        JobCommand::Reschedule(args) => {
            let body = RescheduleRequest {
                run_at: args.run_at.clone(),
                delay: args.delay.clone(),
            };
            let answer = client
                .post_json(&["v1", "jobs", &args.id, "reschedule"], &body)
                .await?;
            action(answer, json, None)
        }
        JobCommand::Update(args) => {
            let body = request::read_input(&args.file, std::io::stdin().lock())?;
            let etag = match args.if_match {
                Some(etag) => etag,
                None => {
                    let answer = client
                        .get_query(&["v1", "jobs", &args.id], "next=0")
                        .await?;
                    decode::<JobDescription>(&answer.body)?.etag
                }
            };
            let answer = client.replace(&args.id, body, &etag).await?;
            if json {
                return Ok(raw(answer.body));
            }
            render::submitted(&answer.body)
        }
        other => Err(Error::new(
            exit::FAILURE,
            format!("not a management command: {other:?}"),
        )),
    }
}

/// One line for a verb's answer: `paused job a`, `job a was already paused`, `triggered job a:
/// fire a@1700000000000 (key K)`, `rescheduled job a, next due <time>`.
fn action(answer: Answer, json: bool, key: Option<&str>) -> Result<String, Error> {
    if json {
        return Ok(raw(answer.body));
    }
    let a: ActionResponse = decode(&answer.body)?;
    let mut out = match a.status.strip_prefix("already_") {
        Some(state) => format!("job {} was already {state}", a.id),
        None => format!("{} job {}", a.status.replace('_', " "), a.id),
    };
    match a.fire_ids.as_slice() {
        [] => {}
        [one] => out.push_str(&format!(": fire {one}")),
        many => out.push_str(&format!(": {} fires ({})", many.len(), many.join(", "))),
    }
    if let Some(key) = key {
        out.push_str(&format!(" (key {key})"));
    }
    if let Some(due) = &a.due_at {
        out.push_str(&format!(", next due {}", table::time(due)));
    }
    out.push('\n');
    Ok(out)
}

/// The query of `args` as the API takes it.
pub fn list_query(args: &ListArgs) -> ListQuery {
    ListQuery {
        filter: Selector {
            state: args.state.clone(),
            app: args.app.clone(),
            tenant: args.tenant.clone(),
            label: args.label.clone(),
            kind: args.kind,
            due_after: args.due_after,
            due_before: args.due_before,
            payload: args.payload.clone(),
        },
        order: args.order,
        limit: args.limit,
        cursor: args.cursor.clone(),
    }
}

/// Most pages `--all` follows: a server that keeps answering with cursors is a bug, not a
/// reason to loop forever.
const MAX_PAGES: usize = 100_000;

async fn list(client: &Client, args: &ListArgs, json: bool) -> Result<String, Error> {
    let mut query = list_query(args);
    let answer = client
        .get_query(&["v1", "jobs"], &query.to_query_string())
        .await?;
    if json && !args.all {
        return Ok(raw(answer.body));
    }
    let mut page: JobList = decode(&answer.body)?;
    let mut jobs = std::mem::take(&mut page.jobs);
    if args.all {
        let mut pages = 1;
        while let Some(cursor) = page.next_cursor.take() {
            if query.cursor.as_deref() == Some(cursor.as_str()) || pages >= MAX_PAGES {
                return Err(Error::new(
                    exit::FAILURE,
                    format!(
                        "unexpected answer from the sked API: cursor {cursor} does not advance"
                    ),
                ));
            }
            query.cursor = Some(cursor);
            let answer = client
                .get_query(&["v1", "jobs"], &query.to_query_string())
                .await?;
            page = decode(&answer.body)?;
            jobs.append(&mut page.jobs);
            pages += 1;
        }
    }
    if json {
        let all = JobList {
            jobs,
            next_cursor: None,
        };
        return serde_json::to_string(&all)
            .map(raw)
            .map_err(|e| Error::new(exit::FAILURE, format!("cannot encode the jobs: {e}")));
    }
    let mut out = jobs_table(&jobs);
    if jobs.is_empty() {
        out = "no matching jobs\n".to_owned();
    }
    if let Some(cursor) = &page.next_cursor {
        out.push_str(&format!("next: {}\n", next_command(args, cursor)));
    }
    Ok(out)
}

/// The `job ls` table.
pub fn jobs_table(jobs: &[JobSummary]) -> String {
    let mut rows = vec![
        [
            "ID", "APP", "TENANT", "STATE", "NEXT DUE", "SCHEDULE", "LABELS",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for j in jobs {
        let labels: Vec<String> = j.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push(vec![
            j.id.clone(),
            j.app.clone(),
            table::or_dash(j.tenant.as_deref()),
            j.state.as_str().to_owned(),
            table::time_or_dash(j.next_due.as_ref()),
            j.schedule.clone(),
            labels.join(","),
        ]);
    }
    table::render(&rows)
}

/// `sked job ls <the same filters> --cursor <cursor>`, ready to paste.
pub fn next_command(args: &ListArgs, cursor: &str) -> String {
    let mut words = vec!["sked".to_owned(), "job".to_owned(), "ls".to_owned()];
    let mut flag = |name: &str, value: String| {
        words.push(format!("--{name}"));
        words.push(table::shell_word(&value));
    };
    if let Some(s) = &args.state {
        flag("state", s.clone());
    }
    if let Some(a) = &args.app {
        flag("app", a.clone());
    }
    if let Some(t) = &args.tenant {
        flag("tenant", t.clone());
    }
    for l in &args.label {
        flag("label", l.clone());
    }
    if let Some(k) = args.kind {
        flag("kind", k.as_str().to_owned());
    }
    if let Some(t) = &args.due_after {
        flag("due-after", table::time(t));
    }
    if let Some(t) = &args.due_before {
        flag("due-before", table::time(t));
    }
    if let Some(o) = args.order {
        flag("order", o.as_str().to_owned());
    }
    if let Some(l) = args.limit {
        flag("limit", l.to_string());
    }
    flag("cursor", cursor.to_owned());
    words.join(" ")
}

/// `sked app ...` (`scope` = `apps`) and `sked tenant ...` (`tenants`).
pub async fn scope(
    client: &Client,
    scope: &str,
    command: ScopeCommand,
    json: bool,
) -> Result<String, Error> {
    let answer = match command {
        ScopeCommand::Pause { name, note } => {
            client
                .post_json(&["v1", scope, &name, "pause"], &PauseRequest { note })
                .await?
        }
        ScopeCommand::Resume { name } => client.post_empty(&["v1", scope, &name, "resume"]).await?,
    };
    if json {
        return Ok(raw(answer.body));
    }
    let r: ScopeResponse = decode(&answer.body)?;
    let what = format!("{} {}", r.scope.as_str(), r.name);
    Ok(match r.status.as_str() {
        "already_paused" => format!("{what} was already paused\n"),
        "not_paused" => format!("{what} was not paused\n"),
        status => format!("{status} {what}\n"),
    })
}

/// `sked pauses`.
pub async fn pauses(client: &Client, json: bool) -> Result<String, Error> {
    let answer = client.get_query(&["v1", "pauses"], "").await?;
    if json {
        return Ok(raw(answer.body));
    }
    let list: PauseList = decode(&answer.body)?;
    if list.pauses.is_empty() {
        return Ok("no app or tenant is paused\n".to_owned());
    }
    let mut rows = vec![
        ["SCOPE", "NAME", "SINCE", "NOTE"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for p in &list.pauses {
        rows.push(vec![
            p.scope.as_str().to_owned(),
            p.name.clone(),
            table::time(&p.at),
            p.note.clone().unwrap_or_default(),
        ]);
    }
    Ok(table::render(&rows))
}

/// `sked stats`.
pub async fn stats(client: &Client, json: bool) -> Result<String, Error> {
    let answer = client.get_query(&["v1", "stats"], "").await?;
    if json {
        return Ok(raw(answer.body));
    }
    let s: Stats = decode(&answer.body)?;
    let mut out = format!("pending: {}\n", s.pending);
    for (title, counts) in [
        ("by state", &s.by_state),
        ("pending by app", &s.by_app),
        ("pending by tenant", &s.by_tenant),
    ] {
        let mut counts: Vec<(&String, &u64)> = counts.iter().collect();
        counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let width = counts.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        out.push_str(&format!("{title}:\n"));
        for (k, n) in counts {
            out.push_str(&format!("  {k:<width$}  {n}\n"));
        }
    }
    Ok(out)
}
