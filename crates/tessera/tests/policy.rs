//! What a `Session` does when a refresh fails (`RefreshPolicy`), and what `RefreshHooks` observe.
//!
//! - Against panva's `oidc-provider` (interop/oidc-provider) with the device authorization grant:
//!   a person logs in once (the test approves the device code over HTTP, as in a browser) and the
//!   tokens land in a shared store; then the grant is revoked at the server. A daemon (`RaisePolicy`,
//!   or the default policy without a prompter) gets `ReauthenticationRequired` after one refresh
//!   attempt and never prompts; with a prompter, the default policy (or an explicit `Reauthenticate`)
//!   prompts exactly once, the test approves the new code, and the session recovers.
//! - Against the reference IdP (in-process, with a manual clock and injected faults): every
//!   refresh reason and token source seen by the hooks, failures, hook errors, and `RetryAfter`.

mod support;

use support::{device_config, device_provider as provider};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::oidc_provider::{ALICE, DEVICE_CLIENT_ID, OidcProvider};
use tessera::clock::{ManualClock, system_now};
use tessera::policy::{RaisePolicy, RefreshContext, RefreshFailureAction, RefreshHooks, TokenSource};
use tessera::prompt::{FnPrompter, Prompter};
use tessera::store::{MemoryStore, TokenStore};
use tessera::{Error, Grant, Prompt, ProviderConfig, RefreshReason, Session, SessionSettings, Timestamp, TokenSet};
use tessera_idp::{Fault, FaultEndpoint, FaultKind};

use RefreshReason::{Expired, Forced, Login as LoginReason, NearExpiry, Startup, Unauthorized};
use TokenSource::{Login, Network, Store};

/// Upper bound on any one operation here (device codes are polled every second).
const TIMEOUT: Duration = Duration::from_secs(30);
const KEY: &str = "device";
const REAUTH: &str = "reauthentication_required";

// ---------------------------------------------------------------------------------------------
// Recording hooks and policies.

/// One hook call: what happened, why, from where, which attempt (and for failures, what error).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Start(RefreshReason, TokenSource, u32),
    Success(RefreshReason, TokenSource, u32),
    Failure(RefreshReason, TokenSource, u32, String),
}
use Seen::{Failure, Start, Success};

/// `reauthentication_required`, an OAuth error code, or the error's Debug form.
fn kind(error: &Error) -> String {
    match error {
        error if error.requires_reauthentication() => REAUTH.to_owned(),
        Error::OAuth { code, .. } => code.as_str().to_owned(),
        other => format!("{other:?}"),
    }
}

/// `RefreshHooks` that record every call (and check the key).
struct Recorder {
    key: &'static str,
    seen: Mutex<Vec<Seen>>,
}

impl Recorder {
    fn new(key: &'static str) -> Arc<Recorder> {
        Arc::new(Recorder { key, seen: Mutex::new(Vec::new()) })
    }

    /// The calls since the last `take`.
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    fn push(&self, context: &RefreshContext, seen: Seen) -> Result<(), Error> {
        assert_eq!(context.key, self.key);
        self.seen.lock().unwrap().push(seen);
        Ok(())
    }
}

impl RefreshHooks for Recorder {
    fn on_refresh_start(&self, c: &RefreshContext) -> Result<(), Error> {
        self.push(c, Start(c.reason, c.source, c.attempt))
    }

    fn on_refresh_success(&self, c: &RefreshContext, tokens: &TokenSet) -> Result<(), Error> {
        assert!(!tokens.access_token.expose_secret().is_empty());
        self.push(c, Success(c.reason, c.source, c.attempt))
    }

    fn on_refresh_failure(&self, c: &RefreshContext, error: &Error) -> Result<(), Error> {
        self.push(c, Failure(c.reason, c.source, c.attempt, kind(error)))
    }
}

type Calls = Arc<Mutex<Vec<(RefreshReason, TokenSource, u32, String)>>>;

