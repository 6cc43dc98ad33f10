//! [`RefreshCell`]: the one single-flight refresh primitive of tessera. `Session` and both derived
//! stages of the token chain keep their value in one and refresh it through it.
//!
//! It owns: the value slot (a [`Published`] `ArcSwapOption`, read without a lock by callers' hot
//! paths, directly or through per-thread copies that every write invalidates), the
//! rule "one attempt at a time", handing an attempt's outcome — success *or* error — to every
//! caller that waited on it, serving a still-valid value instead of waiting, postponing the next
//! attempt after a failure, and the *dead* state after a final failure.
//!
//! It must never: do I/O itself (the caller's closure does), hold its mutex across an `await`,
//! decide which errors are final (the caller classifies, see [`is_final`]), or be consulted on a
//! caller's hot path (that reads the slot directly).
//!
//! States (under a `std` mutex, held for a few instructions):
//!
//! ```text
//!            get / exclusive                 finish(Ok)
//!   Idle ───────────────────► InFlight(n) ─────────────► Idle (value stored)
//!    ▲                          │  finish(Err, transient or not final)
//!    │ postponement over        ├──────────────────────► Postponed { until, error }
//!    └──────────────────────────┤  finish(Err, final)
//!         exclusive / reset     └──────────────────────► Dead { error }  (until exclusive / reset)
//! ```
//!
//! Who gets what, for a caller arriving in each state (`valid`: the held value may still be served):
//!
//! | state       | fresh value | valid value         | no usable value                        |
//! |-------------|-------------|---------------------|----------------------------------------|
//! | Idle        | served      | becomes the leader  | becomes the leader                     |
//! | InFlight(n) | served      | served (no waiting) | waits, then takes attempt n's outcome  |
//! | Postponed   | served      | served              | the last error, nothing sent           |
//! | Dead        | served      | served              | the final error, nothing sent          |
//!
//! A waiter holds a receiver of *its* attempt: a waiter that started waiting before attempt n
//! finished takes attempt n's outcome (the same `Error`, cloned) and never starts attempt n+1. If
//! the leader's future is dropped (cancelled), its waiters wake and one of them leads a new attempt.
//!
//! Postponement after a non-final failure (no request is made before `until`):
//! - a still-valid value is held: half its remaining lifetime, at most [`MAX_POSTPONEMENT`] (10 s).
//!   E.g. 16 s left → 8 s; 60 s left → 10 s;
//! - no valid value: exponential backoff with jitter, [`FIRST_BACKOFF`] (1 s) doubling up to
//!   [`MAX_BACKOFF`] (30 s), each delay drawn from [d/2, d): failures 1, 2, 3, … wait 0.5–1 s,
//!   1–2 s, 2–4 s, … 15–30 s; a longer `Retry-After` (at most 30 s) wins. A success resets it.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tessera_core::{Error, OAuthErrorCode, Timestamp};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::local_cache::Published;

/// After a failed early refresh, the held value is served and the next attempt waits at most this long.
pub(crate) const MAX_POSTPONEMENT: Duration = Duration::from_secs(10);
/// The first backoff after a failure with no valid value to serve (then doubled per failure).
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest backoff after repeated failures with no valid value.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Rounds of one `get`: a round repeats only when the attempt it waited on was cancelled.
const MAX_ROUNDS: usize = 64;

/// A value with an expiry.
pub(crate) trait Expiring: Send + Sync + Sized + 'static {
    /// When it stops being usable (`None`: never).
    fn expires_at(&self) -> Option<Timestamp>;

    /// A copy that the owner's hot path serves without question until `until` (a postponement or
    /// a dead cell still holding a valid value), or `None` when the owner's hot path does not
    /// look at postponements (it then asks the cell, which serves the valid value).
    fn served_until(&self, until: Timestamp) -> Option<Self> {
        let _ = until;
        None
    }
}

