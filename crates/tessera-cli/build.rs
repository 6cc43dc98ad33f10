//! How the `tessera` program is linked on Linux with glibc: made for a fast start.
//!
//! Scripts and kubectl start `tessera token` for every request, and on a stored token the process
//! start is most of its cost (benches/README.md, "Size round 2" and "Start-up round 3"). Only the
//! `tessera` program (and its own unit-test harness): the library crates, the integration tests'
//! binaries, `tessera-idp` and the Python extension are unaffected. See docs/DECISIONS.md for each
//! choice.
//!
//! - `-no-pie`: a position-independent executable makes the dynamic loader apply ~8,000
//!   relocations at every start (Rust's vtables and string tables in `.data.rel.ro`), which copies
//!   ~40 pages: ~0.1 ms of a ~1.2 ms run. Linked at a fixed address, those pages are read straight
//!   from the file. The cost: the executable's own code is not at a random address (the heap, the
//!   stack and the shared libraries still are) — as with Go programs (kubectl, gh), which are
//!   linked this way by default.
//! - The unwinder linked in statically (GCC's `libgcc_eh.a`) instead of loading `libgcc_s.so.1`:
//!   std asks for `-lgcc_s` (its `_Unwind_*` calls: backtraces, and unwinding in builds that
//!   unwind), and one more shared library to find, map and relocate at every start — whose
//!   constructor also runs `cpuid`, which traps to the hypervisor in a VM — cost ~0.1 ms. A
//!   directory with a linker script named `libgcc_s.so` that names `libgcc_eh.a` is searched first
//!   (`-L`), so std's `-lgcc_s` takes the static archive. Where the C compiler has no `libgcc_eh.a`
//!   (not GCC's toolchain), and in cross builds, nothing changes.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" || env != "gnu" {
        return;
    }
    println!("cargo:rustc-link-arg-bin=tessera=-no-pie");
    // The host's C compiler answers for the host: a cross build keeps `libgcc_s`.
    let native = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
    if let Some(archive) = gcc_file("libgcc_eh.a").filter(|_| native) {
        let dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("static-unwinder");
        std::fs::create_dir_all(&dir).expect("create OUT_DIR/static-unwinder");
        let script = format!(
            "/* std's -lgcc_s, answered by the static unwinder (build.rs) */\nINPUT(\"{}\")\n",
            archive.display()
        );
        std::fs::write(dir.join("libgcc_s.so"), script).expect("write OUT_DIR/static-unwinder/libgcc_s.so");
        // `-L` applies to every `-l` wherever it stands on the command line, and the C compiler
        // puts the ones it is given before its own directories (where the real libgcc_s.so is).
        println!("cargo:rustc-link-arg-bin=tessera=-L{}", dir.display());
        // A compiler upgrade that removes the archive writes the script again.
        println!("cargo:rerun-if-changed={}", archive.display());
        // For the strace test (tests/commands.rs): this build's `tessera` loads no libgcc_s.
        println!("cargo:rustc-env=TESSERA_STATIC_UNWINDER=1");
    }
}

/// The path of one of the C compiler's own files (`cc -print-file-name`), when it has it.
fn gcc_file(name: &str) -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let output = std::process::Command::new(cc).arg(format!("-print-file-name={name}")).output().ok()?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    // Without the file, the compiler prints the bare name back.
    (output.status.success() && path.is_absolute() && path.is_file()).then_some(path)
}
