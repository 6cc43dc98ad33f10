//! The `AuthClient` facade and the provider `Registry`, end to end against the in-process
//! reference IdP: every method in its one/all forms, a failing provider among good ones, and a
//! provider type registered from outside the crate, configured in TOML, listed and logged in.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tessera::clock::{Clock, SystemClock};
use tessera::config::resolve_reference;
use tessera::provider::{AuthProvider, BasicCredential, Credential, HttpHeaders, Login, ProviderStatus};
use tessera::registry::{ProviderSettings, Registry};
use tessera::store::{MemoryStore, TokenStore};
use tessera::{AuthClient, Error, LogoutOutcome, OAuthErrorCode, Secret, Timestamp, TokenSet};
use tessera_idp::{IdpServer, demo};

// ---------------------------------------------------------------------------------------------
// A provider type of our own: an API key sent in a header. Lives outside the crate, like a user's.

#[derive(Debug)]
struct ApiKeyProvider {
    name: String,
    key: String, // a reference (env:NAME, file:PATH) or a literal; resolved on login
    header: String,
    logged_in: Mutex<Option<(Timestamp, Secret)>>,
}

impl ApiKeyProvider {
    fn factory(settings: &ProviderSettings<'_>) -> Result<Arc<dyn AuthProvider>, Error> {
        settings.allow_fields(&["key", "header"])?;
        Ok(Arc::new(ApiKeyProvider {
            name: settings.name().to_owned(),
            key: settings.required_string("key")?.to_owned(),
            header: settings.string("header")?.unwrap_or("x-api-key").to_owned(),
            logged_in: Mutex::new(None),
        }))
    }
}

#[async_trait]
impl AuthProvider for ApiKeyProvider {
    fn name(&self) -> &str {
        &self.name
    }
    fn provider_type(&self) -> &str {
        "catalog_key"
    }
    fn description(&self) -> String {
        format!("API key in the {} header", self.header)
    }
    async fn is_authenticated(&self) -> Result<bool, Error> {
        Ok(self.logged_in.lock().unwrap().is_some())
    }
    fn auth_context(&self) -> serde_json::Value {
        serde_json::json!({ "type": "catalog_key", "header": self.header })
    }
    async fn credential(&self) -> Result<Credential, Error> {
        let login_time = self.logged_in.lock().unwrap().as_ref().map(|(at, _)| *at);
        Ok(Credential::Basic(BasicCredential {
            name: self.name.clone(),
            status: if login_time.is_some() { ProviderStatus::Authenticated } else { ProviderStatus::Available },
            username: None,
            login_time,
            auth_source: self.key.split_once(':').map_or("literal".into(), |(kind, _)| kind.to_owned()),
        }))
    }
    fn extra_info(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::from_iter([("header".to_owned(), serde_json::Value::String(self.header.clone()))])
    }
    fn as_login(&self) -> Option<&dyn Login> {
        Some(self)
    }
    fn as_http_headers(&self) -> Option<&dyn HttpHeaders> {
        Some(self)
    }
}

#[async_trait]
impl Login for ApiKeyProvider {
    async fn login(&self) -> Result<(), Error> {
        let key = resolve_reference(&self.key)
            .map_err(|problem| Error::configuration(format!("provider {:?}, field \"key\": {problem}", self.name)))?;
        *self.logged_in.lock().unwrap() = Some((SystemClock.now(), key));
        Ok(())
    }
    async fn logout(&self) -> Result<LogoutOutcome, Error> {
        let had_tokens = self.logged_in.lock().unwrap().take().is_some();
        Ok(LogoutOutcome { revoked: false, revocation_error: None, had_tokens })
    }
}

#[async_trait]
impl HttpHeaders for ApiKeyProvider {
    async fn headers(&self) -> Result<Vec<(String, Secret)>, Error> {
        let key = self.logged_in.lock().unwrap().as_ref().map(|(_, key)| key.clone());
        let key = key.ok_or_else(|| Error::ReauthenticationRequired { reason: "not logged in".into() })?;
        Ok(vec![(self.header.clone(), key)])
    }
}

// ---------------------------------------------------------------------------------------------

const API_KEY: &str = "catalog-key-123";

