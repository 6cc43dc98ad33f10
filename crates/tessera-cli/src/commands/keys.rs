//! `tessera keys create|list|get|revoke` and `tessera admin keys list|get|revoke`: API key
//! management at the provider's server, authenticated with the provider's access token (the
//! `tessera token` machinery: stored, refreshed or logged in again as needed).
//!
//! The key API lives at the provider's issuer (`--base-url` overrides). stdout carries data only:
//! the new secret (once), a table, or JSON with `--json`; messages go to stderr. A refusal for
//! lack of rights (HTTP 403) exits 1 with "permission denied: ...".

use std::io::Read;
use std::time::Duration;

use clap::{Args, Subcommand};
use tessera::api_keys::{AdminApiKeyFilter, ApiKey, ApiKeyFilter, ApiKeyStatus, ApiKeys, is_permission_denied};
use tessera::transport::TransportSettings;
use tessera::{Error, Secret};

use super::auth;
use crate::{Failure, Workspace, output};

/// Which provider's login to use and where the key API is.
#[derive(Args)]
pub struct Target {
    /// Provider whose login is used (default: $TESSERA_PROVIDER, else the context's only provider).
    #[arg(long, short = 'p', global = true, add = crate::complete::provider_names())]
    provider: Option<String>,
    /// Root URL of the key API (default: the provider's issuer).
    #[arg(long, global = true, value_name = "URL")]
    base_url: Option<String>,
}

