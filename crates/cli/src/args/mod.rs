//! The command line of `sked`: global flags, commands and their arguments (clap derive).
//!
//! Parsing only; what each command does is in [`crate::run`].

use std::{path::PathBuf, time::Duration};

use clap::{ArgGroup, Parser, Subcommand};
use reqwest::Url;
use serde_json::value::RawValue;

mod manage;

pub use manage::{
    BackfillArgs, ListArgs, OpsCommand, OpsCreateArgs, RescheduleArgs, ScopeCommand, TriggerArgs,
    UpdateArgs,
};

/// Default address of the ingest service's REST API.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:8080";

/// Default address of the replayer's DLQ API.
pub const DEFAULT_REPLAYER_URL: &str = "http://127.0.0.1:8081";

const EXIT_CODES: &str = "\
Exit codes:
  0   success (also when `topics create` finds a topic with another partition count)
  1   any other error (unexpected answer, unreadable file, ...)
  2   usage error (bad flags or arguments)
  3   not found (no such job, dead letter or replay)
  4   request rejected by validation (HTTP 400 or 413); in `cron preview|explain`, a bad
      expression, interval, zone or calendar file
  5   conflict with the job's state (HTTP 409, e.g. the job was already dispatched)
  6   `dlq replay` or a destructive `ops create` refused: not confirmed (no `--yes` and
      stdin is not a terminal, or the answer was not `y`)
  7   precondition failed (HTTP 412): the job changed since its etag was read
      (`job update --if-match`)
  8   not authenticated or not allowed (HTTP 401/403): no token, a token not accepted, or
      one without the scope the call needs
  64  configuration error (`topics create`, `job publish`)
  69  service unavailable, overloaded or unreachable (HTTP 429/502/503/504, connection
      failure, timeout, Kafka unreachable)

Errors are printed as one line on stderr: `sked: <message>`.";

/// The `sked` command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "sked",
    version,
    about = "Operate sked: submit, list, inspect, pause and cancel jobs, run bulk operations, inspect and replay dead letters, bootstrap Kafka topics",
    after_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    /// Base URL of the sked REST API (the ingest service).
    #[arg(long, global = true, env = "SKED_API_URL", default_value = DEFAULT_API_URL, value_name = "URL", value_parser = parse_api_url)]
    pub api: Url,
    /// Base URL of the replayer's DLQ API (`sked dlq ...`).
    #[arg(long, global = true, env = "SKED_REPLAYER_URL", default_value = DEFAULT_REPLAYER_URL, value_name = "URL", value_parser = parse_api_url)]
    pub replayer: Url,
    /// Machine output: print the server's JSON answer unchanged (or, for `topics create`,
    /// the outcomes as JSON).
    #[arg(long, global = true)]
    pub json: bool,
    /// Bearer token for the REST and DLQ APIs (a static API token or a JWT).
    #[arg(
        long,
        global = true,
        env = "SKED_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Give up on an API call after this long, e.g. `10s`.
    #[arg(long, global = true, default_value = "30s", value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Submit, list, inspect, pause, trigger and cancel jobs through the REST API.
    #[command(subcommand)]
    Job(JobCommand),
    /// Pause or resume every job of an app (POST /v1/apps/{app}/pause|resume).
    #[command(subcommand)]
    App(ScopeCommand),
    /// Pause or resume every job of a tenant (POST /v1/tenants/{tenant}/pause|resume).
    #[command(subcommand)]
    Tenant(ScopeCommand),
    /// List the app and tenant pauses in force (GET /v1/pauses).
    Pauses,
    /// Count jobs: pending, by state, by app, by tenant (GET /v1/stats).
    Stats,
    /// Bulk operations on the jobs a selector matches (POST /v1/operations, ...).
    #[command(subcommand)]
    Ops(OpsCommand),
    /// Manage the Kafka topics of an installation.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// Inspect and replay dead letters through the replayer's DLQ API.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Preview and explain cron expressions and intervals, offline (no service needed).
    #[command(subcommand)]
    Cron(CronCommand),
    /// API tokens, offline: `new-token` prints a new random token and the hash to configure.
    #[command(subcommand)]
    Auth(AuthCommand),
}

