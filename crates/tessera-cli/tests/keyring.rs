//! `keyring:` secret references and `tessera secret set|delete`, against the real kernel keyring.
//!
//! Every run of the binary goes through `keyctl session <name>` (Debian package `keyutils`), which
//! joins a named session keyring: runs of one test share it, tests do not share theirs. The
//! keyutils store also links entries into the user's persistent keyring when the kernel has one,
//! so names are unique per test run and every entry is deleted at the end.
//!
//! Checked: a secret put with `secret set` (stdin, --from-env) logs in against the reference IdP
//! and the token works; a missing entry, a keyring without access (EACCES) and a malformed
//! reference each fail with their exit code and a message that says what to do; the secret never
//! appears on stdout or stderr, nor in `config view`.

#![cfg(feature = "keyring")]

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use support::*;

const CLIENT_SECRET: &str = "confidential-secret";
const PASSWORD: &str = "alice-password";

/// A name unique to this test run: `<what>-<pid>-<nanos>`.
fn unique(what: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{what}-{}-{nanos}", std::process::id())
}

/// `keyctl session <name>`: the wrapper that runs the binary in a named session keyring.
struct Keyring {
    session: String,
}

impl Keyring {
    fn new() -> Keyring {
        let found = std::process::Command::new("keyctl").arg("--version").output();
        assert!(
            found.is_ok(),
            "`keyctl` not found: install the keyutils package (apt-get install -y keyutils) to run these tests"
        );
        Keyring { session: unique("tessera-test") }
    }

    fn wrapper(&self) -> [&str; 3] {
        ["keyctl", "session", &self.session]
    }

    #[track_caller]
    fn run(&self, home: &Home, args: &[&str], stdin: Option<&str>) -> Run {
        home.run_wrapped(&self.wrapper(), args, stdin)
    }
}

/// Deletes the entries a test created (also when it fails half-way).
struct Cleanup<'a> {
    keyring: &'a Keyring,
    home: &'a Home,
    references: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for reference in &self.references {
            let _ = self.keyring.run(self.home, &["secret", "delete", reference], None);
        }
    }
}

fn config(issuer: &str, client_secret: &str, password: &str) -> String {
    format!(
        "current_context = \"dev\"\n\n[[contexts]]\nname = \"dev\"\n\n[[contexts.auth_providers]]\n\
         name = \"peer\"\ntype = \"password\"\nissuer = \"{issuer}\"\nclient_id = \"confidential-client\"\n\
         client_secret = \"{client_secret}\"\nusername = \"alice\"\npassword = \"{password}\"\nscope = \"openid api:read\"\n"
    )
}

#[track_caller]
fn assert_no_secret(run: &Run) {
    for secret in [CLIENT_SECRET, PASSWORD] {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "{secret} leaked: {run:#?}");
    }
}

#[test]
fn secrets_set_in_the_keyring_log_in_and_never_show() {
    let idp = ReferenceIdp::start(60);
    let keyring = Keyring::new();
    let account = unique("ci");
    let client_ref = format!("tessera-test/{account}");
    let password_ref = format!("tessera-test/{account}-password");
    let home = Home::new(&config(idp.issuer(), &format!("keyring:{client_ref}"), &format!("keyring:{password_ref}")))
        .with_env("TESSERA_TEST_ALICE_PASSWORD", PASSWORD);
    let _cleanup =
        Cleanup { keyring: &keyring, home: &home, references: vec![client_ref.clone(), password_ref.clone()] };

    // One line from stdin; stdout is the reference to put in the configuration, and nothing else.
    let set = keyring.run(&home, &["secret", "set", &client_ref], Some(&format!("{CLIENT_SECRET}\n")));
    assert_eq!(set.success(), format!("keyring:{client_ref}\n"), "{set:#?}");
    assert!(set.stderr.contains(&format!("client_secret = \"keyring:{client_ref}\"")), "{set:#?}");
    assert_no_secret(&set);
    // From an environment variable, `keyring:` prefix given.
    let set = keyring.run(
        &home,
        &["secret", "set", &format!("keyring:{password_ref}"), "--from-env", "TESSERA_TEST_ALICE_PASSWORD"],
        None,
    );
    assert_eq!(set.success(), format!("keyring:{password_ref}\n"), "{set:#?}");
    assert_no_secret(&set);

    // The login reads both secrets from the keyring; the token it stores is active at the IdP.
    let login = keyring.run(&home, &["login"], None);
    assert_eq!(login.success(), "", "{login:#?}");
    assert!(login.stderr.contains("Logged in to peer (dev)"), "{login:#?}");
    assert_no_secret(&login);
    assert_eq!(idp.stat("password_grants"), 1);
    let token = keyring.run(&home, &["token"], None);
    let access_token = token.success().trim_end().to_owned();
    assert_eq!(access_token, home.stored_field("dev/peer", "access_token"));
    assert!(idp.active(&access_token), "the token works at the IdP");

    // `config view` shows the references, never the values; the file still holds the references.
    let view = keyring.run(&home, &["config", "view"], None);
    let view_text = view.success();
    assert!(view_text.contains(&format!("client_secret = \"keyring:{client_ref}\"")), "{view:#?}");
    assert!(view_text.contains(&format!("password = \"keyring:{password_ref}\"")), "{view:#?}");
    assert_no_secret(&view);
    let file = std::fs::read_to_string(home.config_path()).unwrap();
    assert!(!file.contains(CLIENT_SECRET) && !file.contains(PASSWORD), "{file}");
    let status = keyring.run(&home, &["status", "--json"], None);
    status.success();
    assert_no_secret(&status);

    // Deleted: the next login fails (exit 1) saying how to put it back; a second delete finds nothing.
    let delete = keyring.run(&home, &["secret", "delete", &client_ref], None);
    delete.success();
    assert!(delete.stderr.contains(&format!("Deleted keyring:{client_ref}")), "{delete:#?}");
    let again = keyring.run(&home, &["secret", "delete", &client_ref], None);
    assert!(again.failure(1).contains("no secret stored"), "{again:#?}");
    let login = keyring.run(&home, &["login"], None);
    let stderr = login.failure(1);
    assert!(
        stderr.contains("provider \"peer\", field \"client_secret\"")
            && stderr.contains(&format!("no secret stored at keyring:{client_ref}"))
            && stderr.contains(&format!("tessera secret set {client_ref}")),
        "{login:#?}"
    );
    assert_no_secret(&login);
    assert_eq!(idp.stat("password_grants"), 1, "nothing sent without the secret");
}

