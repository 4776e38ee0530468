//! [`Query`]: a preview as asked for by a person (the REST `POST /v1/schedules/preview`, the
//! CLI's `sked cron preview`), checked with errors that name the field, then run by
//! [`preview_excluding`]. Pure; both callers share it so that they accept and answer the same.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::calendar::Calendar;
use super::cron::{CronExpr, DomDow};
use super::dst::DstPolicy;
use super::explain::{explain, explain_every};
use super::interval::Interval;
use super::preview::{Limit, MAX_PREVIEW, PreviewRule, PreviewSlot, preview_excluding};
use crate::reason::Reason;

/// Fire times listed when neither `n` nor `to` is given.
pub const DEFAULT_PREVIEW: u32 = 10;

/// Longest `to - from` of one preview, in days (ten years).
pub const MAX_PREVIEW_DAYS: i64 = 3660;

/// What to preview, as given.
#[derive(Debug, Clone, Default)]
pub struct Query<'a> {
    /// A cron expression.
    pub cron: Option<&'a str>,
    /// An interval (`"15m"`).
    pub every: Option<&'a str>,
    /// The anchor of an `every` grid; default `from`.
    pub start_at: Option<DateTime<Utc>>,
    /// The zone of `cron` and of the local times shown.
    pub tz: Tz,
    /// DST policy of `cron`.
    pub dst: Option<DstPolicy>,
    /// Day rule of `cron`.
    pub dom_dow: Option<DomDow>,
    /// First instant, inclusive.
    pub from: DateTime<Utc>,
    /// Last instant, inclusive.
    pub to: Option<DateTime<Utc>>,
    /// Most fire times.
    pub n: Option<u32>,
}

/// Why a [`Query`] cannot run: a reason, the field at fault and a lowercase message that names
/// it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct QueryError {
    /// Machine-readable: `invalid_cron`, `invalid_interval`, `invalid_field`, `missing_field`
    /// (as [`Reason`]), or `None` for a parameter out of bounds (`invalid_parameter`).
    pub reason: Option<Reason>,
    /// The field: `cron`, `every`, `dst`, `dom_dow`, `n`, `to`.
    pub param: &'static str,
    /// What is wrong.
    pub message: String,
}

fn fail(reason: Option<Reason>, param: &'static str, message: impl Into<String>) -> QueryError {
    QueryError {
        reason,
        param,
        message: message.into(),
    }
}

/// The result of a [`Query`].
#[derive(Debug, Clone)]
pub struct Answer {
    /// The schedule in plain English ([`explain`]).
    pub description: String,
    /// The slots, oldest first.
    pub slots: Vec<PreviewSlot>,
}

impl Query<'_> {
    /// Checks the query and runs it, marking the slots that `calendars` exclude.
    pub fn run(&self, calendars: &[(String, Arc<Calendar>)]) -> Result<Answer, QueryError> {
        let limit = self.limit()?;
        match (self.cron, self.every) {
            (Some(text), None) => {
                let expr = CronExpr::parse(text)
                    .map_err(|e| fail(Some(Reason::InvalidCron), "cron", e))?;
                if self.dom_dow == Some(DomDow::Or) && expr.has_plus() {
                    return Err(fail(
                        Some(Reason::InvalidField),
                        "dom_dow",
                        "\"or\" contradicts the `+` before the day-of-week field of `cron`",
                    ));
                }
                let expr = expr
                    .with_dom_dow(self.dom_dow)
                    .with_dst(self.dst.unwrap_or_default());
                Ok(Answer {
                    description: explain(&expr, self.tz),
                    slots: preview_excluding(
                        PreviewRule::Cron(&expr),
                        self.tz,
                        self.from,
                        limit,
                        calendars,
                    ),
                })
            }
            (None, Some(text)) => {
                let interval = Interval::parse(text)
                    .map_err(|e| fail(Some(Reason::InvalidInterval), "every", e))?;
                if let Some(name) = [
                    ("dst", self.dst.is_some()),
                    ("dom_dow", self.dom_dow.is_some()),
                ]
                .into_iter()
                .find_map(|(name, set)| set.then_some(name))
                {
                    return Err(fail(
                        Some(Reason::InvalidField),
                        name,
                        "applies only to `cron` schedules (an `every` interval is an absolute \
                         duration)",
                    ));
                }
                let anchor = self.start_at.unwrap_or(self.from);
                Ok(Answer {
                    description: format!("{}, {}", explain_every(interval), self.tz.name()),
                    slots: preview_excluding(
                        PreviewRule::Every { interval, anchor },
                        self.tz,
                        self.from,
                        limit,
                        calendars,
                    ),
                })
            }
            (Some(_), Some(_)) => Err(fail(
                Some(Reason::InvalidField),
                "every",
                "give `cron` or `every`, not both",
            )),
            (None, None) => Err(fail(
                Some(Reason::MissingField),
                "cron",
                "one of `cron` or `every` is required",
            )),
        }
    }

    fn limit(&self) -> Result<Limit, QueryError> {
        match (self.n, self.to) {
            (Some(_), Some(_)) => Err(fail(None, "n", "give `n` or `to`, not both")),
            (Some(n), None) if n == 0 || n as usize > MAX_PREVIEW => Err(fail(
                None,
                "n",
                format!("must be 1 to {MAX_PREVIEW}, not {n}"),
            )),
            (Some(n), None) => Ok(Limit::Count(n as usize)),
            (None, Some(to)) if to < self.from => Err(fail(
                None,
                "to",
                format!(
                    "{} is before `from` {}",
                    to.to_rfc3339(),
                    self.from.to_rfc3339()
                ),
            )),
            (None, Some(to)) if to - self.from > TimeDelta::days(MAX_PREVIEW_DAYS) => Err(fail(
                None,
                "to",
                format!("at most {MAX_PREVIEW_DAYS} days after `from`"),
            )),
            (None, Some(to)) => Ok(Limit::Until(to)),
            (None, None) => Ok(Limit::Count(DEFAULT_PREVIEW as usize)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn query(cron: &str) -> Query<'_> {
        Query {
            cron: Some(cron),
            tz: chrono_tz::America::New_York,
            from: at("2026-03-07T00:00:00Z"),
            ..Query::default()
        }
    }

    #[test]
    fn a_query_explains_and_previews() {
        let answer = query("0 30 2 * * *").run(&[]).unwrap();
        assert_eq!(answer.description, "at 02:30, every day, America/New_York");
        assert_eq!(answer.slots.len(), DEFAULT_PREVIEW as usize);
    }

    #[test]
    fn bad_queries_name_the_field() {
        let err = query("0 30 25 * * *").run(&[]).unwrap_err();
        assert_eq!((err.reason, err.param), (Some(Reason::InvalidCron), "cron"));
        assert!(err.message.contains("hour"), "{}", err.message);
        let q = Query {
            n: Some(MAX_PREVIEW as u32 + 1),
            ..query("* * * * *")
        };
        assert_eq!(q.run(&[]).unwrap_err().param, "n");
        let q = Query {
            to: Some(at("2040-01-01T00:00:00Z")),
            ..query("* * * * *")
        };
        assert_eq!(q.run(&[]).unwrap_err().param, "to");
        let q = Query {
            cron: None,
            every: Some("1h"),
            dst: Some(DstPolicy::default()),
            ..query("")
        };
        assert_eq!(q.run(&[]).unwrap_err().param, "dst");
    }
}
