//! `tessera`: log in, print tokens for scripts and kubectl, run commands with a token, refresh,
//! log out, inspect providers and contexts — and start the reference IdP (the separate program
//! `tessera-idp`, see `commands::idp`).
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
//!
//! On Linux with glibc the process starts in `startup::main` (the C `main`: std's own start-up is
//! skipped, see startup.rs), elsewhere in std's `main`; both run [`run_main`].

// The unit tests' harness brings its own `main`. Only on Linux with glibc, where the start-up was
// measured and startup.rs's libc calls exist; elsewhere std's own `main` (at the end of this file).
#![cfg_attr(all(not(test), target_os = "linux", target_env = "gnu"), no_main)]

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tessera::config::{Config, Context, Paths, ProviderEntry};
use tessera::prompt::TerminalPrompter;
use tessera::provider::{AuthProvider, OAuthProvider};
use tessera::registry::{ProviderSettings, Registry};
use tessera::store::{FileStore, LocalCopyStore, StoreConfig, TokenStore};
use tessera::{AuthClient, Error, Secret};

// First: its `eprintln!`/`eprint!` (which do not panic on a closed stderr) serve the modules below.
#[macro_use]
mod output;
mod commands;
mod complete;
mod fast;
mod help;
#[cfg(all(not(test), target_os = "linux", target_env = "gnu"))]
mod startup;

use commands::{auth, config as config_cmd, idp, keys as keys_cmd, man, secret as secret_cmd};

use output::TokenFormat;

