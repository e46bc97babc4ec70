// A module service worker: Bridle guards this site's requests under /api/ in the browser,
// refusing them locally or forwarding them with the policy's headers and without the
// credential. Serve it with `Service-Worker-Allowed: /` (or from the site root) so its scope
// covers /api/; the configuration is bridle.json beside it.
import { Authorizer, loadBridle } from "../../bridle.mjs";

const GUARDED_PREFIX = "/api/";

const ready = (async () => {
  await loadBridle(new URL("../../pkg/bridle_web_bg.wasm", import.meta.url));
  const config = await fetch(new URL("bridle.json", import.meta.url), { cache: "no-store" });
  if (!config.ok) throw new Error(`bridle.json: HTTP ${config.status}`);
  return new Authorizer(await config.text());
})();

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith(GUARDED_PREFIX)) return;
  // Fail closed: without a working authorizer nothing under the prefix goes out.
  event.respondWith(
    ready.then(
      (authorizer) => authorizer.guard(event.request),
      (err) => Authorizer.refusal({ error: { message: `bridle unavailable: ${err.message}` } }),
    ),
  );
});
