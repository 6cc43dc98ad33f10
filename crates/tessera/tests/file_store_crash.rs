//! Crash safety of `FileStore`: writer processes killed with SIGKILL at random points, and the
//! state a power loss can leave (a truncated temporary file). After every kill the store must parse
//! and hold, for each writer, its newest completed write (or the one it was finishing).
//!
//! The writers are this test binary re-executed in a child mode (`TESSERA_CRASH_WRITER` set, running
//! only `crash_writer_child`): each saves an increasing counter under its own key, and after each
//! `save` returns appends the counter to its own log (fsynced), so the parent knows which writes
//! completed.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tessera::store::{FileStore, TokenStore};
use tessera::{Timestamp, TokenSet};

const WRITERS: usize = 4;
const KILLS: usize = 1_000;
/// Upper bound on the whole kill loop, whatever the machine's speed.
const TIME_LIMIT: Duration = Duration::from_secs(240);

fn token(id: usize, n: u64) -> TokenSet {
    let mut tokens =
        TokenSet::bearer(format!("w{id}-{n}"), Some(Timestamp::from_unix_secs(4_000_000_000)), Timestamp::EPOCH);
    // Some bulk, so a write is more than one page and a kill can land inside it.
    tokens.scope = Some(format!("{n} {}", "s".repeat(6_000)));
    tokens
}

fn counter(tokens: &TokenSet) -> u64 {
    let access = tokens.access_token.expose_secret();
    access.rsplit('-').next().and_then(|n| n.parse().ok()).expect("a counter in the token")
}

