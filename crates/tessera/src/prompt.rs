//! How an interactive login reaches a person: [`Prompter`] shows what the core asks to show
//! (a device code today). The CLI's prompter writes to the terminal; a GUI or a bot brings its own.

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

/// Shows prompts on stderr: the verification URL, the code, a QR code of the complete URL, and
/// how long the code stays valid. What the `tessera` CLI uses.
#[cfg(feature = "terminal")]
#[derive(Clone, Copy, Debug)]
pub struct TerminalPrompter {
    qr_code: bool,
    no_browser: bool,
}

#[cfg(feature = "terminal")]
impl Default for TerminalPrompter {
    fn default() -> Self {
        TerminalPrompter { qr_code: true, no_browser: false }
    }
}

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
}

#[cfg(feature = "terminal")]
#[async_trait]
impl Prompter for TerminalPrompter {
    async fn show(&self, key: &str, prompt: &Prompt) -> Result<(), Error> {
        use std::io::Write as _;
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
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(text.as_bytes());
        let _ = stderr.flush();
        Ok(())
    }

    /// Reads one line from the terminal: the pasted URL (browser login without a loopback
    /// listener) or the typed code.
    async fn ask(&self, key: &str, prompt: &Prompt) -> Result<Secret, Error> {
        use std::io::Write as _;
        let mut text = self.render(key, prompt, crate::clock::system_now());
        if let Prompt::Browser { redirect_uri, .. } = prompt {
            text = text.replace(
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
}
