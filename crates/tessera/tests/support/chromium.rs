//! A person at a browser, for browser-login tests: `interop/browser/sign-in.mjs` drives Debian's
//! headless Chromium through playwright-core. [`ChromiumPrompter`] is a [`Prompter`] whose `show`
//! starts a sign-in for the authorization URL it is given (the loopback listener then receives the
//! redirect), and whose `ask` runs one to the end without a listener and returns the URL the browser
//! ended on (paste mode).
//!
//! Needs `/usr/bin/chromium` (`apt-get install -y chromium`; or `$CHROMIUM`) and `npm ci` in
//! `interop/browser`: a test using it fails with that message when either is missing.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tessera::prompt::Prompter;
use tessera::{Error, Prompt, Secret};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// At most this many Chromiums at once (2 cores shared with the other tests).
static BROWSERS: Semaphore = Semaphore::const_new(2);
/// One sign-in never takes longer (the script gives up after 60 s itself).
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(90);

/// `<workspace>/interop/browser`.
pub fn browser_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/browser");
    dir.canonicalize().unwrap_or(dir)
}

/// Panics, saying what to install, when Chromium or playwright-core is missing.
pub fn require_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing: install it with `apt-get install -y chromium` (browser-login tests need a real browser)"
    );
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core/package.json").is_file(),
        "playwright-core is not installed: run `npm ci` in {}",
        dir.display()
    );
}

/// What one run of sign-in.mjs did.
#[derive(Debug)]
pub struct SignIn {
    /// True when the script exited 0 (the browser reached the redirect URI).
    pub success: bool,
    /// The URL the browser was sent back to.
    pub callback: Option<String>,
    /// The text of the redirect page's `#message` (what the loopback receiver showed).
    pub message: Option<String>,
    /// The script's stderr, for failure messages.
    pub stderr: String,
}

/// Runs sign-in.mjs to the end.
pub async fn sign_in(authorization_url: &str, username: &str, password: &str, flags: &[&str]) -> SignIn {
    sign_in_with_totp(authorization_url, username, password, flags, None).await
}

/// Runs sign-in.mjs to the end; with a TOTP secret, the code is computed once a browser is free
/// (so that it is fresh when typed).
pub async fn sign_in_with_totp(
    authorization_url: &str,
    username: &str,
    password: &str,
    flags: &[&str],
    totp_secret: Option<&str>,
) -> SignIn {
    require_chromium();
    let _permit = BROWSERS.acquire().await.expect("the semaphore is never closed");
    let totp = totp_secret.map(|secret| {
        tessera::core::flow::totp_code(&Secret::new(secret), tessera::clock::system_now()).expect("a valid TOTP secret")
    });
    let node = std::env::var("NODE").unwrap_or_else(|_| "node".to_owned());
    let child = tokio::process::Command::new(node)
        .current_dir(browser_dir())
        .arg("sign-in.mjs")
        .arg(authorization_url)
        .arg(username)
        .arg(password)
        .args(flags)
        .args(totp.iter().flat_map(|code| ["--totp", code.expose_secret()]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (install nodejs)");
    let output = tokio::time::timeout(SIGN_IN_TIMEOUT, child.wait_with_output())
        .await
        .expect("sign-in.mjs finishes in time")
        .expect("sign-in.mjs output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line: Option<serde_json::Value> = stdout.lines().last().and_then(|line| serde_json::from_str(line).ok());
    SignIn {
        success: output.status.success(),
        callback: line.as_ref().and_then(|l| l["callback"].as_str().map(str::to_owned)),
        message: line.as_ref().and_then(|l| l["message"].as_str().map(str::to_owned)),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Signs in with Chromium for every browser prompt it is shown (or asked, in paste mode).
pub struct ChromiumPrompter {
    username: String,
    password: String,
    flags: Vec<String>,
    totp_secret: Option<String>,
    /// Authorization URLs it was shown or asked about.
    pub urls: Mutex<Vec<String>>,
    /// How many times `ask` ran (paste mode).
    pub asked: Mutex<u32>,
    runs: Mutex<Vec<JoinHandle<SignIn>>>,
}

impl ChromiumPrompter {
    /// A person who signs in as `username` with `password`; `flags` go to sign-in.mjs (`--deny`,
    /// `--tamper-state`, `--no-listener`).
    pub fn new(username: &str, password: &str, flags: &[&str]) -> Self {
        require_chromium();
        ChromiumPrompter {
            username: username.to_owned(),
            password: password.to_owned(),
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            totp_secret: None,
            urls: Mutex::new(Vec::new()),
            asked: Mutex::new(0),
            runs: Mutex::new(Vec::new()),
        }
    }

    /// Types the current code of this TOTP secret too.
    pub fn with_totp_secret(mut self, secret: &str) -> Self {
        self.totp_secret = Some(secret.to_owned());
        self
    }

    /// Waits for the sign-ins started by `show` and returns them.
    pub async fn finished(&self) -> Vec<SignIn> {
        let runs: Vec<_> = std::mem::take(&mut *self.runs.lock().unwrap());
        let mut done = Vec::new();
        for run in runs {
            done.push(run.await.expect("the sign-in task does not panic"));
        }
        done
    }

    /// For a login still running in another task: waits (at most 30 s) until `show` started a
    /// sign-in, then for the sign-in to finish.
    pub async fn first_sign_in(&self) -> SignIn {
        let started = std::time::Instant::now();
        while self.runs.lock().unwrap().is_empty() {
            assert!(started.elapsed() < std::time::Duration::from_secs(30), "no browser prompt within 30 s");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.finished().await.remove(0)
    }

    /// The authorization URLs seen.
    pub fn urls(&self) -> Vec<String> {
        self.urls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Prompter for ChromiumPrompter {
    async fn show(&self, _key: &str, prompt: &Prompt) -> Result<(), Error> {
        let Prompt::Browser { authorization_url, .. } = prompt else {
            return Err(Error::configuration(format!("ChromiumPrompter cannot show {prompt:?}")));
        };
        self.urls.lock().unwrap().push(authorization_url.clone());
        let (url, username, password, flags, totp_secret) = (
            authorization_url.clone(),
            self.username.clone(),
            self.password.clone(),
            self.flags.clone(),
            self.totp_secret.clone(),
        );
        // Return at once, like a prompter opening a browser: the loopback listener waits meanwhile.
        let run = tokio::spawn(async move {
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            sign_in_with_totp(&url, &username, &password, &flags, totp_secret.as_deref()).await
        });
        self.runs.lock().unwrap().push(run);
        Ok(())
    }

    async fn ask(&self, _key: &str, prompt: &Prompt) -> Result<Secret, Error> {
        let Prompt::Browser { authorization_url, .. } = prompt else {
            return Err(Error::configuration(format!("ChromiumPrompter cannot answer {prompt:?}")));
        };
        *self.asked.lock().unwrap() += 1;
        self.urls.lock().unwrap().push(authorization_url.clone());
        let mut flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        flags.push("--no-listener");
        let run =
            sign_in_with_totp(authorization_url, &self.username, &self.password, &flags, self.totp_secret.as_deref())
                .await;
        match (run.success, run.callback) {
            (true, Some(callback)) => Ok(Secret::new(callback)),
            _ => Err(Error::configuration(format!("the browser did not come back:\n{}", run.stderr))),
        }
    }
}
