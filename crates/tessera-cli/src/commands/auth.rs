//! The commands that work on a context's providers: login, token, refresh, status, logout,
//! providers, exec. Each prints data on stdout and messages on stderr.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use tessera::clock::{Clock, SystemClock};
use tessera::core::provider_spec::ProviderKind;
use tessera::provider::{AuthProvider as _, Credential, ProviderStatus};
use tessera::{LogoutOutcome, Secret, Timestamp, TokenSet};

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
    output::stdout(text)
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
                // A static provider without a token is not a failed login: it waits for one.
                Err(error)
                    if error.requires_reauthentication()
                        && workspace
                            .provider(Some(&name))
                            .is_ok_and(|entry| entry.kind() == Some(ProviderKind::Static)) =>
                {
                    let entry = workspace.provider(Some(&name))?;
                    eprintln!(
                        "Skipped {name}: a static provider without a token (give one with '{}')",
                        workspace.login_command(entry, " --with-token")
                    );
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
            workspace,
            entry,
            &format!("logging in to {} needs a person ({})", entry.name, needs(entry)),
        ));
    }
    // A refused login is a plain failure (exit 1): "run `tessera login`" would be no help here.
    let result = login.login().await;
    workspace.finish_prompt();
    result.map_err(|error| login_failure(workspace, entry, error))?;
    let expiry = describe_expiry(provider.credential().await.ok().and_then(|c| c.expires_at()));
    eprintln!("Logged in to {} ({}){expiry}", entry.name, workspace.context_name);
    Ok(())
}

/// What a failed login of `entry` exits with, in words.
fn login_failure(workspace: &Workspace, entry: &tessera::config::ProviderEntry, error: tessera::Error) -> Failure {
    // A login that turned out to need a person (a Cognito pool asking for a code) when nobody
    // can be asked: exit 4, like the interactive types above.
    if workspace.prompter.is_none()
        && error.requires_reauthentication()
        && entry.kind().is_some_and(ProviderKind::may_prompt)
    {
        return no_prompt_failure(workspace, entry, &format!("login to {} failed: {error}", entry.name));
    }
    // An expired or denied device code, in words (the prompter knows the code it showed).
    if let Some(text) = workspace.explain(entry, &error) {
        return Failure::error(format!("login to {} failed: {text}", entry.name));
    }
    // Refused credentials exit 1 naming what to fix; a dead configured refresh token likewise.
    let mut failure = workspace.failure(entry, error);
    failure.message = format!("login to {} failed: {}", entry.name, failure.message);
    // A login that failed (a browser that never came back) is a plain failure: exit 4 means
    // "a login would help", and this was one.
    failure.code = if failure.code == 4 { 1 } else { failure.code };
    failure
}

/// `tessera login URL [URL…]`: logs in to the provider `name` (the one `add_resource_provider`
/// found or added for the first URL), naming the other URLs too so that one login serves them.
pub async fn login_resource(workspace: &Workspace, name: Option<&str>, also: &[String]) -> Result<(), Failure> {
    let entry = workspace.provider(name)?;
    if workspace.prompter.is_none() {
        return Err(no_prompt_failure(
            workspace,
            entry,
            &format!("logging in to {} needs a person ({})", entry.name, needs(entry)),
        ));
    }
    let provider = workspace.build_for_resource(entry, None, also.to_vec())?;
    let result = tessera::provider::Login::login(&provider).await;
    workspace.finish_prompt();
    result.map_err(|error| login_failure(workspace, entry, error))?;
    let expiry = describe_expiry(provider.credential().await.ok().and_then(|c| c.expires_at()));
    let resource = provider.resource().unwrap_or_default();
    eprintln!("Logged in to {} ({}) for {resource}{expiry}", entry.name, workspace.context_name);
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
            workspace,
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
    match entry.kind() {
        Some(kind @ (ProviderKind::Browser | ProviderKind::DeviceCode)) => kind.describe(),
        _ => "a code sent to them",
    }
}

/// Exit 4: logging in to `entry` needs a person and nobody can be asked here.
fn no_prompt_failure(workspace: &Workspace, entry: &tessera::config::ProviderEntry, what: &str) -> Failure {
    Failure {
        code: 4,
        message: format!(
            "{what}, and prompting is off here (stdin or stderr is not a terminal, or --prompt never)\n\
             hint: run '{}' in a terminal, or pass --prompt always \
             (TESSERA_PROMPT=always) to prompt on stderr anyway",
            workspace.login_command(entry, "")
        ),
    }
}

