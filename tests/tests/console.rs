//! The console in a real headless Chromium (Debian's `chromium` through `chromium-driver`),
//! against all four services, the real broker and Redis, under a path prefix:
//! - sign in, find a job by label, open it, see its payload and timeline;
//! - pause a schedule with a note, see it paused, resume it, trigger it, see the new fire;
//! - a bulk dry run for a selector, then cancel all matching, progress reaching the count;
//! - replay a dead letter and see its job succeed;
//! - a read-only user sees no action controls, and a forged mutating request is refused by
//!   the API (403);
//! - sign out, and the old session is refused.
//!
//! The screenshots it takes are the ones under docs/console/ (`SKED_UPDATE_SCREENSHOTS=1`).
//! The second test checks the console's HTTP answers without a browser: security headers,
//! cookie attributes, CSRF and origin checks, errors.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sked_e2e::{
    TEST_TOKEN,
    console::{Browser, Console},
    create_topics, eventually, http,
    ingest::Ingest,
    replayer::{Replayer, replayer_sets},
    scheduler::Scheduler,
    unique,
    worker::{Endpoint, Worker, worker_sets},
};

const VIEWER_TOKEN: &str = "sked-test-viewer-token-7d21aa";

fn sets(ns: &str, endpoint: &Endpoint) -> Vec<String> {
    let mut sets = replayer_sets(ns);
    sets.extend(worker_sets(ns));
    sets.push(format!("apps.ok.url={}", endpoint.url("/ok")));
    sets.push(format!("apps.broken.url={}", endpoint.url("/broken")));
    sets.push(format!(
        "auth.tokens.viewer.hash={}",
        sked_core::config::token_hash(VIEWER_TOKEN)
    ));
    sets.push(r#"auth.tokens.viewer.scopes=["jobs:read", "dlq:read"]"#.into());
    sets
}

fn load(sets: Vec<String>) -> sked_core::config::Config {
    sked_core::config::load(&sked_core::config::Layers {
        sets,
        ..Default::default()
    })
    .unwrap()
}

fn console_sets(ingest: &Ingest, replayer: &Replayer) -> Vec<String> {
    vec![
        format!("console.api_url={}", ingest.api()),
        format!("console.dlq_api_url={}", replayer.api()),
        "console.listen_addr=127.0.0.1:0".into(),
        "console.path_prefix=/sked".into(),
        "console.refresh=1s".into(),
    ]
}

async fn submit(api: &str, body: Value) {
    let resp = http()
        .post(format!("{api}/v1/jobs"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "submit {body}: {}",
        resp.text().await.unwrap()
    );
}

async fn job(api: &str, id: &str) -> Value {
    http()
        .get(format!("{api}/v1/jobs/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn sign_in(b: &Browser, console: &Console, token: &str) {
    b.goto(&console.url("/sked/")).await;
    b.find("form.login").await;
    assert!(
        b.path().await.starts_with("/sked/login"),
        "signed out: the sign-in page"
    );
    b.fill("#token", token).await;
    b.click("[data-test=sign-in]").await;
    b.find("[data-test=actor]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_finds_pauses_triggers_bulk_cancels_and_replays_in_a_browser() {
    let fixed = Arc::new(AtomicBool::new(false));
    let f = fixed.clone();
    let endpoint = Endpoint::start(move |call, _| {
        let broken = call.job_id.starts_with("broken") && !f.load(Ordering::SeqCst);
        (if broken { 500 } else { 200 }, Duration::ZERO)
    })
    .await;
    let ns = unique("console");
    let config = load(sets(&ns, &endpoint));
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    let scheduler = Scheduler::start(config.clone()).await;
    let worker = Worker::start(config.clone()).await;
    let replayer = Replayer::start(config.clone()).await;
    let mut all = sets(&ns, &endpoint);
    all.extend(console_sets(&ingest, &replayer));
    let console = Console::start(load(all)).await;
    let api = ingest.api();

    submit(
        &api,
        json!({"id": "report-1", "app": "ok", "cron": "0 0 1 1 *", "timezone": "UTC",
        "labels": {"team": "growth", "kind": "report"}, "payload": {"report": "yearly"}}),
    )
    .await;
    submit(&api, json!({"id": "once-1", "app": "ok", "delay": "1h",
        "labels": {"team": "growth"}, "payload": {"hello": "console", "n": 12345678901234567890u64}})).await;
    submit(
        &api,
        json!({"id": "other-1", "app": "ok", "delay": "1h",
        "labels": {"team": "billing"}, "payload": {}}),
    )
    .await;
    for i in 0..30 {
        submit(
            &api,
            json!({"id": format!("batch-{i:02}"), "app": "ok", "delay": "2h",
            "labels": {"batch": "b1"}, "payload": {"i": i}}),
        )
        .await;
    }
    submit(
        &api,
        json!({"id": "broken-1", "app": "broken", "delay": "200ms", "payload": {"fix": "me"},
        "retry": {"max_attempts": 1}}),
    )
    .await;

    let b = Browser::start().await;

    // Signed out: every page sends to the sign-in page; then the overview.
    b.goto(&console.url("/sked/jobs")).await;
    b.find("form.login").await;
    b.screenshot("sign-in").await;
    sign_in(&b, &console, TEST_TOKEN).await;
    assert_eq!(b.text("[data-test=actor]").await, "test");
    b.find("[data-test=pending]").await;
    b.find("[data-test=due-now]").await;
    // The schedulers' lateness of the last minute and Redis against the 33 pending jobs.
    b.find("[data-test=lateness]").await;
    let per_job = b.text("[data-test=bytes-per-pending]").await;
    assert!(
        per_job.ends_with("iB") || per_job.ends_with(" B"),
        "{per_job}"
    );
    b.screenshot("overview").await;
    b.click("nav a[href='/sked/cluster']").await;
    let partitions = b.text("[data-test=partitions]").await;
    assert!(partitions.contains(&config.topics.ingest), "{partitions}");
    b.screenshot("cluster").await;
    assert!(
        !b.source().await.contains(TEST_TOKEN),
        "the token is never in a page"
    );

    // Find a job by label, open it: payload and timeline.
    b.click("nav a[href='/sked/jobs']").await;
    b.fill("#f-label", "team=growth").await;
    b.click("[data-test=filter]").await;
    let table = b.text("[data-test=jobs]").await;
    assert!(
        table.contains("once-1") && table.contains("report-1"),
        "{table}"
    );
    assert!(
        !table.contains("other-1") && !table.contains("batch-"),
        "{table}"
    );
    b.screenshot("jobs").await;
    // Payload search: only once-1's payload holds the text.
    b.fill("#f-label", "").await;
    b.fill("#f-payload", r#""hello":"console""#).await;
    b.click("[data-test=filter]").await;
    let table = b.text("[data-test=jobs]").await;
    assert!(table.contains("once-1"), "{table}");
    assert!(
        !table.contains("report-1") && !table.contains("batch-"),
        "{table}"
    );
    // The same page on a phone, in the dark theme (the toggle, as a user would).
    b.client.set_window_size(390, 844).await.unwrap();
    b.click("[data-theme-toggle]").await;
    assert_eq!(
        b.client
            .execute(
                "return document.documentElement.getAttribute('data-theme')",
                vec![]
            )
            .await
            .unwrap(),
        "dark"
    );
    b.screenshot("jobs-phone-dark").await;
    b.click("[data-theme-toggle]").await;
    b.client.set_window_size(1280, 900).await.unwrap();
    b.click("a[href='/sked/jobs/once-1']").await;
    let payload = b.text("[data-test=payload]").await;
    assert!(payload.contains("\"hello\": \"console\""), "{payload}");
    assert!(
        payload.contains("12345678901234567890"),
        "digits kept: {payload}"
    );
    let timeline = b.text("[data-test=timeline]").await;
    assert!(
        timeline.contains("scheduled") && timeline.contains("due"),
        "{timeline}"
    );
    b.screenshot("job-detail").await;

    // A schedule: pause with a note, resume, trigger, and the fire in its history.
    b.goto(&console.url("/sked/jobs/report-1")).await;
    assert!(
        b.text("[data-test=next]")
            .await
            .contains("-01-01 00:00:00 UTC")
    );
    b.fill("#pause-note", "quarter close").await;
    b.click("[data-test=pause]").await;
    assert_eq!(b.text("[data-test=notice]").await, "Done: paused");
    assert_eq!(b.text("[data-test=state]").await, "paused");
    assert_eq!(b.text("[data-test=pause-note]").await, "quarter close");
    assert_eq!(
        job(&api, "report-1").await["paused"]["note"],
        "quarter close"
    );
    b.click("[data-test=resume]").await;
    assert_eq!(b.text("[data-test=notice]").await, "Done: resumed");
    assert_eq!(b.text("[data-test=state]").await, "scheduled");
    b.click("[data-test=trigger]").await;
    assert_eq!(b.text("[data-test=notice]").await, "Done: triggered");
    b.until_text("[data-test=history]", Duration::from_secs(30), |t| {
        t.contains("trigger") && t.contains("succeeded")
    })
    .await;
    // A trigger is not a slot: the yearly schedule has no slot that did not fire.
    let slots = b.text("[data-test=slots]").await;
    assert!(slots.contains("every slot so far fired"), "{slots}");
    b.screenshot("schedule").await;
    let d = job(&api, "report-1").await;
    assert_eq!(d["counters"]["triggered"], 1);
    assert!(d["paused"].is_null());

    // Preview an edited expression.
    b.fill("#pv-cron", "0 30 2 * * *").await;
    b.fill("#pv-tz", "America/New_York").await;
    b.fill("#pv-n", "5").await;
    b.click("[data-test=preview]").await;
    assert!(b.text("[data-test=description]").await.contains("02:30"));
    b.screenshot("preview").await;

    // Bulk: the jobs page's filter becomes the selector; a dry run counts, then the run.
    b.goto(&console.url("/sked/jobs?label=batch%3Db1")).await;
    b.click("[data-test=bulk-link]").await;
    b.select("#op-action", "cancel").await;
    b.click("[data-test=dry-run]").await;
    assert_eq!(b.text("[data-test=selector]").await, "label=batch=b1");
    // The count comes in the background; the page refreshes itself until it is there.
    b.until_text("[data-test=op-state]", Duration::from_secs(30), |t| {
        t == "succeeded"
    })
    .await;
    assert_eq!(b.text("[data-test=estimate]").await, "30");
    b.screenshot("bulk-dry-run").await;
    b.click("[data-test=run-for-real]").await;
    b.until_text("[data-test=op-state]", Duration::from_secs(30), |t| {
        t == "succeeded"
    })
    .await;
    assert_eq!(b.text("[data-test=processed]").await, "30");
    b.screenshot("bulk-run").await;
    for i in [0, 17, 29] {
        assert_eq!(
            job(&api, &format!("batch-{i:02}")).await["state"],
            "cancelled"
        );
    }
    assert_eq!(
        job(&api, "other-1").await["state"],
        "scheduled",
        "not selected"
    );
    b.goto(&console.url("/sked/ops")).await;
    let history = b.text("[data-test=ops]").await;
    assert!(
        history.contains("cancel (dry run)") && history.contains("30 / 30"),
        "{history}"
    );

    // A dead letter: find it, open it, replay it once the app is fixed, see the job succeed.
    let dlq = replayer.api();
    eventually(
        Duration::from_secs(30),
        "broken-1 dead-lettered",
        || async {
            let l = sked_e2e::try_json(&format!("{dlq}/v1/dlq?job_id=broken-1")).await?;
            (l["matched"] == 1).then_some(())
        },
    )
    .await;
    fixed.store(true, Ordering::SeqCst);
    b.click("nav a[href='/sked/dlq']").await;
    b.fill("#d-job_id", "broken-1").await;
    b.click("[data-test=filter]").await;
    assert!(
        b.text("[data-test=matched]")
            .await
            .starts_with("1 letters match")
    );
    b.screenshot("dead-letters").await;
    b.click("[data-test=letters] tbody a[href^='/sked/dlq/']")
        .await;
    assert!(b.text("[data-test=headers]").await.contains("sked-job-id"));
    assert!(b.text("[data-test=value]").await.contains("broken-1"));
    b.screenshot("dead-letter").await;
    b.click("[data-test=replay]").await;
    b.until_text("[data-test=published]", Duration::from_secs(30), |t| {
        t == "1"
    })
    .await;
    b.screenshot("replay").await;
    // The replay is the latest in the history on the DLQ page, and links back to itself.
    b.goto(&console.url("/sked/dlq#replays")).await;
    assert_eq!(
        b.text("[data-test=replays] tbody tr:first-child [data-test=replay-row-status]")
            .await,
        "done"
    );
    assert!(
        b.text("[data-test=replays] tbody tr:first-child")
            .await
            .contains("job_id=broken-1")
    );
    b.screenshot("replay-history").await;
    b.click("[data-test=replays] tbody tr:first-child a").await;
    assert_eq!(b.text("[data-test=published]").await, "1");
    b.goto(&console.url("/sked/jobs/broken-1")).await;
    b.until_text("[data-test=run-state]", Duration::from_secs(30), |t| {
        t == "succeeded"
    })
    .await;
    // Both attempts, newest first: the replay's success, and the failure with its error and
    // the trace id it ran under.
    let outcomes = b
        .client
        .execute(
            "return [...document.querySelectorAll('[data-test=attempt]')].map(r => r.dataset.outcome)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(outcomes, json!(["succeeded", "dead"]));
    let failed = b.text("[data-test=attempt][data-outcome=dead]").await;
    assert!(failed.contains("500"), "{failed}");
    let trace = b
        .text("[data-test=attempt][data-outcome=dead] [data-test=trace-id]")
        .await;
    assert_eq!(trace.len(), 32, "{trace}");
    b.client
        .execute(
            "document.querySelector('[data-test=attempts]').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    b.screenshot("job-attempts").await;

    // Sign out: the session ends in the console, not only in the browser.
    let cookie = b
        .client
        .get_named_cookie("sked_console")
        .await
        .unwrap()
        .value()
        .to_owned();
    b.click("[data-test=sign-out]").await;
    b.find("[data-test=signed-out]").await;
    b.goto(&console.url("/sked/jobs")).await;
    b.find("form.login").await;
    let old = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = old
        .get(console.url("/sked/jobs"))
        .header("cookie", format!("sked_console={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "the old cookie is refused"
    );

    // Read-only: no action controls anywhere; a forged action is refused by the API.
    sign_in(&b, &console, VIEWER_TOKEN).await;
    b.find("[data-test=read-only]").await;
    b.goto(&console.url("/sked/jobs/report-1")).await;
    b.find("[data-test=state]").await;
    for control in [
        "[data-test=actions]",
        "[data-test=pause]",
        "[data-test=update]",
    ] {
        assert!(!b.has(control).await, "{control} shown to a read-only user");
    }
    b.screenshot("read-only-job").await;
    b.goto(&console.url("/sked/jobs")).await;
    b.find("[data-test=jobs]").await;
    assert!(!b.has("input[type=checkbox]").await && !b.has("[data-test=bulk-link]").await);
    b.goto(&console.url("/sked/ops")).await;
    assert!(!b.has("[data-test=op-form]").await);
    b.goto(&console.url("/sked/dlq")).await;
    assert!(!b.has("[data-test=replay-form]").await);
    b.goto(&console.url("/sked/jobs/report-1")).await;
    b.client
        .execute(
            "const f = document.createElement('form'); f.method = 'post'; \
             f.action = '/sked/jobs/report-1/pause'; \
             const c = document.querySelector('input[name=_csrf]').cloneNode(); f.appendChild(c); \
             document.body.appendChild(f); f.submit();",
            vec![],
        )
        .await
        .unwrap();
    let refusal = b.text("[data-test=error]").await;
    assert!(refusal.contains("403 forbidden"), "{refusal}");
    assert!(refusal.contains("jobs:write"), "{refusal}");
    assert!(
        job(&api, "report-1").await["paused"].is_null(),
        "nothing changed"
    );

    b.close().await;
    console.stop().await;
    replayer.stop().await;
    worker.stop().await;
    scheduler.stop().await;
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_answers_carry_security_headers_and_refuse_forged_or_foreign_posts() {
    let endpoint = Endpoint::start(|_, _| (200, Duration::ZERO)).await;
    let ns = unique("console-http");
    let config = load(sets(&ns, &endpoint));
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config.clone()).await;
    let replayer = Replayer::start(config.clone()).await;
    let mut all = sets(&ns, &endpoint);
    all.extend(console_sets(&ingest, &replayer));
    let console = Console::start(load(all)).await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Signed out: a page redirects to sign-in, keeping where it was going.
    let resp = c.get(console.url("/sked/jobs?app=x")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        resp.headers()["location"],
        "/sked/login?next=%2Fjobs%3Fapp%3Dx"
    );
    // Every answer: a strict CSP and its companions.
    let resp = c.get(console.url("/sked/login")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    let html = resp.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );

    // A refused token stays on the sign-in page with the API's reason.
    let resp = c
        .post(console.url("/sked/login"))
        .form(&[("token", "wrong"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.text().await.unwrap().contains("invalid_token"));
    // A foreign next is not followed.
    let resp = c
        .post(console.url("/sked/login"))
        .form(&[("token", TEST_TOKEN), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/sked/");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/sked"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    let session = cookie.split(';').next().unwrap().to_owned();
    let page = c
        .get(console.url("/sked/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(!html.contains(TEST_TOKEN), "no secret in the page");
    let csrf = html
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();

    submit(
        &ingest.api(),
        json!({"id": "csrf-1", "app": "ok", "delay": "1h", "payload": {}}),
    )
    .await;
    let pause = console.url("/sked/jobs/csrf-1/pause");
    // Without the CSRF token, with a wrong one, or from another origin: refused, unchanged.
    for (form, origin) in [
        (vec![("note", "x")], None),
        (vec![("note", "x"), ("_csrf", "forged")], None),
        (
            vec![("note", "x"), ("_csrf", csrf.as_str())],
            Some("http://evil.example"),
        ),
    ] {
        let mut req = c.post(&pause).header("cookie", &session).form(&form);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    assert!(job(&ingest.api(), "csrf-1").await["paused"].is_null());
    // With it: done, as the API says.
    let resp = c
        .post(&pause)
        .header("cookie", &session)
        .header(
            "origin",
            format!("http://localhost:{}", console.addr.port()),
        )
        .form(&[("note", "ok"), ("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/sked/jobs/csrf-1?done=paused");
    assert_eq!(job(&ingest.api(), "csrf-1").await["paused"]["note"], "ok");
    // A mutating request without a session: 401, nothing replayed after a sign-in.
    let resp = c.post(&pause).form(&[("note", "y")]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Errors are pages: an unknown page, an unknown job (the API's 404), a wrong method.
    for (path, status) in [
        ("/sked/nope", StatusCode::NOT_FOUND),
        ("/sked/jobs/does-not-exist", StatusCode::NOT_FOUND),
    ] {
        let resp = c
            .get(console.url(path))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{path}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    let resp = c.delete(console.url("/sked/jobs")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Outside the prefix there is no console.
    let resp = c.get(console.url("/jobs")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // The assets, embedded, well under 300 KB.
    let css = c
        .get(console.url("/sked/assets/console.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    let js = c
        .get(console.url("/sked/assets/console.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let total = css.bytes().await.unwrap().len() + js.bytes().await.unwrap().len();
    assert!(total < 300 * 1024, "assets {total} bytes");

    console.stop().await;
    replayer.stop().await;
    ingest.stop().await;
}
