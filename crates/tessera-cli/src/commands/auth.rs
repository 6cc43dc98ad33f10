//! The commands that work on a context's providers: login, token, refresh, status, logout,
//! providers, exec. Each prints data on stdout and messages on stderr.

use std::io::{Read, Write};
use std::time::Duration;

use clap::Subcommand;
use tessera::clock::{Clock, SystemClock};
use tessera::provider::{Credential, ProviderStatus};
use tessera::{LogoutOutcome, Secret, SessionSettings, Timestamp, TokenSet};

use crate::output::{self, TokenFormat};
use crate::{Failure, Workspace};

#[derive(Subcommand)]
pub enum ProvidersCommand {
    /// List the context's providers: name, type, status, description.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn print(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(|e| Failure::error(format!("stdout: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(value).map(|text| text + "\n").map_err(|e| Failure::error(e.to_string()))
}

pub async fn login(workspace: &Workspace, name: Option<&str>, all: bool, with_token: bool) -> Result<(), Failure> {
    if all {
        let client = workspace.client()?;
        let mut failed = 0;
        for (name, result) in client.login_each(None).await? {
            match result {
                Ok(()) => {
                    let expiry = match client.credential(&name).await {
                        Ok(credential) => describe_expiry(credential.expires_at()),
                        Err(_) => String::new(),
                    };
                    eprintln!("Logged in to {name} ({}){expiry}", workspace.context_name);
                }
                Err(error) => {
                    failed += 1;
                    eprintln!("error: login to {name} failed: {error}");
                }
            }
        }
        return if failed == 0 { Ok(()) } else { Err(Failure::error(format!("{failed} login(s) failed"))) };
    }
    let entry = workspace.provider(name)?;
    let typed = if with_token { None } else { with_typed_secrets(workspace, entry)? };
    let provider = match typed {
        Some(provider) => provider,
        None => workspace.build(entry)?,
    };
    let login = provider.as_login().ok_or_else(|| Failure::error(format!("{} does not support login", entry.name)))?;
    if with_token {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| Failure::error(format!("cannot read stdin: {e}")))?;
        let token = Secret::new(text);
        // A refused token is a plain failure (exit 1).
        login.login_with_token(token).await.map_err(|error| Failure::error(error.to_string()))?;
        eprintln!("Logged in to {} ({}) with the given token", entry.name, workspace.context_name);
        return Ok(());
    }
    if entry.is_interactive() && workspace.prompter.is_none() {
        return Err(no_prompt_failure(
            entry,
            &format!("logging in to {} needs a person ({})", entry.name, needs(entry)),
        ));
    }
    // A refused login is a plain failure (exit 1): "run `tessera login`" would be no help here.
    let result = login.login().await;
    workspace.finish_prompt();
    result.map_err(|error| {
        // A login that turned out to need a person (a Cognito pool asking for a code) when nobody
        // can be asked: exit 4, like the interactive types above.
        if workspace.prompter.is_none() && error.requires_reauthentication() {
            no_prompt_failure(entry, &format!("login to {} failed: {error}", entry.name))
        } else if let Some(text) = workspace.explain(entry, &error) {
            Failure::error(format!("login to {} failed: {text}", entry.name))
        } else {
            Failure::error(format!("login to {} failed: {error}", entry.name))
        }
    })?;
    let expiry = describe_expiry(provider.credential().await.ok().and_then(|c| c.expires_at()));
    eprintln!("Logged in to {} ({}){expiry}", entry.name, workspace.context_name);
    Ok(())
}