/// The exit codes, shown by `--help` (docs/cli.md has the same table).
const EXIT_CODES: &str = "\
Exit codes:
  0    done
  1    an error: a refused login or refused credentials (the message names the secret reference to fix),
       a server or network failure, a bad configuration, a logout whose revocation failed
  2    usage: unknown command or flag, a bad value
  4    authentication required: a login would help (the message names the command to run)
  126  exec: the command cannot be executed
  127  exec: the command was not found
  141  stdout was closed before everything was written (e.g. `| head -1`)
  other  exec: the command's own exit code";

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Obtain, cache, refresh and revoke API tokens",
    after_help = format!("{}\n{EXIT_CODES}", help::TOP)
)]
struct Cli {
    /// Configuration context to use (default: current_context of the config file).
    #[arg(long, global = true, env = "TESSERA_CONTEXT", add = complete::context_names())]
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
    /// None: `tessera` alone prints the help and exits 0, as gh and kubectl do.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Log in with the provider's configured grant (or a token on stdin) and store the tokens.
    #[command(after_help = help::LOGIN)]
    Login {
        #[command(flatten)]
        provider: ProviderArg,
        /// Log in to every provider of the context.
        #[arg(long, conflicts_with_all = ["provider", "with_token", "resources"])]
        all: bool,
        /// Read a token from stdin and store it (providers of type "static").
        #[arg(long, conflicts_with = "resources")]
        with_token: bool,
        /// Log in to the API at this URL: its authorization server is discovered, a client
        /// registered, and a provider with `resource = URL` added to the context when it has none
        /// (docs/resource-login.md). More URLs: other resources of the same server the one login
        /// also serves.
        #[arg(value_name = "URL", conflicts_with = "provider")]
        resources: Vec<String>,
        /// The name of the provider `tessera login URL` adds (default: from the URL).
        #[arg(long, requires = "resources")]
        name: Option<String>,
    },
    /// Print a valid access token (refreshing or logging in again as needed).
    #[command(after_help = help::TOKEN)]
    Token {
        #[command(flatten)]
        provider: ProviderArg,
        /// Get a new token if the current one expires within this long (e.g. 5m, 90s).
        #[arg(long, value_parser = output::parse_duration, value_name = "DURATION")]
        min_valid: Option<Duration>,
        /// Output format: raw token, JSON, an Authorization header, or a Kubernetes ExecCredential.
        #[arg(long, value_enum, default_value = "raw")]
        format: TokenFormat,
        /// Print JSON (the same as --format json).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// A token for this resource (RFC 8707): another API the provider's login also serves
        /// (default: the provider's `resource`).
        #[arg(long, value_name = "URL")]
        resource: Option<String>,
        /// DPoP providers: also print a proof for a request to this URL (with --format header: a
        /// `DPoP:` line after `Authorization: DPoP ...`; with --json: "dpop").
        #[arg(long, value_name = "URL")]
        dpop_url: Option<String>,
        /// The method of that request (default GET).
        #[arg(long, value_name = "METHOD", default_value = "GET", requires = "dpop_url")]
        dpop_method: String,
        /// The nonce the API gave (its DPoP-Nonce header after a use_dpop_nonce answer).
        #[arg(long, value_name = "NONCE", requires = "dpop_url")]
        dpop_nonce: Option<String>,
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
    #[command(after_help = help::STATUS)]
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke the tokens at the server (when it supports it) and forget them.
    #[command(after_help = help::LOGOUT)]
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
    /// The configuration file: create it (init), view it, switch contexts and providers.
    #[command(after_help = help::CONFIG)]
    Config {
        #[command(subcommand)]
        command: config_cmd::ConfigCommand,
    },
    /// Run a command with a fresh token in its environment; exits with the command's exit code.
    #[command(after_help = help::EXEC)]
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
    #[command(after_help = help::KEYS)]
    Keys(keys_cmd::KeysArgs),
    /// Administration: every user's API keys (`tessera admin keys list|get|revoke`; admins only).
    Admin(keys_cmd::AdminArgs),
    /// Put secrets into the OS keyring (for `keyring:` references in the configuration), or remove them.
    Secret {
        #[command(subcommand)]
        command: secret_cmd::SecretCommand,
    },
    /// Print a shell completion script: commands, flags, and provider and context names from your
    /// configuration (e.g. `source <(tessera completions bash)`; docs/cli.md has zsh and fish).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The reference identity server, for demos and tests: runs the separate program `tessera-idp`
    /// with these arguments (`tessera idp serve --help` lists its options).
    #[command(disable_help_flag = true)]
    Idp {
        /// `serve [OPTIONS]`, passed to `tessera-idp` as given.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<std::ffi::OsString>,
    },
    /// Write the man pages (roff): tessera.1 on stdout, or with --dir every page
    /// (tessera.1, tessera-login.1, ...) into DIR, e.g. ~/.local/share/man/man1.
    #[command(hide = true)]
    Man {
        /// The directory to write every page into (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
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
    /// Provider name (default: $TESSERA_PROVIDER, else the context's only provider, else its current_provider).
    #[arg(long, short = 'p', add = complete::provider_names())]
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

    /// Exit `code` without a message (stdout closed by its reader).
    pub fn quiet(code: u8) -> Self {
        Failure { code, message: String::new() }
    }
}

impl From<Error> for Failure {
    /// Without a provider to name, no login command can be given: 4 when only a login can help,
    /// else 1. Errors about one provider go through [`Workspace::failure`], which names the fix.
    fn from(error: Error) -> Self {
        let code = if error.requires_reauthentication() { 4 } else { 1 };
        Failure { code, message: error.to_string() }
    }
}

/// True when the server refused the configured credentials themselves (a wrong password, a missing
/// TOTP code, an unknown client): logging in would send them again, so only fixing them helps.
fn credentials_refused(error: &Error) -> bool {
    use tessera::OAuthErrorCode as C;
    matches!(error.oauth_code(), Some(C::InvalidGrant | C::InvalidClient | C::UnauthorizedClient))
}

/// Log lines shown without `TESSERA_LOG`: tessera's own warnings. Dependencies' logs (a TLS
/// verifier's, an HTTP stack's) repeat what tessera's error says; `TESSERA_LOG=debug` shows them.
const DEFAULT_LOG_FILTER: &str = "off,tessera=warn,tessera_core=warn,tessera_cli=warn,tessera_idp=warn";

/// The program, after `startup::main`: its exit code.
/// Std's own start-up, where startup.rs does not replace it (not Linux with glibc).
#[cfg(all(not(test), not(all(target_os = "linux", target_env = "gnu"))))]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(run_main())
}

#[cfg_attr(test, allow(dead_code))]
fn run_main() -> u8 {
    // Shell completion (`COMPLETE=bash tessera -- <words>`, what the script of `tessera completions`
    // runs on TAB): answers and exits before anything else runs.
    complete::complete_env().complete();
    init_logging();
    // `tessera token` on a valid stored token: answered here, before the command-line parser and
    // the async runtime start (fast.rs); anything else goes on below.
    if let Some(code) = fast::token(std::env::args_os().skip(1)) {
        return code;
    }
    let cli = Cli::parse();
    // One thread: a command that needs the network (or a refresh) runs on it.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return 1;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(failure) => exit(failure),
    }
}

