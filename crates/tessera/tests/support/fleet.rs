//! The fleet benchmark: P processes × T tasks per process (optionally G groups of P processes,
//! "machines" that share nothing but Redis) use one login — one rotating refresh token — for a fixed
//! duration, with short-lived access tokens, against a third-party server (oidc-provider or
//! django-oauth-toolkit: rotation + reuse detection) or the reference IdP. Reports requests served, refreshes made, expiry windows, invalid_grant count
//! and p50/p99 header latency.
//!
//! Shared by `examples/fleet.rs` (the benchmark binary) and `tests/fleet.rs` (a short run in CI),
//! which declare `mod support;` (tests/support/mod.rs), `mod redis_server;` and `mod fleet;` at their root.
//! The coordinator starts the servers, logs in once, then re-executes the current binary as worker
//! processes: a worker is selected by the environment variable `TESSERA_FLEET_WORKER` (a JSON
//! [`WorkerSpec`]) and prints one JSON [`WorkerReport`] line on stdout.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tessera::store::{FileStore, RedisStore, TokenStore};
use tessera::{ClientAuth, Endpoints, Error, Grant, OAuthErrorCode, ProviderConfig, Secret, Session};

use crate::redis_server::{RedisOptions, RedisServer};
use crate::support::third_party::{Peer, ThirdParty};

/// Environment variable that turns the current binary into a worker.
pub const WORKER_ENV: &str = "TESSERA_FLEET_WORKER";
const KEY: &str = "fleet/alice";
const BUCKETS: usize = 256;
const BUCKET_BASE: f64 = 1.1;

/// Which identity server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Server {
    /// panva's oidc-provider (interop/oidc-provider), rotation + reuse detection.
    OidcProvider,
    /// django-oauth-toolkit (interop/django-oauth-toolkit), rotation + reuse protection, no grace period.
    DjangoOauthToolkit,
    /// tessera's reference IdP, in the coordinator process, rotation + reuse detection.
    Idp,
}

/// Which shared store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreKind {
    /// One FileStore directory (one machine, file locks).
    File,
    /// One Redis server (lease lock with fencing).
    Redis,
    /// The contrast: each process its own FileStore, seeded with the one login (processes that
    /// share the login but nothing to coordinate refreshes through).
    Isolated,
}

/// What to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FleetOptions {
    /// Identity server.
    pub server: Server,
    /// Store.
    pub store: StoreKind,
    /// Groups of processes ("machines"); more than one needs Redis.
    pub groups: usize,
    /// Processes per group.
    pub processes: usize,
    /// Tasks per process.
    pub tasks: usize,
    /// How long the workers run.
    pub duration: Duration,
    /// Access token lifetime.
    pub access_ttl: Duration,
    /// Pause between two header requests of one task.
    pub interval: Duration,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            server: Server::OidcProvider,
            store: StoreKind::File,
            groups: 1,
            processes: 4,
            tasks: 4,
            duration: Duration::from_secs(10),
            access_ttl: Duration::from_secs(2),
            interval: Duration::from_millis(5),
        }
    }
}

/// What a worker process is told.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerSpec {
    issuer: String,
    client_id: String,
    client_secret: String,
    username: String,
    password: String,
    scope: String,
    store: StoreSpec,
    tasks: usize,
    duration_ms: u64,
    interval_us: u64,
    group: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum StoreSpec {
    File(PathBuf),
    Redis(String),
}

/// What a worker process reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Headers obtained.
    pub requests: u64,
    /// Failed header requests.
    pub errors: u64,
    /// Failures that were `invalid_grant`.
    pub invalid_grant: u64,
    /// A few error messages.
    pub sample_errors: Vec<String>,
    /// Latency histogram: bucket i counts latencies in [1.1^i, 1.1^(i+1)) ns.
    pub histogram: Vec<u64>,
    /// Distinct access tokens this worker saw.
    pub distinct_tokens: u64,
}

