//! The list filter of jobs, in its three forms: the query string of `GET /v1/jobs`
//! ([`ListQuery::from_query_str`], [`ListQuery::to_query_string`]), the JSON [`Selector`] of a
//! bulk operation, and the selector string of `sked ops create --selector`
//! ([`Selector::parse`], [`Selector::to_selector_string`]).
//!
//! Query string: `state=scheduled,paused&app=sms&tenant=acme&label=team=pay&label=tier=1&
//! kind=cron&due_after=<RFC 3339>&due_before=<RFC 3339>&payload=<text>&order=due&limit=100&
//! cursor=<opaque>`.
//! `label` may repeat (every label must match); a repeated `state` adds states; any other
//! repeated or unknown parameter, an empty value, or a bad value is an `invalid_parameter`
//! error naming the parameter.
//!
//! Selector string: comma-separated `key=value` terms with the same names (no `order`,
//! `limit`, `cursor`), e.g. `app=sms,label=team=pay,state=scheduled,paused`: a term without
//! `=` right after `state` terms is one more state. Values cannot contain commas.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    error::ErrorDetail,
    jobs::{JobKind, JobState},
};

/// Longest `payload` search text, in bytes.
pub const MAX_PAYLOAD_SEARCH: usize = 256;

/// Largest `limit` of a list page.
pub const MAX_LIMIT: u32 = 1000;
/// `limit` of a list page when none is given.
pub const DEFAULT_LIMIT: u32 = 100;

/// Which jobs: every given filter must match. Absent `state` means the pending states
/// (`scheduled,paused,held,firing`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// Comma-separated job states, e.g. `scheduled,paused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Only jobs of this app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Only jobs of this tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `key=value` label selectors; every one must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label: Vec<String>,
    /// Only jobs of this kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<JobKind>,
    /// Only jobs next due at or after this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_after: Option<DateTime<Utc>>,
    /// Only jobs next due before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_before: Option<DateTime<Utc>>,
    /// Only jobs whose payload, as its stored JSON text, contains this text (case-sensitive,
    /// 1 to 256 bytes; an encrypted payload is not searched). Not an index: a page examines
    /// at most 10,000 jobs, so a rare text may answer fewer jobs than asked for, with a
    /// cursor to go on from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// Order of a job list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Next due time, soonest first (the default).
    #[default]
    Due,
    /// Creation time, oldest first.
    Created,
}

impl Order {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Order::Due => "due",
            Order::Created => "created",
        }
    }
}

/// The query of `GET /v1/jobs`: the filter plus paging.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Which jobs.
    #[serde(default)]
    pub filter: Selector,
    /// Order of the list; default `due`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
    /// Page size, 1 to 1000; default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (opaque).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

fn bad(param: &str, message: impl Into<String>) -> ErrorDetail {
    ErrorDetail::invalid_parameter(param, message)
}

fn time(param: &str, raw: &str) -> Result<DateTime<Utc>, ErrorDetail> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            bad(
                param,
                format!("{param}: `{raw}` is not an RFC 3339 time such as 2026-01-31T09:00:00Z"),
            )
        })
}

fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Checks a comma-separated state list; returns it without blanks around the names.
fn states(raw: &str) -> Result<String, ErrorDetail> {
    let mut names = Vec::new();
    for name in raw.split(',').map(str::trim) {
        let state: JobState = name
            .parse()
            .map_err(|e: String| bad("state", format!("state: {e}")))?;
        names.push(state.as_str());
    }
    Ok(names.join(","))
}

fn payload(raw: &str) -> Result<&str, ErrorDetail> {
    if raw.is_empty() || raw.len() > MAX_PAYLOAD_SEARCH {
        return Err(bad(
            "payload",
            format!("payload: the search text must be 1 to {MAX_PAYLOAD_SEARCH} bytes"),
        ));
    }
    Ok(raw)
}

fn label(raw: &str) -> Result<String, ErrorDetail> {
    match raw.split_once('=') {
        Some((key, _)) if !key.trim().is_empty() => Ok(raw.to_owned()),
        _ => Err(bad(
            "label",
            format!("label: `{raw}` is not a key=value selector such as team=pay"),
        )),
    }
}

impl Selector {
    /// The states to match: those given, else [`JobState::PENDING`].
    pub fn states(&self) -> Result<Vec<JobState>, ErrorDetail> {
        match &self.state {
            None => Ok(JobState::PENDING.to_vec()),
            Some(raw) => raw
                .split(',')
                .map(|s| {
                    s.trim()
                        .parse()
                        .map_err(|e: String| bad("state", format!("state: {e}")))
                })
                .collect(),
        }
    }

    /// The label selectors as (key, value) pairs.
    pub fn labels(&self) -> Result<Vec<(String, String)>, ErrorDetail> {
        self.label
            .iter()
            .map(|l| {
                label(l)?;
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                Ok((k.to_owned(), v.to_owned()))
            })
            .collect()
    }

    /// Checks what serde cannot: the state names, the label forms and the payload text's
    /// length (for the JSON form).
    pub fn validate(&self) -> Result<(), ErrorDetail> {
        self.states()?;
        self.labels()?;
        if let Some(p) = &self.payload {
            payload(p)?;
        }
        Ok(())
    }

