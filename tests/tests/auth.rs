//! Auth, tenants, quotas and audit on the REST API (ingest) and the DLQ API (replayer),
//! against real Redis and Kafka: no token is 401, a token without the scope is 403, another
//! tenant's job is 404, a wrong tenant in a selector touches nothing, JWTs are checked
//! against a JWKS on disk, quotas refuse on both paths, and every mutating call leaves an
//! audit record that never holds a token.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};
use sked_core::config::token_hash;
use sked_e2e::{
    TEST_TOKEN, create_topics, eventually, http, http_as,
    ingest::Ingest,
    operation_succeeded, produce, producer, read_topic,
    replayer::{Replayer, replayer_sets},
    test_config, unique,
};

const READER: &str = "reader-token-7Hq2";
const ACME: &str = "acme-token-Kp31";
const OPS: &str = "ops-token-Zx09";

/// Tokens: `reader` (jobs:read, every tenant), `acme` (everything but admin, tenant acme),
/// `ops` (ops:write only).
fn token_sets() -> Vec<String> {
    vec![
        format!("auth.tokens.reader.hash={}", token_hash(READER)),
        r#"auth.tokens.reader.scopes=["jobs:read", "dlq:read"]"#.into(),
        format!("auth.tokens.acme.hash={}", token_hash(ACME)),
        r#"auth.tokens.acme.scopes=["jobs:read", "jobs:write", "ops:write", "dlq:read", "dlq:replay"]"#.into(),
        r#"auth.tokens.acme.tenants=["acme"]"#.into(),
        format!("auth.tokens.ops.hash={}", token_hash(OPS)),
        r#"auth.tokens.ops.scopes=["ops:write"]"#.into(),
    ]
}

async fn call(
    token: Option<&str>,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut req = http_as(token).request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
    )
}

