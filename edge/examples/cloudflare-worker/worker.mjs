// A Cloudflare module Worker: Bridle guards the routes under GUARDED_PREFIX and forwards allowed
// requests, credential removed and decision headers set, to ORIGIN. Everything else is 404.
// The configuration is the same JSON the proxy-wasm filter takes, in the BRIDLE_CONFIG secret.
import { Authorizer, initBridle } from "../../bridle.mjs";
import wasm from "../../pkg/bridle_web_bg.wasm";

initBridle(wasm);

// One authorizer per isolate, compiled on first use; a bad configuration fails closed (503).
let compiled;
function authorizer(env) {
  if (compiled === undefined) {
    try {
      compiled = { authorizer: new Authorizer(env.BRIDLE_CONFIG) };
    } catch (err) {
      compiled = { error: { message: `configuration refused: ${err.message}` } };
    }
  }
  return compiled;
}

export default {
  async fetch(request, env) {
    const prefix = env.GUARDED_PREFIX ?? "/api/";
    if (!new URL(request.url).pathname.startsWith(prefix)) {
      return new Response("not found", { status: 404 });
    }
    const ready = authorizer(env);
    if (ready.error) return Authorizer.refusal(ready);
    return ready.authorizer.guard(request, (upstream) => fetch(upstream), { origin: env.ORIGIN });
  },
};
