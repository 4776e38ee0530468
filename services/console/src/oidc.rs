//! Sign-in through an OpenID Connect provider (`console.oidc`): the authorization-code flow
//! with PKCE (S256), `state` and `nonce`.
//!
//! 1. `GET /oidc/start` reads the provider's discovery document (once, kept after the first
//!    success), keeps a pending sign-in (its nonce and PKCE verifier) under a random `state`,
//!    puts that `state` in a short-lived `HttpOnly`, `SameSite=Lax` cookie scoped to
//!    `/oidc` (so the provider's redirect back carries it, and no other site can finish a
//!    sign-in in this browser), and redirects to the provider.
//! 2. `GET /oidc/callback` takes the pending sign-in of the cookie's `state` (once: a code
//!    cannot be replayed), which must be the `state` of the answer; checks the answer's `iss`
//!    when the provider sends one (RFC 9207); trades the code for tokens at the token
//!    endpoint (with the verifier, and the client secret by HTTP Basic when one is set);
//!    verifies the ID token (signature against the provider's `jwks_uri`, `iss`, `aud` =
//!    `client_id`, `exp`, `azp`, and the pending `nonce`).
//! 3. The token of `console.oidc.token` (the access token, or the ID token) then signs in
//!    as a pasted one does: the API says who it is (`GET /v1/whoami`) or refuses it.
//!
//! No token, code or verifier is logged, put in a page, or sent to the browser.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sked_core::{
    auth::{Denied, jwt::Verifier},
    config::{JWT_ALGORITHMS, JwtOptions, OidcOptions, OidcToken},
};
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::session::{key, random_id, same};

/// The cookie holding a pending sign-in's `state`.
pub const STATE_COOKIE: &str = "sked_console_oidc";

/// How long a sign-in may stay at the provider.
pub const PENDING_TTL: Duration = Duration::from_secs(600);

/// Most sign-ins pending at once; beyond it the oldest is dropped.
const MAX_PENDING: usize = 10_000;

/// Most bytes read of a provider's answer.
const MAX_ANSWER: usize = 256 << 10;

/// The discovered provider.
struct Provider {
    authorization_endpoint: String,
    token_endpoint: String,
    /// Checks ID tokens: the provider's key set, `iss`, `aud` = `client_id`.
    id_tokens: Verifier,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// A sign-in sent to the provider and not back yet.
struct Pending {
    nonce: String,
    verifier: Zeroizing<String>,
    next: String,
    created: Instant,
}

/// A sign-in that cannot go on, as the sign-in page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The provider cannot be used (discovery, the token endpoint): a 502.
    Provider(String),
    /// This sign-in is not valid (state, nonce, ID token, the provider's refusal): a 400.
    SignIn(String),
}

impl Refusal {
    /// What the page says.
    pub fn message(&self) -> &str {
        match self {
            Refusal::Provider(m) | Refusal::SignIn(m) => m,
        }
    }
}

/// What a finished sign-in hands over: the token for the API, and where to go.
pub struct SignedIn {
    /// The bearer token of `console.oidc.token`.
    pub token: String,
    /// The console path the user started from.
    pub next: String,
}

/// The OIDC client of the console.
pub struct Oidc {
    options: OidcOptions,
    http: reqwest::Client,
    provider: tokio::sync::Mutex<Option<Arc<Provider>>>,
    pending: Mutex<HashMap<[u8; 32], Pending>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.options.issuer)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random() -> Result<String, Refusal> {
    random_id().map_err(|e| Refusal::Provider(e.to_string()))
}

