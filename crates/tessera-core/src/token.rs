//! The token model: what a successful grant yields, with absolute expiry instants.

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
        }
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
