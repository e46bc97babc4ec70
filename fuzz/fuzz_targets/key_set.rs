//! Fetched key sets (a JWKS or a SPIFFE bundle document from an issuer's endpoint): arbitrary
//! bytes never panic; what is accepted holds at least one key and no key id twice.
#![no_main]

use bridle_core::identity::key_set;
use bridle_core::identity::keys::Algorithm;
use libfuzzer_sys::fuzz_target;

const ALGORITHMS: [&str; 9] = [
    "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
];

fuzz_target!(|data: &[u8]| {
    let algorithms: Vec<Algorithm> = ALGORITHMS
        .iter()
        .filter_map(|name| Algorithm::from_name(name))
        .collect();
    if let Ok(set) = key_set::parse(data, &algorithms) {
        assert!(!set.keys.is_empty());
        let mut kids: Vec<&str> = set.keys.iter().map(|k| k.kid.as_str()).collect();
        kids.sort_unstable();
        let before = kids.len();
        kids.dedup();
        assert_eq!(kids.len(), before, "a key id twice");
    }
});
