//! One provider description behind every front end: the same invalid provider gets the same typed
//! error from the TOML configuration and the JSON API (python/tests/test_provider_description.py
//! checks the Python constructors against the same text), old spellings still load with a
//! deprecation warning, and the configuration reference is the one generated from the model.

use std::sync::{Arc, Mutex};

use tessera::Error;
use tessera::config::Config;
use tessera::core::json::JsonEngine;
use tessera::core::provider_spec::{ProviderKind, fields_reference_markdown};

/// The invalid providers, as (TOML fields, JSON object, the error's field-and-problem suffix).
fn invalid_providers() -> Vec<(&'static str, serde_json::Value, &'static str)> {
    vec![
        (
            "type = \"password\"\nissuer = \"https://idp.example\"\nclient_id = \"cli\"\n\
             client_auth = \"client_secret_post\"\nusername = \"alice\"\npassword = \"pw\"\n",
            serde_json::json!({"type": "password", "issuer": "https://idp.example", "client_id": "cli",
                "client_auth": "client_secret_post", "username": "alice", "password": "pw"}),
            "field \"client_secret\": is required with client_auth \"client_secret_post\"",
        ),
        (
            "type = \"client_credentials\"\nissuer = \"https://idp.example\"\nclient_id = \"cli\"\n\
             client_secret = \"s\"\nrevocation_endpoint = \"https://idp.example/revoke\"\n",
            serde_json::json!({"type": "client_credentials", "issuer": "https://idp.example", "client_id": "cli",
                "client_secret": "s", "revocation_endpoint": "https://idp.example/revoke"}),
            "field \"revocation_endpoint\": goes with token_endpoint; with issuer it is discovered",
        ),
        (
            "type = \"browser\"\nissuer = \"https://idp.example\"\nclient_id = \"cli\"\n\
             authorization_params = { state = \"mine\" }\n",
            serde_json::json!({"type": "browser", "issuer": "https://idp.example", "client_id": "cli",
                "authorization_params": {"state": "mine"}}),
            "field \"authorization_params.state\": is set by tessera for every browser login and cannot be given",
        ),
        (
            "type = \"client_credentials\"\ntoken_endpoint = \"https://idp.example/token\"\nclient_id = \"cli\"\n\
             client_secret = \"s\"\nca_file_only = true\nproxy = \"http://me:pw@proxy:3128\"\n",
            serde_json::json!({"type": "client_credentials", "token_endpoint": "https://idp.example/token",
                "client_id": "cli", "client_secret": "s", "ca_file_only": true, "proxy": "http://me:pw@proxy:3128"}),
            "field \"ca_file_only\": needs ca_file (the roots to trust instead of the system's)",
        ),
    ]
}

fn toml_file(provider_fields: &str) -> String {
    format!("[[contexts]]\nname = \"dev\"\n[[contexts.auth_providers]]\nname = \"peer\"\n{provider_fields}")
}

#[test]
fn the_same_invalid_provider_gets_the_same_error_from_toml_and_json() {
    for (toml_fields, json, expected) in invalid_providers() {
        let from_toml = Config::from_toml_str(&toml_file(toml_fields), "/etc/tessera.toml").unwrap_err();
        let from_json = JsonEngine::new().register("peer", &json.to_string()).unwrap_err();
        for error in [&from_toml, &from_json] {
            assert!(matches!(error, Error::Configuration { .. }), "{error:?}");
            assert!(error.to_string().ends_with(expected), "{error} should end with {expected}");
        }
        assert!(from_toml.to_string().contains("/etc/tessera.toml: context \"dev\", provider \"peer\", field"));
        assert!(from_json.to_string().contains("provider \"peer\", field"));
        // The errors name the field, never a value from the description.
        for error in [&from_toml, &from_json] {
            assert!(!error.to_string().contains("\"pw\"") && !error.to_string().contains("mine"), "{error}");
        }
    }
}

/// Captures what tessera logs (tracing `warn`) while `f` runs.
fn logged(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn old_spellings_still_load_and_log_the_new_name() {
    let old = "provider = \"email_otp\"\nclient_id = \"app\"\ntoken_url = \"https://idp.example/token\"\n\
               otp_start_url = \"https://idp.example/otp/start\"\notp_verify_url = \"https://idp.example/otp/verify\"\n\
               email = \"a@example.com\"\nmax_code_attempts = 2\n";
    let new = "type = \"email_otp\"\nclient_id = \"app\"\ntoken_endpoint = \"https://idp.example/token\"\n\
               otp_start_endpoint = \"https://idp.example/otp/start\"\notp_verify_endpoint = \"https://idp.example/otp/verify\"\n\
               email = \"a@example.com\"\nmax_code_attempts = 2\n";
    let mut built = Vec::new();
    let log = logged(|| {
        for text in [old, new] {
            let config = Config::from_toml_str(&toml_file(text), "c.toml").unwrap();
            let entry = config.context(None).unwrap().provider(None).unwrap().clone();
            assert_eq!(entry.kind(), Some(ProviderKind::EmailOtp));
            built.push(format!("{:?}", entry.build("c.toml", "dev").unwrap()));
        }
    });
    assert_eq!(built[0], built[1], "the old and the new spelling describe the same provider");
    for (old, new) in [("provider", "type"), ("token_url", "token_endpoint"), ("otp_start_url", "otp_start_endpoint")] {
        assert!(
            log.contains(&format!("c.toml: context \"dev\", provider \"peer\": {old} is deprecated: use {new}")),
            "{log}"
        );
    }
    assert_eq!(log.matches("is deprecated").count(), 4, "the new spelling logs nothing: {log}");

    // The JSON API's first shape (a nested grant, `token_url`) loads too and reports its old spellings.
    let deprecations = JsonEngine::new()
        .register(
            "k",
            r#"{"client_id":"c","token_url":"https://idp.example/token","grant":{"type":"client_credentials"},"client_secret":"s"}"#,
        )
        .unwrap();
    let old: Vec<&str> = deprecations.iter().map(|d| d.old).collect();
    assert!(old.contains(&"token_url") && old.contains(&"a nested \"grant\" object"), "{old:?}");
}

/// docs/configuration.md carries the table generated from the model; regenerate it with
/// `TESSERA_BLESS=1 cargo test -p tessera --test provider_description`.
#[test]
fn the_configuration_reference_is_generated_from_the_model() {
    const BEGIN: &str = "<!-- BEGIN provider fields: generated from tessera_core::provider_spec::FIELDS -->\n";
    const END: &str = "<!-- END provider fields -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let start = doc.find(BEGIN).expect("the begin marker") + BEGIN.len();
    let end = doc[start..].find(END).expect("the end marker") + start;
    let generated = fields_reference_markdown();
    if doc[start..end] != generated && std::env::var_os("TESSERA_BLESS").is_some() {
        std::fs::write(path, format!("{}{generated}{}", &doc[..start], &doc[end..])).unwrap();
        return;
    }
    assert_eq!(doc[start..end], generated, "docs/configuration.md is stale: run with TESSERA_BLESS=1");
}