/// True for the errors after which retrying cannot help until someone provides a new credential:
/// the refresh token or password is dead, or the client itself is refused.
///
/// - `ReauthenticationRequired`: a rejected refresh token whose grant cannot log in unattended, an
///   expired static token, a login needing a person nobody can reach;
/// - `invalid_grant`: a rejected password/TOTP/code (an unattended re-login after a rejected
///   refresh failed too); retrying a wrong password in a loop locks accounts;
/// - `invalid_client` and `unauthorized_client`: our client credentials or grant are refused;
/// - `access_denied`: the person (or the server's policy) said no.
///
/// Not final: every transient error, and the other non-transient ones (`invalid_scope`,
/// `invalid_request`, malformed answers, configuration, store and internal errors): they do not
/// say that the credential is dead, so it is kept and the next attempt is only postponed.
pub(crate) fn is_final(error: &Error) -> bool {
    if error.is_transient() {
        return false;
    }
    match error {
        Error::ReauthenticationRequired { .. } => true,
        Error::OAuth { code, .. } => matches!(
            code,
            OAuthErrorCode::InvalidGrant
                | OAuthErrorCode::InvalidClient
                | OAuthErrorCode::UnauthorizedClient
                | OAuthErrorCode::AccessDenied
        ),
        _ => false,
    }
}

/// A failed attempt, classified by the caller.
#[derive(Debug)]
pub(crate) struct Failed {
    pub error: Error,
    /// Final: the cell goes dead (see [`is_final`]).
    pub dead: bool,
    /// Whether a still-valid held value may be served after this failure (false when serving it
    /// would hide a bug or a configuration error from the caller).
    pub serve_held: bool,
    /// Whether the failure is this cell's own and postpones the next attempt (false: an error
    /// passed through from elsewhere, e.g. a chain stage above, which postpones on its own).
    pub record: bool,
    /// With a still-valid held value: no new attempt before it expires (instead of half its
    /// remaining lifetime), for a final failure that must not be retried early (a refused password).
    pub until_expiry: bool,
}

impl Failed {
    /// `error`, final or not by [`is_final`].
    pub(crate) fn classify(error: Error) -> Self {
        Failed { dead: is_final(&error), error, serve_held: true, record: true, until_expiry: false }
    }
}

/// What one caller accepts. Closures take the current time.
pub(crate) struct Want<'a, T> {
    /// Served at once, nothing to do (not due for a refresh).
    pub fresh: &'a (dyn Fn(&T, Timestamp) -> bool + Sync),
    /// May be served while an attempt runs, during a postponement, or when the cell is dead.
    pub valid: &'a (dyn Fn(&T, Timestamp) -> bool + Sync),
    /// False for a value this caller refuses whatever its expiry (a token an API just rejected).
    pub accept: &'a (dyn Fn(&T) -> bool + Sync),
}

type Outcome<T> = Option<Result<Arc<T>, Error>>;

struct State<T> {
    /// Attempts started so far: the generation of the newest.
    generation: u64,
    /// Bumped by [`RefreshCell::reset`]: an attempt started before a reset (with the old
    /// credentials) cannot record its failure afterwards.
    epoch: u64,
    /// The running attempt's outcome, for its waiters.
    in_flight: Option<watch::Receiver<Outcome<T>>>,
    failure: Option<Failure>,
}

struct Failure {
    error: Error,
    /// No attempt before this instant; `None`: dead, no attempt until `exclusive` or `reset`.
    until: Option<Timestamp>,
    /// Failures in a row (for the backoff).
    streak: u32,
}

/// A cached value and its single-flight refresh (see the module docs).
pub(crate) struct RefreshCell<T> {
    /// Inline (not behind an `Arc`): a session's hot path finds it without reading a pointer.
    slot: Published<T>,
    state: Mutex<State<T>>,
    clock: Arc<dyn Clock>,
}

impl<T: Expiring> RefreshCell<T> {
    /// A cell holding `value`.
    pub(crate) fn new(value: Option<Arc<T>>, clock: Arc<dyn Clock>) -> Self {
        RefreshCell {
            slot: Published::new(value),
            state: Mutex::new(State { generation: 0, epoch: 0, in_flight: None, failure: None }),
            clock,
        }
    }

    /// The value slot, for the owner's hot path (read it directly, or through per-thread copies).
    pub(crate) fn slot(&self) -> &Published<T> {
        &self.slot
    }

    /// The held value, whatever its expiry.
    pub(crate) fn load_full(&self) -> Option<Arc<T>> {
        self.slot.load_full()
    }

