//! `provider = "device_code"` through the `tessera` binary, against panva's oidc-provider
//! (interop/oidc-provider; needs `node` and `npm ci` there).
//!
//! The binary runs with stdin and stdout/stderr as pipes, so by default (`--prompt auto`) it may not
//! show a code; `--prompt always` makes it show the code on stderr anyway, which is how these tests
//! act as the person: they read the code from stderr and approve (or deny) it on oidc-provider's
//! HTML pages while tessera polls (the server asks for a 1 s interval).
//!
//! Checked: the code, URLs and expiry go to stderr only and stdout stays empty; the approved
//! login's tokens land in the store and `tessera token` prints them (active at the server, for
//! alice); a denied code fails with exit 1 and says so in words; without a terminal, `login` sends nothing
//! and exits 4, and `token` with an expired token and no refresh token exits 4 naming the command
//! to run in a terminal (and, where a person can be asked, logs in again and prints the new token).

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::oidc_provider::{ALICE, DEVICE_CLIENT_ID, OidcProvider, OidcProviderOptions};
use support::*;

/// Longest a device login may take here (1 s polls; the approval takes a few page loads).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

fn provider(access_ttl_secs: u64) -> OidcProvider {
    OidcProvider::start(OidcProviderOptions {
        access_ttl_secs,
        device_interval_secs: 1,
        ..OidcProviderOptions::default()
    })
}

/// A home with one device-code provider `tv`; `scope` decides whether a refresh token is issued
/// (oidc-provider issues one only with `offline_access`).
fn home(op: &OidcProvider, scope: &str) -> Home {
    Home::new(&format!(
        "current_context = \"dev\"\n\n[[contexts]]\nname = \"dev\"\n\n[[contexts.auth_providers]]\n\
         name = \"tv\"\ntype = \"device_code\"\nissuer = \"{}\"\nclient_id = \"{DEVICE_CLIENT_ID}\"\n\
         scope = \"{scope}\"\n",
        op.issuer()
    ))
}

/// A `tessera login` in progress: stderr is read line by line as it comes.
struct LoginRun {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
}

impl LoginRun {
    fn start(home: &Home, args: &[&str]) -> LoginRun {
        let mut child = home.spawn(args);
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        LoginRun { child, lines, stderr: Vec::new() }
    }

    /// The user code, once the binary has shown it (at most `LOGIN_TIMEOUT`).
    #[track_caller]
    fn user_code(&mut self) -> String {
        let deadline = Instant::now() + LOGIN_TIMEOUT;
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let code = line.split_once("enter the code:").map(|(_, code)| code.trim().to_owned());
            self.stderr.push(line);
            if let Some(code) = code {
                return code;
            }
        }
        panic!("no user code on stderr within {LOGIN_TIMEOUT:?}: {:#?}", self.stderr);
    }

    /// Waits for the exit (at most `LOGIN_TIMEOUT`): the whole run.
    #[track_caller]
    fn finish(mut self) -> Run {
        let status = wait_until(&mut self.child, Instant::now() + LOGIN_TIMEOUT)
            .unwrap_or_else(|| panic!("the login did not end within {LOGIN_TIMEOUT:?}: {:#?}", self.stderr));
        let mut stdout = String::new();
        if let Some(mut pipe) = self.child.stdout.take() {
            pipe.read_to_string(&mut stdout).expect("read stdout");
        }
        // The reader thread ends at EOF, which comes with the exit.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stderr.push(line);
        }
        Run { code: status.code(), stdout, stderr: self.stderr.join("\n") }
    }
}

