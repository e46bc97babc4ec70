// Compiled by `tsc` (edge/tests/types.test.mjs): the package's declared API used the way the
// examples use it, including narrowing the tagged answer. The `@ts-expect-error` lines must
// stay errors, so the types cannot silently widen to `any`.
import { Authorizer, initBridle, loadBridle, type Answer, type Outcome } from "bridle-edge";

export async function use(module: WebAssembly.Module, config: object, request: Request): Promise<Response> {
  initBridle(module);
  await loadBridle(new URL("https://example.invalid/bridle_web_bg.wasm"));
  const authorizer = new Authorizer(config);
  const answer: Answer = await authorizer.decide(request, { peerUriSan: "spiffe://x/y" });
  await authorizer.decide({ method: "POST", url: "https://a.example/mcp", headers: { "content-type": "application/json" }, body: "{}" });
  // @ts-expect-error a request needs a URL
  await authorizer.decide({ method: "GET", headers: [] });
  if ("error" in answer && answer.error) {
    const message: string = answer.error.message;
    return new Response(message, { status: 503 });
  }
  if (answer.decision === undefined) throw new Error("unreachable");
  const outcome: Outcome = answer.decision;
  const status: number = answer.status;
  const reasons: string[] = answer.reasons;
  const [first] = answer.headers.upstream;
  const name: string | undefined = first?.[0];
  const audited: string | undefined = answer.audit?.decision_id;
  // @ts-expect-error an outcome is one of the known strings
  const wrong: Outcome = "maybe";
  // @ts-expect-error headers are pairs, not a record
  const bad: string = answer.headers.response.authorization;
  void [outcome, status, reasons, name, audited, wrong, bad];
  if (!answer.forward) return Authorizer.refusal(answer);
  const upstream: Request = Authorizer.upstreamRequest(request, answer, "https://origin.example");
  return authorizer.guard(upstream, (r) => fetch(r), { origin: new URL("https://origin.example") });
}
