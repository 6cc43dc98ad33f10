//! The outbox: where the server "sends" email one-time codes. Nothing leaves the process;
//! tests read the messages through [`IdpServer::outbox`](crate::IdpServer::outbox) or
//! `GET /_test/outbox?to=<email>`.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// How many messages the outbox keeps; older ones are dropped first.
const CAPACITY: usize = 1000;

/// One email the server would have sent.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body; contains the code.
    pub body: String,
    /// The 6-digit one-time code the message carries.
    pub code: String,
    /// When it was sent, Unix seconds on the server's clock (clock offset included).
    pub sent_at: u64,
}

impl std::fmt::Debug for OutboxMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The code is a credential while it is valid.
        f.debug_struct("OutboxMessage")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("code", &"<redacted>")
            .field("sent_at", &self.sent_at)
            .finish_non_exhaustive()
    }
}

/// The messages sent so far, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Outbox(Mutex<Vec<OutboxMessage>>);

impl Outbox {
    /// "Sends" `code` to `to`.
    pub(crate) fn send_code(&self, to: &str, code: &str, purpose: &str, now: u64) {
        let message = OutboxMessage {
            to: to.to_owned(),
            subject: format!("Your {purpose} code"),
            body: format!("Your one-time code is {code}. It expires in a few minutes; never share it."),
            code: code.to_owned(),
            sent_at: now,
        };
        let mut messages = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if messages.len() >= CAPACITY {
            messages.remove(0);
        }
        messages.push(message);
        tracing::debug!(to, "one-time code placed in the outbox");
    }

    /// Every message, oldest first; only those to `to` (case-insensitive) when given.
    pub(crate) fn messages(&self, to: Option<&str>) -> Vec<OutboxMessage> {
        let messages = self.0.lock().unwrap_or_else(|e| e.into_inner());
        messages.iter().filter(|m| to.is_none_or(|to| m.to.eq_ignore_ascii_case(to))).cloned().collect()
    }
}

/// A fresh 6-digit code from the CSPRNG.
pub(crate) fn six_digit_code() -> String {
    // Rejection sampling keeps the digits uniform: 4_294_000_000 is a multiple of 10^6.
    loop {
        let mut bytes = [0u8; 4];
        rand::fill(&mut bytes);
        let n = u32::from_le_bytes(bytes);
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// `alice@example.com` → `a***@example.com` (the generic OTP endpoint's `destination`).
pub(crate) fn mask_local_part(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", first_char(local)),
        None => format!("{}***", first_char(email)),
    }
}

/// `alice@example.com` → `a***@e***` (Cognito's `CODE_DELIVERY_DESTINATION`).
pub(crate) fn mask_both_parts(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}***@{}***", first_char(local), first_char(domain)),
        None => format!("{}***", first_char(email)),
    }
}

fn first_char(text: &str) -> String {
    text.chars().next().map(String::from).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..100 {
            let code = six_digit_code();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn masking() {
        assert_eq!(mask_local_part("alice@example.com"), "a***@example.com");
        assert_eq!(mask_both_parts("alice@example.com"), "a***@e***");
        assert_eq!(mask_local_part("nobody"), "n***");
    }

    #[test]
    fn outbox_filters_and_redacts() {
        let outbox = Outbox::default();
        outbox.send_code("a@example.com", "123456", "sign-in", 1);
        outbox.send_code("b@example.com", "654321", "sign-in", 2);
        assert_eq!(outbox.messages(None).len(), 2);
        let for_a = outbox.messages(Some("A@example.com"));
        assert_eq!(for_a.len(), 1);
        assert!(for_a[0].body.contains("123456"));
        assert!(!format!("{for_a:?}").contains("123456"));
    }
}
