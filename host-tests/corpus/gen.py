#!/usr/bin/env python3
"""Hostile-token corpus for Bridle, minted with an independent JOSE stack (PyJWT + cryptography).

Writes one JSON document: the issuers Bridle must trust (public JWKs only), and cases, each a
token for one slot (`workload`: the Authorization header, `task`: the transaction-token header,
`approval`: the approval header), the expected outcome (`accept` or `refuse`) and a reason
class the Rust tests map to the refusal message they expect. Keys are fresh on every run.

Usage: gen.py OUT.json
"""

import base64
import hashlib
import hmac
import json
import sys
import time

import warnings

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

AUDIENCE = "bridle-gateway"
TRUST_DOMAIN = "corpus.bridle.test"
AGENT = f"spiffe://{TRUST_DOMAIN}/agent/corpus-bot"
HOST = "corpus.internal"
APPROVE_PATH = "/approve"
NOW = int(time.time())
# The skew the tests configure (`identity.clock_skew_seconds`): wide, so that a slow machine
# between generation and the last case never turns an accepted token into an expired one.
CLOCK_SKEW = 120

ALGS = ["ES256", "ES384", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64_json(value) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def uint(n: int) -> str:
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Key:
    """One private key and its public JWK."""

    def __init__(self, family: str, rsa_bits: int = 2048):
        self.family = family
        if family == "P-256":
            self.private = ec.generate_private_key(ec.SECP256R1())
        elif family == "P-384":
            self.private = ec.generate_private_key(ec.SECP384R1())
        elif family == "Ed25519":
            self.private = ed25519.Ed25519PrivateKey.generate()
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self, kid: str, alg: str) -> dict:
        public = self.private.public_key()
        if self.family in ("P-256", "P-384"):
            numbers = public.public_numbers()
            size = 32 if self.family == "P-256" else 48
            jwk = {
                "kty": "EC",
                "crv": self.family,
                "x": b64(numbers.x.to_bytes(size, "big")),
                "y": b64(numbers.y.to_bytes(size, "big")),
            }
        elif self.family == "Ed25519":
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
        else:
            numbers = public.public_numbers()
            jwk = {"kty": "RSA", "n": uint(numbers.n), "e": uint(numbers.e)}
        jwk.update({"kid": kid, "alg": alg})
        return jwk


def family(alg: str) -> str:
    return {"ES256": "P-256", "ES384": "P-384", "EdDSA": "Ed25519"}.get(alg, "RSA")


class Issuer:
    def __init__(self, iss: str, profile: str, alg: str, key: Key, kid: str = "k1", **settings):
        """`settings`: more fields of its configuration entry (`spiffe_subjects`, ...)."""
        self.iss, self.profile, self.alg, self.key, self.kid = iss, profile, alg, key, kid
        self.extra_keys = []
        self.settings = settings
        # An issuer that asserts SPIFFE IDs signs for one trust domain: the agent's.
        if profile == "jwt-svid" or settings.get("spiffe_subjects"):
            self.settings.setdefault("trust_domain", TRUST_DOMAIN)

    def entry(self) -> dict:
        keys = [self.key.jwk(self.kid, self.alg)] + [k.jwk(kid, self.alg) for kid, k in self.extra_keys]
        return {
            "issuer": self.iss,
            "profile": self.profile,
            "audiences": [AUDIENCE],
            "algorithms": [self.alg],
            "jwks": {"keys": keys},
            **self.settings,
        }

    def claims(self, **overrides) -> dict:
        sub = AGENT if self.profile in ("jwt-svid", "oidc", "access-token") else "user:alice"
        claims = {"iss": self.iss, "sub": sub, "aud": AUDIENCE, "iat": NOW, "exp": NOW + 240}
        if self.profile == "txn-token":
            claims.update({"txn": "txn-corpus", "req_wl": AGENT, "scope": "corpus"})
        for name, value in overrides.items():
            if value is DROP:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def default_typ(self):
        return {"access-token": "at+jwt", "txn-token": "txntoken+jwt"}.get(self.profile, "JWT")

    def mint(self, claims=None, headers=None, alg=None, key=None, typ="default") -> str:
        """A token signed by PyJWT. `typ=None` leaves the header parameter out."""
        header = {"kid": self.kid}
        # PyJWT leaves `typ` out when it is None.
        header["typ"] = self.default_typ() if typ == "default" else typ
        header.update(headers or {})
        for name in [n for n, v in header.items() if v is DROP]:
            del header[name]
        return jwt.encode(
            claims if claims is not None else self.claims(),
            (key or self.key).private,
            algorithm=alg or self.alg,
            headers=header,
        )