/// Up to `MAX_ANSWER` bytes of an answer.
async fn read_capped(mut response: reqwest::Response, what: &str) -> Result<Vec<u8>, Refusal> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Refusal::Provider(format!("{what}: {}", e.without_url())))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(Refusal::Provider(format!(
                "{what}: the answer is over {} KiB",
                MAX_ANSWER >> 10
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// At most 200 characters of a provider's text, for a page.
fn short(text: &str) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

impl Oidc {
    /// The client of `options`; the provider is discovered at the first sign-in.
    pub fn new(options: OidcOptions) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            options,
            http,
            provider: tokio::sync::Mutex::new(None),
            pending: Mutex::default(),
        })
    }

    /// The provider's name, for the sign-in button.
    pub fn name(&self) -> &str {
        &self.options.name
    }

    /// The discovered provider: read once, and again after a failure.
    async fn provider(&self) -> Result<Arc<Provider>, Refusal> {
        let mut slot = self.provider.lock().await;
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let p = Arc::new(self.discover().await.inspect_err(|e| {
            warn!(issuer = %self.options.issuer, error = e.message(), "oidc discovery failed");
        })?);
        info!(issuer = %self.options.issuer, "oidc provider discovered");
        *slot = Some(p.clone());
        Ok(p)
    }

    async fn discover(&self) -> Result<Provider, Refusal> {
        let fail = |why: String| Refusal::Provider(format!("the provider's discovery: {why}"));
        let issuer = &self.options.issuer;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| fail(format!("cannot reach {url}: {}", e.without_url())))?;
        if !response.status().is_success() {
            return Err(fail(format!("{url} answered HTTP {}", response.status())));
        }
        let body = read_capped(response, "the provider's discovery").await?;
        let doc: Discovery = serde_json::from_slice(&body)
            .map_err(|e| fail(format!("{url} is not a discovery document: {e}")))?;
        if doc.issuer != *issuer {
            return Err(fail(format!(
                "it names the issuer `{}`, not `{issuer}` (console.oidc.issuer)",
                short(&doc.issuer)
            )));
        }
        for (name, u) in [
            ("authorization_endpoint", &doc.authorization_endpoint),
            ("token_endpoint", &doc.token_endpoint),
            ("jwks_uri", &doc.jwks_uri),
        ] {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(fail(format!("its {name} is not an http(s) URL")));
            }
        }
        if let Some(methods) = &doc.code_challenge_methods_supported
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(fail("it does not offer PKCE with S256".into()));
        }
        // The provider's ID-token algorithms that sked accepts (RS256 when it names none,
        // as the spec's default).
        let algorithms: Vec<String> = match &doc.id_token_signing_alg_values_supported {
            Some(algs) => algs
                .iter()
                .filter(|a| JWT_ALGORITHMS.contains(&a.as_str()))
                .cloned()
                .collect(),
            None => vec!["RS256".into()],
        };
        if algorithms.is_empty() {
            return Err(fail(format!(
                "it signs ID tokens with none of {}",
                JWT_ALGORITHMS.join(", ")
            )));
        }
        let id_tokens = Verifier::new(JwtOptions {
            issuer: issuer.clone(),
            audience: vec![self.options.client_id.clone()],
            jwks_file: None,
            jwks_url: Some(doc.jwks_uri),
            refresh: Duration::from_secs(300).into(),
            algorithms,
            leeway: Duration::from_secs(30).into(),
            scopes_claim: "scope".into(),
            scope_map: Default::default(),
            tenants_claim: "sked_tenants".into(),
            require_tenants: false,
        })
        .await
        .map_err(|e| fail(e.to_string()))?;
        Ok(Provider {
            authorization_endpoint: doc.authorization_endpoint,
            token_endpoint: doc.token_endpoint,
            id_tokens,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a sign-in that returns to `next`: the `state` (for the cookie) and the
    /// provider's URL to send the browser to.
    pub async fn begin(&self, next: &str) -> Result<(String, String), Refusal> {
        let provider = self.provider().await?;
        let (state, nonce) = (random()?, random()?);
        let verifier = Zeroizing::new(random()?);
        let challenge = b64(&Sha256::digest(verifier.as_bytes()));
        let o = &self.options;
        let scope = o.scopes.join(" ");
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &o.client_id)
            .append_pair("redirect_uri", &o.redirect_url)
            .append_pair("scope", &scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let endpoint = &provider.authorization_endpoint;
        let sep = if endpoint.contains('?') { '&' } else { '?' };
        let url = format!("{endpoint}{sep}{query}");
        let now = Instant::now();
        let mut pending = self.lock();
        pending.retain(|_, p| now.duration_since(p.created) <= PENDING_TTL);
        if pending.len() >= MAX_PENDING
            && let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, p)| p.created)
                .map(|(k, _)| *k)
        {
            pending.remove(&oldest);
        }
        pending.insert(
            key(&state),
            Pending {
                nonce,
                verifier,
                next: next.to_owned(),
                created: now,
            },
        );
        Ok((state, url))
    }

    /// Ends the pending sign-in of `state` without a token (the provider answered an error).
    pub fn abandon(&self, cookie_state: Option<&str>, state: Option<&str>) {
        if let (Some(c), Some(s)) = (cookie_state, state)
            && same(c, s)
        {
            self.lock().remove(&key(s));
        }
    }

    /// Finishes the sign-in of the provider's answer (`state`, `code`, `iss`), which the
    /// browser brought back with `cookie_state`.
    pub async fn finish(
        &self,
        cookie_state: Option<&str>,
        state: &str,
        code: &str,
        iss: Option<&str>,
    ) -> Result<SignedIn, Refusal> {
        let refuse = |why: &str| Refusal::SignIn(why.to_owned());
        let Some(cookie_state) = cookie_state else {
            return Err(refuse(
                "this browser did not start this sign-in (no sign-in cookie): start again",
            ));
        };
        if !same(cookie_state, state) {
            return Err(refuse(
                "the provider's answer is not for the sign-in this browser started: start again",
            ));
        }
        let pending = self.lock().remove(&key(state)).ok_or_else(|| {
            refuse(
                "this sign-in is unknown or already used (or the console restarted): start again",
            )
        })?;
        if pending.created.elapsed() > PENDING_TTL {
            return Err(refuse(
                "this sign-in took over 10 minutes at the provider: start again",
            ));
        }
        let o = &self.options;
        if let Some(iss) = iss
            && iss != o.issuer
        {
            return Err(refuse(
                "the answer comes from another issuer than console.oidc.issuer",
            ));
        }
        let provider = self.provider().await?;
        let answer = self.redeem(&provider, code, &pending.verifier).await?;
        let id_token = answer.id_token.ok_or_else(|| {
            Refusal::Provider(
                "the provider answered no ID token (is `openid` in console.oidc.scopes?)".into(),
            )
        })?;
        let claims = provider
            .id_tokens
            .claims(&id_token)
            .await
            .map_err(|d| match d {
                Denied::Invalid(why) => Refusal::SignIn(format!("the ID token is refused: {why}")),
                Denied::Missing => refuse("the provider answered an empty ID token"),
            })?;
        if !claims
            .get("nonce")
            .and_then(Value::as_str)
            .is_some_and(|n| same(n, &pending.nonce))
        {
            return Err(refuse("the ID token's nonce is not this sign-in's"));
        }
        if let Some(azp) = claims.get("azp").and_then(Value::as_str)
            && azp != o.client_id
        {
            return Err(refuse("the ID token was issued to another client (azp)"));
        }
        let token = match o.token {
            OidcToken::IdToken => id_token,
            OidcToken::AccessToken => answer
                .access_token
                .ok_or_else(|| Refusal::Provider("the provider answered no access token".into()))?,
        };
        Ok(SignedIn {
            token,
            next: pending.next,
        })
    }

    /// Trades a code for tokens at the token endpoint.
    async fn redeem(
        &self,
        provider: &Provider,
        code: &str,
        verifier: &str,
    ) -> Result<TokenAnswer, Refusal> {
        let o = &self.options;
        let body = Zeroizing::new(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", &o.redirect_url)
                .append_pair("code_verifier", verifier)
                .append_pair("client_id", &o.client_id)
                .finish(),
        );
        let mut request = self
            .http
            .post(&provider.token_endpoint)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body.as_str().to_owned());
        if let Some(secret) = &o.client_secret {
            // RFC 6749 2.3.1: both parts form-encoded before the Basic encoding.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = Zeroizing::new(format!("{}:{}", enc(&o.client_id), enc(secret.expose())));
            let basic = Zeroizing::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
            ));
            request = request.header(reqwest::header::AUTHORIZATION, basic.as_str());
        }
        let response = request.send().await.map_err(|e| {
            Refusal::Provider(format!(
                "cannot reach the token endpoint: {}",
                e.without_url()
            ))
        })?;
        let status = response.status();
        let body = read_capped(response, "the token endpoint").await?;
        if !status.is_success() {
            let why = match serde_json::from_slice::<ErrorAnswer>(&body) {
                Ok(e) => match e.error_description {
                    Some(d) => format!("{}: {}", short(&e.error), short(&d)),
                    None => short(&e.error),
                },
                Err(_) => format!("HTTP {status}"),
            };
            return Err(Refusal::SignIn(format!(
                "the provider refused the code: {why}"
            )));
        }
        serde_json::from_slice(&body).map_err(|e| {
            Refusal::Provider(format!(
                "the token endpoint's answer is not JSON tokens: {e}"
            ))
        })
    }

    /// How many sign-ins are pending.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_text_is_cut_and_cleaned() {
        assert_eq!(short("bad\ncode"), "badcode");
        let long = "é".repeat(300);
        assert_eq!(short(&long).chars().count(), 201);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
