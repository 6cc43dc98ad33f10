//! Per-thread copies of published values: what lets `Session::cached_header` serve a header from
//! memory that no other core writes, for any number of sessions per thread.
//!
//! It owns: [`Published`] (a value slot whose every write bumps the slot's generation and a
//! process-wide epoch), session [`Registration`]s (a process-unique id and a small recycled slot
//! number per live session), and each thread's [`Table`]: a vector indexed by slot number whose
//! entry holds the generation and epoch it was taken at, the serve-until instant, and the
//! thread's handle (made by the caller's `make`) on its copy of the value, which sits in a
//! [`Chunk`] of 32 neighbouring slots' values that only this thread's handles count.
//!
//! It must never: take a lock, allocate or write shared memory on a hit; serve a copy after its
//! slot was written (a hit requires the epoch it was checked at to be the current one, and a new
//! epoch sends the reader back to the slot's generation); serve one entry for another session (an
//! entry matches only its session's id, never reused); keep entries of dropped sessions without
//! bound (see [`Table`]'s sweep).
//!
//! A hit reads: the caller's [`Key`] (in the `Session` value itself), this thread's entry for
//! that slot (sessions built one after another have neighbouring slots: a round-robin over them
//! reads the table sequentially), and the epoch (one cache line written only when some slot
//! changes, so it stays in every core's cache); a clone of the handle writes its chunk's count.
//! Why not `arc_swap::Cache` (the previous design): it kept 8 sessions per thread (a ninth
//! thrashed: 97 ns) and handed out clones of the one shared `Arc`, whose count bounced between
//! cores (2 threads: 100 ns). Why chunks and not a copy per session: see [`Chunk`] and
//! docs/DECISIONS.md.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::LocalKey;

use arc_swap::{ArcSwapOption, Guard};
use tessera_core::Timestamp;

/// Bumped after every write of any [`Published`] slot. On its own cache line: readers on every
/// core keep it cached until a write.
#[repr(align(64))]
struct Epoch(AtomicU64);

static EPOCH: Epoch = Epoch(AtomicU64::new(1));

/// A value with the instant until which a per-thread copy may be served without asking again.
pub(crate) trait Servable: Send + Sync + 'static {
    /// Served before this instant (on the caller's clock), never at or after it.
    fn serve_until(&self) -> Timestamp;
}

/// A value slot read through per-thread copies: every write bumps its generation and the epoch.
pub(crate) struct Published<T> {
    value: ArcSwapOption<T>,
    generation: AtomicU64,
}

impl<T> Published<T> {
    /// A slot holding `value`.
    pub(crate) fn new(value: Option<Arc<T>>) -> Self {
        Published { value: ArcSwapOption::new(value), generation: AtomicU64::new(1) }
    }

    /// The current value (an `Arc` clone: a shared write; not for hot paths).
    pub(crate) fn load_full(&self) -> Option<Arc<T>> {
        self.value.load_full()
    }

    /// A short-lived guard on the current value.
    pub(crate) fn load(&self) -> Guard<Option<Arc<T>>> {
        self.value.load()
    }

    /// Replaces the value; per-thread copies of the old one are not served again.
    pub(crate) fn store(&self, value: Option<Arc<T>>) {
        self.value.store(value);
        self.changed();
    }

    /// Replaces the value if it is still `current`.
    pub(crate) fn compare_and_swap(&self, current: &Arc<T>, new: Option<Arc<T>>) {
        let previous = self.value.compare_and_swap(current, new);
        if previous.as_ref().is_some_and(|previous| Arc::ptr_eq(previous, current)) {
            self.changed();
        }
    }

    /// The generation first, then the epoch: a reader that sees the new epoch sees the new
    /// generation (release/acquire), so it cannot record the new epoch beside the old value.
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
        EPOCH.0.fetch_add(1, Ordering::Release);
    }
}

/// Which entry of a thread's [`Table`] belongs to a session: copied into every `Session` value so
/// that a hit does not read the session's shared state at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    /// Unique in the process, never reused (0 marks an empty entry).
    id: u64,
    /// Index in every thread's table; reused after the session is dropped (the id tells apart).
    slot: u32,
}

/// Live sessions' ids by slot, and the free slots (lowest first, to keep tables short).
struct Slots {
    ids: Vec<u64>,
    free: BinaryHeap<Reverse<u32>>,
    next_id: u64,
}

