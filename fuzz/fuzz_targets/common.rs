// Fixtures shared by the targets (included with `#[path]`): one ES256 and one RS256 issuer,
// public keys only.

pub const ES256_ISSUER: &str = r#"{"issuer": "https://svid-es256.corpus.test", "profile": "jwt-svid", "audiences": ["bridle-gateway"], "algorithms": ["ES256"], "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "iboj7Fmp7I730UeSOpJnfFefoWGOsI9--gYQ4z-Ygu8", "y": "r8g8eR2nXEUKp9xmvagCXuCe5-uHo2sO4ZC1AkBXBRE", "kid": "k1", "alg": "ES256"}]}}"#;

pub const RS256_ISSUER: &str = r#"{"issuer": "https://oidc-rs256.corpus.test", "profile": "oidc", "audiences": ["bridle-gateway"], "algorithms": ["RS256"], "jwks": {"keys": [{"kty": "RSA", "n": "6UTdbkv8TZ2BG9O-SZR954oBrbWvInliS-ju3kag5Ihj2gBkBfdei7IDYhoJBoXgG3U277oKXmYjCmvkvOsaBY2aF37nP_1Dtq1tuD0qA-E4IaR-ePXewUrcwIXC9WPmGKisq_-K9LFCAQfGIo7IJHpSLoH-817bmAMmWEzSYOSW03FJC5YsWTsYwBYaF_aT5yYif2fuSJxCl0yI3pq0jjd8yit1A9vj7oVwxgNpocIlvOWBG7g0nkFRD0gu646v0WIUIaJpg6-wYR_BpTJIS_TdwJspLpISq6S8a_CvRrDpkhZaqXWHH3v44xNbEU_AK7zv4yJjLYDUEKCcagLOJw", "e": "AQAB", "kid": "k1", "alg": "RS256"}]}}"#;

/// A fixed instant (2026-11-23): the corpus seeds were minted around it.
pub const NOW: u64 = 1_795_392_000;
