//! `tessera`: log in, print tokens for scripts, refresh, log out — and serve the reference IdP.
//!
//! stdout carries data only (a token, JSON, an issuer URL); messages go to stderr.
//! Exit codes: 0 ok, 1 error, 2 usage, 4 authentication required.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tessera::clock::{Clock, SystemClock};
use tessera::config::{Config, Context, Paths, ProviderEntry};
use tessera::store::{FileStore, TokenStore};
use tessera::{Error, Session, Timestamp, TokenSet};

mod idp;

#[derive(Parser)]
#[command(name = "tessera", version, about = "Obtain, cache, refresh and revoke API tokens")]
struct Cli {
    /// Configuration context to use (default: current_context of the config file).
    #[arg(long, global = true, env = "TESSERA_CONTEXT")]
    context: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Log in with the provider's configured grant and store the tokens.
    Login(ProviderArg),
    /// Print a valid access token (refreshing or logging in again as needed).
    Token(ProviderArg),
    /// Refresh the token now if it is due (or always, with --force).
    Refresh {
        #[command(flatten)]
        provider: ProviderArg,
        /// Refresh even if the current token is still valid.
        #[arg(long)]
        force: bool,
    },
    /// Show every provider of the context and the state of its tokens.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke the tokens at the server (when it supports it) and forget them.
    Logout(ProviderArg),
    /// The reference identity server.
    Idp {
        #[command(subcommand)]
        command: idp::IdpCommand,
    },
}

#[derive(Args)]
struct ProviderArg {
    /// Provider name (default: the context's only provider).
    #[arg(long, short = 'p', env = "TESSERA_PROVIDER")]
    provider: Option<String>,
}

/// A failure with its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let code = if needs_login(&error) { 4 } else { 1 };
        let mut message = error.to_string();
        if code == 4 {
            message.push_str("\nhint: run `tessera login`");
        }
        Failure { code, message }
    }
}

fn needs_login(error: &Error) -> bool {
    error.requires_reauthentication() || matches!(error.oauth_code(), Some(tessera::OAuthErrorCode::InvalidGrant))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        // Colours only on a terminal: scripts capture stderr and must not get escape codes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Idp { command } = cli.command {
        return idp::run(command).await.map_err(|message| Failure { code: 1, message });
    }
    let workspace = Workspace::open(cli.context.as_deref())?;
    match cli.command {
        Command::Login(arg) => login(&workspace, arg.provider.as_deref()).await,
        Command::Token(arg) => token(&workspace, arg.provider.as_deref()).await,
        Command::Refresh { provider, force } => refresh(&workspace, provider.provider.as_deref(), force).await,
        Command::Status { json } => status(&workspace, json).await,
        Command::Logout(arg) => logout(&workspace, arg.provider.as_deref()).await,
        Command::Idp { .. } => unreachable!("handled above"),
    }
}

/// The loaded configuration, its chosen context and the token store.
struct Workspace {
    config: Config,
    context_name: String,
    store: Arc<FileStore>,
}

impl Workspace {
    fn open(context: Option<&str>) -> Result<Workspace, Failure> {
        let paths = Paths::from_env()?;
        if !paths.config_file.exists() {
            return Err(Failure {
                code: 1,
                message: format!(
                    "no configuration at {} (set TESSERA_HOME or TESSERA_CONFIG; see docs/getting-started.md)",
                    paths.config_file.display()
                ),
            });
        }
        let config = Config::load(&paths.config_file)?;
        let context_name = config.context(context)?.name.clone();
        Ok(Workspace { config, context_name, store: Arc::new(FileStore::new(paths.store_dir)) })
    }

    fn context(&self) -> &Context {
        self.config.context(Some(&self.context_name)).expect("context checked in open")
    }

    fn provider(&self, name: Option<&str>) -> Result<&ProviderEntry, Failure> {
        Ok(self.context().provider(name)?)
    }

    fn session(&self, provider: &ProviderEntry) -> Result<Session, Failure> {
        let config = provider.build(self.config.origin(), &self.context_name)?;
        Ok(Session::builder(self.context().store_key(provider), config).store(self.store.clone()).build())
    }
}

async fn login(workspace: &Workspace, name: Option<&str>) -> Result<(), Failure> {
    let provider = workspace.provider(name)?;
    // A refused login is a plain failure (exit 1): "run `tessera login`" would be no help here.
    let header =
        workspace.session(provider)?.login().await.map_err(|error| Failure { code: 1, message: error.to_string() })?;
    eprintln!("Logged in to {} ({}){}", provider.name, workspace.context_name, describe_expiry(header.tokens()));
    Ok(())
}

