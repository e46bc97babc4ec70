// Shared by the edge tests: load the module, mint tokens with Web Crypto, build configurations
// from the shipped policy.
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export function wasmBytes() {
  return readFileSync(join(root, "edge", "pkg", "bridle_web_bg.wasm"));
}

const b64url = (bytes) => Buffer.from(bytes).toString("base64url");
const enc = (value) => b64url(new TextEncoder().encode(JSON.stringify(value)));

const ALGORITHMS = {
  ES256: {
    generate: { name: "ECDSA", namedCurve: "P-256" },
    sign: { name: "ECDSA", hash: "SHA-256" },
    jwk: (k, kid) => ({ kty: "EC", crv: "P-256", kid, x: k.x, y: k.y }),
  },
  ES384: {
    generate: { name: "ECDSA", namedCurve: "P-384" },
    sign: { name: "ECDSA", hash: "SHA-384" },
    jwk: (k, kid) => ({ kty: "EC", crv: "P-384", kid, x: k.x, y: k.y }),
  },
  RS256: {
    generate: { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    sign: { name: "RSASSA-PKCS1-v1_5" },
    jwk: (k, kid) => ({ kty: "RSA", kid, n: k.n, e: k.e }),
  },
  PS256: {
    generate: { name: "RSA-PSS", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    sign: { name: "RSA-PSS", saltLength: 32 },
    jwk: (k, kid) => ({ kty: "RSA", kid, n: k.n, e: k.e }),
  },
  EdDSA: {
    generate: { name: "Ed25519" },
    sign: { name: "Ed25519" },
    jwk: (k, kid) => ({ kty: "OKP", crv: "Ed25519", kid, x: k.x }),
  },
};

/** A JWT issuer with a fresh Web Crypto key pair (ES256, ES384, RS256, PS256 or EdDSA). */
export async function issuer(alg, iss, kid = "edge-1") {
  const spec = ALGORITHMS[alg];
  const pair = await crypto.subtle.generateKey(spec.generate, true, ["sign", "verify"]);
  return {
    iss,
    kid,
    alg,
    publicKey: pair.publicKey,
    jwk: spec.jwk(await crypto.subtle.exportKey("jwk", pair.publicKey), kid),
    async mint(claims, header = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload = { iss, iat: now, exp: now + 300, ...claims };
      const signingInput = `${enc({ alg, kid, ...header })}.${enc(payload)}`;
      const sig = await crypto.subtle.sign(spec.sign, pair.privateKey, new TextEncoder().encode(signingInput));
      return `${signingInput}.${b64url(new Uint8Array(sig))}`;
    },
  };
}

export const es256Issuer = (iss, kid) => issuer("ES256", iss, kid);

/** `Authorization: Bearer …` for `sub`, minted by `issuer` for the demo gateway audience. */
export async function bearerFrom(issuer, sub, claims = {}) {
  return `Bearer ${await issuer.mint({ sub, aud: "bridle-gateway", ...claims })}`;
}

/**
 * Credentials every runtime must refuse with 401, as [authorization header or null, reason]:
 * none, expired (from the trusted `issuer`), signed by an unknown key under the same issuer
 * name, and not a JWT.
 */
export async function badCredentials(issuer, sub) {
  const forger = await es256Issuer(issuer.iss, issuer.kid);
  return [
    [null, "no credential in header `authorization`"],
    [await bearerFrom(issuer, sub, { exp: Math.floor(Date.now() / 1000) - 3600 }), "token has expired"],
    [await bearerFrom(forger, sub), "token signature does not verify"],
    ["Bearer not.a.jwt", "token malformed: a segment is not base64url without padding"],
  ];
}

export function agentsConfig(issuer, environment = "prod", extra = {}) {
  const policyDir = join(root, "policies", "agents");
  return {
    issuers: [{ issuer: issuer.iss, profile: "jwt-svid", trust_domain: "demo.bridle.dev", audiences: ["bridle-gateway"], algorithms: [issuer.alg ?? "ES256"], jwks: { keys: [issuer.jwk] } }],
    policy: {
      entrypoint: "data.bridle.agents.decision",
      modules: [{ name: "agents.rego", source: readFileSync(join(policyDir, "agents.rego"), "utf8") }],
      data: JSON.parse(readFileSync(join(policyDir, "data.json"), "utf8")),
    },
    environment: { name: environment },
    ...extra,
  };
}
