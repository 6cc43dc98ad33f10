//! Logins that need a person, through the `tessera` binary against the reference IdP (`tessera idp
//! serve --test-endpoints`): a browser sign-in (headless Chromium on the loopback listener, and
//! paste mode driven over HTTP), an emailed code (`email_otp`), and a Cognito pool that answers a
//! password with an email-code challenge. The test plays the person: it reads the prompts on
//! stderr, the codes from the IdP's outbox, and writes answers to the binary's stdin.
//!
//! The Chromium test needs `/usr/bin/chromium` (or `$CHROMIUM`) and `npm ci` in interop/browser.

mod support;

use support::*;
use tessera_idp::demo;

/// A home whose one context `dev` holds `sections` (TOML `[[contexts.auth_providers]]` bodies).
fn home(sections: &[String]) -> Home {
    let mut config = "current_context = \"dev\"\n\n[[contexts]]\nname = \"dev\"\n".to_owned();
    for section in sections {
        config.push_str("\n[[contexts.auth_providers]]\n");
        config.push_str(section);
    }
    Home::new(&config).with_env("CAROL_PASSWORD", demo::CAROL_PASSWORD)
}

fn browser_section(idp: &ReferenceIdp, extra: &str) -> String {
    format!(
        "name = \"web\"\ntype = \"browser\"\nissuer = \"{}\"\nclient_id = \"{}\"\n{extra}",
        idp.issuer(),
        demo::BROWSER_CLIENT_ID
    )
}

fn email_section(idp: &ReferenceIdp) -> String {
    format!(
        "name = \"mail\"\ntype = \"email_otp\"\nissuer = \"{}\"\nclient_id = \"{}\"\nemail = \"{}\"\n",
        idp.issuer(),
        demo::BROWSER_CLIENT_ID,
        demo::ALICE_EMAIL
    )
}

fn cognito_section(idp: &ReferenceIdp, name: &str, extra: &str) -> String {
    format!(
        "name = \"{name}\"\ntype = \"cognito\"\nendpoint_url = \"{}\"\nclient_id = \"{}\"\n{extra}",
        idp.url("/cognito"),
        demo::COGNITO_CLIENT_ID
    )
}

/// The authorization URL the binary printed (indented on a line of its own).
#[track_caller]
fn authorization_url(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("http://") && line.contains("/authorize?"))
        .unwrap_or_else(|| panic!("no authorization URL on stderr: {stderr}"))
        .to_owned()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    url.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
}

/// `tessera token`, asserted to work at `/api/whoami` as `user`; returns the token.
#[track_caller]
fn token_works(home: &Home, idp: &ReferenceIdp, provider: &str, user: &str) -> String {
    let run = home.run(&["token", "-p", provider]);
    let token = run.success().trim().to_owned();
    assert!(!token.is_empty() && !run.stderr.contains(&token), "{run:#?}");
    let (status, body) = idp.whoami(&token);
    assert_eq!((status, body["sub"].as_str()), (200, Some(user)), "{body}");
    token
}

#[test]
fn browser_login_with_chromium_on_the_loopback_listener() {
    let idp = ReferenceIdp::start(60);
    let home = home(&[browser_section(&idp, "login_timeout = 120\n")]);

    let mut login = Interactive::start(&home, &["login", "-p", "web", "--prompt", "always", "--no-browser"]);
    let stderr = login.wait_for("Waiting for the browser to come back", 1);
    let url = authorization_url(&stderr);
    assert!(!stderr.contains("Opening your browser"), "--no-browser opens nothing: {stderr}");
    assert!(stderr.contains("Use a browser on this machine"), "{stderr}");
    let redirect_uri = query_param(&url, "redirect_uri").expect("a redirect_uri");
    assert!(redirect_uri.starts_with("http://127.0.0.1:") && redirect_uri.ends_with("/callback"), "{redirect_uri}");
    assert_eq!(query_param(&url, "scope").as_deref(), Some("openid"), "the default scope");
    assert_eq!(query_param(&url, "code_challenge_method").as_deref(), Some("S256"));

    let signed_in = chromium_sign_in(&url, demo::ALICE_USERNAME, demo::ALICE_PASSWORD);
    assert_eq!(signed_in["message"], "Signed in to dev/web. You can close this tab.", "{signed_in}");
    let run = login.finish();
    assert_eq!(run.success(), "", "stdout carries data only: {run:#?}");
    assert!(run.stderr.contains("Logged in to web (dev)"), "{run:#?}");

    let stored = home.stored("dev/web").expect("tokens stored");
    assert!(stored["id_token"].is_string() && stored["refresh_token"].is_string(), "{stored}");
    token_works(&home, &idp, "web", "alice");
    assert_eq!(idp.stat("authorization_code_grants"), 1);
    // Refreshes need nobody: no prompt mode, no stdin.
    let refreshed = home.run(&["refresh", "-p", "web", "--force", "--prompt", "never"]);
    assert!(refreshed.failure(0).contains("Token for web is fresh"), "{refreshed:#?}");
    token_works(&home, &idp, "web", "alice");
}