/// Context `dev`: alice (password), machine (client credentials), broken (a wrong password),
/// catalog (the custom type; its key by `file:` reference) and pinned (a static token).
fn config_text(issuer: &str, key_file: &std::path::Path) -> String {
    format!(
        r#"current_context = "dev"

[[contexts]]
name = "dev"

[[contexts.auth_providers]]
name = "alice"
provider = "password"
issuer = "{issuer}"
client_id = "{client}"
client_secret = "{secret}"
username = "alice"
password = "{alice_password}"
scope = "openid api:read"

[[contexts.auth_providers]]
name = "machine"
provider = "client_credentials"
issuer = "{issuer}"
client_id = "{client}"
client_secret = "{secret}"

[[contexts.auth_providers]]
name = "broken"
provider = "password"
issuer = "{issuer}"
client_id = "{client}"
client_secret = "{secret}"
username = "alice"
password = "not-alices-password"

[[contexts.auth_providers]]
name = "catalog"
provider = "catalog_key"
key = "file:{key_file}"
header = "x-catalog-key"

[[contexts.auth_providers]]
name = "pinned"
provider = "static"
access_token = "pinned-token"

[[contexts]]
name = "other"
"#,
        client = demo::CONFIDENTIAL_CLIENT_ID,
        secret = demo::CONFIDENTIAL_CLIENT_SECRET,
        alice_password = demo::ALICE_PASSWORD,
        key_file = key_file.display(),
    )
}

fn registry() -> Registry {
    let mut registry = Registry::default();
    registry.register_factory("catalog_key", ApiKeyProvider::factory);
    registry
}

struct Fixture {
    idp: IdpServer,
    store: Arc<MemoryStore>,
    client: AuthClient,
    text: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("catalog.key");
    std::fs::write(&key_file, format!("{API_KEY}\n")).unwrap();
    let idp = support::idp(Duration::from_secs(60)).await;
    let registry = registry();
    let text = config_text(&idp.issuer(), &key_file);
    let config = registry.parse_config(&text, "auth_client.toml").expect("config parses");
    let store = Arc::new(MemoryStore::new());
    let client = AuthClient::from_config(&registry, &config, None, store.clone()).expect("client builds");
    Fixture { idp, store, client, text, _dir: dir }
}

fn flags(pairs: &[(&str, bool)]) -> BTreeMap<String, bool> {
    pairs.iter().map(|(name, ok)| (name.to_string(), *ok)).collect()
}

async fn stored(store: &MemoryStore, key: &str) -> Option<TokenSet> {
    store.load(key).await.unwrap()
}

fn statuses(rows: &[tessera::ProviderInfo]) -> BTreeMap<String, ProviderStatus> {
    rows.iter().map(|row| (row.name.clone(), row.status)).collect()
}

#[tokio::test]
async fn a_custom_type_registered_outside_the_crate_is_configured_listed_and_logged_in() {
    let f = fixture().await;

    let rows = f.client.list_providers().await;
    let names: Vec<_> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["alice", "machine", "broken", "catalog", "pinned"]);
    let catalog = rows.iter().find(|r| r.name == "catalog").unwrap();
    assert_eq!((catalog.provider_type.as_str(), catalog.status), ("catalog_key", ProviderStatus::Available));
    assert_eq!(catalog.description, "API key in the x-catalog-key header");
    assert_eq!(catalog.extra["header"], "x-catalog-key", "display-only extra info");
    assert!(catalog.capabilities.login && catalog.capabilities.http_headers && !catalog.capabilities.refresh);
    let json = serde_json::to_value(catalog).unwrap();
    assert_eq!((&json["type"], &json["status"]), (&serde_json::json!("catalog_key"), &serde_json::json!("available")));

    assert_eq!(f.client.login(Some("catalog")).await.unwrap(), flags(&[("catalog", true)]));
    assert!(f.client.is_authenticated(Some("catalog")).await);
    let provider = f.client.provider("catalog").unwrap();
    let headers = provider.as_http_headers().expect("capability").headers().await.unwrap();
    assert_eq!(headers.len(), 1);
    assert_eq!((headers[0].0.as_str(), headers[0].1.expose_secret()), ("x-catalog-key", API_KEY));
    match f.client.credential("catalog").await.unwrap() {
        Credential::Basic(c) => {
            assert_eq!((c.status, c.auth_source.as_str()), (ProviderStatus::Authenticated, "file"));
            assert!(c.login_time.is_some());
        }
        other => panic!("expected a basic credential: {other:?}"),
    }
    assert_eq!(f.client.logout(Some("catalog")).await.unwrap(), flags(&[("catalog", true)]));
    assert!(!f.client.is_authenticated(Some("catalog")).await);

    // Without the registration, the type is unknown; errors name file, context, provider, field.
    let error = Registry::default().parse_config(&f.text, "/etc/app.toml").unwrap_err().to_string();
    for part in ["/etc/app.toml", "context \"dev\"", "provider \"catalog\"", "field \"type\"", "\"catalog_key\""] {
        assert!(error.contains(part), "{error} should contain {part}");
    }
    // A misspelt field of the custom type fails when the client is built, named the same way.
    let registry = registry();
    let bad = registry.parse_config(&f.text.replace("header = ", "heder = "), "/etc/app.toml").unwrap();
    let error = AuthClient::from_config(&registry, &bad, None, f.store.clone()).unwrap_err();
    assert!(matches!(error, Error::Configuration { .. }));
    let error = error.to_string();
    assert!(error.contains("provider \"catalog\", field \"heder\"") && error.contains("/etc/app.toml"), "{error}");
}

