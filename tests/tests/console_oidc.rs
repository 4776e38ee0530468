//! Single sign-on in the console through a real OpenID Connect provider (panva's
//! `oidc-provider` under Node.js, tests/oidc), against the REST and DLQ APIs with `auth.jwt`
//! set to accept that provider's tokens:
//! - in headless Chromium: a tenant's operator signs in at the provider and lands on the page
//!   they asked for, sees only their tenant's jobs, and no token is in a page; a reader gets
//!   the read-only console; an account without a sked role is refused with the API's reason;
//! - over HTTP (the ID token as the bearer): the cookies' attributes, an answer that this
//!   browser did not start or that carries another sign-in's `state`, a code used twice, the
//!   provider's own refusal, and a discovery document naming another issuer.
//!
//! The provider and the console are on different sites (`127.0.0.1` against `localhost`), as
//! an identity provider and a console are in production, so the `SameSite` rules of the
//! cookies are those a real sign-in meets.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;

use reqwest::{StatusCode, header};
use serde_json::json;
use sked_e2e::{
    console::{Browser, Console},
    create_topics, http,
    ingest::Ingest,
    oidc::{CLIENT_ID, Provider},
    replayer::{Replayer, free_port, replayer_sets},
    unique,
};

const SECRET: &str = "sked-test-oidc-client-secret-5e1f";

fn load(sets: Vec<String>) -> sked_core::config::Config {
    sked_core::config::load(&sked_core::config::Layers {
        sets,
        ..Default::default()
    })
    .unwrap()
}

/// Everything one test runs: the provider, the two APIs, the console.
struct Stack {
    provider: Provider,
    ingest: Ingest,
    console: Console,
    sets: Vec<String>,
    _replayer: Replayer,
}

async fn stack(name: &str, token: &str) -> Stack {
    let port = free_port();
    let redirect = format!("http://localhost:{port}/sked/oidc/callback");
    let provider = Provider::start(&redirect, SECRET).await;
    let ns = unique(name);
    let mut sets = replayer_sets(&ns);
    // The API accepts only the token the console is set to send.
    sets.extend(provider.api_sets(token == "id_token"));
    let config = load(sets.clone());
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config.clone()).await;
    let replayer = Replayer::start(config).await;
    sets.extend([
        format!("console.api_url={}", ingest.api()),
        format!("console.dlq_api_url={}", replayer.api()),
        format!("console.listen_addr=127.0.0.1:{port}"),
        "console.path_prefix=/sked".into(),
        format!("console.oidc.issuer={}", provider.issuer),
        format!("console.oidc.client_id={CLIENT_ID}"),
        format!("console.oidc.client_secret={SECRET}"),
        format!("console.oidc.redirect_url={redirect}"),
        r#"console.oidc.scopes=["openid", "sked"]"#.into(),
        format!("console.oidc.token={token}"),
        "console.oidc.name=Test IdP".into(),
    ]);
    let console = Console::start(load(sets.clone())).await;
    Stack {
        provider,
        ingest,
        console,
        sets,
        _replayer: replayer,
    }
}

/// Signs in at the provider's development pages as `login`, from the console's sign-in page.
async fn sso(b: &Browser, s: &Stack, login: &str) {
    b.goto(&s.console.url("/sked/jobs")).await;
    b.click("[data-test=sso]").await;
    b.fill("input[name=login]", login).await;
    b.fill("input[name=password]", "any").await;
    b.click("button[type=submit]").await;
    // The consent page.
    b.find("input[name=prompt][value=consent]").await;
    b.click("button[type=submit]").await;
}

