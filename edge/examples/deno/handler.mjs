// A Deno handler: Bridle guards every request and forwards allowed ones to an origin.
//
//   BRIDLE_CONFIG=bridle.json ORIGIN=http://127.0.0.1:8080 \
//     deno serve --allow-read --allow-env --allow-net examples/deno/handler.mjs
import { Authorizer, initBridle } from "../../bridle.mjs";

/** A fetch handler for `Deno.serve` that guards with `authorizer` and forwards to `origin`. */
export function guardedHandler(authorizer, origin) {
  return (request) => authorizer.guard(request, (upstream) => fetch(upstream), { origin });
}

let handler;

export default {
  async fetch(request) {
    if (handler === undefined) {
      try {
        initBridle(await Deno.readFile(new URL("../../pkg/bridle_web_bg.wasm", import.meta.url)));
        const config = await Deno.readTextFile(Deno.env.get("BRIDLE_CONFIG") ?? "bridle.json");
        handler = guardedHandler(new Authorizer(config), Deno.env.get("ORIGIN"));
      } catch (err) {
        // Fail closed: no configuration, no forwarding (retried on the next request).
        return Authorizer.refusal({ error: { message: `configuration refused: ${err.message}` } });
      }
    }
    return handler(request);
  },
};
