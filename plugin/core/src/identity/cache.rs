//! A bounded cache of verified tokens, so a repeated token costs a lookup, not a signature check.
//!
//! Only tokens that verified are stored, so an attacker cannot fill it with garbage; entries are
//! dropped at their `exp` (plus the allowed skew), and the oldest entry goes first when full.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

pub struct TokenCache<T> {
    capacity: usize,
    entries: HashMap<Box<str>, Entry<T>>,
    order: VecDeque<Box<str>>,
}

struct Entry<T> {
    valid_until: u64,
    valid_from: u64,
    value: Rc<T>,
}

impl<T> TokenCache<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: HashMap::with_capacity(capacity.min(4096)),
            order: VecDeque::with_capacity(capacity.min(4096)),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every token: the keys that verified them may be gone.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    /// The cached value for `token` if it is still valid at `now` (unix seconds).
    pub fn get(&mut self, token: &str, now: u64) -> Option<Rc<T>> {
        let entry = self.entries.get(token)?;
        if now > entry.valid_until {
            self.entries.remove(token);
            return None;
        }
        if now < entry.valid_from {
            return None;
        }
        Some(Rc::clone(&entry.value))
    }

    /// Stores a verified token valid in `[valid_from, valid_until]`.
    pub fn insert(&mut self, token: &str, valid_from: u64, valid_until: u64, value: Rc<T>) {
        if self.capacity == 0 {
            return;
        }
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
        let key: Box<str> = token.into();
        if self
            .entries
            .insert(
                key.clone(),
                Entry {
                    valid_until,
                    valid_from,
                    value,
                },
            )
            .is_none()
        {
            self.order.push_back(key);
        }
        // `order` can hold keys already removed on expiry; keep it from growing past the bound.
        if self.order.len() > self.capacity.saturating_mul(2) {
            let entries = &self.entries;
            self.order.retain(|k| entries.contains_key(k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_until_expiry_then_miss() {
        let mut cache = TokenCache::new(4);
        cache.insert("t1", 100, 200, Rc::new(1));
        assert_eq!(cache.get("t1", 150).as_deref(), Some(&1));
        assert_eq!(cache.get("t1", 200).as_deref(), Some(&1));
        assert!(cache.get("t1", 201).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn not_before_is_respected() {
        let mut cache = TokenCache::new(4);
        cache.insert("t1", 100, 200, Rc::new(1));
        assert!(cache.get("t1", 99).is_none());
    }

    #[test]
    fn bounded_and_evicts_oldest() {
        let mut cache = TokenCache::new(2);
        cache.insert("a", 0, 100, Rc::new(1));
        cache.insert("b", 0, 100, Rc::new(2));
        cache.insert("c", 0, 100, Rc::new(3));
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a", 1).is_none());
        assert!(cache.get("c", 1).is_some());
    }

    #[test]
    fn order_stays_bounded_under_expiry_churn() {
        let mut cache = TokenCache::new(2);
        for i in 0..1000u64 {
            let token = format!("t{i}");
            cache.insert(&token, 0, i, Rc::new(i));
            let _ = cache.get(&token, i + 1);
        }
        assert!(cache.order.len() <= 4);
    }

    #[test]
    fn zero_capacity_disables() {
        let mut cache = TokenCache::new(0);
        cache.insert("a", 0, 100, Rc::new(1));
        assert!(cache.get("a", 1).is_none());
    }
}
