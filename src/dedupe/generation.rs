//! One generation of the in-memory store's keys (`key_table`): a hash
//! table laid out for claims of thousands of keys that are mostly new.
//!
//! - The table proper is an array of 8-byte slots (open addressing, linear
//!   probing, at most 5/8 full), each holding the upper half of its key's
//!   hash beside the key's entry number. That half also places the key, so
//!   growing the array and shifting keys back after a removal read the
//!   slots only. A search for a key that is not there, the common case,
//!   reads a cache line of slots and no entry: a slot matching the hash
//!   half is another key's once in 2^14 probes at 2^18 slots.
//! - Entries (hash, where the key's text is, value) go to a vector in the
//!   order they are set, and key text to one string: setting a key
//!   allocates nothing once the generation has grown, and the generation
//!   is emptied by truncating both.
//! - [`Generation::prefetch`] asks the CPU for a hash's slots ahead of its
//!   search: a claim hashes its keys first and prefetches a few keys
//!   ahead, so the cache misses of a table of hundreds of thousands of
//!   keys overlap instead of coming one after another.
//!
//! A key removed is shifted out of the slots (no tombstones, so searches
//! never slow down with removals); its entry stays, without a value, until
//! the generation is emptied. Entries count every key set, removed or not,
//! so what a generation holds is bounded by the keys set in it.

/// A slot: 0 when empty, else the upper 32 bits of the key's hash and the
/// entry number plus one.
type Slot = u64;

const EMPTY: Slot = 0;

struct Entry<V> {
    hash: u64,
    start: usize,
    end: usize,
    /// `None` once the key was removed.
    value: Option<V>,
}

impl<V> Entry<V> {
    /// The entry's key, in its generation's `text`.
    fn key_in<'t>(&self, text: &'t str) -> &'t str {
        text.get(self.start..self.end).unwrap_or_default()
    }
}

pub(super) struct Generation<V> {
    /// A power of two in length (or empty).
    slots: Vec<Slot>,
    entries: Vec<Entry<V>>,
    text: String,
    /// Keys present (occupied slots).
    live: usize,
}

impl<V> Default for Generation<V> {
    fn default() -> Generation<V> {
        Generation {
            slots: Vec::new(),
            entries: Vec::new(),
            text: String::new(),
            live: 0,
        }
    }
}

fn slot_of(hash: u64, entry: usize) -> Slot {
    (hash & !0xffff_ffff) | (entry as u64 + 1)
}

fn entry_of(slot: Slot) -> usize {
    (slot & 0xffff_ffff) as usize - 1
}

fn same_half(slot: Slot, hash: u64) -> bool {
    (slot ^ hash) >> 32 == 0
}

/// Where a key of hash (or slot) `h` is first looked for.
fn home(h: u64, mask: usize) -> usize {
    (h >> 32) as usize & mask
}

impl<V> Generation<V> {
    /// Keys present.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// Keys set since the generation was emptied, removed ones included.
    pub(super) fn taken(&self) -> usize {
        self.entries.len()
    }

    fn key(&self, e: &Entry<V>) -> &str {
        e.key_in(&self.text)
    }