    /// Attempts started so far.
    #[cfg(test)]
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// True after a final failure, until [`RefreshCell::exclusive`] or [`RefreshCell::reset`].
    pub(crate) fn is_dead(&self) -> bool {
        self.lock().failure.as_ref().is_some_and(|failure| failure.until.is_none())
    }

    /// Forgets any failure (new credentials arrived): the next caller without a usable value
    /// starts an attempt at once.
    pub(crate) fn reset(&self) {
        let mut state = self.lock();
        state.failure = None;
        state.epoch += 1;
    }

    /// Replaces the value (an import, an invalidation) without touching the attempt state.
    pub(crate) fn store(&self, value: Option<Arc<T>>) {
        self.slot.store(value);
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics under this mutex; a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A value for this caller: the held one when `want` accepts it, else the outcome of the one
    /// attempt in flight, else the last failure while it holds, else a new attempt run by this
    /// caller with `refresh` (which gets the still-valid held value, if any: an early refresh).
    pub(crate) async fn get<F, Fut>(&self, want: &Want<'_, T>, refresh: F) -> Result<Arc<T>, Error>
    where
        F: FnOnce(Option<Arc<T>>) -> Fut,
        Fut: Future<Output = Result<Arc<T>, Failed>>,
    {
        for _ in 0..MAX_ROUNDS {
            let (mut waiting, leader) = {
                let mut state = self.lock();
                let now = self.clock.now();
                let current = self.slot.load_full();
                if let Some(value) = current.as_ref().filter(|v| (want.accept)(v) && (want.fresh)(v, now)) {
                    return Ok(Arc::clone(value));
                }
                let servable = current.filter(|v| (want.accept)(v) && (want.valid)(v, now));
                if let Some(receiver) = &state.in_flight {
                    match servable {
                        Some(value) => return Ok(value),
                        None => (receiver.clone(), None),
                    }
                } else if let Some(failure) = state.failure.as_ref().filter(|f| f.until.is_none_or(|until| now < until))
                {
                    return servable.ok_or_else(|| failure.error.clone());
                } else {
                    let (receiver, leader) = self.start(&mut state);
                    (receiver, Some((leader, servable)))
                }
            };
            if let Some((leader, servable)) = leader {
                let result = refresh(servable).await.map(Some);
                return match leader.finish(result, Some(want)) {
                    Ok(Some(value)) => Ok(value),
                    Ok(None) => Err(Error::internal("a refresh produced no value")),
                    Err(error) => Err(error),
                };
            }
            // Waiting: take this attempt's outcome, whatever it is.
            let outcome = match waiting.wait_for(Option::is_some).await {
                Ok(outcome) => outcome.clone(),
                Err(_) => continue, // the leader was cancelled (or an exclusive op cleared the value)
            };
            match outcome {
                Some(Ok(value)) if (want.accept)(&value) => return Ok(value),
                Some(Err(error)) => {
                    // The leader may have put a valid value in the slot while failing (a stored
                    // token adopted, a dead refresh token dropped from a still-valid set).
                    let now = self.clock.now();
                    return match self.slot.load_full().filter(|v| (want.accept)(v) && (want.valid)(v, now)) {
                        Some(value) => Ok(value),
                        None => Err(error),
                    };
                }
                _ => continue,
            }
        }
        Err(Error::internal("the refresh cell gave up after too many cancelled attempts"))
    }

    /// Waits for the attempt in flight (if any) to end, then occupies the cell: callers without a
    /// valid value wait for this operation's outcome. For logins, logouts, imports. Whatever it
    /// finishes with replaces any failure (a dead cell is revived by a successful one).
    pub(crate) async fn exclusive(&self) -> Leader<'_, T> {
        for _ in 0..MAX_ROUNDS * 16 {
            let mut waiting = {
                let mut state = self.lock();
                match &state.in_flight {
                    Some(receiver) => receiver.clone(),
                    // The failure stays until the operation finishes (a cancelled login or a
                    // logout that could not take the store's lock leaves a dead cell dead).
                    None => return self.start(&mut state).1,
                }
            };
            let _ = waiting.wait_for(Option::is_some).await;
        }
        // Unreachable in practice (each round waits for a whole attempt); occupy anyway.
        let mut state = self.lock();
        self.start(&mut state).1
    }

    fn start(&self, state: &mut State<T>) -> (watch::Receiver<Outcome<T>>, Leader<'_, T>) {
        let (sender, receiver) = watch::channel(None);
        state.generation += 1;
        state.in_flight = Some(receiver.clone());
        (receiver, Leader { cell: self, sender: Some(sender), epoch: state.epoch })
    }

    /// How long to postpone after `streak` failures in a row, holding `held` (still valid) or not.
    fn postponement(&self, held: Option<&T>, error: &Error, streak: u32, now: Timestamp) -> Duration {
        if let Some(held) = held {
            return held.expires_at().map_or(MAX_POSTPONEMENT, |at| (at.duration_since(now) / 2).min(MAX_POSTPONEMENT));
        }
        backoff(streak, fastrand::f64()).max(error.retry_after().unwrap_or_default().min(MAX_BACKOFF))
    }
}

/// The backoff after `streak` failures (1-based) with no valid value: `d = min(1 s · 2^(streak−1),
/// 30 s)`, drawn from [d/2, d) by `jitter` ∈ [0, 1).
pub(crate) fn backoff(streak: u32, jitter: f64) -> Duration {
    let doublings = streak.saturating_sub(1).min(16);
    let delay = FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF);
    delay / 2 + (delay / 2).mul_f64(jitter.clamp(0.0, 1.0))
}

