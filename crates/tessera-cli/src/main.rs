//! `tessera`: log in, print tokens for scripts and kubectl, run commands with a token, refresh,
//! log out, inspect providers and contexts — and serve the reference IdP.
//!
//! stdout carries data only (a token, JSON, a table, an issuer URL); messages go to stderr.
//! Exit codes: 0 ok, 1 error, 2 usage, 4 authentication required (`exec` passes its child's code).
//!
//! Interactive logins (device codes, browser sign-ins, emailed codes) are shown on stderr only when a
//! person can see them: by default when stdin and stderr are terminals (`--prompt auto`);
//! `--prompt always|never` or `TESSERA_PROMPT` decide otherwise. A command that needs one when none
//! may be shown exits with 4 and names the command to run in a terminal. Browser sign-ins open the
//! system browser unless `--no-browser` (`TESSERA_NO_BROWSER=1`): then the URL is only printed.
//! Device codes come with a QR code when the terminal is tall enough, never with `--no-qr`
//! (`TESSERA_NO_QR=1`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tessera::config::{Config, Context, Paths, ProviderEntry};
use tessera::prompt::TerminalPrompter;
use tessera::provider::{AuthProvider, OAuthProvider};
use tessera::registry::{ProviderSettings, Registry};
use tessera::store::{FileStore, LocalCopyStore, StoreConfig, TokenStore};
use tessera::{AuthClient, Error, Secret};

mod commands;
mod output;

use commands::{auth, config as config_cmd, idp, keys as keys_cmd, secret as secret_cmd};

use output::TokenFormat;

#[derive(Parser)]
#[command(name = "tessera", version, about = "Obtain, cache, refresh and revoke API tokens")]
struct Cli {
    /// Configuration context to use (default: current_context of the config file).
    #[arg(long, global = true, env = "TESSERA_CONTEXT")]
    context: Option<String>,
    /// When interactive logins (device codes, browser sign-ins, emailed codes) may prompt on stderr and
    /// wait for a person: `auto` when stdin and stderr are terminals, `always`, or `never` (exit 4 instead).
    #[arg(long, global = true, env = "TESSERA_PROMPT", value_enum, default_value = "auto", value_name = "WHEN")]
    prompt: PromptMode,
    /// Browser sign-ins: print the URL on stderr instead of opening a browser (to choose the browser
    /// or profile yourself, or over SSH with a fixed `redirect_uri`).
    /// `TESSERA_NO_BROWSER` takes 1/0, true/false, yes/no, on/off.
    #[arg(
        long,
        global = true,
        env = "TESSERA_NO_BROWSER",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    no_browser: bool,
    /// Device-code logins: no QR code, only the URL and the code (a QR code is drawn only when the
    /// terminal is tall enough anyway). `TESSERA_NO_QR` takes 1/0, true/false, yes/no, on/off.
    #[arg(
        long,
        global = true,
        env = "TESSERA_NO_QR",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    no_qr: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Log in with the provider's configured grant (or a token on stdin) and store the tokens.
    Login {
        #[command(flatten)]
        provider: ProviderArg,
        /// Log in to every provider of the context.
        #[arg(long, conflicts_with_all = ["provider", "with_token"])]
        all: bool,
        /// Read a token from stdin and store it (providers of type "static").
        #[arg(long)]
        with_token: bool,
    },
    /// Print a valid access token (refreshing or logging in again as needed).
    Token {
        #[command(flatten)]
        provider: ProviderArg,
        /// Get a new token if the current one expires within this long (e.g. 5m, 90s).
        #[arg(long, value_parser = output::parse_duration, value_name = "DURATION")]
        min_valid: Option<Duration>,
        /// Output format: raw token, JSON, an Authorization header, or a Kubernetes ExecCredential.
        #[arg(long, value_enum, default_value = "raw")]
        format: TokenFormat,
    },
    /// Refresh the token now if it is due (or always, with --force).
    Refresh {
        #[command(flatten)]
        provider: ProviderArg,
        /// Refresh even if the current token is still valid.
        #[arg(long)]
        force: bool,
    },
    /// Show every provider of the context and the state of its tokens (exit 1 if one is in error).
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke the tokens at the server (when it supports it) and forget them.
    Logout {
        #[command(flatten)]
        provider: ProviderArg,
        /// Log out of every provider of the context.
        #[arg(long, conflicts_with = "provider")]
        all: bool,
    },
    /// The configured providers.
    Providers {
        #[command(subcommand)]
        command: auth::ProvidersCommand,
    },
    /// Contexts of the configuration file.
    Config {
        #[command(subcommand)]
        command: config_cmd::ConfigCommand,
    },
    /// Run a command with a fresh token in its environment; exits with the command's exit code.
    Exec {
        #[command(flatten)]
        provider: ProviderArg,
        /// The environment variable that receives the token.
        #[arg(long = "env", value_name = "NAME", default_value = "TESSERA_TOKEN")]
        env: String,
        /// Get a new token if the current one expires within this long.
        #[arg(long, value_parser = output::parse_duration, value_name = "DURATION")]
        min_valid: Option<Duration>,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Your API keys at the provider's server: create (the secret is shown once), list, get, revoke.
    Keys(keys_cmd::KeysArgs),
    /// Administration: every user's API keys (`tessera admin keys list|get|revoke`; admins only).
    Admin(keys_cmd::AdminArgs),
    /// Put secrets into the OS keyring (for `keyring:` references in the configuration), or remove them.
    Secret {
        #[command(subcommand)]
        command: secret_cmd::SecretCommand,
    },
    /// Print a shell completion script (e.g. `tessera completions bash > /etc/bash_completion.d/tessera`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The reference identity server.
    Idp {
        #[command(subcommand)]
        command: idp::IdpCommand,
    },
}

/// When interactive logins may be shown (`--prompt`, `TESSERA_PROMPT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PromptMode {
    /// When stdin and stderr are terminals.
    Auto,
    /// Always (the code goes to stderr even when it is not a terminal; tests and wrappers that
    /// forward stderr to a person).
    Always,
    /// Never: a command that needs a person exits with code 4.
    Never,
}

