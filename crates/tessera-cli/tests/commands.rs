//! The full command set, with assert_cmd: token formats (a kubectl ExecCredential checked field
//! by field), `--min-valid`, `exec` (token in the child's environment, exit code passed through),
//! `login --with-token|--all`, `logout --all`, `status` exit codes, `providers list`,
//! `config get-contexts|use-context|view`, `completions`, and usage errors (exit 2).
//!
//! Every run has its own `TESSERA_HOME`; the reference IdP runs as `tessera idp serve`.

mod support;

use assert_cmd::assert::Assert;
use serde_json::{Value, json};
use support::*;

const PASSWORD_ENV: &str = "TESSERA_TEST_PASSWORD";
const CLIENT_SECRET_ENV: &str = "TESSERA_TEST_CLIENT_SECRET";

fn context(name: &str, providers: &[String]) -> String {
    let mut text = format!("\n[[contexts]]\nname = \"{name}\"\n");
    for provider in providers {
        text.push_str("\n[[contexts.auth_providers]]\n");
        text.push_str(provider);
    }
    text
}

fn password_provider(name: &str, issuer: &str, password_env: &str) -> String {
    format!(
        "name = \"{name}\"\ntype = \"password\"\nissuer = \"{issuer}\"\nclient_id = \"confidential-client\"\n\
         client_secret = \"env:{CLIENT_SECRET_ENV}\"\nusername = \"alice\"\npassword = \"env:{password_env}\"\n\
         scope = \"openid api:read\"\n"
    )
}

fn machine_provider(issuer: &str) -> String {
    format!(
        "name = \"machine\"\ntype = \"client_credentials\"\nissuer = \"{issuer}\"\n\
         client_id = \"confidential-client\"\nclient_secret = \"env:{CLIENT_SECRET_ENV}\"\n"
    )
}

const STATIC_PROVIDER: &str = "name = \"given\"\ntype = \"static\"\n";

fn home(text: &str) -> Home {
    Home::new(text)
        .with_env(PASSWORD_ENV, "alice-password")
        .with_env("TESSERA_TEST_WRONG_PASSWORD", "not-alices-password")
        .with_env(CLIENT_SECRET_ENV, "confidential-secret")
}

/// Runs `tessera args...` (with `stdin`), at most 30 s.
fn cmd(home: &Home, args: &[&str], stdin: &str) -> Assert {
    assert_cmd::Command::from_std(home.command(args)).write_stdin(stdin).timeout(RUN_TIMEOUT).assert()
}

fn stdout(assert: &Assert) -> String {
    String::from_utf8(assert.get_output().stdout.clone()).expect("utf-8 stdout")
}

fn stderr(assert: &Assert) -> String {
    String::from_utf8(assert.get_output().stderr.clone()).expect("utf-8 stderr")
}