/// A policy (a closure) that records what it was asked and answers with `answer(attempt)`.
fn scripted_policy(
    answer: impl Fn(u32) -> RefreshFailureAction + Send + Sync + 'static,
) -> (Arc<dyn tessera::policy::RefreshPolicy>, Calls) {
    let calls: Calls = Arc::default();
    let recorded = Arc::clone(&calls);
    let policy = move |c: &RefreshContext, error: &Error| {
        recorded.lock().unwrap().push((c.reason, c.source, c.attempt, kind(error)));
        answer(c.attempt)
    };
    (Arc::new(policy), calls)
}

// ---------------------------------------------------------------------------------------------
// oidc-provider and the person who approves device codes.

type Approvals = Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>;

/// A prompter that counts prompts; for each device code, a spawned task approves it as alice
/// on oidc-provider's pages.
fn person(op: &Arc<OidcProvider>) -> (Arc<dyn Prompter>, Arc<AtomicUsize>, Approvals) {
    let prompts = Arc::new(AtomicUsize::new(0));
    let approvals: Approvals = Arc::default();
    let (op, count, tasks) = (Arc::clone(op), Arc::clone(&prompts), Arc::clone(&approvals));
    let prompter = FnPrompter(move |_: &str, prompt: &Prompt| {
        count.fetch_add(1, Ordering::SeqCst);
        let Prompt::DeviceCode { user_code, .. } = prompt else { panic!("unexpected prompt {prompt:?}") };
        let (op, user_code) = (Arc::clone(&op), user_code.clone());
        tasks.lock().unwrap().push(tokio::spawn(async move { op.approve_device(&user_code, ALICE).await }));
        Ok(())
    });
    (Arc::new(prompter), prompts, approvals)
}

/// A prompter that must never be called.
fn nobody() -> (Arc<dyn Prompter>, Arc<AtomicUsize>) {
    let prompts = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&prompts);
    let prompter = FnPrompter(move |_: &str, _: &Prompt| {
        count.fetch_add(1, Ordering::SeqCst);
        Err(Error::configuration("a daemon must not prompt"))
    });
    (Arc::new(prompter), prompts)
}

async fn join(approvals: &Approvals) {
    let tasks: Vec<_> = std::mem::take(&mut *approvals.lock().unwrap());
    for task in tasks {
        tokio::time::timeout(TIMEOUT, task).await.expect("the browser finishes").expect("the browser succeeds");
    }
}

/// A person runs the device login once (like `tessera login` on the machine); the tokens land in
/// `store`, where daemons find them.
async fn person_logs_in(op: &Arc<OidcProvider>, store: &Arc<MemoryStore>) -> TokenSet {
    let (prompter, _, approvals) = person(op);
    let session = Session::builder(KEY, device_config(op)).store(store.clone()).prompter(prompter).build();
    let login = tokio::time::timeout(TIMEOUT, session.login()).await.expect("the login ends");
    join(&approvals).await;
    let tokens = login.expect("approved").tokens().clone();
    assert!(tokens.refresh_token.is_some(), "offline_access: a refresh token");
    tokens
}

/// Revokes the refresh token at the server: oidc-provider revokes the whole grant with it.
async fn revoke_grant(op: &OidcProvider, tokens: &TokenSet) {
    let refresh_token = tokens.refresh_token.as_ref().expect("a refresh token");
    assert_eq!(op.revoke_as_public_client(DEVICE_CLIENT_ID, refresh_token.expose_secret()).await, 200);
    assert_eq!(op.introspect(refresh_token.expose_secret()).await["active"], false);
    assert_eq!(op.introspect(tokens.access_token.expose_secret()).await["active"], false, "the grant went with it");
}

async fn sleep_past(expires_at: Option<Timestamp>) {
    let left = expires_at.expect("expires_in").duration_since(system_now());
    assert!(left <= Duration::from_secs(5), "token lives {left:?}: longer than this test expects");
    tokio::time::sleep(left + Duration::from_millis(150)).await;
}

// ---------------------------------------------------------------------------------------------
// Daemons: Raise, never prompt.

