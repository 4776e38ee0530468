//! Arguments of the commands that manage jobs, apps, tenants and bulk operations over the
//! REST API: `job ls|describe|pause|resume|trigger|backfill|reschedule|update`,
//! `app|tenant pause|resume`, `ops ...`.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{ArgGroup, Subcommand};
use sked_api::{
    jobs::{JobKind, Order, Selector},
    ops::OperationAction,
};

/// `sked job ls` arguments: the filters and paging of `GET /v1/jobs`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ListArgs {
    /// Only jobs in these states, comma-separated (scheduled, paused, held, firing,
    /// dispatched, running, succeeded, retrying, dead, cancelled); default the pending
    /// ones: scheduled,paused,held,firing.
    #[arg(long, value_name = "STATES", value_parser = parse_states)]
    pub state: Option<String>,
    /// Only jobs of this app.
    #[arg(long)]
    pub app: Option<String>,
    /// Only jobs of this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only jobs with this label, `key=value`; repeat to require several.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_label)]
    pub label: Vec<String>,
    /// Only jobs of this kind.
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<JobKind>,
    /// Only jobs next due at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub due_after: Option<DateTime<Utc>>,
    /// Only jobs next due before this RFC 3339 time.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub due_before: Option<DateTime<Utc>>,
    /// Only jobs whose payload JSON contains this text (case-sensitive; encrypted payloads
    /// are not searched; a page examines at most 10,000 jobs, so `--all` to see every match).
    #[arg(long, value_name = "TEXT")]
    pub payload: Option<String>,
    /// Order: `due` (soonest first, the default) or `created` (oldest first).
    #[arg(long, value_parser = parse_order)]
    pub order: Option<Order>,
    /// Jobs per page, 1 to 1000 (server default 100).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Start at this page (the `next_cursor` of the previous one).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Follow `next_cursor` to the last page and list every matching job (with `--json`:
    /// one job list of every page, without `next_cursor`).
    #[arg(long)]
    pub all: bool,
}

/// `sked job trigger` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct TriggerArgs {
    /// The job id.
    pub id: String,
    /// Idempotency key: the same key fires once however often the command is retried.
    /// Default: a new UUID, printed (on stderr with `--json`) so that a retry can pass it
    /// back.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
}

/// `sked job backfill` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct BackfillArgs {
    /// The job id.
    pub id: String,
    /// First scheduled time to fire, inclusive (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: DateTime<Utc>,
    /// End of the range, exclusive (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: DateTime<Utc>,
}

/// `sked job reschedule` arguments.
#[derive(Debug, Clone, clap::Args)]
#[command(group(ArgGroup::new("when").args(["run_at", "delay"]).required(true).multiple(false)))]
pub struct RescheduleArgs {
    /// The job id.
    pub id: String,
    /// The new next fire time: RFC 3339, or a local time in the job's zone.
    #[arg(long, value_name = "TIME")]
    pub run_at: Option<String>,
    /// The new next fire time as a delay from now, e.g. `15m`.
    #[arg(long, value_name = "DURATION")]
    pub delay: Option<String>,
}

/// `sked job update` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct UpdateArgs {
    /// The job id.
    pub id: String,
    /// The new schedule request JSON; `-` reads stdin.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: PathBuf,
    /// Replace only if the job's etag is still this (as `job describe` prints it); default:
    /// the etag read just before. Exits 7 if the job changed in between.
    #[arg(long, value_name = "ETAG")]
    pub if_match: Option<String>,
}

/// `sked app ...` and `sked tenant ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum ScopeCommand {
    /// Pause every job of it: none fires until it is resumed (their state shows `held`).
    Pause {
        /// The app or tenant name.
        name: String,
        /// Why, shown by `sked pauses` and `job describe`.
        #[arg(long)]
        note: Option<String>,
    },
    /// Resume it: its jobs fire again (fire times missed meanwhile follow each job's misfire
    /// policy).
    Resume {
        /// The app or tenant name.
        name: String,
    },
}

/// `sked ops ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum OpsCommand {
    /// Start a bulk operation on every job a selector matches (POST /v1/operations).
    ///
    /// The destructive actions (cancel, reschedule, purge_finished) first count the jobs
    /// (a dry run) and ask for confirmation on a terminal; without `--yes` they are refused
    /// elsewhere (exit 6). Prints the operation; `--wait` follows it to the end.
    Create(Box<OpsCreateArgs>),
    /// List operations, newest first (GET /v1/operations).
    Ls {
        /// Operations per page (server default).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: Option<u32>,
        /// Start at this page (the `next_cursor` of the previous one).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one operation: state, progress, outcomes, history (GET /v1/operations/{id}).
    Get {
        /// The operation id.
        id: String,
        /// Follow it until it ends (exit 1 if it failed or was cancelled).
        #[arg(long)]
        wait: bool,
    },
    /// Stop a running operation; jobs already handled stay so (POST /v1/operations/{id}/cancel).
    Cancel {
        /// The operation id.
        id: String,
    },
}

/// `sked ops create` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct OpsCreateArgs {
    /// What to do to each job: cancel, pause, resume, trigger, reschedule, purge_finished.
    #[arg(long, value_parser = parse_action)]
    pub action: OperationAction,
    /// Which jobs: comma-separated `key=value` terms named like the `job ls` filters
    /// (state, app, tenant, label, kind, due_after, due_before, payload: no comma in its text), e.g.
    /// `app=sms,label=team=pay,state=scheduled,paused`.
    #[arg(long, value_parser = parse_selector)]
    pub selector: Selector,
    /// Count the matching jobs only; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Jobs per second (default: the server's).
    #[arg(long, value_name = "N")]
    pub rate: Option<u32>,
    /// `reschedule` only (and required there): move each next fire by this, e.g. `+1h`,
    /// `-30m`.
    #[arg(long, value_name = "OFFSET", allow_hyphen_values = true, value_parser = parse_offset)]
    pub offset: Option<String>,
    /// Why, kept in the operation's history.
    #[arg(long)]
    pub note: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Follow the operation until it ends (exit 1 if it failed or was cancelled).
    #[arg(long)]
    pub wait: bool,
}

fn parse_states(raw: &str) -> Result<String, String> {
    let selector = Selector {
        state: Some(raw.to_owned()),
        ..Selector::default()
    };
    let states = selector.states().map_err(|e| e.message)?;
    let names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    Ok(names.join(","))
}

fn parse_label(raw: &str) -> Result<String, String> {
    match raw.split_once('=') {
        Some((k, _)) if !k.trim().is_empty() => Ok(raw.to_owned()),
        _ => Err("expected key=value, e.g. team=pay".to_owned()),
    }
}

fn parse_kind(raw: &str) -> Result<JobKind, String> {
    raw.parse()
}

fn parse_order(raw: &str) -> Result<Order, String> {
    match raw {
        "due" => Ok(Order::Due),
        "created" => Ok(Order::Created),
        _ => Err("expected due or created".to_owned()),
    }
}

fn parse_action(raw: &str) -> Result<OperationAction, String> {
    raw.parse()
}

/// An RFC 3339 time.
pub fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "expected an RFC 3339 time such as 2026-01-31T09:00:00Z".to_owned())
}

fn parse_selector(raw: &str) -> Result<Selector, String> {
    Selector::parse(raw).map_err(|e| e.message)
}

fn parse_offset(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let magnitude = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    humantime::parse_duration(magnitude)
        .map(|_| raw.to_owned())
        .map_err(|_| "expected a signed duration such as +1h or -30m".to_owned())
}