async fn submit(api: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let (s, v, _) = call(
        Some(token),
        reqwest::Method::POST,
        &format!("{api}/v1/jobs"),
        Some(body),
    )
    .await;
    (s, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_needs_a_token_with_the_scope() {
    let ns = unique("auth");
    let sets = token_sets();
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let config = test_config(&ns, &sets);
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config.clone()).await;
    let mut rsets = replayer_sets(&ns);
    rsets.extend(token_sets());
    let replayer = Replayer::start(
        sked_core::config::load(&sked_core::config::Layers {
            sets: rsets,
            ..Default::default()
        })
        .unwrap(),
    )
    .await;
    let api = ingest.api();
    let dlq = replayer.api();
    use reqwest::Method as M;
    let calls: Vec<(M, String, Option<Value>)> = vec![
        (
            M::POST,
            format!("{api}/v1/jobs"),
            Some(json!({"app": "sms", "delay": "1h"})),
        ),
        (M::GET, format!("{api}/v1/jobs"), None),
        (M::GET, format!("{api}/v1/jobs/x1"), None),
        (M::DELETE, format!("{api}/v1/jobs/x1"), None),
        (M::POST, format!("{api}/v1/jobs/x1/pause"), None),
        (
            M::POST,
            format!("{api}/v1/operations"),
            Some(json!({"action": "cancel", "selector": {"app": "sms"}})),
        ),
        (M::GET, format!("{api}/v1/operations"), None),
        (M::GET, format!("{api}/v1/stats"), None),
        (M::POST, format!("{api}/v1/tenants/acme/pause"), None),
        (
            M::PUT,
            format!("{api}/v1/calendars/h"),
            Some(json!({"dates": ["2030-01-01"]})),
        ),
        (
            M::POST,
            format!("{api}/v1/schedules/preview"),
            Some(json!({"cron": "0 * * * *"})),
        ),
        (M::GET, format!("{api}/v1/openapi.json"), None),
        (M::GET, format!("{api}/v1/whoami"), None),
        (M::GET, format!("{dlq}/v1/dlq"), None),
        (M::GET, format!("{dlq}/v1/dlq/stats"), None),
        (M::GET, format!("{dlq}/v1/dlq/0/0"), None),
        (M::GET, format!("{dlq}/v1/dlq/replays"), None),
        (M::GET, format!("{dlq}/v1/dlq/replays/abc"), None),
        (
            M::POST,
            format!("{dlq}/v1/dlq/replays"),
            Some(json!({"dry_run": true})),
        ),
    ];
    for (method, url, body) in &calls {
        for token in [None, Some("not-a-known-token"), Some("a.b.c")] {
            let (status, body, headers) = call(token, method.clone(), url, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {url} with {token:?}"
            );
            let code = body["error"]["code"].as_str().unwrap();
            assert!(
                code == "unauthenticated" || code == "invalid_token",
                "{body}"
            );
            assert!(
                headers[reqwest::header::WWW_AUTHENTICATE]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
        }
    }
    // A token without the scope: 403 naming it; with it: not 401/403.
    for (token, method, url, body, scope) in [
        (
            READER,
            M::POST,
            format!("{api}/v1/jobs"),
            Some(json!({"app": "sms", "delay": "1h"})),
            "jobs:write",
        ),
        (
            READER,
            M::POST,
            format!("{api}/v1/operations"),
            Some(json!({"action": "cancel", "selector": {"app": "sms"}})),
            "ops:write",
        ),
        (
            READER,
            M::POST,
            format!("{dlq}/v1/dlq/replays"),
            Some(json!({"dry_run": true})),
            "dlq:replay",
        ),
        (OPS, M::GET, format!("{api}/v1/jobs"), None, "jobs:read"),
        (OPS, M::GET, format!("{dlq}/v1/dlq"), None, "dlq:read"),
        (
            OPS,
            M::GET,
            format!("{dlq}/v1/dlq/replays"),
            None,
            "dlq:read",
        ),
        (
            ACME,
            M::PUT,
            format!("{api}/v1/calendars/h"),
            Some(json!({"dates": ["2030-01-01"]})),
            "admin",
        ),
    ] {
        let (status, body, _) = call(Some(token), method.clone(), &url, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {url}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(scope),
            "{body}"
        );
    }
    for (token, url) in [
        (READER, format!("{api}/v1/jobs")),
        (READER, format!("{api}/v1/stats")),
        (READER, format!("{dlq}/v1/dlq/stats")),
    ] {
        let (status, body, _) = call(Some(token), M::GET, &url, None).await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
    }
    // Who a token is: any valid token may ask, whatever its scopes (the console signs in so).
    for (token, actor, scopes, tenants) in [
        (OPS, "ops", json!(["ops:write"]), Value::Null),
        (
            READER,
            "reader",
            json!(["jobs:read", "dlq:read"]),
            Value::Null,
        ),
        (
            ACME,
            "acme",
            json!([
                "jobs:read",
                "jobs:write",
                "ops:write",
                "dlq:read",
                "dlq:replay"
            ]),
            json!(["acme"]),
        ),
    ] {
        let (status, body, _) = call(Some(token), M::GET, &format!("{api}/v1/whoami"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["actor"], actor);
        assert_eq!(body["via"], "token");
        assert_eq!(body["scopes"], scopes, "{body}");
        assert_eq!(body["tenants"], tenants, "{body}");
        assert!(!body.to_string().contains(token), "never the token");
    }
    // The admin port is open.
    let health = http_as(None)
        .get(format!("http://{}/healthz", ingest.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // Unknown paths stay 404 with the JSON body.
    let (status, body, _) = call(None, M::GET, &format!("{api}/v1/nope"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");

    // The CLI: no token and a token without the scope both exit 8 with one line.
    for (token, args) in [
        (None, vec!["job", "ls"]),
        (Some(READER), vec!["job", "cancel", "x1"]),
        (None, vec!["dlq", "ls"]),
    ] {
        let mut argv = vec!["sked", "--api", api.as_str(), "--replayer", dlq.as_str()];
        if let Some(t) = token {
            argv.extend(["--token", t]);
        }
        argv.extend(args.iter().copied());
        let err = sked_cli::run(argv.clone()).await.unwrap_err();
        assert_eq!(err.code, 8, "{argv:?}: {}", err.line());
        assert!(!err.line().contains('\n'));
    }
    let ok = sked_cli::run(["sked", "--api", api.as_str(), "--token", READER, "stats"]).await;
    assert!(ok.is_ok(), "{ok:?}");
    replayer.stop().await;
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_token_sees_and_touches_only_its_tenant() {
    let ns = unique("tenancy");
    let sets = token_sets();
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let config = test_config(&ns, &sets);
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config.clone()).await;
    let api = ingest.api();
    use reqwest::Method as M;
    for (id, tenant) in [
        ("acme-1", Some("acme")),
        ("acme-2", Some("acme")),
        ("globex-1", Some("globex")),
        ("none-1", None),
    ] {
        let mut body = json!({"id": id, "app": "sms", "delay": "1h", "payload": {"n": 1}});
        if let Some(t) = tenant {
            body["tenant"] = json!(t);
        }
        assert_eq!(submit(&api, TEST_TOKEN, body).await.0, StatusCode::CREATED);
    }
    let get = |id: &str| {
        let url = format!("{api}/v1/jobs/{id}");
        async move { call(Some(ACME), M::GET, &url, None).await.0 }
    };
    assert_eq!(get("acme-1").await, StatusCode::OK);
    assert_eq!(get("globex-1").await, StatusCode::NOT_FOUND);
    assert_eq!(get("none-1").await, StatusCode::NOT_FOUND);
    // Every verb on another tenant's job is 404, and the job is untouched.
    for (method, path) in [
        (M::DELETE, ""),
        (M::POST, "/pause"),
        (M::POST, "/resume"),
        (M::POST, "/trigger"),
        (M::POST, "/reschedule"),
    ] {
        let url = format!("{api}/v1/jobs/globex-1{path}");
        let (status, body, _) = call(Some(ACME), method.clone(), &url, Some(json!({}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {url}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (status, job) = ingest.get_job("globex-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["state"], "scheduled", "{job}");
    // The list holds acme's jobs only; naming another tenant is 403.
    let (status, list, _) = call(Some(ACME), M::GET, &format!("{api}/v1/jobs"), None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    assert!(ids.iter().all(|id| id.starts_with("acme-")), "{ids:?}");
    let (status, _, _) = call(
        Some(ACME),
        M::GET,
        &format!("{api}/v1/jobs?tenant=globex"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Submissions: into acme by default, never into globex, never over globex's id.
    let (status, body) = submit(
        &api,
        ACME,
        json!({"id": "acme-3", "app": "sms", "delay": "1h"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(ingest.get_job("acme-3").await.1["tenant"], "acme");
    let (status, _) = submit(
        &api,
        ACME,
        json!({"app": "sms", "delay": "1h", "tenant": "globex"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = submit(
        &api,
        ACME,
        json!({"id": "globex-1", "app": "evil", "delay": "1h"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(ingest.get_job("globex-1").await.1["app"], "sms");
    // Whole apps are not a tenant's to pause; its own tenant is.
    let (status, _, _) = call(
        Some(ACME),
        M::POST,
        &format!("{api}/v1/apps/sms/pause"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(
        Some(ACME),
        M::POST,
        &format!("{api}/v1/tenants/globex/pause"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Stats: acme's counts only.
    let (_, stats, _) = call(Some(ACME), M::GET, &format!("{api}/v1/stats"), None).await;
    assert_eq!(stats["pending"], 3, "{stats}");
    assert!(stats["by_tenant"].get("globex").is_none(), "{stats}");
    assert!(stats["by_app"].as_object().unwrap().is_empty(), "{stats}");
    // A bulk selector naming globex touches nothing; one naming no tenant acts within acme.
    let (status, _, _) = call(
        Some(ACME),
        M::POST,
        &format!("{api}/v1/operations"),
        Some(json!({"action": "cancel", "selector": {"tenant": "globex"}})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, op, _) = call(
        Some(ACME),
        M::POST,
        &format!("{api}/v1/operations"),
        Some(json!({"action": "cancel", "selector": {"app": "sms"}})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{op}");
    assert_eq!(op["selector"]["tenant"], "acme");
    let done = operation_succeeded(&api, op["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    assert_eq!(done["processed"], 3, "{done}");
    assert_eq!(ingest.get_job("globex-1").await.1["state"], "scheduled");
    assert_eq!(ingest.get_job("none-1").await.1["state"], "scheduled");
    assert_eq!(ingest.get_job("acme-1").await.1["state"], "cancelled");
    // Operations: acme sees its own; an admin one on another tenant is 404 to it.
    let (_, admin_op, _) = call(
        Some(TEST_TOKEN),
        M::POST,
        &format!("{api}/v1/operations"),
        Some(json!({"action": "pause", "selector": {"tenant": "globex"}, "dry_run": true})),
    )
    .await;
    let (status, _, _) = call(
        Some(ACME),
        M::GET,
        &format!("{api}/v1/operations/{}", admin_op["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, ops, _) = call(Some(ACME), M::GET, &format!("{api}/v1/operations"), None).await;
    assert!(
        ops["operations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["selector"]["tenant"] == "acme"),
        "{ops}"
    );

    // Dead letters: a letter of globex is invisible to acme.
    let mut rsets = replayer_sets(&ns);
    rsets.extend(token_sets());
    let rconfig = sked_core::config::load(&sked_core::config::Layers {
        sets: rsets,
        ..Default::default()
    })
    .unwrap();
    create_topics(&rconfig, 1).await;
    let p = producer();
    let mut at = Vec::new();
    for tenant in ["acme", "globex"] {
        at.push(
            produce(
                &p,
                &rconfig.topics.dlq,
                Some(0),
                Some(tenant.as_bytes()),
                Some(b"{}"),
                &[
                    ("sked-stage", "execute"),
                    ("sked-reason", "handler_failed"),
                    ("sked-app", "sms"),
                    ("sked-tenant", tenant),
                    ("original-topic", &rconfig.topics.due),
                ],
            )
            .await,
        );
    }
    let replayer = Replayer::start(rconfig).await;
    let dlq = replayer.api();
    let (_, letters, _) = call(Some(ACME), M::GET, &format!("{dlq}/v1/dlq"), None).await;
    assert_eq!(letters["matched"], 1, "{letters}");
    assert_eq!(letters["letters"][0]["tenant"], "acme");
    let (_, all, _) = call(Some(TEST_TOKEN), M::GET, &format!("{dlq}/v1/dlq"), None).await;
    assert_eq!(all["matched"], 2, "{all}");
    let (p1, o1) = at[1];
    let (status, _, _) = call(Some(ACME), M::GET, &format!("{dlq}/v1/dlq/{p1}/{o1}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = call(
        Some(ACME),
        M::POST,
        &format!("{dlq}/v1/dlq/replays"),
        Some(json!({"tenant": "globex", "dry_run": true})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, dry, _) = call(
        Some(ACME),
        M::POST,
        &format!("{dlq}/v1/dlq/replays"),
        Some(json!({"dry_run": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry["selected"], 1, "{dry}");
    // Replays: one of globex (by an unbound token) is 404 to acme and not in its history.
    let (status, theirs, _) = call(
        Some(TEST_TOKEN),
        M::POST,
        &format!("{dlq}/v1/dlq/replays"),
        Some(json!({"tenant": "globex", "dry_run": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    let (ours, theirs) = (dry["id"].as_str().unwrap(), theirs["id"].as_str().unwrap());
    let (status, body, _) = call(
        Some(ACME),
        M::GET,
        &format!("{dlq}/v1/dlq/replays/{theirs}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body, _) = call(
        Some(ACME),
        M::GET,
        &format!("{dlq}/v1/dlq/replays/{ours}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["filter"]["tenant"], "acme");
    let ids = |list: &Value| -> Vec<String> {
        list["replays"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, list, _) = call(Some(ACME), M::GET, &format!("{dlq}/v1/dlq/replays"), None).await;
    assert_eq!(ids(&list), [ours], "{list}");
    let (_, list, _) = call(
        Some(TEST_TOKEN),
        M::GET,
        &format!("{dlq}/v1/dlq/replays"),
        None,
    )
    .await;
    assert_eq!(ids(&list), [theirs, ours], "newest first: {list}");
    replayer.stop().await;
    ingest.stop().await;
}

/// An Ed25519 key: (pkcs8 der, JWK).
fn ed_key(kid: &str) -> (Vec<u8>, Value) {
    let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    (
        doc.as_ref().to_vec(),
        json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}),
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn jwt(der: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_are_checked_offline_against_the_jwks() {
    let ns = unique("jwt");
    let dir = std::env::temp_dir().join(&ns);
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = dir.join("jwks.json");
    let (der1, jwk1) = ed_key("k1");
    std::fs::write(&jwks, json!({"keys": [jwk1.clone()]}).to_string()).unwrap();
    let config = test_config(
        &ns,
        &[
            "auth.jwt.issuer=https://idp.test/",
            r#"auth.jwt.audience=["sked"]"#,
            &format!("auth.jwt.jwks_file={}", jwks.display()),
            r#"auth.jwt.scope_map.sked-readers=["jobs:read"]"#,
        ],
    );
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config).await;
    let api = ingest.api();
    for (id, tenant) in [("a-1", "acme"), ("g-1", "globex")] {
        let body = json!({"id": id, "app": "sms", "delay": "1h", "tenant": tenant});
        assert_eq!(submit(&api, TEST_TOKEN, body).await.0, StatusCode::CREATED);
    }
    let good = json!({"iss": "https://idp.test/", "aud": "sked", "sub": "alice", "exp": now() + 600,
        "scope": "openid sked-readers", "sked_tenants": ["acme"]});
    let list = |token: String| {
        let url = format!("{api}/v1/jobs");
        async move { call(Some(&token), reqwest::Method::GET, &url, None).await }
    };
    let (status, body, _) = list(jwt(&der1, Some("k1"), &good)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a-1"]);
    // A reader cannot write.
    let (status, _, _) = call(
        Some(&jwt(&der1, Some("k1"), &good)),
        reqwest::Method::DELETE,
        &format!("{api}/v1/jobs/a-1"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Rotation: a new key in the file is picked up when a token first names its kid (the
    // reads this causes are at most one per 30 s, so this comes before the unknown kid).
    let (der2, jwk2) = ed_key("k2");
    std::fs::write(&jwks, json!({"keys": [jwk1.clone(), jwk2]}).to_string()).unwrap();
    let (status, body, _) = list(jwt(&der2, Some("k2"), &good)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let with = |key: &str, value: Value| {
        let mut c = good.clone();
        c[key] = value;
        c
    };
    let (der_other, _) = ed_key("k1");
    let rejected = [
        (
            "expired",
            jwt(&der1, Some("k1"), &with("exp", json!(now() - 3600))),
        ),
        (
            "wrong audience",
            jwt(&der1, Some("k1"), &with("aud", json!("other"))),
        ),
        (
            "wrong issuer",
            jwt(&der1, Some("k1"), &with("iss", json!("https://evil/"))),
        ),
        ("unknown kid", jwt(&der1, Some("k9"), &good)),
        ("wrong key", jwt(&der_other, Some("k1"), &good)),
        (
            "no sked scope",
            jwt(&der1, Some("k1"), &with("scope", json!("openid"))),
        ),
        ("alg none", {
            let b64 =
                |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT", "kid": "k1"})),
                b64(&good)
            )
        }),
        (
            "hs256",
            jsonwebtoken::encode(
                &{
                    let mut h = Header::new(Algorithm::HS256);
                    h.kid = Some("k1".into());
                    h
                },
                &good,
                &EncodingKey::from_secret(b"k1"),
            )
            .unwrap(),
        ),
    ];
    for (what, token) in rejected {
        let (status, body, _) = list(token.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"]["code"], "invalid_token", "{what}");
        assert!(
            !body.to_string().contains(&token),
            "{what}: the token is echoed"
        );
    }
    ingest.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_on_kafka_and_rest_and_every_mutating_call_is_audited() {
    let ns = unique("quota");
    let mut sets = token_sets();
    sets.extend([
        "quotas.tenants.acme.max_pending=3".to_owned(),
        "quotas.apps.burst.submit_rate=5".to_owned(),
    ]);
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let config = test_config(&ns, &sets);
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config.clone()).await;
    let api = ingest.api();
    for i in 0..3 {
        let (s, b) = submit(
            &api,
            ACME,
            json!({"id": format!("q-{i}"), "app": "sms", "delay": "1h"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    // The quota's count is read at most once a second: wait that out so the refusal below
    // comes from the stored count, not only from this replica's own tally.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body, headers) = call(
        Some(ACME),
        reqwest::Method::POST,
        &format!("{api}/v1/jobs"),
        Some(json!({"id": "q-over", "app": "sms", "delay": "1h"})),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert!(headers.contains_key(reqwest::header::RETRY_AFTER));
    assert_eq!(ingest.get_job("q-over").await.0, StatusCode::NOT_FOUND);
    // Kafka: acme's record goes to the DLQ with the reason, the next one (another tenant)
    // is stored behind it.
    let p = producer();
    produce(
        &p,
        &config.topics.ingest,
        Some(0),
        Some(b"k-over"),
        Some(br#"{"id": "k-over", "app": "sms", "tenant": "acme", "delay": "1h"}"#),
        &[],
    )
    .await;
    produce(
        &p,
        &config.topics.ingest,
        Some(0),
        Some(b"k-ok"),
        Some(br#"{"id": "k-ok", "app": "sms", "tenant": "globex", "delay": "1h"}"#),
        &[],
    )
    .await;
    eventually(Duration::from_secs(30), "k-ok stored", || async {
        (ingest.get_job("k-ok").await.0 == StatusCode::OK).then_some(())
    })
    .await;
    assert_eq!(ingest.get_job("k-over").await.0, StatusCode::NOT_FOUND);
    let letters = read_topic(
        &config.topics.dlq,
        1,
        1,
        Duration::from_secs(30),
        Duration::from_millis(500),
    );
    assert_eq!(letters.len(), 1);
    assert_eq!(
        sked_e2e::header(&letters[0], "sked-reason").as_deref(),
        Some("quota_exceeded")
    );
    assert_eq!(
        sked_e2e::header(&letters[0], "sked-tenant").as_deref(),
        Some("acme")
    );
    // Stats show the use.
    let (_, stats, _) = call(
        Some(TEST_TOKEN),
        reqwest::Method::GET,
        &format!("{api}/v1/stats"),
        None,
    )
    .await;
    let acme = stats["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "acme")
        .unwrap()
        .clone();
    assert_eq!(acme["pending"], 3, "{stats}");
    assert_eq!(acme["max_pending"], 3);
    assert!(acme["rejected"].as_u64().unwrap() >= 2, "{stats}");
    // A rate of 5/s: a quick burst of 20 gets some 429s; whatever is admitted is at most 5
    // per wall-clock second the burst touched (the windows are whole UTC seconds, so even a
    // burst shorter than a second can straddle two of them).
    let first_second = chrono::Utc::now().timestamp();
    let mut admitted = 0;
    for i in 0..20 {
        let (s, _) = submit(
            &api,
            TEST_TOKEN,
            json!({"id": format!("b-{i}"), "app": "burst", "delay": "1h"}),
        )
        .await;
        match s {
            StatusCode::CREATED => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    let windows = u64::try_from(chrono::Utc::now().timestamp() - first_second + 1).unwrap();
    assert!(
        admitted >= 5 && admitted <= 5 * windows,
        "{admitted} in {windows} windows"
    );
    // The bound above already refuses 20 unless the burst took four seconds or more.
    assert!(
        admitted < 20 || windows >= 4,
        "{admitted} in {windows} windows"
    );
    let metrics = sked_e2e::admin_metrics(ingest.admin).await;
    assert!(
        metrics.contains(
            "sked_ingest_quota_rejected_total{scope=\"app\",name=\"burst\",limit=\"rate\"}"
        ),
        "{metrics}"
    );

    // Audit: the calls above, refusals included, each left a record; none holds a token.
    let (status, _, _) = call(
        Some(READER),
        reqwest::Method::DELETE,
        &format!("{api}/v1/jobs/q-0"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(
        Some(ACME),
        reqwest::Method::DELETE,
        &format!("{api}/v1/jobs/q-0"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let records = read_topic(
        &config.topics.audit,
        1,
        3 + 1 + 20 + 2,
        Duration::from_secs(30),
        Duration::from_millis(500),
    );
    let records: Vec<Value> = records
        .iter()
        .map(|m| {
            let text = std::str::from_utf8(rdkafka::Message::payload(m).unwrap()).unwrap();
            for secret in [READER, ACME, OPS, TEST_TOKEN] {
                assert!(!text.contains(secret), "a token in {text}");
            }
            serde_json::from_str(text).unwrap()
        })
        .collect();
    let find = |actor: &str, action: &str, status: u16| {
        records
            .iter()
            .any(|r| r["actor"] == actor && r["action"] == action && r["status"] == status)
    };
    assert!(find("acme", "jobs.submit", 201));
    assert!(find("acme", "jobs.submit", 429));
    assert!(find("reader", "jobs.cancel", 403));
    assert!(find("acme", "jobs.cancel", 200));
    let cancel = records
        .iter()
        .find(|r| r["actor"] == "acme" && r["action"] == "jobs.cancel" && r["status"] == 200)
        .unwrap();
    assert_eq!(cancel["outcome"], "ok");
    assert_eq!(cancel["scope"], "jobs:write");
    assert_eq!(cancel["tenants"], json!(["acme"]));
    assert_eq!(cancel["path"], "/v1/jobs/q-0");
    let submitted = records
        .iter()
        .find(|r| r["action"] == "jobs.submit" && r["status"] == 201)
        .unwrap();
    assert!(submitted["target"].as_str().is_some(), "{submitted}");
    // Reads are not audited.
    assert!(!records.iter().any(|r| r["action"] == "stats"));
    let _ = http();
    ingest.stop().await;
}
