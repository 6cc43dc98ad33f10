//! `tessera-idp`: the reference identity server as a program of its own, for demos, the quickstart
//! and tests (`tessera-idp serve`, or `tessera idp serve`, which runs this program).
//!
//! It is a separate binary so that the `tessera` CLI users install carries none of the server
//! (axum, the HTML pages, the test hooks): see docs/DECISIONS.md, "The reference IdP is its own
//! binary". Prints the issuer URL on stdout, a banner on stderr, and serves until SIGINT/SIGTERM.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tessera_idp::{IdpConfig, IdpServer, TestCa};

/// Log lines shown without `TESSERA_LOG`: the server's own warnings (the same default as `tessera`).
const DEFAULT_LOG_FILTER: &str = "off,tessera_idp=warn";

#[derive(Parser)]
#[command(
    name = "tessera-idp",
    version,
    about = "The reference identity server of tessera (demo users alice, bob with TOTP, carol with email codes), \
             for demos and tests. Never for production."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the reference IdP until interrupted. Prints the issuer URL on stdout.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to bind (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 300)]
    access_ttl: u64,
    /// Refresh token lifetime in seconds.
    #[arg(long, default_value_t = 30 * 24 * 3600)]
    refresh_ttl: u64,
    /// Keep refresh tokens on refresh instead of rotating them.
    #[arg(long)]
    no_rotation: bool,
    /// Device codes: how long one stays valid, in seconds (`expires_in`).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    device_code_ttl: u64,
    /// Device codes: the polling interval the server asks for, in seconds (`interval`).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    device_poll_interval: u64,
    /// Serve the /_test/* control endpoints (fault injection, stats).
    #[arg(long)]
    test_endpoints: bool,
    /// Serve HTTPS with a certificate from a private CA made at start (for localhost,
    /// 127.0.0.1 and ::1), and write that CA's certificate (PEM) here: the file to give
    /// clients as `ca_file`.
    #[arg(long, value_name = "PATH")]
    tls_ca_out: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let Cli { command: Command::Serve(args) } = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| DEFAULT_LOG_FILTER.into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal, and never with NO_COLOR (no-color.org).
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()),
        )
        .init();
    // One thread, as when the server ran inside `tessera`: the tests' timings were made with it.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let tls = match &args.tls_ca_out {
        None => None,
        Some(path) => {
            let ca = TestCa::generate("tessera reference IdP test CA").map_err(|e| e.to_string())?;
            std::fs::write(path, ca.ca_pem()).map_err(|e| format!("cannot write {}: {}", path.display(), e.kind()))?;
            Some(ca.loopback_identity().map_err(|e| e.to_string())?)
        }
    };
    let config = IdpConfig {
        bind: SocketAddr::new(args.host, args.port),
        access_token_ttl: Duration::from_secs(args.access_ttl),
        refresh_token_ttl: Duration::from_secs(args.refresh_ttl),
        rotate_refresh_tokens: !args.no_rotation,
        device_code_ttl: Duration::from_secs(args.device_code_ttl),
        device_poll_interval: Duration::from_secs(args.device_poll_interval),
        test_endpoints: args.test_endpoints,
        tls,
        ..IdpConfig::demo()
    };
    let server = IdpServer::start(config).await.map_err(|e| format!("cannot start the IdP: {e}"))?;
    // A reader that took the first line and left must not stop the server (nor panic it): the
    // issuer is on stderr too.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", server.issuer()).and_then(|()| stdout.flush());
    drop(stdout);
    let _ = writeln!(
        std::io::stderr(),
        "tessera reference IdP listening at {} (demo users alice/alice-password, bob/bob-password+TOTP; client confidential-client/confidential-secret). Ctrl-C to stop.",
        server.issuer()
    );
    wait_for_shutdown().await;
    server.shutdown().await;
    Ok(())
}

async fn wait_for_shutdown() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match terminate.as_mut() { Some(signal) => { signal.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}
