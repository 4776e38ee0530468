//! Sign-in sessions: the browser holds only a random session id in an `HttpOnly`,
//! `SameSite=Strict` cookie; the API token it signed in with stays in this process's memory
//! (wiped when the session ends) and is never sent back to the browser.
//!
//! Sessions live in memory: a restart signs everyone out, and several console replicas need
//! sticky sessions (docs/console.md). Every mutating form carries the session's CSRF token,
//! compared in constant time.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use sked_api::stats::Whoami;
use zeroize::Zeroizing;

/// The cookie's name.
pub const COOKIE: &str = "sked_console";

/// Most sessions at once; signing in beyond it ends the least recently used one.
const MAX_SESSIONS: usize = 10_000;

/// A signed-in user.
#[derive(Clone)]
pub struct Session {
    /// The bearer token, wiped from memory when the last copy is dropped.
    token: Arc<Zeroizing<String>>,
    /// Who the API says the token is.
    pub who: Arc<Whoami>,
    /// The token every mutating form must carry.
    pub csrf: Arc<str>,
    created: Instant,
    last: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("who", &self.who.actor)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The bearer token, for API calls only.
    pub fn token(&self) -> &str {
        self.token.as_str()
    }

    /// Whether the token has `scope` (`admin` has all).
    pub fn may(&self, scope: &str) -> bool {
        self.who.scopes.iter().any(|s| s == scope || s == "admin")
    }

    /// Whether `presented` is this session's CSRF token.
    pub fn csrf_ok(&self, presented: &str) -> bool {
        same(&self.csrf, presented)
    }
}

/// Every session, by the SHA-256 of its id (the id itself is kept only by the browser).
#[derive(Clone)]
pub struct Sessions {
    map: Arc<Mutex<HashMap<[u8; 32], Session>>>,
    idle: Duration,
    max: Duration,
}

/// Whether two secrets are equal, in time independent of where they differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 32 random bytes, base64url: a session id, a CSRF token, an OIDC state or verifier.
pub(crate) fn random_id() -> anyhow::Result<String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

/// The map key of a secret id: its SHA-256, so the map never holds the id itself.
pub(crate) fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Sessions that end after `idle` unused or `max` after sign-in.
    pub fn new(idle: Duration, max: Duration) -> Self {
        Self {
            map: Arc::default(),
            idle,
            max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Signs in: returns the new session's id (the cookie's value).
    pub fn create(&self, token: String, who: Whoami) -> anyhow::Result<String> {
        let id = random_id()?;
        let now = Instant::now();
        let session = Session {
            token: Arc::new(Zeroizing::new(token)),
            who: Arc::new(who),
            csrf: random_id()?.into(),
            created: now,
            last: now,
        };
        let mut map = self.lock();
        self.expire(&mut map, now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(key(&id), session);
        Ok(id)
    }

    /// The live session of a cookie value, marked used.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.lock();
        let k = key(id);
        let session = map.get_mut(&k)?;
        if now.duration_since(session.last) > self.idle
            || now.duration_since(session.created) > self.max
        {
            map.remove(&k);
            return None;
        }
        session.last = now;
        Some(session.clone())
    }

    /// Signs out.
    pub fn remove(&self, id: &str) {
        self.lock().remove(&key(id));
    }

    /// Sessions now signed in.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no one is signed in.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expire(&self, map: &mut HashMap<[u8; 32], Session>, now: Instant) {
        map.retain(|_, s| {
            now.duration_since(s.last) <= self.idle && now.duration_since(s.created) <= self.max
        });
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn who() -> Whoami {
        Whoami {
            actor: "ops".into(),
            via: "token".into(),
            scopes: vec!["jobs:read".into()],
            tenants: None,
        }
    }

    #[test]
    fn a_session_ends_when_idle_and_on_sign_out() {
        let sessions = Sessions::new(Duration::from_millis(50), Duration::from_secs(60));
        let id = sessions.create("sked_secret".into(), who()).unwrap();
        let s = sessions.get(&id).unwrap();
        assert_eq!(s.token(), "sked_secret");
        assert!(s.may("jobs:read") && !s.may("jobs:write"));
        assert!(sessions.get("forged").is_none());
        std::thread::sleep(Duration::from_millis(80));
        assert!(sessions.get(&id).is_none(), "idle past session_idle");
        let id = sessions.create("t".into(), who()).unwrap();
        sessions.remove(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn csrf_and_cookies() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(60));
        let id = sessions.create("sked_token_value".into(), who()).unwrap();
        let s = sessions.get(&id).unwrap();
        assert!(!format!("{s:?}").contains("sked_token_value"));
        assert!(s.csrf_ok(&s.csrf.clone()));
        assert!(!s.csrf_ok("") && !s.csrf_ok("x"));
        assert_eq!(cookie("a=1; sked_console=abc; b=2", COOKIE), Some("abc"));
        assert_eq!(cookie("a=1", COOKIE), None);
    }
}
