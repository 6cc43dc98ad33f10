//! The `tessera` binary on hostile local files (issue 14): `tokens.json`, `config.toml` and a
//! `file:` secret replaced by a symlink to `/dev/zero`, a FIFO nobody writes to, a 200 MB (sparse)
//! file, a file others may write, a file another user owns (as root only: nobody else can make
//! one); a dangling lock symlink. Every run must end (killed after 10 s: a failure) with exit code 1
//! and an error that names the file and what is wrong with it, never its content, with a peak RSS
//! under 50 MB.
//!
//! Peak RSS: each such run goes through a probe, this test binary re-executed in `rss_probe` mode,
//! which starts the one child, waits for it and reads `getrusage(RUSAGE_CHILDREN)`: the peak RSS of
//! that child alone. Wall times are printed (`--nocapture`), not asserted: "under 1 s" is a speed
//! goal, measured by `benches/hostile_files/run.sh` (numbers in benches/README.md).
//!
//! Then the secret-echo scan: bad inputs holding a marker secret (TOML syntax errors on its line,
//! every provider field given a wrong value, token files of the wrong shape, malformed secret
//! references), and every command's stdout and stderr, JSON modes included, searched for the
//! marker, its 6-character pieces and its encodings.

// Unix scenarios (FIFOs, /dev/zero, modes, owners, symlinks, getrusage): their Windows forms are
// described in docs/DECISIONS.md and compiled, but there is no Windows machine here to run them on.
#![cfg(unix)]

mod support;

use std::fs::{self, File};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use support::*;
use tessera::core::provider_spec::{FIELDS, FieldType, ProviderKind};

/// A made-up secret: `/` and `+` so that its percent- and base64 forms differ from it.
const MARKER: &str = "S3CR3T-marker/value+x";
/// Set in the probe's environment: the directory holding its request.
const PROBE_ENV: &str = "TESSERA_RSS_PROBE";
/// A run still going after this long is killed, and the test fails.
const HANG_LIMIT: Duration = Duration::from_secs(10);
const RSS_LIMIT_KB: i64 = 50 * 1024;
/// The uid that owns the "another user's file" (`nobody`).
const OTHER_UID: u32 = 65534;

// ---------------------------------------------------------------------------------------------
// The probe: one child, its exit, its wall time and its peak RSS.

#[derive(Serialize, Deserialize)]
struct ProbeRequest {
    program: PathBuf,
    args: Vec<String>,
    /// Variables set (`Some`) or removed (`None`) on top of the inherited environment.
    env: Vec<(String, Option<String>)>,
}

#[derive(Serialize, Deserialize, Debug)]
struct Probed {
    code: Option<i32>,
    timed_out: bool,
    wall_ms: f64,
    max_rss_kb: i64,
}

/// Probe mode only (`TESSERA_RSS_PROBE` set; otherwise it returns at once): runs the command of
/// `request.json`, writes its output and `result.json` to the same directory.
#[test]
fn rss_probe() {
    let Some(dir) = std::env::var_os(PROBE_ENV).map(PathBuf::from) else { return };
    let request: ProbeRequest = serde_json::from_slice(&fs::read(dir.join("request.json")).unwrap()).unwrap();
    let mut command = Command::new(&request.program);
    command.args(&request.args).env_remove(PROBE_ENV);
    for (name, value) in &request.env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command
        .stdin(Stdio::null())
        .stdout(File::create(dir.join("stdout")).unwrap())
        .stderr(File::create(dir.join("stderr")).unwrap());
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > HANG_LIMIT {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    let wall = started.elapsed();
    // The only child this process ever had: its peak RSS (kB on Linux).
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let probed =
        Probed { code: status.code(), timed_out, wall_ms: wall.as_secs_f64() * 1e3, max_rss_kb: usage.max_rss() };
    fs::write(dir.join("result.json"), serde_json::to_vec(&probed).unwrap()).unwrap();
}

struct Measured {
    run: Run,
    probed: Probed,
}

/// Runs `command` through the probe.
fn probe_run(command: &Command) -> Measured {
    let text = |s: &std::ffi::OsStr| s.to_str().expect("UTF-8").to_owned();
    let request = ProbeRequest {
        program: PathBuf::from(command.get_program()),
        args: command.get_args().map(text).collect(),
        env: command.get_envs().map(|(name, value)| (text(name), value.map(text))).collect(),
    };
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("request.json"), serde_json::to_vec(&request).unwrap()).unwrap();
    let log = dir.path().join("probe.log");
    let mut probe = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "rss_probe", "--nocapture", "--test-threads=1"])
        .env(PROBE_ENV, dir.path())
        .stdin(Stdio::null())
        .stdout(File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_until(&mut probe, Instant::now() + HANG_LIMIT + Duration::from_secs(30)).expect("the probe ends");
    let log = fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "the probe failed: {log}");
    let result = fs::read(dir.path().join("result.json")).unwrap_or_else(|e| panic!("no probe result ({e}): {log}"));
    let probed: Probed = serde_json::from_slice(&result).unwrap();
    let output = |name| String::from_utf8_lossy(&fs::read(dir.path().join(name)).unwrap()).into_owned();
    let run = Run { code: probed.code, stdout: output("stdout"), stderr: output("stderr") };
    Measured { run, probed }
}

