//! The CLI's HTTP settings end to end: a private CA given only by `ca_file` (and by `SSL_CERT_FILE`),
//! a logging proxy given by `proxy` (and by `HTTPS_PROXY`), `no_proxy`, `allow_insecure_http`, and
//! a proxy password that no output shows.

mod support;

use support::{Home, ReferenceIdp};
use tessera_idp::test_proxy::{ProxiedRequest, TestProxy};

/// A home whose provider `peer` (context `dev`) is alice at `issuer`, plus `extra` lines. The test
/// support sets `NO_PROXY=127.0.0.1,localhost` on every run; cleared here, so that a proxy applies.
fn home(issuer: &str, extra: &str) -> Home {
    Home::new(&format!(
        "[[contexts]]\nname = \"dev\"\n\n[[contexts.auth_providers]]\nname = \"peer\"\ntype = \"password\"\n\
         issuer = \"{issuer}\"\nclient_id = \"confidential-client\"\nclient_secret = \"confidential-secret\"\n\
         username = \"alice\"\npassword = \"alice-password\"\n{extra}"
    ))
    .with_env("NO_PROXY", "")
}

/// A proxy running on a runtime of its own while the test runs the binary.
struct Proxy {
    proxy: TestProxy,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    fn start(auth: Option<String>) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let proxy = runtime.block_on(TestProxy::start_with_auth(auth)).unwrap();
        Proxy { proxy, _runtime: runtime }
    }

    fn targets(&self) -> Vec<String> {
        self.proxy.log().iter().map(|e: &ProxiedRequest| format!("{} {}", e.method, e.target)).collect()
    }
}

fn authority(issuer: &str) -> &str {
    issuer.trim_start_matches("https://")
}

fn ca_path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("ca.pem")
}

#[test]
fn a_private_ca_is_trusted_from_ca_file_or_ssl_cert_file_and_not_from_requests_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let idp = ReferenceIdp::start_tls(300, &ca_path(&dir));
    let ca = ca_path(&dir).display().to_string();

    let run = home(idp.issuer(), "").run(&["token", "--format", "raw"]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert!(run.stderr.to_lowercase().contains("certificate"), "{run:#?}");

    let token = home(idp.issuer(), &format!("ca_file = \"{ca}\"\n")).run(&["token", "--format", "raw"]);
    let (status, _) = idp.whoami(token.success().trim());
    assert_eq!(status, 200);
    let only = home(idp.issuer(), &format!("ca_file = \"{ca}\"\nca_file_only = true\n"));
    only.run(&["token", "--format", "raw"]).success();

    // The standard variable: it replaces the system's roots, as with OpenSSL.
    home(idp.issuer(), "").with_env("SSL_CERT_FILE", &ca).run(&["token", "--format", "raw"]).success();
    // requests' own variable is not read (it belongs to another program).
    let run = home(idp.issuer(), "").with_env("REQUESTS_CA_BUNDLE", &ca).run(&["token", "--format", "raw"]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert_eq!(idp.stat("token_requests"), 3);
}

#[test]
fn token_requests_go_through_the_proxy_of_the_section_or_of_https_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let idp = ReferenceIdp::start_tls(300, &ca_path(&dir));
    let ca = ca_path(&dir).display().to_string();
    let tunnel = format!("CONNECT {}", authority(idp.issuer()));

    let proxy = Proxy::start(None);
    let section = format!("ca_file = \"{ca}\"\nproxy = \"{}\"\n", proxy.proxy.url());
    home(idp.issuer(), &section).run(&["token", "--format", "raw"]).success();
    let seen = proxy.targets();
    assert!(!seen.is_empty() && seen.iter().all(|t| *t == tunnel), "{seen:?}");

    let proxy = Proxy::start(None);
    let with_env = home(idp.issuer(), &format!("ca_file = \"{ca}\"\n")).with_env("HTTPS_PROXY", &proxy.proxy.url());
    with_env.run(&["token", "--format", "raw"]).success();
    assert!(proxy.targets().contains(&tunnel), "{:?}", proxy.targets());

    // NO_PROXY, or `no_proxy` in the section, sends it directly.
    let proxy = Proxy::start(None);
    home(idp.issuer(), &format!("ca_file = \"{ca}\"\n"))
        .with_env("HTTPS_PROXY", &proxy.proxy.url())
        .with_env("NO_PROXY", "127.0.0.1")
        .run(&["token", "--format", "raw"])
        .success();
    home(idp.issuer(), &format!("ca_file = \"{ca}\"\nno_proxy = \"127.0.0.1\"\n"))
        .with_env("HTTPS_PROXY", &proxy.proxy.url())
        .run(&["token", "--format", "raw"])
        .success();
    assert_eq!(proxy.targets(), Vec::<String>::new());
    assert_eq!(idp.stat("token_requests"), 4);
}

#[test]
fn the_proxy_password_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let idp = ReferenceIdp::start_tls(300, &ca_path(&dir));
    let ca = ca_path(&dir).display().to_string();
    let proxy = Proxy::start(Some("Basic bWU6cmlnaHQtcGFzc3dvcmQ=".into())); // me:right-password
    let url = |password: &str| format!("http://me:{password}@{}", proxy.proxy.addr());

    home(idp.issuer(), &format!("ca_file = \"{ca}\"\nproxy = \"{}\"\n", url("right-password")))
        .run(&["token", "--format", "raw"])
        .success();
    let wrong = home(idp.issuer(), &format!("ca_file = \"{ca}\"\nproxy = \"{}\"\n", url("S3cr3t-wrong-pw")));
    let run = wrong.run(&["token", "--format", "raw"]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert!(run.stderr.contains("407") || run.stderr.to_lowercase().contains("proxy"), "{run:#?}");
    let wrong = wrong.with_env("TESSERA_LOG", "trace");
    for args in [&["config", "view"][..], &["status"], &["token", "--format", "json"], &["login"]] {
        let run = wrong.run(args);
        let shown = format!("{}{}", run.stdout, run.stderr);
        assert!(!shown.contains("S3cr3t-wrong-pw"), "{args:?}: {shown}");
    }
    let view = wrong.run(&["config", "view"]);
    assert!(view.success().contains(&url("***")), "{view:#?}");
    assert_eq!(idp.stat("token_requests"), 1);
}

#[test]
fn allow_insecure_http_lets_plain_http_to_a_non_loopback_name_through() {
    // `idp.test` resolves nowhere: the test proxy sends every host to 127.0.0.1 on the named port.
    let idp = ReferenceIdp::start(300);
    let port = idp.issuer().rsplit(':').next().unwrap().to_owned();
    let proxy = Proxy::start(None);
    let section = |allow: &str| {
        format!(
            "[[contexts]]\nname = \"dev\"\n\n[[contexts.auth_providers]]\nname = \"m\"\ntype = \"client_credentials\"\n\
             token_endpoint = \"http://idp.test:{port}/token\"\nclient_id = \"confidential-client\"\n\
             client_secret = \"confidential-secret\"\nproxy = \"{}\"\n{allow}",
            proxy.proxy.url()
        )
    };
    let run = Home::new(&section("")).run(&["token", "--format", "raw"]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert!(run.stderr.contains("allow_insecure_http"), "{run:#?}");
    assert_eq!(proxy.targets(), Vec::<String>::new(), "refused before anything was sent");

    let token = Home::new(&section("allow_insecure_http = true\n")).run(&["token", "--format", "raw"]);
    assert_eq!(idp.whoami(token.success().trim()).0, 200);
    assert_eq!(proxy.targets(), [format!("POST http://idp.test:{port}/token")]);
}
