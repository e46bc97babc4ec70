// Bridle for Web-standard runtimes (Cloudflare Workers, Deno, Node, browsers).
//
// Construct an authorizer once from the same configuration JSON the proxy-wasm filter takes,
// then decide on a Request. The answer is tagged: {decision, status, reasons, headers, audit, …}
// or {error}; `decide` never throws.
import initAsync, { initSync, Authorizer as WasmAuthorizer } from "./pkg/bridle_web.js";

let initialized = false;

/** Instantiates the module once per isolate from a compiled WebAssembly.Module or its bytes. */
export function initBridle(module) {
  if (!initialized) {
    initSync({ module });
    initialized = true;
  }
}

/** Instantiates the module from a URL, Response or bytes (default: the .wasm beside the glue). */
export async function loadBridle(source) {
  if (!initialized) {
    await initAsync(source === undefined ? undefined : { module_or_path: source });
    initialized = true;
  }
}

// Decision ids are unique per authorizer from a Web Crypto seed.
function seed() {
  const words = new Uint32Array(2);
  crypto.getRandomValues(words);
  return words;
}

// A Request's body without consuming it; a plain object's `body` (string or bytes) as it is.
async function bodyBytes(request) {
  if (typeof request.clone === "function") return new Uint8Array(await request.clone().arrayBuffer());
  const body = request.body ?? "";
  if (typeof body === "string") return new TextEncoder().encode(body);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new TypeError("request body must be a string, bytes, or a Request's stream");
}

