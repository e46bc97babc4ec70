#!/usr/bin/env python3
"""Builds a signed policy bundle in OPA's layout with an independent stack (Python's tarfile
and gzip, PyJWT), so Bridle's reader is not checked against its own writer.

Reads a JSON spec on stdin, writes the .tar.gz to stdout:

  {"key_pem": "...PKCS#8 EC P-256 private key...", "kid": "bundle-1",
   "files": {"policy/main.rego": "...", "data.json": "...", ".manifest": "..."},
   "unsigned": {...},   # put in the archive, left out of the signature
   "tamper": {...},     # signed with the "files" content, archived with this content
   "drop": ["name"],    # signed, left out of the archive
   "scope": "prod",     # optional `scope` claim
   "iat": 1700000000,   # the signature's `iat` (default: now; null: left out)
   "no_signature": false}

File hashes follow OPA: SHA-256 over the bytes, except JSON files and `.manifest`, hashed over
their canonical form (keys sorted, no whitespace).
"""
import gzip
import hashlib
import io
import json
import sys
import tarfile
import time

import jwt


def canonical(text):
    value = json.loads(text)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def file_hash(name, content):
    base = name.rsplit("/", 1)[-1]
    data = content.encode()
    if base.endswith(".json") or base == ".manifest":
        data = canonical(content)
    return hashlib.sha256(data).hexdigest()


def main():
    spec = json.load(sys.stdin)
    files = dict(spec.get("files", {}))
    archived = {**files, **spec.get("tamper", {}), **spec.get("unsigned", {})}
    for name in spec.get("drop", []):
        archived.pop(name, None)
    if not spec.get("no_signature"):
        claims = {
            "files": [
                {"name": name, "hash": file_hash(name, content), "algorithm": "SHA-256"}
                for name, content in sorted(files.items())
            ]
        }
        if spec.get("scope") is not None:
            claims["scope"] = spec["scope"]
        iat = spec.get("iat", int(time.time()))
        if iat is not None:
            claims["iat"] = iat
        token = jwt.encode(claims, spec["key_pem"], algorithm="ES256", headers={"kid": spec["kid"]})
        archived[".signatures.json"] = json.dumps({"signatures": [token]})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in archived.items():
            data = content.encode()
            info = tarfile.TarInfo("/" + name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    sys.stdout.buffer.write(gzip.compress(raw.getvalue()))


if __name__ == "__main__":
    main()
