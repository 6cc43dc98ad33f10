//! Reading the local files tessera trusts — the configuration, `file:` secrets, token files — as if
//! they could be hostile: regular files only (a FIFO or a device is refused before a byte is read,
//! so nothing hangs and nothing fills memory), a size cap per kind, and, because these files decide
//! where credentials go or hold them, their mode and owner checked the way ssh checks its own.
//!
//! Errors name the file and what is wrong with it, never its content. Blocking: call it on a
//! blocking thread from async code.
//!
//! On Windows (compiled by CI's `cargo check`, never run: see docs/DECISIONS.md, "Windows forms of
//! the Unix file rules") the kind of file and the size caps are checked the same way, with the
//! handle's type instead of `O_NONBLOCK`; the owner and mode checks have no equivalent without
//! reading ACLs (which needs `unsafe` Win32 calls the workspace forbids): they are not made, and
//! the files rely on the per-user profile directory's default ACL (private to the user). This
//! module also holds the small helpers that give the file store and the spent-token ledger their
//! Windows forms ([`sync_dir`], `refuse_reparse_point`).

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
#[cfg(unix)]
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
#[cfg(windows)]
use std::os::windows::fs::OpenOptionsExt;
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
    let mut options = OpenOptions::new();
    options.read(true);
    // O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever; a regular file
    // ignores the flag.
    #[cfg(unix)]
    options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    // Windows: opening a named pipe or a device never waits (a busy pipe fails at once); what
    // could wait is reading it, and `check_handle` refuses anything but a disk file before that.
    let file = options.open(path).map_err(|e| Refused::io(&e))?;
    #[cfg(windows)]
    check_handle(&file, kind)?;
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
        return Err(not_regular(kind));
    }
    if metadata.len() > kind.max_bytes() {
        return Err(too_large(kind, metadata.len()));
    }
    check_owner_and_mode(metadata, kind)
}

fn not_regular(kind: FileKind) -> Refused {
    Refused::new(format!(
        "is not a regular file (a directory, FIFO, socket or device): a {} must be a plain file",
        kind.describe()
    ))
}

/// The owner (you or root) and, for the files that decide where credentials go, no write access
/// for group or others.
#[cfg(unix)]
fn check_owner_and_mode(metadata: &Metadata, kind: FileKind) -> Result<(), Refused> {
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

/// Windows: no owner or mode check. The owner is a SID and access is an ACL; reading either needs
/// Win32 calls (`GetSecurityInfo`) that std does not wrap and the workspace's `unsafe_code =
/// "forbid"` rules out. The mode bits have no meaning there (std exposes only the read-only
/// attribute). Files under the user's profile (`%APPDATA%`, where the CLI keeps them) are private
/// to that user by the profile's default ACL; a file placed elsewhere keeps whatever ACL it has.
/// Documented in docs/configuration.md and docs/DECISIONS.md rather than pretended.
#[cfg(not(unix))]
fn check_owner_and_mode(_metadata: &Metadata, _kind: FileKind) -> Result<(), Refused> {
    Ok(())
}

/// Windows: only a disk file is read. `GetFileType` tells a named pipe (`\\.\pipe\…`) or a
/// character device (`CON`, `NUL`, a serial port) apart from a file before a byte is read — what
/// `O_NONBLOCK` and the regular-file check do on Unix.
#[cfg(windows)]
fn check_handle(file: &File, kind: FileKind) -> Result<(), Refused> {
    match winapi_util::file::typ(file) {
        Ok(handle_type) if handle_type.is_disk() => Ok(()),
        Ok(_) => Err(not_regular(kind)),
        Err(e) => Err(Refused::io(&e)),
    }
}

/// Moves a written temporary file over `target`, atomically: readers see the old file or the new
/// one, never a part. Unix: `rename(2)` (tempfile's `persist`).
#[cfg(unix)]
pub(crate) fn replace(temp: tempfile::NamedTempFile, target: &Path) -> io::Result<()> {
    temp.persist(target).map(drop).map_err(|e| e.error)
}

/// Windows: std's rename, which (Rust 1.85 and later) asks for POSIX semantics
/// (`FileRenameInfoEx`), so it replaces a file that other processes hold open with delete sharing
/// — std's `File::open` shares delete, so a `tessera token` reading the store does not make a
/// save fail. tempfile's `persist` uses `MoveFileEx`, which refuses while anyone holds the file
/// open: a save after a refresh-token rotation would then lose the new token.
#[cfg(windows)]
pub(crate) fn replace(temp: tempfile::NamedTempFile, target: &Path) -> io::Result<()> {
    let temp = temp.into_temp_path();
    std::fs::rename(&temp, target)?;
    // Renamed away: nothing left for the temporary path's clean-up to delete.
    temp.keep().map(drop).map_err(|e| e.error)
}

/// A directory (and its missing parents) of mode 0700, for the file store and the spent-token
/// ledger. Windows: created with the ACL it inherits from its parent (under the user's profile:
/// private to the user).
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Opens `path`, creating it (0600) if needed, as a lock file to `flock`: the file store's write
/// lock and per-key refresh locks, and the spent-token ledger's lock. Never through a symlink (a
/// dangling link must not create its target; on Windows the link or junction itself is opened,
/// then refused) and never waiting on a FIFO put in its place: anything but a regular file is
/// refused.
pub(crate) fn open_lock_file(path: &Path) -> io::Result<File> {
    let not_regular = || io::Error::new(io::ErrorKind::InvalidInput, "is not a regular file");
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    // O_NONBLOCK: opening a FIFO for writing would otherwise wait for a reader; with it, the open
    // fails at once (ENXIO) when there is none. flock is unaffected by the flag.
    #[cfg(unix)]
    options.mode(0o600).custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32);
    #[cfg(windows)]
    options.custom_flags(OPEN_REPARSE_POINT);
    let file = options.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) {
            return not_regular();
        }
        e
    })?;
    #[cfg(windows)]
    refuse_reparse_point(&file)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

/// Makes a rename in `dir` durable: on Unix, an fsync of the directory. Windows has no directory
/// fsync (a directory cannot be opened with std, and `MoveFileEx` without `MOVEFILE_WRITE_THROUGH`
/// returns before its metadata is flushed): nothing is done, so a power cut right after a save may
/// leave the previous file in place — the previous whole file, never a torn one.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}

/// See the Unix form above: nothing to do on Windows.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// `FILE_FLAG_OPEN_REPARSE_POINT`: open a symbolic link or junction itself, not its target (the
/// Windows form of `O_NOFOLLOW`; value from the Win32 headers, `winbase.h`).
#[cfg(windows)]
const OPEN_REPARSE_POINT: u32 = 0x0020_0000;

/// Windows: refuses a file opened with [`OPEN_REPARSE_POINT`] that is a symbolic link or a
/// junction, as `O_NOFOLLOW` refuses a symlink on Unix (there with `ELOOP`, before anything is
/// opened; here right after, having touched only the link: its target is never created or written).
#[cfg(windows)]
fn refuse_reparse_point(file: &File) -> io::Result<()> {
    if file.metadata()?.file_type().is_symlink() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a symbolic link or junction, which is never followed",
        ));
    }
    Ok(())
}

fn too_large(kind: FileKind, len: u64) -> Refused {
    Refused::new(format!("is {len} bytes, more than the {} bytes a {} may have", kind.max_bytes(), kind.describe()))
}

#[cfg(all(test, unix))]
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
