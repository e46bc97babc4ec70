// Fixtures shared by the targets (included with `#[path]`): one ES256 and one RS256 issuer,
// public keys only.

pub const ES256_ISSUER: &str = r#"{"issuer": "https://svid-es256.corpus.test", "profile": "jwt-svid", "trust_domain": "corpus.bridle.test", "audiences": ["bridle-gateway"], "algorithms": ["ES256"], "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "iboj7Fmp7I730UeSOpJnfFefoWGOsI9--gYQ4z-Ygu8", "y": "r8g8eR2nXEUKp9xmvagCXuCe5-uHo2sO4ZC1AkBXBRE", "kid": "k1", "alg": "ES256"}]}}"#;

pub const RS256_ISSUER: &str = r#"{"issuer": "https://oidc-rs256.corpus.test", "profile": "oidc", "audiences": ["bridle-gateway"], "algorithms": ["RS256"], "jwks": {"keys": [{"kty": "RSA", "n": "6UTdbkv8TZ2BG9O-SZR954oBrbWvInliS-ju3kag5Ihj2gBkBfdei7IDYhoJBoXgG3U277oKXmYjCmvkvOsaBY2aF37nP_1Dtq1tuD0qA-E4IaR-ePXewUrcwIXC9WPmGKisq_-K9LFCAQfGIo7IJHpSLoH-817bmAMmWEzSYOSW03FJC5YsWTsYwBYaF_aT5yYif2fuSJxCl0yI3pq0jjd8yit1A9vj7oVwxgNpocIlvOWBG7g0nkFRD0gu646v0WIUIaJpg6-wYR_BpTJIS_TdwJspLpISq6S8a_CvRrDpkhZaqXWHH3v44xNbEU_AK7zv4yJjLYDUEKCcagLOJw", "e": "AQAB", "kid": "k1", "alg": "RS256"}]}}"#;

/// The decision target's workload issuer; its private key signed the two tokens below and
/// was then discarded (they stay valid at [`NOW`], so the fuzzer reaches the policy).
pub const FUZZ_ISSUER: &str = r#"{"issuer": "https://fuzz.bridle.test", "profile": "jwt-svid", "trust_domain": "fuzz.bridle.test", "audiences": ["bridle-gateway"], "algorithms": ["ES256"], "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "jhuP-2oWhlSH0cCogKg7IBfFQTGROPDLoaoo5do2r6A", "y": "qgG3R878LsJrkJIo4rCCi6Q-vwdu_rF_y8npeamQy7o", "kid": "fuzz-1", "alg": "ES256"}]}}"#;

/// A JWT-SVID of `FUZZ_ISSUER` for `spiffe://fuzz.bridle.test/agent/bot`, valid at [`NOW`].
pub const VALID_TOKEN: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImZ1enotMSIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2Z1enouYnJpZGxlLnRlc3QiLCJzdWIiOiJzcGlmZmU6Ly9mdXp6LmJyaWRsZS50ZXN0L2FnZW50L2JvdCIsImF1ZCI6ImJyaWRsZS1nYXRld2F5IiwiaWF0IjoxNzk1MzkxOTkwLCJleHAiOjIxMTA3NTIwMDAsImp0aSI6ImZ1enotdyJ9.-0JsHauyzORWeihmRfqM2E3F8HKA1NGAL0-wJoJ_cLFUDb_EkL9-0Os848qZjQCXbmH2BsCi9tZeVRem84WH9g";

/// A transaction token of `https://txn.fuzz.test` (same key) bound to that agent, valid at [`NOW`].
pub const TXN_TOKEN: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImZ1enotMSIsInR5cCI6InR4bnRva2VuK2p3dCJ9.eyJpc3MiOiJodHRwczovL3R4bi5mdXp6LnRlc3QiLCJzdWIiOiJ1c2VyOmFsaWNlIiwiYXVkIjoiYnJpZGxlLWdhdGV3YXkiLCJpYXQiOjE3OTUzOTE5OTAsImV4cCI6MTc5NTM5MjUwMCwidHhuIjoiZnV6ei10eG4iLCJyZXFfd2wiOiJzcGlmZmU6Ly9mdXp6LmJyaWRsZS50ZXN0L2FnZW50L2JvdCJ9.ZOElFkTb6SpV8PHe2CgP-T-zSS3ogZt-ZEmU5WV1TWc7_f5hBTishcOu7mvoRYQM8WRNniUHBdILvQ7T69tBxw";

/// A fixed instant (2026-11-23): the corpus seeds were minted around it.
pub const NOW: u64 = 1_795_392_000;