/// `tessera keys ...`.
#[derive(Args)]
pub struct KeysArgs {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key; its secret is printed once, on stdout.
    Create {
        /// A name for the key (e.g. what uses it).
        name: String,
        /// Lifetime in days, 1 to 365.
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=365))]
        expires_in_days: u32,
        /// Print `{"key": {...}, "secret": "..."}` instead of the secret alone.
        #[arg(long)]
        json: bool,
    },
    /// List your keys (revoked and expired ones included).
    List {
        /// Only keys with this name.
        #[arg(long)]
        name: Option<String>,
        /// Only the key with this fingerprint.
        #[arg(long)]
        fingerprint: Option<String>,
        /// Only keys with this status.
        #[arg(long, value_parser = parse_status)]
        status: Option<ApiKeyStatus>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one of your keys.
    Get {
        /// The key's id (`key_...`).
        id: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one of your keys, by id or by its secret (read from stdin, never from the command line).
    Revoke {
        /// The key's id (`key_...`).
        #[arg(required_unless_present = "secret_stdin", conflicts_with = "secret_stdin")]
        id: Option<String>,
        /// Read the key's secret from stdin (e.g. a leaked key) instead of giving its id.
        #[arg(long)]
        secret_stdin: bool,
        /// Print the revoked key as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tessera admin ...`.
#[derive(Args)]
pub struct AdminArgs {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Every user's API keys (administrators only).
    Keys {
        #[command(subcommand)]
        command: AdminKeysCommand,
    },
}

#[derive(Subcommand)]
enum AdminKeysCommand {
    /// List every user's keys.
    List {
        /// Only keys created by this email address.
        #[arg(long)]
        email: Option<String>,
        /// Only keys with this name.
        #[arg(long)]
        name: Option<String>,
        /// Only keys with this status.
        #[arg(long, value_parser = parse_status)]
        status: Option<ApiKeyStatus>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show any user's key.
    Get {
        /// The key's id.
        id: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke any user's key.
    Revoke {
        /// The key's id.
        id: String,
        /// Print the revoked key as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_status(text: &str) -> Result<ApiKeyStatus, String> {
    text.parse().map_err(|_| format!("{text:?} is not one of active, expired, revoked"))
}

/// The key API as the target provider's user.
struct Client<'w> {
    workspace: &'w Workspace,
    provider: String,
    base_url: String,
}

impl<'w> Client<'w> {
    fn new(workspace: &'w Workspace, target: Target) -> Result<Self, Failure> {
        let name = target.provider.or_else(|| std::env::var("TESSERA_PROVIDER").ok().filter(|p| !p.is_empty()));
        let entry = workspace.provider(name.as_deref())?;
        let issuer = entry.spec().and_then(|spec| spec.client.issuer.as_ref());
        let base_url = match (target.base_url, issuer) {
            (Some(url), _) => url,
            (None, Some(issuer)) => issuer.clone(),
            (None, None) => {
                return Err(Failure::error(format!(
                    "provider {} has no issuer to find the key API at: pass --base-url",
                    entry.name
                )));
            }
        };
        Ok(Client { workspace, provider: entry.name.clone(), base_url })
    }

    async fn api(&self) -> Result<ApiKeys, Failure> {
        let tokens = auth::fresh_tokens(self.workspace, Some(&self.provider), None, Duration::ZERO).await?;
        let api = ApiKeys::with_access_token(tokens.access_token, self.base_url.clone());
        // The provider's proxy, roots and limits apply to its key API too.
        let entry = self.workspace.provider(Some(&self.provider))?;
        Ok(match entry.spec() {
            Some(spec) => api.transport_settings(TransportSettings::from_spec(&spec.transport)),
            None => api,
        })
    }

    /// Runs `op`; after a 401 (the server refused a token that looked valid here: revoked, or the
    /// server's clock is ahead) refreshes the provider's token once and runs it again.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, Failure>
    where
        F: Fn(ApiKeys) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let error = match op(self.api().await?).await {
            // A 401 with a JSON error body, or a bare one (a proxy, a server without a body).
            Err(error @ (Error::OAuth { status: 401, .. } | Error::UnexpectedStatus { status: 401, .. })) => error,
            other => return other.map_err(failure),
        };
        let entry = self.workspace.provider(Some(&self.provider))?;
        let provider = self.workspace.build(entry)?;
        let Some(refreshable) = provider.as_refreshable() else {
            return Err(failure(error));
        };
        refreshable.refresh(true).await.map_err(|e| self.workspace.failure(entry, e))?;
        op(self.api().await?).await.map_err(failure)
    }
}

/// A failure, with 403 spelt out as a permission problem.
fn failure(error: Error) -> Failure {
    if is_permission_denied(&error) {
        let reason = match &error {
            Error::OAuth { description: Some(description), .. } => description.clone(),
            other => other.to_string(),
        };
        return Failure::error(format!("permission denied: {reason}"));
    }
    error.into()
}

fn print(text: &str) -> Result<(), Failure> {
    output::stdout(text)
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::error(e.to_string()))?;
    print(&(text + "\n"))
}

/// An API key in every `--json` output (docs/cli.md, "JSON output"): instants in RFC 3339.
#[derive(serde::Serialize)]
struct KeyJson<'a> {
    id: &'a str,
    name: &'a str,
    fingerprint: &'a str,
    status: ApiKeyStatus,
    created_at: String,
    expires_at: String,
    last_used_at: Option<String>,
    created_by_email: &'a str,
}

impl<'a> From<&'a ApiKey> for KeyJson<'a> {
    fn from(key: &'a ApiKey) -> Self {
        KeyJson {
            id: &key.id,
            name: &key.name,
            fingerprint: &key.fingerprint,
            status: key.status,
            created_at: output::rfc3339(key.created_at),
            expires_at: output::rfc3339(key.expires_at),
            last_used_at: key.last_used_at.map(output::rfc3339),
            created_by_email: &key.created_by_email,
        }
    }
}

fn print_keys(keys: &[ApiKey], json: bool) -> Result<(), Failure> {
    if json {
        return print_json(&keys.iter().map(KeyJson::from).collect::<Vec<_>>());
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.id.clone(),
                k.name.clone(),
                k.fingerprint.clone(),
                k.status.to_string(),
                output::rfc3339(k.expires_at),
                k.last_used_at.map_or_else(|| "never".to_owned(), output::rfc3339),
                k.created_by_email.clone(),
            ]
        })
        .collect();
    print(&output::table(&["ID", "NAME", "FINGERPRINT", "STATUS", "EXPIRES", "LAST USED", "CREATED BY"], &rows))
}