/// The fleet's result.
#[derive(Clone, Debug, Serialize)]
pub struct FleetReport {
    /// The options.
    pub options: FleetOptions,
    /// Headers obtained, all processes.
    pub requests: u64,
    /// Failed header requests.
    pub errors: u64,
    /// invalid_grant seen by workers.
    pub invalid_grant: u64,
    /// Refresh-token grants the server answered.
    pub refreshes: u64,
    /// Password logins the server answered (1: the coordinator's).
    pub logins: u64,
    /// Refresh-token reuses the server detected (each revokes the grant).
    pub reuses: u64,
    /// Expiry windows in the run: duration / (TTL − refresh window), the number of times the
    /// shared token falls due when refreshed as early as the schedule allows.
    pub windows: u64,
    /// duration / TTL, for reference.
    pub ttl_periods: u64,
    /// Median header latency.
    pub p50: Duration,
    /// 99th percentile header latency.
    pub p99: Duration,
    /// Largest latency bucket seen.
    pub max: Duration,
    /// The stored refresh token is still active at the server at the end.
    pub grant_alive: bool,
    /// Largest number of distinct access tokens one worker saw.
    pub max_distinct_tokens_per_worker: u64,
    /// Wall time of the worker phase.
    pub elapsed: Duration,
    /// A few worker error messages.
    pub sample_errors: Vec<String>,
}

