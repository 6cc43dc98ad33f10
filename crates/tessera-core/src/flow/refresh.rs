//! Refresh token grant (RFC 6749 §6). A server that rotates returns a new refresh token (which we
//! must store before anyone uses the old one again); a server that does not rotate returns none,
//! and we keep the one we have.

use crate::{Secret, TokenSet};

pub(crate) fn params(refresh_token: &Secret) -> Vec<(&'static str, Secret)> {
    vec![("grant_type", Secret::new("refresh_token")), ("refresh_token", refresh_token.clone())]
}

/// Combines a refresh response with the set it refreshed: a missing refresh token, ID token or
/// scope means "unchanged" (RFC 6749 §5.1, §6).
pub fn merge_refreshed(previous_refresh_token: &Secret, previous: Option<&TokenSet>, mut fresh: TokenSet) -> TokenSet {
    if fresh.refresh_token.is_none() {
        fresh.refresh_token = Some(previous_refresh_token.clone());
        fresh.refresh_expires_at = previous.and_then(|p| p.refresh_expires_at);
    }
    if let Some(previous) = previous {
        if fresh.id_token.is_none() {
            fresh.id_token = previous.id_token.clone();
        }
        if fresh.scope.is_none() {
            fresh.scope = previous.scope.clone();
        }
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    #[test]
    fn keeps_old_refresh_token_unless_rotated() {
        let mut previous = TokenSet::bearer("old-at", None, Timestamp::EPOCH);
        previous.refresh_token = Some(Secret::new("rt-1"));
        previous.refresh_expires_at = Some(Timestamp::from_unix_secs(99));
        previous.scope = Some("a".into());
        let old = previous.refresh_token.clone().unwrap();

        let kept = merge_refreshed(&old, Some(&previous), TokenSet::bearer("new-at", None, Timestamp::EPOCH));
        assert_eq!(kept.refresh_token, Some(Secret::new("rt-1")));
        assert_eq!(kept.refresh_expires_at, Some(Timestamp::from_unix_secs(99)));
        assert_eq!(kept.scope.as_deref(), Some("a"));

        let mut rotated = TokenSet::bearer("new-at", None, Timestamp::EPOCH);
        rotated.refresh_token = Some(Secret::new("rt-2"));
        let rotated = merge_refreshed(&old, Some(&previous), rotated);
        assert_eq!(rotated.refresh_token, Some(Secret::new("rt-2")));
        assert_eq!(rotated.refresh_expires_at, None);
    }
}
