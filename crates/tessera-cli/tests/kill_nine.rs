//! `tessera token` and `tessera refresh --force` killed with SIGKILL mid-run, against the reference
//! IdP (issue 14's probe, kept as a regression test; the library half, writers killed inside
//! `FileStore::save`, is crates/tessera/tests/file_store_crash.rs).
//!
//! After every kill: `tokens.json` parses exactly as a load reads it (0 unreadable token files), at
//! most one orphaned temporary file is left (the killed writer's; the next write removes it), and a
//! following `refresh --force`, which takes the refresh lock and the write lock, succeeds in well
//! under the 30-s lock timeout (0 stuck locks), leaving no temporary file and nothing but the
//! store's own files.

mod support;

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::*;
use tessera::store::FileStore;

const ITERATIONS: usize = 60;
/// The whole loop, whatever the machine's speed.
const TIME_LIMIT: Duration = Duration::from_secs(20);
/// A follow-up call after a kill: a lock left held would make it wait for the 30-s lock timeout.
const FOLLOW_UP_LIMIT: Duration = Duration::from_secs(3);

/// xorshift64*: the delays, reproducible from the printed seed (`TESSERA_KILL_SEED`).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Runs `args` to completion within `FOLLOW_UP_LIMIT` (killed after 10 s), asserting success.
#[track_caller]
fn follow_up(home: &Home, args: &[&str], after: &str) -> Duration {
    let started = Instant::now();
    let mut child = home.spawn(args);
    let status = wait_until(&mut child, started + Duration::from_secs(10))
        .unwrap_or_else(|| panic!("after {after}: `tessera {}` hung (a stuck lock?)", args.join(" ")));
    let elapsed = started.elapsed();
    let run = collect(child, status);
    assert_eq!(run.code, Some(0), "after {after}: `tessera {}`: {run:#?}", args.join(" "));
    assert!(elapsed < FOLLOW_UP_LIMIT, "after {after}: `tessera {}` took {elapsed:?}", args.join(" "));
    elapsed
}

/// The store directory's entries other than the store's own files, and its temporary files.
fn strays_and_temps(dir: &Path) -> (Vec<String>, usize) {
    let mut strays = Vec::new();
    let mut temps = 0;
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        match name.as_str() {
            "tokens.json" | "tokens.json.lock" => {}
            "locks" => {
                for lock in fs::read_dir(entry.path()).unwrap().flatten() {
                    if lock.file_name() != "dev%2Fpeer.lock" {
                        strays.push(format!("locks/{}", lock.file_name().to_string_lossy()));
                    }
                }
            }
            _ if name.starts_with(".tokens-") && name.ends_with(".tmp") => temps += 1,
            _ => strays.push(name),
        }
    }
    (strays, temps)
}

#[test]
fn token_and_refresh_killed_mid_run_leave_a_readable_store_and_no_held_lock() {
    let idp = ReferenceIdp::start(60);
    let home = Home::alice(idp.issuer());
    home.run(&["login"]).success();
    let tokens = home.store_path();
    let dir = tokens.parent().unwrap().to_owned();

    let seed = std::env::var("TESSERA_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
    eprintln!("TESSERA_KILL_SEED={seed}");
    let mut rng = Rng(seed);
    // A refresh through `token` (`--min-valid` longer than the token lives), a forced refresh, and
    // the read-only fast path.
    let commands: [&[&str]; 3] = [&["token", "--min-valid", "1h"], &["refresh", "--force"], &["token"]];
    let started = Instant::now();
    let (mut mid_run, mut max_temps, mut slowest) = (0, 0, Duration::ZERO);
    for i in 0..ITERATIONS {
        assert!(started.elapsed() < TIME_LIMIT, "only {i} iterations in {TIME_LIMIT:?}");
        let args = commands[i % commands.len()];
        let delay = Duration::from_millis(rng.below(51));
        let what = format!("kill {i} of `tessera {}` after {delay:?}", args.join(" "));
        let mut child = home.command(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            mid_run += 1;
        }
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();

        // The store as a load reads it (0600, regular, parses), holding the token set.
        let bytes = fs::read(&tokens).unwrap_or_else(|e| panic!("{what}: tokens.json: {e}"));
        let stored = FileStore::parse_document(&bytes, &tokens).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(stored.contains_key("dev/peer"), "{what}: the token set is gone");
        let (strays, temps) = strays_and_temps(&dir);
        assert!(strays.is_empty(), "{what}: unexpected files {strays:?}");
        assert!(temps <= 1, "{what}: {temps} temporary files");
        max_temps = max_temps.max(temps);

        // No lock left held: a forced refresh takes both locks and writes; then `token` reads.
        slowest = slowest.max(follow_up(&home, &["refresh", "--force"], &what));
        assert_eq!(strays_and_temps(&dir), (vec![], 0), "{what}: a completed write leaves no temporary file");
        slowest = slowest.max(follow_up(&home, &["token"], &what));
    }
    let stats = idp.stats();
    eprintln!(
        "{ITERATIONS} kills in {:?}, {mid_run} mid-run; at most {max_temps} orphaned temporary file(s); \
         slowest follow-up {slowest:?}; IdP: {} token requests, {} refresh-token reuses",
        started.elapsed(),
        stats["token_requests"],
        stats["refresh_token_reuse_detected"]
    );
    // Most kills must land while the process runs, or this tests nothing.
    assert!(mid_run >= ITERATIONS / 4, "only {mid_run} of {ITERATIONS} kills landed mid-run");
}
