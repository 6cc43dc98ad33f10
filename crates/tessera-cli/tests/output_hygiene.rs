//! What the CLI writes besides its data: a closed stdout stops a command quietly (exit 141, never a
//! panic); an untrusted certificate fails once, finally, with one clear message and no log lines
//! of dependencies; `NO_COLOR` turns colours off in log output; no message has an empty `url ()`.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use support::*;

/// Runs `command` with a stdout whose reader is already gone: every write to it fails (EPIPE).
fn run_with_closed_stdout(mut command: Command) -> Run {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    command.stdout(writer);
    let mut child = command.spawn().expect("spawn");
    // `command` holds a copy of the write end: without dropping it, a pipe would still be open here.
    drop(command);
    let status = wait_until(&mut child, Instant::now() + RUN_TIMEOUT).expect("finished");
    collect(child, status)
}

#[track_caller]
fn assert_quiet_141(run: &Run, what: &str) {
    assert!(!run.stderr.contains("panicked"), "{what}: {run:#?}");
    assert_eq!(run.code, Some(141), "{what}: {run:#?}");
    assert_eq!(run.stderr, "", "{what}: nothing to say when the reader left: {run:#?}");
}

#[test]
fn a_closed_stdout_ends_every_command_quietly_with_141() {
    let idp = ReferenceIdp::start(300);
    let home = Home::alice(idp.issuer());
    home.run(&["login"]).success();
    for args in [
        &["token"][..],
        &["token", "--format", "json"],
        &["status"],
        &["status", "--json"],
        &["providers", "list"],
        &["config", "view"],
        &["config", "view", "--json"],
        &["config", "get-contexts"],
        &["keys", "list"],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["completions", "fish"],
        &[],
        &["man"],
        &["token", "--json"],
        &["keys", "list", "--json"],
    ] {
        assert_quiet_141(&run_with_closed_stdout(home.command(args)), &args.join(" "));
    }
    // clap's own output (help, version) and a TAB's answer: no panic either.
    for args in [&["--help"][..], &["--version"], &["token", "--help"]] {
        let run = run_with_closed_stdout(home.command(args));
        assert!(!run.stderr.contains("panicked"), "{args:?}: {run:#?}");
    }
    let mut tab = home.command(&["--", "tessera", "token", "-p", ""]);
    tab.env("COMPLETE", "bash");
    let run = run_with_closed_stdout(tab);
    assert!(!run.stderr.contains("panicked"), "{run:#?}");
}

#[test]
fn closed_stdin_and_stdout_are_dev_null_as_std_makes_them() {
    // std's start-up opens closed standard streams on /dev/null; `tessera` starts without it
    // (src/startup.rs) and must do the same, or the first file it opens would take descriptor 1 and
    // the token would be written to it (here: a read-only config file, exit 1). The fast path, then
    // a refresh (the full path, which also writes the store).
    let idp = ReferenceIdp::start(300);
    let home = Home::alice(idp.issuer());
    home.run(&["login"]).success();
    for args in [&["token"][..], &["token", "--min-valid", "10m"]] {
        let run = home.run_wrapped(&["sh", "-c", "exec \"$0\" \"$@\" <&- >&-"], args, None);
        assert_eq!(run.code, Some(0), "{args:?}: {run:#?}");
        assert_eq!(run.stderr, "", "{args:?}: {run:#?}");
    }
    assert_eq!(idp.stat("refresh_grants"), 1, "the second run refreshed");
    let token = home.run(&["token"]).success().trim_end().to_owned();
    assert_eq!(token, home.stored_field("dev/peer", "access_token"), "the store is intact");
}

/// Runs `command` with a stderr whose reader is already gone; returns the exit code.
fn code_with_closed_stderr(mut command: Command) -> Option<i32> {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    command.stderr(writer);
    let mut child = command.spawn().expect("spawn");
    drop(command);
    wait_until(&mut child, Instant::now() + RUN_TIMEOUT).expect("finished").code()
}

#[test]
fn a_closed_stderr_loses_the_messages_but_not_the_exit_code() {
    // std's `eprintln!` panics (exit 101) when stderr is a closed pipe: messages are dropped instead.
    let idp = ReferenceIdp::start(300);
    let home = Home::alice(idp.issuer());
    assert_eq!(code_with_closed_stderr(home.command(&["login"])), Some(0), "Logged in to ... on stderr");
    assert!(home.stored("dev/peer").is_some());
    assert_eq!(code_with_closed_stderr(home.command(&["logout"])), Some(0), "Logged out of ... on stderr");
    assert_eq!(code_with_closed_stderr(home.command(&["token", "-p", "nope"])), Some(1), "error: ... on stderr");
    assert_eq!(code_with_closed_stderr(home.command(&["config", "use-context", "nope"])), Some(1));
}

