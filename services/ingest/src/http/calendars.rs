//! Exclusion calendars: `GET /v1/calendars`, `GET/PUT/DELETE /v1/calendars/{name}`. Stored in
//! Redis ([`sked_core::store::calendars`]); the config's are listed too and are read-only.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
};
use sked_api::calendars::{CalendarDeleted, CalendarInfo, CalendarList, CalendarSource};
use sked_core::{
    schedule::{self, Calendar},
    store::calendars::Source,
};

use super::{Answer, Api, ApiError, ok, preview::typed_body};

/// Most calendars created through the API.
pub const MAX_STORED: usize = 1000;

fn info(name: &str, source: Source, calendar: &Calendar) -> Result<CalendarInfo, ApiError> {
    // The core calendar serializes in the API's shape.
    let calendar = serde_json::to_value(calendar)
        .and_then(serde_json::from_value)
        .map_err(|_| ApiError::internal())?;
    Ok(CalendarInfo {
        name: name.to_owned(),
        source: match source {
            Source::Config => CalendarSource::Config,
            Source::Api => CalendarSource::Api,
        },
        calendar,
    })
}

fn check_name(name: &str) -> Result<(), ApiError> {
    schedule::check_calendar_name(name).map_err(|why| ApiError::bad_param("name", why))
}

fn read_only(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "read_only",
        format!(
            "calendar `{name}` is defined in the config (`[calendars.{name}]`); change it there"
        ),
    )
}

/// `GET /v1/calendars`.
pub async fn list(State(api): State<Api>) -> Answer {
    let stored = api.store.stored_calendars().await?;
    let config = api.calendars.config();
    let mut calendars = Vec::with_capacity(stored.len() + config.len());
    for (name, calendar) in config.iter() {
        calendars.push(info(name, Source::Config, calendar)?);
    }
    for (name, calendar) in stored.iter().filter(|(n, _)| !config.contains(n)) {
        calendars.push(info(name, Source::Api, calendar)?);
    }
    calendars.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ok(StatusCode::OK, &CalendarList { calendars }))
}

/// `GET /v1/calendars/{name}`.
pub async fn get(State(api): State<Api>, Path(name): Path<String>) -> Answer {
    check_name(&name)?;
    if let Some(calendar) = api.calendars.config().get(&name) {
        return Ok(ok(StatusCode::OK, &info(&name, Source::Config, calendar)?));
    }
    let stored = api.store.stored_calendars().await?;
    match stored.get(&name) {
        Some(calendar) => Ok(ok(StatusCode::OK, &info(&name, Source::Api, calendar)?)),
        None => Err(ApiError::not_found(format!("calendar {name}"))),
    }
}

/// `PUT /v1/calendars/{name}`: 201 created, 200 replaced.
pub async fn put(State(api): State<Api>, Path(name): Path<String>, body: Bytes) -> Answer {
    check_name(&name)?;
    if api.calendars.config_source(&name).is_some() {
        return Err(read_only(&name));
    }
    let calendar: Calendar = typed_body(&body)?;
    if let Some(why) = calendar.problems().into_iter().next() {
        let field = why
            .trim_start_matches('`')
            .split(['`', '['])
            .next()
            .filter(|f| ["dates", "ranges", "weekdays", "description"].contains(f))
            .unwrap_or("calendar")
            .to_owned();
        return Err(ApiError::bad_param(&field, why));
    }
    let stored = api.store.stored_calendars().await?;
    if !stored.contains(&name) && stored.len() >= MAX_STORED {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "limit_reached",
            format!("{MAX_STORED} calendars exist already; delete one first"),
        ));
    }
    let replaced = api.store.put_calendar(&name, &calendar).await?;
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(ok(status, &info(&name, Source::Api, &calendar)?))
}

/// `DELETE /v1/calendars/{name}`: idempotent; jobs that attach it fire as if it were empty.
pub async fn delete(State(api): State<Api>, Path(name): Path<String>) -> Answer {
    check_name(&name)?;
    if api.calendars.config_source(&name).is_some() {
        return Err(read_only(&name));
    }
    let existed = api.store.delete_calendar(&name).await?;
    let status = if existed { "deleted" } else { "not_found" };
    Ok(ok(
        StatusCode::OK,
        &CalendarDeleted {
            name,
            status: status.to_owned(),
        },
    ))
}
