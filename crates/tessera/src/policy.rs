//! What a [`crate::Session`] does when a silent refresh fails, and who gets told.
//!
//! - [`RefreshPolicy`] decides: raise the error, reauthenticate (run the login flow, with the
//!   prompter if it needs a person), or retry after a delay. The default reauthenticates only when
//!   that needs nobody or a prompter is configured; a daemon without a prompter gets a typed
//!   [`Error::ReauthenticationRequired`] and never a prompt nobody can answer.
//! - [`RefreshHooks`] observe every refresh (start, success, failure) for logging and metrics, in
//!   addition to the policy. A hook that returns an error fails the operation with that error.
//!
//! The same fields ([`RefreshContext`]) are on the `tessera.refresh` tracing span.

use std::time::Duration;

use tessera_core::{Error, TokenSet};

pub use crate::session::RefreshReason;

/// Where the token of a refresh came from (or, at start, where it is expected to come from).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenSource {
    /// This process's cache.
    Memory,
    /// The store: another process (or an earlier run) refreshed it.
    Store,
    /// A refresh request to the server.
    Network,
    /// A new login.
    Login,
}

/// Describes one refresh, for the policy, the hooks and the tracing span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshContext {
    /// The session's store key.
    pub key: String,
    /// Why the refresh runs.
    pub reason: RefreshReason,
    /// Where the token comes from (see [`TokenSource`]).
    pub source: TokenSource,
    /// 1 for the first attempt; grows with `RetryAfter` and reauthentication.
    pub attempt: u32,
}

/// The policy's answer to a failed refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshFailureAction {
    /// Return the error to the caller.
    Raise,
    /// Run the login flow (with the prompter if the grant needs a person), then carry on.
    Reauthenticate,
    /// Sleep this long, then try the refresh again (at most a few times).
    RetryAfter(Duration),
}

/// Decides what happens when a refresh fails. Implement it for daemons (always `Raise`) or for
/// custom retry rules; closures `Fn(&RefreshContext, &Error) -> RefreshFailureAction` implement it too.
pub trait RefreshPolicy: Send + Sync {
    /// The action for this failure.
    fn on_refresh_failure(&self, context: &RefreshContext, error: &Error) -> RefreshFailureAction;
}

impl<F> RefreshPolicy for F
where
    F: Fn(&RefreshContext, &Error) -> RefreshFailureAction + Send + Sync,
{
    fn on_refresh_failure(&self, context: &RefreshContext, error: &Error) -> RefreshFailureAction {
        self(context, error)
    }
}

/// The default: `Reauthenticate` when only a new login can help and the session can log in
/// (a grant that needs nobody, or a prompter is configured); `Raise` otherwise.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultRefreshPolicy {
    /// Whether the session has a way to reach a person.
    pub can_prompt: bool,
}

impl RefreshPolicy for DefaultRefreshPolicy {
    fn on_refresh_failure(&self, _context: &RefreshContext, error: &Error) -> RefreshFailureAction {
        if error.requires_reauthentication() && self.can_prompt {
            RefreshFailureAction::Reauthenticate
        } else {
            RefreshFailureAction::Raise
        }
    }
}

/// A policy that never reauthenticates: what a daemon wants.
#[derive(Clone, Copy, Debug, Default)]
pub struct RaisePolicy;

impl RefreshPolicy for RaisePolicy {
    fn on_refresh_failure(&self, _context: &RefreshContext, _error: &Error) -> RefreshFailureAction {
        RefreshFailureAction::Raise
    }
}

/// Observers of refreshes. Every method has a no-op default; an `Err` fails the operation.
pub trait RefreshHooks: Send + Sync {
    /// A refresh (or login) is about to run.
    fn on_refresh_start(&self, context: &RefreshContext) -> Result<(), Error> {
        let _ = context;
        Ok(())
    }

    /// It produced `tokens` (from `context.source`).
    fn on_refresh_success(&self, context: &RefreshContext, tokens: &TokenSet) -> Result<(), Error> {
        let _ = (context, tokens);
        Ok(())
    }

    /// It failed with `error` (the policy is consulted after this).
    fn on_refresh_failure(&self, context: &RefreshContext, error: &Error) -> Result<(), Error> {
        let _ = (context, error);
        Ok(())
    }
}

/// Hooks that do nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;

impl RefreshHooks for NoHooks {}