#[test]
fn device_login_shows_the_code_on_stderr_and_stores_the_tokens() {
    let op = provider(60);
    let home = home(&op, "openid offline_access api:read");

    let mut login = LoginRun::start(&home, &["login", "--prompt", "always"]);
    let user_code = login.user_code();
    block_on(op.approve_device(&user_code, ALICE));
    let run = login.finish();

    assert_eq!(run.success(), "", "stdout carries data only: {run:#?}");
    assert!(run.stderr.contains(&format!("open {}", op.verification_uri())), "{run:#?}");
    assert!(run.stderr.contains(&format!("{}?user_code={user_code}", op.verification_uri())), "{run:#?}");
    assert!(run.stderr.contains("The code expires in"), "{run:#?}");
    assert!(run.stderr.contains("Logged in to tv (dev)"), "{run:#?}");
    assert!(!run.stderr.contains('\r'), "no spinner redraws when stderr is not a terminal: {run:#?}");

    let stored = home.stored_field("dev/tv", "access_token");
    assert!(!run.stderr.contains(&stored), "the token is not shown");
    assert!(home.stored("dev/tv").unwrap()["refresh_token"].is_string(), "offline_access gave a refresh token");
    // Later commands need nobody: no prompt mode, no terminal.
    let token = home.run(&["token"]);
    assert_eq!(token.success(), format!("{stored}\n"), "{token:#?}");
    let introspection = block_on(op.introspect(&stored));
    assert_eq!((&introspection["active"], &introspection["sub"]), (&true.into(), &ALICE.into()), "{introspection}");
    let status = block_on(op.stats());
    assert_eq!(status.device_authorizations, 1, "{status:?}");

    // Listed as what it is.
    let list = home.run(&["providers", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(list.success()).expect("JSON");
    assert_eq!((&rows[0]["type"], &rows[0]["status"]), (&"device_code".into(), &"authenticated".into()), "{rows}");
    let description = rows[0]["description"].as_str().unwrap_or_default();
    assert_eq!(description, format!("device code for {DEVICE_CLIENT_ID} at {}", op.issuer()), "{rows}");
}

#[test]
fn a_denied_code_fails_with_a_clear_error() {
    let op = provider(60);
    let home = home(&op, "openid offline_access");
    let mut login = LoginRun::start(&home, &["login", "--prompt", "always"]);
    let user_code = login.user_code();
    block_on(op.deny_device(&user_code));
    let run = login.finish();
    let stderr = run.failure(1);
    assert!(
        stderr.contains(&format!(
            "login to tv failed: the sign-in was denied at {} (code {user_code})",
            op.verification_uri()
        )),
        "said in words: {run:#?}"
    );
    assert!(!stderr.contains("access_denied"), "no protocol text: {run:#?}");
    assert_eq!(run.stdout, "");
    assert!(home.stored("dev/tv").is_none(), "nothing stored");
}

#[test]
fn without_a_terminal_logins_that_need_a_person_exit_4_naming_the_command() {
    let op = provider(2);
    // No offline_access: no refresh token, so an expired access token needs the person again.
    let home = home(&op, "openid api:read");

    // `login` cannot show the code: exit 4 before asking the server for one.
    for args in [&["login"][..], &["login", "--prompt", "never"][..]] {
        let run = home.run(args);
        let stderr = run.failure(4);
        assert!(
            stderr.contains("run 'tessera login --provider tv' in a terminal") && stderr.contains("--prompt always"),
            "{run:#?}"
        );
        assert_eq!(run.stdout, "");
    }
    assert_eq!(block_on(op.stats()).device_authorizations, 0, "no device code requested that nobody would see");

    let mut login = LoginRun::start(&home, &["login", "--prompt", "always"]);
    let user_code = login.user_code();
    block_on(op.approve_device(&user_code, ALICE));
    login.finish().success();
    assert!(home.stored("dev/tv").unwrap()["refresh_token"].is_null(), "no refresh token without offline_access");

    home.sleep_past_expiry("dev/tv");
    for run in [home.run(&["token"]), home.run_wrapped(&["env", "TESSERA_PROMPT=never"], &["token"], None)] {
        let stderr = run.failure(4);
        assert!(stderr.contains("run 'tessera login --provider tv' in a terminal"), "{run:#?}");
        assert_eq!(run.stdout, "", "{run:#?}");
    }
    assert_eq!(block_on(op.stats()).device_authorizations, 1, "the expired token started no device login");

    // Where a person can be asked, `token` logs in again (kubelogin style): code on stderr, token on stdout.
    let expired = home.stored_field("dev/tv", "access_token");
    let mut again = LoginRun::start(&home, &["token", "--prompt", "always"]);
    let user_code = again.user_code();
    block_on(op.approve_device(&user_code, ALICE));
    let run = again.finish();
    let fresh = home.stored_field("dev/tv", "access_token");
    assert_ne!(fresh, expired);
    assert_eq!(run.success(), format!("{fresh}\n"), "stdout is the token alone: {run:#?}");
    assert_eq!(block_on(op.stats()).device_authorizations, 2);
}
