//! A server's free text reaches errors and logs without a line of its own (docs/DECISIONS.md, "A
//! server's text reaches errors and logs without control characters"). A test binary of its own:
//! the log capture is the process's global subscriber, which a scoped one in a shared binary is
//! not (tracing caches a log line's interest per process, from whichever thread reaches it first).

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_idp::{Fault, FaultEndpoint, FaultKind};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A token endpoint's `error` and `error_description` reach the error, and the log lines that carry
/// it, without a newline or a bidirectional override of theirs (a forged log line, a terminal
/// rewritten).
#[tokio::test]
async fn a_servers_error_text_writes_no_line_of_its_own_into_errors_or_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let idp = support::idp(Duration::from_secs(300)).await;
    let body =
        r#"{"error":"odd\nlevel=INFO","error_description":"Zugriff verweigert\nlevel=INFO msg=forged\u001b[2K\u202e"}"#;
    let fault = FaultKind::Status { status: 400, body: body.into(), content_type: "application/json".into() };
    idp.faults().push(FaultEndpoint::Token, Fault::new(fault), 1);
    let error = support::session("alice", support::alice(&idp.issuer())).authorization_header().await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("odd?level=INFO") && text.contains("Zugriff verweigert?level=INFO msg=forged?[2K?"),
        "{text}"
    );

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("Zugriff verweigert?level=INFO msg=forged"), "the failure is logged:\n{logs}");
    assert!(!logs.lines().any(|line| line.starts_with("level=INFO")) && !logs.contains('\u{202e}'), "{logs}");
}
