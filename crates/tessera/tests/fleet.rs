//! A short fleet run (see examples/fleet.rs and benches/README.md for the 60-second ones): worker
//! processes (this test binary re-executed) share one rotating refresh token through a FileStore,
//! and through Redis across two groups that share nothing else, against the reference IdP and
//! against django-oauth-toolkit (a third-party server with reuse protection, no grace period) with
//! 2-second access tokens: no invalid_grant, no reuse, the grant alive, refreshes ≤ windows + 1.
#![cfg(feature = "redis")]

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/redis_server.rs"]
mod redis_server;
mod support;

use std::process::Command;
use std::time::Duration;

use fleet::{FleetOptions, Server, StoreKind};

/// Worker mode: when `TESSERA_FLEET_WORKER` is set this test binary is a fleet worker.
#[test]
fn fleet_worker_child() {
    fleet::run_worker_if_requested();
}

fn worker() -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", "fleet_worker_child", "--nocapture", "--test-threads=1", "--quiet"]);
    command
}

async fn short_run(server: Server, store: StoreKind, groups: usize, processes: usize) {
    if std::env::var(fleet::WORKER_ENV).is_ok() {
        return;
    }
    let options = FleetOptions {
        server,
        store,
        groups,
        processes,
        tasks: 4,
        duration: Duration::from_secs(5),
        access_ttl: Duration::from_secs(2),
        interval: Duration::from_millis(5),
    };
    let report = fleet::run(options, worker).await;
    eprintln!("{}", report.summary());
    report.check().unwrap_or_else(|problems| panic!("{problems}\n{}", report.summary()));
    assert!(report.refreshes >= 2, "tokens expired and were refreshed: {}", report.summary());
    assert!(report.requests > 1000, "{}", report.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_share_one_login_through_a_file_store() {
    short_run(Server::Idp, StoreKind::File, 1, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_machines_of_two_processes_share_one_login_through_redis() {
    short_run(Server::Idp, StoreKind::Redis, 2, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_share_one_login_through_a_file_store_at_django_oauth_toolkit() {
    short_run(Server::DjangoOauthToolkit, StoreKind::File, 1, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_machines_of_two_processes_share_one_login_through_redis_at_django_oauth_toolkit() {
    short_run(Server::DjangoOauthToolkit, StoreKind::Redis, 2, 2).await;
}