impl FleetReport {
    /// The acceptance criteria of the fleet issue.
    pub fn check(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.invalid_grant != 0 {
            problems.push(format!("{} invalid_grant", self.invalid_grant));
        }
        if self.reuses != 0 {
            problems.push(format!("{} refresh token reuses", self.reuses));
        }
        if !self.grant_alive {
            problems.push("grant not alive at the end".to_owned());
        }
        if self.refreshes > self.windows + 1 {
            problems.push(format!("{} refreshes > {} windows + 1", self.refreshes, self.windows));
        }
        if self.errors != 0 {
            problems.push(format!("{} errors: {:?}", self.errors, self.sample_errors));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }

    /// A short human-readable summary.
    pub fn summary(&self) -> String {
        let o = &self.options;
        format!(
            "{:?} {:?} {}x{} processes x {} tasks, {:?}, access TTL {:?}: requests {} ({:.0}/s), errors {}, \
             invalid_grant {}, refreshes {}, windows {} (TTL periods {}), logins {}, reuses {}, \
             p50 {:?}, p99 {:?}, max {:?}, grant alive {}",
            o.server,
            o.store,
            o.groups,
            o.processes,
            o.tasks,
            o.duration,
            o.access_ttl,
            self.requests,
            self.requests as f64 / self.elapsed.as_secs_f64(),
            self.errors,
            self.invalid_grant,
            self.refreshes,
            self.windows,
            self.ttl_periods,
            self.logins,
            self.reuses,
            self.p50,
            self.p99,
            self.max,
            self.grant_alive
        )
    }
}

fn bucket(latency: Duration) -> usize {
    let ns = latency.as_nanos().max(1) as f64;
    ((ns.ln() / BUCKET_BASE.ln()) as usize).min(BUCKETS - 1)
}

fn bucket_upper(index: usize) -> Duration {
    Duration::from_nanos(BUCKET_BASE.powi(index as i32 + 1) as u64)
}

fn percentile(histogram: &[u64], p: f64) -> Duration {
    let total: u64 = histogram.iter().sum();
    let target = ((total as f64) * p).ceil() as u64;
    let mut seen = 0;
    for (i, count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= target.max(1) {
            return bucket_upper(i);
        }
    }
    Duration::ZERO
}

fn provider_config(spec: &WorkerSpec) -> ProviderConfig {
    ProviderConfig {
        client: ClientAuth::basic(spec.client_id.clone(), Secret::new(spec.client_secret.clone())),
        endpoints: Endpoints::discover(&spec.issuer),
        scope: Some(spec.scope.clone()),
        grant: Grant::Password {
            username: spec.username.clone(),
            password: Secret::new(spec.password.clone()),
            totp: None,
        },
    }
}

fn open_store(spec: &StoreSpec) -> Arc<dyn TokenStore> {
    match spec {
        StoreSpec::File(dir) => Arc::new(FileStore::new(dir)),
        StoreSpec::Redis(url) => Arc::new(RedisStore::new(url).expect("Redis URL")),
    }
}

/// Worker mode: if `TESSERA_FLEET_WORKER` is set, runs the worker it describes, prints its report
/// and returns true.
pub fn run_worker_if_requested() -> bool {
    let Ok(spec) = std::env::var(WORKER_ENV) else { return false };
    let spec: WorkerSpec = serde_json::from_str(&spec).expect("a worker spec");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let report = runtime.block_on(worker(spec));
    println!("{}", serde_json::to_string(&report).unwrap());
    true
}

async fn worker(spec: WorkerSpec) -> WorkerReport {
    let session = Session::builder(KEY, provider_config(&spec)).store(open_store(&spec.store)).build();
    let deadline = Instant::now() + Duration::from_millis(spec.duration_ms);
    let interval = Duration::from_micros(spec.interval_us);
    let requests = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..spec.tasks)
        .map(|_| {
            let (session, requests) = (session.clone(), Arc::clone(&requests));
            tokio::spawn(async move {
                let mut report = WorkerReport { histogram: vec![0; BUCKETS], ..WorkerReport::default() };
                let mut tokens = std::collections::HashSet::new();
                // Bounded: the deadline, and at most one request per interval.
                while Instant::now() < deadline {
                    let started = Instant::now();
                    match session.authorization_header().await {
                        Ok(header) => {
                            report.histogram[bucket(started.elapsed())] += 1;
                            report.requests += 1;
                            requests.fetch_add(1, Ordering::Relaxed);
                            if tokens.len() < 100_000 {
                                tokens.insert(header.access_token().expose_secret().to_owned());
                            }
                        }
                        Err(error) => {
                            report.errors += 1;
                            if error.oauth_code() == Some(&OAuthErrorCode::InvalidGrant)
                                || matches!(error, Error::ReauthenticationRequired { .. })
                            {
                                report.invalid_grant += 1;
                            }
                            if report.sample_errors.len() < 3 {
                                report.sample_errors.push(error.to_string());
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    tokio::time::sleep(interval).await;
                }
                report.distinct_tokens = tokens.len() as u64;
                report
            })
        })
        .collect();
    let mut total = WorkerReport { histogram: vec![0; BUCKETS], ..WorkerReport::default() };
    for task in tasks {
        let report = task.await.expect("task");
        total.requests += report.requests;
        total.errors += report.errors;
        total.invalid_grant += report.invalid_grant;
        total.distinct_tokens = total.distinct_tokens.max(report.distinct_tokens);
        for (sum, count) in total.histogram.iter_mut().zip(&report.histogram) {
            *sum += count;
        }
        for error in report.sample_errors {
            if total.sample_errors.len() < 3 {
                total.sample_errors.push(error);
            }
        }
    }
    total
}

/// The identity server of a run.
enum Running {
    ThirdParty(ThirdParty),
    Idp(tessera_idp::IdpServer),
}

impl Running {
    fn issuer(&self) -> String {
        match self {
            Running::ThirdParty(server) => server.issuer(),
            Running::Idp(idp) => idp.issuer(),
        }
    }

    /// (client_id, client_secret, username, password, scope)
    fn credentials(&self) -> (String, String, String, String, String) {
        match self {
            Running::ThirdParty(server) => {
                let (client_id, client_secret, username, password) = server.credentials();
                (client_id.into(), client_secret.into(), username.into(), password.into(), server.scope().into())
            }
            Running::Idp(_) => (
                tessera_idp::demo::CONFIDENTIAL_CLIENT_ID.into(),
                tessera_idp::demo::CONFIDENTIAL_CLIENT_SECRET.into(),
                tessera_idp::demo::ALICE_USERNAME.into(),
                tessera_idp::demo::ALICE_PASSWORD.into(),
                "openid api:read".into(),
            ),
        }
    }

    /// (refreshes, logins, reuses)
    async fn counts(&self) -> (u64, u64, u64) {
        match self {
            Running::ThirdParty(server) => {
                let counts = server.counts().await;
                (counts.refresh, counts.password, counts.reuses)
            }
            Running::Idp(idp) => {
                let stats = idp.stats();
                (stats.refresh_grants, stats.password_grants, stats.refresh_token_reuse_detected)
            }
        }
    }

    /// Would this refresh token refresh now?
    async fn active(&self, token: &Secret) -> bool {
        match self {
            Running::ThirdParty(server) => server.refresh_token_alive(token).await,
            Running::Idp(idp) => {
                let body: serde_json::Value = crate::support::http_client()
                    .post(idp.url("/introspect"))
                    .basic_auth(
                        tessera_idp::demo::CONFIDENTIAL_CLIENT_ID,
                        Some(tessera_idp::demo::CONFIDENTIAL_CLIENT_SECRET),
                    )
                    .form(&[("token", token.expose_secret())])
                    .send()
                    .await
                    .expect("introspection answers")
                    .json()
                    .await
                    .expect("JSON");
                body["active"] == true
            }
        }
    }
}

/// Runs a fleet: servers, one login, `groups × processes` workers of `worker_command()` for the
/// duration, then the report. Everything it starts is stopped before it returns.
pub async fn run(options: FleetOptions, worker_command: impl Fn() -> Command) -> FleetReport {
    assert!(options.groups == 1 || options.store == StoreKind::Redis, "several groups share only Redis");
    let ttl_secs = options.access_ttl.as_secs().max(1);
    let server = match options.server {
        Server::OidcProvider => Running::ThirdParty(ThirdParty::start(Peer::OidcProvider, ttl_secs)),
        Server::DjangoOauthToolkit => Running::ThirdParty(ThirdParty::start(Peer::DjangoOauthToolkit, ttl_secs)),
        Server::Idp => Running::Idp(
            tessera_idp::IdpServer::start(tessera_idp::IdpConfig {
                access_token_ttl: Duration::from_secs(ttl_secs),
                ..tessera_idp::IdpConfig::demo()
            })
            .await
            .expect("IdP starts"),
        ),
    };
    let redis = (options.store == StoreKind::Redis).then(|| RedisServer::start(RedisOptions::default()));
    let dir = tempfile::tempdir().expect("temp dir");
    let store_spec = match &redis {
        Some(redis) => StoreSpec::Redis(redis.url()),
        None => StoreSpec::File(dir.path().join("store")),
    };
    let worker_store = |index: usize| match options.store {
        StoreKind::Isolated => {
            // A private copy of the seeded store (0700 directory, 0600 file).
            #[cfg(unix)]
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            let own = dir.path().join(format!("store-{index}"));
            let builder = &mut std::fs::DirBuilder::new();
            #[cfg(unix)]
            builder.mode(0o700);
            builder.create(&own).unwrap();
            std::fs::copy(dir.path().join("store/tokens.json"), own.join("tokens.json")).unwrap();
            #[cfg(unix)]
            std::fs::set_permissions(own.join("tokens.json"), std::fs::Permissions::from_mode(0o600)).unwrap();
            StoreSpec::File(own)
        }
        _ => store_spec.clone(),
    };
    let (client_id, client_secret, username, password, scope) = server.credentials();
    let spec = WorkerSpec {
        issuer: server.issuer(),
        client_id,
        client_secret,
        username,
        password,
        scope,
        store: store_spec.clone(),
        tasks: options.tasks,
        duration_ms: options.duration.as_millis() as u64,
        interval_us: options.interval.as_micros() as u64,
        group: 0,
    };

    // One login, stored where every worker finds it.
    let store = open_store(&store_spec);
    let login = Session::builder(KEY, provider_config(&spec)).store(Arc::clone(&store)).build();
    login.login().await.expect("the initial login");
    let (refreshes_before, logins_before, _) = server.counts().await;

    let started = Instant::now();
    let mut children: Vec<Child> = Vec::new();
    let mut final_store = Arc::clone(&store);
    for group in 0..options.groups {
        // A group ("machine") shares nothing with the others but Redis: its own temp directory.
        let group_dir = dir.path().join(format!("machine-{group}"));
        std::fs::create_dir_all(&group_dir).unwrap();
        for _ in 0..options.processes {
            let spec = WorkerSpec { group, store: worker_store(children.len()), ..spec.clone() };
            if children.is_empty() {
                final_store = open_store(&spec.store);
            }
            let child = worker_command()
                .env(WORKER_ENV, serde_json::to_string(&spec).unwrap())
                .env("TMPDIR", &group_dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("worker starts");
            children.push(child);
        }
    }
    let limit = options.duration + Duration::from_secs(60);
    let mut reports = Vec::new();
    for child in children {
        reports.push(collect(child, started + limit).await);
    }
    let elapsed = started.elapsed();

    let (refreshes, logins, reuses) = server.counts().await;
    let stored = final_store.load(KEY).await.expect("store readable").expect("tokens stored");
    let grant_alive = server.active(stored.refresh_token.as_ref().expect("a refresh token")).await;

    let mut histogram = vec![0u64; BUCKETS];
    let (mut requests, mut errors, mut invalid_grant, mut max_distinct) = (0, 0, 0, 0);
    let mut sample_errors = Vec::new();
    for report in reports {
        requests += report.requests;
        errors += report.errors;
        invalid_grant += report.invalid_grant;
        max_distinct = max_distinct.max(report.distinct_tokens);
        for (sum, count) in histogram.iter_mut().zip(&report.histogram) {
            *sum += count;
        }
        sample_errors.extend(report.sample_errors.into_iter().take(2));
    }
    sample_errors.truncate(5);
    let ttl = Duration::from_secs(ttl_secs);
    let window = (ttl / 2).min(Duration::from_secs(30)); // SessionSettings::default().refresh_skew, capped at half the lifetime
    let max_bucket = histogram.iter().rposition(|&c| c > 0).unwrap_or(0);
    FleetReport {
        windows: (options.duration.as_secs_f64() / (ttl - window).as_secs_f64()).floor() as u64,
        ttl_periods: (options.duration.as_secs_f64() / ttl.as_secs_f64()).floor() as u64,
        options,
        requests,
        errors,
        invalid_grant,
        refreshes: refreshes - refreshes_before,
        logins: logins - logins_before,
        reuses,
        p50: percentile(&histogram, 0.50),
        p99: percentile(&histogram, 0.99),
        max: bucket_upper(max_bucket),
        grant_alive,
        max_distinct_tokens_per_worker: max_distinct,
        elapsed,
        sample_errors,
    }
}

/// Waits for a worker (killing it at `deadline`) and parses its report.
async fn collect(mut child: Child, deadline: Instant) -> WorkerReport {
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stdout), &mut text);
        text
    });
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a worker did not finish in time");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = reader.join().expect("reader");
    let line =
        text.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no report from a worker: {text:?}"));
    serde_json::from_str(line).expect("a worker report")
}