#[test]
fn browser_login_in_paste_mode_reads_the_final_url_from_stdin() {
    let idp = ReferenceIdp::start(60);
    // A registered loopback redirect where nothing listens: the person copies the address the
    // browser could not load and pastes it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let fixed = format!("http://127.0.0.1:{port}/callback");
    let home = home(&[browser_section(
        &idp,
        &format!("redirect_uri = \"{fixed}\"\nauthorization_params = {{ login_hint = \"alice\" }}\n"),
    )])
    .with_env("TESSERA_NO_BROWSER", "1");

    let mut login = Interactive::start(&home, &["login", "-p", "web", "--prompt", "always"]);
    let stderr = login.wait_for("Then paste here", 1);
    let url = authorization_url(&stderr);
    assert_eq!(query_param(&url, "redirect_uri").as_deref(), Some(fixed.as_str()));
    assert_eq!(query_param(&url, "login_hint").as_deref(), Some("alice"), "authorization_params are sent");
    assert!(!stderr.contains("Use a browser on this machine"), "paste mode: any browser will do: {stderr}");

    // The person: the login page, the form posted, the redirect's Location is the URL to paste.
    let callback = sign_in_as_alice(&idp, &url);
    assert!(callback.starts_with(&format!("{fixed}?")) && callback.contains("code="), "{callback}");
    login.answer(&callback);
    let run = login.finish();
    assert_eq!(run.success(), "", "{run:#?}");
    let code = query_param(&callback, "code").expect("a code");
    assert!(run.stderr.contains("Logged in to web (dev)") && !run.stderr.contains(&code), "{run:#?}");
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(), "paste mode never listened");
    token_works(&home, &idp, "web", "alice");
}

#[test]
fn no_browser_from_the_environment_prints_the_url_and_the_login_times_out() {
    // No server: the browser never comes back, the listener gives up after login_timeout.
    let section = "name = \"web\"\ntype = \"browser\"\ntoken_endpoint = \"http://127.0.0.1:9/token\"\n\
                   authorization_url = \"http://127.0.0.1:9/authorize\"\nclient_id = \"cli\"\nscope = \"api\"\n\
                   redirect_port = 0\nredirect_path = \"/cb\"\nlogin_timeout = 1\n";
    let home = home(&[section.to_owned()]).with_env("TESSERA_NO_BROWSER", "1");
    let run = home.run(&["login", "--prompt", "always"]);
    let stderr = run.failure(1);
    let url = authorization_url(stderr);
    assert!(url.starts_with("http://127.0.0.1:9/authorize?"), "{url}");
    assert!(query_param(&url, "redirect_uri").unwrap().ends_with("/cb"), "redirect_path is used: {url}");
    assert!(!stderr.contains("Opening your browser"), "{stderr}");
    assert!(stderr.contains("login to web failed") && stderr.contains("no browser came back"), "{stderr}");
    assert_eq!(run.stdout, "");
}

#[test]
fn email_otp_login_retries_a_wrong_code_then_refreshes_silently() {
    let idp = ReferenceIdp::start(60);
    let home = home(&[email_section(&idp)]);

    let mut login = Interactive::start(&home, &["login", "-p", "mail", "--prompt", "always"]);
    let stderr = login.wait_for("Enter the email code", 1);
    assert!(stderr.contains("sent to a***@example.com for dev/mail"), "{stderr}");
    let codes = idp.outbox_codes(demo::ALICE_EMAIL);
    let [code] = &codes[..] else { panic!("one mail: {codes:?}") };
    // A wrong code (the right one with its first digit changed): asked again, no new mail.
    let wrong: String =
        std::iter::once(if code.starts_with('1') { '2' } else { '1' }).chain(code.chars().skip(1)).collect();
    login.answer(&wrong);
    let stderr = login.wait_for("Enter the email code", 2);
    assert!(stderr.contains("That code was refused") && stderr.contains("(attempt 2)"), "{stderr}");
    assert_eq!(idp.outbox_codes(demo::ALICE_EMAIL).len(), 1, "the same challenge: no second mail");
    login.answer(code);
    let run = login.finish();
    assert_eq!(run.success(), "", "{run:#?}");
    assert!(run.stderr.contains("Logged in to mail (dev)") && !run.stderr.contains(code.as_str()), "{run:#?}");

    let first = token_works(&home, &idp, "mail", "alice");
    let refreshed = home.run(&["refresh", "-p", "mail", "--force"]);
    let stderr = refreshed.failure(0);
    assert!(!stderr.contains("Enter the") && stderr.contains("Token for mail is fresh"), "silent: {refreshed:#?}");
    assert_eq!(idp.outbox_codes(demo::ALICE_EMAIL).len(), 1, "a refresh mails nothing");
    let second = token_works(&home, &idp, "mail", "alice");
    assert_ne!(first, second);
}

