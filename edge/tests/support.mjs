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

export async function es256Issuer(iss, kid = "edge-1") {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  return {
    iss,
    kid,
    jwk: { kty: "EC", crv: "P-256", kid, x: jwk.x, y: jwk.y },
    async mint(claims, header = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload = { iss, iat: now, exp: now + 300, ...claims };
      const signingInput = `${enc({ alg: "ES256", kid, ...header })}.${enc(payload)}`;
      const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, new TextEncoder().encode(signingInput));
      return `${signingInput}.${b64url(new Uint8Array(sig))}`;
    },
  };
}

export function agentsConfig(issuer, environment = "prod", extra = {}) {
  const policyDir = join(root, "policies", "agents");
  return {
    issuers: [{ issuer: issuer.iss, profile: "jwt-svid", audiences: ["bridle-gateway"], algorithms: ["ES256"], jwks: { keys: [issuer.jwk] } }],
    policy: {
      entrypoint: "data.bridle.agents.decision",
      modules: [{ name: "agents.rego", source: readFileSync(join(policyDir, "agents.rego"), "utf8") }],
      data: JSON.parse(readFileSync(join(policyDir, "data.json"), "utf8")),
    },
    environment: { name: environment },
    ...extra,
  };
}