static SLOTS: Mutex<Slots> = Mutex::new(Slots { ids: Vec::new(), free: BinaryHeap::new(), next_id: 1 });
/// Slots released so far: a thread sweeps its table once enough were released (see [`Table`]).
static RELEASED: AtomicU64 = AtomicU64::new(0);

fn slots() -> MutexGuard<'static, Slots> {
    // Nothing panics under this lock; the table is consistent even if a holder did.
    SLOTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A session's key, held for the session's lifetime; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Registration {
    key: Key,
}

impl Registration {
    /// Takes the lowest free slot and a new id.
    pub(crate) fn new() -> Self {
        let mut slots = slots();
        let id = slots.next_id;
        slots.next_id += 1;
        let slot = match slots.free.pop() {
            Some(Reverse(slot)) => slot,
            None => {
                slots.ids.push(0);
                u32::try_from(slots.ids.len() - 1).unwrap_or(u32::MAX)
            }
        };
        if let Some(entry) = slots.ids.get_mut(slot as usize) {
            *entry = id;
        }
        Registration { key: Key { id, slot } }
    }

    /// The key to copy into session values.
    pub(crate) fn key(&self) -> Key {
        self.key
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut slots = slots();
        if let Some(entry) = slots.ids.get_mut(self.key.slot as usize) {
            *entry = 0;
            slots.free.push(Reverse(self.key.slot));
        }
        drop(slots);
        RELEASED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Neighbouring slots per [`Chunk`].
const CHUNK_LEN: usize = 32;

/// One thread's copies of the values of [`CHUNK_LEN`] neighbouring slots, each with a per-thread
/// extra (built by the thread's first use, e.g. a header value), shared by the handles the thread
/// made from it.
///
/// Why chunks: a handle counts its chunk, not its value, so cloning one writes one reference count
/// per 32 sessions, allocated one after another, instead of one per session at whatever place the
/// allocator put it. A thread cycling over 10,000 sessions touched 10,000 counts scattered over
/// the heap: a cache and TLB miss per call (3.4× a single session; benches/README.md). A chunk is
/// never changed: when one of its slots gets a new value, the thread makes a new chunk (a clone of
/// each of its other values) and its table's handles move to it; the old chunk lives on in the
/// handles that callers still hold.
pub(crate) struct Chunk<T, X> {
    slots: Box<[ChunkSlot<T, X>]>,
}

/// A value and its per-thread extra, or nothing (an empty or cleared slot).
type ChunkSlot<T, X> = Option<(Arc<T>, X)>;

impl<T, X: Default> Chunk<T, X> {
    /// A chunk of one value, for a handle made outside any thread's table.
    pub(crate) fn single(value: Arc<T>) -> Arc<Self> {
        Arc::new(Chunk { slots: Box::new([Some((value, X::default()))]) })
    }
}

impl<T, X> Chunk<T, X> {
    /// The value at `index` and its extra.
    ///
    /// # Panics
    /// If `index` holds no value: handles are made only for slots that hold one, with the index
    /// their chunk was made with, and a chunk never changes.
    pub(crate) fn get(&self, index: usize) -> (&Arc<T>, &X) {
        match self.slots.get(index) {
            Some(Some((value, extra))) => (value, extra),
            _ => panic!("a handle names a slot of its chunk that holds a value"),
        }
    }
}

/// One thread's copies, indexed by slot: an entry per slot, and a [`Chunk`] per [`CHUNK_LEN`] slots
/// holding the values that the entries' handles (`L`, made by the caller's `make` from a chunk
/// and an index) point to.
///
/// Memory: one entry per slot up to the highest slot this thread has looked at (slots are reused
/// lowest first, so that is about the peak number of live sessions), and a chunk per 32 of them
/// with a value. Entries of dropped sessions are cleared, and their values dropped from the
/// chunks, by a sweep, run on this thread's next miss once the sessions released since the last
/// sweep are at least a quarter of the table (so its cost, one pass, is spread over as many
/// drops); a thread that never misses again keeps them until it exits, as any caller's clone
/// would keep a header.
pub(crate) struct Table<T, X, L> {
    entries: Vec<Entry<L>>,
    chunks: Vec<Option<Arc<Chunk<T, X>>>>,
    occupied: usize,
    released_seen: u64,
}

struct Entry<L> {
    id: u64,
    epoch: u64,
    generation: u64,
    serve_until: Timestamp,
    local: Option<L>,
}

impl<L> Entry<L> {
    const EMPTY: Entry<L> =
        Entry { id: 0, epoch: 0, generation: 0, serve_until: Timestamp::from_unix_millis(i64::MIN), local: None };
}

impl<T: Servable, X: Default + Clone, L> Table<T, X, L> {
    /// An empty table (for `thread_local!`).
    pub(crate) const fn new() -> Self {
        Table { entries: Vec::new(), chunks: Vec::new(), occupied: 0, released_seen: 0 }
    }

    /// Entries holding a session's copy (live or not yet swept).
    #[cfg(test)]
    pub(crate) fn occupied(&self) -> usize {
        self.occupied
    }

    /// Entries, empty or not (the table's length).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Chunks, empty or not.
    #[cfg(test)]
    pub(crate) fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Makes `key`'s entry current and returns it.
    fn refill(
        &mut self,
        key: Key,
        published: &Published<T>,
        make: &impl Fn(&Arc<Chunk<T, X>>, usize) -> L,
    ) -> &Entry<L> {
        // Epoch before generation: see `Published::changed`.
        let epoch = EPOCH.0.load(Ordering::Acquire);
        let generation = published.generation.load(Ordering::Acquire);
        self.maybe_sweep(make);
        let slot = key.slot as usize;
        if self.entries.len() <= slot {
            self.entries.resize_with(slot + 1, || Entry::EMPTY);
            self.chunks.resize_with(slot / CHUNK_LEN + 1, || None);
        }
        let entry = &mut self.entries[slot];
        if entry.id == key.id && entry.generation == generation {
            entry.epoch = epoch; // another slot changed; this one did not
            return &self.entries[slot];
        }
        if entry.id == 0 {
            self.occupied += 1;
        }
        let value = published.load_full();
        *entry = Entry {
            id: key.id,
            epoch,
            generation,
            serve_until: value.as_ref().map_or(Entry::<L>::EMPTY.serve_until, |value| value.serve_until()),
            local: None,
        };
        self.remake_chunk(slot / CHUNK_LEN, Some((slot, value)), make);
        &self.entries[slot]
    }

    /// Replaces chunk `index` with a new one holding the values of its live entries (with
    /// `replace`'s slot set to its value) and none of cleared entries, and points every entry of
    /// the chunk at the new one.
    fn remake_chunk(
        &mut self,
        index: usize,
        mut replace: Option<(usize, Option<Arc<T>>)>,
        make: &impl Fn(&Arc<Chunk<T, X>>, usize) -> L,
    ) {
        let first = index * CHUNK_LEN;
        let old = self.chunks.get_mut(index).and_then(Option::take);
        let entries = &self.entries;
        let slots: Box<[ChunkSlot<T, X>]> = (0..CHUNK_LEN)
            .map(|i| match &mut replace {
                Some((slot, value)) if *slot == first + i => value.take().map(|value| (value, X::default())),
                _ if entries.get(first + i).is_some_and(|entry| entry.id != 0) => {
                    old.as_ref().and_then(|old| old.slots.get(i)).cloned().flatten()
                }
                _ => None,
            })
            .collect();
        drop(old);
        let chunk = slots.iter().any(Option::is_some).then(|| Arc::new(Chunk { slots }));
        for (i, entry) in self.entries.iter_mut().skip(first).take(CHUNK_LEN).enumerate() {
            entry.local = chunk.as_ref().filter(|chunk| chunk.slots[i].is_some()).map(|chunk| make(chunk, i));
        }
        if let Some(place) = self.chunks.get_mut(index) {
            *place = chunk;
        }
    }

    fn maybe_sweep(&mut self, make: &impl Fn(&Arc<Chunk<T, X>>, usize) -> L) {
        let released = RELEASED.load(Ordering::Relaxed);
        let since = released.wrapping_sub(self.released_seen);
        if since == 0 || since.saturating_mul(4) < self.entries.len() as u64 {
            return;
        }
        self.released_seen = released;
        let slots = slots();
        let mut swept_chunks = Vec::new();
        for (slot, entry) in self.entries.iter_mut().enumerate() {
            if entry.id != 0 && slots.ids.get(slot) != Some(&entry.id) {
                *entry = Entry::EMPTY;
                self.occupied -= 1;
                if swept_chunks.last() != Some(&(slot / CHUNK_LEN)) {
                    swept_chunks.push(slot / CHUNK_LEN);
                }
            }
        }
        drop(slots);
        for index in swept_chunks {
            self.remake_chunk(index, None, make);
        }
        while self.entries.last().is_some_and(|entry| entry.id == 0) {
            self.entries.pop();
        }
        self.chunks.truncate(self.entries.len().div_ceil(CHUNK_LEN));
        if self.entries.capacity() > 2 * self.entries.len() + 16 {
            self.entries.shrink_to_fit();
            self.chunks.shrink_to_fit();
        }
    }
}

/// Calls `f` with this thread's copy of `published`'s value if it may be served at `now()`
/// (before its serve-until instant), making the copy with `make` (a handle on the thread's chunk
/// of values and the value's index in it) when this thread has none of the current value.
/// `None`: no value, or not before its serve-until instant.
///
/// A hit: no lock, no allocation, no write outside this thread's table. `f` runs while the
/// table is borrowed: if it reads another session that this thread must refill, that read falls
/// back to the slot (correct, slower, a copy made for the one call).
#[inline]
pub(crate) fn with<T: Servable, X: Default + Clone, L, R>(
    table: &'static LocalKey<RefCell<Table<T, X, L>>>,
    key: Key,
    published: &Published<T>,
    now: impl Fn() -> Timestamp,
    make: impl Fn(&Arc<Chunk<T, X>>, usize) -> L,
    f: impl FnOnce(&L) -> R,
) -> Option<R> {
    let mut f = Some(f);
    let hit = table.try_with(|table| {
        let table = table.try_borrow().ok()?;
        let entry = table.entries.get(key.slot as usize)?;
        if entry.id != key.id || entry.epoch != EPOCH.0.load(Ordering::Acquire) {
            return None;
        }
        Some(match &entry.local {
            Some(local) if now() < entry.serve_until => f.take().map(|f| f(local)),
            _ => None,
        })
    });
    match (hit, f) {
        (Ok(Some(served)), _) => served,
        (_, Some(f)) => miss(table, key, published, now, make, f),
        (_, None) => None,
    }
}

#[cold]
#[inline(never)]
fn miss<T: Servable, X: Default + Clone, L, R>(
    table: &'static LocalKey<RefCell<Table<T, X, L>>>,
    key: Key,
    published: &Published<T>,
    now: impl Fn() -> Timestamp,
    make: impl Fn(&Arc<Chunk<T, X>>, usize) -> L,
    f: impl FnOnce(&L) -> R,
) -> Option<R> {
    let mut f = Some(f);
    let served = table.try_with(|table| {
        let mut table = table.try_borrow_mut().ok()?;
        let f = f.take()?;
        let entry = table.refill(key, published, &make);
        Some(match &entry.local {
            Some(local) if now() < entry.serve_until => Some(f(local)),
            _ => None,
        })
    });
    if let Ok(Some(served)) = served {
        return served;
    }
    // The thread is exiting, or `f` of an outer call is running on this table: the slot itself.
    let f = f?;
    let value = published.load_full().filter(|value| now() < value.serve_until())?;
    Some(f(&make(&Chunk::single(value), 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Value {
        n: u64,
        until: Timestamp,
    }

    impl Servable for Value {
        fn serve_until(&self) -> Timestamp {
            self.until
        }
    }

    thread_local! {
        static TABLE: RefCell<Table<Value, (), Handle>> = const { RefCell::new(Table::new()) };
    }

    /// What a test's table hands out: its chunk and the index in it.
    type Handle = (Arc<Chunk<Value, ()>>, usize);

    fn handle(chunk: &Arc<Chunk<Value, ()>>, index: usize) -> Handle {
        (Arc::clone(chunk), index)
    }

    const NOW: Timestamp = Timestamp::from_unix_millis(1_000_000);
    const LATER: Timestamp = Timestamp::from_unix_millis(2_000_000);

    fn read(key: Key, published: &Published<Value>, now: Timestamp) -> Option<u64> {
        with(&TABLE, key, published, || now, handle, |(chunk, index)| chunk.get(*index).0.n)
    }

    #[test]
    fn a_write_is_seen_and_the_serve_until_instant_is_kept() {
        let registration = Registration::new();
        let published = Published::new(Some(Arc::new(Value { n: 1, until: LATER })));
        assert_eq!(read(registration.key(), &published, NOW), Some(1));
        assert_eq!(read(registration.key(), &published, NOW), Some(1));
        published.store(Some(Arc::new(Value { n: 2, until: LATER })));
        assert_eq!(read(registration.key(), &published, NOW), Some(2));
        assert_eq!(read(registration.key(), &published, LATER), None, "not at its serve-until instant");
        published.store(None);
        assert_eq!(read(registration.key(), &published, NOW), None);
    }

    #[test]
    fn a_reused_slot_never_serves_the_dropped_session_copy() {
        let first = Registration::new();
        let old = Published::new(Some(Arc::new(Value { n: 1, until: LATER })));
        assert_eq!(read(first.key(), &old, NOW), Some(1));
        let slot = first.key().slot;
        drop(first);
        // Take slots until the freed one comes back (other tests may hold lower ones).
        let mut held = Vec::new();
        let reused = loop {
            let registration = Registration::new();
            if registration.key().slot == slot {
                break registration;
            }
            held.push(registration);
        };
        let new = Published::new(Some(Arc::new(Value { n: 2, until: LATER })));
        assert_eq!(read(reused.key(), &new, NOW), Some(2));
    }

    fn copy(key: Key, published: &Published<Value>) -> Handle {
        with(&TABLE, key, published, || NOW, handle, Clone::clone).unwrap()
    }

    #[test]
    fn neighbouring_slots_share_a_chunk_and_a_held_copy_outlives_a_remade_chunk() {
        // Register until two sessions fall in one chunk (other tests hold slots too).
        let mut sessions: Vec<(Registration, Published<Value>)> = Vec::new();
        let (first, second) = loop {
            assert!(sessions.len() < 1_000, "slots are handed out lowest first");
            let registration = Registration::new();
            let chunk = registration.key().slot as usize / CHUNK_LEN;
            let n = sessions.len() as u64;
            sessions.push((registration, Published::new(Some(Arc::new(Value { n, until: LATER })))));
            let same = sessions.iter().position(|(other, _)| other.key().slot as usize / CHUNK_LEN == chunk);
            if let Some(earlier) = same.filter(|&earlier| earlier + 1 < sessions.len()) {
                break (earlier, sessions.len() - 1);
            }
        };
        // The first read of each fills its entry (and remakes its chunk); the second is a hit.
        for (registration, value) in &sessions {
            copy(registration.key(), value);
        }
        let copies: Vec<_> = sessions.iter().map(|(registration, value)| copy(registration.key(), value)).collect();
        for (i, (a, _)) in sessions.iter().enumerate() {
            assert_eq!(copies[i].0.get(copies[i].1).0.n, i as u64, "each session's own value");
            for (j, (b, _)) in sessions.iter().enumerate() {
                let same_chunk = a.key().slot as usize / CHUNK_LEN == b.key().slot as usize / CHUNK_LEN;
                assert_eq!(Arc::ptr_eq(&copies[i].0, &copies[j].0), same_chunk, "one chunk per 32 slots");
            }
        }

        // A write to the second remakes the chunk; the copies held of the old one keep their values.
        sessions[second].1.store(Some(Arc::new(Value { n: 100, until: LATER })));
        let second_now = copy(sessions[second].0.key(), &sessions[second].1);
        let first_now = copy(sessions[first].0.key(), &sessions[first].1);
        assert_eq!(second_now.0.get(second_now.1).0.n, 100);
        assert_eq!(first_now.0.get(first_now.1).0.n, first as u64);
        assert!(Arc::ptr_eq(&first_now.0, &second_now.0), "both moved to the new chunk");
        assert!(!Arc::ptr_eq(&first_now.0, &copies[first].0));
        assert_eq!(copies[second].0.get(copies[second].1).0.n, second as u64, "a held copy keeps its value");
        assert_eq!(copies[first].0.get(copies[first].1).0.n, first as u64);
    }

    #[test]
    fn a_read_inside_a_read_falls_back_to_the_slot() {
        let (outer, inner) = (Registration::new(), Registration::new());
        let a = Published::new(Some(Arc::new(Value { n: 1, until: LATER })));
        let b = Published::new(Some(Arc::new(Value { n: 2, until: LATER })));
        let nested = with(
            &TABLE,
            outer.key(),
            &a,
            || NOW,
            handle,
            |(chunk, index)| (chunk.get(*index).0.n, read(inner.key(), &b, NOW)),
        );
        assert_eq!(nested, Some((1, Some(2))));
    }
}