/// `sked auth ...`: offline.
#[derive(Debug, Clone, Subcommand)]
pub enum AuthCommand {
    /// Print a new random API token, and the `[auth.tokens.<name>]` table (its SHA-256) to
    /// put in the configuration or a Kubernetes Secret. The token is shown once; sked stores
    /// only the hash.
    NewToken {
        /// The token's name (the actor in audit records).
        #[arg(long, default_value = "my-token")]
        name: String,
        /// Scopes to grant (jobs:read, jobs:write, ops:write, dlq:read, dlq:replay, admin).
        #[arg(long = "scope", value_name = "SCOPE", default_values = ["jobs:read"])]
        scopes: Vec<String>,
        /// Tenants it acts for (repeat); none = every tenant.
        #[arg(long = "tenant", value_name = "TENANT")]
        tenants: Vec<String>,
    },
    /// Print the hash (`sha256:<hex>`) of a token read from stdin.
    Hash,
}

/// `sked cron ...`: offline, with sked's own schedule code.
#[derive(Debug, Clone, Subcommand)]
pub enum CronCommand {
    /// List the coming fire times of a cron expression (or `--every` interval) in a zone, in
    /// UTC with local time, offset and annotations (gap_shifted, overlap_first,
    /// overlap_second, skipped, excluded), as POST /v1/schedules/preview answers.
    ///
    /// Exits 4 for a bad expression, interval, zone, policy or calendar file.
    Preview(CronPreviewArgs),
    /// Describe a cron expression in plain English: "at 02:30, every day, America/New_York".
    ///
    /// Exits 4 for a bad expression or zone.
    Explain {
        /// The cron expression (5, 6 or 7 fields, or a macro such as `@daily`).
        #[arg(value_name = "EXPR")]
        expr: String,
        /// IANA zone of the expression; default UTC.
        #[arg(long, value_name = "ZONE", default_value = "UTC")]
        tz: String,
    },
}

/// `sked cron preview` arguments.
#[derive(Debug, Clone, clap::Args)]
#[command(group(ArgGroup::new("what").required(true).args(["expr", "every"])))]
pub struct CronPreviewArgs {
    /// The cron expression (5, 6 or 7 fields, or a macro such as `@daily`).
    #[arg(value_name = "EXPR")]
    pub expr: Option<String>,
    /// Preview an interval instead (`15m`), on the grid from `--from`.
    #[arg(long, value_name = "INTERVAL", conflicts_with_all = ["dst_gap", "dst_overlap", "dom_dow"])]
    pub every: Option<String>,
    /// IANA zone of the expression and of the local times shown; default UTC.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub tz: String,
    /// How many fire times (1 to 10000); default 10 without `--to`.
    #[arg(short = 'n', long = "count", value_name = "N", conflicts_with = "to")]
    pub n: Option<u32>,
    /// First instant (RFC 3339); default now.
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339)]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Last instant, inclusive (RFC 3339), at most 3660 days after `--from`.
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339)]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// A local time in a DST gap: `shift` (fire when the gap ends, default) or `skip`.
    #[arg(long, value_name = "POLICY", value_parser = ["shift", "skip"])]
    pub dst_gap: Option<String>,
    /// A local time in a DST overlap: `first` (default), `both` or `last`.
    #[arg(long, value_name = "POLICY", value_parser = ["first", "both", "last"])]
    pub dst_overlap: Option<String>,
    /// How day-of-month and day-of-week combine: `or` or `and`; default the Vixie rule.
    #[arg(long, value_name = "RULE", value_parser = ["or", "and"])]
    pub dom_dow: Option<String>,
    /// A file of exclusion calendars, TOML (`[<name>]` tables with `timezone`, `dates`,
    /// `ranges`, `weekdays`, as in `[calendars.<name>]` of the config) or a JSON object by name.
    #[arg(long, value_name = "PATH")]
    pub calendar_file: Option<PathBuf>,
    /// Attach this calendar of `--calendar-file` (repeat for several); default all of them.
    #[arg(long = "calendar", value_name = "NAME", requires = "calendar_file")]
    pub calendars: Vec<String>,
}