async fn token(workspace: &Workspace, name: Option<&str>) -> Result<(), Failure> {
    let provider = workspace.provider(name)?;
    let key = workspace.context().store_key(provider);
    // Fast path: a stored token outside its refresh window is printed without resolving secrets,
    // building an HTTP client or touching the network.
    if let Some(tokens) = workspace.store.load(&key).await?
        && tokens
            .access_valid(SystemClock.now(), tokens.refresh_window(tessera::SessionSettings::default().refresh_skew))
    {
        println!("{}", tokens.access_token.expose_secret());
        return Ok(());
    }
    let session = workspace.session(provider)?;
    let header = session.authorization_header().await?;
    println!("{}", header.access_token().expose_secret());
    Ok(())
}

async fn refresh(workspace: &Workspace, name: Option<&str>, force: bool) -> Result<(), Failure> {
    let provider = workspace.provider(name)?;
    let session = workspace.session(provider)?;
    let header = if force { session.force_refresh().await? } else { session.authorization_header().await? };
    eprintln!("Token for {} is fresh{}", provider.name, describe_expiry(header.tokens()));
    Ok(())
}

async fn logout(workspace: &Workspace, name: Option<&str>) -> Result<(), Failure> {
    let provider = workspace.provider(name)?;
    let key = workspace.context().store_key(provider);
    // Logging out needs no secrets when the provider cannot revoke; build the session only if we can.
    let outcome = match workspace.session(provider) {
        Ok(session) => session.logout().await?,
        Err(failure) => {
            workspace.store.clear(&key).await?;
            eprintln!("warning: tokens forgotten without revocation ({})", failure.message);
            return Ok(());
        }
    };
    let detail = match (outcome.had_tokens, outcome.revoked, &outcome.revocation_error) {
        (false, _, _) => "was not logged in".to_owned(),
        (true, true, _) => "token revoked".to_owned(),
        (true, false, None) => "the server has no revocation endpoint; tokens forgotten".to_owned(),
        (true, false, Some(error)) => format!("revocation failed ({error}); tokens forgotten"),
    };
    eprintln!("Logged out of {} ({detail})", provider.name);
    Ok(())
}

#[derive(serde::Serialize)]
struct ProviderStatus {
    name: String,
    provider: String,
    key: String,
    status: &'static str,
    expires_at: Option<i64>,
    expires_in_secs: Option<i64>,
    refreshable: bool,
    error: Option<String>,
}

async fn status(workspace: &Workspace, json: bool) -> Result<(), Failure> {
    let now = SystemClock.now();
    let mut rows = Vec::new();
    for provider in &workspace.context().providers {
        let key = workspace.context().store_key(provider);
        let (tokens, error) = match workspace.store.load(&key).await {
            Ok(tokens) => (tokens, None),
            Err(error) => (None, Some(error.to_string())),
        };
        rows.push(status_row(provider, key, tokens.as_ref(), error, now));
    }
    if json {
        let text = serde_json::to_string_pretty(&rows).map_err(|e| Failure { code: 1, message: e.to_string() })?;
        println!("{text}");
        return Ok(());
    }
    println!("context: {}", workspace.context_name);
    println!("{:<20} {:<20} {:<16} EXPIRES", "NAME", "TYPE", "STATUS");
    for row in &rows {
        let expires = match (row.expires_in_secs, &row.error) {
            (_, Some(error)) => error.clone(),
            (Some(secs), None) if secs >= 0 => format!("in {}", human_duration(Duration::from_secs(secs as u64))),
            (Some(secs), None) => format!("{} ago", human_duration(Duration::from_secs(secs.unsigned_abs()))),
            (None, None) => "-".into(),
        };
        println!("{:<20} {:<20} {:<16} {expires}", row.name, row.provider, row.status);
    }
    Ok(())
}

fn status_row(
    provider: &ProviderEntry,
    key: String,
    tokens: Option<&TokenSet>,
    error: Option<String>,
    now: Timestamp,
) -> ProviderStatus {
    let status = match (tokens, &error) {
        (_, Some(_)) => "error",
        (None, None) => "logged_out",
        (Some(tokens), None) if !tokens.is_expired(now) => "authenticated",
        (Some(_), None) => "expired", // `refreshable` says whether `tessera token` can renew it
    };
    let expires_at = tokens.and_then(|t| t.expires_at);
    ProviderStatus {
        name: provider.name.clone(),
        provider: provider.provider.clone(),
        key,
        status,
        expires_at: expires_at.map(Timestamp::as_unix_secs),
        expires_in_secs: expires_at.map(|at| (at.as_unix_millis() - now.as_unix_millis()).div_euclid(1000)),
        refreshable: tokens.is_some_and(|t| t.refresh_valid(now, Duration::ZERO))
            || provider.provider == "client_credentials",
        error,
    }
}

fn describe_expiry(tokens: &TokenSet) -> String {
    match tokens.expires_at {
        // Rounded to the nearest second: a fresh 300 s token reads "5m00s", not "4m59s".
        Some(at) => format!(
            "; expires in {}",
            human_duration(at.duration_since(SystemClock.now()) + Duration::from_millis(500))
        ),
        None => String::new(),
    }
}

fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
        _ => format!("{}d{:02}h", secs / 86400, (secs % 86400) / 3600),
    }
}
