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

/// Shows prompts on stderr: the verification URL, the code, a compact QR code of the complete
/// URL, and how long the code stays valid. What the `tessera` CLI uses.
///
/// On a terminal it then keeps a spinner with a countdown on the last line, redrawn four times a
/// second, until [`TerminalPrompter::finish`] is called (after the login ends), the prompter is
/// dropped, or the deadline passes: for a device code, "Waiting: enter ABCD-EFGH at
/// https://… (4:52 left)" — the code is repeated there so that it stays on screen below the QR
/// code; for a browser sign-in, the time left of `login_timeout`. The QR code is drawn only when
/// the terminal is tall enough to show it with the code below it. When stderr is not a terminal
/// (logs, CI) nothing is redrawn: plain lines only.
///
/// Answers ([`Prompter::ask`]) are read from stdin; an empty answer is asked again (at most
/// [`TerminalPrompter::MAX_EMPTY_ANSWERS`] times).
#[cfg(feature = "terminal")]
#[derive(Clone, Debug)]
pub struct TerminalPrompter {
    qr_code: bool,
    no_browser: bool,
    /// How long a browser sign-in waits (the loopback listener's `login_timeout`), for its countdown.
    login_timeout: std::time::Duration,
    /// The running countdown. A std mutex: held only to swap the handle, never across an await.
    countdown: std::sync::Arc<std::sync::Mutex<Option<Countdown>>>,
    /// The last device code shown, per session key: to say in words why a login with it failed.
    shown: std::sync::Arc<std::sync::Mutex<Option<(String, ShownCode)>>>,
}

/// A device code as shown to the person.
#[cfg(feature = "terminal")]
#[derive(Clone, Debug)]
struct ShownCode {
    user_code: String,
    verification_uri: String,
    expires_at: tessera_core::Timestamp,
}

/// The terminal on stdin without echo, line editing or signal keys, until dropped: a password
/// being typed, read key by key (see [`read_hidden_line`]).
#[cfg(all(feature = "terminal", unix))]
struct Quiet {
    saved: rustix::termios::Termios,
}

#[cfg(all(feature = "terminal", unix))]
impl Quiet {
    fn new(stdin: &std::io::Stdin) -> Option<Quiet> {
        use rustix::termios::{LocalModes, OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr};
        let saved = tcgetattr(stdin).ok()?;
        let mut quiet = saved.clone();
        // Without ISIG, Ctrl-C arrives as a key: the terminal is restored before the process
        // ends (a process killed with echo off leaves the shell without echo).
        quiet.local_modes.remove(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG);
        quiet.special_codes[SpecialCodeIndex::VMIN] = 1;
        quiet.special_codes[SpecialCodeIndex::VTIME] = 0;
        tcsetattr(stdin, OptionalActions::Now, &quiet).ok()?;
        Some(Quiet { saved })
    }
}

#[cfg(all(feature = "terminal", unix))]
impl Drop for Quiet {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(std::io::stdin(), rustix::termios::OptionalActions::Now, &self.saved);
    }
}

/// One line from stdin: on a terminal without echo, key by key — Enter ends it, Backspace erases,
/// Ctrl-U clears, Ctrl-D on an empty line is the end of input, and Ctrl-C restores the terminal
/// and then interrupts the process as the key would have. `None` at the end of input. Not on a
/// terminal (a pipe): one line as it comes. Blocking: call it off the async runtime.
///
/// Windows: a console cannot be switched to no-echo without Win32 calls (`SetConsoleMode`) that
/// need `unsafe`, which the workspace forbids; rather than show the secret as it is typed, a
/// console on stdin is refused with [`std::io::ErrorKind::Unsupported`] and a message saying to
/// pipe the value instead. A pipe is read as on Unix.
#[cfg(all(feature = "terminal", unix))]
pub fn read_hidden_line(stdin: &std::io::Stdin) -> std::io::Result<Option<zeroize::Zeroizing<String>>> {
    use std::io::{IsTerminal as _, Read as _};
    let quiet = if stdin.is_terminal() { Quiet::new(stdin) } else { None };
    if quiet.is_none() {
        return read_plain_line(stdin);
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    let mut key = [0u8; 1];
    let mut input = stdin.lock();
    loop {
        if input.read(&mut key)? == 0 {
            return Ok(None);
        }
        match key[0] {
            b'\r' | b'\n' => break,
            0x03 => {
                drop(quiet);
                let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::INT);
                return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted"));
            }
            0x04 if bytes.is_empty() => return Ok(None),
            0x7f | 0x08 => {
                // Back one character, not one byte.
                while let Some(byte) = bytes.pop() {
                    if byte & 0xC0 != 0x80 {
                        break;
                    }
                }
            }
            0x15 => bytes.clear(),
            byte => bytes.push(byte),
        }
    }
    let text = String::from_utf8(std::mem::take(&mut *bytes))
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "the answer is not UTF-8 text"))?;
    Ok(Some(zeroize::Zeroizing::new(text)))
}

