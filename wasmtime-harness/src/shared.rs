//! Shared data and shared queues. In Envoy both are process-wide per `vm_id`; here they live
//! in a [`SharedData`] handle that each plugin gets a fresh one of by default, and that tests
//! can hand to several plugins to model several worker threads.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abi::Status;

/// A handle on a shared-data store and its queues; clones share the same store.
#[derive(Debug, Clone, Default)]
pub struct SharedData {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: BTreeMap<Vec<u8>, (Vec<u8>, u32)>,
    last_cas: u32,
    queues: Vec<Queue>,
}

#[derive(Debug)]
struct Queue {
    vm_id: String,
    name: String,
    /// The plugin that registered the queue: it gets `proxy_on_queue_ready`.
    owner: u64,
    items: VecDeque<Vec<u8>>,
    ready: bool,
}

impl SharedData {
    /// A new, empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another test thread panicked mid-update; the map itself
        // is still consistent (every update is a single insert).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value and CAS token of `key`.
    pub fn get(&self, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        self.lock().entries.get(key).cloned()
    }

    /// Sets `key` unconditionally.
    pub fn set(&self, key: &[u8], value: &[u8]) {
        let _ = self.set_cas(key, value, 0);
    }

    /// proxy-wasm-cpp-host semantics: `cas == 0` writes unconditionally; otherwise an existing
    /// key is written only if `cas` is its current token (`CasMismatch` if not) and a missing
    /// key is created. Every write gets a fresh non-zero token.
    pub(crate) fn set_cas(&self, key: &[u8], value: &[u8], cas: u32) -> Status {
        let mut inner = self.lock();
        let next = next_cas(&mut inner.last_cas);
        match inner.entries.get_mut(key) {
            Some((_, current)) if cas != 0 && cas != *current => Status::CasMismatch,
            Some(entry) => {
                *entry = (value.to_vec(), next);
                Status::Ok
            }
            None => {
                inner.entries.insert(key.to_vec(), (value.to_vec(), next));
                Status::Ok
            }
        }
    }

    pub(crate) fn register_queue(&self, vm_id: &str, name: &str, owner: u64) -> Option<u32> {
        let mut inner = self.lock();
        if let Some(i) = inner
            .queues
            .iter()
            .position(|q| q.vm_id == vm_id && q.name == name)
        {
            return queue_id(i);
        }
        inner.queues.push(Queue {
            vm_id: vm_id.to_owned(),
            name: name.to_owned(),
            owner,
            items: VecDeque::new(),
            ready: false,
        });
        queue_id(inner.queues.len() - 1)
    }

    pub(crate) fn resolve_queue(&self, vm_id: &str, name: &str) -> Option<u32> {
        let inner = self.lock();
        let i = inner
            .queues
            .iter()
            .position(|q| q.vm_id == vm_id && q.name == name)?;
        queue_id(i)
    }

    pub(crate) fn enqueue(&self, id: u32, value: &[u8]) -> Status {
        let mut inner = self.lock();
        match queue_index(id).and_then(|i| inner.queues.get_mut(i)) {
            Some(queue) => {
                queue.items.push_back(value.to_vec());
                queue.ready = true;
                Status::Ok
            }
            None => Status::NotFound,
        }
    }

    pub(crate) fn dequeue(&self, id: u32) -> Result<Vec<u8>, Status> {
        let mut inner = self.lock();
        let queue = queue_index(id)
            .and_then(|i| inner.queues.get_mut(i))
            .ok_or(Status::NotFound)?;
        queue.items.pop_front().ok_or(Status::Empty)
    }

    /// Queues owned by `owner` that received items since the last call.
    pub(crate) fn take_ready(&self, owner: u64) -> Vec<u32> {
        let mut inner = self.lock();
        let mut ready = Vec::new();
        for (i, queue) in inner.queues.iter_mut().enumerate() {
            if queue.owner == owner && queue.ready {
                queue.ready = false;
                ready.extend(queue_id(i));
            }
        }
        ready
    }
}

fn next_cas(last: &mut u32) -> u32 {
    *last = last.wrapping_add(1);
    if *last == 0 {
        *last = 1;
    }
    *last
}

/// Queue ids start at 1 so that 0 never names a queue.
fn queue_id(index: usize) -> Option<u32> {
    u32::try_from(index).ok()?.checked_add(1)
}

fn queue_index(id: u32) -> Option<usize> {
    usize::try_from(id.checked_sub(1)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_semantics() {
        let s = SharedData::new();
        assert_eq!(s.set_cas(b"k", b"v1", 0), Status::Ok);
        let (v, cas) = s.get(b"k").unwrap();
        assert_eq!(v, b"v1");
        assert_ne!(cas, 0);
        assert_eq!(s.set_cas(b"k", b"v2", cas), Status::Ok);
        // The old token is stale now.
        assert_eq!(s.set_cas(b"k", b"v3", cas), Status::CasMismatch);
        assert_eq!(s.get(b"k").unwrap().0, b"v2");
        // cas 0 always writes.
        assert_eq!(s.set_cas(b"k", b"v4", 0), Status::Ok);
        assert_eq!(s.get(b"k").unwrap().0, b"v4");
        // A missing key is created whatever the token.
        assert_eq!(s.set_cas(b"new", b"x", 77), Status::Ok);
        assert!(s.get(b"missing").is_none());
    }

    #[test]
    fn clones_share_the_store() {
        let a = SharedData::new();
        let b = a.clone();
        a.set(b"k", b"v");
        assert_eq!(b.get(b"k").map(|(v, _)| v), Some(b"v".to_vec()));
    }

    #[test]
    fn queues() {
        let s = SharedData::new();
        let id = s.register_queue("vm", "q", 7).unwrap();
        assert_eq!(s.register_queue("vm", "q", 7), Some(id));
        assert_eq!(s.resolve_queue("vm", "q"), Some(id));
        assert_eq!(s.resolve_queue("other", "q"), None);
        assert_eq!(s.dequeue(id), Err(Status::Empty));
        assert_eq!(s.enqueue(id, b"a"), Status::Ok);
        assert_eq!(s.enqueue(99, b"a"), Status::NotFound);
        assert_eq!(s.take_ready(8), Vec::<u32>::new());
        assert_eq!(s.take_ready(7), vec![id]);
        assert_eq!(s.take_ready(7), Vec::<u32>::new());
        assert_eq!(s.dequeue(id), Ok(b"a".to_vec()));
        assert_eq!(s.dequeue(0), Err(Status::NotFound));
    }
}