fn json_of(assert: &Assert) -> Value {
    let text = stdout(assert);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

#[test]
fn token_formats_and_a_kubectl_exec_credential_and_min_valid() {
    let idp = ReferenceIdp::start(300);
    let home = home(&format!(
        "current_context = \"dev\"\n{}",
        context("dev", &[password_provider("peer", idp.issuer(), PASSWORD_ENV)])
    ));
    cmd(&home, &["login"], "").success().stdout("");
    let stored = home.stored_field("dev/peer", "access_token");
    let expires_at_ms = home.stored("dev/peer").unwrap()["expires_at"].as_i64().unwrap();

    cmd(&home, &["token", "--format", "raw"], "").success().stdout(format!("{stored}\n"));
    cmd(&home, &["token", "--format", "header"], "").success().stdout(format!("Authorization: Bearer {stored}\n"));

    let value = json_of(&cmd(&home, &["token", "--format", "json"], "").success());
    assert_eq!(value["access_token"], stored.as_str(), "{value}");
    assert_eq!(value["token_type"], "Bearer");
    assert_eq!(parse_rfc3339(value["expires_at"].as_str().expect("RFC 3339")), expires_at_ms / 1000, "{value}");
    assert!(value["expires_in"].as_i64().is_some_and(|s| (280..=300).contains(&s)), "{value}");
    assert_eq!(
        (&value["context"], &value["name"], &value["type"]),
        (&json!("dev"), &json!("peer"), &json!("password"))
    );
    // --json is --format json.
    let same = json_of(&cmd(&home, &["token", "--json"], "").success());
    assert_eq!((&same["access_token"], &same["expires_at"]), (&value["access_token"], &value["expires_at"]));
    cmd(&home, &["token", "--json", "--format", "k8s"], "").code(2).stdout("");

    // kubectl's client.authentication.k8s.io/v1 ExecCredential: apiVersion, kind, status.token,
    // status.expirationTimestamp (RFC 3339); nothing else at the top level but an optional spec.
    let credential = json_of(&cmd(&home, &["token", "--format", "k8s"], "").success());
    let object = credential.as_object().expect("an object");
    assert!(object.keys().all(|k| ["apiVersion", "kind", "status", "spec"].contains(&k.as_str())), "{credential}");
    assert_eq!(credential["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(credential["kind"], "ExecCredential");
    assert_eq!(credential["status"]["token"], stored.as_str());
    let expiration = credential["status"]["expirationTimestamp"].as_str().expect("expirationTimestamp");
    assert_eq!(parse_rfc3339(expiration), expires_at_ms / 1000, "{expiration}");
    let status_keys: Vec<_> = credential["status"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(status_keys, ["expirationTimestamp", "token"]);
    assert_eq!(idp.stat("token_requests"), 1, "all of the above came from the store");

    // --min-valid: 5 minutes left is enough for 1m, not for 10m (a new token, once).
    cmd(&home, &["token", "--min-valid", "1m"], "").success().stdout(format!("{stored}\n"));
    assert_eq!(idp.stat("token_requests"), 1);
    let fresh = stdout(&cmd(&home, &["token", "--min-valid", "10m"], "").success());
    assert_ne!(fresh.trim_end(), stored);
    assert_eq!(idp.stat("refresh_grants"), 1);
    assert_eq!(fresh.trim_end(), home.stored_field("dev/peer", "access_token"));

    // Bad values are usage errors, with nothing on stdout.
    for args in [&["token", "--format", "xml"][..], &["token", "--min-valid", "5x"], &["token", "--min-valid", "m"]] {
        cmd(&home, args, "").code(2).stdout("");
    }
}

#[test]
fn exec_puts_the_token_in_the_childs_environment_and_passes_its_exit_code() {
    let idp = ReferenceIdp::start(300);
    let home = home(&format!(
        "current_context = \"dev\"\n{}",
        context("dev", &[password_provider("peer", idp.issuer(), PASSWORD_ENV), STATIC_PROVIDER.into()])
    ));
    cmd(&home, &["login", "-p", "peer"], "").success();
    let stored = home.stored_field("dev/peer", "access_token");

    let run = cmd(&home, &["exec", "-p", "peer", "--", "sh", "-c", "printf %s \"$TESSERA_TOKEN\"; exit 7"], "");
    let run = run.code(7);
    assert_eq!(stdout(&run), stored, "the child printed the token from its environment");
    let run = cmd(
        &home,
        &["exec", "-p", "peer", "--env", "API_TOKEN", "--", "sh", "-c", "test \"$API_TOKEN\" = \"$1\"", "sh", &stored],
        "",
    );
    run.success();
    // The command replaces tessera: its own signal death is what the caller sees.
    let killed = cmd(&home, &["exec", "-p", "peer", "--", "sh", "-c", "kill -TERM $$"], "").failure();
    #[cfg(unix)]
    {
        let status = killed.get_output().status;
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(15), "{status:?}");
    }
    #[cfg(not(unix))]
    drop(killed);

    // No token to give: exit 4, and the child never runs.
    let marker = home.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let run = cmd(&home, &["exec", "-p", "given", "--", "sh", "-c", &touch], "").code(4);
    assert!(stderr(&run).contains("--with-token"), "{}", stderr(&run));
    assert!(!marker.exists(), "the child did not run");

    // The shells' codes: 127 for a command that is not found, 126 for one that cannot be executed.
    let run = cmd(&home, &["exec", "-p", "peer", "--", "nosuchcmd-tessera-test"], "").code(127);
    assert!(stderr(&run).contains("nosuchcmd-tessera-test: command not found"), "{}", stderr(&run));
    cmd(&home, &["exec", "-p", "peer", "--", "/nonexistent/program"], "").code(127);
    let not_executable = home.path().join("script.sh");
    std::fs::write(&not_executable, "#!/bin/sh\necho hi\n").unwrap();
    let run = cmd(&home, &["exec", "-p", "peer", "--", not_executable.to_str().unwrap()], "").code(126);
    assert!(stderr(&run).contains("cannot execute"), "{}", stderr(&run));
    cmd(&home, &["exec", "-p", "peer"], "").code(2);
    cmd(&home, &["exec", "-p", "peer", "sh"], "").code(2);
}

#[test]
fn login_with_a_token_from_stdin_for_static_providers() {
    let idp = ReferenceIdp::start(300);
    let home = home(&format!(
        "current_context = \"dev\"\n{}",
        context("dev", &[STATIC_PROVIDER.into(), password_provider("peer", idp.issuer(), PASSWORD_ENV)])
    ));

    let run = cmd(&home, &["token", "-p", "given"], "").code(4);
    assert!(stderr(&run).contains("tessera login --with-token"), "{}", stderr(&run));

    let run = cmd(&home, &["login", "-p", "given", "--with-token"], "pasted-token-value\n").success().stdout("");
    assert!(stderr(&run).contains("Logged in to given (dev) with the given token"), "{}", stderr(&run));
    assert!(!stderr(&run).contains("pasted-token-value"));
    cmd(&home, &["token", "-p", "given"], "").success().stdout("pasted-token-value\n");
    let rows = json_of(&cmd(&home, &["status", "--json"], "").success());
    assert_eq!(rows[0]["status"], "authenticated", "{rows}");

    cmd(&home, &["login", "-p", "peer", "--with-token"], "abc").code(1).stdout("");
    let run = cmd(&home, &["refresh", "-p", "given"], "").code(1);
    assert!(stderr(&run).contains("cannot be refreshed"), "{}", stderr(&run));
    cmd(&home, &["login", "-p", "given", "--with-token"], "  \n").code(1);
    assert_eq!(idp.stat("token_requests"), 0, "no request for any of this");
}

#[test]
fn login_all_with_a_failing_provider_then_providers_status_and_logout_all() {
    let idp = ReferenceIdp::start(300);
    let providers = [
        password_provider("peer", idp.issuer(), PASSWORD_ENV),
        machine_provider(idp.issuer()),
        password_provider("broken", idp.issuer(), "TESSERA_TEST_WRONG_PASSWORD"),
    ];
    let home = home(&format!("current_context = \"dev\"\n{}", context("dev", &providers)));

    let run = cmd(&home, &["login", "--all"], "").code(1).stdout("");
    let messages = stderr(&run);
    assert!(
        messages.contains("Logged in to peer (dev)") && messages.contains("Logged in to machine (dev)"),
        "{messages}"
    );
    assert!(messages.contains("login to broken failed") && messages.contains("invalid_grant"), "{messages}");
    assert!(!messages.contains("not-alices-password"), "{messages}");
    cmd(&home, &["login", "--all", "-p", "peer"], "").code(2);

    let rows = json_of(&cmd(&home, &["providers", "list", "--json"], "").success());
    let rows = rows.as_array().expect("an array");
    let summary: Vec<_> = rows
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["type"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("peer", "password", "authenticated"),
            ("machine", "client_credentials", "authenticated"),
            ("broken", "password", "available")
        ]
    );
    assert!(rows[0]["description"].as_str().is_some_and(|d| d.contains("alice")), "{rows:?}");
    assert_eq!(rows[0]["capabilities"], json!({ "login": true, "refresh": true, "http_headers": true, "token": true }));
    let table = stdout(&cmd(&home, &["providers", "list"], "").success());
    assert!(table.starts_with("NAME") && table.lines().count() == 4, "{table}");
    assert!(table.lines().any(|l| l.split_whitespace().take(3).eq(["broken", "password", "available"])), "{table}");

    // Nothing is in error (broken is merely not logged in): status exits 0.
    let status = json_of(&cmd(&home, &["status", "--json"], "").success());
    assert_eq!(status.as_array().map(Vec::len), Some(3), "{status}");
    assert!(!status.to_string().contains(&home.stored_field("dev/peer", "access_token")));

    cmd(&home, &["refresh", "-p", "machine", "--force"], "").success();
    assert_eq!(idp.stat("client_credentials_grants"), 2);

    // TESSERA_PROVIDER picks the provider like --provider, but does not conflict with --all.
    let mut picked = home.command(&["token", "--format", "json"]);
    picked.env("TESSERA_PROVIDER", "machine");
    let token = json_of(&assert_cmd::Command::from_std(picked).timeout(RUN_TIMEOUT).assert().success());
    assert_eq!(token["access_token"], home.stored_field("dev/machine", "access_token").as_str());
    let mut all = home.command(&["logout", "--all"]);
    all.env("TESSERA_PROVIDER", "machine");
    let run = assert_cmd::Command::from_std(all).timeout(RUN_TIMEOUT).assert().success().stdout("");
    let messages = stderr(&run);
    assert!(messages.contains("Logged out of peer (token revoked)"), "{messages}");
    assert!(messages.contains("Logged out of broken (was not logged in)"), "{messages}");
    let status = json_of(&cmd(&home, &["status", "--json"], "").success());
    assert!(status.as_array().unwrap().iter().all(|r| r["status"] == "available"), "{status}");
    cmd(&home, &["logout", "--all", "-p", "peer"], "").code(2);
}

#[test]
fn status_exits_1_when_a_provider_is_in_error() {
    let home = home(&format!("current_context = \"dev\"\n{}", context("dev", &[STATIC_PROVIDER.into()])));
    // A token file that is not JSON: the store refuses it, status shows the row and exits 1.
    let dir = home.store_path().parent().unwrap().to_owned();
    std::fs::create_dir_all(&dir).unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::write(home.store_path(), "not json").unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(home.store_path(), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let run = cmd(&home, &["status"], "").code(1);
    let table = stdout(&run);
    assert!(table.lines().any(|l| l.split_whitespace().take(3).eq(["given", "static", "error"])), "{table}");
    assert!(stderr(&run).contains("1 provider(s) in error"), "{}", stderr(&run));
    let rows = json_of(&cmd(&home, &["status", "--json"], "").code(1));
    assert_eq!(rows[0]["status"], "error", "{rows}");
    let rows = json_of(&cmd(&home, &["providers", "list", "--json"], "").success());
    assert_eq!(rows[0]["status"], "error", "{rows}");
}

#[test]
fn config_contexts_use_context_and_a_masked_view() {
    let dev = "name = \"api\"\ntype = \"client_credentials\"\ntoken_endpoint = \"http://127.0.0.1:9/token\"\n\
               client_id = \"c\"\nclient_secret = \"literal-client-secret\"\n";
    let prod = password_provider("peer", "http://127.0.0.1:9", PASSWORD_ENV);
    let text = format!(
        "# contexts for tests\ncurrent_context = \"dev\"\n{}{}",
        context("dev", &[dev.into()]),
        context("prod", &[prod])
    );
    let home = home(&text);

    let contexts = json_of(&cmd(&home, &["config", "get-contexts", "--json"], "").success());
    assert_eq!(
        contexts,
        json!([
            { "name": "dev", "current": true, "providers": ["api"], "current_provider": null },
            { "name": "prod", "current": false, "providers": ["peer"], "current_provider": null },
        ])
    );
    let table = stdout(&cmd(&home, &["config", "get-contexts"], "").success());
    assert!(table.starts_with("CURRENT") && table.lines().nth(1).is_some_and(|l| l.starts_with("*  ")), "{table}");

    let run = cmd(&home, &["config", "use-context", "prod"], "").success().stdout("");
    assert!(stderr(&run).contains("Switched to context \"prod\""), "{}", stderr(&run));
    let after = std::fs::read_to_string(home.config_path()).unwrap();
    assert_eq!(after, text.replace("current_context = \"dev\"", "current_context = \"prod\""), "one line changed");
    let contexts = json_of(&cmd(&home, &["config", "get-contexts", "--json"], "").success());
    assert_eq!((&contexts[0]["current"], &contexts[1]["current"]), (&json!(false), &json!(true)));
    let status = json_of(&cmd(&home, &["status", "--json"], "").success());
    assert_eq!(status[0]["name"], "peer", "the new current context is used");
    // TESSERA_CONTEXT (like --context) overrides the file's current_context.
    let mut with_env = home.command(&["status", "--json"]);
    with_env.env("TESSERA_CONTEXT", "dev");
    let status = json_of(&assert_cmd::Command::from_std(with_env).timeout(RUN_TIMEOUT).assert().success());
    assert_eq!(status[0]["name"], "api", "{status}");
    let status = json_of(&cmd(&home, &["--context", "dev", "status", "--json"], "").success());
    assert_eq!(status[0]["name"], "api", "{status}");
    let run = cmd(&home, &["config", "use-context", "staging"], "").code(1);
    assert!(stderr(&run).contains("no context named \"staging\" (have: dev, prod)"), "{}", stderr(&run));

    let view = stdout(&cmd(&home, &["config", "view"], "").success());
    assert!(!view.contains("literal-client-secret"), "{view}");
    assert!(view.contains("client_secret = \"***\"") && view.contains(&format!("env:{PASSWORD_ENV}")), "{view}");
    let view = json_of(&cmd(&home, &["config", "view", "--json"], "").success());
    assert_eq!(view["contexts"][0]["auth_providers"][0]["client_secret"], "***", "{view}");
    assert_eq!(view["current_context"], "prod");
    assert!(!view.to_string().contains("alice-password"));
}

#[test]
fn completions_for_every_shell_and_missing_config() {
    let home = Home::new("");
    for shell in ["bash", "zsh", "fish"] {
        let out = stdout(&cmd(&home, &["completions", shell], "").success());
        // Dynamic scripts: on TAB they ask the binary (tests/completions.rs drives them).
        assert!(out.contains("tessera") && out.contains("COMPLETE"), "{shell}: {out}");
    }
    cmd(&home, &["completions", "tcsh"], "").code(2).stdout("");

    std::fs::remove_file(home.config_path()).unwrap();
    let run = cmd(&home, &["status"], "").code(1).stdout("");
    assert!(stderr(&run).contains("no configuration file at"), "{}", stderr(&run));
}

#[test]
fn no_secret_reaches_stderr_even_at_trace_level() {
    let idp = ReferenceIdp::start(300);
    let providers = [password_provider("peer", idp.issuer(), PASSWORD_ENV), machine_provider(idp.issuer())];
    let home = home(&format!("current_context = \"dev\"\n{}", context("dev", &providers)));
    let traced = |args: &[&str]| {
        let mut command = home.command(args);
        command.env("TESSERA_LOG", "trace");
        let assert = assert_cmd::Command::from_std(command).timeout(RUN_TIMEOUT).assert();
        stderr(&assert)
    };
    let mut logs = traced(&["login", "--all"]);
    let secrets = [
        "alice-password".to_owned(),
        "confidential-secret".to_owned(),
        home.stored_field("dev/peer", "access_token"),
        home.stored_field("dev/peer", "refresh_token"),
        home.stored_field("dev/machine", "access_token"),
    ];
    for args in [
        &["token", "-p", "peer", "--min-valid", "10m"][..],
        &["refresh", "-p", "machine", "--force"],
        &["status"],
        &["providers", "list", "--json"],
        &["config", "view"],
        &["logout", "--all"],
    ] {
        logs.push_str(&traced(args));
    }
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "tracing was on: {logs}");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret reached stderr");
    }
}

/// `clone`/`clone3` calls (threads started) in an strace log of one run.
fn threads_started(log: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(log).expect("strace wrote its log");
    text.lines().filter(|line| line.contains("clone(") || line.contains("clone3(")).count()
}

/// The files opened (`openat` calls, the dynamic loader's included) in an strace log of one run.
fn files_opened(log: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).expect("strace wrote its log");
    text.lines()
        .filter(|line| line.contains("openat("))
        .filter_map(|line| line.split('"').nth(1))
        .map(str::to_owned)
        .collect()
}