impl PromptMode {
    /// True when a person can be asked.
    fn allows_prompt(self) -> bool {
        use std::io::IsTerminal;
        match self {
            PromptMode::Always => true,
            PromptMode::Never => false,
            PromptMode::Auto => std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        }
    }
}

#[derive(Args)]
struct ProviderArg {
    /// Provider name (default: $TESSERA_PROVIDER, else the context's only provider).
    #[arg(long, short = 'p')]
    provider: Option<String>,
}

impl ProviderArg {
    /// `--provider`, else `TESSERA_PROVIDER` (read here rather than by clap, so that the variable
    /// does not conflict with `--all` the way an explicit `--provider` does).
    fn name(self) -> Option<String> {
        self.provider.or_else(|| std::env::var("TESSERA_PROVIDER").ok().filter(|p| !p.is_empty()))
    }
}

/// A failure with its exit code.
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// Exit code 1 with `message`.
    pub fn error(message: impl Into<String>) -> Self {
        Failure { code: 1, message: message.into() }
    }
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
        // A log line during a login first clears the spinner line it would otherwise follow.
        .with_writer(|| {
            TerminalPrompter::clear_spinner_line();
            std::io::stderr()
        })
        // Colours only on a terminal: scripts capture stderr and must not get escape codes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // One thread: `tessera token` on a valid stored token must start fast.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Runs a command; `Ok` carries the exit code (0, or the child's for `exec`).
async fn run(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Idp { command } => return idp::run(command).await.map(|()| 0).map_err(Failure::error),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "tessera", &mut std::io::stdout());
            return Ok(0);
        }
        Command::Config { command } => return config_cmd::run(command, cli.context.as_deref()).map(|()| 0),
        Command::Secret { command } => return secret_cmd::run(command).map(|()| 0),
        _ => {}
    }
    let prompter = cli.prompt.allows_prompt().then(|| {
        let prompter = TerminalPrompter::new();
        let prompter = if cli.no_browser { prompter.no_browser() } else { prompter };
        if cli.no_qr { prompter.without_qr_code() } else { prompter }
    });
    let workspace = Workspace::open(cli.context.as_deref(), prompter)?;
    let result = match cli.command {
        Command::Login { provider, all, with_token } => {
            auth::login(&workspace, provider.name().as_deref(), all, with_token).await.map(|()| 0)
        }
        Command::Token { provider, min_valid, format } => {
            auth::token(&workspace, provider.name().as_deref(), min_valid.unwrap_or_default(), format).await.map(|()| 0)
        }
        Command::Refresh { provider, force } => {
            auth::refresh(&workspace, provider.name().as_deref(), force).await.map(|()| 0)
        }
        Command::Status { json } => auth::status(&workspace, json).await.map(|()| 0),
        Command::Logout { provider, all } => {
            auth::logout(&workspace, provider.name().as_deref(), all).await.map(|()| 0)
        }
        Command::Providers { command } => auth::providers(&workspace, command).await.map(|()| 0),
        Command::Exec { provider, env, min_valid, command } => {
            auth::exec(&workspace, provider.name().as_deref(), &env, min_valid.unwrap_or_default(), &command).await
        }
        Command::Keys(args) => keys_cmd::keys(&workspace, args).await.map(|()| 0),
        Command::Admin(args) => keys_cmd::admin(&workspace, args).await.map(|()| 0),
        Command::Idp { .. } | Command::Completions { .. } | Command::Config { .. } | Command::Secret { .. } => {
            unreachable!("handled above")
        }
    };
    workspace.finish_prompt();
    result
}

/// The provider types this binary knows (nothing interactive can be shown).
pub fn registry() -> Registry {
    registry_with_prompter(None)
}

