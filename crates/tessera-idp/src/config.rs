//! Server configuration: [`IdpConfig`], the [`User`]s and [`Client`]s it knows, and the grant
//! type names. Plain data plus validation; nothing here touches the network.
//!
//! `Debug` output of users and clients never shows passwords, TOTP secrets or client secrets.

use std::collections::HashSet;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::demo;

/// Names of the grant types the server implements (`grant_type` values of RFC 6749).
pub mod grant_types {
    /// Resource owner password credentials grant (RFC 6749 §4.3), with an optional `totp` field.
    pub const PASSWORD: &str = "password";
    /// Refresh token grant (RFC 6749 §6).
    pub const REFRESH_TOKEN: &str = "refresh_token";
    /// Client credentials grant (RFC 6749 §4.4).
    pub const CLIENT_CREDENTIALS: &str = "client_credentials";
    /// Every grant type the server implements, in the order the discovery document lists them.
    pub const ALL: [&str; 3] = [PASSWORD, REFRESH_TOKEN, CLIENT_CREDENTIALS];
}

/// A resource owner who can log in with the password grant.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Login name; also the `sub` claim of the tokens issued to this user.
    pub username: String,
    /// Plain-text password (this is a test server).
    pub password: String,
    /// Base32 TOTP secret (SHA-1, 6 digits, 30 s). When set, the password grant requires a
    /// `totp` field holding the current code (the previous and next codes are accepted too).
    #[serde(default)]
    pub totp_secret: Option<String>,
    /// Email address returned by `/userinfo`.
    pub email: String,
    /// Whether the user is an administrator (returned by `/userinfo` as `admin`).
    #[serde(default)]
    pub admin: bool,
}

impl User {
    /// A user without a second factor and without admin rights.
    pub fn new(username: impl Into<String>, password: impl Into<String>, email: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
            totp_secret: None,
            email: email.into(),
            admin: false,
        }
    }

    /// Requires a TOTP code generated from `secret` (base32) with the password grant.
    pub fn with_totp_secret(mut self, secret: impl Into<String>) -> Self {
        self.totp_secret = Some(secret.into());
        self
    }

    /// Sets the admin flag.
    pub fn with_admin(mut self, admin: bool) -> Self {
        self.admin = admin;
        self
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("totp_secret", &self.totp_secret.as_ref().map(|_| "<redacted>"))
            .field("email", &self.email)
            .field("admin", &self.admin)
            .finish()
    }
}

/// An OAuth client registered with the server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// The `client_id`.
    pub client_id: String,
    /// The secret of a confidential client (HTTP Basic or `client_secret` in the body);
    /// `None` for a public client, which sends only `client_id`.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Grant types this client may use; see [`grant_types`]. Others are answered with
    /// `unauthorized_client`.
    pub grant_types: Vec<String>,
}

impl Client {
    /// A confidential client authenticated by `secret`.
    pub fn confidential(client_id: impl Into<String>, secret: impl Into<String>, grant_types: &[&str]) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Some(secret.into()),
            grant_types: grant_types.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    /// A public client (no secret).
    pub fn public(client_id: impl Into<String>, grant_types: &[&str]) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
            grant_types: grant_types.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    /// Whether this client may use `grant_type`.
    pub fn allows(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("grant_types", &self.grant_types)
            .finish()
    }
}

/// Everything [`IdpServer::start`](crate::IdpServer::start) needs. `Default` is [`IdpConfig::demo`].
///
/// ```
/// use std::time::Duration;
/// use tessera_idp::IdpConfig;
///
/// let config = IdpConfig {
///     access_token_ttl: Duration::from_secs(5),
///     test_endpoints: true,
///     ..IdpConfig::default()
/// };
/// assert!(config.rotate_refresh_tokens);
/// ```
#[derive(Clone, Debug)]
pub struct IdpConfig {
    /// Address to listen on. Default `127.0.0.1:0` (an ephemeral loopback port).
    pub bind: SocketAddr,
    /// Lifetime of access tokens issued from now on (whole seconds). Default 300 s.
    pub access_token_ttl: Duration,
    /// Lifetime of each refresh token (a rotated token gets a fresh lifetime). Default 30 days.
    pub refresh_token_ttl: Duration,
    /// Whether each refresh returns a new refresh token and retires the old one (reuse of a
    /// retired token revokes its whole family). Default `true`.
    pub rotate_refresh_tokens: bool,
    /// Known users. Default: the demo users of [`demo`](crate::demo).
    pub users: Vec<User>,
    /// Known clients. Default: the demo clients of [`demo`](crate::demo).
    pub clients: Vec<Client>,
    /// Whether the `/_test/*` control endpoints are served. Default `false`.
    pub test_endpoints: bool,
    /// What every API key secret starts with (`/api/keys`). Default `qk_`.
    pub api_key_prefix: String,
}

