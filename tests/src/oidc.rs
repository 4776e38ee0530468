//! A real OpenID Connect provider for the console's sign-in tests: panva's `oidc-provider`
//! (OpenID Certified) under Node.js, from tests/oidc (installed by scripts/oidc-deps.sh,
//! which scripts/test.sh runs). Its development login page accepts any name and password;
//! the name decides the account's roles and tenants (tests/oidc/provider.mjs).

use std::{path::PathBuf, process::Stdio, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// The client id the provider knows the console by.
pub const CLIENT_ID: &str = "sked-console";

/// A running provider; killed on drop.
pub struct Provider {
    /// Its issuer URL (`http://127.0.0.1:<port>`).
    pub issuer: String,
    _child: Child,
}

impl Provider {
    /// Starts one whose only client is the console with `redirect_uri` and `secret`.
    pub async fn start(redirect_uri: &str, secret: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "{} has no node_modules: run scripts/oidc-deps.sh (scripts/test.sh does)",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&dir)
            .env("REDIRECT_URI", redirect_uri)
            .env("CLIENT_SECRET", secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start node tests/oidc/provider.mjs (is Node.js installed?)");
        let stdout = child.stdout.take().expect("provider stdout");
        let mut lines = BufReader::new(stdout).lines();
        let issuer = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("provider stdout") {
                if let Some(issuer) = line.strip_prefix("listening ") {
                    return issuer.to_owned();
                }
            }
            panic!("the provider ended before listening");
        })
        .await
        .expect("the provider listens within 30 s");
        // Keep reading its output, so a full pipe never stops it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            issuer,
            _child: child,
        }
    }

    /// The `auth.jwt` settings under which sked's API accepts this provider's access tokens
    /// (audience `sked-api`) or, with `id_tokens`, its ID tokens only (audience `client_id`),
    /// so a console that sent the other token is refused: roles in `sked_roles`, mapped to
    /// sked scopes, and tenants in `sked_tenants`.
    pub fn api_sets(&self, id_tokens: bool) -> Vec<String> {
        let audience = if id_tokens { CLIENT_ID } else { "sked-api" };
        let audience = format!(r#"["{audience}"]"#);
        vec![
            format!("auth.jwt.issuer={}", self.issuer),
            format!("auth.jwt.audience={audience}"),
            format!("auth.jwt.jwks_url={}/jwks", self.issuer),
            "auth.jwt.scopes_claim=sked_roles".into(),
            r#"auth.jwt.scope_map.sked-operators=["admin"]"#.into(),
            r#"auth.jwt.scope_map.sked-readers=["jobs:read", "dlq:read"]"#.into(),
        ]
    }
}
