//! `sked cron preview` and `sked cron explain`: offline, with the schedule code of sked-core
//! (the same [`Query`] as `POST /v1/schedules/preview`), so the answers agree with the service.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Utc;
use chrono_tz::Tz;
use sked_core::schedule::{
    Calendar, Calendars, CronExpr, DomDow, DstPolicy, Gap, Note, Overlap, PreviewSlot, Query,
    explain,
};

use crate::{
    args::{CronCommand, CronPreviewArgs},
    error::{Error, exit, io_reason},
};

/// Runs `sked cron ...`; `Ok` is stdout.
pub fn run(command: CronCommand, json: bool) -> Result<String, Error> {
    match command {
        CronCommand::Explain { expr, tz } => {
            let tz = zone(&tz)?;
            let expr = CronExpr::parse(&expr).map_err(|e| rejected("invalid_cron", "cron", &e))?;
            let line = explain(&expr, tz);
            if json {
                Ok(format!(
                    "{}\n",
                    serde_json::json!({"description": line, "timezone": tz.name()})
                ))
            } else {
                Ok(format!("{line}\n"))
            }
        }
        CronCommand::Preview(args) => preview(&args, json),
    }
}

fn rejected(code: &str, param: &str, message: &str) -> Error {
    Error::new(
        exit::REJECTED,
        format!("rejected ({code}, {param}): {message}"),
    )
}

fn zone(name: &str) -> Result<Tz, Error> {
    name.parse().map_err(|_| {
        rejected(
            "invalid_timezone",
            "tz",
            &format!("`{name}` is not an IANA time zone name such as \"Asia/Dhaka\""),
        )
    })
}

fn preview(args: &CronPreviewArgs, json: bool) -> Result<String, Error> {
    let tz = zone(&args.tz)?;
    let dst = (args.dst_gap.is_some() || args.dst_overlap.is_some()).then_some(DstPolicy {
        gap: match args.dst_gap.as_deref() {
            Some("skip") => Gap::Skip,
            _ => Gap::Shift,
        },
        overlap: match args.dst_overlap.as_deref() {
            Some("both") => Overlap::Both,
            Some("last") => Overlap::Last,
            _ => Overlap::First,
        },
    });
    let dom_dow = args.dom_dow.as_deref().map(|r| match r {
        "or" => DomDow::Or,
        _ => DomDow::And,
    });
    let calendars = match &args.calendar_file {
        Some(path) => load_calendars(path)?,
        None => Calendars::new(),
    };
    let names: Vec<String> = if args.calendars.is_empty() {
        calendars.iter().map(|(n, _)| n.to_owned()).collect()
    } else {
        args.calendars.clone()
    };
    if let Some(name) = names.iter().find(|n| !calendars.contains(n)) {
        return Err(rejected(
            "unknown_calendar",
            "calendar",
            &format!("no calendar named `{name}` in the calendar file"),
        ));
    }
    let query = Query {
        cron: args.expr.as_deref(),
        every: args.every.as_deref(),
        start_at: None,
        tz,
        dst,
        dom_dow,
        from: args.from.unwrap_or_else(Utc::now),
        to: args.to,
        n: args.n,
    };
    let answer = query.run(&calendars.resolve(&names)).map_err(|e| {
        let code = e
            .reason
            .map_or_else(|| "invalid_parameter".to_owned(), |r| r.to_string());
        let param = match e.param {
            "n" => "count",
            other => other,
        };
        rejected(&code, param, &e.message)
    })?;
    if json {
        let body = serde_json::json!({
            "description": answer.description,
            "timezone": tz.name(),
            "slots": answer.slots,
        });
        return Ok(format!("{body}\n"));
    }
    let mut out = format!("{}\n", answer.description);
    for slot in &answer.slots {
        out.push_str(&line(slot));
        out.push('\n');
    }
    Ok(out)
}

/// `2026-03-08T07:00:00Z  2026-03-08 03:00:00 -04:00  gap_shifted (02:30:00 does not exist)`.
fn line(slot: &PreviewSlot) -> String {
    let mut out = format!(
        "{}  {} {}",
        slot.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        slot.local.format("%Y-%m-%d %H:%M:%S"),
        slot.offset
    );
    let notes: Vec<String> = slot
        .notes
        .iter()
        .map(|note| match note {
            Note::GapShifted | Note::Skipped => format!(
                "{} ({} does not exist)",
                wire(note),
                slot.nominal
                    .map_or_else(String::new, |n| n.format("%H:%M:%S").to_string())
            ),
            Note::Excluded => format!(
                "excluded ({})",
                slot.calendar.as_deref().unwrap_or("calendar")
            ),
            other => wire(other),
        })
        .collect();
    if !notes.is_empty() {
        out.push_str("  ");
        out.push_str(&notes.join(", "));
    }
    out
}

fn wire(note: &Note) -> String {
    serde_json::to_value(note)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Reads a calendar file: TOML `[<name>]` tables, or a JSON object by name.
fn load_calendars(path: &Path) -> Result<Calendars, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            exit::FAILURE,
            format!("cannot read {}: {}", path.display(), io_reason(&e)),
        )
    })?;
    let bad = |why: String| {
        rejected(
            "invalid_calendar",
            "calendar-file",
            &format!("{}: {why}", path.display()),
        )
    };
    let parsed: BTreeMap<String, Calendar> = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?
    } else {
        // `[<name>]` tables, or a config file's `[calendars.<name>]`.
        let mut table: toml::Table =
            toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
        let table = match table.remove("calendars") {
            Some(toml::Value::Table(inner)) if table.is_empty() => inner,
            Some(other) => {
                table.insert("calendars".to_owned(), other);
                table
            }
            None => table,
        };
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| bad(e.message().to_owned()))?
    };
    let mut out = Calendars::new();
    for (name, calendar) in parsed {
        if let Some(why) = calendar.problems().into_iter().next() {
            return Err(bad(format!("calendar `{name}`: {why}")));
        }
        out.insert(name, calendar);
    }
    Ok(out)
}