/// The provider types this binary knows; types that may ask a person show their prompts with `prompter`
/// (`None`: they fail with "authentication required" instead of prompting).
pub fn registry_with_prompter(prompter: Option<TerminalPrompter>) -> Registry {
    let mut registry = Registry::default();
    if let Some(prompter) = prompter {
        for kind in tessera::core::provider_spec::ProviderKind::ALL.into_iter().filter(|kind| kind.may_prompt()) {
            let prompter = prompter.clone();
            registry.register_factory(kind.as_str(), move |settings: &ProviderSettings<'_>| {
                // Browser sign-ins count down from the provider's own login_timeout.
                let prompter = match settings.entry().loopback_settings() {
                    Some(loopback) => prompter.clone().with_login_timeout(loopback.timeout),
                    None => prompter.clone(),
                };
                let provider = OAuthProvider::from_settings(settings)?.with_prompter(Arc::new(prompter));
                Ok(Arc::new(provider) as Arc<dyn AuthProvider>)
            });
        }
    }
    registry
}

/// Reads the configuration file named by the environment, with a hint when there is none.
pub fn load_config(registry: &Registry) -> Result<(Paths, Config), Failure> {
    let paths = Paths::from_env()?;
    if !paths.config_file.exists() {
        return Err(Failure::error(format!(
            "no configuration at {} (set TESSERA_HOME or TESSERA_CONFIG; see docs/configuration.md)",
            paths.config_file.display()
        )));
    }
    let config = registry.load_config(&paths.config_file)?;
    Ok((paths, config))
}

/// The loaded configuration, its chosen context and the token store.
pub struct Workspace {
    config: Config,
    context_name: String,
    store: Arc<dyn TokenStore>,
    registry: Registry,
    /// Shows interactive logins; `None` when nobody can be asked.
    prompter: Option<TerminalPrompter>,
}

impl Workspace {
    fn open(context: Option<&str>, prompter: Option<TerminalPrompter>) -> Result<Workspace, Failure> {
        let registry = registry_with_prompter(prompter.clone());
        let (paths, config) = load_config(&registry)?;
        let context_name = config.context(context)?.name.clone();
        let store = match &config.context(context)?.store {
            // A shared store gets a local copy of its last answers: a still-valid token keeps being
            // served through an outage (a fresh process has nothing in memory).
            Some(store @ StoreConfig::Redis { .. }) => {
                let shared = tessera::store::open(store, &paths.store_dir)?;
                let copy_dir = paths.store_dir.join("shared-copy").join(Secret::new(shared.location()).fingerprint());
                Arc::new(LocalCopyStore::new(shared, copy_dir))
            }
            Some(store) => tessera::store::open(store, &paths.store_dir)?,
            None => Arc::new(FileStore::new(paths.store_dir)),
        };
        Ok(Workspace { config, context_name, store, registry, prompter })
    }

    /// The login (if any) has ended: stops the countdown so that what follows starts on a clean line.
    fn finish_prompt(&self) {
        if let Some(prompter) = &self.prompter {
            prompter.finish();
        }
    }

    /// Exit code 4 when `error` means only a login can help, with the command that logs in to
    /// `entry` (run in a terminal when its login needs a person); otherwise as `Failure::from`.
    fn failure(&self, entry: &ProviderEntry, error: Error) -> Failure {
        if let Some(text) = self.explain(entry, &error) {
            return Failure::error(format!("login to {} failed: {text}", entry.name));
        }
        if !needs_login(&error) {
            return error.into();
        }
        let command = format!("tessera login --provider {}", entry.name);
        let hint =
            if entry.is_interactive() { format!("run '{command}' in a terminal") } else { format!("run '{command}'") };
        Failure { code: 4, message: format!("{error}\nhint: {hint}") }
    }

    /// Words for a person when `error` ended a device login of `entry` that showed a code (expired,
    /// denied), instead of the protocol's (`expired_token (HTTP 400)`).
    fn explain(&self, entry: &ProviderEntry, error: &Error) -> Option<String> {
        let command = format!("tessera login --provider {}", entry.name);
        self.prompter.as_ref()?.explain(&self.context().store_key(entry), error, &command)
    }

    fn context(&self) -> &Context {
        self.config.context(Some(&self.context_name)).expect("context checked in open")
    }

    fn provider(&self, name: Option<&str>) -> Result<&ProviderEntry, Failure> {
        Ok(self.context().provider(name)?)
    }

    /// Builds one provider (no secret read, nothing sent).
    fn build(&self, entry: &ProviderEntry) -> Result<Arc<dyn tessera::provider::AuthProvider>, Failure> {
        Ok(self.registry.build(&self.config, self.context(), entry, Arc::clone(&self.store))?)
    }

    /// Every provider of the context behind the facade.
    fn client(&self) -> Result<AuthClient, Failure> {
        Ok(AuthClient::from_config(&self.registry, &self.config, Some(&self.context_name), Arc::clone(&self.store))?)
    }
}
