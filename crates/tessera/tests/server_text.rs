//! A server's free text reaches errors and logs without a line of its own (docs/DECISIONS.md, "A
//! server's text reaches errors and logs without control characters"). A test binary of its own:
//! the log capture is the process's global subscriber (support/logs.rs).

mod support;

use std::time::Duration;

use tessera_idp::{Fault, FaultEndpoint, FaultKind};

/// A token endpoint's `error` and `error_description` reach the error, and the log lines that carry
/// it, without a newline or a bidirectional override of theirs (a forged log line, a terminal
/// rewritten).
#[tokio::test]
async fn a_servers_error_text_writes_no_line_of_its_own_into_errors_or_logs() {
    let capture = support::logs::LogCapture::install(tracing::Level::DEBUG);

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

    let logs = capture.text();
    assert!(logs.contains("Zugriff verweigert?level=INFO msg=forged"), "the failure is logged:\n{logs}");
    assert!(!logs.lines().any(|line| line.starts_with("level=INFO")) && !logs.contains('\u{202e}'), "{logs}");
}
