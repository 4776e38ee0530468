//! `sked ops create|ls|get|cancel`: bulk operations through `/v1/operations`, with the
//! confirmation of destructive actions and `--wait` progress.

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

use sked_api::ops::{Operation, OperationList, OperationRequest, OperationState};

use crate::{
    api::{Client, decode},
    args::{OpsCommand, OpsCreateArgs},
    confirm,
    error::{Error, exit},
    manage::raw,
    table,
};

/// How often `--wait` polls the operation.
const POLL: Duration = Duration::from_millis(500);

/// Runs one `sked ops` command; `Ok` holds stdout.
pub async fn run(client: &Client, command: OpsCommand, json: bool) -> Result<String, Error> {
    match command {
        OpsCommand::Create(args) => create(client, &args, json).await,
        OpsCommand::Ls { limit, cursor } => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(l) = limit {
                query.append_pair("limit", &l.to_string());
            }
            if let Some(c) = &cursor {
                query.append_pair("cursor", c);
            }
            let answer = client
                .get_query(&["v1", "operations"], &query.finish())
                .await?;
            if json {
                return Ok(raw(answer.body));
            }
            let list: OperationList = decode(&answer.body)?;
            let mut out = list_table(&list.operations);
            if let Some(c) = &list.next_cursor {
                let limit = limit.map(|l| format!(" --limit {l}")).unwrap_or_default();
                out.push_str(&format!(
                    "next: sked ops ls{limit} --cursor {}\n",
                    table::shell_word(c)
                ));
            }
            Ok(out)
        }
        OpsCommand::Get { id, wait } => {
            let answer = client.get_query(&["v1", "operations", &id], "").await?;
            follow(client, answer.body, wait, json).await
        }
        OpsCommand::Cancel { id } => {
            let answer = client
                .post_empty(&["v1", "operations", &id, "cancel"])
                .await?;
            if json {
                return Ok(raw(answer.body));
            }
            Ok(show(&decode(&answer.body)?))
        }
    }
}

/// The request of `args`, counting only when `dry_run`.
fn request(args: &OpsCreateArgs, dry_run: bool) -> OperationRequest {
    OperationRequest {
        action: args.action,
        selector: args.selector.clone(),
        dry_run,
        rate: args.rate,
        offset: args.offset.clone(),
        note: args.note.clone(),
    }
}

async fn create(client: &Client, args: &OpsCreateArgs, json: bool) -> Result<String, Error> {
    let reschedule = args.action == sked_api::ops::OperationAction::Reschedule;
    if reschedule != args.offset.is_some() {
        return Err(Error::new(
            exit::USAGE,
            if reschedule {
                "--action reschedule needs --offset, e.g. --offset +1h"
            } else {
                "--offset applies only to --action reschedule"
            },
        ));
    }
    let path = ["v1", "operations"];
    if args.action.is_destructive() && !args.dry_run && !args.yes {
        let mut dry: Operation =
            decode(&client.post_json(&path, &request(args, true)).await?.body)?;
        // The estimate is known once the dry run has run.
        while !dry.state.is_final() {
            tokio::time::sleep(POLL).await;
            dry = decode(
                &client
                    .get_query(&["v1", "operations", &dry.id], "")
                    .await?
                    .body,
            )?;
        }
        if dry.estimate == 0 {
            return Ok(format!(
                "no job matches {}: nothing to {}\n",
                selector_text(&dry),
                args.action
            ));
        }
        let what = format!("{} {} jobs", args.action, dry.estimate);
        confirm::ask(&format!("{what} matching {}?", selector_text(&dry)), &what)?;
    }
    let answer = client
        .post_json(&path, &request(args, args.dry_run))
        .await?;
    follow(client, answer.body, args.wait, json).await
}

/// Prints the operation in `body`; with `wait`, polls it until it ends first (exit 1 if it
/// failed or was cancelled).
async fn follow(client: &Client, body: String, wait: bool, json: bool) -> Result<String, Error> {
    let mut body = body;
    let mut op: Operation = decode(&body)?;
    if wait {
        let progress = std::io::stderr().is_terminal();
        while !op.state.is_final() {
            if progress {
                eprint!(
                    "\r{}: {}/{} {}",
                    op.id,
                    op.processed,
                    op.estimate,
                    op.state.as_str()
                );
                let _ = std::io::stderr().flush();
            }
            tokio::time::sleep(POLL).await;
            body = client
                .get_query(&["v1", "operations", &op.id], "")
                .await?
                .body;
            op = decode(&body)?;
        }
        if progress {
            eprintln!(
                "\r{}: {}/{} {}",
                op.id,
                op.processed,
                op.estimate,
                op.state.as_str()
            );
        }
        if matches!(op.state, OperationState::Failed | OperationState::Cancelled) {
            let why = op
                .history
                .last()
                .map(|e| format!(": {}", e.message))
                .unwrap_or_default();
            return Err(Error::new(
                exit::FAILURE,
                format!(
                    "operation {} {} after {} of {} jobs{why}",
                    op.id,
                    op.state.as_str(),
                    op.processed,
                    op.estimate
                ),
            ));
        }
    }
    if json {
        return Ok(raw(body));
    }
    Ok(show(&op))
}

fn selector_text(op: &Operation) -> String {
    let s = op.selector.to_selector_string();
    if s.is_empty() {
        "every pending job".to_owned()
    } else {
        s
    }
}

/// An operation for people: what, where it is, outcomes, history.
pub fn show(op: &Operation) -> String {
    let outcomes: Vec<String> = op
        .outcomes
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let mut lines = vec![
        ("operation", op.id.clone()),
        ("action", op.action.as_str().to_owned()),
        ("selector", selector_text(op)),
        ("state", op.state.as_str().to_owned()),
    ];
    if op.dry_run {
        lines.push(("dry run", format!("would act on {} jobs", op.estimate)));
    } else {
        lines.push(("progress", format!("{}/{}", op.processed, op.estimate)));
    }
    if let Some(offset) = &op.offset {
        lines.push(("offset", offset.clone()));
    }
    if let Some(rate) = op.rate {
        lines.push(("rate", format!("{rate}/s")));
    }
    lines.push(("outcomes", table::or_dash(Some(&outcomes.join(", ")))));
    lines.push(("created", table::time(&op.created_at)));
    lines.push(("finished", table::time_or_dash(op.finished_at.as_ref())));
    let mut out = table::fields(&lines);
    if !op.history.is_empty() {
        out.push_str("history:\n");
        let rows: Vec<Vec<String>> = op
            .history
            .iter()
            .map(|e| {
                vec![
                    table::time(&e.at),
                    e.state.as_str().to_owned(),
                    e.message.clone(),
                ]
            })
            .collect();
        for line in table::render(&rows).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

/// The `ops ls` table.
pub fn list_table(ops: &[Operation]) -> String {
    if ops.is_empty() {
        return "no operations\n".to_owned();
    }
    let mut rows = vec![
        ["ID", "ACTION", "STATE", "PROGRESS", "CREATED", "SELECTOR"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for op in ops {
        rows.push(vec![
            op.id.clone(),
            op.action.as_str().to_owned(),
            if op.dry_run {
                format!("{} (dry run)", op.state.as_str())
            } else {
                op.state.as_str().to_owned()
            },
            format!("{}/{}", op.processed, op.estimate),
            table::time(&op.created_at),
            selector_text(op),
        ]);
    }
    table::render(&rows)
}
