//! In-memory token state: refresh tokens grouped in families, and the access tokens issued from
//! each family (by `jti`) so revocation reaches them.
//!
//! A *family* is everything descended from one password grant: each rotation adds a refresh
//! token to it. Reuse of a rotated token, or revocation of any of its refresh tokens, revokes
//! the family: every refresh token in it stops working and its access tokens introspect as
//! inactive.
//!
//! Refresh tokens are stored by SHA-256 digest, never in clear. All state sits behind one
//! mutex; every method runs to completion under it without awaiting, so a check-and-rotate is
//! atomic even when two requests present the same token at once.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

type Digest32 = [u8; 32];

/// A random opaque token: 32 bytes of CSPRNG output, base64url without padding.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(token: &str) -> Digest32 {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Debug)]
struct RefreshRecord {
    family: u64,
    issued_at: u64,
    expires_at: u64,
    /// Rotated away: presenting it again is reuse.
    used: bool,
    /// Revoked on its own (by [`Store::revoke_user_refresh_tokens`]), family untouched.
    revoked: bool,
}

#[derive(Debug)]
struct Family {
    client_id: String,
    username: String,
    scope: String,
    revoked: bool,
}

#[derive(Debug)]
struct AccessRecord {
    family: Option<u64>,
    expires_at: u64,
    revoked: bool,
}

/// Who a family belongs to and what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) client_id: String,
    pub(crate) username: String,
    pub(crate) scope: String,
}

/// A refresh token that was accepted by [`Store::redeem`].
#[derive(Debug)]
pub(crate) struct Redeemed {
    pub(crate) family: u64,
    pub(crate) grant: Grant,
    /// Scope of this refresh: the requested one, or the family's.
    pub(crate) scope: String,
    /// The replacement refresh token, when rotating.
    pub(crate) rotated: Option<String>,
}

/// Why [`Store::redeem`] refused a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RedeemError {
    Unknown,
    WrongClient,
    Expired,
    Revoked,
    /// The token was already rotated away; its family is now revoked.
    Reused,
    /// The request asked for a scope the family was not granted.
    ScopeNotGranted(String),
}

impl RedeemError {
    pub(crate) fn description(&self) -> String {
        let text = match self {
            Self::ScopeNotGranted(scope) => {
                return format!("scope `{scope}` was not granted to this refresh token");
            }
            Self::Unknown => "the refresh token is unknown",
            Self::WrongClient => "the refresh token was issued to another client",
            Self::Expired => "the refresh token has expired",
            Self::Revoked => "the refresh token has been revoked",
            Self::Reused => {
                "the refresh token was already used: reuse detected, \
                 every token of its family is revoked"
            }
        };
        text.to_owned()
    }
}

/// What introspection reports about an active refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefreshInfo {
    pub(crate) grant: Grant,
    pub(crate) issued_at: u64,
    pub(crate) expires_at: u64,
}

#[derive(Debug, Default)]
struct Inner {
    refresh: HashMap<Digest32, RefreshRecord>,
    families: HashMap<u64, Family>,
    access: HashMap<String, AccessRecord>,
    next_family: u64,
}

impl Inner {
    fn insert_refresh(&mut self, family: u64, now: u64, ttl: u64) -> String {
        let token = random_token();
        self.refresh.insert(
            digest(&token),
            RefreshRecord { family, issued_at: now, expires_at: now.saturating_add(ttl), used: false, revoked: false },
        );
        token
    }

    fn revoke_family(&mut self, family: u64) {
        if let Some(f) = self.families.get_mut(&family) {
            f.revoked = true;
        }
    }

    fn family_revoked(&self, family: u64) -> bool {
        self.families.get(&family).is_none_or(|f| f.revoked)
    }
}

/// The token state of one server.
#[derive(Debug, Default)]
pub(crate) struct Store(Mutex<Inner>);

impl Store {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a family for `grant` and returns its id and first refresh token.
    pub(crate) fn start_family(&self, grant: Grant, now: u64, ttl: u64) -> (u64, String) {
        let mut inner = self.lock();
        inner.next_family += 1;
        let family = inner.next_family;
        inner.families.insert(
            family,
            Family { client_id: grant.client_id, username: grant.username, scope: grant.scope, revoked: false },
        );
        let token = inner.insert_refresh(family, now, ttl);
        (family, token)
    }