DROP = object()

# The weak-key case signs with RSA-1024 on purpose.
warnings.filterwarnings("ignore", message=".*RSA key is 1024 bits.*")


def raw(header: dict, payload_bytes: bytes, signature: bytes) -> str:
    return f"{b64_json(header)}.{b64(payload_bytes)}.{b64(signature)}"


def sign_raw(issuer: Issuer, header: dict, payload_bytes: bytes, key: Key = None) -> str:
    """Signs exact payload bytes (duplicate claims, odd JSON) with the issuer's algorithm."""
    signing_input = f"{b64_json(header)}.{b64(payload_bytes)}".encode()
    algorithm = jwt.get_algorithm_by_name(issuer.alg)
    private = (key or issuer.key).private
    signature = algorithm.sign(signing_input, algorithm.prepare_key(private))
    return f"{signing_input.decode()}.{b64(signature)}"


def sign_raw_header(issuer: Issuer, header_bytes: bytes, payload_bytes: bytes) -> str:
    """Signs exact header bytes (nesting, odd JSON) and payload bytes."""
    signing_input = f"{b64(header_bytes)}.{b64(payload_bytes)}".encode()
    algorithm = jwt.get_algorithm_by_name(issuer.alg)
    signature = algorithm.sign(signing_input, algorithm.prepare_key(issuer.key.private))
    return f"{signing_input.decode()}.{b64(signature)}"