// JWS algorithms as Web Crypto names them: import parameters, then verify parameters.
// RSA-PSS salt is the hash length (RFC 7518 §3.5).
const WEB_CRYPTO = {
  ES256: [{ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
  ES384: [{ name: "ECDSA", namedCurve: "P-384" }, { name: "ECDSA", hash: "SHA-384" }],
  RS256: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, { name: "RSASSA-PKCS1-v1_5" }],
  RS384: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-384" }, { name: "RSASSA-PKCS1-v1_5" }],
  RS512: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" }, { name: "RSASSA-PKCS1-v1_5" }],
  PS256: [{ name: "RSA-PSS", hash: "SHA-256" }, { name: "RSA-PSS", saltLength: 32 }],
  PS384: [{ name: "RSA-PSS", hash: "SHA-384" }, { name: "RSA-PSS", saltLength: 48 }],
  PS512: [{ name: "RSA-PSS", hash: "SHA-512" }, { name: "RSA-PSS", saltLength: 64 }],
  EdDSA: [{ name: "Ed25519" }, { name: "Ed25519" }],
};

function base64url(text) {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

// Checks a signature job with Web Crypto: true or false, or null when this runtime cannot
// (no Web Crypto, an algorithm it lacks): then the core verifies the signature itself.
async function verifyNatively(job, keys) {
  const params = WEB_CRYPTO[job.alg];
  if (!params || !globalThis.crypto?.subtle) return null;
  try {
    const id = `${job.alg} ${JSON.stringify(job.jwk)}`;
    let key = keys.get(id);
    if (!key) {
      key = await crypto.subtle.importKey("jwk", job.jwk, params[0], false, ["verify"]);
      keys.set(id, key);
    }
    return await crypto.subtle.verify(params[1], key, base64url(job.signature), new TextEncoder().encode(job.signing_input));
  } catch {
    return null;
  }
}

function failure(err) {
  return { error: { message: err instanceof Error ? err.message : String(err) } };
}

export class Authorizer {
  #inner;
  #native;
  #keys = new Map();

  /**
   * @param {string | object} config the Bridle configuration; throws an Error naming a bad field
   * @param {{nativeSignatures?: boolean}} options verify new tokens' signatures with Web Crypto
   *   (default true; the core still makes every other check and chooses the key)
   */
  constructor(config, { nativeSignatures = true } = {}) {
    if (!initialized) throw new Error("bridle: call initBridle or loadBridle first");
    const json = typeof config === "string" ? config : JSON.stringify(config);
    const [hi, lo] = seed();
    this.#inner = new WasmAuthorizer(json, hi, lo);
    this.#native = nativeSignatures;
  }

  /**
   * Decides on a Web Request, or a plain `{method, url, headers, body}` object (headers as
   * Headers, a record or pairs; body a string or bytes). The body is read only when the route
   * needs it (e.g. MCP), without consuming a Request's. The clock is the runtime's (`Date.now()`).
   */
  async decide(request, { peerUriSan } = {}) {
    try {
      const url = new URL(request.url);
      const view = {
        method: request.method,
        scheme: url.protocol.replace(/:$/, ""),
        authority: url.host,
        path: url.pathname + url.search,
        headers: [...new Headers(request.headers ?? {}).entries()],
        body: null,
        peer_uri_san: peerUriSan ?? null,
      };
      const limit = this.#inner.bodyLimit(view.method, view.path);
      if (limit >= 0) {
        const declared = Number(new Headers(request.headers ?? {}).get("content-length") ?? "0");
        const bytes = declared > limit ? null : await bodyBytes(request);
        if (bytes === null || bytes.byteLength > limit) {
          return JSON.parse(this.#inner.refuseOversized(JSON.stringify(view), limit, Date.now()));
        }
        view.body = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
      }
      const json = JSON.stringify(view);
      if (this.#native) {
        const job = JSON.parse(this.#inner.signatureJob(json, Date.now()));
        const valid = job === null ? null : await verifyNatively(job, this.#keys);
        if (valid !== null) return JSON.parse(this.#inner.decideWithSignature(json, valid, Date.now()));
      }
      return JSON.parse(this.#inner.decide(json, Date.now()));
    } catch (err) {
      return failure(err);
    }
  }

  /** The Response for a refusal (status, JSON body, decision id and challenge headers); fails closed on {error}. */
  static refusal(answer) {
    if ("error" in answer) {
      return new Response(JSON.stringify({ error: "unavailable", reasons: [answer.error.message] }), {
        status: 503,
        headers: { "content-type": "application/json" },
      });
    }
    const headers = new Headers({ "content-type": "application/json" });
    for (const [name, value] of answer.headers.response) headers.set(name, value);
    return new Response(answer.body, { status: answer.status, headers });
  }

  /** The request to forward upstream: credentials removed, policy and decision headers set. */
  static upstreamRequest(request, answer, origin) {
    if (!("decision" in answer) || !answer.forward) throw new Error("bridle: the answer does not forward");
    const headers = new Headers(request.headers);
    for (const name of answer.headers.remove) headers.delete(name);
    for (const [name, value] of answer.headers.upstream) headers.set(name, value);
    // Same URL: derive from the request, which keeps its body as it is (browsers refuse
    // streamed request bodies over HTTP/1.1).
    if (!origin) return new Request(request, { headers, redirect: "manual" });
    const url = new URL(request.url);
    const body = request.method === "GET" || request.method === "HEAD" ? undefined : request.body;
    return new Request(new URL(url.pathname + url.search, origin), { method: request.method, headers, body, duplex: "half", redirect: "manual" });
  }

  /** Guards one request: refuses it, or forwards it with `fetchUpstream` (default `fetch`). */
  async guard(request, fetchUpstream = fetch, { origin, peerUriSan } = {}) {
    const answer = await this.decide(request, { peerUriSan });
    if (!("decision" in answer) || !answer.forward) return Authorizer.refusal(answer);
    const upstream = await fetchUpstream(Authorizer.upstreamRequest(request, answer, origin));
    const response = new Response(upstream.body, upstream);
    for (const [name, value] of answer.headers.response) response.headers.set(name, value);
    return response;
  }

  /** Frees the module memory this authorizer holds. */
  free() {
    this.#inner.free();
  }
}