#[test]
fn head_through_a_shell_sees_no_panic() {
    // The report: `tessera completions zsh | head -1` panicked.
    let home = Home::new("");
    let run = home.run_wrapped(
        &["sh", "-c", "set -o pipefail 2>/dev/null; \"$0\" completions zsh | head -c1; echo \" $?\""],
        &[],
        None,
    );
    assert!(!run.stderr.contains("panicked"), "{run:#?}");
}

/// A TCP relay in front of `upstream` that counts the connections it accepts.
struct CountingRelay {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl CountingRelay {
    fn start(upstream: std::net::SocketAddr) -> CountingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let mut buffer = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buffer) {
                            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        CountingRelay { port, accepted }
    }
}

#[test]
fn an_untrusted_certificate_fails_once_with_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let idp = ReferenceIdp::start_tls(300, &dir.path().join("ca.pem"));
    let upstream = idp.issuer().trim_start_matches("https://").trim_end_matches('/').parse().unwrap();
    let relay = CountingRelay::start(upstream);
    let issuer = format!("https://127.0.0.1:{}", relay.port);
    let home = Home::alice(&issuer);

    let run = home.run(&["token"]);
    let stderr = run.failure(1);
    assert_eq!(relay.accepted.load(Ordering::SeqCst), 1, "one connection, not retried: {run:#?}");
    assert!(!stderr.contains("rustls") && !stderr.contains("ERROR"), "no dependency log lines: {run:#?}");
    assert_eq!(stderr.lines().count(), 1, "the error, once, and no log line repeating it: {run:#?}");
    assert!(stderr.contains(&issuer), "the message names the issuer: {run:#?}");
    assert!(stderr.contains("certificate is not trusted") && stderr.contains("ca_file"), "{run:#?}");
    assert!(!stderr.contains("url ()") && !stderr.contains("()"), "{run:#?}");
    assert!(!stderr.contains("hint: run"), "logging in again cannot help: {run:#?}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{run:#?}");

    // `login` the same; and with the CA trusted the same server works through the same relay.
    let run = home.run(&["login"]);
    assert!(run.failure(1).contains("certificate is not trusted"), "{run:#?}");
    assert_eq!(relay.accepted.load(Ordering::SeqCst), 2);
}

#[test]
fn a_refused_connection_names_the_endpoint_without_an_empty_url() {
    // Nothing listens on this port once the listener is dropped.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let home = Home::alice(&format!("http://127.0.0.1:{port}"));
    let run = home.run(&["token"]);
    let stderr = run.failure(1);
    assert!(stderr.contains(&format!("http://127.0.0.1:{port}/")), "{run:#?}");
    assert!(!stderr.contains("url ()") && !stderr.contains("()"), "{run:#?}");
}

/// Runs `tessera args` with stderr on a terminal (through `script`, which gives the command a pty);
/// returns what the terminal showed.
fn on_a_terminal(home: &Home, env: &[(&str, &str)], args: &[&str]) -> String {
    let line = std::iter::once(BIN).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    let mut script = Command::new("script");
    script.args(["-qec", &line, "/dev/null"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // The environment the harness gives the binary (its home, no inherited TESSERA_* settings).
    for (name, value) in home.command(&[]).get_envs() {
        match value {
            Some(value) => script.env(name, value),
            None => script.env_remove(name),
        };
    }
    for (name, value) in env {
        script.env(name, value);
    }
    let output = script.output().expect("script (util-linux) runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn no_color_turns_colours_off_in_log_output() {
    let idp = ReferenceIdp::start(300);
    // A fresh home each time: a login, so that there is something to log.
    let logged = |env: &[(&str, &str)]| on_a_terminal(&Home::alice(idp.issuer()), env, &["token"]);
    // The test can fail: on a terminal, log lines are coloured...
    let coloured = logged(&[("TESSERA_LOG", "trace")]);
    assert!(coloured.contains("TRACE") && coloured.contains('\x1b'), "{coloured:?}");
    // ...unless NO_COLOR is set (to anything but the empty string, as no-color.org says).
    let plain = logged(&[("TESSERA_LOG", "trace"), ("NO_COLOR", "1")]);
    assert!(plain.contains("TRACE") && !plain.contains('\x1b'), "{plain:?}");
    let empty = logged(&[("TESSERA_LOG", "trace"), ("NO_COLOR", "")]);
    assert!(empty.contains('\x1b'), "{empty:?}");
    // Not a terminal: never coloured.
    let run = Home::alice(idp.issuer()).with_env("TESSERA_LOG", "trace").run(&["token"]);
    assert!(run.stderr.contains("TRACE") && !run.stderr.contains('\x1b'), "{run:#?}");
}