/// See the Unix form above: a pipe is read, a console refused.
#[cfg(all(feature = "terminal", not(unix)))]
pub fn read_hidden_line(stdin: &std::io::Stdin) -> std::io::Result<Option<zeroize::Zeroizing<String>>> {
    use std::io::IsTerminal as _;
    if stdin.is_terminal() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "a secret cannot be typed without echo on a Windows console: pipe it on stdin instead",
        ));
    }
    read_plain_line(stdin)
}

/// One line from stdin as it comes, without its line ending; `None` at the end of input.
#[cfg(feature = "terminal")]
fn read_plain_line(stdin: &std::io::Stdin) -> std::io::Result<Option<zeroize::Zeroizing<String>>> {
    use std::io::BufRead as _;
    let mut line = zeroize::Zeroizing::new(String::new());
    let read = stdin.lock().read_line(&mut line)?;
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok((read > 0).then_some(line))
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
        TerminalPrompter {
            qr_code: true,
            no_browser: false,
            login_timeout: std::time::Duration::from_secs(300),
            countdown: Default::default(),
            shown: Default::default(),
        }
    }
}

/// Whether a spinner line is drawn on stderr now: stderr is one per process, and so is this flag.
#[cfg(feature = "terminal")]
static SPINNER_DRAWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(feature = "terminal")]
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Lines of the device-code text besides the QR code ("To sign in...", "and enter the code...",
/// "or open...", "The code expires..."), plus the spinner line and the line of the command that
/// started the login: what must stay on screen with the QR code.
#[cfg(feature = "terminal")]
const DEVICE_TEXT_ROWS: usize = 6;

/// "4:52": minutes and seconds, for countdowns.
#[cfg(feature = "terminal")]
fn clock_time(remaining: std::time::Duration) -> String {
    let secs = remaining.as_secs();
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// The terminal size of stderr (rows, columns), when it is a terminal that knows it.
#[cfg(all(feature = "terminal", unix))]
fn terminal_size() -> Option<(usize, usize)> {
    use std::io::IsTerminal as _;
    let stderr = std::io::stderr();
    if !stderr.is_terminal() {
        return None;
    }
    let size = rustix::termios::tcgetwinsize(&stderr).ok()?;
    (size.ws_row > 0 && size.ws_col > 0).then_some((usize::from(size.ws_row), usize::from(size.ws_col)))
}

/// Windows: unknown (the console's size needs Win32 calls that take `unsafe`): the QR code is then
/// always drawn, as on a Unix terminal that does not report its size.
#[cfg(all(feature = "terminal", not(unix)))]
fn terminal_size() -> Option<(usize, usize)> {
    None
}

/// A QR code of `text`, two modules per character row (half blocks): about half the lines of a
/// one-module-per-row rendering, so that it fits an 80×24 terminal with the text around it. Error
/// correction level L keeps the version (and the size) small; screens do not get dirty. Light
/// modules and the two-module margin are drawn as blocks and dark modules as blanks: right on the
/// usual dark terminal, where a scanner needs dark modules on a light ground.
#[cfg(feature = "terminal")]
pub fn qr_code_lines(text: &str) -> Option<Vec<String>> {
    const MARGIN: usize = 2;
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::L).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * MARGIN;
    let light = |x: usize, y: usize| {
        if y >= size {
            return false; // below the code: the terminal's own ground
        }
        let inside = (MARGIN..width + MARGIN).contains(&x) && (MARGIN..width + MARGIN).contains(&y);
        !inside || colors[(y - MARGIN) * width + (x - MARGIN)] == qrcode::Color::Light
    };
    let lines = (0..size)
        .step_by(2)
        .map(|y| {
            (0..size)
                .map(|x| match (light(x, y), light(x, y + 1)) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                })
                .collect::<String>()
        })
        .collect();
    Some(lines)
}

