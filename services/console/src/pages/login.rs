//! Sign in with an API token (or a JWT of the configured issuer), or through the OpenID
//! Connect provider of `console.oidc`; sign out.

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
    oidc::{PENDING_TTL, Refusal, STATE_COOKIE},
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
    render_with(app, status, next, error, bye)
}

fn render_with(
    app: &App,
    status: StatusCode,
    next: &str,
    error: Option<&str>,
    bye: bool,
) -> Response {
    let body = html! {
        @if bye { p.notice role="status" data-test="signed-out" { "Signed out." } }
        @if let Some(e) = error { p.error role="alert" data-test="error" { (e) } }
        @if let Some(oidc) = &app.oidc {
            p.sso {
                a.button href={ (app.href("/oidc/start")) (crate::api::query([("next", next)])) } data-test="sso" {
                    "Sign in with " (oidc.name())
                }
            }
            p.hint { "Or paste a token:" }
        }
        form.login method="post" action=(app.href("/login")) {
            input type="hidden" name="next" value=(next);
            label for="token" { "API token or JWT" }
            input #token name="token" type="password" autocomplete="off" required autofocus[app.oidc.is_none()];
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
    let mut response = Redirect::to(&app.href(&next)).into_response();
    set_cookie(&mut response, &session_cookie(&app, &id));
    response
}

/// The path every console cookie is scoped to.
fn cookie_path(app: &App) -> &str {
    if app.prefix.is_empty() {
        "/"
    } else {
        &app.prefix
    }
}

/// The `Set-Cookie` value of a new session.
fn session_cookie(app: &App, id: &str) -> String {
    let mut cookie = format!(
        "{COOKIE}={id}; Path={}; HttpOnly; SameSite=Strict",
        cookie_path(app)
    );
    if app.secure_cookie {
        cookie.push_str("; Secure");
    }
    cookie
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The `Set-Cookie` value of a pending OIDC sign-in's `state`: `SameSite=Lax`, so the
/// provider's redirect back (a top-level GET from its site) carries it, and scoped to `/oidc`.
fn state_cookie(app: &App, value: &str, max_age: u64) -> String {
    let mut cookie = format!(
        "{STATE_COOKIE}={value}; Path={}; HttpOnly; SameSite=Lax; Max-Age={max_age}",
        app.href("/oidc")
    );
    if app.secure_cookie {
        cookie.push_str("; Secure");
    }
    cookie
}

/// `GET /oidc/start`: a pending sign-in, and the redirect to the provider.
pub async fn oidc_start(State(app): State<App>, RawQuery(q): RawQuery) -> Response {
    let q = Fields::parse(q.unwrap_or_default().as_bytes());
    let next = safe_next(q.get("next")).to_owned();
    let Some(oidc) = app.oidc.clone() else {
        return not_configured(&app);
    };
    match oidc.begin(&next).await {
        Ok((state, url)) => {
            let mut response = Redirect::to(&url).into_response();
            set_cookie(
                &mut response,
                &state_cookie(&app, &state, PENDING_TTL.as_secs()),
            );
            response
        }
        Err(refusal) => oidc_refused(&app, &next, &refusal),
    }
}

fn not_configured(app: &App) -> Response {
    super::failure(
        app,
        None,
        &crate::api::Failure::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "single sign-on is not configured (console.oidc)",
        ),
    )
}

fn oidc_refused(app: &App, next: &str, refusal: &Refusal) -> Response {
    let status = match refusal {
        Refusal::Provider(_) => StatusCode::BAD_GATEWAY,
        Refusal::SignIn(_) => StatusCode::BAD_REQUEST,
    };
    let why = format!("single sign-on failed: {}", refusal.message());
    let mut response = render_with(app, status, next, Some(&why), false);
    set_cookie(&mut response, &state_cookie(app, "", 0));
    response
}

/// `GET /oidc/callback`: the provider's answer. A code becomes a session as a pasted token
/// does; the page then moves on by itself (a `SameSite=Strict` cookie set on a redirect from
/// another site is not sent on that redirect's next hop, so the move starts from here).
pub async fn oidc_callback(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Fields::parse(q.unwrap_or_default().as_bytes());
    let Some(oidc) = app.oidc.clone() else {
        return not_configured(&app);
    };
    let cookie_state = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| crate::session::cookie(c, STATE_COOKIE))
        .filter(|v| !v.is_empty());
    if let Some(error) = q.get("error") {
        oidc.abandon(cookie_state, q.get("state"));
        let why = match q.get("error_description") {
            Some(d) => format!("{error}: {d}"),
            None => error.to_owned(),
        };
        let why: String = why.chars().filter(|c| !c.is_control()).take(300).collect();
        return oidc_refused(
            &app,
            "/",
            &Refusal::SignIn(format!("the provider refused the sign-in ({why})")),
        );
    }
    let (Some(state), Some(code)) = (q.get("state"), q.get("code")) else {
        return oidc_refused(
            &app,
            "/",
            &Refusal::SignIn("the provider's answer lacks `state` or `code`".into()),
        );
    };
    let signed = match oidc.finish(cookie_state, state, code, q.get("iss")).await {
        Ok(s) => s,
        Err(refusal) => return oidc_refused(&app, "/", &refusal),
    };
    let next = safe_next(Some(&signed.next)).to_owned();
    let who: Whoami = match app.api.get(Api::Rest, &signed.token, "/v1/whoami").await {
        Ok(who) => who,
        Err(f) => {
            let why = format!(
                "the API refused the provider's token: {} ({})",
                f.message, f.code
            );
            return oidc_refused(&app, &next, &Refusal::SignIn(why));
        }
    };
    let id = match app.sessions.create(signed.token, who) {
        Ok(id) => id,
        Err(e) => {
            return oidc_refused(
                &app,
                &next,
                &Refusal::Provider(format!("cannot sign in: {e}")),
            );
        }
    };
    let to = app.href(&next);
    let body = html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content={ "0; url=" (to) };
                title { "Signed in · sked" }
                link rel="stylesheet" href=(app.href("/assets/console.css"));
            }
            body {
                main #main {
                    p.notice role="status" data-test="signed-in" {
                        "Signed in. " a href=(to) { "Continue" }
                    }
                }
            }
        }
    };
    let mut response = page(StatusCode::OK, body);
    set_cookie(&mut response, &session_cookie(&app, &id));
    set_cookie(&mut response, &state_cookie(&app, "", 0));
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
    set_cookie(
        &mut response,
        &format!(
            "{COOKIE}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0",
            cookie_path(&app)
        ),
    );
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
