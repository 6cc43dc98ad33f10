//! Links `tessera` as a position-dependent executable on Linux (`-no-pie`).
//!
//! Scripts and kubectl start `tessera token` for every request, and on a stored token the process
//! start is most of its cost. A position-independent executable makes the dynamic loader apply
//! ~8,000 relocations at every start (Rust's vtables and string tables in `.data.rel.ro`), which
//! copies ~40 pages: ~0.1 ms of a ~1.2 ms run (benches/README.md, "Size round 2"). Linked at a
//! fixed address, those pages are read straight from the file. The cost: the executable's own
//! code is not at a random address (the heap, the stack and the shared libraries still are) — as
//! with Go programs (kubectl, gh), which are linked this way by default. See docs/DECISIONS.md.
//! Only the `tessera` program: the library crates and the Python extension are unaffected.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bin=tessera=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
