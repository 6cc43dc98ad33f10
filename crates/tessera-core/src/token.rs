//! The token model: what a successful grant yields, with absolute expiry instants.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Secret, Timestamp};

/// The credentials one grant produced, with absolute expiry instants.
///
/// `Debug` never shows the tokens. Serializing writes them in clear (for stores).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    /// The bearer credential sent to APIs.
    pub access_token: Secret,
    /// Usually `Bearer`.
    #[serde(default = "default_token_type")]
    pub token_type: String,
    /// When the access token stops being accepted; `None` when the server did not say.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// Used to get a new access token without the user; rotated by some servers.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// When the refresh token stops being accepted, when known.
    #[serde(default)]
    pub refresh_expires_at: Option<Timestamp>,
    /// The OpenID Connect ID token, when one was issued.
    #[serde(default)]
    pub id_token: Option<Secret>,
    /// Granted scope, when the server said.
    #[serde(default)]
    pub scope: Option<String>,
    /// When this set was received; with `expires_at` it gives the token's lifetime.
    pub issued_at: Timestamp,
    /// The private DPoP key these tokens are bound to (RFC 9449), when tessera generated it
    /// (`dpop = true` without `dpop_key`): kept with the tokens so that every process sharing the
    /// store proves with the same key. A user's `dpop_key` is never copied here. Never shown by
    /// `Debug`; serialized (for stores) like the tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<Secret>,
    /// One login serving several resources (RFC 8707): each resource's own access token, by
    /// resource identifier, all refreshed with this set's refresh token (their entries hold none).
    /// Read and written through [`TokenSet::for_resource`] and [`TokenSet::with_resource_tokens`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_tokens: BTreeMap<String, TokenSet>,
    /// The client tessera registered for these tokens (RFC 7591, a resource-first login): kept
    /// with them so that every process sharing the store uses it and none registers another.
    /// Boxed: most sets have none, and a token set travels by value through every flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_client: Option<Box<StoredClient>>,
}

/// A client registered by tessera (RFC 7591), as a store keeps it ([`TokenSet::registered_client`]).
/// `Debug` never shows the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredClient {
    /// The authorization server it is registered at (its issuer identifier).
    pub issuer: String,
    /// The `client_id` issued.
    pub client_id: String,
    /// The `client_secret`, for a confidential client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// When the secret stops working, when it does (RFC 7591 `client_secret_expires_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<Timestamp>,
    /// When it was registered.
    pub registered_at: Timestamp,
}

impl StoredClient {
    /// True when it can still be used at `issuer` at `now`: registered there, and its secret (if
    /// it has one that expires) not expired.
    pub fn usable_at(&self, issuer: &str, now: Timestamp) -> bool {
        self.issuer == issuer && self.client_secret_expires_at.is_none_or(|expires_at| now < expires_at)
    }
}

fn default_token_type() -> String {
    "Bearer".to_owned()
}

impl TokenSet {
    /// Who the ID token names (subject, user name, e-mail), read for display only, unverified:
    /// see [`crate::protocol::unverified_account`]. `None` without an ID token.
    pub fn account(&self) -> Option<crate::protocol::Account> {
        self.id_token.as_ref().and_then(|token| crate::protocol::unverified_account(token.expose_secret()))
    }

    /// A bearer token with an optional expiry, issued at `now` (static tokens, tests).
    pub fn bearer(access_token: impl Into<Secret>, expires_at: Option<Timestamp>, now: Timestamp) -> Self {
        TokenSet {
            access_token: access_token.into(),
            token_type: default_token_type(),
            expires_at,
            refresh_token: None,
            refresh_expires_at: None,
            id_token: None,
            scope: None,
            issued_at: now,
            dpop_key: None,
            resource_tokens: BTreeMap::new(),
            registered_client: None,
        }
    }

    /// A set that holds no usable access token (empty, expired since the epoch): what a store
    /// keeps for a login whose tokens all live in [`TokenSet::resource_tokens`], or for a
    /// registration made before any login ([`TokenSet::registered_client`]). Never served: every
    /// reader checks expiry first.
    pub fn without_access_token(now: Timestamp) -> Self {
        TokenSet::bearer("", Some(Timestamp::EPOCH), now)
    }

    /// What a session for `resource` sees of this stored login: that resource's access token
    /// (else an expired empty one, so that it refreshes) with the login's refresh token, ID token,
    /// DPoP key and registered client.
    pub fn for_resource(&self, resource: &str) -> TokenSet {
        let mut view = match self.resource_tokens.get(resource) {
            Some(entry) => TokenSet { resource_tokens: BTreeMap::new(), ..entry.clone() },
            None => TokenSet::without_access_token(self.issued_at),
        };
        view.refresh_token.clone_from(&self.refresh_token);
        view.refresh_expires_at = self.refresh_expires_at;
        view.id_token.clone_from(&self.id_token);
        view.dpop_key.clone_from(&self.dpop_key);
        view.registered_client.clone_from(&self.registered_client);
        view
    }