    /// Accepts `token` for a refresh by `client_id`, optionally narrowing the scope to
    /// `scope` (space-separated). With `rotate`, the token is retired and a replacement issued
    /// (lifetime `ttl`); presenting a retired token revokes its family. A refused request
    /// changes nothing, except that reuse revokes the family.
    pub(crate) fn redeem(
        &self,
        token: &str,
        client_id: &str,
        scope: Option<&str>,
        rotate: bool,
        now: u64,
        ttl: u64,
    ) -> Result<Redeemed, RedeemError> {
        let mut inner = self.lock();
        let key = digest(token);
        let record = inner.refresh.get(&key).ok_or(RedeemError::Unknown)?;
        let family_id = record.family;
        let family = inner.families.get(&family_id).ok_or(RedeemError::Unknown)?;
        if family.client_id != client_id {
            return Err(RedeemError::WrongClient);
        }
        if record.used {
            inner.revoke_family(family_id);
            return Err(RedeemError::Reused);
        }
        if family.revoked || record.revoked {
            return Err(RedeemError::Revoked);
        }
        if record.expires_at <= now {
            return Err(RedeemError::Expired);
        }
        // RFC 6749 §6: a narrower scope may be requested, never a wider one.
        if let Some(extra) = scope
            .and_then(|requested| requested.split(' ').find(|s| !family.scope.split(' ').any(|granted| granted == *s)))
        {
            return Err(RedeemError::ScopeNotGranted(extra.to_owned()));
        }
        let grant = Grant {
            client_id: family.client_id.clone(),
            username: family.username.clone(),
            scope: family.scope.clone(),
        };
        let rotated = if rotate {
            if let Some(record) = inner.refresh.get_mut(&key) {
                record.used = true;
            }
            Some(inner.insert_refresh(family_id, now, ttl))
        } else {
            None
        };
        Ok(Redeemed {
            family: family_id,
            scope: scope.map_or_else(|| grant.scope.clone(), str::to_owned),
            grant,
            rotated,
        })
    }

    /// Remembers an issued access token so revocation can reach it. Forgets expired ones.
    pub(crate) fn record_access(&self, jti: String, family: Option<u64>, expires_at: u64, now: u64) {
        let mut inner = self.lock();
        if inner.access.len() >= 4096 {
            inner.access.retain(|_, a| a.expires_at > now);
        }
        inner.access.insert(jti, AccessRecord { family, expires_at, revoked: false });
    }

    /// Whether the access token `jti` is unknown or revoked (itself or through its family).
    pub(crate) fn access_revoked(&self, jti: &str) -> bool {
        let inner = self.lock();
        match inner.access.get(jti) {
            None => true,
            Some(a) => a.revoked || a.family.is_some_and(|f| inner.family_revoked(f)),
        }
    }

    /// Revokes the whole family `family`: its refresh tokens stop working and its access tokens
    /// introspect as inactive.
    pub(crate) fn revoke_family(&self, family: u64) {
        self.lock().revoke_family(family);
    }

    /// Revokes the access token `jti`.
    pub(crate) fn revoke_access(&self, jti: &str) {
        if let Some(a) = self.lock().access.get_mut(jti) {
            a.revoked = true;
        }
    }

    /// If `token` is a refresh token issued to `client_id`, revokes its family. Returns whether
    /// it was a refresh token at all (of any client).
    pub(crate) fn revoke_refresh(&self, token: &str, client_id: &str) -> bool {
        let mut inner = self.lock();
        let Some(family) = inner.refresh.get(&digest(token)).map(|r| r.family) else {
            return false;
        };
        if inner.families.get(&family).is_some_and(|f| f.client_id == client_id) {
            inner.revoke_family(family);
        }
        true
    }

    /// Revokes every refresh token of `username`; access tokens stay valid until they expire.
    /// Returns how many were revoked.
    pub(crate) fn revoke_user_refresh_tokens(&self, username: &str) -> usize {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut count = 0;
        for record in inner.refresh.values_mut() {
            if !record.revoked && inner.families.get(&record.family).is_some_and(|f| f.username == username) {
                record.revoked = true;
                count += 1;
            }
        }
        count
    }

