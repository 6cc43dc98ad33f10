//! `keyring:<service>/<account>` secret references: secrets kept in the operating system's keyring
//! instead of a file or an environment variable.
//!
//! This module owns the reference syntax and the few calls into the keyring; it never prints,
//! logs or formats a secret, and its errors never contain one (errors of the platform store that
//! carry secret bytes, such as a non-UTF-8 value, are reported by kind only).
//!
//! | platform | store | notes |
//! | --- | --- | --- |
//! | Linux, feature `keyring` | the kernel keyring (keyutils) | needs a session keyring: run inside `keyctl session -` (or a login session that has one); values live until reboot, see docs/keyring.md |
//! | other platforms, or without the feature | none | every `keyring:` reference fails with a configuration error that says to use `env:` or `file:` |
//!
//! Syntax: `keyring:<service>/<account>`. The service is everything before the first `/` and may
//! not contain `/` or `@`; the account is the rest and may contain `/` and `@` (e.g.
//! `keyring:tessera/alice@example.com`). Both are non-empty, have no leading or trailing
//! whitespace and no control characters, and together are at most [`MAX_REFERENCE_LEN`] bytes.
//! There is no escaping: names that need other characters are not representable, by design
//! (what you see in the configuration is exactly what is looked up).
//!
//! ```no_run
//! use tessera::keyring::KeyringEntry;
//! use tessera::Secret;
//! # fn main() -> Result<(), tessera::Error> {
//! let entry = KeyringEntry::parse("keyring:tessera/ci-client")?;
//! entry.set(&Secret::new("s3cret"))?;                 // what `tessera secret set tessera/ci-client` does
//! assert_eq!(entry.get()?.unwrap().expose_secret(), "s3cret");
//! assert!(entry.delete()?);                           // true: there was one
//! # Ok(()) }
//! ```
//!
//! The calls are synchronous system calls that do not wait on anything (no D-Bus, no network), so
//! they are made directly from async code, like reading a `file:` reference.

use tessera_core::{Error, Secret};

/// The prefix of a keyring reference in the configuration.
pub const PREFIX: &str = "keyring:";

/// Longest `<service>/<account>` accepted (the kernel limits a key description to 4095 bytes).
pub const MAX_REFERENCE_LEN: usize = 1024;

/// True when this build can read and write the OS keyring (feature `keyring` on Linux).
pub const fn is_supported() -> bool {
    cfg!(all(feature = "keyring", target_os = "linux"))
}

/// One keyring entry, named by service and account. Holds no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyringEntry {
    service: String,
    account: String,
}

impl KeyringEntry {
    /// The entry `service`/`account`, validated (see the module documentation for the rules).
    pub fn new(service: &str, account: &str) -> Result<KeyringEntry, Error> {
        // A malformed reference is not repeated: it may be a secret pasted in the wrong place.
        let invalid = |problem: String| Error::configuration(format!("keyring reference: {problem}"));
        for (what, value) in [("service", service), ("account", account)] {
            if value.is_empty() {
                return Err(invalid(format!(
                    "the {what} is empty (expected keyring:<service>/<account>, e.g. keyring:tessera/ci-client)"
                )));
            }
            if value.trim() != value {
                return Err(invalid(format!("the {what} has leading or trailing whitespace")));
            }
            if value.chars().any(char::is_control) {
                return Err(invalid(format!("the {what} contains a control character")));
            }
        }
        if service.contains(['/', '@']) {
            return Err(invalid("the service may not contain '/' or '@'".into()));
        }
        if service.len() + 1 + account.len() > MAX_REFERENCE_LEN {
            return Err(invalid(format!("longer than {MAX_REFERENCE_LEN} bytes")));
        }
        Ok(KeyringEntry { service: service.to_owned(), account: account.to_owned() })
    }