    /// This stored login (`None`: there is none yet) after a session for `resource` obtained
    /// `tokens`: their refresh token (rotated or dropped), ID token, DPoP key and registered
    /// client (when they name one) become the login's, their access token `resource`'s. The other resources' access
    /// tokens are kept: they stay valid until they expire, and refresh with the new refresh token.
    pub fn with_resource_tokens(stored: Option<TokenSet>, resource: &str, tokens: &TokenSet) -> TokenSet {
        let mut login = stored.unwrap_or_else(|| TokenSet::without_access_token(tokens.issued_at));
        login.refresh_token.clone_from(&tokens.refresh_token);
        login.refresh_expires_at = tokens.refresh_expires_at;
        if tokens.id_token.is_some() {
            login.id_token.clone_from(&tokens.id_token);
        }
        login.dpop_key.clone_from(&tokens.dpop_key);
        if tokens.registered_client.is_some() {
            login.registered_client.clone_from(&tokens.registered_client);
        }
        let access = TokenSet {
            refresh_token: None,
            refresh_expires_at: None,
            id_token: None,
            dpop_key: None,
            resource_tokens: BTreeMap::new(),
            registered_client: None,
            ..tokens.clone()
        };
        login.resource_tokens.insert(resource.to_owned(), access);
        login
    }

    /// True when the access token is still valid `skew` from now. A token without expiry is always valid.
    pub fn access_valid(&self, now: Timestamp, skew: Duration) -> bool {
        self.expires_at.is_none_or(|expires_at| now + skew < expires_at)
    }

    /// True when a refresh token exists and is still valid `skew` from now (unknown expiry counts as valid).
    pub fn refresh_valid(&self, now: Timestamp, skew: Duration) -> bool {
        self.refresh_token.is_some() && self.refresh_expires_at.is_none_or(|expires_at| now + skew < expires_at)
    }

    /// True when the access token is past its expiry.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        is_expired(self.expires_at, now)
    }

    /// True when the access token expires within `threshold` of `now` (or already has).
    pub fn is_near_expiry(&self, now: Timestamp, threshold: Duration) -> bool {
        is_near_expiry(self.expires_at, now, threshold)
    }

    /// How long the access token was valid for when issued, when known.
    pub fn lifetime(&self) -> Option<Duration> {
        self.expires_at.map(|expires_at| expires_at.duration_since(self.issued_at))
    }

    /// How long before expiry a refresh should start: `skew`, but never more than half the token's
    /// lifetime, so that a 2-second token is not refreshed on every call.
    pub fn refresh_window(&self, skew: Duration) -> Duration {
        match self.lifetime() {
            Some(lifetime) => skew.min(lifetime / 2),
            None => Duration::ZERO,
        }
    }

    /// The instant from which a refresh should start: `expires_at - refresh_window(skew)`, moved later
    /// by `jitter` (a fraction in `[0, 1)` of the window, clamped) so that a fleet holding one token
    /// does not refresh in the same millisecond. `None` for tokens without expiry.
    pub fn refresh_at(&self, skew: Duration, jitter: f64) -> Option<Timestamp> {
        let expires_at = self.expires_at?;
        let window = self.refresh_window(skew);
        let jitter = if jitter.is_finite() { jitter.clamp(0.0, 0.99) } else { 0.0 };
        // At most a quarter of the window is given up to jitter: a refresh still starts well before expiry.
        let shift = window.mul_f64(jitter * 0.25);
        Some(expires_at - window + shift)
    }

    /// The value of an `Authorization` header for this token, e.g. `Bearer eyJ...`.
    ///
    /// The result holds the secret in clear: pass it on, never log it.
    pub fn authorization_value(&self) -> Secret {
        let scheme = if self.token_type.eq_ignore_ascii_case("bearer") || self.token_type.is_empty() {
            "Bearer"
        } else {
            self.token_type.as_str()
        };
        Secret::new(format!("{scheme} {}", self.access_token.expose_secret()))
    }
}

/// True when `expires_at` is known and not after `now`.
pub fn is_expired(expires_at: Option<Timestamp>, now: Timestamp) -> bool {
    expires_at.is_some_and(|expires_at| now >= expires_at)
}