fn print_key(key: &ApiKey, json: bool) -> Result<(), Failure> {
    if json {
        return print_json(&KeyJson::from(key));
    }
    print_keys(std::slice::from_ref(key), false)
}

fn missing(id: &str) -> Failure {
    Failure::error(format!("no API key with id {id:?}"))
}

/// Runs `tessera keys ...`.
pub async fn keys(workspace: &Workspace, args: KeysArgs) -> Result<(), Failure> {
    let client = Client::new(workspace, args.target)?;
    match args.command {
        KeysCommand::Create { name, expires_in_days, json } => {
            let name = name.as_str();
            let (key, secret) = client.call(|api| async move { api.create(name, Some(expires_in_days)).await }).await?;
            eprintln!(
                "Created API key {:?} ({}, fingerprint {}), expires {}.\n\
                 This is the only time its secret is shown: store it now.",
                key.name,
                key.id,
                key.fingerprint,
                output::rfc3339(key.expires_at)
            );
            if json {
                print_json(&serde_json::json!({ "key": KeyJson::from(&key), "secret": secret.expose_secret() }))
            } else {
                print(&format!("{}\n", secret.expose_secret()))
            }
        }
        KeysCommand::List { name, fingerprint, status, json } => {
            let filter = &ApiKeyFilter { name, fingerprint, status };
            let keys = client.call(|api| async move { api.list(filter).await }).await?;
            print_keys(&keys, json)
        }
        KeysCommand::Get { id, json } => {
            let id = id.as_str();
            let key = client.call(|api| async move { api.get(id).await }).await?.ok_or_else(|| missing(id))?;
            print_key(&key, json)
        }
        KeysCommand::Revoke { id, secret_stdin, json } => {
            let key = match (id, secret_stdin) {
                (_, true) => {
                    // Off the async runtime: stdin may be a pipe that a slow producer fills.
                    let text = tokio::task::spawn_blocking(|| {
                        let mut text = String::new();
                        std::io::stdin().read_to_string(&mut text).map(|_| text)
                    })
                    .await
                    .map_err(|e| Failure::error(format!("cannot read stdin: {e}")))?
                    .map_err(|e| Failure::error(format!("cannot read stdin: {e}")))?;
                    let secret = &Secret::new(text);
                    if secret.expose_secret().trim().is_empty() {
                        return Err(Failure { code: 2, message: "--secret-stdin: stdin is empty".into() });
                    }
                    client.call(|api| async move { api.revoke_by_secret(secret).await }).await?
                }
                (Some(id), false) => {
                    let id = id.as_str();
                    client.call(|api| async move { api.revoke(id).await }).await?
                }
                (None, false) => return Err(Failure { code: 2, message: "give a key id or --secret-stdin".into() }),
            };
            eprintln!("Revoked API key {:?} ({}, fingerprint {})", key.name, key.id, key.fingerprint);
            if json { print_key(&key, true) } else { Ok(()) }
        }
    }
}

/// Runs `tessera admin ...`.
pub async fn admin(workspace: &Workspace, args: AdminArgs) -> Result<(), Failure> {
    let client = Client::new(workspace, args.target)?;
    let AdminCommand::Keys { command } = args.command;
    match command {
        AdminKeysCommand::List { email, name, status, json } => {
            let filter = &AdminApiKeyFilter { email, key_name: name, status };
            let keys = client.call(|api| async move { api.admin().list(filter).await }).await?;
            print_keys(&keys, json)
        }
        AdminKeysCommand::Get { id, json } => {
            let id = id.as_str();
            let key = client.call(|api| async move { api.admin().get(id).await }).await?.ok_or_else(|| missing(id))?;
            print_key(&key, json)
        }
        AdminKeysCommand::Revoke { id, json } => {
            let id = id.as_str();
            let key = client.call(|api| async move { api.admin().revoke(id).await }).await?;
            eprintln!("Revoked API key {:?} ({}) of {}", key.name, key.id, key.created_by_email);
            if json { print_key(&key, true) } else { Ok(()) }
        }
    }
}
