//! How an interactive login reaches a person: [`Prompter`] shows what the core asks to show
//! (a device code) and answers what it asks (a one-time code: [`CodePrompter`]). The CLI's
//! prompter writes to the terminal; a GUI or a bot brings its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use tessera_core::{Error, Prompt, Secret};

/// Shows prompts of interactive logins and answers those that need an answer. Called only by
/// explicit logins (and by the refresh policy's `Reauthenticate`), never by a silent refresh.
#[async_trait]
pub trait Prompter: Send + Sync {
    /// Shows `prompt` for the session `key` (a device code; or a browser URL to open while a
    /// loopback listener waits for the answer). Return quickly: polling continues after it returns.
    /// An error aborts the login with that error.
    async fn show(&self, key: &str, prompt: &Prompt) -> Result<(), Error>;

    /// Answers a prompt that [expects an answer](Prompt::expects_answer): the one-time code the
    /// person typed, or the URL the browser was sent back to (pasted). An error aborts the login.
    /// The default cannot answer and says so.
    async fn ask(&self, key: &str, prompt: &Prompt) -> Result<Secret, Error> {
        let _ = prompt;
        Err(Error::ReauthenticationRequired {
            reason: format!("logging in to {key} needs an answer (a code or a URL), and this prompter cannot ask"),
        })
    }
}

/// A prompter from a closure, e.g. `FnPrompter(|key, prompt| { eprintln!("{prompt:?}"); Ok(()) })`.
pub struct FnPrompter<F>(pub F);

#[async_trait]
impl<F> Prompter for FnPrompter<F>
where
    F: Fn(&str, &Prompt) -> Result<(), Error> + Send + Sync,
{
    async fn show(&self, key: &str, prompt: &Prompt) -> Result<(), Error> {
        (self.0)(key, prompt)
    }
}

/// The Rust `otp_callback`: a [`Prompter`] that answers one-time-code prompts ([`Prompt::Code`])
/// with a callback, sync or async. The callback gets the prompt (channel, masked destination,
/// attempt number, and why the previous code was refused) and returns the code.
///
/// A wrong code does not end the login: the callback is called again with `attempt` + 1 and
/// `previous_error` set, until the grant's `max_attempts` (or the server's limit) is used up.
/// Returning an error gives up: the login fails with that error.
///
/// ```
/// use tessera::{Error, Prompt, Secret, prompt::CodePrompter};
///
/// // Sync: may block (read a terminal, wait on a channel); it runs on tokio's blocking pool.
/// let from_stdin = CodePrompter::new(|prompt: &Prompt| {
///     if let Prompt::Code { destination, attempt, previous_error, .. } = prompt {
///         eprintln!("code sent to {destination:?} (attempt {attempt}; {previous_error:?}):");
///     }
///     let mut line = String::new();
///     std::io::stdin().read_line(&mut line).map_err(|e| Error::configuration(e.to_string()))?;
///     Ok(Secret::new(line.trim()))
/// });
///
/// // Async: e.g. wait for the code to arrive in a test mailbox or a chat bot.
/// let from_inbox = CodePrompter::from_async(|prompt: Prompt| async move {
///     let _ = prompt;
///     Ok::<_, Error>("123456")
/// });
/// # let _ = (from_stdin, from_inbox);
/// ```
///
/// It shows nothing: prompts that are only shown (device codes) fail the login with a
/// configuration error; use a prompter that displays them for those grants.
#[derive(Clone)]
pub struct CodePrompter {
    callback: CodeCallback,
}

type AsyncCode = Pin<Box<dyn Future<Output = Result<Secret, Error>> + Send>>;
type SyncCallback = Arc<dyn Fn(&Prompt) -> Result<Secret, Error> + Send + Sync>;
type AsyncCallback = Arc<dyn Fn(Prompt) -> AsyncCode + Send + Sync>;

#[derive(Clone)]
enum CodeCallback {
    Sync(SyncCallback),
    Async(AsyncCallback),
}

