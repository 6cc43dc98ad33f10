//! Benchmarks only: see benches/peers.rs and benches/README.md.
