//! Interactive logins as a person sees them on a real terminal (tmux, `capture-pane`), and the same
//! logins' plain-text form when stderr is a pipe, against the reference IdP (`tessera idp serve
//! --test-endpoints`, fast device polling).
//!
//! Checked: the device-code screen fits 80×24 with the code and URL on its last line (the QR code
//! is compact, left out with a note when the terminal is too small, and never drawn with
//! `--no-qr`/`TESSERA_NO_QR`); an expired or denied code is told in words (no protocol text), and
//! `slow_down` only slows the polling; a browser sign-in counts down its `login_timeout`; an
//! empty answer to a code prompt is asked again; a password the configuration does not give is
//! asked for without echo on a terminal, and without one the login fails at once.

mod support;

use std::time::{Duration, Instant};

use support::*;
use tessera_idp::demo;

/// Characters of the QR code's half blocks.
const QR_BLOCKS: [char; 3] = ['█', '▀', '▄'];

/// The reference IdP polling every second.
fn idp(extra: &[&str]) -> ReferenceIdp {
    let mut args = vec!["--device-poll-interval", "1"];
    args.extend_from_slice(extra);
    ReferenceIdp::start_with(60, &args)
}

/// A home whose one context `dev` holds `section` (a `[[contexts.auth_providers]]` body).
fn home(section: &str) -> Home {
    Home::new(&format!(
        "current_context = \"dev\"\n\n[[contexts]]\nname = \"dev\"\n\n[[contexts.auth_providers]]\n{section}"
    ))
}

/// A device-code provider `tv` at `idp`.
fn device_home(idp: &ReferenceIdp) -> Home {
    home(&format!(
        "name = \"tv\"\ntype = \"device_code\"\nissuer = \"{}\"\nclient_id = \"{}\"\n",
        idp.issuer(),
        demo::BROWSER_CLIENT_ID
    ))
}

/// The user code shown after "enter the code:".
#[track_caller]
fn user_code(text: &str) -> String {
    text.lines()
        .find_map(|line| line.split_once("enter the code:").map(|(_, code)| code.trim().to_owned()))
        .unwrap_or_else(|| panic!("no user code shown: {text}"))
}

fn approve(idp: &ReferenceIdp, code: &str) {
    idp.control("/_test/device/approve", serde_json::json!({"user_code": code, "username": demo::ALICE_USERNAME}));
}

#[test]
fn the_device_code_screen_fits_80x24_with_the_code_on_its_last_line() {
    let idp = idp(&[]);
    let home = device_home(&idp);
    let terminal = Terminal::start(&home, &["login"], 80, 24);
    terminal.wait_for("Waiting: enter");
    // A few redraws later: the screen as the person sees it while waiting.
    std::thread::sleep(Duration::from_millis(600));
    let screen = terminal.screen();
    let text = terminal.text();
    assert_eq!(screen.len(), 24, "{text}");
    let code = user_code(&text);
    let verification_uri = idp.url("/device");
    assert!(screen[0].starts_with("To sign in to dev/tv, open "), "nothing scrolled away:\n{text}");
    assert!(text.contains(QR_BLOCKS[0]), "a QR code fits 80×24:\n{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.contains(&format!("Waiting: enter {code} at {verification_uri} (")) && last.ends_with(" left)"),
        "the code and the URL are on the last line:\n{text}"
    );
    assert!(text.lines().all(|line| line.chars().count() <= 80), "{text}");

    approve(&idp, &code);
    let (exit, text) = terminal.finish();
    assert_eq!(exit, 0, "{text}");
    assert!(text.contains("Logged in to tv (dev)"), "{text}");
    assert!(!text.contains("Waiting: enter"), "the spinner line is cleared:\n{text}");
    assert!(home.stored("dev/tv").is_some());
}