impl CodePrompter {
    /// From a sync callback. It may block: each call runs on tokio's blocking thread pool, never
    /// on the async executor.
    pub fn new<F, S>(callback: F) -> Self
    where
        F: Fn(&Prompt) -> Result<S, Error> + Send + Sync + 'static,
        S: Into<Secret>,
    {
        CodePrompter { callback: CodeCallback::Sync(Arc::new(move |prompt| callback(prompt).map(Into::into))) }
    }

    /// From an async callback (a closure returning a future).
    pub fn from_async<F, Fut, S>(callback: F) -> Self
    where
        F: Fn(Prompt) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, Error>> + Send + 'static,
        S: Into<Secret>,
    {
        let callback = Arc::new(callback);
        CodePrompter {
            callback: CodeCallback::Async(Arc::new(move |prompt| {
                let future = callback(prompt);
                Box::pin(async move { future.await.map(Into::into) })
            })),
        }
    }
}

impl std::fmt::Debug for CodePrompter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.callback {
            CodeCallback::Sync(_) => "sync",
            CodeCallback::Async(_) => "async",
        };
        f.debug_struct("CodePrompter").field("callback", &kind).finish()
    }
}

#[async_trait]
impl Prompter for CodePrompter {
    async fn show(&self, key: &str, prompt: &Prompt) -> Result<(), Error> {
        let _ = prompt;
        Err(Error::configuration(format!(
            "logging in to {key} shows something to a person (e.g. a device code), and a CodePrompter only answers \
             one-time codes: use a prompter that displays it"
        )))
    }

    async fn ask(&self, _key: &str, prompt: &Prompt) -> Result<Secret, Error> {
        match &self.callback {
            CodeCallback::Sync(callback) => {
                let callback = Arc::clone(callback);
                let prompt = prompt.clone();
                tokio::task::spawn_blocking(move || callback(&prompt))
                    .await
                    .map_err(|_| Error::configuration("the code callback panicked"))?
            }
            CodeCallback::Async(callback) => callback(prompt.clone()).await,
        }
    }
}

/// Shows prompts on stderr: the verification URL, the code, a QR code of the complete URL, and
/// how long the code stays valid. What the `tessera` CLI uses.
///
/// On a terminal it then keeps a spinner with a countdown on the last line, redrawn every second,
/// until [`TerminalPrompter::finish`] is called (after the login ends), the prompter is dropped, or
/// the code expires. When stderr is not a terminal (logs, CI) nothing is redrawn.
#[cfg(feature = "terminal")]
#[derive(Clone, Debug)]
pub struct TerminalPrompter {
    qr_code: bool,
    no_browser: bool,
    /// The running countdown. A std mutex: held only to swap the handle, never across an await.
    countdown: std::sync::Arc<std::sync::Mutex<Option<Countdown>>>,
}

/// A spinner task; aborted when dropped.
#[cfg(feature = "terminal")]
#[derive(Debug)]
struct Countdown(tokio::task::JoinHandle<()>);

#[cfg(feature = "terminal")]
impl Drop for Countdown {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(feature = "terminal")]
impl Default for TerminalPrompter {
    fn default() -> Self {
        TerminalPrompter { qr_code: true, no_browser: false, countdown: Default::default() }
    }
}

#[cfg(feature = "terminal")]
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

#[cfg(feature = "terminal")]
impl TerminalPrompter {
    /// A prompter that draws QR codes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Without the QR code (narrow terminals, logs).
    pub fn without_qr_code(self) -> Self {
        TerminalPrompter { qr_code: false, ..self }
    }

    /// Stops the spinner and clears its line. Call it when the login has ended (either way).
    pub fn finish(&self) {
        let running = self.countdown.lock().map(|mut slot| slot.take()).unwrap_or_default();
        if let Some(countdown) = running {
            drop(countdown);
            use std::io::Write as _;
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(b"\r\x1b[2K");
            let _ = stderr.flush();
        }
    }

