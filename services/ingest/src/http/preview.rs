//! `POST /v1/schedules/preview`: the coming slots of a cron expression or interval, with their
//! local times, DST notes and calendar exclusions, from the same code as `sked cron preview`
//! ([`sked_core::schedule::Query`]).

use axum::{body::Bytes, extract::State, http::StatusCode};
use chrono::Utc;
use chrono_tz::Tz;
use sked_api::{
    ErrorDetail,
    stats::{self, PreviewRequest, PreviewResponse},
};
use sked_core::{
    reason::Reason,
    request,
    schedule::{self, DomDow, DstPolicy, Gap, Overlap, Query},
};

use super::{Answer, Api, ApiError, body_of, ok};

/// A JSON body of type `T`; a value of the wrong kind is `invalid_field` naming the field.
pub(super) fn typed_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(err) => {
            let path = err.path().to_string();
            let field = path.split(['.', '[']).next().unwrap_or_default();
            if field.is_empty() || field == "?" {
                return body_of(body);
            }
            let inner = err.inner().to_string();
            let inner = inner.split(" at line ").next().unwrap_or(&inner);
            Err(ApiError::from(ErrorDetail {
                code: Reason::InvalidField.to_string(),
                message: format!("{path}: {inner}"),
                param: Some(field.to_owned()),
            }))
        }
    }
}

/// `POST /v1/schedules/preview`.
pub async fn preview(State(api): State<Api>, body: Bytes) -> Answer {
    let req: PreviewRequest = typed_body(&body)?;
    let tz = match &req.timezone {
        Some(name) => name.parse::<Tz>().map_err(|_| {
            ApiError::from(ErrorDetail {
                code: Reason::InvalidTimezone.to_string(),
                message: format!(
                    "timezone: `{name}` is not an IANA time zone name such as \"Asia/Dhaka\""
                ),
                param: Some("timezone".to_owned()),
            })
        })?,
        None => api.limits.default_timezone,
    };
    if req.calendars.len() > schedule::MAX_ATTACHED {
        return Err(ApiError::bad_param(
            "calendars",
            format!("calendars: at most {}", schedule::MAX_ATTACHED),
        ));
    }
    let known = api.calendars.for_names(&req.calendars).await?;
    if let Some(name) = req.calendars.iter().find(|n| !known.contains(n)) {
        return Err(ApiError::from(ErrorDetail {
            code: Reason::UnknownCalendar.to_string(),
            message: format!("calendars: no calendar named `{name}`"),
            param: Some("calendars".to_owned()),
        }));
    }
    let query = Query {
        cron: req.cron.as_deref(),
        every: req.every.as_deref(),
        start_at: req.start_at,
        tz,
        dst: req.dst.map(dst),
        dom_dow: req.dom_dow.map(|d| match d {
            stats::DomDow::Or => DomDow::Or,
            stats::DomDow::And => DomDow::And,
        }),
        from: req.from.unwrap_or_else(Utc::now),
        to: req.to,
        n: req.n,
    };
    let answer = query.run(&known.resolve(&req.calendars)).map_err(|e| {
        ApiError::from(ErrorDetail {
            code: e
                .reason
                .map_or_else(|| "invalid_parameter".to_owned(), |r| r.to_string()),
            message: format!("{}: {}", e.param, e.message),
            param: Some(e.param.to_owned()),
        })
    })?;
    // The core slot serializes in the API's shape (one definition of the JSON).
    let slots = serde_json::to_value(&answer.slots)
        .and_then(serde_json::from_value)
        .map_err(|_| ApiError::internal())?;
    Ok(ok(
        StatusCode::OK,
        &PreviewResponse {
            description: answer.description,
            timezone: tz.name().to_owned(),
            slots,
        },
    ))
}

fn dst(policy: stats::DstPolicy) -> DstPolicy {
    DstPolicy {
        gap: match policy.gap {
            stats::DstGap::Shift => Gap::Shift,
            stats::DstGap::Skip => Gap::Skip,
        },
        overlap: match policy.overlap {
            stats::DstOverlap::First => Overlap::First,
            stats::DstOverlap::Both => Overlap::Both,
            stats::DstOverlap::Last => Overlap::Last,
        },
    }
}

/// Checks that the calendars a request attaches exist (a fresh look when one is not known).
pub(super) async fn check_calendars(api: &Api, spec: &request::JobSpec) -> Result<(), ApiError> {
    if spec.calendars.is_empty() {
        return Ok(());
    }
    let known = api.calendars.for_names(&spec.calendars).await?;
    request::check_calendars(spec, &known).map_err(ApiError::from)
}