#[cfg(feature = "terminal")]
impl TerminalPrompter {
    /// How many empty answers in a row [`Prompter::ask`] accepts before it gives up.
    pub const MAX_EMPTY_ANSWERS: u32 = 3;

    /// A prompter that draws QR codes (when they fit the terminal).
    pub fn new() -> Self {
        Self::default()
    }

    /// Without the QR code (`--no-qr`: small terminals, logs, screen readers).
    pub fn without_qr_code(self) -> Self {
        TerminalPrompter { qr_code: false, ..self }
    }

    /// Never opens a browser: browser logins print the URL to open elsewhere (`--no-browser`;
    /// SSH sessions, containers).
    pub fn no_browser(self) -> Self {
        TerminalPrompter { no_browser: true, ..self }
    }

    /// How long browser sign-ins wait for the browser (the provider's `login_timeout`; default 5
    /// minutes): what their countdown counts down from. Clones share the spinner.
    pub fn with_login_timeout(self, login_timeout: std::time::Duration) -> Self {
        TerminalPrompter { login_timeout, ..self }
    }

    /// Stops the spinner and clears its line. Call it when the login has ended (either way).
    pub fn finish(&self) {
        let running = self.countdown.lock().map(|mut slot| slot.take()).unwrap_or_default();
        if let Some(countdown) = running {
            drop(countdown);
            use std::io::Write as _;
            let mut stderr = std::io::stderr().lock();
            SPINNER_DRAWN.store(false, std::sync::atomic::Ordering::Relaxed);
            let _ = stderr.write_all(b"\r\x1b[2K");
            let _ = stderr.flush();
        }
    }

    /// Clears the spinner line, when one is drawn, so that other output (a log line) starts on an
    /// empty line instead of after the spinner's text; the spinner redraws itself below it at its
    /// next tick. For a `tracing` writer:
    /// `.with_writer(|| { TerminalPrompter::clear_spinner_line(); std::io::stderr() })`.
    pub fn clear_spinner_line() {
        if SPINNER_DRAWN.swap(false, std::sync::atomic::Ordering::Relaxed) {
            use std::io::Write as _;
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(b"\r\x1b[2K");
            let _ = stderr.flush();
        }
    }

    /// The spinner line of a device login at `frame` (any number; it cycles), with `remaining`
    /// until the code expires, at most `columns` characters wide (the URL is left out when the
    /// line would not fit: a wrapped line could not be redrawn in place). E.g. "⠹ Waiting: enter
    /// ABCD-EFGH at https://idp.example.com/device (4:52 left)".
    pub fn device_countdown_line(
        frame: usize,
        user_code: &str,
        verification_uri: &str,
        remaining: std::time::Duration,
        columns: usize,
    ) -> String {
        let spinner = SPINNER[frame % SPINNER.len()];
        let left = clock_time(remaining);
        let line = format!("{spinner} Waiting: enter {user_code} at {verification_uri} ({left} left)");
        if line.chars().count() < columns {
            line
        } else {
            format!("{spinner} Waiting: enter {user_code} ({left} left)")
        }
    }

    /// The spinner line of a browser sign-in at `frame`, with `remaining` of `login_timeout`.
    pub fn browser_countdown_line(frame: usize, remaining: std::time::Duration) -> String {
        format!(
            "{} Waiting for the browser sign-in… {} left; press Ctrl-C to cancel",
            SPINNER[frame % SPINNER.len()],
            clock_time(remaining)
        )
    }

    /// The text shown for `prompt` at `now`, on a terminal of any height.
    pub fn render(&self, key: &str, prompt: &Prompt, now: tessera_core::Timestamp) -> String {
        self.render_sized(key, prompt, now, None)
    }