/// Prints `failure`'s message (if any) on stderr; its exit code.
fn exit(failure: Failure) -> u8 {
    if !failure.message.is_empty() {
        eprintln!("error: {}", failure.message);
    }
    failure.code
}

/// Log lines go to stderr, filtered by `TESSERA_LOG` (default [`DEFAULT_LOG_FILTER`]).
fn init_logging() {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter =
        std::env::var("TESSERA_LOG").ok().and_then(|value| log_filter(&value)).unwrap_or_else(default_log_filter);
    tracing_subscriber::fmt()
        // Everything reaches the `Targets` filter layered on top (the builder's own default is INFO).
        .with_max_level(tracing::level_filters::LevelFilter::TRACE)
        // A log line during a login first clears the spinner line it would otherwise follow.
        .with_writer(|| {
            TerminalPrompter::clear_spinner_line();
            std::io::stderr()
        })
        // Colours only on a terminal, and never with NO_COLOR (no-color.org): scripts capture
        // stderr and must not get escape codes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && !no_color)
        .finish()
        .with(filter)
        .init();
}

/// `TESSERA_LOG`'s filter: comma-separated `target=level` directives and a bare `level` for every
/// target, as `RUST_LOG` takes them; `None` when one is not valid (the default filter then applies).
///
/// A `Targets` filter, not `EnvFilter`: the same directives without `EnvFilter`'s span and field-value
/// filters, whose regular-expression engine was 0.25 MB of a 9 MB binary (docs/DECISIONS.md). Empty
/// directives are skipped, as `EnvFilter` skips them; no directive at all logs nothing.
fn log_filter(value: &str) -> Option<tracing_subscriber::filter::Targets> {
    let directives: Vec<&str> = value.split(',').filter(|directive| !directive.is_empty()).collect();
    if directives.is_empty() {
        return Some(tracing_subscriber::filter::Targets::new());
    }
    directives.join(",").parse().ok()
}

/// [`DEFAULT_LOG_FILTER`] (a constant that parses: a unit test checks it).
fn default_log_filter() -> tracing_subscriber::filter::Targets {
    log_filter(DEFAULT_LOG_FILTER).unwrap_or_default()
}

