//! Refresh token grant (RFC 6749 §6). A server that rotates returns a new refresh token (which we
//! must store before anyone uses the old one again); a server that does not rotate returns none,
//! and we keep the one we have.
//!
//! Two flows send this form: the standard refresh of the tokens held ([`RefreshForm::held`], the
//! refresh of every grant without one of its own) and the refresh-token grant's login
//! ([`RefreshForm::configured`], a refresh token obtained elsewhere). Both spend a refresh token, so
//! both are retried only when the server cannot have consumed it (see `token_request.rs`).

use super::FlowContext;
use super::token_request::TokenForm;
use crate::{Error, Secret, Timestamp, TokenSet};

/// The refresh token grant's form (RFC 6749 §6).
#[derive(Debug)]
pub(crate) enum RefreshForm {
    /// Renews the tokens held: the refresh token and the set it renews are read when the flow starts.
    Held { spent: Option<Box<(Secret, TokenSet)>> },
    /// Logs in with a refresh token from the configuration.
    Configured { refresh_token: Secret },
}

impl RefreshForm {
    /// The standard refresh of the tokens held.
    pub(crate) fn held() -> Self {
        RefreshForm::Held { spent: None }
    }

    /// The refresh-token grant's login.
    pub(crate) fn configured(refresh_token: Secret) -> Self {
        RefreshForm::Configured { refresh_token }
    }
}

impl TokenForm for RefreshForm {
    fn prepare(&mut self, context: &FlowContext<'_>) -> Result<(), Error> {
        if let RefreshForm::Held { spent } = self {
            let held =
                context.tokens.and_then(|tokens| Some(Box::new((tokens.refresh_token.clone()?, tokens.clone()))));
            // The engine starts a refresh only when it holds a usable refresh token.
            *spent = Some(held.ok_or_else(|| Error::internal("a refresh started without a refresh token"))?);
        }
        Ok(())
    }

    fn params(&self, _context: &FlowContext<'_>, _now: Timestamp) -> Result<Vec<(&'static str, Secret)>, Error> {
        let refresh_token = match self {
            RefreshForm::Held { spent: Some(spent) } => &spent.0,
            RefreshForm::Configured { refresh_token } => refresh_token,
            RefreshForm::Held { spent: None } => return Err(Error::internal("a refresh sent before it started")),
        };
        Ok(vec![("grant_type", Secret::new("refresh_token")), ("refresh_token", refresh_token.clone())])
    }

    fn spends_refresh_token(&self) -> bool {
        true
    }

    fn finish(&self, tokens: TokenSet) -> TokenSet {
        match self {
            RefreshForm::Held { spent: Some(spent) } => merge_refreshed(&spent.0, Some(&spent.1), tokens),
            RefreshForm::Configured { refresh_token } => merge_refreshed(refresh_token, None, tokens),
            RefreshForm::Held { spent: None } => tokens,
        }
    }
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
