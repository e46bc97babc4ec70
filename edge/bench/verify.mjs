// Measures token signature verification in the edge build, in Node: the pure-Rust verifier
// inside the wasm module against the runtime's Web Crypto, for ES256 and RS256, and the whole
// decision on a new token both ways (`nativeSignatures: false` and the default, Web Crypto).
//
//   node edge/bench/verify.mjs          (N=400 tokens per round, 5 rounds, medians)
//
// The wasm cost is isolated as (decide on N first-seen tokens) − (decide on one token N times):
// the core caches verified tokens, so the difference is parsing plus the signature check of a
// new token. Web Crypto is timed on the same tokens: `crypto.subtle.verify` with the key
// imported once, awaited one at a time as a request path would.
import { Authorizer, initBridle } from "../bridle.mjs";
import { agentsConfig, issuer, wasmBytes } from "../tests/support.mjs";

const N = Number(process.env.N ?? 400);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const AGENT = "spiffe://demo.bridle.dev/agent/research-bot";
const WEB = { ES256: { name: "ECDSA", hash: "SHA-256" }, RS256: { name: "RSASSA-PKCS1-v1_5" } };
const IMPORT = { ES256: { name: "ECDSA", namedCurve: "P-256" }, RS256: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } };

initBridle(wasmBytes());
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const us = (ms) => (ms * 1000).toFixed(1);

async function timeDecides(authorizer, tokens) {
  const requests = tokens.map((t) => new Request("https://api.internal/api/reports/q3", { headers: { authorization: `Bearer ${t}` } }));
  const start = performance.now();
  for (const request of requests) {
    const answer = await authorizer.decide(request);
    if (answer.decision !== "allow") throw new Error(JSON.stringify(answer));
  }
  return (performance.now() - start) / tokens.length;
}

async function timeWebCrypto(alg, key, tokens) {
  const parts = tokens.map((t) => {
    const [h, p, s] = t.split(".");
    return [new TextEncoder().encode(`${h}.${p}`), Buffer.from(s, "base64url")];
  });
  const start = performance.now();
  for (const [input, sig] of parts) {
    if (!(await crypto.subtle.verify(WEB[alg], key, sig, input))) throw new Error("does not verify");
  }
  return (performance.now() - start) / tokens.length;
}

console.log(`N=${N} tokens per round, ${ROUNDS} rounds, medians, µs per token (node ${process.version})`);
console.log("alg    decide(cached)  decide(new)  wasm verify  web crypto verify  wasm/webcrypto  decide(new, web crypto)  speed-up");
for (const alg of ["ES256", "RS256"]) {
  const iss = await issuer(alg, "spiffe://demo.bridle.dev");
  const key = await crypto.subtle.importKey("jwk", iss.jwk, IMPORT[alg], false, ["verify"]);
  const rows = { cached: [], fresh: [], web: [], native: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const authorizer = new Authorizer(agentsConfig(iss), { nativeSignatures: false });
    const minted = await Promise.all(Array.from({ length: 2 * N + 20 }, (_, i) => iss.mint({ sub: AGENT, aud: "bridle-gateway", jti: `${round}-${i}` })));
    const [warm, tokens, others] = [minted.slice(0, 20), minted.slice(20, N + 20), minted.slice(N + 20)];
    await timeDecides(authorizer, warm); // JIT, policy and token caches
    rows.cached.push(await timeDecides(authorizer, Array(N).fill(warm[0])));
    rows.fresh.push(await timeDecides(authorizer, tokens));
    rows.web.push(await timeWebCrypto(alg, key, tokens));
    authorizer.free();
    const native = new Authorizer(agentsConfig(iss));
    await timeDecides(native, warm);
    rows.native.push(await timeDecides(native, others));
    native.free();
  }
  const cached = median(rows.cached);
  const fresh = median(rows.fresh);
  const web = median(rows.web);
  const wasm = fresh - cached;
  const native = median(rows.native);
  console.log(`${alg}  ${us(cached).padStart(14)}  ${us(fresh).padStart(11)}  ${us(wasm).padStart(11)}  ${us(web).padStart(17)}  ${(wasm / web).toFixed(2).padStart(14)}  ${us(native).padStart(23)}  ${(fresh / native).toFixed(2).padStart(8)}`);
}