/// True when `expires_at` is known and within `threshold` of `now` (or past).
pub fn is_near_expiry(expires_at: Option<Timestamp>, now: Timestamp, threshold: Duration) -> bool {
    expires_at.is_some_and(|expires_at| now + threshold >= expires_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(issued: i64, lifetime_secs: u64) -> TokenSet {
        let now = Timestamp::from_unix_secs(issued);
        TokenSet::bearer("at", Some(now + Duration::from_secs(lifetime_secs)), now)
    }

    #[test]
    fn validity_with_skew() {
        let t = token(1000, 300);
        let at = |s| Timestamp::from_unix_secs(s);
        assert!(t.access_valid(at(1000), Duration::from_secs(30)));
        assert!(t.access_valid(at(1269), Duration::from_secs(30)));
        assert!(!t.access_valid(at(1270), Duration::from_secs(30)));
        assert!(!t.is_expired(at(1299)));
        assert!(t.is_expired(at(1300)));
        assert!(t.is_near_expiry(at(1290), Duration::from_secs(10)));
        assert!(!t.is_near_expiry(at(1289), Duration::from_secs(10)));
        assert!(!t.refresh_valid(at(1000), Duration::ZERO), "no refresh token");
    }

    #[test]
    fn refresh_window_never_exceeds_half_the_lifetime() {
        let short = token(0, 2);
        assert_eq!(short.refresh_window(Duration::from_secs(30)), Duration::from_secs(1));
        assert_eq!(short.refresh_at(Duration::from_secs(30), 0.0), Some(Timestamp::from_unix_millis(1000)));
        let long = token(0, 3600);
        assert_eq!(long.refresh_window(Duration::from_secs(30)), Duration::from_secs(30));
        let jittered = long.refresh_at(Duration::from_secs(30), 0.5).unwrap();
        assert!(jittered > Timestamp::from_unix_secs(3570) && jittered < Timestamp::from_unix_secs(3600));
        assert_eq!(TokenSet::bearer("x", None, Timestamp::EPOCH).refresh_at(Duration::from_secs(30), 0.0), None);
    }

    #[test]
    fn authorization_value_normalises_bearer() {
        let mut t = token(0, 10);
        t.token_type = "bearer".into();
        assert_eq!(t.authorization_value().expose_secret(), "Bearer at");
        t.token_type = "DPoP".into();
        assert_eq!(t.authorization_value().expose_secret(), "DPoP at");
    }

    #[test]
    fn one_login_keeps_an_access_token_per_resource_and_one_refresh_token() {
        let now = Timestamp::from_unix_secs(100);
        let mut first = token(100, 60);
        first.refresh_token = Some(Secret::new("rt-1"));
        let login = TokenSet::with_resource_tokens(None, "https://a", &first);
        assert!(!login.access_valid(now, Duration::ZERO), "the login itself serves no resource");
        assert_eq!(login.refresh_token, Some(Secret::new("rt-1")));
        let a = login.for_resource("https://a");
        assert_eq!((a.access_token.expose_secret(), a.refresh_token.clone()), ("at", Some(Secret::new("rt-1"))));
        let b = login.for_resource("https://b");
        assert!(!b.access_valid(now, Duration::ZERO) && b.refresh_valid(now, Duration::ZERO), "b refreshes");

        let mut second = TokenSet::bearer("at-b", Some(now + Duration::from_secs(60)), now);
        second.refresh_token = Some(Secret::new("rt-2"));
        let login = TokenSet::with_resource_tokens(Some(login), "https://b", &second);
        assert_eq!(login.refresh_token, Some(Secret::new("rt-2")), "rotation replaces the one refresh token");
        assert_eq!(login.for_resource("https://a").access_token.expose_secret(), "at");
        assert_eq!(login.for_resource("https://a").refresh_token, Some(Secret::new("rt-2")));
        assert_eq!(login.for_resource("https://b").access_token.expose_secret(), "at-b");
        assert!(login.resource_tokens.values().all(|entry| entry.refresh_token.is_none()));
        let json = serde_json::to_string(&login).unwrap();
        assert_eq!(serde_json::from_str::<TokenSet>(&json).unwrap(), login);
        let debug = format!("{login:?}");
        assert!(!debug.contains("at-b") && !debug.contains("rt-2"), "{debug}");
    }

    #[test]
    fn debug_redacts_and_serde_round_trips() {
        let mut t = token(5, 10);
        t.refresh_token = Some(Secret::new("refresh-secret"));
        let debug = format!("{t:?}");
        assert!(!debug.contains("refresh-secret") && !debug.contains("\"at\""));
        let json = serde_json::to_string(&t).unwrap();
        let back: TokenSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
    }
}