    /// Parses `keyring:<service>/<account>`; the `keyring:` prefix is optional here (the CLI's
    /// `tessera secret set <service>/<account>` takes it without).
    pub fn parse(reference: &str) -> Result<KeyringEntry, Error> {
        let path = reference.strip_prefix(PREFIX).unwrap_or(reference);
        match path.split_once('/') {
            Some((service, account)) => KeyringEntry::new(service, account),
            None => Err(Error::configuration(
                "keyring reference: expected keyring:<service>/<account>, e.g. keyring:tessera/ci-client",
            )),
        }
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The account name.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// `keyring:<service>/<account>`: what to write in the configuration.
    pub fn reference(&self) -> String {
        format!("{PREFIX}{}/{}", self.service, self.account)
    }

    /// The stored secret; `Ok(None)` when there is no such entry.
    pub fn get(&self) -> Result<Option<Secret>, Error> {
        platform::get(self)
    }

    /// Stores `secret` (creating or replacing the entry). An empty secret is refused.
    pub fn set(&self, secret: &Secret) -> Result<(), Error> {
        if secret.is_empty() {
            return Err(Error::configuration(format!("{}: refusing to store an empty secret", self.reference())));
        }
        platform::set(self, secret)
    }

    /// Deletes the entry; `Ok(false)` when there was none.
    pub fn delete(&self) -> Result<bool, Error> {
        platform::delete(self)
    }

    /// Resolves the reference for a configuration field: the secret, or an error saying what to do
    /// (no entry: how to add one; no keyring: where to run; not compiled in: use `env:`/`file:`).
    pub fn resolve(&self) -> Result<Secret, Error> {
        match self.get()? {
            Some(secret) if !secret.is_empty() => Ok(secret),
            Some(_) => Err(Error::configuration(format!("{} is empty", self.reference()))),
            None => Err(Error::configuration(format!(
                "no secret stored at {} in this keyring (add it with `tessera secret set {}/{}`)",
                self.reference(),
                self.service,
                self.account
            ))),
        }
    }
}

impl std::fmt::Display for KeyringEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reference())
    }
}

#[cfg(all(feature = "keyring", target_os = "linux"))]
mod platform {
    //! The kernel keyring through keyutils. The store is built per call (it is two small structs)
    //! rather than installed as keyring-core's process-wide default, so that an application's own
    //! default store is left alone.

    use keyring_core::api::CredentialStoreApi;
    use keyring_core::error::Error as KeyringError;
    use tessera_core::{Error, Secret};

    use super::KeyringEntry;

    const WHAT_TO_DO: &str = "run tessera inside a session keyring (`keyctl session - tessera ...`, from the \
                              Debian/Ubuntu package keyutils), or use an env: or file: reference instead";

    fn entry(reference: &KeyringEntry) -> Result<keyring_core::Entry, Error> {
        // Defaults match the keyring-rs ecosystem (`keyring:<account>@<service>` descriptions), so
        // other keyring-rs tools see the same entries; `service_no_divider` (no '@' in the service,
        // which `KeyringEntry::new` also checks) makes the description unambiguous.
        let config = std::collections::HashMap::from([("service_no_divider", "true")]);
        let store = linux_keyutils_keyring_store::Store::new_with_configuration(&config)
            .map_err(|error| failure(reference, "open", error))?;
        store.build(reference.service(), reference.account(), None).map_err(|error| failure(reference, "open", error))
    }

    /// A keyring error as ours. Only the kind and platform error codes are shown: some variants
    /// (`BadEncoding`, `BadDataFormat`) carry the stored bytes, which must not reach a message.
    fn failure(reference: &KeyringEntry, operation: &str, error: KeyringError) -> Error {
        let reference = reference.reference();
        let message = match error {
            KeyringError::NoStorageAccess(cause) => {
                format!("cannot {operation} {reference}: the kernel keyring is not accessible ({cause}); {WHAT_TO_DO}")
            }
            KeyringError::PlatformFailure(cause) => {
                format!("cannot {operation} {reference}: kernel keyring failure ({cause}); {WHAT_TO_DO}")
            }
            KeyringError::BadEncoding(_) | KeyringError::BadDataFormat(..) => {
                format!("{reference} holds a value that is not UTF-8 text")
            }
            KeyringError::TooLong(what, limit) => {
                format!("cannot {operation} {reference}: {what} is longer than the keyring's limit of {limit}")
            }
            KeyringError::Invalid(what, why) => format!("cannot {operation} {reference}: {what} {why}"),
            KeyringError::Ambiguous(entries) => {
                format!("cannot {operation} {reference}: {} entries match", entries.len())
            }
            KeyringError::NoEntry => format!("no secret stored at {reference}"),
            _ => format!("cannot {operation} {reference}: the keyring refused the operation"),
        };
        Error::configuration(message)
    }