/// Runs a command; `Ok` carries the exit code (0, or the child's for `exec`).
async fn run(cli: Cli) -> Result<u8, Failure> {
    let Some(command) = cli.command else {
        // stdout, coloured only on a terminal (and without NO_COLOR); exit 0: asking what tessera
        // does is not a mistake. Through output::stdout, so a closed pipe exits 141 quietly.
        let help = <Cli as clap::CommandFactory>::command().render_help();
        let colour = std::io::IsTerminal::is_terminal(&std::io::stdout())
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let text = if colour { help.ansi().to_string() } else { help.to_string() };
        return output::stdout(&text).map(|()| 0);
    };
    match command {
        Command::Man { dir } => return man::run(<Cli as clap::CommandFactory>::command(), dir).map(|()| 0),
        Command::Idp { args } => return Err(idp::run(args)),
        Command::Completions { shell } => return output::stdout(&complete::registration(shell)?).map(|()| 0),
        Command::Config { command } => {
            return config_cmd::run(command, cli.context.as_deref(), cli.prompt.allows_prompt()).map(|()| 0);
        }
        Command::Secret { command } => return secret_cmd::run(command).map(|()| 0),
        _ => {}
    }
    let prompter = cli.prompt.allows_prompt().then(|| {
        let prompter = TerminalPrompter::new();
        let prompter = if cli.no_browser { prompter.no_browser() } else { prompter };
        if cli.no_qr { prompter.without_qr_code() } else { prompter }
    });
    // `tessera login URL`: the provider for that resource, added to the file when it has none.
    let resource_provider = match &command {
        Command::Login { resources, name, .. } if !resources.is_empty() => {
            let paths = Paths::from_env()?;
            let context =
                cli.context.clone().or_else(|| std::env::var("TESSERA_CONTEXT").ok().filter(|c| !c.is_empty()));
            let registry = registry();
            let types = registry.type_names();
            let name = tessera::config::add_resource_provider(
                &paths.config_file,
                context.as_deref(),
                name.as_deref(),
                &resources[0],
                &types,
            )?;
            Some(name)
        }
        _ => None,
    };
    let workspace = Workspace::open(cli.context.as_deref(), prompter)?;
    let result = match command {
        Command::Login { provider, all, with_token, resources, name: _ } if resources.is_empty() => {
            auth::login(&workspace, provider.name().as_deref(), all, with_token).await.map(|()| 0)
        }
        Command::Login { resources, .. } => {
            auth::login_resource(&workspace, resource_provider.as_deref(), &resources[1..]).await.map(|()| 0)
        }
        Command::Token { provider, min_valid, format, json, resource, dpop_url, dpop_method, dpop_nonce } => {
            let format = if json { TokenFormat::Json } else { format };
            let dpop = dpop_url.map(|url| auth::DpopRequest { method: dpop_method, url, nonce: dpop_nonce });
            let name = provider.name();
            auth::token(&workspace, name.as_deref(), resource.as_deref(), min_valid.unwrap_or_default(), format, dpop)
                .await
                .map(|()| 0)
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
        Command::Idp { .. }
        | Command::Completions { .. }
        | Command::Config { .. }
        | Command::Secret { .. }
        | Command::Man { .. } => {
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
        // The path actually looked at and why there, and the command that creates it: a user
        // who installed a binary has no source tree to look things up in.
        return Err(Failure::error(format!(
            "no configuration file at {} ({})\nhint: run `tessera config init` to create one, \
             or set TESSERA_HOME (a directory) or TESSERA_CONFIG (a file)",
            paths.config_file.display(),
            config_origin()
        )));
    }
    let config = registry.load_config(&paths.config_file)?;
    Ok((paths, config))
}

/// Why the configuration file is where [`Paths::from_env`] says, for messages.
pub fn config_origin() -> &'static str {
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    if set("TESSERA_CONFIG") {
        "named by TESSERA_CONFIG"
    } else if set("TESSERA_HOME") {
        "in TESSERA_HOME"
    } else {
        "the default location; TESSERA_HOME is not set"
    }
}

/// The loaded configuration, its chosen context and the token store.
pub struct Workspace {
    config: Config,
    context_name: String,
    store: Arc<dyn TokenStore>,
    registry: Registry,
    /// Shows interactive logins; `None` when nobody can be asked.
    prompter: Option<TerminalPrompter>,
    /// `--context` (or `TESSERA_CONTEXT`) as given, repeated in hints.
    context_given: Option<String>,
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
        Ok(Workspace { config, context_name, store, registry, prompter, context_given: context.map(str::to_owned) })
    }

    /// The login (if any) has ended: stops the countdown so that what follows starts on a clean line.
    fn finish_prompt(&self) {
        if let Some(prompter) = &self.prompter {
            prompter.finish();
        }
    }

    /// The command that logs in to `entry`, with `--context` repeated when one was given (flag or
    /// `TESSERA_CONTEXT`) and `--provider` always: the hint must work where it is shown.
    pub(crate) fn login_command(&self, entry: &ProviderEntry, extra: &str) -> String {
        let mut command = String::from("tessera");
        if let Some(context) = &self.context_given {
            command.push_str(&format!(" --context {}", output::shell_word(context)));
        }
        command.push_str(&format!(" login --provider {}{extra}", output::shell_word(&entry.name)));
        command
    }

    /// The failure for `error` from `entry`, with an exit code and a hint that fit the provider's type:
    /// - the server refused the configured credentials (wrong password, missing TOTP code, unknown
    ///   client): exit 1, naming the secret references to fix (never their values);
    /// - only a new login helps: exit 4 with the login command (in a terminal when it needs a person;
    ///   `--with-token` for a static provider without a token);
    /// - a refresh-token provider whose refresh token is dead, a static token that expired: exit 1,
    ///   naming the reference that needs a new token (no login can help);
    /// - anything else: exit 1.
    fn failure(&self, entry: &ProviderEntry, error: Error) -> Failure {
        // An expired or denied device code, in words (the prompter knows the code it showed).
        if let Some(text) = self.explain(entry, &error) {
            return Failure::error(format!("login to {} failed: {text}", entry.name));
        }
        use tessera::core::provider_spec::ProviderKind as K;
        if credentials_refused(&error) {
            let grant_refused = error.oauth_code() == Some(&tessera::OAuthErrorCode::InvalidGrant);
            let configured = |field: &str| self.secret_fields(entry).iter().any(|(name, _)| name == field);
            // What proves who the user or the client is, for this provider: the fix to name.
            let (what, fields): (&str, &[&str]) = match entry.kind() {
                Some(K::Password | K::Cognito) if grant_refused => ("", &["password", "totp", "totp_secret"]),
                Some(K::JwtBearer) if grant_refused => ("", &["service_account_key", "assertion_key"]),
                _ if configured("client_assertion_key") => ("client_id and ", &["client_assertion_key"]),
                _ if !configured("client_secret")
                    && let Some(certificate) = self.client_certificate(entry) =>
                {
                    return Failure::error(format!(
                        "{error}\nhint: the server refused the credentials of {}: check client_id and \
                         tls_client_certificate ({certificate}): the server must trust its issuer or have it \
                         registered",
                        entry.name
                    ));
                }
                _ => ("client_id and ", &["client_secret"]),
            };
            let mut hint = if grant_refused && entry.kind() == Some(K::Password) && entry.password_missing() {
                format!("hint: the server refused the credentials of {}: the password typed was refused", entry.name)
            } else {
                format!(
                    "hint: the server refused the credentials of {}: check {what}{}",
                    entry.name,
                    self.secrets(entry, fields)
                )
            };
            if entry.kind() == Some(K::Password)
                && !self.secret_fields(entry).iter().any(|(f, _)| f.starts_with("totp"))
            {
                hint.push_str(" (an account that asks for a TOTP code needs totp_secret)");
            }
            return Failure::error(format!("{error}\n{hint}"));
        }
        if !error.requires_reauthentication() {
            return error.into();
        }
        let configured = |field: &str| self.secret_fields(entry).into_iter().any(|(name, _)| name == field);
        let hint = match entry.kind() {
            Some(K::RefreshToken) => {
                return Failure::error(format!(
                    "{error}\nhint: the refresh token of {} is dead and no login here can renew it: put a new \
                     refresh token in {}, then run '{}'",
                    entry.name,
                    self.secrets(entry, &["refresh_token"]),
                    self.login_command(entry, "")
                ));
            }
            Some(K::Static) if configured("access_token") => {
                return Failure::error(format!(
                    "{error}\nhint: the static token of {} cannot be renewed: put a new token in {}",
                    entry.name,
                    self.secrets(entry, &["access_token"])
                ));
            }
            Some(K::Static) => format!("run '{}' with the token on stdin", self.login_command(entry, " --with-token")),
            _ if entry.is_interactive() => format!("run '{}' in a terminal", self.login_command(entry, "")),
            _ => format!("run '{}'", self.login_command(entry, "")),
        };
        Failure { code: 4, message: format!("{error}\nhint: {hint}") }
    }

    /// The secret fields of `entry` as written in the file (current names), each with its reference
    /// (`env:NAME`, `file:PATH`, `keyring:...`) or `"***"` for a literal: never a secret's value.
    fn secret_fields(&self, entry: &ProviderEntry) -> Vec<(String, String)> {
        let spec_fields = tessera::core::provider_spec::FIELDS;
        entry
            .masked_settings()
            .into_iter()
            .filter_map(|(field, value)| {
                let name = tessera::core::provider_spec::current_name(&field).unwrap_or(&field).to_owned();
                let secret = spec_fields
                    .iter()
                    .any(|f| f.name == name && f.ty == tessera::core::provider_spec::FieldType::Secret);
                let value = value.as_str()?.to_owned();
                secret.then_some((name, value))
            })
            .collect()
    }

    /// `password (env:PEER_PASSWORD)`, `client_secret (a literal in the configuration file)`, ...:
    /// those of `fields` that `entry` configures, in that order (`fields[0]` when none is).
    /// The provider's `tls_client_certificate` path, when it has one (mutual TLS).
    fn client_certificate(&self, entry: &ProviderEntry) -> Option<String> {
        entry.spec()?.transport.tls_client_certificate.clone()
    }

    fn secrets(&self, entry: &ProviderEntry, fields: &[&str]) -> String {
        let configured = self.secret_fields(entry);
        let named: Vec<String> = fields
            .iter()
            .filter_map(|field| configured.iter().find(|(name, _)| name == field))
            .map(|(name, reference)| {
                if reference == "***" {
                    format!("{name} (a literal in the configuration file)")
                } else {
                    format!("{name} ({reference})")
                }
            })
            .collect();
        if named.is_empty() {
            return format!("{} (not set in the configuration)", fields[0]);
        }
        named.join(" and ")
    }

    /// Words for a person when `error` ended a device login of `entry` that showed a code (expired,
    /// denied), instead of the protocol's (`expired_token (HTTP 400)`).
    fn explain(&self, entry: &ProviderEntry, error: &Error) -> Option<String> {
        let command = self.login_command(entry, "");
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

    /// A built-in provider for `resource` (another resource its login serves: `tessera token
    /// --resource`), whose login also names `also_at_login` (`tessera login URL URL…`).
    fn build_for_resource(
        &self,
        entry: &ProviderEntry,
        resource: Option<&str>,
        also_at_login: Vec<String>,
    ) -> Result<OAuthProvider, Failure> {
        let settings = ProviderSettings::new(self.config.origin(), &self.context_name, entry, Arc::clone(&self.store));
        let mut provider = OAuthProvider::from_settings(&settings)?.also_at_login(also_at_login);
        if let Some(resource) = resource {
            provider = provider.with_resource(resource);
        }
        if let Some(prompter) = &self.prompter {
            let prompter = match entry.loopback_settings() {
                Some(loopback) => prompter.clone().with_login_timeout(loopback.timeout),
                None => prompter.clone(),
            };
            provider = provider.with_prompter(Arc::new(prompter));
        }
        Ok(provider)
    }

    /// Every provider of the context behind the facade.
    fn client(&self) -> Result<AuthClient, Failure> {
        Ok(AuthClient::from_config(&self.registry, &self.config, Some(&self.context_name), Arc::clone(&self.store))?)
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::{default_log_filter, log_filter};

    #[test]
    fn the_default_log_filter_shows_tesseras_warnings_only() {
        let filter = default_log_filter();
        for target in ["tessera", "tessera::session", "tessera_core::flow", "tessera_cli", "tessera_idp"] {
            assert!(filter.would_enable(target, &Level::WARN), "{target}");
            assert!(!filter.would_enable(target, &Level::INFO), "{target}");
        }
        assert!(!filter.would_enable("rustls::client", &Level::ERROR));
    }

    #[test]
    fn tessera_log_takes_the_directives_the_docs_show() {
        let debug = log_filter("debug").unwrap();
        assert!(debug.would_enable("hyper_util::client", &Level::DEBUG));
        assert!(!debug.would_enable("hyper_util::client", &Level::TRACE));
        let ours = log_filter("tessera=trace").unwrap();
        assert!(ours.would_enable("tessera::session", &Level::TRACE));
        assert!(ours.would_enable("tessera_core", &Level::TRACE), "a target is a prefix, as with EnvFilter");
        assert!(!ours.would_enable("reqwest", &Level::ERROR));
        let mixed = log_filter("warn,tessera_core=DEBUG,,").unwrap();
        assert!(mixed.would_enable("tessera_core::flow", &Level::DEBUG));
        assert!(mixed.would_enable("rustls", &Level::WARN) && !mixed.would_enable("rustls", &Level::INFO));
        assert!(!log_filter("").unwrap().would_enable("tessera", &Level::ERROR), "empty: nothing");
        for invalid in ["tessera=loud", "a=b=c", "tessera[{field=debug"] {
            assert!(log_filter(invalid).is_none(), "{invalid}");
        }
    }
}