/// A `password` provider built with what the person types now, hidden on a terminal, as gh and az
/// ask: its password when the section gives none, the current code from their authenticator app
/// when the section's `totp_secret` cannot be read (an unset `env:` variable...). `None` when
/// nothing is to be typed, or nobody can be asked and only the TOTP source is missing (its
/// configuration error follows); nobody to ask for a missing password: exit 4 at once.
fn with_typed_secrets(
    workspace: &Workspace,
    entry: &tessera::config::ProviderEntry,
) -> Result<Option<std::sync::Arc<dyn tessera::provider::AuthProvider>>, Failure> {
    use tessera::core::provider_spec::GrantSpec;
    let totp_problem = entry.totp_unavailable();
    if !entry.password_missing() && totp_problem.is_none() {
        return Ok(None);
    }
    let Some(prompter) = &workspace.prompter else {
        if !entry.password_missing() {
            return Ok(None);
        }
        return Err(no_prompt_failure(
            entry,
            &format!("logging in to {} needs its password, which the configuration does not give", entry.name),
        ));
    };
    let key = workspace.context().store_key(entry);
    let (username, user) = match entry.spec().map(|spec| (&spec.grant, &spec.client)) {
        Some((GrantSpec::Password { username, .. }, client)) => {
            match client.issuer.as_deref().or(client.token_endpoint.as_deref()) {
                Some(server) => (username.clone(), format!("{username} at {server}")),
                None => (username.clone(), username.clone()),
            }
        }
        _ => (entry.name.clone(), entry.name.clone()),
    };
    let refused = |error: tessera::Error| Failure::error(format!("login to {} failed: {error}", entry.name));
    let mut typed = tessera::config::TypedSecrets::default();
    if entry.password_missing() {
        let question = format!("Password for {user} ({key}; input is hidden): ");
        typed.password = Some(prompter.ask_hidden(&key, &question).map_err(refused)?);
    }
    if let Some(problem) = totp_problem {
        let question =
            format!("Code from the authenticator app of {username} for {key} ({problem}; input is hidden): ");
        typed.totp = Some(prompter.ask_hidden(&key, &question).map_err(refused)?);
    }
    let settings = tessera::registry::ProviderSettings::new(
        workspace.config.origin(),
        &workspace.context_name,
        entry,
        std::sync::Arc::clone(&workspace.store),
    );
    Ok(Some(std::sync::Arc::new(tessera::provider::OAuthProvider::from_settings(&settings)?.with_typed(typed))))
}

/// What a person does to log in to `entry`, for messages.
fn needs(entry: &tessera::config::ProviderEntry) -> &'static str {
    use tessera::core::provider_spec::ProviderKind;
    match entry.kind() {
        Some(kind @ (ProviderKind::Browser | ProviderKind::DeviceCode)) => kind.describe(),
        _ => "a code sent to them",
    }
}

/// Exit 4: logging in to `entry` needs a person and nobody can be asked here.
fn no_prompt_failure(entry: &tessera::config::ProviderEntry, what: &str) -> Failure {
    Failure {
        code: 4,
        message: format!(
            "{what}, and prompting is off here (stdin or stderr is not a terminal, or --prompt never)\n\
             hint: run 'tessera login --provider {}' in a terminal, or pass --prompt always \
             (TESSERA_PROMPT=always) to prompt on stderr anyway",
            entry.name
        ),
    }
}

/// A token valid for at least `min_valid` (when the server allows it). The fast path — a stored
/// token outside its refresh window — reads the store only: no secret, no HTTP client, no network.
pub(crate) async fn fresh_tokens(
    workspace: &Workspace,
    name: Option<&str>,
    min_valid: Duration,
) -> Result<TokenSet, Failure> {
    let entry = workspace.provider(name)?;
    let key = workspace.context().store_key(entry);
    if let Some(tokens) = workspace.store.load(&key).await?
        && tokens.access_valid(
            SystemClock.now(),
            tokens.refresh_window(SessionSettings::default().refresh_skew).max(min_valid),
        )
    {
        return Ok(tokens);
    }
    let provider = workspace.build(entry)?;
    let source =
        provider.as_token_source().ok_or_else(|| Failure::error(format!("{} does not provide a token", entry.name)))?;
    let tokens = source.token(min_valid).await;
    workspace.finish_prompt();
    tokens.map_err(|error| workspace.failure(entry, error))
}

pub async fn token(
    workspace: &Workspace,
    name: Option<&str>,
    min_valid: Duration,
    format: TokenFormat,
) -> Result<(), Failure> {
    let tokens = fresh_tokens(workspace, name, min_valid).await?;
    print(&output::format_token(&tokens, format, SystemClock.now()))
}

pub async fn exec(
    workspace: &Workspace,
    name: Option<&str>,
    env: &str,
    min_valid: Duration,
    command: &[String],
) -> Result<u8, Failure> {
    if env.is_empty() || env.contains('=') || env.contains('\0') {
        return Err(Failure { code: 2, message: format!("--env {env:?} is not a valid variable name") });
    }
    let tokens = fresh_tokens(workspace, name, min_valid).await?;
    let (program, args) =
        command.split_first().ok_or_else(|| Failure { code: 2, message: "no command given".into() })?;
    // Replace this process (execvp): signals such as Ctrl-C reach the command directly, and its
    // exit status, a signal death included, is what the caller sees. Returns only on failure.
    let error = std::os::unix::process::CommandExt::exec(
        std::process::Command::new(program).args(args).env(env, tokens.access_token.expose_secret()),
    );
    Err(Failure::error(format!("cannot run {program:?}: {error}")))
}