#[test]
fn a_missing_entry_fails_naming_the_place_and_the_fix() {
    let keyring = Keyring::new();
    let reference = format!("tessera-test/{}", unique("never-set"));
    // No server: the secret is read before anything would be sent.
    let home = Home::new(&config("http://127.0.0.1:9", &format!("keyring:{reference}"), "env:UNUSED"));
    let run = keyring.run(&home, &["token"], None);
    let stderr = run.failure(1);
    assert!(stderr.contains(&home.config_path().display().to_string()), "names the file: {run:#?}");
    assert!(
        stderr.contains("context \"dev\", provider \"peer\", field \"client_secret\"")
            && stderr.contains(&format!("no secret stored at keyring:{reference}"))
            && stderr.contains(&format!("tessera secret set {reference}")),
        "{run:#?}"
    );
    assert_eq!(run.stdout, "", "{run:#?}");
}

#[test]
fn a_keyring_without_access_says_what_to_do() {
    let keyring = Keyring::new();
    let reference = format!("tessera-test/{}", unique("locked"));
    let home = Home::new(&config("http://127.0.0.1:9", &format!("keyring:{reference}"), "env:UNUSED"));
    // A session keyring whose permissions deny everything: the kernel answers EACCES.
    let locked = ["keyctl", "session", &keyring.session, "sh", "-c", "keyctl setperm @s 0 && exec \"$0\" \"$@\""];
    let set = home.run_wrapped(&locked, &["secret", "set", &reference], Some(&format!("{CLIENT_SECRET}\n")));
    let login = home.run_wrapped(&locked, &["login"], None);
    for (run, code) in [(&set, 1), (&login, 1)] {
        let stderr = run.failure(code);
        assert!(
            stderr.contains("the kernel keyring is not accessible")
                && stderr.contains("keyctl session -")
                && stderr.contains("use an env: or file: reference instead"),
            "{run:#?}"
        );
        assert_no_secret(run);
    }
    assert!(login.stderr.contains("field \"client_secret\""), "{login:#?}");
}

#[test]
fn malformed_references_are_usage_or_configuration_errors() {
    let keyring = Keyring::new();
    let home = Home::new(&config("http://127.0.0.1:9", "keyring:no-account", "env:UNUSED"));
    // In the configuration: refused when the file is loaded, naming the place.
    let run = keyring.run(&home, &["status"], None);
    let stderr = run.failure(1);
    assert!(
        stderr.contains("provider \"peer\", field \"client_secret\"")
            && stderr.contains("expected keyring:<service>/<account>"),
        "{run:#?}"
    );
    // On the command line: a usage error (exit 2); nothing is read from stdin or stored.
    for reference in ["no-account", "a@b/c", "/x"] {
        let run = keyring.run(&home, &["secret", "set", reference], Some(&format!("{CLIENT_SECRET}\n")));
        run.failure(2);
        assert_no_secret(&run);
    }
    let run =
        keyring.run(&home, &["secret", "set", "tessera-test/x", "--from-env", "TESSERA_TEST_UNSET_VARIABLE"], None);
    assert!(run.failure(2).contains("TESSERA_TEST_UNSET_VARIABLE is not set"), "{run:#?}");
}