fn parse_rfc3339(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 time such as 2026-12-02T08:00:00Z: {e}"))
}

/// `sked dlq ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum DlqCommand {
    /// List dead letters, newest failure first (GET /v1/dlq).
    Ls {
        /// Which letters.
        #[command(flatten)]
        filter: DlqFilter,
        /// Most letters to list (1 to 10000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// List in DLQ order (partition, offset) instead of newest first.
        #[arg(long)]
        by_offset: bool,
    },
    /// Show one dead letter: headers, key and value (GET /v1/dlq/{partition}/{offset}).
    ///
    /// Exits 3 if there is no dead letter there.
    Show {
        /// `<partition>/<offset>`, as `sked dlq ls` prints it.
        #[arg(value_name = "PARTITION/OFFSET", value_parser = parse_position)]
        at: (i32, i64),
    },
    /// Count dead letters by app, reason and stage (GET /v1/dlq/stats).
    Stats {
        /// Which letters.
        #[command(flatten)]
        filter: DlqFilter,
    },
    /// Republish dead letters to their original topic (POST /v1/dlq/replays), wait for the
    /// replay to finish and print a summary.
    ///
    /// Each replayed record keeps its key, value and headers, with `sked-attempt` set to 1
    /// and `sked-replay-count` incremented; letters replayed `replayer.max_replays` times are
    /// skipped. The replay runs in the replayer and survives its restart; interrupting this
    /// command does not stop it. Without `--yes` it asks for confirmation on a terminal and
    /// refuses otherwise (exit 6).
    Replay(Box<ReplayArgs>),
    /// List the latest replays, newest first, dry runs included (GET /v1/dlq/replays).
    ///
    /// The replayer keeps the latest 1000 replays, each for a week after it finished.
    Replays {
        /// Most replays to list (1 to 1000).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// Filters of `sked dlq ls|stats|replay`; every given filter must match.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DlqFilter {
    /// Only letters of this app (`sked-app`).
    #[arg(long)]
    pub app: Option<String>,
    /// Only letters with this reason (`sked-reason`, e.g. `invalid_cron`).
    #[arg(long)]
    pub reason: Option<String>,
    /// Only letters of this stage.
    #[arg(long, value_parser = ["ingest", "execute"])]
    pub stage: Option<String>,
    /// Only letters whose error message contains this text (case-insensitive).
    #[arg(long, value_name = "TEXT")]
    pub error: Option<String>,
    /// Only letters that failed at or after this time: RFC 3339, epoch ms, or a duration ago
    /// (`1h`).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<String>,
    /// Only letters that failed before this time (same forms as `--since`).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub until: Option<String>,
    /// Only letters of this job id.
    #[arg(long, value_name = "ID")]
    pub job_id: Option<String>,
    /// Only letters of this tenant (`sked-tenant`).
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
}