    pub(super) fn get(reference: &KeyringEntry) -> Result<Option<Secret>, Error> {
        match entry(reference)?.get_password() {
            Ok(password) => Ok(Some(Secret::new(password))),
            Err(KeyringError::NoEntry) => Ok(None),
            Err(error) => Err(failure(reference, "read", error)),
        }
    }

    pub(super) fn set(reference: &KeyringEntry, secret: &Secret) -> Result<(), Error> {
        entry(reference)?.set_password(secret.expose_secret()).map_err(|error| failure(reference, "write", error))
    }

    pub(super) fn delete(reference: &KeyringEntry) -> Result<bool, Error> {
        match entry(reference)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(KeyringError::NoEntry) => Ok(false),
            Err(error) => Err(failure(reference, "delete", error)),
        }
    }
}

#[cfg(not(all(feature = "keyring", target_os = "linux")))]
mod platform {
    //! No keyring in this build: every operation says so, and what to use instead.

    use tessera_core::{Error, Secret};

    use super::KeyringEntry;

    fn unsupported(reference: &KeyringEntry) -> Error {
        let why = if cfg!(target_os = "linux") {
            "this build of tessera has no keyring support (cargo feature \"keyring\")"
        } else {
            "this build of tessera has no keyring store for this operating system"
        };
        Error::configuration(format!("{}: {why}; use an env: or file: reference instead", reference.reference()))
    }

    pub(super) fn get(reference: &KeyringEntry) -> Result<Option<Secret>, Error> {
        Err(unsupported(reference))
    }

    pub(super) fn set(reference: &KeyringEntry, _secret: &Secret) -> Result<(), Error> {
        Err(unsupported(reference))
    }

    pub(super) fn delete(reference: &KeyringEntry) -> Result<bool, Error> {
        Err(unsupported(reference))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_print_back() {
        let entry = KeyringEntry::parse("keyring:tessera/alice@example.com/work").unwrap();
        assert_eq!((entry.service(), entry.account()), ("tessera", "alice@example.com/work"));
        assert_eq!(entry.reference(), "keyring:tessera/alice@example.com/work");
        assert_eq!(KeyringEntry::parse("tessera/ci").unwrap().reference(), "keyring:tessera/ci");
    }

    #[test]
    fn bad_references_are_configuration_errors_naming_the_rule() {
        let long = format!("keyring:s/{}", "a".repeat(MAX_REFERENCE_LEN));
        let cases = [
            ("keyring:tessera", "expected keyring:<service>/<account>"),
            ("keyring:/alice", "the service is empty"),
            ("keyring:tessera/", "the account is empty"),
            ("keyring: tessera/alice", "leading or trailing whitespace"),
            ("keyring:tes\tsera/alice", "control character"),
            ("keyring:tes@sera/alice", "may not contain '/' or '@'"),
            (long.as_str(), "longer than 1024 bytes"),
        ];
        for (reference, expected) in cases {
            let error = KeyringEntry::parse(reference).unwrap_err();
            assert!(matches!(error, Error::Configuration { .. }), "{error:?}");
            assert!(error.to_string().contains(expected), "{reference}: {error}");
        }
    }

    #[test]
    fn empty_secrets_are_not_stored() {
        let error = KeyringEntry::new("tessera", "x").unwrap().set(&Secret::new("")).unwrap_err();
        assert!(error.to_string().contains("refusing to store an empty secret"), "{error}");
    }

    #[cfg(not(all(feature = "keyring", target_os = "linux")))]
    #[test]
    fn without_the_feature_every_operation_says_what_to_use_instead() {
        let entry = KeyringEntry::new("tessera", "x").unwrap();
        assert!(!is_supported());
        for error in [entry.get().unwrap_err(), entry.delete().unwrap_err(), entry.resolve().unwrap_err()] {
            assert!(error.to_string().contains("use an env: or file: reference instead"), "{error}");
        }
    }
}