    /// The slot holding `key` (of hash `h`), if it is present.
    fn find_slot(&self, h: u64, key: &str) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut at = home(h, mask);
        loop {
            let slot = self.slots[at];
            if slot == EMPTY {
                return None;
            }
            if same_half(slot, h) {
                let e = &self.entries[entry_of(slot)];
                if e.hash == h && crate::bytes_eq::str_eq(self.key(e), key) {
                    return Some(at);
                }
            }
            at = (at + 1) & mask;
        }
    }

    pub(super) fn get(&self, h: u64, key: &str) -> Option<&V> {
        let at = self.find_slot(h, key)?;
        self.entries[entry_of(self.slots[at])].value.as_ref()
    }

    pub(super) fn get_mut(&mut self, h: u64, key: &str) -> Option<&mut V> {
        let at = self.find_slot(h, key)?;
        let e = entry_of(self.slots[at]);
        self.entries[e].value.as_mut()
    }

    /// Sets `key`, which must not be present, to `value`.
    pub(super) fn insert(&mut self, h: u64, key: &str, value: V) {
        if (self.live + 1) * 8 > self.slots.len() * 5 {
            self.grow();
        }
        let start = self.text.len();
        self.text.push_str(key);
        let entry = self.entries.len();
        self.entries.push(Entry {
            hash: h,
            start,
            end: self.text.len(),
            value: Some(value),
        });
        self.place(slot_of(h, entry));
        self.live += 1;
    }

    /// Puts `slot` in the first empty slot from its home.
    fn place(&mut self, slot: Slot) {
        let mask = self.slots.len() - 1;
        let mut at = home(slot, mask);
        while self.slots[at] != EMPTY {
            at = (at + 1) & mask;
        }
        self.slots[at] = slot;
    }

    fn grow(&mut self) {
        let len = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; len]);
        for slot in old.into_iter().filter(|s| *s != EMPTY) {
            self.place(slot);
        }
    }

    /// Removes `key` if present. The slots after it that belong at or
    /// before its place move back, so that every key stays reachable from
    /// its home without crossing an empty slot.
    pub(super) fn remove(&mut self, h: u64, key: &str) {
        let Some(mut hole) = self.find_slot(h, key) else {
            return;
        };
        self.entries[entry_of(self.slots[hole])].value = None;
        self.slots[hole] = EMPTY;
        self.live -= 1;
        let mask = self.slots.len() - 1;
        let mut at = (hole + 1) & mask;
        while self.slots[at] != EMPTY {
            let slot = self.slots[at];
            // Distance from home to here, against from the hole to here:
            // the key may fill the hole if the hole is not before its home.
            if (at.wrapping_sub(home(slot, mask)) & mask) >= (at.wrapping_sub(hole) & mask) {
                self.slots[hole] = slot;
                self.slots[at] = EMPTY;
                hole = at;
            }
            at = (at + 1) & mask;
        }
    }

    /// Every value present.
    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> + '_ {
        self.entries.iter_mut().filter_map(|e| e.value.as_mut())
    }

    /// The keys present whose value `keep` names, with their hashes and
    /// values; the generation is emptied, keeping its capacity.
    pub(super) fn empty_keeping(&mut self, keep: impl Fn(&V) -> bool) -> Vec<(u64, String, V)> {
        let (entries, text) = (&mut self.entries, &self.text);
        let kept = entries
            .drain(..)
            .filter(|e| e.value.as_ref().is_some_and(&keep))
            .filter_map(|e| {
                let key = e.key_in(text).to_owned();
                e.value.map(|v| (e.hash, key, v))
            })
            .collect();
        self.text.clear();
        self.slots.fill(EMPTY);
        self.live = 0;
        kept
    }

    /// Asks the CPU to load the slots a search for hash `h` starts at.
    pub(super) fn prefetch(&self, h: u64) {
        if let Some(mask) = self.slots.len().checked_sub(1) {
            prefetch(&self.slots[home(h, mask)]);
        }
    }
}