#[test]
fn cognito_password_login_answers_the_emailed_code_then_logout_revokes() {
    let idp = ReferenceIdp::start(60);
    let home = home(&[cognito_section(
        &idp,
        "pool",
        &format!("username = \"{}\"\npassword = \"env:CAROL_PASSWORD\"\n", demo::CAROL_USERNAME),
    )]);

    let mut login = Interactive::start(&home, &["login", "-p", "pool", "--prompt", "always"]);
    let stderr = login.wait_for("Enter the email code", 1);
    assert!(stderr.contains("for dev/pool"), "{stderr}");
    let codes = idp.outbox_codes(demo::CAROL_EMAIL);
    let code = codes.last().expect("a code mailed to carol");
    login.answer(code);
    let run = login.finish();
    assert_eq!(run.success(), "", "{run:#?}");
    assert!(run.stderr.contains("Logged in to pool (dev)"), "{run:#?}");

    let token = token_works(&home, &idp, "pool", "carol");
    let logout = home.run(&["logout", "-p", "pool"]);
    assert!(logout.failure(0).contains("Logged out of pool (token revoked)"), "{logout:#?}");
    assert_eq!(idp.whoami(&token).0, 401, "RevokeToken invalidated the access token");
    assert!(home.stored("dev/pool").is_none());
}

#[test]
fn without_a_person_every_interactive_type_exits_4_naming_the_command() {
    let idp = ReferenceIdp::start(60);
    let home = home(&[
        browser_section(&idp, ""),
        email_section(&idp),
        cognito_section(&idp, "pool", "username = \"carol\"\npassword = \"env:CAROL_PASSWORD\"\n"),
        cognito_section(&idp, "custom", "username = \"alice\"\nauth_flow = \"custom\"\n"),
    ]);
    for provider in ["web", "mail", "pool", "custom"] {
        // `--prompt auto` with pipes, and `--prompt never`.
        for prompt in ["auto", "never"] {
            let run = home.run(&["login", "-p", provider, "--prompt", prompt]);
            let stderr = run.failure(4);
            assert!(
                stderr.contains(&format!("hint: run 'tessera login --provider {provider}' in a terminal"))
                    && stderr.contains("--prompt always"),
                "{provider}: {run:#?}"
            );
            assert_eq!(run.stdout, "");
        }
        assert!(home.stored(&format!("dev/{provider}")).is_none());
    }
    // Only the Cognito password login went to the server (its pool then asked for a code, and nobody
    // could answer); the browser and email logins sent nothing, so no code was mailed to alice.
    assert!(idp.outbox_codes(demo::ALICE_EMAIL).is_empty());
    assert_eq!(idp.stat("authorize_requests"), 0);
    // `token` without a stored token: the same exit code and hint.
    let run = home.run(&["token", "-p", "mail"]);
    assert!(run.failure(4).contains("run 'tessera login --provider mail' in a terminal"), "{run:#?}");

    // Listed as what they are.
    let list = home.run(&["providers", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(list.success()).expect("JSON");
    let descriptions: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["description"].as_str().unwrap()).collect();
    assert_eq!(
        descriptions,
        [
            format!("browser sign-in for {} at {}", demo::BROWSER_CLIENT_ID, idp.issuer()),
            format!("emailed code for {} at {}", demo::ALICE_EMAIL, idp.issuer()),
            format!("Cognito user carol at {}", idp.url("/cognito")),
            format!("Cognito user alice at {}", idp.url("/cognito")),
        ],
        "{rows}"
    );
}

#[test]
fn token_logs_in_again_with_a_code_when_the_refresh_token_is_gone_and_someone_can_answer() {
    let idp = ReferenceIdp::start(2);
    let home = home(&[email_section(&idp)]);
    let mut login = Interactive::start(&home, &["login", "-p", "mail", "--prompt", "always"]);
    login.wait_for("Enter the email code", 1);
    login.answer(idp.outbox_codes(demo::ALICE_EMAIL).last().expect("a code"));
    login.finish().success();

    idp.control("/_test/revoke_user", serde_json::json!({"username": demo::ALICE_USERNAME}));
    home.sleep_past_expiry("dev/mail");
    // Nobody to ask: exit 4 naming the command, and no code mailed.
    let run = home.run(&["token", "-p", "mail"]);
    assert!(run.failure(4).contains("run 'tessera login --provider mail' in a terminal"), "{run:#?}");
    assert_eq!(idp.outbox_codes(demo::ALICE_EMAIL).len(), 1);

    // Someone to ask: the code prompt on stderr, the new token alone on stdout.
    let mut again = Interactive::start(&home, &["token", "-p", "mail", "--prompt", "always"]);
    again.wait_for("Enter the email code", 1);
    let codes = idp.outbox_codes(demo::ALICE_EMAIL);
    assert_eq!(codes.len(), 2, "a second login mailed a new code");
    again.answer(&codes[1]);
    let run = again.finish();
    let fresh = home.stored_field("dev/mail", "access_token");
    assert_eq!(run.success(), format!("{fresh}\n"), "stdout is the token alone: {run:#?}");
    assert_eq!(idp.whoami(&fresh).0, 200);
}