#[tokio::test]
async fn daemons_get_reauthentication_required_after_one_refresh_attempt_and_never_prompt() {
    let op = provider(3);
    let store = Arc::new(MemoryStore::new());
    let seeded = person_logs_in(&op, &store).await;

    // Two daemon-style sessions on the machine's store: one with `RaisePolicy` (and a prompter
    // that must never be called), one with the default policy and no prompter.
    let (prompter, prompts) = nobody();
    let raise_hooks = Recorder::new(KEY);
    let with_raise = Session::builder(KEY, device_config(&op))
        .store(store.clone())
        .prompter(prompter)
        .refresh_policy(Arc::new(RaisePolicy))
        .hooks(raise_hooks.clone())
        .refresh_skew(Duration::ZERO)
        .build();
    let default_hooks = Recorder::new(KEY);
    let without_prompter = Session::builder(KEY, device_config(&op))
        .store(store.clone())
        .hooks(default_hooks.clone())
        .refresh_skew(Duration::ZERO)
        .build();
    for (daemon, hooks) in [(&with_raise, &raise_hooks), (&without_prompter, &default_hooks)] {
        let header = daemon.authorization_header().await.expect("the person's tokens");
        assert_eq!(header.access_token(), &seeded.access_token);
        assert_eq!(hooks.take(), [Start(Startup, Network, 1), Success(Startup, Store, 1)]);
    }

    // The grant is revoked at the server (an administrator, a password change), then the access
    // token expires.
    revoke_grant(&op, &seeded).await;
    sleep_past(seeded.expires_at).await;
    op.reset_stats().await;

    for (daemon, hooks) in [(&with_raise, &raise_hooks), (&without_prompter, &default_hooks)] {
        let started = Instant::now();
        let error = tokio::time::timeout(TIMEOUT, daemon.authorization_header())
            .await
            .expect("a daemon never hangs")
            .expect_err("only a person can log in again");
        assert!(error.requires_reauthentication(), "{error:?}");
        assert!(!error.is_transient());
        assert!(error.to_string().contains("log in again"), "says what to do: {error}");
        assert!(started.elapsed() < Duration::from_secs(5), "no waiting: {:?}", started.elapsed());
        assert_eq!(
            hooks.take(),
            [Start(Expired, Network, 1), Failure(Expired, Network, 1, REAUTH.into())],
            "one attempt"
        );
    }
    assert_eq!(prompts.load(Ordering::SeqCst), 0, "never prompted");
    let stats = op.stats().await;
    // The first daemon's rejected refresh token is dropped from the shared store: the second one
    // finds nothing to present and fails without a request.
    assert_eq!(stats.grant_type("refresh_token"), 1, "one refresh request for both daemons: {stats:?}");
    assert_eq!(stats.device_authorizations, 0, "no device code requested: {stats:?}");
}

// ---------------------------------------------------------------------------------------------
// Interactive sessions: reauthenticate once, with the prompter, and recover.

