//! Schedule math: when does a job fire. Pure functions, no IO, no clock.
//!
//! Instants are `DateTime<Utc>` throughout; a zone ([`Tz`](chrono_tz::Tz)) only says how to
//! read wall-clock times such as a cron expression or a zone-less `run_at`. The rules, with
//! worked examples, are in `docs/schedules.md`; in short:
//!
//! - **Cron** ([`CronExpr`]): 5 fields (crontab, days of week `0`-`7` with 0 and 7 = Sunday),
//!   6 or 7 fields (Quartz, seconds first and an optional year; days of week `1`-`7` =
//!   Sunday-Saturday), or a macro. Quartz tokens `L`, `L-n`, `W`, `LW`, `#`, `xL`, `?`, and names
//!   everywhere. Every invalid expression is rejected with a message naming the field.
//! - **Day rule** ([`DomDow`]): for 5 fields, Vixie/cronie: a day field starting with `*` is
//!   unrestricted and the other decides (AND); two restricted fields are OR-ed. 6/7 fields AND.
//!   An explicit `dom_dow` overrides.
//! - **DST** ([`DstPolicy`], per schedule): gap `shift` (default, fire at the first instant
//!   after the gap) or `skip`; overlap `first` (default), `last` or `both`.
//! - **Every** ([`Interval`]): an absolute duration, unaffected by DST.
//! - **Calendars** ([`Calendar`]): named sets of excluded days in a zone; a slot on such a day
//!   does not fire (the scheduler counts it as `excluded`).
//!
//! Why sked has its own cron matcher instead of a crate: the `cron` crate (0.15, used until now)
//! has no `L`, `W` or `#`, and no way to change the day rule. `croner` (3.x/4.x) has the Quartz
//! tokens and OCPS conformance, but sked needs, all at once, two day-of-week numberings chosen
//! by the number of fields (5 fields: crontab `0`-`7`; 6/7 fields: Quartz `1`-`7`, which stored
//! jobs already use), a default day rule that differs by form, error messages naming the field,
//! the parsed fields for [`explain`], and wall-clock evaluation under a per-schedule DST policy
//! (croner resolves DST its own way). Wrapping croner would mean re-parsing every expression to
//! check and describe it; the matcher itself is ~300 lines of bit sets ([`CronExpr`] module
//! doc), and it computes well over a million next fire times per second with a zone (see
//! `benches/schedule.rs`).
//!
//! What to do with fire times that were missed ([`Misfire`]), how many runs are left
//! (`max_runs`) and jitter are decided by the scheduler; this module only computes nominal
//! fire times.

mod calendar;
mod cron;
mod dst;
mod explain;
mod field;
mod interval;
mod misfire;
mod preview;
mod query;
mod spec;

#[cfg(test)]
mod cron_dst_tests;
#[cfg(test)]
mod cron_tests;

pub use self::calendar::{
    Calendar, Calendars, DateRange, MAX_ATTACHED, MAX_CALENDAR_DAYS,
    check_name as check_calendar_name, excluded_by,
};
pub use self::cron::{CronExpr, DomDow, Note, Slot};
pub use self::dst::{
    DstPolicy, Gap, LocalTime, Overlap, classify, resolve_local, resolve_local_with,
};
pub use self::explain::{explain, explain_every, explain_schedule};
pub use self::interval::{Interval, parse_duration};
pub use self::misfire::Misfire;
pub use self::preview::{Limit, MAX_PREVIEW, PreviewRule, PreviewSlot, preview, preview_excluding};
pub use self::query::{Answer, DEFAULT_PREVIEW, MAX_PREVIEW_DAYS, Query, QueryError};
pub use self::spec::Schedule;