/// A token valid for at least `min_valid` (when the server allows it). The fast path — a stored
/// token outside its refresh window — reads the store only: no secret, no HTTP client, no network.
pub(crate) async fn fresh_tokens(
    workspace: &Workspace,
    name: Option<&str>,
    resource: Option<&str>,
    min_valid: Duration,
) -> Result<TokenSet, Failure> {
    let entry = workspace.provider(name)?;
    let key = workspace.context().store_key(entry);
    // The same test as the fast path's (fast.rs), which serves this case before the runtime starts.
    let resource = resource.map(str::to_owned).or_else(|| crate::fast::resource_of(entry));
    if let Some(tokens) = workspace.store.load(&key).await?
        && let tokens = crate::fast::for_resource(tokens, resource.as_deref())
        && crate::fast::valid(&tokens, SystemClock.now(), min_valid)
    {
        return Ok(tokens);
    }
    let provider: Arc<dyn tessera::provider::AuthProvider> = match &resource {
        Some(resource) => Arc::new(workspace.build_for_resource(entry, Some(resource), Vec::new())?),
        None => workspace.build(entry)?,
    };
    let source =
        provider.as_token_source().ok_or_else(|| Failure::error(format!("{} does not provide a token", entry.name)))?;
    let tokens = source.token(min_valid).await;
    workspace.finish_prompt();
    tokens.map_err(|error| workspace.failure(entry, error))
}

/// The request `tessera token --dpop-url` makes a DPoP proof for.
pub struct DpopRequest {
    /// `--dpop-method`.
    pub method: String,
    /// `--dpop-url`.
    pub url: String,
    /// `--dpop-nonce`.
    pub nonce: Option<String>,
}

pub async fn token(
    workspace: &Workspace,
    name: Option<&str>,
    resource: Option<&str>,
    min_valid: Duration,
    format: TokenFormat,
    dpop: Option<DpopRequest>,
) -> Result<(), Failure> {
    let name = name.or_else(|| crate::fast::provider_naming(workspace.context(), resource?));
    let entry = workspace.provider(name)?;
    if dpop.is_some() && !matches!(format, TokenFormat::Header | TokenFormat::Json) {
        return Err(Failure { code: 2, message: "--dpop-url goes with --format header or --json".into() });
    }
    let tokens = fresh_tokens(workspace, name, resource, min_valid).await?;
    let owner =
        output::TokenOwner { context: &workspace.context_name, name: &entry.name, provider_type: &entry.type_name };
    let now = SystemClock.now();
    let mut text = output::format_token(&tokens, format, now, &owner);
    if let Some(request) = dpop {
        let settings = dpop_settings(workspace, entry)?;
        let proof =
            tessera::dpop_proof_for(&settings, &tokens, &request.method, &request.url, request.nonce.as_deref(), now)
                .map_err(|error| Failure::error(format!("{}: {error}", entry.name)))?;
        text = output::with_dpop_proof(text, format, &proof);
    }
    print(&text)
}