    /// The spinner line for `frame` (any number; it cycles) with `remaining` until the code expires.
    pub fn countdown_line(frame: usize, remaining: std::time::Duration) -> String {
        let secs = remaining.as_secs();
        format!(
            "{} Waiting for approval: the code expires in {}m{:02}s",
            SPINNER[frame % SPINNER.len()],
            secs / 60,
            secs % 60
        )
    }

    /// Never opens a browser: browser logins print the URL to open elsewhere (`--no-browser`;
    /// SSH sessions, containers).
    pub fn no_browser(self) -> Self {
        TerminalPrompter { no_browser: true, ..self }
    }

    /// The text shown for `prompt` at `now`.
    pub fn render(&self, key: &str, prompt: &Prompt, now: tessera_core::Timestamp) -> String {
        use std::fmt::Write as _;
        let mut text = String::new();
        match prompt {
            Prompt::DeviceCode { user_code, verification_uri, verification_uri_complete, expires_at } => {
                let _ = writeln!(text, "To sign in to {key}, open {verification_uri}");
                let _ = writeln!(text, "and enter the code:  {user_code}");
                if let Some(complete) = verification_uri_complete {
                    let _ = writeln!(text, "or open {complete}");
                    if self.qr_code
                        && let Ok(code) = qrcode::QrCode::new(complete.as_bytes())
                    {
                        use qrcode::render::unicode::Dense1x2;
                        // Light modules drawn dark: reads right on the usual dark terminal.
                        let qr =
                            code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).build();
                        let _ = writeln!(text, "{qr}");
                    }
                }
                let remaining = expires_at.duration_since(now).as_secs();
                let _ = writeln!(
                    text,
                    "The code expires in {}m{:02}s. Waiting for approval...",
                    remaining / 60,
                    remaining % 60
                );
            }
            Prompt::Browser { authorization_url, redirect_uri } => {
                let _ = writeln!(text, "To sign in to {key}, open this URL in a browser:\n\n    {authorization_url}\n");
                if redirect_uri.starts_with("http://127.0.0.1") && self.no_browser {
                    // The loopback listener is on this machine: a browser elsewhere cannot reach it.
                    let _ = writeln!(text, "Use a browser on this machine: the sign-in comes back to {redirect_uri}");
                }
                let _ = writeln!(text, "Waiting for the browser to come back...");
            }
            Prompt::Code { channel, destination, attempt, previous_error } => {
                if let Some(error) = previous_error {
                    let _ = writeln!(text, "That code was refused: {error}");
                }
                let to = destination.as_deref().map(|d| format!(" sent to {d}")).unwrap_or_default();
                let _ = write!(text, "Enter the {} code{to} for {key}", channel.as_str());
                let _ =
                    write!(text, "{}: ", if *attempt > 1 { format!(" (attempt {attempt})") } else { String::new() });
            }
            #[allow(unreachable_patterns, reason = "Prompt is non_exhaustive")]
            other => {
                let _ = writeln!(text, "{key}: {other:?}");
            }
        }
        text
    }

    /// Starts (or restarts) the spinner until `expires_at`.
    fn start_countdown(&self, expires_at: tessera_core::Timestamp) {
        let task = tokio::spawn(async move {
            use std::io::Write as _;
            let mut ticks = tokio::time::interval(std::time::Duration::from_millis(250));
            for frame in 0usize.. {
                ticks.tick().await;
                let remaining = expires_at.duration_since(crate::clock::system_now());
                let line = Self::countdown_line(frame, remaining);
                let mut stderr = std::io::stderr().lock();
                let _ = write!(stderr, "\r\x1b[2K{line}");
                let _ = stderr.flush();
                if remaining.is_zero() {
                    let _ = writeln!(stderr);
                    return;
                }
            }
        });
        if let Ok(mut slot) = self.countdown.lock() {
            *slot = Some(Countdown(task));
        }
    }
}

