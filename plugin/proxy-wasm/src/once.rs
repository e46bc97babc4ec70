//! Single-use keys shared by every worker, on proxy-wasm shared data.
//!
//! Shared data has compare-and-swap for keys that exist but no atomic create, so keys live in a
//! fixed set of slots created at configure time; a claim is a CAS update of its slot. A slot
//! holds `expiry key` lines; expired lines are dropped on every write.

use bridle_core::{Once, OnceStore};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

const SLOTS: u64 = 64;
const MAX_KEYS_PER_SLOT: usize = 4096;
const CAS_RETRIES: usize = 8;
const SLOT_MARKER: &[u8] = b"#\n";

fn slot_name(key: &str) -> String {
    let hash = hmac_sha256::Hash::hash(key.as_bytes());
    let index = u64::from_le_bytes(
        hash.get(..8)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 8]),
    );
    format!("bridle.once.{}", index % SLOTS)
}

/// Creates the slots that do not exist yet. Called from `on_configure`, before any claim.
pub fn create_slots() {
    for index in 0..SLOTS {
        let name = format!("bridle.once.{index}");
        // Only a slot that does not exist is written unconditionally; hosts return an empty
        // value as "no data", so slots are never empty: they start with a marker line.
        if let Ok((None, None)) = hostcalls::get_shared_data(&name) {
            let _ = hostcalls::set_shared_data(&name, Some(SLOT_MARKER), None);
        }
    }
}

pub struct SharedOnceStore;

impl OnceStore for SharedOnceStore {
    fn use_once(&mut self, key: &str, expires_at: u64, now: u64) -> Once {
        if key.contains('\n') {
            return Once::Unavailable;
        }
        let slot = slot_name(key);
        for _ in 0..CAS_RETRIES {
            let (value, cas) = match hostcalls::get_shared_data(&slot) {
                Ok((Some(value), Some(cas))) => (value, cas),
                Ok((None, Some(cas))) => (Vec::new(), cas),
                // A missing slot was not created at configure: refuse rather than race.
                _ => return Once::Unavailable,
            };
            let text = String::from_utf8_lossy(&value);
            let mut kept = String::with_capacity(text.len() + key.len() + 24);
            kept.push_str("#\n");
            let mut count = 0;
            for line in text.lines() {
                let Some((expiry, used)) = line.split_once(' ') else {
                    continue;
                };
                if used == key {
                    return Once::Replayed;
                }
                if expiry.parse::<u64>().is_ok_and(|e| e >= now) {
                    kept.push_str(line);
                    kept.push('\n');
                    count += 1;
                }
            }
            if count >= MAX_KEYS_PER_SLOT {
                return Once::Unavailable;
            }
            kept.push_str(&format!("{expires_at} {key}\n"));
            match hostcalls::set_shared_data(&slot, Some(kept.as_bytes()), Some(cas)) {
                Ok(()) => return Once::First,
                Err(Status::CasMismatch) => continue,
                Err(_) => return Once::Unavailable,
            }
        }
        Once::Unavailable
    }
}