def action_digest() -> str:
    """The digest Bridle binds an approval to, for `GET /approve` by AGENT (canonical JSON)."""
    action = {
        "agent": AGENT,
        "arguments": {},
        "host": HOST,
        "method": "GET",
        "path": APPROVE_PATH,
        "query": {},
        "task": None,
        "tool": None,
    }
    canonical = json.dumps(action, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


KEY_SET_ISSUER = f"spiffe://{TRUST_DOMAIN}"


def hostile_key_sets(weak: Key) -> dict:
    """Key set documents an issuer's endpoint might serve (`issuers[].jwks_source`), in the
    order a test serves them: each either replaces the issuer's keys (the key ids then in use,
    how many keys were ignored, a token one of them signed) or is refused (the last good keys
    stay)."""
    ec, rsa_key, spiffe_key, other_ec = Key("P-256"), Key("RSA"), Key("P-256"), Key("P-256")
    issuer = Issuer(KEY_SET_ISSUER, "jwt-svid", "ES256", ec, kid="ec-1")
    entry = issuer.entry()
    del entry["jwks"]
    entry["algorithms"] = ["ES256", "RS256"]
    entry["jwks_source"] = {"cluster": "bridle-control", "path": "/keys", "refresh_seconds": 10,
                            "min_refresh_seconds": 1, "max_staleness_seconds": 3600}

    def public(key: Key, kid: str, alg=None, **extra) -> dict:
        jwk = key.jwk(kid, alg or ("RS256" if key.family == "RSA" else "ES256"))
        if alg is None:
            del jwk["alg"]
        jwk.update(extra)
        return jwk

    def private(key: Key, kid: str) -> dict:
        jwk = public(key, kid)
        jwk["d"] = b64(key.private.private_numbers().private_value.to_bytes(32, "big"))
        return jwk

    def signed(key: Key, kid: str, alg="ES256") -> str:
        return issuer.mint(headers={"kid": kid}, key=key, alg=alg)

    documents = []

    def update(name, doc, kids, ignored, token):
        documents.append({"name": name, "document": json.dumps(doc), "expect": "update",
                          "kids": kids, "ignored": ignored, "token": token})

    def refuse(name, document: str):
        documents.append({"name": name, "document": document, "expect": "refuse"})

    update("jwks/ec-and-rsa", {"keys": [public(ec, "ec-1"), public(rsa_key, "rsa-1")]},
           ["ec-1", "rsa-1"], 0, signed(rsa_key, "rsa-1", "RS256"))
    p521 = ec_p521_public()
    update("spiffe-bundle/x509-keys-ignored", {
        "spiffe_sequence": 7, "spiffe_refresh_hint": 300,
        "keys": [public(spiffe_key, "svid-1", use="jwt-svid"),
                 public(other_ec, "x509-1", use="x509-svid", x5c=["MIIBcert"])]},
        ["svid-1"], 1, signed(spiffe_key, "svid-1"))
    ed = Key("Ed25519")
    update("jwks/unusable-keys-ignored", {"keys": [
        public(weak, "weak-rsa"),
        private(other_ec, "has-private-part"),
        {"kty": "oct", "kid": "hmac", "k": b64(b"secret-secret-secret")},
        public(ed, "ed25519"),
        p521,
        public(other_ec, "for-encryption", use="enc"),
        public(ec, "ec-2"),
        public(other_ec, "ec-2"),
        {"kty": "EC", "crv": "P-256", "kid": "off-curve", "x": b64(b"\x01" * 32), "y": b64(b"\x02" * 32)},
        "not an object",
    ]}, ["ec-2"], 9, signed(ec, "ec-2"))
    refuse("refuse/no-usable-key", json.dumps({"keys": [public(weak, "weak-rsa"), p521]}))
    refuse("refuse/empty", json.dumps({"keys": []}))
    refuse("refuse/not-an-object", json.dumps([public(ec, "ec-3")]))
    refuse("refuse/keys-not-an-array", json.dumps({"keys": public(ec, "ec-3")}))
    refuse("refuse/duplicate-member", '{"keys": [%s], "keys": []}' % json.dumps(public(ec, "ec-3")))
    refuse("refuse/truncated", json.dumps({"keys": [public(ec, "ec-3")]})[:-5])
    refuse("refuse/oversized", json.dumps({"keys": [public(ec, "ec-3")], "pad": "x" * 70000}))
    refuse("refuse/deeply-nested", "[" * 5000 + "]" * 5000)
    return {"issuer": entry, "documents": documents}


def ec_p521_public() -> dict:
    """A P-521 key: a curve Bridle does not support."""
    numbers = ec.generate_private_key(ec.SECP521R1()).public_key().public_numbers()
    return {"kty": "EC", "crv": "P-521", "kid": "p521",
            "x": b64(numbers.x.to_bytes(66, "big")), "y": b64(numbers.y.to_bytes(66, "big"))}


def main(out: str) -> None:
    keys = {alg: Key(family(alg)) for alg in ALGS}
    workload = []
    for alg in ALGS:
        workload.append(Issuer(f"https://oidc-{alg.lower()}.corpus.test", "oidc", alg, keys[alg]))
        if alg != "EdDSA":  # JWT-SVIDs are never EdDSA
            workload.append(Issuer(f"https://svid-{alg.lower()}.corpus.test", "jwt-svid", alg, keys[alg]))
    for alg in ["ES256", "RS256", "EdDSA", "PS384"]:
        workload.append(Issuer(f"https://at-{alg.lower()}.corpus.test", "access-token", alg, keys[alg]))
    multi = Issuer("https://multi.corpus.test", "jwt-svid", "ES256", Key("P-256"), kid="a")
    multi.extra_keys.append(("b", Key("P-256")))
    workload.append(multi)
    # A token-exchange service (RFC 8693): its credentials for a user name the agent acting for
    # her in `act`, and it may assert the agent's SPIFFE ID.
    sts = Issuer("https://sts.corpus.test", "access-token", "ES256", Key("P-256"), kid="sts", spiffe_subjects=True)
    workload.append(sts)
    # Its tokens may live five minutes at most (`exp` - `iat`), so each must say when it was issued.
    short = Issuer("https://short-lived.corpus.test", "oidc", "ES384", Key("P-384"), kid="short", max_lifetime_seconds=300)
    workload.append(short)
    by_iss = {i.iss: i for i in workload}
    svid = by_iss["https://svid-es256.corpus.test"]
    svid_rsa = by_iss["https://svid-rs256.corpus.test"]
    oidc = by_iss["https://oidc-eddsa.corpus.test"]
    at = by_iss["https://at-es256.corpus.test"]

    tasks = [
        Issuer("https://txn-es256.corpus.test", "txn-token", "ES256", Key("P-256")),
        Issuer("https://txn-ps256.corpus.test", "txn-token", "PS256", keys["PS256"]),
    ]
    approvals = [
        Issuer("https://approvals-es384.corpus.test", "approval", "ES384", Key("P-384")),
        Issuer("https://approvals-eddsa.corpus.test", "approval", "EdDSA", keys["EdDSA"]),
    ]

    cases = []

    def case(name, slot, token, expect, reason=None):
        cases.append({"name": name, "slot": slot, "token": token, "expect": expect, "reason": reason})

    def accept(name, token, slot="workload"):
        case(name, slot, token, "accept")

    def refuse(name, token, reason, slot="workload"):
        case(name, slot, token, "refuse", reason)

    # --- valid tokens: every algorithm and profile -------------------------------------------
    for issuer in workload:
        accept(f"valid/{issuer.profile}/{issuer.alg}/{issuer.kid}", issuer.mint())
    accept("valid/multi-key/second-kid", multi.mint(key=multi.extra_keys[0][1], headers={"kid": "b"}))
    accept("valid/svid/typ-JOSE", svid.mint(typ="JOSE"))
    accept("valid/svid/no-typ", svid.mint(typ=None))
    accept("valid/svid/no-kid-single-key", svid.mint(headers={"kid": DROP}))
    accept("valid/svid/aud-array", svid.mint(svid.claims(aud=["other", AUDIENCE])))
    accept("valid/svid/expired-within-skew", svid.mint(svid.claims(exp=NOW - 10)))
    accept("valid/svid/nbf-past", svid.mint(svid.claims(nbf=NOW - 60)))
    accept("valid/at/typ-application", at.mint(typ="application/at+jwt"))
    accept("valid/oidc/plain-subject", oidc.mint(oidc.claims(sub="alice@example.com")))
    for issuer in tasks:
        accept(f"valid/txn-token/{issuer.alg}", issuer.mint(), slot="task")
    digest = action_digest()
    for n, issuer in enumerate(approvals):
        claims = issuer.claims(sub="approver:bob", action_digest=digest, jti=f"corpus-approval-{n}")
        accept(f"valid/approval/{issuer.alg}", issuer.mint(claims, typ="approval+jwt"), slot="approval")

    # --- alg none and algorithm confusion ----------------------------------------------------
    payload = json.dumps(svid.claims()).encode()
    refuse("alg-none/empty-signature", raw({"alg": "none", "typ": "JWT"}, payload, b""), "malformed")
    real_sig = svid.mint().split(".")[2]
    for variant in ["none", "None", "NONE", "nOnE"]:
        header = b64_json({"alg": variant, "typ": "JWT", "kid": "k1"})
        refuse(f"alg-none/{variant}-with-signature", f"{header}.{b64(payload)}.{real_sig}", "algorithm")
    for hs in ["HS256", "HS384", "HS512"]:
        digestmod = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[hs]
        for target, secret_name, secret in [
            (svid_rsa, "rsa-pem", svid_rsa.key.public_pem()),
            (svid_rsa, "rsa-jwk", json.dumps(svid_rsa.entry()["jwks"]["keys"][0]).encode()),
            (svid, "ec-pem", svid.key.public_pem()),
        ]:
            header = {"alg": hs, "typ": "JWT", "kid": target.kid}
            signing_input = f"{b64_json(header)}.{b64(json.dumps(target.claims()).encode())}"
            mac = hmac.new(secret, signing_input.encode(), digestmod).digest()
            refuse(f"alg-confusion/{hs}-{secret_name}", f"{signing_input}.{b64(mac)}", "algorithm")
    refuse("alg-confusion/PS256-on-RS256-issuer", svid_rsa.mint(alg="PS256"), "algorithm")
    refuse("alg-confusion/ES384-header-ES256-issuer", svid.mint(alg="ES384", key=keys["ES384"]), "algorithm")
    refuse("alg-confusion/EdDSA-on-svid", svid.mint(alg="EdDSA", key=keys["EdDSA"]), "algorithm")
    refuse("alg-confusion/unknown-alg", sign_raw(svid, {"alg": "ES256K", "kid": "k1"}, payload), "algorithm")

    # --- kid ----------------------------------------------------------------------------------
    refuse("kid/unknown", svid.mint(headers={"kid": "k2"}), "unknown_key")
    refuse("kid/missing-several-keys", multi.mint(headers={"kid": DROP}), "missing_kid")
    for name, kid in [
        ("path-traversal", "../../../../dev/null"),
        ("sql", "k1' OR '1'='1"),
        ("control-chars", "k1\r\nx-injected: 1"),
        ("empty", ""),
        ("long", "k" * 600),
        ("url", "https://attacker.example/jwks.json"),
    ]:
        refuse(f"kid/injected-{name}", svid.mint(headers={"kid": kid}), "unknown_key")
    refuse("kid/number", sign_raw(svid, {"alg": "ES256", "kid": 1}, payload), "malformed")
    refuse("kid/other-issuers-kid", svid.mint(key=multi.key, headers={"kid": "a"}), "unknown_key")

    # --- time ---------------------------------------------------------------------------------
    refuse("time/expired", svid.mint(svid.claims(exp=NOW - 3600, iat=NOW - 7200)), "expired")
    refuse("time/expired-just-past-skew", svid.mint(svid.claims(exp=NOW - CLOCK_SKEW - 90)), "expired")
    refuse("time/not-yet-valid", svid.mint(svid.claims(nbf=NOW + 3600)), "not_yet_valid")
    refuse("time/issued-in-future", svid.mint(svid.claims(iat=NOW + 3600, exp=NOW + 7200)), "future_iat")
    refuse("time/missing-exp", svid.mint(svid.claims(exp=DROP)), "missing_exp")
    for name, value in [("string", str(NOW + 300)), ("float", NOW + 300.5), ("negative", -1),
                        ("bool", True), ("null", None), ("object", {"t": NOW + 300})]:
        refuse(f"time/exp-{name}", svid.mint(svid.claims(exp=value)), "bad_claims")
    refuse("time/nbf-string", svid.mint(svid.claims(nbf="0")), "bad_claims")
    refuse("time/iat-string", svid.mint(svid.claims(iat="0")), "bad_claims")

    # --- issuer and audience -------------------------------------------------------------------
    refuse("iss/untrusted", svid.mint(svid.claims(iss="https://evil.corpus.test")), "untrusted_issuer")
    refuse("iss/trailing-slash", svid.mint(svid.claims(iss=svid.iss + "/")), "untrusted_issuer")
    refuse("iss/case", svid.mint(svid.claims(iss=svid.iss.upper())), "untrusted_issuer")
    refuse("iss/homoglyph", svid.mint(svid.claims(iss=svid.iss.replace("e", "\u0435", 1))), "untrusted_issuer")
    refuse("iss/other-trusted-issuer-signed-by-this-key", svid.mint(svid.claims(iss=svid_rsa.iss)), "algorithm")
    refuse("iss/missing", svid.mint(svid.claims(iss=DROP)), "bad_claims")
    refuse("iss/array", sign_raw(svid, {"alg": "ES256", "kid": "k1"}, json.dumps(svid.claims(iss=[svid.iss])).encode()), "bad_claims")
    refuse("aud/wrong", svid.mint(svid.claims(aud="other-gateway")), "wrong_audience")
    refuse("aud/array-without-ours", svid.mint(svid.claims(aud=["a", "b"])), "wrong_audience")
    refuse("aud/empty-array", svid.mint(svid.claims(aud=[])), "audience")
    refuse("aud/missing", svid.mint(svid.claims(aud=DROP)), "missing_audience")
    refuse("aud/prefix", svid.mint(svid.claims(aud=AUDIENCE + "-x")), "wrong_audience")
    refuse("sub/not-spiffe", svid.mint(svid.claims(sub="research-bot")), "not_spiffe")
    refuse("sub/missing-svid", svid.mint(svid.claims(sub=DROP)), "not_spiffe")
    refuse("sub/spiffe-traversal", svid.mint(svid.claims(sub="spiffe://corpus.bridle.test/agent/../admin")), "not_spiffe")

    # --- trust domains: an issuer asserts SPIFFE IDs of its own trust domain only ------------
    other_domain = "spiffe://other.corpus.test/agent/corpus-bot"
    lookalike = f"spiffe://{TRUST_DOMAIN}.evil.example/agent/corpus-bot"
    refuse("trust-domain/svid-sub-other-domain", svid.mint(svid.claims(sub=other_domain)), "trust_domain")
    refuse("trust-domain/svid-sub-lookalike", svid.mint(svid.claims(sub=lookalike)), "trust_domain")
    refuse("trust-domain/svid-rs256-sub-other-domain", svid_rsa.mint(svid_rsa.claims(sub=other_domain)), "trust_domain")
    refuse("trust-domain/sts-sub-other-domain", sts.mint(sts.claims(sub=other_domain)), "trust_domain")

    # --- delegated credentials (RFC 8693): the caller is the current actor, `act.sub` ---------
    accept("delegated/sts-act-agent", sts.mint(sts.claims(sub="user:alice", act={"sub": AGENT})))
    accept("delegated/sts-act-agent-may-act", sts.mint(sts.claims(sub="user:alice", act={"sub": AGENT}, may_act={"sub": AGENT})))
    # An issuer that asserts no SPIFFE IDs: its actor is a name like any subject.
    accept("delegated/oidc-act-agent", oidc.mint(oidc.claims(sub="user:alice", act={"sub": AGENT})))
    accept("delegated/oidc-act-name", oidc.mint(oidc.claims(sub="user:alice", act={"sub": "research-assistant"})))
    refuse("delegated/sts-actor-other-domain", sts.mint(sts.claims(sub="user:alice", act={"sub": other_domain})), "trust_domain")
    refuse("delegated/sts-actor-lookalike", sts.mint(sts.claims(sub="user:alice", act={"sub": lookalike})), "trust_domain")
    refuse("delegated/svid-actor-other-domain", svid.mint(svid.claims(act={"sub": other_domain})), "trust_domain")
    # A name that claims the `spiffe` scheme but does not parse is refused, never read as a
    # plain name (which would skip the trust-domain check); a JWT-SVID's actor is a SPIFFE ID.
    for label, actor in [
        ("upper-case-domain", "spiffe://OTHER.corpus.test/agent/corpus-bot"),
        ("trailing-slash", f"spiffe://{TRUST_DOMAIN}/agent/corpus-bot/"),
        ("dot-segment", f"spiffe://{TRUST_DOMAIN}/agent/../corpus-bot"),
        ("upper-case-scheme", f"SPIFFE://{TRUST_DOMAIN}/agent/corpus-bot"),
        ("percent-encoded", f"spiffe://{TRUST_DOMAIN}/agent/%41"),
    ]:
        refuse(f"delegated/sts-actor-unparsable-{label}", sts.mint(sts.claims(sub="user:alice", act={"sub": actor})), "not_spiffe")
    refuse("delegated/sts-sub-unparsable", sts.mint(sts.claims(sub="Spiffe:other.corpus.test")), "not_spiffe")
    refuse("delegated/svid-actor-plain-name", svid.mint(svid.claims(act={"sub": "corpus-bot"})), "not_spiffe")

    # --- per-issuer lifetime: `max_lifetime_seconds: 300` on the short-lived issuer -----------
    accept("lifetime/within-issuer-max", short.mint(short.claims(iat=NOW - 60, exp=NOW + 200)))
    accept("lifetime/at-issuer-max", short.mint(short.claims(iat=NOW - 60, exp=NOW + 240)))
    refuse("lifetime/over-issuer-max", short.mint(short.claims(iat=NOW - 61, exp=NOW + 240)), "standing")
    refuse("lifetime/over-issuer-max-day", short.mint(short.claims(exp=NOW + 86400)), "standing")
    refuse("lifetime/no-iat", short.mint(short.claims(iat=DROP)), "missing_iat")
    # Another issuer without the setting: a long-lived token is its own business.
    accept("lifetime/other-issuer-unbounded", oidc.mint(oidc.claims(exp=NOW + 86400)))

    # --- tampering and foreign signatures ------------------------------------------------------
    good = svid.mint()
    h, p, s = good.split(".")
    evil = b64_json(svid.claims(sub="spiffe://corpus.bridle.test/agent/admin"))
    refuse("tamper/payload", f"{h}.{evil}.{s}", "bad_signature")
    sig = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    sig[len(sig) // 2] ^= 1
    refuse("tamper/signature-bit", f"{h}.{p}.{b64(bytes(sig))}", "bad_signature")
    refuse("tamper/signature-zero", f"{h}.{p}.{b64(bytes(len(sig)))}", "bad_signature")
    refuse("tamper/header-typ", f"{b64_json({'alg': 'ES256', 'kid': 'k1', 'typ': 'JOSE'})}.{p}.{s}", "bad_signature")
    for alg in ["ES256", "RS256", "EdDSA", "PS512"]:
        issuer = by_iss[f"https://oidc-{alg.lower()}.corpus.test"]
        refuse(f"foreign-key/same-kid-{alg}", issuer.mint(key=Key(family(alg))), "bad_signature")
    weak = Key("RSA", rsa_bits=1024)
    refuse("weak-rsa/1024-bit-signer-same-kid", svid_rsa.mint(key=weak), "bad_signature")
    der = svid.key.private.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))
    refuse("ecdsa/der-signature", f"{h}.{p}.{b64(der)}", "bad_signature")
    rs_h, rs_p, _ = svid_rsa.mint().split(".")
    pkcs1_over_pss = keys["RS256"].private.sign(f"{rs_h}.{rs_p}".encode(), padding.PSS(
        mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    refuse("rsa/pss-signature-under-rs256", f"{rs_h}.{rs_p}.{b64(pkcs1_over_pss)}", "bad_signature")

    # --- structure and encoding -----------------------------------------------------------------
    refuse("structure/two-segments", f"{h}.{p}", "malformed")
    refuse("structure/four-segments", f"{good}.{s}", "malformed")
    refuse("structure/five-segments-jwe", f"{h}.{p}.{p}.{p}.{s}", "malformed")
    refuse("structure/empty-signature", f"{h}.{p}.", "malformed")
    refuse("structure/empty-payload", f"{h}..{s}", "malformed")
    refuse("structure/truncated-signature", good[:-8], "signature")
    refuse("structure/one-char-cut", good[:-1], "signature")
    refuse("encoding/padding", f"{h}.{p}.{s}==", "malformed")
    refuse("encoding/padding-payload", f"{h}.{p}=.{s}", "malformed")
    refuse("encoding/standard-base64", f"{h}.{p}.{s.replace('-', '+').replace('_', '/')}+/", "malformed")
    refuse("encoding/star", f"{h}.{p}*.{s}", "malformed")
    refuse("encoding/percent", f"{h}.%7B%7D.{s}", "malformed")
    for name, body in [("array", b"[]"), ("string", b'"x"'), ("number", b"12"), ("null", b"null"),
                       ("not-json", b"not json"), ("truncated-json", b'{"iss":'),
                       ("trailing-data", json.dumps(svid.claims()).encode() + b"{}"),
                       ("invalid-utf8", b'{"iss":"\xff"}')]:
        refuse(f"payload/{name}", sign_raw(svid, {"alg": "ES256", "kid": "k1"}, body), "malformed")
    refuse("header/array", f"{b64(b'[]')}.{p}.{s}", "malformed")
    # RFC 7515: the header is a JSON object. serde's derive also reads an array as the fields in
    # order (`alg`, `kid`, `typ`): these are signed by the trusted key and must still be refused.
    refuse("header/array-form", sign_raw_header(svid, json.dumps(["ES256", "k1"]).encode(), payload), "malformed")
    refuse("header/array-form-with-typ", sign_raw_header(svid, json.dumps(["ES256", "k1", "JWT"]).encode(), payload), "malformed")
    refuse("header/no-alg", sign_raw(svid, {"kid": "k1"}, payload), "malformed")
    refuse("header/alg-number", sign_raw(svid, {"alg": 256, "kid": "k1"}, payload), "malformed")

    # duplicate claims: parsers disagree on which copy wins, so neither may be read
    body = json.dumps(svid.claims())[:-1]
    dup_sub = (body + ', "sub": "spiffe://corpus.bridle.test/agent/admin"}').encode()
    refuse("duplicate/sub", sign_raw(svid, {"alg": "ES256", "kid": "k1", "typ": "JWT"}, dup_sub), "duplicate")
    dup_iss = (body + f', "iss": "{svid_rsa.iss}"}}').encode()
    refuse("duplicate/iss", sign_raw(svid, {"alg": "ES256", "kid": "k1", "typ": "JWT"}, dup_iss), "duplicate")
    dup_exp = (body + f', "exp": {NOW + 10**8}}}').encode()
    refuse("duplicate/exp", sign_raw(svid, {"alg": "ES256", "kid": "k1", "typ": "JWT"}, dup_exp), "duplicate")
    dup_header = b64(b'{"alg":"ES256","kid":"k1","alg":"none"}')
    refuse("duplicate/header-alg", f"{dup_header}.{p}.{s}", "malformed")

    # size and depth
    refuse("size/oversized-token", svid.mint(svid.claims(pad="x" * 9000)), "too_large")
    refuse("size/oversized-header", svid.mint(headers={"x-pad": "y" * 1100}), "malformed")
    deep = {"iss": svid.iss, "sub": AGENT, "aud": AUDIENCE, "exp": NOW + 240, "iat": NOW}
    nested = "[" * 1500 + "]" * 1500
    deep_body = json.dumps(deep)[:-1] + f', "deep": {nested}}}'
    refuse("depth/nested-arrays-1500", sign_raw(svid, {"alg": "ES256", "kid": "k1"}, deep_body.encode()), "malformed")
    nested_obj = '{"a":' * 200 + "1" + "}" * 200
    deep_obj = json.dumps(deep)[:-1] + f', "deep": {nested_obj}}}'
    refuse("depth/nested-objects-200", sign_raw(svid, {"alg": "ES256", "kid": "k1"}, deep_obj.encode()), "malformed")
    deep_header = ('{"alg":"ES256","kid":"k1","x":' + "[" * 300 + "]" * 300 + "}").encode()
    refuse("depth/nested-header", sign_raw_header(svid, deep_header, payload), "malformed")

    # --- header parameters: crit, key sources, typ --------------------------------------------
    refuse("crit/unknown-extension", svid.mint(headers={"crit": ["x-bridle-unknown"], "x-bridle-unknown": 1}), "critical")
    refuse("crit/b64-false", sign_raw(svid, {"alg": "ES256", "kid": "k1", "crit": ["b64"], "b64": False}, payload), "critical")
    refuse("crit/null", sign_raw(svid, {"alg": "ES256", "kid": "k1", "crit": None}, payload), "critical")
    refuse("crit/empty", svid.mint(headers={"crit": []}), "critical")
    attacker = Key("P-256")
    refuse("key-source/jku", svid.mint(headers={"jku": "https://attacker.example/jwks.json"}), "forbidden_header")
    refuse("key-source/x5u", svid.mint(headers={"x5u": "https://attacker.example/cert.pem"}), "forbidden_header")
    refuse("key-source/embedded-jwk", svid.mint(key=attacker, headers={"jwk": attacker.jwk("k1", "ES256")}), "forbidden_header")
    refuse("key-source/x5c", svid.mint(headers={"x5c": ["MIIB"]}), "forbidden_header")
    refuse("key-source/jku-null", svid.mint(headers={"jku": None}), "forbidden_header")
    refuse("key-source/jwk-null", svid.mint(headers={"jwk": None}), "forbidden_header")
    refuse("typ/at+jwt-on-svid", svid.mint(typ="at+jwt"), "wrong_type")
    refuse("typ/txntoken-on-oidc", oidc.mint(typ="txntoken+jwt"), "wrong_type")
    refuse("typ/JWT-on-access-token", at.mint(typ="JWT"), "wrong_type")
    refuse("typ/missing-on-access-token", at.mint(typ=None), "wrong_type")
    refuse("typ/number", sign_raw(svid, {"alg": "ES256", "kid": "k1", "typ": 1}, payload), "malformed")

    # --- task (txn-token) and approval profiles -------------------------------------------------
    txn = tasks[0]
    accept_task_claims = txn.claims()
    refuse("task/typ-JWT", txn.mint(typ="JWT"), "wrong_type", slot="task")
    refuse("task/missing-txn", txn.mint(txn.claims(txn=DROP)), "missing_claim", slot="task")
    refuse("task/standing-lifetime", txn.mint(txn.claims(exp=NOW + 3600)), "standing", slot="task")
    refuse("task/workload-token-as-task", svid.mint(), "untrusted_issuer", slot="task")
    refuse("task/alg-none", raw({"alg": "none", "typ": "txntoken+jwt"}, json.dumps(accept_task_claims).encode(), b""), "malformed", slot="task")
    refuse("task/foreign-key", txn.mint(key=Key("P-256")), "bad_signature", slot="task")
    appr = approvals[0]
    good_approval = appr.claims(sub="approver:bob", action_digest=digest, jti="corpus-approval-x")
    refuse("approval/other-action", appr.mint(appr.claims(sub="approver:bob", action_digest="0" * 64, jti="a1")), "other_action", slot="approval")
    refuse("approval/no-jti", appr.mint(appr.claims(sub="approver:bob", action_digest=digest)), "approval_jti", slot="approval")
    refuse("approval/standing-lifetime", appr.mint(dict(good_approval, exp=NOW + 3000)), "standing", slot="approval")
    refuse("approval/foreign-key", appr.mint(good_approval, key=Key("P-384")), "bad_signature", slot="approval")
    refuse("approval/expired", appr.mint(dict(good_approval, iat=NOW - CLOCK_SKEW - 400, exp=NOW - CLOCK_SKEW - 200)), "expired", slot="approval")
    refuse("approval/workload-token", svid.mint(), "untrusted_issuer", slot="approval")

    # --- revocation by `jti`: the raw claim is compared, whatever its length or characters ------
    long_jti = "revoked-" + "x" * 92
    revoked_jti = [long_jti, "corpus-revoked"]
    refuse("revocation/long-jti", svid.mint(svid.claims(jti=long_jti)), "revoked")
    refuse("revocation/jti", svid.mint(svid.claims(jti="corpus-revoked")), "revoked")
    # Not the revoked `corpus-revoked`: a control character makes it another `jti`.
    accept("revocation/jti-with-control-character", svid.mint(svid.claims(jti="corpus-\u0007revoked")))
    refuse("revocation/long-jti-task", txn.mint(txn.claims(jti=long_jti)), "revoked", slot="task")

    cases = [c for c in cases if c["token"]]
    key_sets = hostile_key_sets(weak)
    corpus = {
        "generator": f"PyJWT {jwt.__version__}",
        "now": NOW,
        "clock_skew_seconds": CLOCK_SKEW,
        "audience": AUDIENCE,
        "agent": AGENT,
        "host": HOST,
        "approve_path": APPROVE_PATH,
        "action_digest": digest,
        "issuers": [i.entry() for i in workload],
        "task_issuers": [i.entry() for i in tasks],
        "approval_issuers": [i.entry() for i in approvals],
        "revoked_jti": revoked_jti,
        "weak_rsa_issuer": Issuer("https://weak.corpus.test", "oidc", "RS256", weak).entry(),
        "cases": cases,
        "key_sets": key_sets,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(corpus, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