#[test]
fn token_on_a_valid_stored_token_starts_no_thread_and_a_due_one_still_refreshes() {
    // The fast path (src/fast.rs) answers before the async runtime exists: strace sees no thread
    // start. A token that must be renewed goes the full way (runtime, store thread, network).
    // And the process start is lean (build.rs, src/startup.rs): the loader opens no libgcc_s (the
    // unwinder is linked in) and no libm, and std's start-up, which reads /proc/self/maps for the
    // main thread's stack guard, does not run.
    let idp = ReferenceIdp::start(300);
    let home = home(&format!(
        "current_context = \"dev\"\n{}",
        context("dev", &[password_provider("peer", idp.issuer(), PASSWORD_ENV)])
    ));
    cmd(&home, &["login"], "").success().stdout("");
    let stored = home.stored_field("dev/peer", "access_token");
    let log = home.path().join("strace.log");
    let strace = ["strace", "-f", "-qq", "-e", "trace=clone,clone3,openat", "-o", log.to_str().unwrap()];
    for args in
        [&["token"][..], &["--context", "dev", "token", "-p", "peer", "--format", "header", "--prompt", "never"]]
    {
        let run = home.run_wrapped(&strace, args, None);
        assert!(run.success().contains(&stored), "{run:#?}");
        assert_eq!(threads_started(&log), 0, "{args:?}: {}", std::fs::read_to_string(&log).unwrap());
        let opened = files_opened(&log);
        assert!(opened.iter().any(|path| path.contains("libc.so")), "the log shows the loader's opens: {opened:?}");
        assert!(opened.iter().any(|path| path.ends_with("tokens.json")), "{opened:?}");
        // What build.rs and startup.rs remove where they apply (Linux with glibc; a C compiler
        // with GCC's static unwinder).
        let mut unwanted = Vec::new();
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            unwanted.extend(["libm.so", "/proc/self/maps"]);
        }
        if option_env!("TESSERA_STATIC_UNWINDER").is_some() {
            unwanted.push("libgcc_s");
        }
        for unwanted in unwanted {
            assert!(!opened.iter().any(|path| path.contains(unwanted)), "{args:?} opened {unwanted}: {opened:?}");
        }
    }
    assert_eq!(idp.stat("token_requests"), 1, "served from the store");

    let run = home.run_wrapped(&strace, &["token", "--min-valid", "10m"], None);
    let fresh = run.success().trim_end().to_owned();
    assert_ne!(fresh, stored);
    assert_eq!(fresh, home.stored_field("dev/peer", "access_token"));
    assert_eq!(idp.stat("refresh_grants"), 1);
    assert!(threads_started(&log) > 0, "the full path runs the store on a thread of its own");
}

#[test]
fn idp_runs_the_separate_tessera_idp_program_and_says_how_to_get_it_when_missing() {
    // Forwarded as given: the help is tessera-idp's own.
    ensure_idp_program();
    let home = Home::new("");
    let help = home.run(&["idp", "serve", "--help"]);
    for option in ["--access-ttl", "--test-endpoints", "--tls-ca-out"] {
        assert!(help.success().contains(option), "{help:#?}");
    }
    // A `tessera` installed alone: exit 127, naming the program and how to install it.
    // A hard link, not a copy: a copy's write descriptor, inherited by a child another test forks
    // meanwhile, would make exec fail with "text file busy".
    let alone = tempfile::tempdir_in(std::path::Path::new(BIN).parent().unwrap()).unwrap();
    let copy = alone.path().join("tessera");
    std::fs::hard_link(BIN, &copy).unwrap();
    let run = std::process::Command::new(&copy)
        .args(["idp", "serve"])
        .env("PATH", alone.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(127), "{stderr}");
    assert!(stderr.contains("tessera-idp") && stderr.contains("cargo install --path crates/tessera-idp"), "{stderr}");
    assert!(run.stdout.is_empty());
}