/// The probe measures what it should: a pipeline whose `tail` holds 80 MB peaks above the limit.
#[test]
fn the_probe_sees_a_large_child() {
    let mut command = Command::new("sh");
    command.args(["-c", "head -c 80000000 /dev/zero | tail -c 80000000 > /dev/null"]);
    let Measured { run, probed } = probe_run(&command);
    assert_eq!((run.code, probed.timed_out), (Some(0), false), "{run:#?}");
    assert!(probed.max_rss_kb > 70_000, "{probed:?}");
}

// ---------------------------------------------------------------------------------------------
// Hostile files.

/// What a trusted file is replaced by.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    DevZero,
    Fifo,
    Huge,
    WorldWritable,
    OtherOwner,
}

/// Which file it is (its size cap and mode rule).
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Config,
    Secret,
    Tokens,
}

impl Hostile {
    /// Every case this user can set up: a file of another user needs root to make.
    fn all() -> Vec<Hostile> {
        let mut all = vec![Hostile::DevZero, Hostile::Fifo, Hostile::Huge, Hostile::WorldWritable];
        if is_root() {
            all.push(Hostile::OtherOwner);
        } else {
            eprintln!("not root: the case of a file owned by another user is not run");
        }
        all
    }

    /// Puts it at `path`; a world-writable or foreign file holds `content` (with the marker).
    fn place(self, path: &Path, content: &str) {
        let _ = fs::remove_file(path);
        match self {
            Hostile::DevZero => symlink("/dev/zero", path).unwrap(),
            Hostile::Fifo => mkfifo(path),
            Hostile::Huge => {
                File::create(path).unwrap().set_len(200 << 20).unwrap();
                fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
            }
            Hostile::WorldWritable => {
                fs::write(path, content).unwrap();
                fs::set_permissions(path, fs::Permissions::from_mode(0o666)).unwrap();
            }
            Hostile::OtherOwner => {
                fs::write(path, content).unwrap();
                fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
                std::os::unix::fs::chown(path, Some(OTHER_UID), None).unwrap();
            }
        }
    }