    /// The refresh token `token` if it would be accepted now.
    pub(crate) fn active_refresh(&self, token: &str, now: u64) -> Option<RefreshInfo> {
        let inner = self.lock();
        let record = inner.refresh.get(&digest(token))?;
        let family = inner.families.get(&record.family)?;
        if record.used || record.revoked || family.revoked || record.expires_at <= now {
            return None;
        }
        Some(RefreshInfo {
            grant: Grant {
                client_id: family.client_id.clone(),
                username: family.username.clone(),
                scope: family.scope.clone(),
            },
            issued_at: record.issued_at,
            expires_at: record.expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant { client_id: "c".into(), username: "alice".into(), scope: "openid".into() }
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn rotation_and_reuse_revoke_the_family() {
        let store = Store::default();
        let (family, first) = store.start_family(grant(), 100, 50);
        store.record_access("at1".into(), Some(family), 200, 100);

        let r = store.redeem(&first, "c", None, true, 110, 50).unwrap();
        assert_eq!((r.family, &r.grant), (family, &grant()));
        let second = r.rotated.unwrap();
        assert!(store.active_refresh(&first, 110).is_none());
        assert_eq!(store.active_refresh(&second, 110).unwrap().expires_at, 160);
        assert!(!store.access_revoked("at1"));

        assert_eq!(store.redeem(&first, "c", None, true, 120, 50).unwrap_err(), RedeemError::Reused);
        assert!(store.active_refresh(&second, 120).is_none());
        assert_eq!(store.redeem(&second, "c", None, true, 120, 50).unwrap_err(), RedeemError::Revoked);
        assert!(store.access_revoked("at1"));
    }

    #[test]
    fn redeem_checks_client_expiry_and_knowledge() {
        let store = Store::default();
        let (_, token) = store.start_family(grant(), 100, 50);
        assert_eq!(store.redeem(&token, "other", None, true, 100, 50).unwrap_err(), RedeemError::WrongClient);
        assert_eq!(store.redeem(&token, "c", None, true, 150, 50).unwrap_err(), RedeemError::Expired);
        assert_eq!(store.redeem("nope", "c", None, true, 100, 50).unwrap_err(), RedeemError::Unknown);
        // Without rotation the same token keeps working.
        assert!(store.redeem(&token, "c", None, false, 101, 50).unwrap().rotated.is_none());
        assert!(store.redeem(&token, "c", None, false, 102, 50).is_ok());
    }

    #[test]
    fn a_refused_scope_does_not_rotate() {
        let store = Store::default();
        let (_, token) = store.start_family(grant(), 100, 50);
        assert_eq!(
            store.redeem(&token, "c", Some("openid admin"), true, 100, 50).unwrap_err(),
            RedeemError::ScopeNotGranted("admin".into())
        );
        let ok = store.redeem(&token, "c", Some("openid"), true, 100, 50).unwrap();
        assert_eq!(ok.scope, "openid");
        assert!(ok.rotated.is_some());
    }

    #[test]
    fn user_revocation_spares_access_tokens() {
        let store = Store::default();
        let (family, token) = store.start_family(grant(), 100, 50);
        store.record_access("at".into(), Some(family), 200, 100);
        assert_eq!(store.revoke_user_refresh_tokens("bob"), 0);
        assert_eq!(store.revoke_user_refresh_tokens("alice"), 1);
        assert_eq!(store.redeem(&token, "c", None, true, 101, 50).unwrap_err(), RedeemError::Revoked);
        assert!(!store.access_revoked("at"));
    }

    #[test]
    fn revoke_refresh_only_for_its_client() {
        let store = Store::default();
        let (_, token) = store.start_family(grant(), 100, 50);
        assert!(store.revoke_refresh(&token, "other"));
        assert!(store.active_refresh(&token, 100).is_some());
        assert!(store.revoke_refresh(&token, "c"));
        assert!(store.active_refresh(&token, 100).is_none());
        assert!(!store.revoke_refresh("unknown", "c"));
    }
}
