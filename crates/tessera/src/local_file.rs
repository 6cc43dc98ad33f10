//! Reading the local files tessera trusts — the configuration, `file:` secrets, token files — as if
//! they could be hostile: regular files only (a FIFO or a device is refused before a byte is read,
//! so nothing hangs and nothing fills memory), a size cap per kind, and, because these files decide
//! where credentials go or hold them, their mode and owner checked the way ssh checks its own.
//!
//! Errors name the file and what is wrong with it, never its content. Blocking: call it on a
//! blocking thread from async code.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// What a file is for: its size cap and how strictly its mode is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// `config.toml`: who may change it may repoint `issuer` and collect a password.
    Config,
    /// A `file:` secret reference.
    Secret,
    /// `tokens.json` (its 0600 rule is the store's own; here: kind of file, size, owner).
    Tokens,
    /// `spent-refresh-tokens.json`: fingerprints, no secret (kind of file, size, owner).
    SpentLedger,
    /// A provider's `ca_file`: who may change it may add a root and read every request.
    CaBundle,
    /// A provider's `tls_client_certificate` (its key is a [`FileKind::Secret`]).
    ClientCertificate,
}

impl FileKind {
    /// The largest file of this kind that is read (documented in docs/configuration.md and
    /// docs/token-stores.md).
    pub(crate) fn max_bytes(self) -> u64 {
        match self {
            FileKind::Config => 1 << 20,
            FileKind::Secret => 64 << 10,
            FileKind::Tokens => 16 << 20,
            FileKind::SpentLedger => 1 << 20,
            FileKind::CaBundle => 4 << 20,
            FileKind::ClientCertificate => 1 << 20,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            FileKind::Config => "configuration file",
            FileKind::Secret => "secret file",
            FileKind::Tokens => "token file",
            FileKind::SpentLedger => "spent-token ledger",
            FileKind::CaBundle => "CA bundle",
            FileKind::ClientCertificate => "TLS client certificate",
        }
    }
}

/// Why a local file was not read: the problem only (the caller names the file).
#[derive(Debug)]
pub(crate) struct Refused {
    /// No such file (callers may treat it as "nothing stored").
    pub not_found: bool,
    /// What is wrong, for people; never the file's content.
    pub problem: String,
}

impl Refused {
    fn io(error: &io::Error) -> Self {
        Refused {
            not_found: error.kind() == io::ErrorKind::NotFound,
            problem: format!("cannot be read: {}", error.kind()),
        }
    }

    fn new(problem: String) -> Self {
        Refused { not_found: false, problem }
    }
}

/// Reads `path` (following symlinks to a regular file) after the checks above.
pub(crate) fn read(path: &Path, kind: FileKind) -> Result<Vec<u8>, Refused> {
    // O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever; a regular file
    // ignores the flag.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| Refused::io(&e))?;
    let metadata = file.metadata().map_err(|e| Refused::io(&e))?;
    check(&metadata, kind)?;
    let max = kind.max_bytes();
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0).min(1 << 16));
    // The size may change between the check and the read: never read more than the cap.
    (&file as &File).take(max + 1).read_to_end(&mut bytes).map_err(|e| Refused::io(&e))?;
    if bytes.len() as u64 > max {
        return Err(too_large(kind, bytes.len() as u64));
    }
    Ok(bytes)
}

/// The kind of file, its size, its owner, and (for configuration and secrets) its mode.
fn check(metadata: &Metadata, kind: FileKind) -> Result<(), Refused> {
    if !metadata.is_file() {
        return Err(Refused::new(format!(
            "is not a regular file (a directory, FIFO, socket or device): a {} must be a plain file",
            kind.describe()
        )));
    }
    if metadata.len() > kind.max_bytes() {
        return Err(too_large(kind, metadata.len()));
    }
    let me = rustix::process::geteuid().as_raw();
    let owner = metadata.uid();
    if owner != me && owner != 0 {
        return Err(Refused::new(format!(
            "is owned by uid {owner}, not by you (uid {me}) or root: another user could change it; \
             copy it to a file of your own"
        )));
    }
    let mode = metadata.mode() & 0o7777;
    if matches!(kind, FileKind::Config | FileKind::Secret | FileKind::CaBundle | FileKind::ClientCertificate)
        && mode & 0o022 != 0
    {
        return Err(Refused::new(format!(
            "is writable by group or others (mode {mode:04o}): another user could change it; run chmod go-w on it"
        )));
    }
    Ok(())
}

fn too_large(kind: FileKind, len: u64) -> Refused {
    Refused::new(format!("is {len} bytes, more than the {} bytes a {} may have", kind.max_bytes(), kind.describe()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn regular_private_files_are_read_and_everything_else_is_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("config.toml");
        std::fs::write(&good, "x = 1\n").unwrap();
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read(&good, FileKind::Config).unwrap(), b"x = 1\n");

        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o666)).unwrap();
        let loose = read(&good, FileKind::Config).unwrap_err();
        assert!(loose.problem.contains("writable by group or others (mode 0666)"), "{loose:?}");
        assert!(read(&good, FileKind::Tokens).is_ok(), "token files have the store's own 0600 rule");

        for device in ["/dev/zero", "/dev/null"] {
            let refused = read(Path::new(device), FileKind::Config).unwrap_err();
            assert!(refused.problem.contains("not a regular file"), "{refused:?}");
        }
        let missing = read(&dir.path().join("nope"), FileKind::Secret).unwrap_err();
        assert!(missing.not_found);

        // A sparse 200 MB file: refused from its size, not read.
        let big = dir.path().join("big");
        File::create(&big).unwrap().set_len(200 << 20).unwrap();
        let refused = read(&big, FileKind::Tokens).unwrap_err();
        assert!(refused.problem.contains("209715200 bytes, more than the 16777216"), "{refused:?}");
    }
}
