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

/// Names of the grant types the server implements (`grant_type` values of RFC 6749, plus the
/// name clients need for the email one-time-code login).
pub mod grant_types {
    /// Resource owner password credentials grant (RFC 6749 §4.3), with an optional `totp` field.
    pub const PASSWORD: &str = "password";
    /// Refresh token grant (RFC 6749 §6).
    pub const REFRESH_TOKEN: &str = "refresh_token";
    /// Client credentials grant (RFC 6749 §4.4).
    pub const CLIENT_CREDENTIALS: &str = "client_credentials";
    /// Authorization code grant (RFC 6749 §4.1) with PKCE S256 (RFC 7636).
    pub const AUTHORIZATION_CODE: &str = "authorization_code";
    /// Device authorization grant (RFC 8628 §3.4).
    pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
    /// Email one-time-code login (`/otp/start` + `/otp/verify`, and Cognito `CUSTOM_AUTH` /
    /// `EMAIL_OTP`). Not a `/token` grant type: it only says a client may use those endpoints.
    pub const EMAIL_OTP: &str = "email_otp";
    /// JWT bearer grant (RFC 7523 §2.1), for [`ServiceAccount`](crate::ServiceAccount)s (not
    /// a client's grant type: the assertion is the credential).
    pub const JWT_BEARER: &str = crate::JWT_BEARER_GRANT_TYPE;
    /// Grant types accepted at `POST /token`, in the order the discovery document lists them.
    pub const TOKEN_ENDPOINT: [&str; 6] =
        [PASSWORD, REFRESH_TOKEN, CLIENT_CREDENTIALS, AUTHORIZATION_CODE, DEVICE_CODE, JWT_BEARER];
    /// RFC 8693 token exchange (answered at `POST /token` beside the grants above; a client
    /// must list it to exchange).
    pub const TOKEN_EXCHANGE: &str = crate::TOKEN_EXCHANGE_GRANT_TYPE;
    /// Every name a [`Client`](crate::Client) may list in its `grant_types`.
    pub const ALL: [&str; 7] =
        [PASSWORD, REFRESH_TOKEN, CLIENT_CREDENTIALS, AUTHORIZATION_CODE, DEVICE_CODE, EMAIL_OTP, TOKEN_EXCHANGE];
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
    /// Whether the user has email one-time-code MFA: Cognito `USER_PASSWORD_AUTH` answers with
    /// an `EMAIL_OTP` challenge instead of tokens.
    #[serde(default)]
    pub email_otp: bool,
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
            email_otp: false,
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

    /// Sets whether the user has email one-time-code MFA (see [`User::email_otp`]).
    pub fn with_email_otp(mut self, email_otp: bool) -> Self {
        self.email_otp = email_otp;
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
            .field("email_otp", &self.email_otp)
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
    /// Registered redirect URIs for the authorization code grant. Compared as exact strings,
    /// except that an `http://127.0.0.1/...` or `http://[::1]/...` URI matches any port
    /// (RFC 8252 §7.3). `http://localhost` gets no such exception.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The public key of a `private_key_jwt` client (RFC 7523 §2.2): an SPKI PEM
    /// (`-----BEGIN PUBLIC KEY-----`) or a public JWK, RSA, EC P-256 or Ed25519. When set, the
    /// client may authenticate with `client_assertion_type` + `client_assertion` signed by the
    /// private half; a client with a key and no secret must.
    #[serde(default)]
    pub public_key: Option<String>,
    /// The `kid` of [`Client::public_key`]; when set, an assertion naming another `kid` is refused.
    #[serde(default)]
    pub key_id: Option<String>,
}

impl Client {
    /// A confidential client authenticated by `secret`.
    pub fn confidential(client_id: impl Into<String>, secret: impl Into<String>, grant_types: &[&str]) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Some(secret.into()),
            grant_types: grant_types.iter().map(|g| (*g).to_owned()).collect(),
            redirect_uris: Vec::new(),
            public_key: None,
            key_id: None,
        }
    }

    /// A public client (no secret).
    pub fn public(client_id: impl Into<String>, grant_types: &[&str]) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
            grant_types: grant_types.iter().map(|g| (*g).to_owned()).collect(),
            redirect_uris: Vec::new(),
            public_key: None,
            key_id: None,
        }
    }

    /// A confidential client authenticated by `private_key_jwt` only: assertions signed with the
    /// private half of `public_key` (see [`Client::public_key`]), no secret.
    pub fn private_key_jwt(client_id: impl Into<String>, public_key: impl Into<String>, grant_types: &[&str]) -> Self {
        Self { public_key: Some(public_key.into()), ..Self::public(client_id, grant_types) }
    }

    /// Sets the `kid` of the client's public key (see [`Client::key_id`]).
    pub fn with_key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }

    /// Registers `uris` as this client's redirect URIs (see [`Client::redirect_uris`]).
    pub fn with_redirect_uris(mut self, uris: &[&str]) -> Self {
        self.redirect_uris = uris.iter().map(|u| (*u).to_owned()).collect();
        self
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
            .field("redirect_uris", &self.redirect_uris)
            .field("public_key", &self.public_key.as_ref().map(|_| "<public key>"))
            .field("key_id", &self.key_id)
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
    /// Lifetime of a device code (`expires_in` of RFC 8628 §3.2). Default 600 s.
    pub device_code_ttl: Duration,
    /// Minimum polling interval announced for device codes (`interval`, whole seconds, at least
    /// 1). Default 5 s; tests usually want 1.
    pub device_poll_interval: Duration,
    /// What every API key secret starts with (`/api/keys`). Default `qk_`.
    pub api_key_prefix: String,
    /// Serve HTTPS with this certificate and key (the issuer is then `https://...`); e.g. one
    /// signed by a [`TestCa`](crate::TestCa) made at run time. Default `None`: plain HTTP.
    pub tls: Option<crate::TlsIdentity>,
    /// Accounts that may use the JWT bearer grant. Default: [`ServiceAccount::demo`](crate::ServiceAccount::demo).
    pub service_accounts: Vec<crate::ServiceAccount>,
}