/// The running attempt (or exclusive operation). Dropped without [`Leader::finish`] (the future
/// was cancelled): the cell is freed and the waiters wake to try again.
pub(crate) struct Leader<'a, T: Expiring> {
    cell: &'a RefreshCell<T>,
    sender: Option<watch::Sender<Outcome<T>>>,
    /// The cell's epoch when this attempt started (see [`RefreshCell::reset`]).
    epoch: u64,
}

impl<T: Expiring> Leader<'_, T> {
    /// Ends the attempt: `Ok(Some)` stores the value, `Ok(None)` clears it (a logout), `Err`
    /// records the failure (postponed or dead). Every waiter gets the outcome. With `want`, a
    /// failure still returns the held value when `want` may be served it.
    pub(crate) fn finish(
        mut self,
        result: Result<Option<Arc<T>>, Failed>,
        want: Option<&Want<'_, T>>,
    ) -> Result<Option<Arc<T>>, Error> {
        let cell = self.cell;
        let sender = self.sender.take();
        let mut state = cell.lock();
        state.in_flight = None;
        let now = cell.clock.now();
        let (published, returned) = match result {
            Ok(value) => {
                cell.slot.store(value.clone());
                state.failure = None;
                (value.clone().map(Ok), Ok(value))
            }
            Err(Failed { error, dead, serve_held, record, until_expiry }) => {
                // The owner may have replaced the value while failing (adopted a stored one,
                // dropped a dead refresh token): look at the slot now.
                let held = cell
                    .slot
                    .load_full()
                    .filter(|v| serve_held && want.is_none_or(|w| (w.accept)(v) && (w.valid)(v, now)));
                let streak = state.failure.as_ref().map_or(0, |f| f.streak).saturating_add(1);
                let until = match (&held, until_expiry) {
                    (Some(held), true) => Some(held.expires_at().unwrap_or(now + MAX_POSTPONEMENT)),
                    _ => (!dead).then(|| now + cell.postponement(held.as_deref(), &error, streak, now)),
                };
                // An error passed through from elsewhere, or an attempt that started before a
                // reset (old credentials), says nothing about this cell now.
                let record = record && self.epoch == state.epoch;
                if let Some(held) = held.as_ref().filter(|_| record) {
                    // The owner's hot path keeps serving it without asking again before `until`.
                    let serve_until = until.or(held.expires_at()).unwrap_or(now);
                    if let Some(postponed) = held.served_until(serve_until) {
                        cell.slot.compare_and_swap(held, Some(Arc::new(postponed)));
                    }
                }
                if record {
                    state.failure = Some(Failure { error: error.clone(), until, streak });
                }
                let returned = match held.filter(|_| want.is_some()) {
                    Some(held) => Ok(Some(held)),
                    None => Err(error.clone()),
                };
                (Some(Err(error)), returned)
            }
        };
        if let (Some(sender), Some(outcome)) = (sender, published) {
            sender.send_replace(Some(outcome));
        }
        returned
    }
}