#[test]
fn no_qr_code_with_no_qr_or_on_a_small_terminal() {
    let idp = idp(&[]);
    let home = device_home(&idp);
    for (args, env) in [(&["login", "--no-qr"][..], None), (&["login"][..], Some("1"))] {
        let home = match env {
            Some(value) => device_home(&idp).with_env("TESSERA_NO_QR", value),
            None => device_home(&idp),
        };
        let terminal = Terminal::start(&home, args, 80, 24);
        let text = terminal.wait_for("Waiting: enter");
        assert!(!text.contains(QR_BLOCKS), "no QR code ({args:?}, TESSERA_NO_QR={env:?}):\n{text}");
        assert!(!text.contains("QR code left out"), "asked for: no note:\n{text}");
        assert_eq!(text.lines().count(), 5, "{text}");
    }

    // 16 rows: the QR code would push the code off the screen.
    let terminal = Terminal::start(&home, &["login"], 80, 16);
    let text = terminal.wait_for("Waiting: enter");
    assert!(!text.contains(QR_BLOCKS), "{text}");
    assert!(text.contains("(QR code left out: it needs 23 terminal rows, this one has 16)"), "{text}");
    let code = user_code(&text);
    assert!(text.lines().last().unwrap().contains(&format!("Waiting: enter {code} at ")), "{text}");
    approve(&idp, &code);
    assert_eq!(terminal.finish().0, 0);
}

#[test]
fn an_expired_code_is_told_in_words_when_the_countdown_ends() {
    // Codes live 3 s: the countdown runs out on screen, then the login ends.
    let idp = idp(&["--device-code-ttl", "3"]);
    let home = device_home(&idp);
    let terminal = Terminal::start(&home, &["login", "--no-qr"], 80, 24);
    let text = terminal.wait_for("Waiting: enter");
    let code = user_code(&text);
    // The first frame may come within the code's first second (0:03): then it counts down.
    assert!(["(0:03 left)", "(0:02 left)", "(0:01 left)"].iter().any(|left| text.contains(left)), "from 3 s:\n{text}");
    terminal.wait_for("(0:01 left)");
    let (exit, text) = terminal.finish();
    assert_eq!(exit, 1, "a refused login exits 1:\n{text}");
    assert!(
        text.contains(&format!(
            "error: login to tv failed: the code {code} expired before it was approved; run 'tessera login --provider tv' again"
        )),
        "{text}"
    );
    assert!(!text.contains("expired_token") && !text.contains("HTTP 400"), "no protocol text:\n{text}");
    assert!(!text.contains("Waiting: enter"), "the countdown is cleared:\n{text}");
    assert!(home.stored("dev/tv").is_none());
}

#[test]
fn expired_and_denied_codes_are_told_in_words_without_a_terminal() {
    let idp = idp(&[]);
    let home = device_home(&idp);
    let verification_uri = idp.url("/device");

    // The server expires the code: its next poll answers expired_token.
    let mut login = Interactive::start(&home, &["login", "--prompt", "always"]);
    let code = user_code(&login.wait_for("enter the code:", 1));
    assert_eq!(idp.control("/_test/device/expire", serde_json::json!({}))["expired"], 1);
    let run = login.finish();
    let stderr = run.failure(1);
    assert!(
        stderr.contains(&format!(
            "error: login to tv failed: the code {code} expired before it was approved; run 'tessera login --provider tv' again"
        )),
        "{run:#?}"
    );
    assert!(!stderr.contains("expired_token") && !stderr.contains("HTTP 400"), "{run:#?}");
    assert!(!stderr.contains('\r') && !stderr.contains("Waiting: enter"), "no spinner on a pipe: {run:#?}");

    // The person denies it.
    let mut login = Interactive::start(&home, &["login", "--prompt", "always"]);
    let code = user_code(&login.wait_for("enter the code:", 1));
    idp.control("/_test/device/deny", serde_json::json!({"user_code": code}));
    let run = login.finish();
    let stderr = run.failure(1);
    assert!(
        stderr.contains(&format!(
            "error: login to tv failed: the sign-in was denied at {verification_uri} (code {code}); \
             run 'tessera login --provider tv' to try again"
        )),
        "{run:#?}"
    );
    assert!(!stderr.contains("access_denied") && !stderr.contains("HTTP 400"), "{run:#?}");

    // `token` logging in again says the same.
    let mut again = Interactive::start(&home, &["token", "--prompt", "always"]);
    let code = user_code(&again.wait_for("enter the code:", 1));
    idp.control("/_test/device/deny", serde_json::json!({"user_code": code}));
    let run = again.finish();
    assert!(run.failure(1).contains("the sign-in was denied at"), "{run:#?}");
    assert_eq!(run.stdout, "");
    assert!(home.stored("dev/tv").is_none());
}