#[tokio::test]
async fn login_one_or_all_with_a_failing_provider_among_good_ones() {
    let f = fixture().await;
    assert!(!f.client.is_authenticated(None).await, "nobody logged in yet");

    let all = f.client.login(None).await.expect("all: never an error for one provider");
    assert_eq!(
        all,
        flags(&[("alice", true), ("machine", true), ("broken", false), ("catalog", true), ("pinned", true)])
    );
    let stats = f.idp.stats();
    assert_eq!((stats.password_grants, stats.client_credentials_grants), (1, 1), "{stats:?}");
    assert!(stored(&f.store, "dev/alice").await.is_some() && stored(&f.store, "dev/broken").await.is_none());

    // One: the typed error.
    let error = f.client.login(Some("broken")).await.unwrap_err();
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant), "{error}");
    assert!(!error.to_string().contains("not-alices-password"));
    assert_eq!(f.client.login(Some("alice")).await.unwrap(), flags(&[("alice", true)]));
    assert!(matches!(f.client.login(Some("nope")).await, Err(Error::Configuration { .. })));

    // is_authenticated: one, any; errors and unknown names count as false.
    assert!(f.client.is_authenticated(Some("alice")).await);
    assert!(!f.client.is_authenticated(Some("broken")).await);
    assert!(!f.client.is_authenticated(Some("nope")).await);
    assert!(f.client.is_authenticated(None).await);

    let listed = statuses(&f.client.list_providers().await);
    assert_eq!(listed["alice"], ProviderStatus::Authenticated);
    assert_eq!(listed["broken"], ProviderStatus::Available);
    assert_eq!(listed["pinned"], ProviderStatus::Authenticated);
}

#[tokio::test]
async fn credentials_carry_the_tokens_and_never_show_them_in_debug() {
    let f = fixture().await;
    f.client.login(Some("alice")).await.unwrap();
    let tokens = stored(&f.store, "dev/alice").await.unwrap();
    let Credential::OAuth(credential) = f.client.credential("alice").await.unwrap() else { panic!("OAuth expected") };
    assert_eq!(credential.name, "alice");
    assert_eq!(credential.status, ProviderStatus::Authenticated);
    assert_eq!(credential.client_id.as_deref(), Some(demo::CONFIDENTIAL_CLIENT_ID));
    assert_eq!(credential.access_token.as_ref(), Some(&tokens.access_token));
    assert_eq!(credential.refresh_token, tokens.refresh_token);
    assert_eq!(credential.expires_at, tokens.expires_at);
    assert!(credential.allows_refresh);
    let debug = format!("{credential:?}");
    assert!(!debug.contains(tokens.access_token.expose_secret()), "{debug}");
    assert!(!debug.contains(tokens.refresh_token.as_ref().unwrap().expose_secret()), "{debug}");

    let Credential::OAuth(machine) = f.client.credential("machine").await.unwrap() else { panic!("OAuth expected") };
    assert_eq!((machine.status, machine.access_token.is_none()), (ProviderStatus::Available, true));
    assert!(machine.allows_refresh, "client credentials renew by themselves");
    assert!(matches!(f.client.credential("nope").await, Err(Error::Configuration { .. })));

    let alice = f.client.provider("alice").unwrap();
    let context = alice.auth_context();
    assert_eq!((&context["type"], &context["username"]), (&serde_json::json!("password"), &serde_json::json!("alice")));
    assert!(!context.to_string().contains(demo::ALICE_PASSWORD) && !context.to_string().contains("secret"));
    assert!(!format!("{:?}", f.client).contains(demo::ALICE_PASSWORD));
}