impl IdpConfig {
    /// The demo configuration: alice (no TOTP, admin), bob (TOTP), carol (email one-time-code
    /// MFA), the confidential and public password clients, the browser/device/OTP client
    /// `tessera-cli`, a confidential web client, two Cognito app clients and the `private_key_jwt` client
    /// `assertion-client` (see [`demo`]);
    /// ephemeral loopback port, 300 s access tokens, 30 day rotating refresh tokens, 600 s device
    /// codes polled every 5 s.
    pub fn demo() -> Self {
        use grant_types::{
            AUTHORIZATION_CODE, CLIENT_CREDENTIALS, DEVICE_CODE, EMAIL_OTP, PASSWORD, REFRESH_TOKEN, TOKEN_EXCHANGE,
        };
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            access_token_ttl: Duration::from_secs(300),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 60 * 60),
            rotate_refresh_tokens: true,
            users: vec![
                User::new(demo::ALICE_USERNAME, demo::ALICE_PASSWORD, demo::ALICE_EMAIL).with_admin(true),
                User::new(demo::BOB_USERNAME, demo::BOB_PASSWORD, demo::BOB_EMAIL)
                    .with_totp_secret(demo::BOB_TOTP_SECRET),
                User::new(demo::CAROL_USERNAME, demo::CAROL_PASSWORD, demo::CAROL_EMAIL).with_email_otp(true),
            ],
            clients: vec![
                Client::confidential(
                    demo::CONFIDENTIAL_CLIENT_ID,
                    demo::CONFIDENTIAL_CLIENT_SECRET,
                    &[PASSWORD, REFRESH_TOKEN, CLIENT_CREDENTIALS, TOKEN_EXCHANGE],
                ),
                Client::public(demo::PUBLIC_CLIENT_ID, &[PASSWORD, REFRESH_TOKEN]),
                Client::public(demo::BROWSER_CLIENT_ID, &[AUTHORIZATION_CODE, DEVICE_CODE, EMAIL_OTP, REFRESH_TOKEN])
                    .with_redirect_uris(&[
                        demo::BROWSER_REDIRECT_URI,
                        demo::BROWSER_REDIRECT_URI_V6,
                        demo::BROWSER_REDIRECT_URI_ROOT,
                    ]),
                Client::confidential(
                    demo::WEB_CLIENT_ID,
                    demo::WEB_CLIENT_SECRET,
                    &[AUTHORIZATION_CODE, DEVICE_CODE, EMAIL_OTP, REFRESH_TOKEN],
                )
                .with_redirect_uris(&[demo::WEB_REDIRECT_URI]),
                Client::public(demo::COGNITO_CLIENT_ID, &[PASSWORD, EMAIL_OTP, REFRESH_TOKEN]),
                Client::confidential(
                    demo::COGNITO_SECRET_CLIENT_ID,
                    demo::COGNITO_CLIENT_SECRET,
                    &[PASSWORD, EMAIL_OTP, REFRESH_TOKEN],
                ),
                Client::private_key_jwt(
                    demo::ASSERTION_CLIENT_ID,
                    demo::ASSERTION_CLIENT_PUBLIC_KEY,
                    &[PASSWORD, REFRESH_TOKEN, CLIENT_CREDENTIALS],
                )
                .with_key_id(demo::ASSERTION_CLIENT_KEY_ID),
            ],
            test_endpoints: false,
            device_code_ttl: Duration::from_secs(600),
            device_poll_interval: Duration::from_secs(5),
            api_key_prefix: crate::api_keys::DEFAULT_PREFIX.to_owned(),
            tls: None,
            service_accounts: vec![crate::ServiceAccount::demo()],
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
        if self.device_poll_interval.as_secs() == 0 {
            return Err("device_poll_interval must be at least 1 s".to_owned());
        }
        if self.device_code_ttl.as_secs() == 0 {
            return Err("device_code_ttl must be at least 1 s".to_owned());
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
            if client.client_secret.is_none()
                && client.public_key.is_none()
                && client.allows(grant_types::CLIENT_CREDENTIALS)
            {
                return Err(format!(
                    "client `{}`: client_credentials needs a confidential client (set a secret or a public key)",
                    client.client_id
                ));
            }
            if client.allows(grant_types::AUTHORIZATION_CODE) && client.redirect_uris.is_empty() {
                return Err(format!(
                    "client `{}`: authorization_code needs at least one redirect URI",
                    client.client_id
                ));
            }
            if let Some(uri) = client.redirect_uris.iter().find(|u| url::Url::parse(u).is_err()) {
                return Err(format!("client `{}`: redirect URI `{uri}` is not an absolute URL", client.client_id));
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

        let mut bad_redirect = IdpConfig::demo();
        bad_redirect.clients.push(Client::public("c", &[grant_types::AUTHORIZATION_CODE]).with_redirect_uris(&["/cb"]));
        assert!(bad_redirect.validate().unwrap_err().contains("redirect URI"));

        let mut no_redirect = IdpConfig::demo();
        no_redirect.clients.push(Client::public("c", &[grant_types::AUTHORIZATION_CODE]));
        assert!(no_redirect.validate().unwrap_err().contains("redirect URI"));

        let zero_interval = IdpConfig { device_poll_interval: Duration::ZERO, ..IdpConfig::demo() };
        assert!(zero_interval.validate().unwrap_err().contains("device_poll_interval"));
    }
}