#[test]
fn slow_down_only_slows_the_polling() {
    let idp = idp(&[]);
    let home = device_home(&idp).with_env("TESSERA_LOG", "tessera=debug");
    idp.control("/_test/device/slow_down", serde_json::json!({"times": 1}));
    let started = Instant::now();
    let mut login = Interactive::start(&home, &["login", "--prompt", "always"]);
    let code = user_code(&login.wait_for("enter the code:", 1));
    login.wait_for("slow_down", 1);
    approve(&idp, &code);
    let run = login.finish();
    let stderr = run.failure(0);
    assert!(stderr.contains("Logged in to tv (dev)"), "{run:#?}");
    assert!(stderr.contains("the server asked to poll less often (slow_down)"), "a debug line: {run:#?}");
    assert!(!stderr.contains("login to tv failed"), "{run:#?}");
    assert!(started.elapsed() >= Duration::from_secs(6), "the interval grew by 5 s");
    assert!(home.stored("dev/tv").is_some());
}

/// A browser provider whose server never answers: nothing comes back to the listener.
fn unreachable_browser(login_timeout: u64) -> Home {
    home(&format!(
        "name = \"web\"\ntype = \"browser\"\ntoken_endpoint = \"http://127.0.0.1:9/token\"\n\
         authorization_endpoint = \"http://127.0.0.1:9/authorize\"\nclient_id = \"cli\"\nscope = \"api\"\n\
         login_timeout = {login_timeout}\n"
    ))
    .with_env("TESSERA_NO_BROWSER", "1")
}

#[test]
fn the_browser_wait_counts_down_then_times_out_or_is_cancelled() {
    let home = unreachable_browser(3);
    let terminal = Terminal::start(&home, &["login"], 200, 24);
    let text = terminal.wait_for("Waiting for the browser sign-in…");
    let last = text.lines().last().unwrap();
    assert!(last.contains("left; press Ctrl-C to cancel") && last.contains(" 0:0"), "{text}");
    assert!(text.contains("Waiting for the browser to come back (at most 0m03s; Ctrl-C cancels)"), "{text}");
    let (exit, text) = terminal.finish();
    assert_eq!(exit, 1, "{text}");
    assert!(text.contains("login to web failed") && text.contains("no browser came back"), "{text}");
    assert!(!text.contains("press Ctrl-C to cancel"), "the countdown is cleared:\n{text}");

    // Ctrl-C ends the wait at once.
    let home = unreachable_browser(120);
    let terminal = Terminal::start(&home, &["login"], 200, 24);
    let text = terminal.wait_for("left; press Ctrl-C to cancel");
    assert!(text.contains("2:0") || text.contains("1:59"), "counts down from login_timeout:\n{text}");
    let pressed = Instant::now();
    terminal.press("C-c");
    let (exit, _) = terminal.finish();
    assert_eq!(exit, 130, "ended by SIGINT");
    assert!(pressed.elapsed() < Duration::from_secs(5));

    // Without a terminal: one plain line, no redraws.
    let run = unreachable_browser(1).run(&["login", "--prompt", "always"]);
    let stderr = run.failure(1);
    assert!(stderr.contains("Waiting for the browser to come back (at most 0m01s; Ctrl-C cancels)..."), "{run:#?}");
    assert!(!stderr.contains('\r') && !stderr.contains("press Ctrl-C to cancel"), "{run:#?}");
}

fn email_home(idp: &ReferenceIdp) -> Home {
    home(&format!(
        "name = \"mail\"\ntype = \"email_otp\"\nissuer = \"{}\"\nclient_id = \"{}\"\nemail = \"{}\"\n",
        idp.issuer(),
        demo::BROWSER_CLIENT_ID,
        demo::ALICE_EMAIL
    ))
}

