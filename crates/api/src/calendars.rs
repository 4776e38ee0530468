//! Exclusion calendars (`PUT/GET/DELETE /v1/calendars/{name}`, `GET /v1/calendars`) on the
//! ingest service. A schedule attaches them by name (`"calendars": ["holidays"]`); a slot on an
//! excluded day does not fire and is counted as `excluded`. Calendars from the config
//! (`[calendars.<name>]`) are listed with `source: config` and cannot be changed here.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A calendar: the days it excludes, in its zone. Body of `PUT /v1/calendars/{name}`; at least
/// one of `dates`, `ranges`, `weekdays`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// IANA zone whose days are meant; default `UTC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Excluded days, e.g. `2026-12-25`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<NaiveDate>,
    /// Excluded ranges of days, both ends inclusive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<DateRange>,
    /// Excluded days of the week: `mon` ... `sun` or full names, any case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<String>,
    /// For people, at most 1024 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Days `from` to `to`, inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DateRange {
    /// First excluded day.
    pub from: NaiveDate,
    /// Last excluded day.
    pub to: NaiveDate,
}

/// Where a calendar is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CalendarSource {
    /// A `[calendars.<name>]` config table: read-only.
    Config,
    /// Created through `PUT /v1/calendars/{name}`.
    Api,
}

/// A calendar with its name; answer of `GET` and `PUT /v1/calendars/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CalendarInfo {
    /// Its name (1 to 64 of `A-Z a-z 0-9 . _ -`).
    pub name: String,
    /// Where it is defined.
    pub source: CalendarSource,
    /// What it excludes.
    pub calendar: Calendar,
}

/// Answer of `GET /v1/calendars`: every calendar, by name (at most 1000 from the API plus the
/// config's, so not paginated).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CalendarList {
    /// The calendars, by name.
    pub calendars: Vec<CalendarInfo>,
}

/// Answer of `DELETE /v1/calendars/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CalendarDeleted {
    /// The calendar.
    pub name: String,
    /// `deleted`, or `not_found` when there was none (deleting is idempotent).
    pub status: String,
}