    /// The words the error must use for it.
    fn problem(self, kind: Kind) -> String {
        match self {
            Hostile::DevZero | Hostile::Fifo => "is not a regular file".into(),
            Hostile::Huge => {
                let cap = match kind {
                    Kind::Config => 1 << 20,
                    Kind::Secret => 64 << 10,
                    Kind::Tokens => 16 << 20,
                };
                format!("is 209715200 bytes, more than the {cap} bytes")
            }
            Hostile::WorldWritable if kind == Kind::Tokens => "is accessible by other users (mode 0666)".into(),
            Hostile::WorldWritable => "is writable by group or others (mode 0666)".into(),
            Hostile::OtherOwner => format!("is owned by uid {OTHER_UID}, not by you"),
        }
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A loopback port nothing listens on (bound, then released): requests to it are refused at once.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One context `dev` with one provider `peer` of type client_credentials, `client_secret` as given.
fn client_credentials_config(port: u16, client_secret: &str) -> String {
    format!(
        "current_context = \"dev\"\n\n[[contexts]]\nname = \"dev\"\n\n[[contexts.auth_providers]]\nname = \"peer\"\n\
         type = \"client_credentials\"\ntoken_endpoint = \"http://127.0.0.1:{port}/token\"\nclient_id = \"c\"\n\
         client_secret = \"{client_secret}\"\n"
    )
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A valid token file whose `dev/peer` access token (valid for an hour) is `access_token`.
fn token_document(access_token: &str) -> String {
    let now = now_ms();
    serde_json::json!({
        "version": 1,
        "tokens": { "dev/peer": { "access_token": access_token, "expires_at": now + 3_600_000, "issued_at": now } }
    })
    .to_string()
}

/// Creates `$TESSERA_HOME/tokens` (mode 0700).
fn store_dir(home: &Home) -> PathBuf {
    let dir = home.store_path().parent().unwrap().to_owned();
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// One measured row, printed at the end of a test.
struct Row {
    what: String,
    wall_ms: f64,
    max_rss_kb: i64,
}

fn print_rows(title: &str, rows: &[Row]) {
    eprintln!("{title}: {} runs", rows.len());
    for row in rows {
        eprintln!("  {:<72} {:>8.1} ms {:>6} kB", row.what, row.wall_ms, row.max_rss_kb);
    }
}

/// The run ended by itself, with exit code 1, naming `file` and `problem`, repeating nothing of the
/// marker, under the memory limit.
#[track_caller]
fn assert_refused(what: &str, measured: &Measured, file: &Path, problem: &str) -> Row {
    let Measured { run, probed } = measured;
    assert!(!probed.timed_out, "{what}: still running after {HANG_LIMIT:?} (killed)");
    assert_eq!(run.code, Some(1), "{what}: {run:#?}");
    let output = format!("{}{}", run.stdout, run.stderr);
    assert!(output.contains(&file.display().to_string()), "{what}: the file is not named: {run:#?}");
    assert!(output.contains(problem), "{what}: {problem:?} not said: {run:#?}");
    assert_no_marker(what, &output);
    // Above a floor too, so that a probe that measures nothing cannot pass.
    assert!(
        (1024..RSS_LIMIT_KB).contains(&probed.max_rss_kb),
        "{what}: peak RSS {} kB (limit {RSS_LIMIT_KB} kB)",
        probed.max_rss_kb
    );
    Row { what: what.to_owned(), wall_ms: probed.wall_ms, max_rss_kb: probed.max_rss_kb }
}

#[test]
fn a_hostile_token_file_is_refused_by_every_command_naming_it() {
    let home = Home::new(&client_credentials_config(closed_port(), "s"));
    let tokens = home.store_path();
    store_dir(&home);
    // Control: the same content as a private regular file is a good store (its token is the marker).
    fs::write(&tokens, token_document(MARKER)).unwrap();
    fs::set_permissions(&tokens, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(home.run(&["token"]).success(), format!("{MARKER}\n"));

    let mut rows = Vec::new();
    for hostile in Hostile::all() {
        hostile.place(&tokens, &token_document(MARKER));
        for args in [
            &["token"][..],
            &["token", "--format", "json"],
            &["refresh", "--force"],
            &["status", "--json"],
            &["logout"],
        ] {
            let what = format!("tokens.json {hostile:?}: tessera {}", args.join(" "));
            let measured = probe_run(&home.command(args));
            rows.push(assert_refused(&what, &measured, &tokens, &hostile.problem(Kind::Tokens)));
        }
    }
    print_rows("hostile tokens.json", &rows);
}

#[test]
fn a_hostile_config_file_is_refused_by_every_command_naming_it() {
    // A literal secret in the file: the one thing its errors must never show.
    let text = client_credentials_config(closed_port(), MARKER);
    let home = Home::new(&text);
    let config = home.config_path();
    // Control: as a private regular file it loads.
    let run = home.run(&["providers", "list", "--json"]);
    assert!(run.success().contains("\"peer\""), "{run:#?}");

    let mut rows = Vec::new();
    for hostile in Hostile::all() {
        hostile.place(&config, &text);
        for args in [
            &["token"][..],
            &["status", "--json"],
            &["providers", "list", "--json"],
            &["config", "view"],
            &["config", "view", "--json"],
            &["config", "get-contexts", "--json"],
        ] {
            let what = format!("config.toml {hostile:?}: tessera {}", args.join(" "));
            let measured = probe_run(&home.command(args));
            rows.push(assert_refused(&what, &measured, &config, &hostile.problem(Kind::Config)));
        }
    }
    print_rows("hostile config.toml", &rows);
}

#[test]
fn a_hostile_file_secret_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("client-secret");
    let home = Home::new(&client_credentials_config(closed_port(), &format!("file:{}", secret.display())));
    // Control: as a private regular file it is read, and the request is sent (and refused: nothing
    // listens), so the error is about the connection and names no file.
    fs::write(&secret, MARKER).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let run = home.run(&["token"]);
    assert!(run.failure(1).contains("connection failed") && !run.stderr.contains("client-secret"), "{run:#?}");

    let mut rows = Vec::new();
    for hostile in Hostile::all() {
        hostile.place(&secret, MARKER);
        for args in [&["token"][..], &["refresh", "--force"], &["login"]] {
            let what = format!("file: secret {hostile:?}: tessera {}", args.join(" "));
            let measured = probe_run(&home.command(args));
            rows.push(assert_refused(&what, &measured, &secret, &hostile.problem(Kind::Secret)));
        }
    }
    print_rows("hostile file: secret", &rows);
}

/// `tokens.json.lock` and `locks/<key>.lock` are opened with `O_NOFOLLOW`: a dangling symlink in
/// their place is refused, naming it, and its target is never created.
#[test]
fn a_dangling_lock_symlink_is_refused_and_its_target_never_created() {
    let idp = ReferenceIdp::start(60);
    let home = Home::alice(idp.issuer());
    let dir = store_dir(&home);
    let target = home.path().join("created-through-the-link");
    let write_lock = dir.join("tokens.json.lock");
    symlink(&target, &write_lock).unwrap();

    // `login` must store what it got: it fails, naming the lock file.
    let measured = probe_run(&home.command(&["login"]));
    let mut rows = vec![assert_refused(
        "dangling tokens.json.lock: tessera login",
        &measured,
        &write_lock,
        "cannot open lock file",
    )];
    assert!(!target.exists(), "the link's target was created");
    assert!(!home.store_path().exists(), "nothing was stored");
    // `token` prints the token it obtained (valid, only not stored) and warns, naming the lock file.
    let run = home.run(&["token"]);
    assert!(run.stderr.contains(&format!("{}: cannot open lock file", write_lock.display())), "{run:#?}");
    assert!(!target.exists() && !home.store_path().exists(), "{run:#?}");

    // The per-key refresh lock: taken before anything is sent, so the refresh fails.
    fs::remove_file(&write_lock).unwrap();
    let key_lock = dir.join("locks").join("dev%2Fpeer.lock");
    fs::create_dir_all(key_lock.parent().unwrap()).unwrap();
    fs::set_permissions(key_lock.parent().unwrap(), fs::Permissions::from_mode(0o700)).unwrap();
    let _ = fs::remove_file(&key_lock);
    symlink(&target, &key_lock).unwrap();
    let requests = idp.stat("token_requests");
    for args in [&["token"][..], &["refresh", "--force"]] {
        let what = format!("dangling locks/dev%2Fpeer.lock: tessera {}", args.join(" "));
        let measured = probe_run(&home.command(args));
        rows.push(assert_refused(&what, &measured, &key_lock, "cannot open lock file"));
    }
    assert!(!target.exists(), "the link's target was created");
    assert_eq!(idp.stat("token_requests"), requests, "nothing is sent without the refresh lock");
    print_rows("dangling lock symlinks", &rows);
}

/// A refresh whose new tokens cannot be saved (here: `tokens.json.lock` is a dangling symlink)
/// should fail: the server has rotated the refresh token, and the store still holds the spent one,
/// which the next refresh presents (a reuse: a rotating server revokes the grant).
///
/// It used to be reported as a success (`refresh --force` said "fresh", exit 0), and the next
/// refresh was a reuse. Now the caller gets the store's error, and the spent refresh token goes in
/// the spent-token ledger, so the next process logs in again instead of presenting it.
#[test]
fn refresh_force_fails_when_its_tokens_cannot_be_saved() {
    let idp = ReferenceIdp::start(60);
    let home = Home::alice(idp.issuer());
    home.run(&["login"]).success();
    let write_lock = home.store_path().with_file_name("tokens.json.lock");
    fs::remove_file(&write_lock).unwrap();
    symlink(home.path().join("elsewhere"), &write_lock).unwrap();
    let run = home.run(&["refresh", "--force"]);
    assert_eq!(run.code, Some(1), "the new tokens were not saved: {run:#?}");
    fs::remove_file(&write_lock).unwrap();
    home.run(&["refresh", "--force"]).success();
    assert_eq!(idp.stat("refresh_token_reuse_detected"), 0, "a spent refresh token was presented");
}

// ---------------------------------------------------------------------------------------------
// The secret-echo scan.

/// What would betray the marker: every 6-character piece of it, and its base64 (standard and URL
/// alphabets) at each of the three alignments, without the characters its neighbours change.
fn marker_forms() -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut forms: Vec<String> = (0..=MARKER.len() - 6).map(|i| MARKER[i..i + 6].to_owned()).collect();
    for prefix in ["", "x", "xx"] {
        for encoded in
            [STANDARD_NO_PAD.encode(format!("{prefix}{MARKER}")), URL_SAFE_NO_PAD.encode(format!("{prefix}{MARKER}"))]
        {
            let start = if prefix.is_empty() { 0 } else { 4 };
            forms.push(encoded[start..encoded.len() - 4].to_owned());
        }
    }
    forms
}

#[track_caller]
fn assert_no_marker(what: &str, text: &str) {
    if let Some(form) = marker_forms().iter().find(|form| text.contains(form.as_str())) {
        panic!("{what}: {form:?} (from the marker secret) in:\n{text}");
    }
}

/// Every text searched, and the ones that held the marker.
#[derive(Default)]
struct Scan {
    forms: Vec<String>,
    searched: usize,
    leaks: Vec<String>,
}

impl Scan {
    fn new() -> Scan {
        Scan { forms: marker_forms(), ..Scan::default() }
    }

    fn text(&mut self, what: &str, text: &str) {
        self.searched += 1;
        if let Some(form) = self.forms.iter().find(|form| text.contains(form.as_str())) {
            self.leaks.push(format!("{what}: {form:?} in:\n{text}"));
        }
    }

    /// stderr always; stdout too unless it is the data asked for (`stdout_is_data`).
    fn run(&mut self, what: &str, run: &Run, stdout_is_data: bool) {
        self.text(&format!("{what} (stderr)"), &run.stderr);
        if !stdout_is_data {
            self.text(&format!("{what} (stdout)"), &run.stdout);
        }
    }

    /// The `error` of each row of `status --json` / `providers list --json` (the whole stdout if it
    /// is not such a list).
    fn error_fields(&mut self, what: &str, run: &Run) {
        self.text(&format!("{what} (stderr)"), &run.stderr);
        match serde_json::from_str::<Value>(&run.stdout) {
            Ok(Value::Array(rows)) => {
                for row in rows {
                    if let Some(error) = row["error"].as_str() {
                        self.text(&format!("{what} (error field)"), error);
                    }
                }
            }
            _ => self.text(&format!("{what} (stdout)"), &run.stdout),
        }
    }

    fn merge(&mut self, other: Scan) {
        self.searched += other.searched;
        self.leaks.extend(other.leaks);
    }

    #[track_caller]
    fn finish(self, what: &str, at_least: usize) {
        eprintln!("{what}: {} texts searched, {} leaks", self.searched, self.leaks.len());
        assert!(self.searched >= at_least, "{what}: only {} texts searched", self.searched);
        assert!(self.leaks.is_empty(), "{what}: {} leaks:\n{}", self.leaks.len(), self.leaks.join("\n---\n"));
    }
}

/// A valid provider section of each type, every URL at `server` (the reference IdP: it refuses
/// client `c` at once, where a closed port would be retried).
fn base_section(kind: ProviderKind, server: &str) -> toml::Table {
    let url = |path: &str| toml::Value::String(format!("{}{path}", server.trim_end_matches('/')));
    let mut section = toml::Table::new();
    section.insert("name".into(), "peer".into());
    section.insert("type".into(), kind.as_str().into());
    if kind != ProviderKind::Static {
        section.insert("client_id".into(), "c".into());
    }
    let fields: Vec<(&str, toml::Value)> = match kind {
        ProviderKind::Password => {
            vec![("token_endpoint", url("/token")), ("username", "u".into()), ("password", "p".into())]
        }
        ProviderKind::ClientCredentials => vec![("token_endpoint", url("/token")), ("client_secret", "s".into())],
        ProviderKind::RefreshToken => vec![("token_endpoint", url("/token")), ("refresh_token", "r".into())],
        ProviderKind::Static => vec![("access_token", "t".into())],
        ProviderKind::DeviceCode => {
            vec![("token_endpoint", url("/token")), ("device_authorization_endpoint", url("/device"))]
        }
        ProviderKind::EmailOtp => vec![
            ("token_endpoint", url("/token")),
            ("otp_start_endpoint", url("/otp/start")),
            ("otp_verify_endpoint", url("/otp/verify")),
            ("email", "a@example.com".into()),
        ],
        ProviderKind::Cognito => {
            vec![("endpoint_url", url("/")), ("username", "u".into()), ("password", "p".into())]
        }
        ProviderKind::Browser => vec![("token_endpoint", url("/token")), ("authorization_endpoint", url("/authorize"))],
        ProviderKind::JwtBearer => vec![
            ("token_endpoint", url("/token")),
            ("assertion_key", tessera_idp::demo::SERVICE_ACCOUNT_PRIVATE_KEY.into()),
        ],
        ProviderKind::WorkloadIdentity => {
            vec![("token_endpoint", url("/token")), ("subject_token", "env:TESSERA_TEST_NEVER_SET".into())]
        }
        other => panic!("a new provider type, {other:?}: give it a valid section here"),
    };
    for (name, value) in fields {
        section.insert(name.into(), value);
    }
    section
}

/// The configuration file holding `section` as provider `peer` of context `dev`.
fn config_with(section: toml::Table) -> String {
    let mut context = toml::Table::new();
    context.insert("name".into(), "dev".into());
    context.insert("auth_providers".into(), toml::Value::Array(vec![toml::Value::Table(section)]));
    let mut document = toml::Table::new();
    document.insert("current_context".into(), "dev".into());
    document.insert("contexts".into(), toml::Value::Array(vec![toml::Value::Table(context)]));
    toml::to_string(&document).unwrap()
}

/// Values for `ty` that hold the marker: of the wrong type (an array; a table for tables, with
/// the marker as a key too), and as a plain string.
fn marker_values(ty: FieldType) -> Vec<toml::Value> {
    let string = toml::Value::String(MARKER.into());
    let array = toml::Value::Array(vec![string.clone()]);
    let mut table = toml::Table::new();
    table.insert(MARKER.into(), array.clone());
    match ty {
        FieldType::Count | FieldType::Port | FieldType::Seconds | FieldType::UnixSeconds | FieldType::Bool => {
            vec![string, array]
        }
        FieldType::Params => vec![string, array, toml::Value::Table(table)],
        FieldType::Text | FieldType::Url | FieldType::Secret => vec![array, string],
    }
}

/// Runs the commands that read a configuration on `text` and scans what they print. `secret`: the
/// marker is a secret (a `Secret` field, a token): then no output may show it, not even data
/// outputs such as `config view` (which masks secrets). Otherwise a command that succeeds may show
/// the value it was given (a description naming `username`), and only errors are searched.
fn scan_config(scan: &mut Scan, what: &str, text: &str, env: &[(&str, &str)], secret: bool) {
    let mut home = Home::new(text);
    for (name, value) in env {
        home = home.with_env(name, value);
    }
    let run = home.run(&["--prompt", "never", "token", "--format", "json"]);
    // A token of a static provider is the data asked for.
    scan.run(&format!("{what}: token"), &run, run.code == Some(0));
    for args in [&["status", "--json"][..], &["providers", "list", "--json"]] {
        let run = home.run(args);
        let what = format!("{what}: {}", args.join(" "));
        if secret { scan.run(&what, &run, false) } else { scan.error_fields(&what, &run) }
    }
    for args in [&["config", "view", "--json"][..], &["config", "view"]] {
        let run = home.run(args);
        scan.run(&format!("{what}: {}", args.join(" ")), &run, !secret && run.code == Some(0));
    }
}

/// Every field of the provider description, in each type it applies to, given values holding the
/// marker (of the wrong type; a plain string, valid for strings and secrets, not for URLs or
/// numbers; a table), on top of an otherwise valid section.
#[test]
fn no_cli_output_repeats_a_marker_given_in_any_provider_field() {
    let idp = ReferenceIdp::start(60);
    let server = idp.issuer();
    // Control: every base section is valid (the scan reaches the field under test, not a missing one).
    for kind in ProviderKind::ALL {
        let text = config_with(base_section(kind, server));
        let run = Home::new(&text).run(&["providers", "list", "--json"]);
        let rows: Value = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
        assert!(run.code == Some(0) && rows[0]["error"].is_null(), "{kind:?}: {run:#?}");
    }
    let mut cases = Vec::new();
    for field in FIELDS {
        for kind in ProviderKind::ALL.into_iter().filter(|kind| field.applies_to(*kind)) {
            for value in marker_values(field.ty) {
                let mut section = base_section(kind, server);
                // The alternatives of the field under test, so that it is the one in use.
                match field.name {
                    "issuer" => drop(section.remove("token_endpoint")),
                    "region" => drop(section.remove("endpoint_url")),
                    _ => {}
                }
                section.insert(field.name.into(), value.clone());
                let what = format!("{} = {value} ({})", field.name, kind.as_str());
                cases.push((what, config_with(section), field.ty == FieldType::Secret));
            }
        }
    }
    // The `api_key` type (fields checked by the registry's `allow_fields`, not the table above).
    for (field, secret) in [("api_key", true), ("prefix", false), ("header", false), (MARKER, false)] {
        for value in marker_values(FieldType::Params) {
            let mut section = toml::Table::new();
            section.insert("name".into(), "peer".into());
            section.insert("type".into(), "api_key".into());
            section.insert(field.into(), value.clone());
            cases.push((format!("{field} = {value} (api_key)"), config_with(section), secret));
        }
    }
    let cases_run = cases.len();
    // Four threads: each case is a handful of short processes.
    let chunks: Vec<_> = cases.chunks(cases.len().div_ceil(4)).collect();
    let scans: Vec<Scan> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                scope.spawn(move || {
                    let mut scan = Scan::new();
                    for (what, text, secret) in chunk.iter() {
                        scan_config(&mut scan, what, text, &[], *secret);
                    }
                    scan
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    let mut scan = Scan::new();
    for other in scans {
        scan.merge(other);
    }
    assert!(cases_run > 100, "{cases_run} cases");
    scan.finish("provider fields", cases_run * 5);
}

/// TOML syntax and type errors on a line holding a literal secret, a pasted secret on a line of its
/// own, malformed and unreadable secret references, a store URL with a password.
#[test]
fn no_cli_output_repeats_a_secret_from_a_bad_config_file() {
    let port = closed_port();
    let good = client_credentials_config(port, "s");
    let mut cases: Vec<(String, String)> = vec![
        ("a literal secret then junk".into(), good.replace("\"s\"", &format!("\"{MARKER}\" trailing"))),
        ("an unterminated literal secret".into(), good.replace("\"s\"", &format!("\"{MARKER}"))),
        ("a secret on a line of its own".into(), format!("{good}{MARKER}\n")),
        ("a duplicate key".into(), format!("{good}client_secret = \"{MARKER}\"\n")),
        ("a bad escape".into(), good.replace("\"s\"", &format!("\"{MARKER}\\q\""))),
        ("a secret as a table key".into(), good.replace("client_secret = \"s\"", &format!("\"{MARKER}\" = 1"))),
        ("current_context of the wrong type".into(), good.replace("current_context = \"dev\"", &format!("current_context = [\"{MARKER}\"]"))),
        ("a context name of the wrong type".into(), good.replace("name = \"dev\"", &format!("name = [\"{MARKER}\"]"))),
        ("an unknown store kind".into(), good.replace("\n\n[[contexts.auth_providers]]", &format!("\n[contexts.store]\nkind = \"{MARKER}\"\n\n[[contexts.auth_providers]]"))),
        (
            "a store URL with a password".into(),
            good.replace(
                "\n\n[[contexts.auth_providers]]",
                &format!(
                    "\n[contexts.store]\nkind = \"redis\"\nurl = \"redis://user:{}@127.0.0.1:{port}/\"\n\n[[contexts.auth_providers]]",
                    MARKER.replace('/', "%2F").replace('+', "%2B")
                ),
            ),
        ),
        ("an unknown top-level field".into(), format!("bogus = \"{MARKER}\"\n{good}")),
        ("a secret as a top-level key".into(), format!("\"{MARKER}\" = 1\n{good}")),
        ("a secret as a context key".into(), good.replace("name = \"dev\"", &format!("name = \"dev\"\n\"{MARKER}\" = 1"))),
        ("a NUL in a literal secret".into(), good.replace("\"s\"", &format!("\"{MARKER}\u{0}\""))),
    ];
    // Malformed references are not repeated (well-formed ones are named: they are not secrets).
    let no_slash = MARKER.replace('/', "");
    for reference in [
        format!("env:{MARKER}"),
        format!("env: {MARKER}"),
        format!("keyring:{no_slash}"),
        format!("keyring:{no_slash}/"),
        format!("keyring:/{no_slash}"),
        "env:TESSERA_TEST_MARKER_SECRET".to_owned(),
    ] {
        cases.push((format!("client_secret = {reference:?}"), client_credentials_config(port, &reference)));
    }
    // The `api_key` type reads its reference itself.
    for reference in [format!("env:{MARKER}"), format!("keyring:{no_slash}")] {
        let text = format!(
            "[[contexts]]\nname = \"dev\"\n\n[[contexts.auth_providers]]\nname = \"peer\"\ntype = \"api_key\"\napi_key = {reference:?}\n"
        );
        cases.push((format!("api_key = {reference:?}"), text));
    }
    // `file:` secrets that hold the marker but cannot be used.
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, bytes: &[u8], mode: u32| {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        format!("file:{}", path.display())
    };
    let not_utf8 = [MARKER.as_bytes(), b"\xff\xfe"].concat();
    for (what, reference) in [
        ("writable by others", file("loose", MARKER.as_bytes(), 0o666)),
        ("not UTF-8", file("binary", &not_utf8, 0o600)),
        ("over 64 KiB", file("big", MARKER.repeat(4_000).as_bytes(), 0o600)),
        ("a directory", format!("file:{}", dir.path().display())),
    ] {
        cases.push((format!("a file: secret {what}"), client_credentials_config(port, &reference)));
    }
    let mut scan = Scan::new();
    for (what, text) in &cases {
        scan_config(&mut scan, what, text, &[("TESSERA_TEST_MARKER_SECRET", MARKER)], true);
    }
    scan.finish("bad configuration files", cases.len() * 5);
}

/// Token files of the wrong shape or version holding the marker where a token goes, through every
/// command that reads the store.
#[test]
fn no_cli_output_repeats_a_token_from_a_bad_token_file() {
    let home = Home::new(&client_credentials_config(closed_port(), "s"));
    let tokens = home.store_path();
    store_dir(&home);
    let now = now_ms();
    let documents = [
        format!("{{\"version\":1,\"tokens\":{{\"dev/peer\":\"eyJ{MARKER}\"}}}}"),
        format!("{{\"version\":1,\"tokens\":{{\"dev/peer\":{{\"access_token\":[\"{MARKER}\"]}}}}}}"),
        format!("{{\"version\":1,\"tokens\":{{\"dev/peer\":{{\"access_token\":\"x\",\"expires_at\":\"{MARKER}\"}}}}}}"),
        format!(
            "{{\"version\":1,\"tokens\":{{\"dev/peer\":{{\"access_token\":\"x\",\"issued_at\":{now},\"refresh_token\":{{\"{MARKER}\":1}}}}}}}}"
        ),
        format!("{{\"version\":\"{MARKER}\"}}"),
        format!("{{\"version\":1,\"tokens\":{{\"dev/peer\":{{\"access_token\":\"{MARKER}\" {MARKER}"),
        format!("{{\"version\":1,\"tokens\":{{\"dev/peer\":{{\"access_token\":\"{MARKER}\""),
        format!("{{\"version\":99,\"tokens\":{{\"dev/peer\":{{\"access_token\":\"{MARKER}\",\"issued_at\":{now}}}}}}}"),
        format!("{MARKER}\n"),
        format!("{{\"{MARKER}\":1}}"),
        format!(
            "{{\"version\":1,\"tokens\":{{\"dev/peer\":{{\"access_token\":\"{MARKER}\u{1}\",\"issued_at\":{now}}}}}}}"
        ),
    ];
    let mut scan = Scan::new();
    let commands: [&[&str]; 9] = [
        &["token"],
        &["token", "--format", "json"],
        &["token", "--format", "k8s"],
        &["refresh", "--force"],
        &["status"],
        &["status", "--json"],
        &["providers", "list", "--json"],
        &["logout"],
        &["exec", "--", "true"],
    ];
    for (n, document) in documents.iter().enumerate() {
        for bytes in [document.as_bytes().to_vec(), [document.as_bytes(), b"\xff"].concat()] {
            fs::write(&tokens, &bytes).unwrap();
            fs::set_permissions(&tokens, fs::Permissions::from_mode(0o600)).unwrap();
            for args in commands {
                let run = home.run(args);
                // `providers list` lists every provider and exits 0, the store error in its row.
                if args[0] != "providers" {
                    assert_ne!(run.code, Some(0), "document {n} accepted by `tessera {}`: {run:#?}", args.join(" "));
                }
                scan.run(&format!("document {n}: tessera {}", args.join(" ")), &run, false);
            }
            assert_eq!(fs::read(&tokens).unwrap(), bytes, "document {n}: the file is left as it was");
        }
    }
    scan.finish("bad token files", documents.len() * 2 * commands.len() * 2);
}
