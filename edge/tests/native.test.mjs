// Web Crypto signature checks against the core's own: on the same tokens, good and bad, for
// every algorithm family, both paths must give the same answer; and Web Crypto must really
// have been used.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Authorizer, initBridle } from "../bridle.mjs";
import { issuer, wasmBytes } from "./support.mjs";

initBridle(wasmBytes());
const AGENT = "spiffe://demo.bridle.dev/agent/research-bot";
const ALGS = ["ES256", "ES384", "RS256", "PS256", "EdDSA"];
const b64url = (text) => Buffer.from(text).toString("base64url");

function config(issuers) {
  return {
    issuers: issuers.map((i) => ({ issuer: i.iss, profile: "oidc", audiences: ["gw"], algorithms: [i.alg], jwks: { keys: [i.jwk] } })),
    policy: { entrypoint: "data.t.decision", modules: [{ name: "t.rego", source: "package t\nimport rego.v1\ndecision := {\"allow\": input.identity.subject == \"spiffe://demo.bridle.dev/agent/research-bot\"}" }] },
  };
}

/** Good and bad tokens of one issuer, each with what it is. */
async function tokens(signer, impostor) {
  const good = await signer.mint({ sub: AGENT, aud: "gw" });
  const [header, payload, signature] = good.split(".");
  const tampered = JSON.parse(Buffer.from(payload, "base64url"));
  tampered.sub = "spiffe://demo.bridle.dev/agent/deploy-bot";
  const now = Math.floor(Date.now() / 1000);
  return [
    ["valid", good],
    ["another subject", await signer.mint({ sub: "spiffe://demo.bridle.dev/agent/other", aud: "gw" })],
    ["same kid, other key", await impostor.mint({ sub: AGENT, aud: "gw" })],
    ["tampered payload", `${header}.${b64url(JSON.stringify(tampered))}.${signature}`],
    ["truncated signature", `${header}.${payload}.${signature.slice(0, 20)}`],
    ["signature of zeros", `${header}.${payload}.${b64url("\0".repeat(64))}`],
    ["expired", await signer.mint({ sub: AGENT, aud: "gw", iat: now - 900, exp: now - 600 })],
    ["wrong audience", await signer.mint({ sub: AGENT, aud: "elsewhere" })],
  ];
}

test("Web Crypto and the core agree on every token, for every algorithm", async () => {
  const signers = [];
  const impostors = [];
  for (const alg of ALGS) {
    signers.push(await issuer(alg, `https://${alg.toLowerCase()}.example`, "k1"));
    impostors.push(await issuer(alg, `https://${alg.toLowerCase()}.example`, "k1"));
  }
  const native = new Authorizer(config(signers));
  const core = new Authorizer(config(signers), { nativeSignatures: false });
  const verify = crypto.subtle.verify.bind(crypto.subtle);
  let nativeChecks = 0;
  crypto.subtle.verify = (...args) => {
    nativeChecks += 1;
    return verify(...args);
  };
  try {
    for (const [index, alg] of ALGS.entries()) {
      for (const [what, token] of await tokens(signers[index], impostors[index])) {
        const request = () => new Request("https://api.internal/", { headers: { authorization: `Bearer ${token}` } });
        const a = await native.decide(request());
        const b = await core.decide(request());
        assert.ok("decision" in a, `${alg} ${what}: ${JSON.stringify(a)}`);
        assert.deepEqual([a.decision, a.status, a.reasons], [b.decision, b.status, b.reasons], `${alg} ${what}`);
        if (what === "valid") assert.equal(a.decision, "allow", `${alg}: ${a.reasons}`);
        if (what !== "valid" && what !== "another subject") assert.equal(a.status, 401, `${alg} ${what}`);
      }
    }
  } finally {
    crypto.subtle.verify = verify;
  }
  // Every signature the core would have checked went to Web Crypto: per algorithm, the two
  // good-key tokens and the four bad signatures; expired and wrong-audience never got that far.
  assert.equal(nativeChecks, ALGS.length * 6);
  native.free();
  core.free();
});