/// `sked dlq replay` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Which letters.
    #[command(flatten)]
    pub filter: DlqFilter,
    /// Replay at most this many letters, the first ones in DLQ order.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Count what would be replayed; publish nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Records per second (0 = unlimited; default: the replayer's `replayer.replay_rate`).
    #[arg(long, value_name = "N")]
    pub rate: Option<u32>,
    /// Publish every letter to this topic instead of its `original-topic`.
    #[arg(long, value_name = "TOPIC")]
    pub target_topic: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `sked job ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum JobCommand {
    /// Submit a schedule request (POST /v1/jobs).
    ///
    /// Either send a request JSON as-is from a file or stdin (`--file F`, `--file -` or just
    /// `-`), in the native or the Infinite-Scheduler shape, or build a native request from
    /// flags: `--app` and exactly one of `--run-at`, `--delay`, `--cron`, `--every`.
    #[command(override_usage = "\
sked job submit --app <APP> (--run-at <TIME> | --delay <DURATION> | --cron <EXPR> | --every <DURATION>) [OPTIONS]
       sked job submit (--file <FILE> | <FILE> | -) [--idempotency-key <KEY>]")]
    Submit(Box<SubmitArgs>),
    /// Publish a schedule request to the ingest topic over Kafka, as any producer would.
    ///
    /// Takes the same request flags as `submit`, plus the Kafka settings (`--config`, `--set`,
    /// `SKED_*`) and the record key. Prints where the record landed; the ingest service
    /// stores it (or dead-letters it) asynchronously.
    Publish(Box<PublishArgs>),
    /// Show a job: id, app, state, next due time, schedule and payload (GET /v1/jobs/{id}).
    Get {
        /// The job id.
        id: String,
    },
    /// Cancel a job's pending fires (DELETE /v1/jobs/{id}).
    ///
    /// Exits 3 if there is no such job and 5 if it has no pending fire left to cancel.
    Cancel {
        /// The job id.
        id: String,
    },
    /// List jobs: a table of id, app, tenant, state, next due, schedule and labels
    /// (GET /v1/jobs).
    ///
    /// Without `--state`, lists the pending jobs. One page at a time: when there are more,
    /// the last line is the command for the next page; `--all` follows every page.
    Ls(Box<ListArgs>),
    /// Describe a job: state, pause, schedule, next fire times, recent fires with lateness,
    /// counters, latest run and the stored spec (GET /v1/jobs/{id}).
    Describe {
        /// The job id.
        id: String,
        /// How many next fire times to show (at most 1000).
        #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=1000))]
        next: u32,
        /// How many recent fires to show (server default when not given).
        #[arg(long, value_name = "N")]
        history: Option<u32>,
    },
    /// Pause a job: it does not fire until resumed (POST /v1/jobs/{id}/pause).
    Pause {
        /// The job id.
        id: String,
        /// Why, shown by `job describe`.
        #[arg(long)]
        note: Option<String>,
    },
    /// Resume a paused job (POST /v1/jobs/{id}/resume).
    Resume {
        /// The job id.
        id: String,
    },
    /// Fire a job now, once, outside its schedule (POST /v1/jobs/{id}/trigger).
    Trigger(TriggerArgs),
    /// Fire every scheduled time of a job in [--from, --to) (POST /v1/jobs/{id}/backfill).
    Backfill(BackfillArgs),
    /// Move a job's next fire (POST /v1/jobs/{id}/reschedule).
    Reschedule(RescheduleArgs),
    /// Replace a job's schedule request (PUT /v1/jobs/{id} with If-Match).
    ///
    /// Exits 7 if the job changed since the etag was read.
    Update(UpdateArgs),
}

/// `sked job submit` arguments.
#[derive(Debug, Clone, clap::Args)]
// Exactly one source: a request file, or a time flag (with `--app`) to build one.
#[command(group(
    ArgGroup::new("source")
        .args(["file", "input", "run_at", "delay", "cron", "every"])
        .required(true)
        .multiple(false)
))]
pub struct SubmitArgs {
    /// Send the request JSON in this file as-is; `-` reads stdin.
    #[arg(
        long,
        short = 'f',
        value_name = "FILE",
        conflicts_with_all = ["app", "timezone", "id", "payload"]
    )]
    pub file: Option<PathBuf>,
    /// Same as `--file`: a file of request JSON, or `-` for stdin.
    #[arg(value_name = "FILE", conflicts_with_all = ["app", "timezone", "id", "payload"])]
    pub input: Option<PathBuf>,
    /// The app whose handler runs the job.
    #[arg(long, required_unless_present_any = ["file", "input"])]
    pub app: Option<String>,
    /// Fire once at this time: RFC 3339, or a zone-less local time with `--timezone`.
    #[arg(long, value_name = "TIME")]
    pub run_at: Option<String>,
    /// Fire once after this delay, e.g. `15m` or milliseconds.
    #[arg(long, value_name = "DURATION")]
    pub delay: Option<String>,
    /// Fire on this cron expression (in `--timezone`, default the server's).
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// Fire at this interval, e.g. `1h`.
    #[arg(long, value_name = "DURATION")]
    pub every: Option<String>,
    /// IANA zone of `--run-at` local times and `--cron`, e.g. `Asia/Dhaka`.
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// The job id (default: the idempotency key, else a new UUID v7 chosen by the server).
    #[arg(long)]
    pub id: Option<String>,
    /// The payload as raw JSON, sent byte for byte (default `null`).
    #[arg(long, value_name = "JSON", value_parser = parse_payload)]
    pub payload: Option<Box<RawValue>>,
    /// Sent as the `Idempotency-Key` header: a resubmission with the same key is a duplicate.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
}

/// `sked job publish` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct PublishArgs {
    /// The request, as for `submit`.
    #[command(flatten)]
    pub request: SubmitArgs,
    /// Record key (default: `--id` when given, else none).
    #[arg(long)]
    pub key: Option<String>,
    /// Configuration flags (Kafka settings and the ingest topic name).
    #[command(flatten)]
    pub config: sked_core::config::Args,
}

/// `sked topics ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum TopicsCommand {
    /// Create the topics the configuration names (ingest, due, retry, dlq, per-app due
    /// topics) that do not exist yet.
    ///
    /// Reads the Kafka settings like the services do: embedded defaults, `--config FILE`,
    /// `SKED_*` environment, `--set key=value`. New topics get `topics.partitions` and
    /// `topics.replication_factor`. An existing topic is never changed: one whose partition
    /// count differs from the configuration is reported as a warning and the command still
    /// exits 0 (changing it would move keys to other partitions and break per-key order).
    Create {
        /// Configuration flags.
        #[command(flatten)]
        config: sked_core::config::Args,
    },
}

