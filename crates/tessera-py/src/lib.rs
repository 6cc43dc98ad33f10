//! Python bindings of tessera: the `tessera._tessera` extension module behind `import tessera`.
//!
//! Everything here is a thin layer over the Rust crate: one `Session` serves both the async
//! `Client` and the sync `SyncClient`; Python stores become a Rust `TokenStore`; errors map onto
//! the Python exception hierarchy of `tessera/_errors.py`. The Python sources live in
//! `python/tessera/`; maturin builds both into one abi3 wheel (see pyproject.toml).
//!
//! This crate holds the module and the two classes whose methods serve a cached header per
//! request (`client`), compiled at opt-level 3; every other class is in tessera-py-bindings,
//! compiled for size (see its crate documentation).

mod client;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _tessera(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    tessera_py_bindings::set_client_session(client::session_of);
    tessera_py_bindings::add_to(m)?;
    m.add_class::<client::PyClient>()?;
    m.add_class::<client::PySyncClient>()?;
    Ok(())
}