#[tokio::test]
async fn refresh_credentials_one_is_typed_and_all_is_best_effort() {
    let f = fixture().await;
    f.client.login(Some("alice")).await.unwrap();
    let first = stored(&f.store, "dev/alice").await.unwrap();

    // One, forced: a new token through the refresh grant.
    assert_eq!(f.client.refresh_credentials(Some("alice"), true).await.unwrap(), flags(&[("alice", true)]));
    let second = stored(&f.store, "dev/alice").await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(f.idp.stats().refresh_grants, 1);
    // Not forced and valid: nothing is sent.
    f.client.refresh_credentials(Some("alice"), false).await.unwrap();
    assert_eq!(f.idp.stats().token_requests, 2);

    // One: typed errors (a refused grant; a provider without the capability; an unknown name).
    let error = f.client.refresh_credentials(Some("broken"), true).await.unwrap_err();
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant), "{error}");
    assert!(matches!(f.client.refresh_credentials(Some("pinned"), true).await, Err(Error::Configuration { .. })));
    assert!(matches!(f.client.refresh_credentials(Some("nope"), false).await, Err(Error::Configuration { .. })));

    // All: every refreshable provider, failures reported as false, never raised.
    let all = f.client.refresh_credentials(None, true).await.expect("best effort");
    assert_eq!(all, flags(&[("alice", true), ("broken", false), ("machine", true)]));
    assert_eq!(f.idp.stats().refresh_grants, 2);

    // The raw-token capability honours a minimum validity: a 60 s token is replaced when 10 min are asked.
    let before = stored(&f.store, "dev/alice").await.unwrap();
    let source = f.client.provider("alice").unwrap();
    let same = source.as_token_source().unwrap().token(Duration::from_secs(10)).await.unwrap();
    assert_eq!(same.access_token, before.access_token, "valid for 10 s more: no request");
    let longer = source.as_token_source().unwrap().token(Duration::from_secs(600)).await.unwrap();
    assert_ne!(longer.access_token, before.access_token, "less than 10 min left: a new token");
    let can = source.as_refreshable().unwrap().can_refresh().await;
    assert!(can);
}

#[tokio::test]
async fn logout_one_or_all_revokes_and_forgets() {
    let f = fixture().await;
    f.client.login(None).await.unwrap();
    let refresh_token = stored(&f.store, "dev/alice").await.unwrap().refresh_token.unwrap();
    assert!(support::introspect(&f.idp, refresh_token.expose_secret()).await);

    assert_eq!(f.client.logout(Some("alice")).await.unwrap(), flags(&[("alice", true)]));
    assert!(!support::introspect(&f.idp, refresh_token.expose_secret()).await, "revoked at the server");
    assert!(stored(&f.store, "dev/alice").await.is_none());
    assert!(!f.client.is_authenticated(Some("alice")).await);

    let all = f.client.logout(None).await.unwrap();
    assert_eq!(
        all,
        flags(&[("alice", true), ("machine", true), ("broken", true), ("catalog", true), ("pinned", true)])
    );
    assert!(!f.client.is_authenticated(None).await);
    let listed = statuses(&f.client.list_providers().await);
    assert!(listed.values().all(|s| *s == ProviderStatus::Available), "{listed:?}");
    assert!(matches!(f.client.logout(Some("nope")).await, Err(Error::Configuration { .. })));
}