impl<T: Expiring> Drop for Leader<'_, T> {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            // Free the slot first, then close the channel: a waiter woken by the close must find
            // no attempt in flight (else it would wait on this closed one again).
            self.cell.lock().in_flight = None;
            drop(sender);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::clock::ManualClock;

    const T0: Timestamp = Timestamp::from_unix_secs(1_000_000);

    #[derive(Debug, PartialEq)]
    struct Value {
        id: u32,
        refresh_at: Timestamp,
        expires_at: Timestamp,
    }

    impl Expiring for Value {
        fn expires_at(&self) -> Option<Timestamp> {
            Some(self.expires_at)
        }
    }

    fn want() -> Want<'static, Value> {
        Want {
            fresh: &|v: &Value, now| now < v.refresh_at,
            valid: &|v: &Value, now| now < v.expires_at,
            accept: &|_| true,
        }
    }

    fn cell(clock: &Arc<ManualClock>) -> Arc<RefreshCell<Value>> {
        Arc::new(RefreshCell::new(None, Arc::clone(clock) as Arc<dyn Clock>))
    }

    fn value(id: u32, now: Timestamp) -> Arc<Value> {
        Arc::new(Value { id, refresh_at: now + Duration::from_secs(30), expires_at: now + Duration::from_secs(60) })
    }

    fn busy() -> Error {
        Error::UnexpectedStatus { status: 503, content_type: None, retry_after: None, endpoint: "t".into() }
    }

    /// Runs `n` concurrent `get`s whose refresh counts itself, waits a while, then fails/succeeds.
    async fn concurrent(
        cell: &Arc<RefreshCell<Value>>,
        n: usize,
        calls: &Arc<AtomicU32>,
        result: fn() -> Result<u32, Failed>,
    ) -> Vec<Result<Arc<Value>, Error>> {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (cell, calls) = (Arc::clone(cell), Arc::clone(calls));
                tokio::spawn(async move {
                    cell.get(&want(), |_| async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        result().map(|id| value(id, T0))
                    })
                    .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    }

    #[tokio::test]
    async fn waiters_share_one_failure_then_the_postponement_sends_nothing() {
        // 1 s doubling with jitter in [d/2, d): the first failure postpones 0.5–1 s.
        let clock = Arc::new(ManualClock::new(T0));
        let cell = cell(&clock);
        let calls = Arc::new(AtomicU32::new(0));
        let results = concurrent(&cell, 64, &calls, || Err(Failed::classify(busy()))).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one attempt for 64 callers");
        assert!(results.iter().all(|r| r.as_ref().unwrap_err() == &busy()), "the same error for all");
        assert_eq!(cell.generation(), 1);
        // Postponed: the last error at once, nothing run.
        let again = concurrent(&cell, 8, &calls, || Ok(2)).await;
        assert!(again.iter().all(|r| r.as_ref().unwrap_err() == &busy()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // After the postponement: one new attempt.
        clock.advance(Duration::from_secs(1));
        let after = concurrent(&cell, 8, &calls, || Ok(2)).await;
        assert!(after.iter().all(|r| r.as_ref().unwrap().id == 2));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_final_failure_makes_the_cell_dead_until_reset() {
        let clock = Arc::new(ManualClock::new(T0));
        let cell = cell(&clock);
        let calls = Arc::new(AtomicU32::new(0));
        let dead = || Err(Failed::classify(Error::ReauthenticationRequired { reason: "revoked".into() }));
        let results = concurrent(&cell, 32, &calls, dead).await;
        assert!(results.iter().all(|r| r.as_ref().unwrap_err().requires_reauthentication()));
        assert!(cell.is_dead());
        clock.advance(Duration::from_secs(3600));
        let later = concurrent(&cell, 32, &calls, || Ok(2)).await;
        assert!(later.iter().all(|r| r.is_err()));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "nothing run while dead, however long");
        cell.reset();
        let revived = concurrent(&cell, 8, &calls, || Ok(3)).await;
        assert!(revived.iter().all(|r| r.as_ref().unwrap().id == 3));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_exclusive_operation_dropped_unfinished_leaves_a_dead_cell_dead() {
        let clock = Arc::new(ManualClock::new(T0));
        let cell = cell(&clock);
        let calls = Arc::new(AtomicU32::new(0));
        let dead = || Err(Failed::classify(Error::ReauthenticationRequired { reason: "revoked".into() }));
        concurrent(&cell, 1, &calls, dead).await;
        assert!(cell.is_dead());
        // A login that was cancelled (or a logout that failed before finishing).
        drop(cell.exclusive().await);
        assert!(cell.is_dead(), "only a finished operation replaces the failure");
        concurrent(&cell, 4, &calls, || Ok(2)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "still nothing sent");
    }

    #[tokio::test]
    async fn an_attempt_started_before_a_reset_cannot_kill_the_cell() {
        let clock = Arc::new(ManualClock::new(T0));
        let cell = cell(&clock);
        let want = want();
        let old = cell.get(&want, |_| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(Failed::classify(Error::ReauthenticationRequired { reason: "old credentials".into() }))
        });
        let reset = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            cell.reset(); // new credentials arrive while the old attempt runs
        };
        let (result, ()) = tokio::join!(old, reset);
        assert!(result.unwrap_err().requires_reauthentication(), "its own caller still learns why");
        assert!(!cell.is_dead(), "the old attempt's final error is not recorded");
        let calls = Arc::new(AtomicU32::new(0));
        let results = concurrent(&cell, 4, &calls, || Ok(2)).await;
        assert!(results.iter().all(|r| r.as_ref().unwrap().id == 2));
    }

    #[tokio::test]
    async fn early_refresh_serves_the_valid_value_and_postpones_by_half_the_remaining_time() {
        let clock = Arc::new(ManualClock::new(T0));
        let cell = cell(&clock);
        cell.store(Some(value(1, T0)));
        // 40 s later: due (refresh_at = 30 s), valid 20 s more: a failure postpones 10 s.
        clock.advance(Duration::from_secs(40));
        let calls = Arc::new(AtomicU32::new(0));
        let results = concurrent(&cell, 16, &calls, || Err(Failed::classify(busy()))).await;
        assert!(results.iter().all(|r| r.as_ref().unwrap().id == 1), "nobody waits, nobody fails");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(9));
        concurrent(&cell, 4, &calls, || Ok(2)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "postponed 10 s");
        clock.advance(Duration::from_secs(1));
        let results = concurrent(&cell, 4, &calls, || Ok(2)).await;
        // The leader gets 2; callers arriving while it runs keep the valid value 1.
        assert!(results.iter().any(|r| r.as_ref().unwrap().id == 2));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_cancelled_leader_hands_over_to_a_waiter() {
        let clock = Arc::new(ManualClock::new(T0));
        let cell = cell(&clock);
        let leader = {
            let cell = Arc::clone(&cell);
            tokio::spawn(async move {
                cell.get(&want(), |_| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(value(1, T0))
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let waiter = {
            let cell = Arc::clone(&cell);
            tokio::spawn(async move { cell.get(&want(), |_| async { Ok(value(2, T0)) }).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        assert_eq!(waiter.await.unwrap().unwrap().id, 2);
    }

    #[test]
    fn backoff_doubles_from_one_second_to_thirty_with_jitter() {
        assert_eq!(backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(2, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(3, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(6, 1.0), Duration::from_secs(30));
        assert_eq!(backoff(100, 0.0), Duration::from_secs(15));
    }

    #[test]
    fn which_errors_are_final() {
        let oauth = |code| Error::OAuth { code, description: None, status: 400, endpoint: "t".into() };
        assert!(is_final(&oauth(OAuthErrorCode::InvalidGrant)));
        assert!(is_final(&oauth(OAuthErrorCode::InvalidClient)));
        assert!(is_final(&Error::ReauthenticationRequired { reason: "x".into() }));
        assert!(!is_final(&oauth(OAuthErrorCode::TemporarilyUnavailable)));
        assert!(!is_final(&oauth(OAuthErrorCode::InvalidScope)));
        assert!(!is_final(&busy()));
        assert!(!is_final(&Error::internal("bug")));
        assert!(!is_final(&Error::configuration("typo")));
    }
}