    /// The text shown for `prompt` at `now` on a terminal of `rows` lines (`None`: unknown, e.g.
    /// not a terminal). The QR code is left out, with a one-line note, when it would push the
    /// code off the screen.
    pub fn render_sized(
        &self,
        key: &str,
        prompt: &Prompt,
        now: tessera_core::Timestamp,
        rows: Option<usize>,
    ) -> String {
        use std::fmt::Write as _;
        let mut text = String::new();
        match prompt {
            Prompt::DeviceCode { user_code, verification_uri, verification_uri_complete, expires_at } => {
                let _ = writeln!(text, "To sign in to {key}, open {verification_uri}");
                let _ = writeln!(text, "and enter the code:  {user_code}");
                if let Some(complete) = verification_uri_complete {
                    let _ = writeln!(text, "or open {complete}");
                    if let Some(qr) = self.qr_code.then(|| qr_code_lines(complete)).flatten() {
                        match rows {
                            Some(rows) if qr.len() + DEVICE_TEXT_ROWS > rows => {
                                let _ = writeln!(
                                    text,
                                    "(QR code left out: it needs {} terminal rows, this one has {rows})",
                                    qr.len() + DEVICE_TEXT_ROWS
                                );
                            }
                            _ => {
                                for line in qr {
                                    let _ = writeln!(text, "{line}");
                                }
                            }
                        }
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
                let secs = self.login_timeout.as_secs();
                let _ = writeln!(
                    text,
                    "Waiting for the browser to come back (at most {}m{:02}s; Ctrl-C cancels)...",
                    secs / 60,
                    secs % 60
                );
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

    /// A sentence for a person when `error` ended the login of session `key` after this prompter
    /// showed it a device code: the code expired, or the sign-in was denied. `command` is what to
    /// run to start again. `None` for any other error (show it as it is). Only words: the typed
    /// error is the caller's to keep (its exit code, its kind).
    pub fn explain(&self, key: &str, error: &Error, command: &str) -> Option<String> {
        use tessera_core::OAuthErrorCode;
        let shown = self.shown.lock().ok()?.clone();
        let (shown_key, code) = shown?;
        if shown_key != key {
            return None;
        }
        let expired = match error {
            Error::OAuth { code: OAuthErrorCode::ExpiredToken, .. } => true,
            // The local deadline (the flow stops polling when the code's lifetime is over).
            Error::ReauthenticationRequired { .. } => crate::clock::system_now() >= code.expires_at,
            _ => false,
        };
        if expired {
            return Some(format!("the code {} expired before it was approved; run '{command}' again", code.user_code));
        }
        if let Error::OAuth { code: OAuthErrorCode::AccessDenied, .. } = error {
            return Some(format!(
                "the sign-in was denied at {} (code {}); run '{command}' to try again",
                code.verification_uri, code.user_code
            ));
        }
        None
    }

    /// Starts (or restarts) the spinner until `deadline`: `line(frame, remaining)` is redrawn in
    /// place four times a second. At the deadline the last line stays until [`Self::finish`].
    fn start_countdown(
        &self,
        deadline: tessera_core::Timestamp,
        line: impl Fn(usize, std::time::Duration) -> String + Send + 'static,
    ) {
        let task = tokio::spawn(async move {
            use std::io::Write as _;
            let mut ticks = tokio::time::interval(std::time::Duration::from_millis(250));
            for frame in 0usize.. {
                ticks.tick().await;
                let remaining = deadline.duration_since(crate::clock::system_now());
                let text = line(frame, remaining);
                let mut stderr = std::io::stderr().lock();
                let _ = write!(stderr, "\r\x1b[2K{text}");
                let _ = stderr.flush();
                SPINNER_DRAWN.store(true, std::sync::atomic::Ordering::Relaxed);
                if remaining.is_zero() {
                    return;
                }
            }
        });
        if let Ok(mut slot) = self.countdown.lock() {
            *slot = Some(Countdown(task));
        }
    }

    /// Asks `question` on stderr and reads one line from stdin, not echoed when stdin is a
    /// terminal: a password typed for `key`. Only the line ending is cut (a password may end with
    /// a space). An empty answer is asked again, at most [`Self::MAX_EMPTY_ANSWERS`] times; the
    /// end of input gives up at once. Blocking: call it before the login starts, or off the async
    /// runtime.
    pub fn ask_hidden(&self, key: &str, question: &str) -> Result<Secret, Error> {
        use std::io::{IsTerminal as _, Write as _};
        let write = |text: &str| {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(text.as_bytes());
            let _ = stderr.flush();
        };
        let stdin = std::io::stdin();
        write(question);
        for asked in 1..=Self::MAX_EMPTY_ANSWERS {
            let line = read_hidden_line(&stdin);
            if stdin.is_terminal() {
                write("\n"); // the Enter was not echoed either
            }
            let line = line.map_err(|error| Error::configuration(format!("reading the terminal failed: {error}")))?;
            let Some(answer) = line else {
                return Err(Error::ReauthenticationRequired {
                    reason: format!("no answer was entered for {key} (end of input)"),
                });
            };
            if !answer.is_empty() {
                return Ok(Secret::new(answer.as_str()));
            }
            if asked < Self::MAX_EMPTY_ANSWERS {
                write(&format!("Nothing was entered (Ctrl-C cancels). {question}"));
            }
        }
        Err(Error::ReauthenticationRequired {
            reason: format!("no answer was entered for {key} ({} empty answers)", Self::MAX_EMPTY_ANSWERS),
        })
    }

    /// Reads one line from stdin off the async runtime's threads. `None` at the end of input.
    async fn read_line() -> Result<Option<zeroize::Zeroizing<String>>, Error> {
        tokio::task::spawn_blocking(|| {
            let mut line = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_line(&mut line).map(|read| (read > 0).then_some(line))
        })
        .await
        .map_err(|error| Error::configuration(format!("reading the terminal failed: {error}")))?
        .map_err(|error| Error::configuration(format!("reading the terminal failed: {error}")))
    }
}

#[cfg(feature = "terminal")]
#[async_trait]
impl Prompter for TerminalPrompter {
    async fn show(&self, key: &str, prompt: &Prompt) -> Result<(), Error> {
        use std::io::Write as _;
        self.finish();
        let size = terminal_size();
        let now = crate::clock::system_now();
        let mut text = self.render_sized(key, prompt, now, size.map(|(rows, _)| rows));
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
        match prompt {
            Prompt::DeviceCode { user_code, verification_uri, expires_at, .. } => {
                if let Ok(mut shown) = self.shown.lock() {
                    let code = ShownCode {
                        user_code: user_code.clone(),
                        verification_uri: verification_uri.clone(),
                        expires_at: *expires_at,
                    };
                    *shown = Some((key.to_owned(), code));
                }
                if let Some((_, columns)) = size {
                    let (user_code, verification_uri) = (user_code.clone(), verification_uri.clone());
                    self.start_countdown(*expires_at, move |frame, remaining| {
                        Self::device_countdown_line(frame, &user_code, &verification_uri, remaining, columns)
                    });
                }
            }
            // Shown only when a loopback listener waits: paste mode asks instead.
            Prompt::Browser { .. } if size.is_some() => {
                self.start_countdown(now + self.login_timeout, Self::browser_countdown_line);
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads one line from the terminal: the pasted URL (browser login without a loopback
    /// listener) or the typed code. An empty line asks again, at most
    /// [`TerminalPrompter::MAX_EMPTY_ANSWERS`] times; the end of input gives up at once.
    async fn ask(&self, key: &str, prompt: &Prompt) -> Result<Secret, Error> {
        use std::io::Write as _;
        let mut text = self.render(key, prompt, crate::clock::system_now());
        if let Prompt::Browser { redirect_uri, .. } = prompt {
            // Paste mode: nothing listens, so the browser may be on another machine.
            text = text
                .lines()
                .filter(|line| !line.starts_with("Use a browser on this machine"))
                .map(|line| {
                    if line.starts_with("Waiting for the browser to come back") {
                        format!("Then paste here the full address the browser ends on ({redirect_uri}?code=...): ")
                    } else {
                        format!("{line}\n")
                    }
                })
                .collect();
        }
        // The question itself (the last line), asked again after an empty answer.
        let question = text.rsplit_once('\n').map_or(text.as_str(), |(_, last)| last).to_owned();
        let write = |text: &str| {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(text.as_bytes());
            let _ = stderr.flush();
        };
        write(&text);
        for asked in 1..=Self::MAX_EMPTY_ANSWERS {
            let Some(line) = Self::read_line().await? else {
                return Err(Error::ReauthenticationRequired {
                    reason: format!("no answer was entered for {key} (end of input)"),
                });
            };
            let answer = line.trim();
            if !answer.is_empty() {
                return Ok(Secret::new(answer));
            }
            if asked < Self::MAX_EMPTY_ANSWERS {
                write(&format!("Nothing was entered (Ctrl-C cancels). {question}"));
            }
        }
        Err(Error::ReauthenticationRequired {
            reason: format!("no answer was entered for {key} ({} empty answers)", Self::MAX_EMPTY_ANSWERS),
        })
    }
}

#[cfg(all(test, feature = "terminal"))]
mod tests {
    use super::*;
    use std::time::Duration;
    use tessera_core::Timestamp;

    fn device_prompt(now: Timestamp) -> Prompt {
        Prompt::DeviceCode {
            user_code: "WDJB-MJHT".into(),
            verification_uri: "https://idp.example/device".into(),
            verification_uri_complete: Some("https://idp.example/device?user_code=WDJB-MJHT".into()),
            expires_at: now + Duration::from_secs(600),
        }
    }

    #[test]
    fn renders_code_url_qr_and_expiry() {
        let now = Timestamp::from_unix_secs(1_000);
        let prompt = device_prompt(now);
        let text = TerminalPrompter::new().render("dev/peer", &prompt, now);
        assert!(text.contains("open https://idp.example/device\n"), "{text}");
        assert!(text.contains("WDJB-MJHT") && text.contains("expires in 10m00s"), "{text}");
        assert!(text.contains('▀') || text.contains('▄') || text.contains('█'), "a QR code is drawn: {text}");
        // Half-height: the QR code and the text fit 24 rows with the spinner and the command line.
        assert!(text.lines().count() + 2 <= 24, "{} lines: {text}", text.lines().count());
        let plain = TerminalPrompter::new().without_qr_code().render("dev/peer", &prompt, now);
        assert!(!plain.contains('█') && plain.lines().count() == 4, "{plain}");
    }

    #[test]
    fn a_qr_code_that_does_not_fit_is_left_out_with_a_note() {
        let now = Timestamp::from_unix_secs(1_000);
        let prompt = device_prompt(now);
        let prompter = TerminalPrompter::new();
        let fits = prompter.render_sized("dev/peer", &prompt, now, Some(24));
        assert!(fits.contains('█') && !fits.contains("left out"), "{fits}");
        let small = prompter.render_sized("dev/peer", &prompt, now, Some(12));
        assert!(!small.contains('█') && small.contains("QR code left out"), "{small}");
        assert_eq!(small.lines().count(), 5, "{small}");
    }

    #[test]
    fn the_qr_code_reads_back_as_a_square_of_half_blocks() {
        let lines = qr_code_lines("https://idp.example/device?user_code=WDJB-MJHT").unwrap();
        let width = lines[0].chars().count();
        // 29 modules (version 3) + 2 × 2 margin = 33 columns, 17 rows of two modules.
        assert_eq!((width, lines.len()), (33, 17), "{lines:#?}");
        assert!(lines.iter().all(|line| line.chars().count() == width));
        assert!(lines[0].chars().all(|c| c == '█'), "the top margin is light: {}", lines[0]);
        // Read back module by module: the code's own modules, light drawn as blocks, inside the margin.
        let code = qrcode::QrCode::with_error_correction_level(
            "https://idp.example/device?user_code=WDJB-MJHT".as_bytes(),
            qrcode::EcLevel::L,
        )
        .unwrap();
        let colors = code.to_colors();
        let grid: Vec<Vec<char>> = lines.iter().map(|line| line.chars().collect()).collect();
        for y in 0..code.width() {
            for x in 0..code.width() {
                let cell = grid[(y + 2) / 2][x + 2];
                let light =
                    if (y + 2) % 2 == 0 { matches!(cell, '█' | '▀') } else { matches!(cell, '█' | '▄') };
                assert_eq!(light, colors[y * code.width() + x] == qrcode::Color::Light, "module ({x}, {y})");
            }
        }
    }

    #[test]
    fn renders_browser_urls_and_code_prompts() {
        let now = Timestamp::from_unix_secs(1_000);
        let prompt = Prompt::Browser {
            authorization_url: "https://idp.example/authorize?state=s".into(),
            redirect_uri: "http://127.0.0.1:5000/callback".into(),
        };
        let text = TerminalPrompter::new()
            .no_browser()
            .with_login_timeout(Duration::from_secs(90))
            .render("dev/web", &prompt, now);
        assert!(text.contains("    https://idp.example/authorize?state=s\n"), "{text}");
        assert!(text.contains("sign in to dev/web"), "{text}");
        assert!(text.contains("Waiting for the browser to come back (at most 1m30s; Ctrl-C cancels)"), "{text}");
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
    fn the_countdowns_spin_count_down_and_fit_the_width() {
        let uri = "https://idp.example/device";
        let first = TerminalPrompter::device_countdown_line(0, "WDJB-MJHT", uri, Duration::from_secs(599), 80);
        let next = TerminalPrompter::device_countdown_line(1, "WDJB-MJHT", uri, Duration::from_secs(598), 80);
        assert!(first.ends_with("Waiting: enter WDJB-MJHT at https://idp.example/device (9:59 left)"), "{first}");
        assert!(next.ends_with("(9:58 left)"), "{next}");
        assert_ne!(first.chars().next(), next.chars().next(), "the spinner moves");
        let narrow = TerminalPrompter::device_countdown_line(0, "WDJB-MJHT", uri, Duration::from_secs(5), 40);
        assert!(narrow.ends_with("Waiting: enter WDJB-MJHT (0:05 left)") && narrow.chars().count() < 40, "{narrow}");
        let browser = TerminalPrompter::browser_countdown_line(3, Duration::from_secs(299));
        assert!(browser.ends_with("Waiting for the browser sign-in… 4:59 left; press Ctrl-C to cancel"), "{browser}");
        assert_eq!(
            TerminalPrompter::browser_countdown_line(10, Duration::ZERO),
            TerminalPrompter::browser_countdown_line(0, Duration::ZERO)
        );
    }

    #[tokio::test]
    async fn explains_expired_and_denied_device_codes_in_words() {
        use tessera_core::OAuthErrorCode;
        let prompter = TerminalPrompter::new().without_qr_code();
        let oauth = |code| Error::OAuth { code, description: None, status: 400, endpoint: "https://idp/token".into() };
        let expired = oauth(OAuthErrorCode::ExpiredToken);
        assert_eq!(prompter.explain("dev/tv", &expired, "tessera login"), None, "no code shown yet");
        let now = crate::clock::system_now();
        prompter.show("dev/tv", &device_prompt(now)).await.unwrap();
        let text = prompter.explain("dev/tv", &expired, "tessera login --provider tv").unwrap();
        assert_eq!(text, "the code WDJB-MJHT expired before it was approved; run 'tessera login --provider tv' again");
        let denied = prompter.explain("dev/tv", &oauth(OAuthErrorCode::AccessDenied), "tessera login").unwrap();
        assert!(denied.starts_with("the sign-in was denied at https://idp.example/device"), "{denied}");
        assert_eq!(prompter.explain("dev/other", &expired, "x"), None, "another session's code");
        let early = Error::ReauthenticationRequired { reason: "x".into() };
        assert_eq!(prompter.explain("dev/tv", &early, "x"), None, "the code is still valid");
        assert_eq!(prompter.explain("dev/tv", &oauth(OAuthErrorCode::InvalidClient), "x"), None);
    }

    #[tokio::test]
    async fn finish_stops_the_countdown() {
        let prompter = TerminalPrompter::new();
        prompter.start_countdown(tessera_core::Timestamp::from_unix_secs(i64::MAX / 2_000), |_, _| String::new());
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