/// A store that fails for one key: that provider is listed as `error`, the others as usual.
#[derive(Debug)]
struct FailingFor(&'static str, MemoryStore);

#[async_trait]
impl TokenStore for FailingFor {
    async fn load(&self, key: &str) -> Result<Option<TokenSet>, Error> {
        if key == self.0 {
            return Err(Error::store(tessera::StoreErrorKind::Io, "test store", "disk on fire"));
        }
        self.1.load(key).await
    }
    async fn save(&self, key: &str, tokens: &TokenSet) -> Result<(), Error> {
        self.1.save(key, tokens).await
    }
    async fn clear(&self, key: &str) -> Result<(), Error> {
        self.1.clear(key).await
    }
    fn location(&self) -> String {
        "test store".into()
    }
}

#[tokio::test]
async fn a_provider_whose_store_fails_is_listed_as_error_and_counts_as_unauthenticated() {
    let f = fixture().await;
    let registry = registry();
    let config = registry.parse_config(&f.text, "auth_client.toml").unwrap();
    let store = Arc::new(FailingFor("dev/machine", MemoryStore::new()));
    let client = AuthClient::from_config(&registry, &config, Some("dev"), store).unwrap();
    client.login(Some("alice")).await.unwrap();

    let rows = client.list_providers().await;
    let machine = rows.iter().find(|r| r.name == "machine").unwrap();
    assert_eq!(machine.status, ProviderStatus::Error);
    assert!(machine.error.as_deref().is_some_and(|e| e.contains("disk on fire")), "{machine:?}");
    assert_eq!(statuses(&rows)["alice"], ProviderStatus::Authenticated);
    assert!(!client.is_authenticated(Some("machine")).await, "errors count as false");
    assert!(client.is_authenticated(None).await);
    assert!(client.credential("machine").await.is_err());

    // An empty context is a valid client with nothing in it.
    let other = AuthClient::from_config(&registry, &config, Some("other"), Arc::new(MemoryStore::new())).unwrap();
    assert!(other.list_providers().await.is_empty());
    assert_eq!(other.login(None).await.unwrap(), BTreeMap::new());
    assert!(!other.is_authenticated(None).await);
}

#[test]
fn the_static_type_accepts_a_token_and_other_types_refuse_it() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let registry = Registry::default();
        let text = "[[contexts]]\nname = \"ci\"\n[[contexts.auth_providers]]\nname = \"given\"\nprovider = \"static\"\n\
                    [[contexts.auth_providers]]\nname = \"cc\"\nprovider = \"client_credentials\"\n\
                    token_url = \"http://127.0.0.1:9/token\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
        let config = registry.parse_config(text, "ci.toml").unwrap();
        let store = Arc::new(MemoryStore::new());
        let client = AuthClient::from_config(&registry, &config, None, store.clone()).unwrap();
        let given = client.provider("given").unwrap();
        // No access_token configured and none given yet: authentication required.
        let error = given.as_token_source().unwrap().token(Duration::ZERO).await.unwrap_err();
        assert!(error.requires_reauthentication() && error.to_string().contains("--with-token"), "{error}");
        given.as_login().unwrap().login_with_token(Secret::new("  given-token\n")).await.unwrap();
        let tokens = given.as_token_source().unwrap().token(Duration::from_secs(3600)).await.unwrap();
        assert_eq!(tokens.access_token.expose_secret(), "given-token");
        assert!(given.as_refreshable().is_none() && !given.capabilities().refresh);
        let cc = client.provider("cc").unwrap();
        let refused = cc.as_login().unwrap().login_with_token(Secret::new("x")).await.unwrap_err();
        assert!(refused.to_string().contains("static"), "{refused}");
    });
}

/// A provider that hands out a bearer token and nothing else (no headers of its own).
#[derive(Debug)]
struct TokenOnly;

#[async_trait]
impl AuthProvider for TokenOnly {
    fn name(&self) -> &str {
        "token-only"
    }
    fn provider_type(&self) -> &str {
        "token_only"
    }
    fn description(&self) -> String {
        "a token, no headers".into()
    }
    async fn is_authenticated(&self) -> Result<bool, Error> {
        Ok(true)
    }
    fn auth_context(&self) -> serde_json::Value {
        serde_json::json!({ "type": "token_only", "url": "https://catalog.example" })
    }
    async fn credential(&self) -> Result<Credential, Error> {
        Err(Error::configuration("no credential"))
    }
    fn as_token_source(&self) -> Option<&dyn tessera::provider::TokenSource> {
        Some(self)
    }
}

#[async_trait]
impl tessera::provider::TokenSource for TokenOnly {
    async fn token(&self, _min_valid: Duration) -> Result<TokenSet, Error> {
        Ok(TokenSet::bearer(Secret::new("token-only-value"), None, SystemClock.now()))
    }
}

fn header_pairs(headers: &[(String, Secret)]) -> Vec<(String, String)> {
    headers.iter().map(|(name, value)| (name.clone(), value.expose_secret().to_owned())).collect()
}

