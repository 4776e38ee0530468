//! The router, the security headers every answer carries, the session extractor and the
//! checks of every mutating request (CSRF token, same origin).

use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};

use crate::{
    App,
    api::Failure,
    pages,
    session::{COOKIE, Session},
};

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

/// No inline script or style, nothing from another origin, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's router, under `console.path_prefix`.
pub fn router(app: App) -> Router {
    let routes = Router::new()
        .route("/", get(pages::overview::show))
        .route(
            "/login",
            get(pages::login::form).post(pages::login::sign_in),
        )
        .route("/logout", post(pages::login::sign_out))
        .route("/oidc/start", get(pages::login::oidc_start))
        .route("/oidc/callback", get(pages::login::oidc_callback))
        .route("/jobs", get(pages::jobs::list).post(pages::jobs::submit))
        .route("/jobs/new", get(pages::jobs::new_form))
        .route("/jobs/selected", post(pages::jobs::act_on_selected))
        .route("/schedules", get(pages::jobs::schedules))
        .route("/jobs/{id}", get(pages::jobs::detail))
        .route("/jobs/{id}/{verb}", post(pages::jobs::verb))
        .route("/preview", get(pages::jobs::preview))
        .route("/ops", get(pages::ops::list).post(pages::ops::create))
        .route("/ops/{id}", get(pages::ops::detail))
        .route("/ops/{id}/cancel", post(pages::ops::cancel))
        .route("/cluster", get(pages::cluster::show))
        .route("/dlq", get(pages::dlq::list))
        .route("/dlq/replays", post(pages::dlq::replay))
        .route("/dlq/replays/{id}", get(pages::dlq::replay_progress))
        .route("/dlq/{partition}/{offset}", get(pages::dlq::detail))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let routes = if app.prefix.is_empty() {
        routes
    } else {
        // A nested "/" answers `/sked` only: `/sked/` (where links go) is routed here.
        Router::new()
            .route(&app.href("/"), get(pages::overview::show))
            .nest(&app.prefix, routes)
            .fallback(not_found_bare)
    };
    routes
        // Job specs of up to `limits.max_request_bytes` (1 MiB) are submitted as forms.
        .layer(DefaultBodyLimit::max(4 << 20))
        .layer(middleware::from_fn_with_state(app.clone(), headers))
        .with_state(app)
}

/// The security headers on every answer, and the 500 page for a page that panicked (where
/// hyper would drop the connection).
async fn headers(State(app): State<App>, req: Request, next: Next) -> Response {
    let mut response = match sked_core::api_errors::run_catching(req, next).await {
        Ok(response) => response,
        Err(sked_core::api_errors::Panicked) => pages::failure(
            &app,
            None,
            &Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the console failed on this page; its log says why",
            ),
        ),
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

async fn not_found(State(app): State<App>, parts: Parts) -> Response {
    let session = Signed::optional(&parts, &app);
    pages::failure(
        &app,
        session.as_ref(),
        &Failure::new(StatusCode::NOT_FOUND, "not_found", "no such page"),
    )
}

async fn not_found_bare() -> Response {
    (StatusCode::NOT_FOUND, "no such page\n").into_response()
}

async fn method_not_allowed(State(app): State<App>) -> Response {
    pages::failure(
        &app,
        None,
        &Failure::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this page does not take that method",
        ),
    )
}

/// The signed-in user of a request; a page without one redirects to the sign-in page.
pub struct Signed(pub Session);

impl Signed {
    /// The session of a request, if its cookie names a live one.
    pub fn optional(parts: &Parts, app: &App) -> Option<Session> {
        let header = parts.headers.get(header::COOKIE)?.to_str().ok()?;
        let id = crate::session::cookie(header, COOKIE)?;
        app.sessions.get(id)
    }
}

impl FromRequestParts<App> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        if let Some(session) = Signed::optional(parts, app) {
            return Ok(Signed(session));
        }
        if parts.method != axum::http::Method::GET {
            // A mutating request without a session is refused, never replayed after sign-in.
            return Err(pages::failure(
                app,
                None,
                &Failure::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "sign in first: this session has ended",
                ),
            ));
        }
        // Under a prefix, the nested routes see the URI without it; `/sked/` itself with it.
        let full = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let next = full
            .strip_prefix(app.prefix.as_ref())
            .filter(|rest| rest.starts_with('/') && !app.prefix.is_empty())
            .unwrap_or(full)
            .to_owned();
        let to = format!(
            "{}{}",
            app.href("/login"),
            crate::api::query([("next", next.as_str())])
        );
        Err(Redirect::to(&to).into_response())
    }
}

/// The fields of a submitted form, in order (repeated names kept).
#[derive(Debug, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// Parses an `application/x-www-form-urlencoded` body or query.
    pub fn parse(raw: &[u8]) -> Self {
        Self(form_urlencoded::parse(raw).into_owned().collect())
    }

    /// The first value of `name`, trimmed, if not blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }

    /// Every non-blank value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }
}

/// Whether the browser says a request comes from another site: `Sec-Fetch-Site` other than
/// same-origin, or an `Origin` that is not this host.
pub fn foreign(headers: &HeaderMap) -> bool {
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site");
    let foreign_origin = match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        // `null`: a sandboxed frame, or a page whose referrer policy hides its origin (this
        // console's is `same-origin`, so its own forms send their origin).
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_none_or(|(_, authority)| authority != host),
        _ => false,
    };
    cross_site || foreign_origin
}

/// The checks of every mutating request: the session's CSRF token in the form, and, when the
/// browser says where the request comes from, the same origin. `Some`: the refusal.
pub fn check_post(
    app: &App,
    session: &Session,
    headers: &HeaderMap,
    form: &Fields,
) -> Option<Response> {
    let token_ok = form.get("_csrf").is_some_and(|t| session.csrf_ok(t));
    if foreign(headers) || !token_ok {
        return Some(pages::failure(
            app,
            Some(session),
            &Failure::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "this form did not come from this console session: reload the page and try again",
            ),
        ));
    }
    None
}

/// A redirect after a successful action, with its outcome shown on the next page.
pub fn done(app: &App, path: &str, outcome: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    let outcome: String = outcome
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    Redirect::to(&format!("{}{path}{sep}done={outcome}", app.href(""))).into_response()
}
