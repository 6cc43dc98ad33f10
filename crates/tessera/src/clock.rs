//! Clocks. The core takes time as a parameter; this is where the runtime gets it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tessera_core::Timestamp;

/// A source of wall-clock time. Inject [`ManualClock`] in tests.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;

    /// The current time, possibly a few milliseconds behind (never ahead): what the hot path reads.
    /// Defaults to [`Clock::now`].
    fn now_coarse(&self) -> Timestamp {
        self.now()
    }
}

/// The system's wall clock. `now_coarse` reads `CLOCK_REALTIME_COARSE` on Linux: a few
/// nanoseconds instead of ~20, at the price of up to one scheduler tick of lag. Wall-clock (not
/// monotonic) on purpose: token expiry is wall-clock, and a suspended laptop must wake up knowing
/// its tokens expired.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        system_now()
    }

    #[cfg(target_os = "linux")]
    #[inline]
    fn now_coarse(&self) -> Timestamp {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        Timestamp::from_unix_millis(ts.tv_sec.saturating_mul(1000).saturating_add(ts.tv_nsec / 1_000_000))
    }
}

/// The current system time as a [`Timestamp`].
pub fn system_now() -> Timestamp {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(elapsed) => Timestamp::from_unix_millis(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)),
        Err(before) => Timestamp::from_unix_millis(-i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX)),
    }
}

/// The current time in milliseconds since the Unix epoch (a utility for bindings and scripts).
pub fn current_time_ms() -> i64 {
    system_now().as_unix_millis()
}

/// A clock that moves only when told to: deterministic tests of expiry and refresh.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// Starts at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(AtomicI64::new(start.as_unix_millis()))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    /// Sets the time.
    pub fn set(&self, to: Timestamp) {
        self.0.store(to.as_unix_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_clock_is_close_and_never_ahead() {
        let clock = SystemClock;
        let coarse = clock.now_coarse();
        let precise = clock.now();
        assert!(coarse <= precise, "coarse {coarse} ahead of {precise}");
        assert!(precise.duration_since(coarse) < Duration::from_millis(50));
    }

    #[test]
    fn manual_clock_moves_when_told() {
        let clock = ManualClock::new(Timestamp::from_unix_secs(5));
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), Timestamp::from_unix_millis(6500));
        clock.set(Timestamp::EPOCH);
        assert_eq!(clock.now_coarse(), Timestamp::EPOCH);
    }
}
