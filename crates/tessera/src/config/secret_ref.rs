//! Secret references in the configuration: `env:NAME`, `file:PATH`, `keyring:<service>/<account>`
//! or a literal. Parsed when the file is loaded, resolved only when a token must be requested;
//! errors name the variable or path, never the value.

use std::path::{Path, PathBuf};

use tessera_core::{Error, Secret};

pub(super) fn is_reference(value: &str) -> bool {
    value.starts_with("env:") || value.starts_with("file:") || value.starts_with("keyring:")
}

/// True when `name` may follow `env:` (letters, digits and `_`). Anything else is a malformed
/// reference, whose text is never repeated (it may be a secret typed in the wrong place).
pub(crate) fn is_env_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// True when `value` is a reference that parses (`env:` with a valid name, `file:` with a path,
/// `keyring:<service>/<account>`): such a reference may be shown; a malformed one may be a secret
/// typed in the wrong place, and is treated like a literal.
pub(crate) fn is_well_formed_reference(value: &str) -> bool {
    is_reference(value) && parse_reference(value).is_ok()
}

pub(super) enum Reference<'a> {
    Env(&'a str),
    File(&'a str),
    Keyring(crate::keyring::KeyringEntry),
    Literal(&'a str),
}

pub(super) fn parse_reference(value: &str) -> Result<Reference<'_>, String> {
    if let Some(name) = value.strip_prefix("env:") {
        if !is_env_name(name) {
            // The name is not repeated: a mistyped secret (`env: hunter2`) must not reach a log.
            return Err("env:NAME needs a valid environment variable name (letters, digits and _)".into());
        }
        Ok(Reference::Env(name))
    } else if value.starts_with(crate::keyring::PREFIX) {
        // Checked when the file is loaded; the keyring itself is read only when the secret is needed.
        crate::keyring::KeyringEntry::parse(value).map(Reference::Keyring).map_err(|e| configuration_message(&e))
    } else if let Some(path) = value.strip_prefix("file:") {
        if path.is_empty() {
            return Err("file: needs a path".into());
        }
        Ok(Reference::File(path))
    } else {
        Ok(Reference::Literal(value))
    }
}

/// The message of a configuration error without the "configuration error: " of its `Display`,
/// for nesting in another configuration error that names the place.
fn configuration_message(error: &Error) -> String {
    match error {
        Error::Configuration { message } => message.clone(),
        other => other.to_string(),
    }
}

/// Resolves `env:NAME`, `file:PATH` (trailing newline trimmed), `keyring:<service>/<account>` (see
/// [`crate::keyring`]) or a literal. Errors never contain the value.
pub fn resolve_reference(value: &str) -> Result<Secret, String> {
    match parse_reference(value)? {
        Reference::Env(name) => match std::env::var(name) {
            Ok(value) if !value.is_empty() => Ok(Secret::new(value)),
            Ok(_) => Err(format!("environment variable {name} is empty")),
            Err(_) => Err(format!("environment variable {name} is not set")),
        },
        Reference::File(path) => {
            let path = expand_home(path);
            let bytes = crate::local_file::read(&path, crate::local_file::FileKind::Secret)
                .map_err(|refused| format!("{} {}", path.display(), refused.problem))?;
            let text = String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
            let secret = Secret::new(text.trim_end_matches(['\n', '\r']));
            if secret.is_empty() { Err(format!("{} is empty", path.display())) } else { Ok(secret) }
        }
        Reference::Keyring(entry) => entry.resolve().map_err(|e| configuration_message(&e)),
        Reference::Literal(value) => Ok(Secret::new(value)),
    }
}

/// `path` with a leading `~` (alone, or followed by `/`) replaced by `$HOME`, as a shell does for
/// `~/x`; any other path (`~user/x` included) is returned as it is, and so is every path when
/// `HOME` is unset or empty. What the configuration does for a store `dir`, a `ca_file` and
/// `file:` references, and what the Python constructors do (with `os.path.expanduser`).
/// [`crate::store::FileStore::new`] takes its directory literally, as `std::fs` does.
pub fn expand_home(path: impl AsRef<Path>) -> PathBuf {
    let path = path.as_ref();
    let home = std::env::var_os("HOME").filter(|home| !home.is_empty());
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) if rest.as_os_str().is_empty() => PathBuf::from(home),
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}