#[tokio::test]
async fn headers_and_tokens_by_provider_name() {
    let f = fixture().await;

    // An OAuth provider: its bearer header, obtained on first use (a login that needs nobody).
    let alice = f.client.headers("alice").await.unwrap();
    let stored_alice = stored(&f.store, "dev/alice").await.expect("logged in on first use");
    let bearer = format!("Bearer {}", stored_alice.access_token.expose_secret());
    assert_eq!(header_pairs(&alice), [("authorization".to_owned(), bearer.clone())]);
    assert_eq!(f.idp.stats().password_grants, 1);
    assert_eq!(header_pairs(&f.client.headers("alice").await.unwrap()), [("authorization".to_owned(), bearer)]);
    assert_eq!(f.idp.stats().token_requests, 1, "the second call is served from the cache");

    // A custom type's own headers (its header name, its key), once it is logged in.
    let error = f.client.headers("catalog").await.unwrap_err();
    assert!(error.requires_reauthentication(), "{error}");
    f.client.login(Some("catalog")).await.unwrap();
    assert_eq!(header_pairs(&f.client.headers("catalog").await.unwrap()), [("x-catalog-key".into(), API_KEY.into())]);

    // A refused login is the provider's typed error; an unknown name a configuration error naming the known ones.
    let error = f.client.headers("broken").await.unwrap_err();
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant), "{error}");
    assert!(!error.to_string().contains("not-alices-password"), "{error}");
    let error = f.client.headers("nope").await.unwrap_err();
    assert!(matches!(error, Error::Configuration { .. }) && error.to_string().contains("alice, machine"), "{error}");

    // token(name, min_valid): the token set; a 60-s token is replaced when 10 minutes are asked for.
    let machine = f.client.token("machine", Duration::ZERO).await.unwrap();
    assert_eq!(machine.access_token, stored(&f.store, "dev/machine").await.unwrap().access_token);
    let same = f.client.token("machine", Duration::from_secs(10)).await.unwrap();
    assert_eq!(same.access_token, machine.access_token, "valid for 10 s more: no request");
    let longer = f.client.token("machine", Duration::from_secs(600)).await.unwrap();
    assert_ne!(longer.access_token, machine.access_token, "less than 10 minutes left: a new token");
    assert_eq!(f.client.token("pinned", Duration::ZERO).await.unwrap().access_token.expose_secret(), "pinned-token");
    let error = f.client.token("catalog", Duration::ZERO).await.unwrap_err();
    assert!(error.to_string().contains("does not support tokens"), "{error}");

    // A provider with a token and no headers of its own: a bearer header from its token.
    let client = AuthClient::new("dev", vec![Arc::new(TokenOnly) as Arc<dyn AuthProvider>]).unwrap();
    let headers = header_pairs(&client.headers("token-only").await.unwrap());
    assert_eq!(headers, [("authorization".to_owned(), "Bearer token-only-value".to_owned())]);
}

#[tokio::test]
async fn logged_in_names_the_server_or_none() {
    let f = fixture().await;
    assert_eq!(f.client.logged_in(Some("alice")).await, None, "not logged in yet");
    assert_eq!(f.client.logged_in(Some("catalog")).await, None);
    assert_eq!(f.client.logged_in(None).await, None, "nobody is logged in");
    // A static token talks to no server: it names its provider.
    f.client.login(Some("pinned")).await.unwrap();
    assert_eq!(f.client.logged_in(Some("pinned")).await.as_deref(), Some("pinned"));
    assert_eq!(f.client.logged_in(None).await.as_deref(), Some("pinned"), "the only one logged in");

    // Without a name: the first authenticated provider in configuration order.
    f.client.login(Some("alice")).await.unwrap();
    assert_eq!(f.client.logged_in(Some("alice")).await, Some(f.idp.issuer()), "the issuer it is logged in to");
    assert_eq!(f.client.logged_in(None).await, Some(f.idp.issuer()));
    f.client.login(Some("catalog")).await.unwrap();
    assert_eq!(f.client.logged_in(Some("catalog")).await.as_deref(), Some("catalog"), "no server in its context");
    assert_eq!(f.client.logged_in(Some("nope")).await, None, "an unknown name is not logged in");

    f.client.logout(Some("alice")).await.unwrap();
    assert_eq!(f.client.logged_in(Some("alice")).await, None, "logged out");

    let client = AuthClient::new("dev", vec![Arc::new(TokenOnly) as Arc<dyn AuthProvider>]).unwrap();
    assert_eq!(client.logged_in(None).await.as_deref(), Some("https://catalog.example"), "its url");
}
