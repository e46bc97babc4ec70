// Bridle for Web-standard runtimes (Cloudflare Workers, Deno, Node, browsers).
//
// Construct an authorizer once from the same configuration JSON the proxy-wasm filter takes,
// then decide on a Request. The answer is tagged: {decision: {...}, audit} or {error}.
import { initSync, Authorizer as WasmAuthorizer } from "./pkg/bridle_web.js";

let initialized = false;

/** Instantiates the module once per isolate from a compiled WebAssembly.Module or its bytes. */
export function initBridle(module) {
  if (!initialized) {
    initSync({ module });
    initialized = true;
  }
}

function seed() {
  const words = new Uint32Array(2);
  crypto.getRandomValues(words);
  return words;
}

export class Authorizer {
  /** @param {string | object} config the Bridle configuration; throws an Error naming a bad field */
  constructor(config) {
    const json = typeof config === "string" ? config : JSON.stringify(config);
    const [hi, lo] = seed();
    this.inner = new WasmAuthorizer(json, hi, lo);
  }

  /**
   * Decides on a Web Request (the body is read only when the route needs it, e.g. MCP).
   * @returns {Promise<{decision: object, audit: object} | {error: {message: string}}>}
   */
  async decide(request, { peerUriSan } = {}) {
    const url = new URL(request.url);
    const view = {
      method: request.method,
      scheme: url.protocol.replace(/:$/, ""),
      authority: url.host,
      path: url.pathname + url.search,
      headers: [...request.headers.entries()],
      body: null,
      peer_uri_san: peerUriSan ?? null,
    };
    const limit = this.inner.bodyLimit(view.method, view.path);
    if (limit >= 0) {
      const declared = Number(request.headers.get("content-length") ?? "0");
      const bytes = declared > limit ? null : new Uint8Array(await request.clone().arrayBuffer());
      if (bytes === null || bytes.byteLength > limit) {
        return JSON.parse(this.inner.refuseOversized(JSON.stringify(view), limit, Date.now()));
      }
      view.body = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
    }
    return JSON.parse(this.inner.decide(JSON.stringify(view), Date.now()));
  }

  /** The Response for a refusal (status, JSON body, decision id and challenge headers). */
  static refusal(answer) {
    const d = answer.decision;
    if (!d) {
      return new Response(JSON.stringify({ error: "unavailable", reasons: [answer.error?.message ?? "no decision"] }), {
        status: 503,
        headers: { "content-type": "application/json" },
      });
    }
    const headers = new Headers({ "content-type": "application/json" });
    for (const [name, value] of d.response_headers) headers.set(name, value);
    return new Response(d.body, { status: d.status, headers });
  }

  /** The request to forward upstream: credentials removed, policy and decision headers set. */
  static upstreamRequest(request, answer, origin) {
    const d = answer.decision;
    const url = new URL(request.url);
    const target = origin ? new URL(url.pathname + url.search, origin) : url;
    const headers = new Headers(request.headers);
    for (const name of d.remove_headers) headers.delete(name);
    for (const [name, value] of d.set_headers) headers.set(name, value);
    return new Request(target, { method: request.method, headers, body: request.body, duplex: "half" });
  }

  /** Guards one request: refuses it, or forwards it with `fetchUpstream`. */
  async guard(request, fetchUpstream, origin) {
    const answer = await this.decide(request);
    if (!answer.decision || !answer.decision.forward) return Authorizer.refusal(answer);
    const upstream = await fetchUpstream(Authorizer.upstreamRequest(request, answer, origin));
    const response = new Response(upstream.body, upstream);
    for (const [name, value] of answer.decision.response_headers) response.headers.set(name, value);
    return response;
  }
}