    /// Sets one filter from its parameter name; `Ok(false)` if `name` is not a filter.
    fn set(&mut self, name: &str, value: &str) -> Result<bool, ErrorDetail> {
        if value.trim().is_empty() {
            return Err(bad(name, format!("{name}: must not be empty")));
        }
        let once = |slot: bool| {
            if slot {
                Err(bad(name, format!("{name}: given more than once")))
            } else {
                Ok(())
            }
        };
        match name {
            "state" => {
                let more = states(value)?;
                self.state = Some(match self.state.take() {
                    Some(had) => format!("{had},{more}"),
                    None => more,
                });
            }
            "app" => {
                once(self.app.is_some())?;
                self.app = Some(value.to_owned());
            }
            "tenant" => {
                once(self.tenant.is_some())?;
                self.tenant = Some(value.to_owned());
            }
            "label" => self.label.push(label(value)?),
            "kind" => {
                once(self.kind.is_some())?;
                self.kind = Some(
                    value
                        .parse()
                        .map_err(|e: String| bad("kind", format!("kind: {e}")))?,
                );
            }
            "due_after" => {
                once(self.due_after.is_some())?;
                self.due_after = Some(time(name, value)?);
            }
            "due_before" => {
                once(self.due_before.is_some())?;
                self.due_before = Some(time(name, value)?);
            }
            "payload" => {
                once(self.payload.is_some())?;
                self.payload = Some(payload(value)?.to_owned());
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The filters as (name, value) pairs, in a fixed order.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(s) = &self.state {
            pairs.push(("state", s.clone()));
        }
        if let Some(a) = &self.app {
            pairs.push(("app", a.clone()));
        }
        if let Some(t) = &self.tenant {
            pairs.push(("tenant", t.clone()));
        }
        for l in &self.label {
            pairs.push(("label", l.clone()));
        }
        if let Some(k) = self.kind {
            pairs.push(("kind", k.as_str().to_owned()));
        }
        if let Some(t) = &self.due_after {
            pairs.push(("due_after", format_time(t)));
        }
        if let Some(t) = &self.due_before {
            pairs.push(("due_before", format_time(t)));
        }
        if let Some(p) = &self.payload {
            pairs.push(("payload", p.clone()));
        }
        pairs
    }

    /// Parses the selector string form, e.g. `app=sms,label=team=pay,state=scheduled,paused`.
    pub fn parse(raw: &str) -> Result<Selector, ErrorDetail> {
        let mut selector = Selector::default();
        let mut after_state = false;
        for term in raw.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let Some((name, value)) = term.split_once('=') else {
                if after_state {
                    selector.set("state", term)?;
                    continue;
                }
                return Err(ErrorDetail::invalid_parameter(
                    "selector",
                    format!("selector: `{term}` is not a key=value term such as app=sms"),
                ));
            };
            let name = name.trim();
            if !selector.set(name, value.trim())? {
                return Err(bad(
                    name,
                    format!(
                        "selector: unknown key `{name}`, expected one of state, app, tenant, \
                         label, kind, due_after, due_before, payload"
                    ),
                ));
            }
            after_state = name == "state";
        }
        Ok(selector)
    }

    /// The selector string form; [`Selector::parse`] reads it back unchanged.
    pub fn to_selector_string(&self) -> String {
        let terms: Vec<String> = self
            .pairs()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        terms.join(",")
    }
}

impl ListQuery {
    /// Parses the raw query string of `GET /v1/jobs` (without the `?`).
    pub fn from_query_str(raw: &str) -> Result<ListQuery, ErrorDetail> {
        let mut query = ListQuery::default();
        for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
            if query.filter.set(&name, &value)? {
                continue;
            }
            let given = match name.as_ref() {
                "order" => query.order.is_some(),
                "limit" => query.limit.is_some(),
                "cursor" => query.cursor.is_some(),
                _ => {
                    return Err(bad(
                        &name,
                        format!(
                            "unknown parameter `{name}`, expected one of state, app, tenant, \
                             label, kind, due_after, due_before, order, limit, cursor"
                        ),
                    ));
                }
            };
            if given {
                return Err(bad(&name, format!("{name}: given more than once")));
            }
            if value.is_empty() {
                return Err(bad(&name, format!("{name}: must not be empty")));
            }
            match name.as_ref() {
                "order" => {
                    query.order = Some(match value.as_ref() {
                        "due" => Order::Due,
                        "created" => Order::Created,
                        other => {
                            return Err(bad(
                                "order",
                                format!("order: unknown order `{other}`, expected due or created"),
                            ));
                        }
                    });
                }
                "limit" => {
                    let limit = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            bad(
                                "limit",
                                format!(
                                    "limit: expected a whole number from 1 to {MAX_LIMIT}, found `{value}`"
                                ),
                            )
                        })?;
                    query.limit = Some(limit);
                }
                _ => query.cursor = Some(value.into_owned()),
            }
        }
        Ok(query)
    }

    /// The query string (without `?`); [`ListQuery::from_query_str`] reads it back unchanged.
    pub fn to_query_string(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.filter.pairs() {
            out.append_pair(k, &v);
        }
        if let Some(o) = self.order {
            out.append_pair("order", o.as_str());
        }
        if let Some(l) = self.limit {
            out.append_pair("limit", &l.to_string());
        }
        if let Some(c) = &self.cursor {
            out.append_pair("cursor", c);
        }
        out.finish()
    }

    /// The page size: `limit`, else [`DEFAULT_LIMIT`].
    pub fn limit_or_default(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT)
    }
}

#[cfg(test)]
mod tests;