fn parse_api_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme `{}` is not http or https", url.scheme()));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err("the URL has no host".to_owned());
    }
    Ok(url)
}

fn parse_position(raw: &str) -> Result<(i32, i64), String> {
    let (p, o) = raw
        .split_once(['/', ':'])
        .ok_or_else(|| "expected <partition>/<offset>, e.g. 0/42".to_owned())?;
    match (p.trim().parse::<i32>(), o.trim().parse::<i64>()) {
        (Ok(p), Ok(o)) if p >= 0 && o >= 0 => Ok((p, o)),
        _ => Err("expected <partition>/<offset> with whole numbers, e.g. 0/42".to_owned()),
    }
}

/// RFC 3339 and epoch ms pass through; a duration becomes epoch ms that long ago.
fn parse_since(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.parse::<i64>().is_ok() || chrono_like_rfc3339(raw) {
        return Ok(raw.to_owned());
    }
    let ago = humantime::parse_duration(raw).map_err(|_| {
        format!(
            "expected an RFC 3339 time, epoch milliseconds or a duration like `1h`, found `{raw}`"
        )
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ms = now.saturating_sub(ago).as_millis();
    Ok(ms.to_string())
}

fn chrono_like_rfc3339(raw: &str) -> bool {
    humantime::parse_rfc3339_weak(raw).is_ok()
        || (raw.len() >= 20 && raw.as_bytes().get(10) == Some(&b'T'))
}

fn parse_timeout(raw: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(raw.trim())
        .map_err(|e| format!("not a duration like \"30s\": {e}"))?;
    if d.is_zero() {
        return Err("must be more than zero".to_owned());
    }
    Ok(d)
}

fn parse_payload(raw: &str) -> Result<Box<RawValue>, String> {
    RawValue::from_string(raw.to_owned()).map_err(|e| format!("not valid JSON: {e}"))
}

#[cfg(test)]
mod tests;