#[tokio::test]
async fn with_a_prompter_the_default_policy_reauthenticates_once_and_recovers() {
    let op = provider(3);
    let store = Arc::new(MemoryStore::new());
    let seeded = person_logs_in(&op, &store).await;

    let (prompter, prompts, approvals) = person(&op);
    let hooks = Recorder::new(KEY);
    let session = Session::builder(KEY, device_config(&op))
        .store(store.clone())
        .prompter(prompter)
        .hooks(hooks.clone())
        .refresh_skew(Duration::ZERO)
        .build();
    assert_eq!(session.authorization_header().await.unwrap().access_token(), &seeded.access_token);
    assert_eq!(hooks.take(), [Start(Startup, Network, 1), Success(Startup, Store, 1)]);

    revoke_grant(&op, &seeded).await;
    sleep_past(seeded.expires_at).await;
    op.reset_stats().await;

    let recovered = tokio::time::timeout(TIMEOUT, session.authorization_header()).await.expect("the login ends");
    join(&approvals).await;
    let header = recovered.expect("the person approved the new code");
    assert_eq!(prompts.load(Ordering::SeqCst), 1, "prompted exactly once");
    assert_eq!(
        hooks.take(),
        [
            Start(Expired, Network, 1),
            Failure(Expired, Network, 1, REAUTH.into()),
            Start(Expired, Login, 2),
            Success(Expired, Login, 2),
        ]
    );
    let body = op.introspect(header.access_token().expose_secret()).await;
    assert_eq!((&body["active"], &body["sub"]), (&true.into(), &ALICE.into()), "{body}");
    let stored = store.load(KEY).await.unwrap().expect("stored");
    assert_eq!(&stored.access_token, header.access_token());
    assert!(stored.refresh_token.is_some() && stored.refresh_token != seeded.refresh_token, "a new grant");
    let stats = op.stats().await;
    assert_eq!((stats.grant_type("refresh_token"), stats.device_authorizations), (1, 1), "{stats:?}");

    // Silent again afterwards.
    let refreshed = session.force_refresh().await.expect("refreshes with the new refresh token");
    assert_ne!(refreshed.access_token(), header.access_token());
    assert_eq!(hooks.take(), [Start(Forced, Network, 1), Success(Forced, Network, 1)]);
    assert_eq!(prompts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_explicit_reauthenticate_policy_recovers_from_a_401_and_needs_a_prompter() {
    let op = provider(60);
    let store = Arc::new(MemoryStore::new());
    let seeded = person_logs_in(&op, &store).await;

    let (prompter, prompts, approvals) = person(&op);
    let (policy, calls) = scripted_policy(|_| RefreshFailureAction::Reauthenticate);
    let hooks = Recorder::new(KEY);
    let session = Session::builder(KEY, device_config(&op))
        .store(store.clone())
        .prompter(prompter)
        .refresh_policy(policy.clone())
        .hooks(hooks.clone())
        .build();
    // Without a prompter, the same policy cannot reauthenticate: it fails before asking the
    // server for a device code nobody would enter.
    let daemon_hooks = Recorder::new(KEY);
    let daemon = Session::builder(KEY, device_config(&op))
        .store(store.clone())
        .refresh_policy(policy)
        .hooks(daemon_hooks.clone())
        .build();
    for (session, hooks) in [(&session, &hooks), (&daemon, &daemon_hooks)] {
        assert_eq!(session.authorization_header().await.unwrap().access_token(), &seeded.access_token);
        hooks.take();
    }

    // The API answers 401: the grant was revoked.
    revoke_grant(&op, &seeded).await;
    op.reset_stats().await;
    let recovered = tokio::time::timeout(TIMEOUT, session.handle_unauthorized()).await.expect("the login ends");
    join(&approvals).await;
    let header = recovered.expect("reauthenticated");
    assert_eq!(prompts.load(Ordering::SeqCst), 1);
    assert_eq!(calls.lock().unwrap().drain(..).collect::<Vec<_>>(), [(Unauthorized, Network, 1, REAUTH.into())]);
    assert_eq!(
        hooks.take(),
        [
            Start(Unauthorized, Network, 1),
            Failure(Unauthorized, Network, 1, REAUTH.into()),
            Start(Unauthorized, Login, 2),
            Success(Unauthorized, Login, 2),
        ]
    );
    assert_eq!(op.introspect(header.access_token().expose_secret()).await["active"], true);
    assert_eq!(op.stats().await.device_authorizations, 1);

    // The daemon still holds the revoked token; its API answers 401 too. The session's new
    // tokens are in the store: adopted, no request.
    let adopted = daemon.handle_unauthorized().await.expect("adopted from the store");
    assert_eq!(adopted.access_token(), header.access_token());
    assert_eq!(daemon_hooks.take(), [Start(Unauthorized, Network, 1), Success(Unauthorized, Store, 1)]);

    // Revoked again: now the daemon must refresh, fails, and the policy's Reauthenticate cannot
    // run without a prompter. It fails at once, without asking the server for a device code.
    revoke_grant(&op, header.tokens()).await;
    op.reset_stats().await;
    let error = tokio::time::timeout(TIMEOUT, daemon.handle_unauthorized())
        .await
        .expect("no wait")
        .expect_err("nobody to prompt");
    assert!(error.requires_reauthentication(), "{error:?}");
    assert!(error.to_string().contains("prompter"), "says why: {error}");
    assert_eq!(
        daemon_hooks.take(),
        [
            Start(Unauthorized, Network, 1),
            Failure(Unauthorized, Network, 1, REAUTH.into()),
            Start(Unauthorized, Login, 2),
            Failure(Unauthorized, Login, 2, REAUTH.into()),
        ]
    );
    assert_eq!(calls.lock().unwrap().drain(..).collect::<Vec<_>>(), [(Unauthorized, Network, 1, REAUTH.into())]);
    let stats = op.stats().await;
    assert_eq!((stats.grant_type("refresh_token"), stats.device_authorizations), (1, 0), "{stats:?}");
    assert_eq!(prompts.load(Ordering::SeqCst), 1, "the other session's prompter is not the daemon's");
}

// ---------------------------------------------------------------------------------------------
// Reference IdP: every reason and source, failures, hook errors, RetryAfter.

fn json_error(status: u16, code: &str) -> Fault {
    Fault::new(FaultKind::Status {
        status,
        body: format!(r#"{{"error":"{code}","error_description":"injected by the test"}}"#),
        content_type: "application/json".into(),
    })
}

fn no_jitter() -> SessionSettings {
    SessionSettings { jitter: false, ..SessionSettings::default() }
}

#[tokio::test]
async fn hooks_see_every_reason_and_source_and_the_policy_only_final_failures() {
    let server = support::idp(Duration::from_secs(60)).await;
    let clock = Arc::new(ManualClock::new(system_now()));
    let store = support::memory();
    let hooks = Recorder::new("alice");
    let (policy, calls) = scripted_policy(|_| RefreshFailureAction::Raise);
    let build = |hooks: &Arc<Recorder>| {
        Session::builder("alice", support::alice(&server.issuer()))
            .store(store.clone())
            .clock(clock.clone())
            .settings(no_jitter())
            .refresh_skew(Duration::from_secs(10))
            .refresh_policy(policy.clone())
            .hooks(hooks.clone())
            .build()
    };
    let session = build(&hooks);

    let first = session.authorization_header().await.unwrap();
    assert_eq!(hooks.take(), [Start(Startup, Network, 1), Success(Startup, Login, 1)], "a password login");
    clock.advance(Duration::from_secs(55)); // inside the last 10 s: an early refresh
    let early = session.authorization_header().await.unwrap();
    assert_ne!(early.access_token(), first.access_token());
    assert_eq!(hooks.take(), [Start(NearExpiry, Network, 1), Success(NearExpiry, Network, 1)]);
    clock.advance(Duration::from_secs(61)); // past expiry
    session.authorization_header().await.unwrap();
    assert_eq!(hooks.take(), [Start(Expired, Network, 1), Success(Expired, Network, 1)]);
    session.force_refresh().await.unwrap();
    assert_eq!(hooks.take(), [Start(Forced, Network, 1), Success(Forced, Network, 1)]);
    session.handle_unauthorized().await.unwrap();
    assert_eq!(hooks.take(), [Start(Unauthorized, Network, 1), Success(Unauthorized, Network, 1)]);
    session.login().await.unwrap();
    assert_eq!(hooks.take(), [Start(LoginReason, Login, 1), Success(LoginReason, Login, 1)]);

    // Another process (session) on the same store adopts the stored tokens.
    let other_hooks = Recorder::new("alice");
    let other = build(&other_hooks);
    assert_eq!(
        other.authorization_header().await.unwrap().access_token(),
        session.cached_header().unwrap().access_token()
    );
    assert_eq!(other_hooks.take(), [Start(Startup, Network, 1), Success(Startup, Store, 1)]);

    // A failed early refresh: reported to the hooks, the valid token keeps being served, and the
    // policy is not asked (there is nothing to decide yet).
    let served = session.cached_header().unwrap();
    clock.advance(Duration::from_secs(55));
    server.faults().push(FaultEndpoint::Token, json_error(401, "invalid_client"), 1);
    let still = session.authorization_header().await.expect("the still-valid token");
    assert_eq!(still.access_token(), served.access_token());
    assert_eq!(hooks.take(), [Start(NearExpiry, Network, 1), Failure(NearExpiry, Network, 1, "invalid_client".into())]);
    assert!(calls.lock().unwrap().is_empty());

    // Past expiry the failure is final: hooks, then the policy (Raise), then the caller.
    clock.advance(Duration::from_secs(10));
    server.faults().push(FaultEndpoint::Token, json_error(401, "invalid_client"), 1);
    let error = session.authorization_header().await.expect_err("expired, and the refresh failed");
    assert_eq!(kind(&error), "invalid_client");
    assert_eq!(hooks.take(), [Start(Expired, Network, 1), Failure(Expired, Network, 1, "invalid_client".into())]);
    assert_eq!(calls.lock().unwrap().drain(..).collect::<Vec<_>>(), [(Expired, Network, 1, "invalid_client".into())]);
    server.shutdown().await;
}

/// Hooks that fail: the operation fails with the hook's error.
struct FailingHooks;

impl RefreshHooks for FailingHooks {
    fn on_refresh_start(&self, _: &RefreshContext) -> Result<(), Error> {
        Err(Error::configuration("metrics backend unavailable"))
    }
}

#[tokio::test]
async fn a_failing_hook_fails_the_operation_before_any_request() {
    let server = support::idp(Duration::from_secs(60)).await;
    let session = Session::builder("alice", support::alice(&server.issuer())).hooks(Arc::new(FailingHooks)).build();
    let error = session.authorization_header().await.expect_err("the hook failed");
    assert!(matches!(&error, Error::Configuration { message } if message.contains("metrics backend")), "{error:?}");
    assert_eq!(server.stats().token_requests, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn retry_after_tries_the_refresh_again_and_is_bounded() {
    let server = support::idp(Duration::from_secs(60)).await;
    let issuer = server.issuer();
    let refresh_session = |refresh_token, policy, hooks: &Arc<Recorder>| {
        let config = ProviderConfig { grant: Grant::RefreshToken { refresh_token }, ..support::alice(&issuer) };
        Session::builder("alice", config).refresh_policy(policy).hooks(hooks.clone()).build()
    };

    // A refresh token rejected once (say, by a replica that has not seen it yet): retry after 200 ms.
    let seed = support::session("seed", support::alice(&issuer)).tokens().await.unwrap();
    server.reset();
    server.faults().push(FaultEndpoint::Token, json_error(400, "invalid_grant"), 1);
    let (policy, calls) = scripted_policy(|attempt| match attempt {
        1 => RefreshFailureAction::RetryAfter(Duration::from_millis(200)),
        _ => RefreshFailureAction::Raise,
    });
    let hooks = Recorder::new("alice");
    let session = refresh_session(seed.refresh_token.clone().expect("a refresh token"), policy, &hooks);
    let started = Instant::now();
    let header = session.authorization_header().await.expect("the second attempt succeeds");
    assert!(started.elapsed() >= Duration::from_millis(200), "waited: {:?}", started.elapsed());
    assert!(support::introspect(&server, header.access_token().expose_secret()).await);
    assert_eq!(
        hooks.take(),
        [
            Start(Startup, Network, 1),
            Failure(Startup, Network, 1, REAUTH.into()),
            Start(Startup, Network, 2),
            Success(Startup, Login, 2),
        ]
    );
    assert_eq!(calls.lock().unwrap().drain(..).collect::<Vec<_>>(), [(Startup, Network, 1, REAUTH.into())]);
    let stats = server.stats();
    assert_eq!((stats.token_requests, stats.refresh_grants, stats.faults_injected), (2, 1, 1), "{stats:?}");

    // A policy that always says RetryAfter still ends: three attempts in all.
    let seed = support::session("seed2", support::alice(&issuer)).tokens().await.unwrap();
    server.reset();
    server.faults().push(FaultEndpoint::Token, json_error(400, "invalid_grant"), 10);
    let (policy, calls) = scripted_policy(|_| RefreshFailureAction::RetryAfter(Duration::from_millis(20)));
    let hooks = Recorder::new("alice");
    let session = refresh_session(seed.refresh_token.clone().expect("a refresh token"), policy, &hooks);
    let error =
        tokio::time::timeout(TIMEOUT, session.authorization_header()).await.expect("bounded").expect_err("rejected");
    assert!(error.requires_reauthentication(), "{error:?}");
    let attempts: Vec<_> = hooks
        .take()
        .into_iter()
        .filter_map(|seen| if let Failure(_, _, a, _) = seen { Some(a) } else { None })
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    assert_eq!(calls.lock().unwrap().len(), 2, "the last failure is returned without asking");
    assert_eq!(server.stats().token_requests, 3);
    server.shutdown().await;
}
