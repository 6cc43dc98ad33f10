//! `tessera idp serve`: the reference identity server for demos, the quickstart and tests.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Subcommand;
use tessera_idp::{IdpConfig, IdpServer, TestCa};

#[derive(Subcommand)]
pub enum IdpCommand {
    /// Serve the reference IdP until interrupted. Prints the issuer URL on stdout.
    Serve {
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
    },
}

pub async fn run(command: IdpCommand) -> Result<(), String> {
    let IdpCommand::Serve {
        host,
        port,
        access_ttl,
        refresh_ttl,
        no_rotation,
        device_code_ttl,
        device_poll_interval,
        test_endpoints,
        tls_ca_out,
    } = command;
    let tls = match tls_ca_out {
        None => None,
        Some(path) => {
            let ca = TestCa::generate("tessera reference IdP test CA").map_err(|e| e.to_string())?;
            std::fs::write(&path, ca.ca_pem()).map_err(|e| format!("cannot write {}: {}", path.display(), e.kind()))?;
            Some(ca.loopback_identity().map_err(|e| e.to_string())?)
        }
    };
    let config = IdpConfig {
        bind: SocketAddr::new(host, port),
        access_token_ttl: Duration::from_secs(access_ttl),
        refresh_token_ttl: Duration::from_secs(refresh_ttl),
        rotate_refresh_tokens: !no_rotation,
        device_code_ttl: Duration::from_secs(device_code_ttl),
        device_poll_interval: Duration::from_secs(device_poll_interval),
        test_endpoints,
        tls,
        ..IdpConfig::demo()
    };
    let server = IdpServer::start(config).await.map_err(|e| format!("cannot start the IdP: {e}"))?;
    // A reader that took the first line and left must not stop the server (nor panic it): the
    // issuer is on stderr too.
    let _ = crate::output::stdout(&format!("{}\n", server.issuer()));
    eprintln!(
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