#[test]
fn an_empty_code_is_asked_again() {
    let idp = idp(&[]);
    let home = email_home(&idp);
    // Wide enough that the question asked again stays on one line.
    let terminal = Terminal::start(&home, &["login"], 120, 24);
    terminal.wait_for("Enter the email code");
    terminal.press("Enter");
    terminal.wait_for("Nothing was entered (Ctrl-C cancels). Enter the email code sent to a***@example.com");
    let codes = idp.outbox_codes(demo::ALICE_EMAIL);
    let [code] = &codes[..] else { panic!("one mail: {codes:?}") };
    terminal.type_text(code);
    terminal.press("Enter");
    let (exit, text) = terminal.finish();
    assert_eq!(exit, 0, "{text}");
    assert!(text.contains("Logged in to mail (dev)"), "{text}");
    assert_eq!(idp.outbox_codes(demo::ALICE_EMAIL).len(), 1, "the same challenge: no second mail");

    // Three empty answers: a clear error, not a hang.
    let terminal = Terminal::start(&home, &["login", "-p", "mail"], 120, 24);
    terminal.wait_for("Enter the email code");
    for _ in 0..3 {
        terminal.press("Enter");
    }
    let (exit, text) = terminal.finish();
    assert_eq!(exit, 1, "{text}");
    assert!(text.contains("no answer was entered for dev/mail (3 empty answers)"), "{text}");
}

/// alice's password provider at `idp`, without a password in the configuration.
fn passwordless_home(idp: &ReferenceIdp) -> Home {
    home(&format!(
        "name = \"peer\"\ntype = \"password\"\nissuer = \"{}\"\nclient_id = \"confidential-client\"\n\
         client_secret = \"env:TESSERA_TEST_CLIENT_SECRET\"\nusername = \"alice\"\n",
        idp.issuer()
    ))
    .with_env("TESSERA_TEST_CLIENT_SECRET", "confidential-secret")
}

#[test]
fn a_missing_password_is_asked_for_without_echo_on_a_terminal() {
    let idp = idp(&[]);
    let home = passwordless_home(&idp);
    let terminal = Terminal::start(&home, &["login"], 100, 24);
    let text = terminal.wait_for("input is hidden):");
    assert!(text.contains(&format!("Password for alice at {} (dev/peer; input is hidden):", idp.issuer())), "{text}");
    // An empty answer is asked again; then the password, typed and not shown.
    terminal.press("Enter");
    terminal.wait_for("Nothing was entered (Ctrl-C cancels). Password for alice");
    terminal.type_text(demo::ALICE_PASSWORD);
    std::thread::sleep(Duration::from_millis(300));
    let typing = terminal.text();
    assert!(!typing.contains(demo::ALICE_PASSWORD), "the password is not echoed:\n{typing}");
    terminal.press("Enter");
    let (exit, text) = terminal.finish();
    assert_eq!(exit, 0, "{text}");
    assert!(text.contains("Logged in to peer (dev)"), "{text}");
    assert!(!text.contains(demo::ALICE_PASSWORD), "{text}");
    let token = home.stored_field("dev/peer", "access_token");
    assert_eq!(idp.whoami(&token).0, 200);
    assert!(terminal.echoes(), "the terminal echoes again");

    // Backspace edits the hidden answer; Ctrl-C cancels and leaves the terminal echoing.
    let terminal = Terminal::start(&home, &["logout"], 100, 24);
    assert_eq!(terminal.finish().0, 0);
    let terminal = Terminal::start(&home, &["login"], 100, 24);
    terminal.wait_for("input is hidden):");
    terminal.type_text(&format!("{}x", demo::ALICE_PASSWORD));
    terminal.press("BSpace");
    terminal.press("Enter");
    assert_eq!(terminal.finish().0, 0, "{}", terminal.text());
    let terminal = Terminal::start(&home, &["login"], 100, 24);
    terminal.wait_for("input is hidden):");
    terminal.type_text("half");
    terminal.press("C-c");
    let (exit, text) = terminal.finish();
    assert_eq!(exit, 130, "ended by SIGINT, as Ctrl-C does:\n{text}");
    assert!(terminal.echoes(), "Ctrl-C at the hidden prompt leaves the terminal echoing");
}