/// Signs out of the console, then forgets the provider's own session (its cookies, on its
/// host), so the next sign-in asks for a login again.
async fn sign_out_everywhere(b: &Browser, s: &Stack) {
    b.click("[data-test=sign-out]").await;
    b.find("[data-test=signed-out]").await;
    b.goto(&format!(
        "{}/.well-known/openid-configuration",
        s.provider.issuer
    ))
    .await;
    b.client.delete_all_cookies().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_sign_in_through_the_identity_provider_in_a_browser() {
    let s = stack("sso-browser", "access_token").await;
    let api = s.ingest.api();
    for (id, tenant) in [("acme-1", "acme"), ("globex-1", "globex")] {
        let resp = http()
            .post(format!("{api}/v1/jobs"))
            .body(json!({"id": id, "app": "a", "tenant": tenant, "delay": "1h"}).to_string())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    }
    let b = Browser::start().await;

    // A tenant's operator: back on the page they asked for, as the provider's subject.
    b.goto(&s.console.url("/sked/jobs")).await;
    b.find("[data-test=sso]").await;
    assert_eq!(b.text("[data-test=sso]").await, "Sign in with Test IdP");
    b.screenshot("sign-in-sso").await;
    sso(&b, &s, "acme-ops").await;
    assert_eq!(b.text("[data-test=actor]").await, "jwt:acme-ops");
    assert!(
        b.path().await.starts_with("/sked/jobs"),
        "{}",
        b.path().await
    );
    let jobs = b.text("[data-test=jobs]").await;
    assert!(
        jobs.contains("acme-1") && !jobs.contains("globex-1"),
        "the token's tenant only: {jobs}"
    );
    assert!(!b.has("[data-test=read-only]").await);
    let page = b.source().await;
    assert!(!page.contains("eyJ"), "no JWT in a page");
    sign_out_everywhere(&b, &s).await;

    // A reader: the read-only console.
    sso(&b, &s, "reader").await;
    assert_eq!(b.text("[data-test=actor]").await, "jwt:reader");
    b.find("[data-test=read-only]").await;
    sign_out_everywhere(&b, &s).await;

    // An account the provider knows but that holds no sked role: the API's reason.
    sso(&b, &s, "nobody").await;
    let error = b.text("[data-test=error]").await;
    assert!(
        error.contains("the API refused the provider's token")
            && error.contains("grants no sked scope"),
        "{error}"
    );
    assert!(b.path().await.starts_with("/sked/oidc/callback"));
    assert!(!b.has("[data-test=actor]").await, "not signed in");
    b.close().await;
}

/// A cookie jar of one host, as a browser keeps it: name → value.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() {
                self.0.remove(k);
            } else {
                self.0.insert(k.to_owned(), val.to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn location(resp: &reqwest::Response) -> String {
    assert!(
        resp.status().is_redirection(),
        "a redirect: {}",
        resp.status()
    );
    resp.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The provider's side of a sign-in as `login`, from the console's redirect to the
/// provider's redirect back: the callback URL, with its `code` and `state`.
async fn at_provider(
    client: &reqwest::Client,
    issuer: &str,
    auth_url: &str,
    login: &str,
) -> String {
    let mut jar = Jar::default();
    let absolute = |l: String| {
        if l.starts_with('/') {
            format!("{issuer}{l}")
        } else {
            l
        }
    };
    let mut url = auth_url.to_owned();
    let mut form = vec![("prompt", "login"), ("login", login), ("password", "any")];
    for _ in 0..8 {
        let resp = client
            .get(&url)
            .header(header::COOKIE, jar.header())
            .send()
            .await
            .unwrap();
        jar.take(&resp);
        if resp.status().is_redirection() {
            let next = absolute(location(&resp));
            if !next.starts_with(issuer) {
                return next;
            }
            url = next;
            continue;
        }
        let html = resp.text().await.unwrap();
        let action = html
            .split("action=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("a form in {html}"))
            .to_owned();
        let resp = client
            .post(absolute(action))
            .header(header::COOKIE, jar.header())
            .form(&form)
            .send()
            .await
            .unwrap();
        jar.take(&resp);
        url = absolute(location(&resp));
        form = vec![("prompt", "consent")];
    }
    panic!("the provider did not send the browser back");
}

fn cookie_of<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// Asserts that the console refuses the callback `url` (sent with `cookie`) with a 400 whose
/// page says `why`.
async fn refused(client: &reqwest::Client, url: &str, cookie: Option<&str>, why: &str) {
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let resp = request.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{url}");
    let text = resp.text().await.unwrap();
    assert!(text.contains(why), "{why} in {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_is_bound_to_its_browser_used_once_and_checked() {
    let s = stack("sso-http", "id_token").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let console = |path: &str| s.console.url(path);

    // Start: the state cookie, and the redirect to the provider with PKCE.
    let start = |next: &'static str| {
        let client = client.clone();
        let url = console(&format!("/sked/oidc/start?next={next}"));
        async move {
            let resp = client.get(url).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::SEE_OTHER);
            let cookie = cookie_of(&resp, "sked_console_oidc").unwrap().to_owned();
            (location(&resp), cookie)
        }
    };
    let (auth_url, cookie) = start("%2Fjobs%3Fstate%3Dpaused").await;
    assert!(auth_url.starts_with(&s.provider.issuer), "{auth_url}");
    for part in [
        "response_type=code",
        "code_challenge_method=S256",
        "code_challenge=",
        "nonce=",
        "scope=openid+sked",
    ] {
        assert!(auth_url.contains(part), "{part} in {auth_url}");
    }
    for attr in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/sked/oidc",
        "Secure",
        "Max-Age=600",
    ] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    let state_cookie = cookie.split(';').next().unwrap().to_owned();
    let callback = at_provider(&client, &s.provider.issuer, &auth_url, "ops").await;
    assert!(
        callback.starts_with(&console("/sked/oidc/callback?")),
        "{callback}"
    );

    // Without the cookie (another browser), and with another sign-in's: refused, and the
    // sign-in is still there for its own browser.
    refused(&client, &callback, None, "did not start this sign-in").await;
    let (_, other) = start("%2F").await;
    let other = other.split(';').next().unwrap().to_owned();
    refused(
        &client,
        &callback,
        Some(&other),
        "not for the sign-in this browser started",
    )
    .await;
    // Another sign-in's code brought back with that other sign-in's state and cookie (code
    // injection): its PKCE verifier is not the code's, so the provider refuses the code.
    let (auth_c, _) = start("%2F").await;
    let callback_c = at_provider(&client, &s.provider.issuer, &auth_c, "ops").await;
    let code_c = callback_c
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let state_other = other.split_once('=').unwrap().1;
    let injected = console(&format!(
        "/sked/oidc/callback?code={code_c}&state={state_other}"
    ));
    refused(
        &client,
        &injected,
        Some(&other),
        "the provider refused the code: invalid_grant",
    )
    .await;

    // Its own browser: signed in, the state cookie cleared, the page moves on by itself.
    let resp = client
        .get(&callback)
        .header(header::COOKIE, &state_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let session = cookie_of(&resp, "sked_console").unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/sked", "Secure"] {
        assert!(session.contains(attr), "{attr} in {session}");
    }
    assert!(
        cookie_of(&resp, "sked_console_oidc")
            .unwrap()
            .contains("Max-Age=0")
    );
    let body = resp.text().await.unwrap();
    assert!(
        body.contains(r#"content="0; url=/sked/jobs?state=paused""#),
        "{body}"
    );
    assert!(!body.contains("eyJ"), "no token in the page");
    let session = session.split(';').next().unwrap().to_owned();
    let resp = client
        .get(console("/sked/jobs"))
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("jwt:ops"));

    // The same answer again (a replayed code): refused.
    refused(
        &client,
        &callback,
        Some(&state_cookie),
        "unknown or already used",
    )
    .await;

    // The provider's own refusal is shown, with the cookie cleared.
    let (_, cookie) = start("%2F").await;
    let pair = cookie.split(';').next().unwrap().to_owned();
    let state = pair.split_once('=').unwrap().1.to_owned();
    let resp = client
        .get(console(&format!(
            "/sked/oidc/callback?error=access_denied&error_description=no+thanks&state={state}"
        )))
        .header(header::COOKIE, &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        cookie_of(&resp, "sked_console_oidc")
            .unwrap()
            .contains("Max-Age=0")
    );
    let text = resp.text().await.unwrap();
    assert!(text.contains("access_denied: no thanks"), "{text}");

    // A console whose issuer differs from the discovery document's (a trailing slash).
    let mut sets = s.sets.clone();
    sets.push("console.listen_addr=127.0.0.1:0".into());
    sets.push(format!("console.oidc.issuer={}/", s.provider.issuer));
    let wrong = Console::start(load(sets)).await;
    let resp = client
        .get(wrong.url("/sked/oidc/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let text = resp.text().await.unwrap();
    assert!(text.contains("names the issuer"), "{text}");
}