#[cfg(feature = "terminal")]
#[async_trait]
impl Prompter for TerminalPrompter {
    async fn show(&self, key: &str, prompt: &Prompt) -> Result<(), Error> {
        use std::io::{IsTerminal as _, Write as _};
        self.finish();
        let mut text = self.render(key, prompt, crate::clock::system_now());
        if let Prompt::Browser { authorization_url, .. } = prompt
            && !self.no_browser
        {
            // Spawns the system's opener and returns; if there is none, the URL printed above still works.
            if let Err(error) = open::that_detached(authorization_url) {
                text.push_str(&format!("(could not open a browser: {error})\n"));
            } else {
                text.insert_str(0, "Opening your browser...\n");
            }
        }
        // stderr: stdout carries only data (a token), so `tessera login | ...` stays clean.
        {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(text.as_bytes());
            let _ = stderr.flush();
        }
        if let Prompt::DeviceCode { expires_at, .. } = prompt
            && std::io::stderr().is_terminal()
        {
            self.start_countdown(*expires_at);
        }
        Ok(())
    }

    /// Reads one line from the terminal: the pasted URL (browser login without a loopback
    /// listener) or the typed code.
    async fn ask(&self, key: &str, prompt: &Prompt) -> Result<Secret, Error> {
        use std::io::Write as _;
        let mut text = self.render(key, prompt, crate::clock::system_now());
        if let Prompt::Browser { redirect_uri, .. } = prompt {
            // Paste mode: nothing listens, so the browser may be on another machine.
            text = text
                .lines()
                .filter(|line| !line.starts_with("Use a browser on this machine"))
                .map(|line| format!("{line}\n"))
                .collect::<String>()
                .replace(
                    "Waiting for the browser to come back...",
                    &format!("Then paste here the full address the browser ends on ({redirect_uri}?code=...):"),
                );
        }
        {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(text.as_bytes());
            let _ = stderr.flush();
        }
        // Blocking read off the async runtime's threads.
        let line = tokio::task::spawn_blocking(|| {
            let mut line = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await
        .map_err(|error| Error::configuration(format!("reading the terminal failed: {error}")))?
        .map_err(|error| Error::configuration(format!("reading the terminal failed: {error}")))?;
        let answer = line.trim();
        if answer.is_empty() {
            return Err(Error::ReauthenticationRequired { reason: format!("no answer was entered for {key}") });
        }
        Ok(Secret::new(answer))
    }
}

#[cfg(all(test, feature = "terminal"))]
mod tests {
    use super::*;
    use std::time::Duration;
    use tessera_core::Timestamp;

    #[test]
    fn renders_code_url_qr_and_expiry() {
        let now = Timestamp::from_unix_secs(1_000);
        let prompt = Prompt::DeviceCode {
            user_code: "WDJB-MJHT".into(),
            verification_uri: "https://idp.example/device".into(),
            verification_uri_complete: Some("https://idp.example/device?user_code=WDJB-MJHT".into()),
            expires_at: now + Duration::from_secs(600),
        };
        let text = TerminalPrompter::new().render("dev/peer", &prompt, now);
        assert!(text.contains("open https://idp.example/device\n"), "{text}");
        assert!(text.contains("WDJB-MJHT") && text.contains("expires in 10m00s"), "{text}");
        assert!(text.contains('▀') || text.contains('▄') || text.contains('█'), "a QR code is drawn: {text}");
        let plain = TerminalPrompter::new().without_qr_code().render("dev/peer", &prompt, now);
        assert!(!plain.contains('█') && plain.lines().count() == 4, "{plain}");
    }

    #[test]
    fn renders_browser_urls_and_code_prompts() {
        let now = Timestamp::from_unix_secs(1_000);
        let prompt = Prompt::Browser {
            authorization_url: "https://idp.example/authorize?state=s".into(),
            redirect_uri: "http://127.0.0.1:5000/callback".into(),
        };
        let text = TerminalPrompter::new().no_browser().render("dev/web", &prompt, now);
        assert!(text.contains("    https://idp.example/authorize?state=s\n"), "{text}");
        assert!(text.contains("sign in to dev/web"), "{text}");
        let prompt = Prompt::Code {
            channel: tessera_core::CodeChannel::Email,
            destination: Some("a***@e***".into()),
            attempt: 2,
            previous_error: Some("invalid_code".into()),
        };
        let text = TerminalPrompter::new().render("dev/otp", &prompt, now);
        assert!(text.contains("refused: invalid_code") && text.contains("email code sent to a***@e***"), "{text}");
        assert!(text.contains("(attempt 2)"), "{text}");
    }

    #[test]
    fn the_countdown_spins_and_counts_down() {
        let first = TerminalPrompter::countdown_line(0, Duration::from_secs(599));
        let next = TerminalPrompter::countdown_line(1, Duration::from_secs(598));
        assert!(first.ends_with("expires in 9m59s") && next.ends_with("expires in 9m58s"), "{first} / {next}");
        assert_ne!(first.chars().next(), next.chars().next(), "the spinner moves");
        assert_eq!(
            TerminalPrompter::countdown_line(10, Duration::ZERO),
            TerminalPrompter::countdown_line(0, Duration::ZERO)
        );
    }

    #[tokio::test]
    async fn finish_stops_the_countdown() {
        let prompter = TerminalPrompter::new();
        prompter.start_countdown(tessera_core::Timestamp::from_unix_secs(i64::MAX / 2_000));
        assert!(prompter.countdown.lock().unwrap().is_some());
        let clone = prompter.clone();
        clone.finish();
        assert!(prompter.countdown.lock().unwrap().is_none(), "clones share the spinner");
    }
}

#[cfg(test)]
mod code_prompter_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use tessera_core::CodeChannel;

    fn code_prompt(attempt: u32) -> Prompt {
        Prompt::Code {
            channel: CodeChannel::Email,
            destination: Some("a***@e***".into()),
            attempt,
            previous_error: (attempt > 1).then(|| "wrong code".into()),
        }
    }

    #[tokio::test]
    async fn sync_and_async_callbacks_answer_each_attempt() {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        let sync = CodePrompter::new(move |prompt: &Prompt| {
            seen.fetch_add(1, Ordering::SeqCst);
            let Prompt::Code { attempt, .. } = prompt else { return Err(Error::configuration("not a code")) };
            Ok(format!("code-{attempt}"))
        });
        assert_eq!(sync.ask("k", &code_prompt(1)).await.unwrap().expose_secret(), "code-1");
        assert_eq!(sync.ask("k", &code_prompt(2)).await.unwrap().expose_secret(), "code-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let asynchronous = CodePrompter::from_async(|prompt: Prompt| async move {
            tokio::task::yield_now().await;
            match prompt {
                Prompt::Code { attempt: 1, .. } => Ok(Secret::new("first")),
                _ => Err(Error::ReauthenticationRequired { reason: "gave up".into() }),
            }
        });
        assert_eq!(asynchronous.ask("k", &code_prompt(1)).await.unwrap().expose_secret(), "first");
        let error = asynchronous.ask("k", &code_prompt(2)).await.unwrap_err();
        assert!(error.requires_reauthentication());
        assert_eq!(format!("{asynchronous:?}"), r#"CodePrompter { callback: "async" }"#);
    }

    #[tokio::test]
    async fn shows_nothing_and_survives_a_panicking_callback() {
        let prompter = CodePrompter::new(|_: &Prompt| -> Result<Secret, Error> { panic!("boom 123456") });
        let error = prompter.ask("k", &code_prompt(1)).await.unwrap_err();
        assert!(matches!(&error, Error::Configuration { message } if message == "the code callback panicked"));
        let device = Prompt::DeviceCode {
            user_code: "ABCD-EFGH".into(),
            verification_uri: "https://idp/device".into(),
            verification_uri_complete: None,
            expires_at: tessera_core::Timestamp::EPOCH,
        };
        let error = prompter.show("k", &device).await.unwrap_err();
        assert!(error.to_string().contains("only answers one-time codes"), "{error}");
    }
}
