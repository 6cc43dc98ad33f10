//! What tessera logs, captured for the tests that read it. The capture is the process's global
//! subscriber, so each such test has a test binary of its own: a scoped subscriber misses events
//! whose interest another test's thread cached first (tracing caches it per process).

use std::io::Write;
use std::sync::{Arc, Mutex};

/// The log lines written so far, as the `fmt` subscriber formats them (no colours).
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Installs the global subscriber at `level`, writing here. Once per process.
    pub fn install(level: tracing::Level) -> Self {
        let capture = LogCapture::default();
        let writer = capture.clone();
        tracing_subscriber::fmt().with_max_level(level).with_ansi(false).with_writer(move || writer.clone()).init();
        capture
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