/// Parses `--server oidc-provider|django-oauth-toolkit|idp --store file|redis|isolated --groups G
/// --processes P --tasks T --duration SECS --access-ttl SECS --interval-ms MS`.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<FleetOptions, String> {
    let mut options = FleetOptions::default();
    let mut args = args.into_iter();
    let values: BTreeMap<String, String> = {
        let mut map = BTreeMap::new();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            map.insert(flag, value);
        }
        map
    };
    let number = |value: &str| value.parse::<u64>().map_err(|e| format!("{value:?}: {e}"));
    for (flag, value) in &values {
        match flag.as_str() {
            "--server" => {
                options.server = match value.as_str() {
                    "oidc-provider" => Server::OidcProvider,
                    "django-oauth-toolkit" => Server::DjangoOauthToolkit,
                    "idp" => Server::Idp,
                    other => return Err(format!("--server {other}: oidc-provider, django-oauth-toolkit or idp")),
                }
            }
            "--store" => {
                options.store = match value.as_str() {
                    "file" => StoreKind::File,
                    "redis" => StoreKind::Redis,
                    "isolated" => StoreKind::Isolated,
                    other => return Err(format!("--store {other}: file, redis or isolated")),
                }
            }
            "--groups" => options.groups = number(value)? as usize,
            "--processes" => options.processes = number(value)? as usize,
            "--tasks" => options.tasks = number(value)? as usize,
            "--duration" => options.duration = Duration::from_secs(number(value)?),
            "--access-ttl" => options.access_ttl = Duration::from_secs(number(value)?),
            "--interval-ms" => options.interval = Duration::from_millis(number(value)?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if options.groups > 1 && options.store != StoreKind::Redis {
        return Err("--groups > 1 needs --store redis (groups share nothing but Redis)".into());
    }
    Ok(options)
}