/// Child mode: writes until killed (bounded: at most 20 s or 100,000 writes).
#[tokio::test]
async fn crash_writer_child() {
    let Ok(spec) = std::env::var("TESSERA_CRASH_WRITER") else { return };
    let mut parts = spec.splitn(3, ':');
    let id: usize = parts.next().unwrap().parse().unwrap();
    let start: u64 = parts.next().unwrap().parse().unwrap();
    let dir = PathBuf::from(parts.next().unwrap());
    let store = FileStore::new(dir.join("store"));
    let mut log = OpenOptions::new().create(true).append(true).open(dir.join(format!("done-{id}.log"))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    for n in start..start + 100_000 {
        if Instant::now() > deadline {
            break;
        }
        store.save(&format!("w{id}"), &token(id, n)).await.unwrap();
        log.write_all(format!("{n}\n").as_bytes()).unwrap();
        log.sync_data().unwrap();
    }
}

/// The last complete line of a writer's log: its newest completed write.
fn completed(dir: &Path, id: usize) -> Option<u64> {
    let text = fs::read_to_string(dir.join(format!("done-{id}.log"))).unwrap_or_default();
    let complete = if text.ends_with('\n') { &text[..] } else { &text[..text.rfind('\n').map_or(0, |i| i + 1)] };
    complete.lines().last().map(|line| line.parse().expect("a counter"))
}

fn spawn_writer(dir: &Path, id: usize, start: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_writer_child", "--nocapture", "--test-threads=1"])
        .env("TESSERA_CRASH_WRITER", format!("{id}:{start}:{}", dir.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn temp_files(store: &Path) -> usize {
    fs::read_dir(store)
        .map(|entries| entries.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_at_random_points_never_loses_the_newest_completed_write() {
    if std::env::var("TESSERA_CRASH_WRITER").is_ok() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let store = FileStore::new(dir.join("store"));
    let mut writers: Vec<Option<Child>> = (0..WRITERS).map(|id| Some(spawn_writer(dir, id, 0))).collect();
    let mut next_start = [0u64; WRITERS];
    let mut verified: [Option<u64>; WRITERS] = [None; WRITERS];
    let (mut kills, mut killed_mid_write, mut max_temp) = (0usize, 0usize, 0usize);
    let started = Instant::now();
    while kills < KILLS {
        assert!(started.elapsed() < TIME_LIMIT, "only {kills} kills in {TIME_LIMIT:?}");
        let id = fastrand::usize(..WRITERS);
        tokio::time::sleep(Duration::from_micros(fastrand::u64(2_000..25_000))).await;
        let mut child = writers[id].take().unwrap();
        let exited_on_its_own = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        if !exited_on_its_own {
            kills += 1;
        }

        // Every key parses, and this writer's key holds its newest completed write — or the write
        // it was finishing when killed (renamed into place, not yet logged).
        for other in 0..WRITERS {
            let stored = store.load(&format!("w{other}")).await.unwrap_or_else(|e| panic!("after {kills} kills: {e}"));
            if other != id {
                continue;
            }
            let stored = stored.as_ref().map(counter);
            let done = completed(dir, id);
            // Newest write known to have completed: logged, or seen in the store after an earlier kill.
            let known = done.max(verified[id]);
            // The one write this incarnation may have completed without logging it.
            let in_flight = match done {
                Some(d) if d >= next_start[id] => d + 1,
                _ => next_start[id],
            };
            match stored {
                None => assert_eq!(known, None, "after {kills} kills, w{id}: a completed write was lost"),
                Some(s) if Some(s) == known => {}
                Some(s) if s == in_flight => killed_mid_write += 1,
                Some(s) => panic!("after {kills} kills, w{id}: stored {s}, completed {known:?}, in flight {in_flight}"),
            }
            verified[id] = stored;
            next_start[id] = stored.max(done).map_or(next_start[id], |n| n + 1);
        }
        max_temp = max_temp.max(temp_files(&dir.join("store")));
        writers[id] = Some(spawn_writer(dir, id, next_start[id]));
    }
    for child in writers.iter_mut().flatten() {
        let _ = child.kill();
        let _ = child.wait();
    }
    eprintln!(
        "{kills} kills in {:?}; {killed_mid_write} landed between a completed rename and its log line; at most {max_temp} orphaned temp files seen",
        started.elapsed()
    );
    // Orphans left by killed writers are removed by the next write.
    store.save("final", &token(99, 0)).await.unwrap();
    assert_eq!(temp_files(&dir.join("store")), 0, "orphaned temp files are cleaned up");
    assert!(max_temp <= WRITERS + 1, "orphans do not accumulate: {max_temp}");
    for id in 0..WRITERS {
        assert!(store.load(&format!("w{id}")).await.unwrap().is_some(), "w{id} wrote something");
    }
}

/// A power loss before the temporary file was synced leaves it truncated anywhere (0 bytes, half a
/// document, a full document never renamed): the store ignores it, keeps the last completed write,
/// and removes the debris on the next write.
#[tokio::test]
async fn truncated_temp_files_from_a_power_loss_are_ignored_and_cleaned() {
    let root = tempfile::tempdir().unwrap();
    let store = FileStore::new(root.path().join("store"));
    store.save("k", &token(0, 1)).await.unwrap();
    let committed = fs::read(store.path()).unwrap();
    // What the next write would have produced.
    let scratch = FileStore::new(root.path().join("scratch"));
    scratch.save("k", &token(0, 2)).await.unwrap();
    let next = fs::read(scratch.path()).unwrap();

    let mut cuts: Vec<usize> = (0..200).map(|_| fastrand::usize(..=next.len())).collect();
    cuts.extend([0, 1, next.len() / 2, next.len() - 1, next.len()]);
    for cut in cuts {
        let temp = root.path().join("store").join(format!(".tokens-{cut}.tmp"));
        fs::write(&temp, &next[..cut]).unwrap();
        let loaded = store.load("k").await.unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(loaded.as_ref().map(counter), Some(1), "cut at {cut}: the last completed write");
        assert_eq!(fs::read(store.path()).unwrap(), committed, "cut at {cut}: untouched");
    }
    assert!(temp_files(&root.path().join("store")) > 100);
    store.save("k", &token(0, 3)).await.unwrap();
    assert_eq!(store.load("k").await.unwrap().as_ref().map(counter), Some(3));
    assert_eq!(temp_files(&root.path().join("store")), 0, "debris removed by the next write");
}