impl IdpConfig {
    /// The demo configuration: alice (no TOTP, admin), bob (TOTP), a confidential and a public
    /// client, ephemeral loopback port, 300 s access tokens, 30 day rotating refresh tokens.
    pub fn demo() -> Self {
        use grant_types::{CLIENT_CREDENTIALS, PASSWORD, REFRESH_TOKEN};
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            access_token_ttl: Duration::from_secs(300),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 60 * 60),
            rotate_refresh_tokens: true,
            users: vec![
                User::new(demo::ALICE_USERNAME, demo::ALICE_PASSWORD, demo::ALICE_EMAIL).with_admin(true),
                User::new(demo::BOB_USERNAME, demo::BOB_PASSWORD, demo::BOB_EMAIL)
                    .with_totp_secret(demo::BOB_TOTP_SECRET),
            ],
            clients: vec![
                Client::confidential(
                    demo::CONFIDENTIAL_CLIENT_ID,
                    demo::CONFIDENTIAL_CLIENT_SECRET,
                    &[PASSWORD, REFRESH_TOKEN, CLIENT_CREDENTIALS],
                ),
                Client::public(demo::PUBLIC_CLIENT_ID, &[PASSWORD, REFRESH_TOKEN]),
            ],
            test_endpoints: false,
            api_key_prefix: crate::api_keys::DEFAULT_PREFIX.to_owned(),
        }
    }

    /// Checks what `start` would otherwise discover late: duplicate names, unknown grant types,
    /// a public client allowed `client_credentials`. TOTP secrets are checked when the server
    /// builds its verifiers.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let mut names = HashSet::new();
        for user in &self.users {
            if !names.insert(user.username.as_str()) {
                return Err(format!("duplicate user `{}`", user.username));
            }
        }
        if self.api_key_prefix.is_empty() || self.api_key_prefix.contains(char::is_whitespace) {
            return Err("api_key_prefix must be non-empty, without whitespace".to_owned());
        }
        let mut ids = HashSet::new();
        for client in &self.clients {
            if !ids.insert(client.client_id.as_str()) {
                return Err(format!("duplicate client `{}`", client.client_id));
            }
            if let Some(g) = client.grant_types.iter().find(|g| !grant_types::ALL.contains(&g.as_str())) {
                return Err(format!(
                    "client `{}`: unsupported grant type `{g}` (supported: {})",
                    client.client_id,
                    grant_types::ALL.join(", ")
                ));
            }
            if client.client_secret.is_none() && client.allows(grant_types::CLIENT_CREDENTIALS) {
                return Err(format!(
                    "client `{}`: client_credentials needs a confidential client (set a secret)",
                    client.client_id
                ));
            }
        }
        Ok(())
    }
}

impl Default for IdpConfig {
    fn default() -> Self {
        Self::demo()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let config = IdpConfig::demo();
        let text = format!("{config:?}");
        assert!(!text.contains(demo::ALICE_PASSWORD));
        assert!(!text.contains(demo::BOB_TOTP_SECRET));
        assert!(!text.contains(demo::CONFIDENTIAL_CLIENT_SECRET));
        assert!(text.contains(demo::ALICE_USERNAME));
    }

    #[test]
    fn validate_rejects_bad_configs() {
        assert_eq!(IdpConfig::demo().validate(), Ok(()));

        let mut dup = IdpConfig::demo();
        dup.users.push(User::new("alice", "x", "x@example.com"));
        assert!(dup.validate().unwrap_err().contains("duplicate user"));

        let mut unknown = IdpConfig::demo();
        unknown.clients.push(Client::public("c", &["implicit"]));
        assert!(unknown.validate().unwrap_err().contains("implicit"));

        let mut public_cc = IdpConfig::demo();
        public_cc.clients.push(Client::public("c", &[grant_types::CLIENT_CREDENTIALS]));
        assert!(public_cc.validate().unwrap_err().contains("confidential"));
    }
}
