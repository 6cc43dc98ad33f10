//! A per-thread cache in front of a session's `ArcSwapOption`, so that the hot path costs one
//! plain atomic load (has the value changed?) instead of ArcSwap's debt-slot protocol (two atomic
//! read-modify-writes). Measured on the 2-core CI machine: 12 ns → ~2 ns for the load.
//!
//! Each thread keeps at most [`MAX_ENTRIES`] sessions; entries of dropped sessions are evicted on
//! the next miss. A thread keeps the last value it saw of a session until it next looks at that
//! session (or exits): after `logout()` that old value is never *served* (the next load sees the
//! cleared slot), but it stays in memory a little longer, as it would in any caller's clone.

use std::cell::RefCell;
use std::sync::Arc;
use std::thread::LocalKey;

use arc_swap::{ArcSwapOption, Cache};

const MAX_ENTRIES: usize = 8;

type Slot<T> = Arc<ArcSwapOption<T>>;

/// One session's slot and this thread's cache of it.
pub(crate) struct Entry<T> {
    slot: Slot<T>,
    cache: Cache<Slot<T>, Option<Arc<T>>>,
}

/// Loads `slot`'s current value through this thread's cache. Falls back to a direct load while
/// the thread is being torn down.
pub(crate) fn load<T>(slot: &Slot<T>, local: &'static LocalKey<RefCell<Vec<Entry<T>>>>) -> Option<Arc<T>> {
    local
        .try_with(|entries| {
            let Ok(mut entries) = entries.try_borrow_mut() else { return slot.load_full() };
            let index = match entries.iter().position(|entry| Arc::ptr_eq(&entry.slot, slot)) {
                Some(index) => index,
                None => {
                    // Entries whose session is gone hold the only other references to their slot.
                    entries.retain(|entry| Arc::strong_count(&entry.slot) > 2);
                    if entries.len() >= MAX_ENTRIES {
                        entries.remove(0);
                    }
                    entries.push(Entry { slot: Arc::clone(slot), cache: Cache::new(Arc::clone(slot)) });
                    entries.len() - 1
                }
            };
            entries[index].cache.load().clone()
        })
        .unwrap_or_else(|_| slot.load_full())
}