#[test]
fn a_missing_password_without_a_terminal_fails_at_once() {
    let idp = idp(&[]);
    let home = passwordless_home(&idp);
    // Everything else still works: the configuration loads.
    let list = home.run(&["providers", "list"]);
    assert!(list.success().contains("password grant for alice"), "{list:#?}");

    let started = Instant::now();
    let run = home.run(&["login"]);
    let stderr = run.failure(4);
    assert!(
        stderr.contains("logging in to peer needs its password, which the configuration does not give")
            && stderr.contains("run 'tessera login --provider peer' in a terminal"),
        "{run:#?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "no wait");
    let run = home.run(&["token"]);
    assert!(run.failure(4).contains("has no password in the configuration"), "{run:#?}");
    assert_eq!(idp.stat("token_requests"), 0, "nothing sent");

    // A wrong password typed: refused (exit 1), and the hint says so rather than pointing at a
    // configuration that has no password.
    let run = home.run_wrapped(&[], &["login", "--prompt", "always"], Some("not-her-password\n"));
    let stderr = run.failure(1);
    assert!(stderr.contains("the password typed was refused"), "{run:#?}");
    assert!(!stderr.contains("not set in the configuration") && !stderr.contains("not-her-password"), "{run:#?}");

    // `--prompt always` reads it from stdin (a wrapper that relays a person's answer).
    let run = home.run_wrapped(&[], &["login", "--prompt", "always"], Some(&format!("{}\n", demo::ALICE_PASSWORD)));
    assert!(run.failure(0).contains("Logged in to peer (dev)"), "{run:#?}");
    assert!(!run.stderr.contains(demo::ALICE_PASSWORD));
}

#[test]
fn an_unreadable_totp_secret_is_replaced_by_the_current_code_typed_hidden() {
    let idp = idp(&[]);
    let home = home(&format!(
        "name = \"bob\"\ntype = \"password\"\nissuer = \"{}\"\nclient_id = \"confidential-client\"\n\
         client_secret = \"env:TESSERA_TEST_CLIENT_SECRET\"\nusername = \"{}\"\npassword = \"env:BOB_PASSWORD\"\n\
         totp_secret = \"env:TESSERA_TEST_BOB_TOTP\"\n",
        idp.issuer(),
        demo::BOB_USERNAME
    ))
    .with_env("TESSERA_TEST_CLIENT_SECRET", "confidential-secret")
    .with_env("BOB_PASSWORD", demo::BOB_PASSWORD);

    // Nobody to ask: the configuration error, as before (exit 1), nothing sent.
    let run = home.run(&["login"]);
    assert!(run.failure(1).contains("environment variable TESSERA_TEST_BOB_TOTP is not set"), "{run:#?}");
    assert_eq!(idp.stat("token_requests"), 0);

    let terminal = Terminal::start(&home, &["login"], 160, 24);
    let text = terminal.wait_for("input is hidden):");
    assert!(
        text.contains(
            "Code from the authenticator app of bob for dev/bob (totp_secret: environment variable \
             TESSERA_TEST_BOB_TOTP is not set; input is hidden):"
        ),
        "{text}"
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let code = tessera::core::flow::totp_code(
        &tessera::Secret::new(demo::BOB_TOTP_SECRET),
        tessera::Timestamp::from_unix_secs(now as i64),
    )
    .unwrap();
    terminal.type_text(code.expose_secret());
    terminal.press("Enter");
    let (exit, text) = terminal.finish();
    assert_eq!(exit, 0, "{text}");
    assert!(text.contains("Logged in to bob (dev)") && !text.contains(code.expose_secret()), "{text}");
    assert_eq!(idp.stat("password_grants"), 1);
}

#[test]
fn ctrl_c_at_the_hidden_secret_prompt_leaves_the_terminal_echoing() {
    let idp = idp(&[]);
    let home = passwordless_home(&idp);
    let terminal = Terminal::start(&home, &["secret", "set", "tessera/docs-test"], 100, 24);
    terminal.wait_for("input is hidden):");
    terminal.type_text("half-typed");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!terminal.text().contains("half-typed"), "the secret is not echoed:\n{}", terminal.text());
    terminal.press("C-c");
    let (exit, text) = terminal.finish();
    assert_eq!(exit, 130, "ended by SIGINT, as Ctrl-C does:\n{text}");
    assert!(terminal.echoes(), "Ctrl-C at the hidden prompt leaves the terminal echoing");
}
