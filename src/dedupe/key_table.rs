//! The in-memory store's idempotency keys, bounded: keys are forgotten by
//! generation. Each key set (new, or its value changed) belongs to the
//! current generation; when that one has taken `generation_len` keys a new
//! one starts, and the keys last set before the one just ended are
//! forgotten, but for claims still live. So
//! the store remembers at least the last `generation_len` keys and holds
//! about twice that at most, besides live claims (DynamoDB is the durable
//! store; this one lives as long as its process). Forgetting keeps the
//! table's capacity: after the first generations it neither grows (growing
//! means rehashing, and rehashing a table of millions of keys stalled a
//! batch for tens of milliseconds) nor has to fault in new pages.

use std::collections::HashMap;

/// Seeded fast hash (foldhash): SipHash was a tenth of the handler's time
/// with payload keys on.
type Map<V> = HashMap<String, Stamped<V>, foldhash::fast::RandomState>;

/// A value and the generation that last set it.
struct Stamped<V> {
    value: V,
    generation: u64,
}

/// Keys and their values, forgotten by generation (module doc).
pub(super) struct KeyTable<V> {
    map: Map<V>,
    /// Keys a generation takes before the next one starts.
    generation_len: usize,
    generation: u64,
    /// Keys set (new or renewed) in the current generation.
    set_in_generation: usize,
}

impl<V> KeyTable<V> {
    /// A table that remembers at least the last `generation_len` keys.
    pub(super) fn new(generation_len: usize) -> KeyTable<V> {
        KeyTable {
            map: Map::default(),
            generation_len: generation_len.max(1),
            generation: 0,
            set_in_generation: 0,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key).map(|s| &s.value)
    }

    /// Sets `key` to what `decide` makes of its value (`None`: leave it as
    /// it is). A key set is renewed: it belongs to the current generation.
    pub(super) fn update(&mut self, key: &str, decide: impl FnOnce(Option<&V>) -> Option<V>) {
        let generation = self.generation;
        // Looked up first, not through `entry`: that needs an owned key,
        // and a new `String` per existing key cost more than a second
        // search for the new ones.
        match self.map.get_mut(key) {
            Some(held) => {
                if let Some(value) = decide(Some(&held.value)) {
                    if held.generation != generation {
                        self.set_in_generation += 1;
                    }
                    *held = Stamped { value, generation };
                }
            }
            None => {
                if let Some(value) = decide(None) {
                    self.set_in_generation += 1;
                    self.map
                        .insert(key.to_string(), Stamped { value, generation });
                }
            }
        }
    }

    pub(super) fn remove(&mut self, key: &str) {
        self.map.remove(key);
    }

    /// Starts a new generation if the current one is full, forgetting the
    /// keys last set before the previous one began, but for those `keep`
    /// names (live claims). The table keeps its capacity: after the first
    /// generations it neither grows nor shrinks.
    pub(super) fn rotate_if_full(&mut self, keep: impl Fn(&V) -> bool) {
        if self.set_in_generation < self.generation_len {
            return;
        }
        let previous = self.generation;
        self.map
            .retain(|_, s| s.generation >= previous || keep(&s.value));
        self.generation += 1;
        self.set_in_generation = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_and_set() {
        let mut t = KeyTable::new(100);
        let long = "k".repeat(100);
        for (n, k) in ["", "a", "trade#t-00012345", long.as_str()]
            .iter()
            .enumerate()
        {
            t.update(k, |old| {
                assert!(old.is_none());
                Some(n)
            });
        }
        assert_eq!(t.get(""), Some(&0));
        assert_eq!(t.get("a"), Some(&1));
        assert_eq!(t.get("trade#t-00012345"), Some(&2));
        assert_eq!(t.get(&long), Some(&3));
        assert_eq!(t.get(&"k".repeat(99)), None);
        t.update("a", |old| old.map(|v| v + 10));
        assert_eq!(t.get("a"), Some(&11));
        t.update("a", |_| None);
        assert_eq!(t.get("a"), Some(&11), "None leaves the value");
        t.remove(&long);
        assert_eq!(t.get(&long), None);
    }

    #[test]
    fn generations_bound_the_table_and_keep_live_claims() {
        // Values: (key number, live claim).
        let mut t = KeyTable::new(4);
        let key = |n: usize| format!("key-{n}");
        for n in 0..4 {
            t.update(&key(n), |_| Some((n, n == 1)));
        }
        t.rotate_if_full(|v| v.1);
        // The first generation is the previous one now: still remembered.
        assert_eq!(t.get(&key(0)), Some(&(0, false)));
        // A key set again is renewed: it belongs to the new generation.
        t.update(&key(2), |old| old.map(|v| (v.0 + 100, false)));
        for n in 4..7 {
            t.update(&key(n), |_| Some((n, false)));
        }
        t.rotate_if_full(|v| v.1);
        // Forgotten, but for the live claim (kept) and key 2 (renewed).
        assert_eq!(t.get(&key(0)), None);
        assert_eq!(t.get(&key(3)), None);
        assert_eq!(t.get(&key(1)), Some(&(1, true)));
        assert_eq!(t.get(&key(2)), Some(&(102, false)));
        assert_eq!(t.get(&key(6)), Some(&(6, false)));
        // A key looked at but left as it is is not renewed.
        t.update(&key(6), |_| None);
        for n in 7..11 {
            t.update(&key(n), |_| Some((n, false)));
        }
        t.rotate_if_full(|v| v.1);
        assert_eq!(t.get(&key(6)), None);
        // Never more than two generations (and the live claim), and always
        // the last four keys.
        for n in 11..1000 {
            t.rotate_if_full(|v| v.1);
            t.update(&key(n), |_| Some((n, false)));
            assert!(t.len() <= 2 * 4 + 1, "{} keys at {n}", t.len());
            for back in 0..4 {
                assert!(t.get(&key(n - back)).is_some(), "{} at {n}", n - back);
            }
        }
        assert_eq!(t.get(&key(1)), Some(&(1, true)));
    }
}