/// A hint to load `slot`'s cache line; it never faults and changes nothing
/// the program can see but timing.
#[inline(always)]
fn prefetch(slot: &Slot) {
    let p: *const Slot = slot;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing the program sees and
    // cannot fault, and `p` points into a live slice besides.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above (PRFM is a hint; Lambda's arm64 is Graviton).
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{p}]", p = in(reg) p, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Hashes that collide on purpose: every key's home is slot `home`, and
    /// the whole hash is the same, so only the text tells keys apart.
    fn colliding(home: u64) -> impl Fn(&str) -> u64 {
        move |_| (home << 32) | 7
    }

    /// A real hash with six bits of its home cleared and one set, so
    /// that keys crowd into long runs.
    fn crowded(h: u64) -> u64 {
        h & !(0x7e0 << 32) | (0x20 << 32)
    }

    #[test]
    fn keys_are_set_found_and_removed_past_collisions_and_the_wrap() {
        let mut g = Generation::default();
        // 16 slots after the first insert; home 14 makes probes wrap.
        let hash = colliding(14);
        let keys: Vec<String> = (0..6).map(|n| format!("k{n}")).collect();
        for (n, k) in keys.iter().enumerate() {
            g.insert(hash(k), k, n);
        }
        assert_eq!(g.slots.len(), 16);
        for (n, k) in keys.iter().enumerate() {
            assert_eq!(g.get(hash(k), k), Some(&n));
        }
        assert_eq!(g.get(hash("k9"), "k9"), None);
        // Removing one in the middle of the run keeps the rest reachable.
        g.remove(hash("k2"), "k2");
        g.remove(hash("nope"), "nope");
        assert_eq!((g.len(), g.taken()), (5, 6));
        for (n, k) in keys.iter().enumerate() {
            let want = (n != 2).then_some(n);
            assert_eq!(g.get(hash(k), k).copied(), want, "{k}");
        }
        *g.get_mut(hash("k5"), "k5").unwrap() = 50;
        assert_eq!(g.get(hash("k5"), "k5"), Some(&50));
        assert_eq!(g.values_mut().count(), 5);
    }

    #[test]
    fn a_table_of_real_hashes_matches_a_map_through_growth_and_removals() {
        use std::hash::BuildHasher;
        let hasher = foldhash::fast::FixedState::with_seed(3);
        // As they come (collisions of neighbours: a key often sits right
        // after another's home), and crowded (runs hundreds long).
        let ways: [fn(u64) -> u64; 2] = [|h| h, crowded];
        for (way, spread) in ways.into_iter().enumerate() {
            let h = |k: &str| spread(hasher.hash_one(k));
            let mut g = Generation::default();
            let mut model = HashMap::new();
            // A fixed pseudo-random walk of inserts, removals and checks.
            let mut x: u64 = 0x9e37_79b9;
            for step in 0..20_000u64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let k = format!("key-{}", x % 3_000);
                // Bits the key does not depend on choose the step.
                if (x >> 40).is_multiple_of(3) {
                    g.remove(h(&k), &k);
                    model.remove(&k);
                } else if g.get(h(&k), &k).is_none() {
                    g.insert(h(&k), &k, step);
                    model.insert(k.clone(), step);
                }
                assert_eq!(g.len(), model.len(), "way {way}, step {step}");
            }
            for (k, v) in &model {
                assert_eq!(g.get(h(k), k), Some(v), "way {way}: {k}");
            }
            assert!(g.taken() > g.len() + 2_000, "way {way}: removals ran");
            assert!(g.slots.len() * 5 >= g.len() * 8);
        }
    }

    #[test]
    fn emptying_keeps_what_is_asked_and_the_capacity() {
        let mut g = Generation::default();
        let hash = colliding(3);
        for n in 0..40 {
            let k = format!("k{n}");
            g.insert(hash(&k), &k, n);
        }
        g.remove(hash("k10"), "k10");
        let slots = g.slots.len();
        let kept = g.empty_keeping(|v| v % 10 == 0);
        let names: Vec<&str> = kept.iter().map(|(_, k, _)| k.as_str()).collect();
        assert_eq!(names, ["k0", "k20", "k30"]);
        assert_eq!((g.len(), g.taken(), g.slots.len()), (0, 0, slots));
        assert_eq!(g.get(hash("k0"), "k0"), None);
        g.insert(hash("k0"), "k0", 1);
        assert_eq!(g.get(hash("k0"), "k0"), Some(&1));
        g.prefetch(hash("k0"));
        Generation::<u8>::default().prefetch(1);
    }
}
