//! Sign in with an API token (or a JWT of the configured issuer), sign out.

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use maud::html;
use sked_api::stats::Whoami;

use super::{Nav, layout, page};
use crate::{
    App,
    api::Api,
    session::COOKIE,
    web::{Fields, Signed, check_post},
};

fn safe_next(next: Option<&str>) -> &str {
    // Only a path of this console: never another host (`//evil`, `https://…`).
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

fn render(app: &App, next: &str, error: Option<&str>, bye: bool) -> Response {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let body = html! {
        @if bye { p.notice role="status" data-test="signed-out" { "Signed out." } }
        @if let Some(e) = error { p.error role="alert" data-test="error" { (e) } }
        form.login method="post" action=(app.href("/login")) {
            input type="hidden" name="next" value=(next);
            label for="token" { "API token or JWT" }
            input #token name="token" type="password" autocomplete="off" required autofocus;
            p.hint { "The token is sent to sked's API only; the console keeps it in memory for this session and never shows it again. Create one with " code { "sked auth new-token" } "." }
            button type="submit" data-test="sign-in" { "Sign in" }
        }
    };
    page(status, layout(app, None, Nav::None, "Sign in", body))
}

/// `GET /login`.
pub async fn form(State(app): State<App>, RawQuery(q): RawQuery) -> Response {
    let q = Fields::parse(q.unwrap_or_default().as_bytes());
    render(&app, safe_next(q.get("next")), None, q.get("bye").is_some())
}

/// `POST /login`: the token is checked by the API (`GET /v1/whoami`); a refused one stays
/// on this page with the API's reason.
pub async fn sign_in(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Fields::parse(&body);
    let next = safe_next(form.get("next")).to_owned();
    if crate::web::foreign(&headers) {
        return render(&app, &next, Some("sign-in must come from this page"), false);
    }
    let Some(token) = form.get("token").map(str::to_owned) else {
        return render(&app, &next, Some("enter a token"), false);
    };
    let who: Whoami = match app.api.get(Api::Rest, &token, "/v1/whoami").await {
        Ok(who) => who,
        Err(f) => {
            let why = format!("sign-in refused: {} ({})", f.message, f.code);
            return render(&app, &next, Some(&why), false);
        }
    };
    let id = match app.sessions.create(token, who) {
        Ok(id) => id,
        Err(e) => return render(&app, &next, Some(&format!("cannot sign in: {e}")), false),
    };
    let mut cookie = format!(
        "{COOKIE}={id}; Path={}; HttpOnly; SameSite=Strict",
        if app.prefix.is_empty() {
            "/"
        } else {
            &app.prefix
        }
    );
    if app.secure_cookie {
        cookie.push_str("; Secure");
    }
    let mut response = Redirect::to(&app.href(&next)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `POST /logout`: the session ends here, whatever the browser keeps.
pub async fn sign_out(
    State(app): State<App>,
    Signed(session): Signed,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Fields::parse(&body);
    if let Some(refused) = check_post(&app, &session, &headers, &form) {
        return refused;
    }
    if let Some(id) = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| crate::session::cookie(c, COOKIE))
    {
        app.sessions.remove(id);
    }
    let mut response = Redirect::to(&app.href("/login?bye=1")).into_response();
    let path = if app.prefix.is_empty() {
        "/"
    } else {
        &app.prefix
    };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}=; Path={path}; HttpOnly; SameSite=Strict; Max-Age=0"
    )) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/jobs?app=x")), "/jobs?app=x");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "jobs",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
