//! The process entry point: what std's runtime start-up did that `tessera` needs, and no more.
//!
//! `tessera token` on a stored token is mostly process start (benches/README.md, "Start-up round
//! 3"), and std's own start-up (the `main` it generates) spent a sixth of what was left: it reads
//! `/proc/self/maps` through glibc's `pthread_getattr_np` to find the main thread's stack guard,
//! and maps an alternate signal stack with a guard page and installs SIGSEGV/SIGBUS handlers, so
//! that a stack overflow is reported as one. The crate is `#![no_main]`, and [`main`] below is the
//! C `main` glibc calls. It keeps the two parts of std's start-up that change what a program
//! does (see [`init`]); `std::env::args` still works (glibc hands the arguments to std's
//! initialiser). What is given up: a stack overflow on the main thread ends the process with a
//! plain SIGSEGV instead of std's "has overflowed its stack" message and SIGABRT, and the main
//! thread has no name in a panic message. docs/DECISIONS.md.
//!
//! It also defines the C `pow` ([`pow`]), so that the program needs no `libm.so`.
//!
//! This is the one module with `unsafe` code: `no_mangle` (these must be the only symbols `main`
//! and `pow`) and three calls into libc.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int};

/// The C `main` (see the module doc): [`init`], then the program; exits with its code.
#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    init();
    // A panic must not unwind into C (builds that unwind would abort there): it ends the program
    // with std's own code for it, 101, after the panic hook has printed the message.
    let code = std::panic::catch_unwind(crate::run_main).unwrap_or(101);
    // `process::exit`, not a return: it runs std's clean-up, which flushes stdout.
    std::process::exit(c_int::from(code))
}

/// The parts of std's start-up that change behaviour, as std does them (library/std/src/sys/pal/unix):
/// standard streams that are closed are opened on `/dev/null` (else the first file opened would
/// become fd 1, and a token printed on stdout would land in it), and SIGPIPE is ignored (a write
/// to a closed pipe fails with EPIPE, which `output::stdout` turns into a quiet exit 141, instead
/// of killing the process; std resets it for the programs `tessera exec` starts).
fn init() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // SAFETY: `fds` is a valid array of three `pollfd`; a timeout of 0 returns at once.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } >= 0 {
        for fd in fds.iter().filter(|fd| fd.revents & libc::POLLNVAL != 0) {
            // SAFETY: a NUL-terminated path; the lowest free descriptor is the closed one.
            let opened = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR, 0) };
            if opened != fd.fd {
                // As std: no safe way to go on with a standard stream that may be any file.
                std::process::abort();
            }
        }
    }
    // SAFETY: SIG_IGN installs no handler; no other thread exists yet.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// The C library's `pow`, the only function `tessera` took from `libm.so.6`: one more shared
/// library for the dynamic loader to find, map and relocate at every start (~0.2 ms of a
/// `tessera token`, benches/README.md "Start-up round 3") for a function the CLI never calls on
/// its paths — tokio's multi-thread scheduler, compiled in but not started by the CLI, averages its
/// statistics with `f64::powf`. Defined here (musl's algorithm, through the `libm` crate), the
/// linker finds no use for `-lm` and leaves libm out (`--as-needed`). The linker still exports it
/// (a library on its command line defines one): a shared library loaded later that called `pow`
/// would get this one, the same function within rounding (musl's, under 1 ulp).
#[unsafe(no_mangle)]
extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}