/// The provider's DPoP settings (`dpop`, `dpop_key`, `dpop_alg`); an error when it has none. A
/// `dpop_key` reference is read only here, when a proof is asked for.
fn dpop_settings(
    workspace: &Workspace,
    entry: &tessera::config::ProviderEntry,
) -> Result<tessera::DpopSettings, Failure> {
    let not_dpop =
        || Failure::error(format!("{} does not use DPoP (dpop = true): --dpop-url has nothing to prove", entry.name));
    let spec = entry.spec().ok_or_else(not_dpop)?;
    if !spec.client.dpop {
        return Err(not_dpop());
    }
    if spec.client.dpop_key.is_none() {
        return Ok(tessera::DpopSettings { key: None, alg: spec.client.dpop_alg.clone() });
    }
    let config = entry
        .build(workspace.config.origin(), &workspace.context_name)
        .map_err(|error| workspace.failure(entry, error))?;
    config.client.dpop.ok_or_else(not_dpop)
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
    let tokens = fresh_tokens(workspace, name, None, min_valid).await?;
    let (program, args) =
        command.split_first().ok_or_else(|| Failure { code: 2, message: "no command given".into() })?;
    let mut command = std::process::Command::new(program);
    command.args(args).env(env, tokens.access_token.expose_secret());
    // Replace this process (execvp): signals such as Ctrl-C reach the command directly, and its
    // exit status, a signal death included, is what the caller sees. Returns only on failure.
    #[cfg(unix)]
    let error = std::os::unix::process::CommandExt::exec(&mut command);
    // Windows has no exec: the command runs as a child and its exit code becomes ours (Ctrl-C on
    // a console reaches every process attached to it, the child included). A code outside 0–255
    // (Windows codes are 32-bit, e.g. 0xC000013A after Ctrl-C) is reported as 1.
    #[cfg(not(unix))]
    let error = match command.status() {
        Ok(status) => return Ok(status.code().and_then(|code| u8::try_from(code).ok()).unwrap_or(1)),
        Err(error) => error,
    };
    // The shells' codes: 127 when the command is not found, 126 when it cannot be executed.
    let code = if error.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
    let what = if code == 127 { "command not found" } else { "cannot execute" };
    Err(Failure { code, message: format!("{program}: {what} ({error})") })
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

/// Logs out of one provider or all: revokes at the server (with the client's credentials only, so a
/// login secret that is unset cannot keep the grant alive) and forgets the tokens here. A revocation
/// that failed leaves the grant alive at the server until it expires: said, and exit 1.
pub async fn logout(workspace: &Workspace, name: Option<&str>, all: bool) -> Result<(), Failure> {
    let client = workspace.client()?;
    let results = if all {
        client.logout_each(None).await?
    } else {
        let entry = workspace.provider(name)?;
        client.logout_each(Some(&entry.name)).await?
    };
    let mut failures = Vec::new();
    for (name, result) in results {
        let is_static = workspace.provider(Some(&name)).is_ok_and(|entry| entry.kind() == Some(ProviderKind::Static));
        match result {
            // Forgotten here, alive at the server: a logout that did not do what it says.
            Ok(LogoutOutcome { had_tokens: true, revoked: false, revocation_error: Some(error) }) => {
                failures.push(format!(
                    "logout of {name}: revocation failed ({error}); the tokens were forgotten here, but the grant \
                     is still alive at the server until it expires"
                ))
            }
            Ok(outcome) => eprintln!("Logged out of {name} ({})", describe_logout(&outcome, is_static)),
            Err(error) => failures.push(format!("logout of {name} failed: {error}")),
        }
    }
    match failures.len() {
        0 => Ok(()),
        1 if !all => Err(Failure::error(failures.remove(0))),
        count => {
            for failure in &failures {
                eprintln!("error: {failure}");
            }
            Err(Failure::error(format!("{count} logout(s) failed")))
        }
    }
}

fn describe_logout(outcome: &LogoutOutcome, is_static: bool) -> String {
    match (outcome.had_tokens, outcome.revoked) {
        (false, _) => "was not logged in".to_owned(),
        (true, true) => "token revoked".to_owned(),
        (true, false) if is_static => "token forgotten; a static token is not revoked".to_owned(),
        (true, false) => {
            "the server has no revocation endpoint: tokens forgotten here, valid at the server until they expire"
                .to_owned()
        }
    }
}

/// One row of `status --json` (docs/cli.md, "JSON output").
#[derive(serde::Serialize)]
struct StatusRow {
    context: String,
    name: String,
    #[serde(rename = "type")]
    provider_type: String,
    key: String,
    status: ProviderStatus,
    description: String,
    /// Who is logged in, from the stored ID token's claims (display only; never a token).
    account: Option<tessera::core::protocol::Account>,
    /// The granted scope, when the server said.
    scope: Option<String>,
    /// RFC 3339.
    expires_at: Option<String>,
    /// Seconds from now (negative when past).
    expires_in: Option<i64>,
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
        let key = workspace.context().store_key(entry);
        // What the store holds (read only when the provider could be read: its error says the rest).
        let stored = match &error {
            None => workspace.store.load(&key).await.ok().flatten(),
            Some(_) => None,
        };
        rows.push(StatusRow {
            context: workspace.context_name.clone(),
            name: provider.name().to_owned(),
            provider_type: provider.provider_type().to_owned(),
            key,
            status: credential.as_ref().map_or(ProviderStatus::Error, Credential::status),
            description: provider.description(),
            account: stored.as_ref().and_then(TokenSet::account),
            scope: stored.and_then(|tokens| tokens.scope),
            expires_at: expires_at.map(output::rfc3339),
            expires_in: expires_at.map(|at| output::seconds_between(now, at)),
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
                let expires = row.error.clone().unwrap_or_else(|| output::relative(row.expires_in));
                let account = row.account.as_ref().and_then(|a| a.display()).unwrap_or("-").to_owned();
                let scope = row.scope.clone().unwrap_or_else(|| "-".into());
                vec![row.name.clone(), row.provider_type.clone(), row.status.to_string(), account, expires, scope]
            })
            .collect();
        let mut text = format!("context: {}\n", workspace.context_name);
        text.push_str(&output::table(&["NAME", "TYPE", "STATUS", "ACCOUNT", "EXPIRES", "SCOPE"], &cells));
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
        /// One row of `providers list --json`: the library's row and the context.
        #[derive(serde::Serialize)]
        struct Row<'a> {
            context: &'a str,
            #[serde(flatten)]
            info: &'a tessera::ProviderInfo,
        }
        let rows: Vec<Row<'_>> = rows.iter().map(|info| Row { context: &workspace.context_name, info }).collect();
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
