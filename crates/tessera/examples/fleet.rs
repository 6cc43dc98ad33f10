//! The fleet benchmark: many processes (optionally groups of processes that share nothing but
//! Redis) share one rotating refresh token for a fixed time. See benches/README.md and docs/fleet.md.
//!
//! ```sh
//! cargo run --release -p tessera --example fleet -- --server oidc-provider --store file --processes 16 --tasks 8 --duration 60
//! cargo run --release -p tessera --example fleet -- --server oidc-provider --store redis --groups 4 --processes 4 --tasks 8 --duration 60
//! ```
//!
//! Needs `node` (with `npm ci` in interop/oidc-provider) for `--server oidc-provider`, the venv of
//! interop/django-oauth-toolkit (see its README) for `--server django-oauth-toolkit`, and
//! `redis-server` on PATH for `--store redis`. Prints a summary on stderr and the JSON report on
//! stdout; exits 1 when a criterion fails (invalid_grant, reuse, dead grant, refreshes > windows + 1).

#[path = "../tests/support/fleet.rs"]
mod fleet;
#[path = "../tests/support/redis_server.rs"]
mod redis_server;
#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    if fleet::run_worker_if_requested() {
        return;
    }
    let options = match fleet::parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("fleet: {message}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let report = runtime.block_on(fleet::run(options, || {
        std::process::Command::new(std::env::current_exe().expect("current executable"))
    }));
    eprintln!("{}", report.summary());
    println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    if let Err(problems) = report.check() {
        eprintln!("FAILED: {problems}");
        std::process::exit(1);
    }
}
