//! `sked auth new-token` and `sked auth hash`: offline helpers for static API tokens.

use std::io::Read;

use sked_core::config::{Scope, token_hash};

use crate::{
    AuthCommand,
    error::{Error, exit},
};

/// Runs `sked auth ...`.
pub fn run(command: AuthCommand, stdin: impl Read) -> Result<String, Error> {
    match command {
        AuthCommand::NewToken {
            name,
            scopes,
            tenants,
        } => new_token(&name, &scopes, &tenants),
        AuthCommand::Hash => {
            let mut token = String::new();
            stdin
                .take(64 * 1024)
                .read_to_string(&mut token)
                .map_err(|e| Error::new(exit::FAILURE, format!("cannot read stdin: {e}")))?;
            let token = token.trim();
            if token.is_empty() {
                return Err(Error::new(exit::USAGE, "no token on stdin"));
            }
            Ok(format!("{}\n", token_hash(token)))
        }
    }
}

fn new_token(name: &str, scopes: &[String], tenants: &[String]) -> Result<String, Error> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(Error::new(
            exit::USAGE,
            "--name: letters, digits, `-`, `_` and `.` only",
        ));
    }
    for scope in scopes {
        scope
            .parse::<Scope>()
            .map_err(|e| Error::new(exit::USAGE, format!("--scope: {e}")))?;
    }
    for tenant in tenants {
        sked_core::request::check_tenant(tenant)
            .map_err(|e| Error::new(exit::USAGE, format!("--tenant {tenant}: {e}")))?;
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::new(exit::FAILURE, format!("no randomness: {e}")))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let token = format!("sked_{token}");
    let list = |items: &[String]| {
        items
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = format!(
        "# token (shown once; give it to the client as SKED_TOKEN):\n# {token}\n\
         [auth.tokens.{name}]\nhash = \"{}\"\nscopes = [{}]\n",
        token_hash(&token),
        list(scopes)
    );
    if !tenants.is_empty() {
        out.push_str(&format!("tenants = [{}]\n", list(tenants)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_new_token_comes_with_its_hash() {
        let out = new_token("ci", &["jobs:write".into()], &["acme".into()]).unwrap();
        let token = out
            .lines()
            .nth(1)
            .and_then(|l| l.strip_prefix("# "))
            .unwrap();
        assert!(token.starts_with("sked_") && token.len() == 5 + 64);
        assert!(out.contains(&token_hash(token)));
        assert!(out.contains("scopes = [\"jobs:write\"]"));
        assert!(out.contains("tenants = [\"acme\"]"));
        assert!(new_token("ci", &["jobs:delete".into()], &[]).is_err());
        let hashed = run(AuthCommand::Hash, token.as_bytes()).unwrap();
        assert_eq!(hashed.trim(), token_hash(token));
    }
}