pub async fn refresh(workspace: &Workspace, name: Option<&str>, force: bool) -> Result<(), Failure> {
    let entry = workspace.provider(name)?;
    let provider = workspace.build(entry)?;
    let refreshable = provider
        .as_refreshable()
        .ok_or_else(|| Failure::error(format!("{} ({}) cannot be refreshed", entry.name, entry.type_name)))?;
    let refreshed = refreshable.refresh(force).await;
    workspace.finish_prompt();
    refreshed.map_err(|error| workspace.failure(entry, error))?;
    let expiry = describe_expiry(provider.credential().await.ok().and_then(|c| c.expires_at()));
    eprintln!("Token for {} is fresh{expiry}", entry.name);
    Ok(())
}

pub async fn logout(workspace: &Workspace, name: Option<&str>, all: bool) -> Result<(), Failure> {
    let client = workspace.client()?;
    let results = if all {
        client.logout_each(None).await?
    } else {
        let entry = workspace.provider(name)?;
        client.logout_each(Some(&entry.name)).await?
    };
    let mut failed = 0;
    for (name, result) in results {
        match result {
            Ok(outcome) => eprintln!("Logged out of {name} ({})", describe_logout(&outcome)),
            Err(error) if !all => return Err(error.into()),
            Err(error) => {
                failed += 1;
                eprintln!("error: logout of {name} failed: {error}");
            }
        }
    }
    if failed == 0 { Ok(()) } else { Err(Failure::error(format!("{failed} logout(s) failed"))) }
}

fn describe_logout(outcome: &LogoutOutcome) -> String {
    match (outcome.had_tokens, outcome.revoked, &outcome.revocation_error) {
        (false, _, _) => "was not logged in".to_owned(),
        (true, true, _) => "token revoked".to_owned(),
        (true, false, None) => "the server has no revocation endpoint; tokens forgotten".to_owned(),
        (true, false, Some(error)) => format!("revocation failed ({error}); tokens forgotten"),
    }
}

#[derive(serde::Serialize)]
struct StatusRow {
    name: String,
    provider: String,
    key: String,
    status: ProviderStatus,
    description: String,
    expires_at: Option<i64>,
    expires_in_secs: Option<i64>,
    refreshable: bool,
    error: Option<String>,
}

pub async fn status(workspace: &Workspace, json: bool) -> Result<(), Failure> {
    let client = workspace.client()?;
    let now = SystemClock.now();
    let mut rows = Vec::new();
    for (entry, provider) in workspace.context().providers.iter().zip(client.providers()) {
        let (credential, error) = match provider.credential().await {
            Ok(credential) => (Some(credential), None),
            Err(error) => (None, Some(error.to_string())),
        };
        let expires_at = credential.as_ref().and_then(Credential::expires_at);
        let refreshable = match (&error, provider.as_refreshable()) {
            (None, Some(refreshable)) => refreshable.can_refresh().await,
            _ => false,
        };
        rows.push(StatusRow {
            name: provider.name().to_owned(),
            provider: provider.provider_type().to_owned(),
            key: workspace.context().store_key(entry),
            status: credential.as_ref().map_or(ProviderStatus::Error, Credential::status),
            description: provider.description(),
            expires_at: expires_at.map(Timestamp::as_unix_secs),
            expires_in_secs: expires_at.map(|at| output::seconds_between(now, at)),
            refreshable,
            error,
        });
    }
    if json {
        print(&to_json(&rows)?)?;
    } else {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                let expires = row.error.clone().unwrap_or_else(|| output::relative(row.expires_in_secs));
                vec![row.name.clone(), row.provider.clone(), row.status.to_string(), expires]
            })
            .collect();
        let mut text = format!("context: {}\n", workspace.context_name);
        text.push_str(&output::table(&["NAME", "TYPE", "STATUS", "EXPIRES"], &cells));
        print(&text)?;
    }
    let invalid = rows.iter().filter(|row| row.status == ProviderStatus::Error).count();
    if invalid > 0 {
        return Err(Failure::error(format!("{invalid} provider(s) in error")));
    }
    Ok(())
}

pub async fn providers(workspace: &Workspace, command: ProvidersCommand) -> Result<(), Failure> {
    let ProvidersCommand::List { json } = command;
    let rows = workspace.client()?.list_providers().await;
    if json {
        return print(&to_json(&rows)?);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| vec![row.name.clone(), row.provider_type.clone(), row.status.to_string(), row.description.clone()])
        .collect();
    print(&output::table(&["NAME", "TYPE", "STATUS", "DESCRIPTION"], &cells))
}

fn describe_expiry(expires_at: Option<Timestamp>) -> String {
    match expires_at {
        // Rounded to the nearest second: a fresh 300 s token reads "5m00s", not "4m59s".
        Some(at) => format!(
            "; expires in {}",
            output::human_duration(at.duration_since(SystemClock.now()) + Duration::from_millis(500))
        ),
        None => String::new(),
    }
}
