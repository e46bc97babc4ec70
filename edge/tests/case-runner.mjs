// Replays the shared decision cases (target/bridle-cases.json, the same requests the harness
// and Envoy tests send) with Web APIs only, so every runtime runs the same checks: Node, Deno,
// workerd and Chromium. Returns the mismatches, one line each; empty means all agree.
export async function replayCases(set, Authorizer) {
  const authorizers = Object.fromEntries(Object.entries(set.configs).map(([name, config]) => [name, new Authorizer(config)]));
  const mismatches = [];
  for (const c of set.cases) {
    const request = new Request(`https://api.internal${c.path}`, { method: c.method, headers: c.headers, body: c.body ?? undefined });
    const a = await authorizers[c.config].decide(request);
    const problem = check(c, a);
    if (problem) mismatches.push(`${c.name}: ${problem}`);
  }
  for (const authorizer of Object.values(authorizers)) authorizer.free();
  return { count: set.cases.length, mismatches };
}

function check(c, a) {
  if (!("decision" in a)) return `no decision: ${JSON.stringify(a)}`;
  if (c.expect.allow) {
    if (!a.forward || a.decision !== "allow") return `expected allow, got ${a.decision} ${JSON.stringify(a.reasons)}`;
    if (!a.headers.remove.includes("authorization")) return "credential not removed";
    return null;
  }
  if (a.forward || a.status !== 403) return `expected 403, got ${a.status} ${JSON.stringify(a.reasons)}`;
  const body = JSON.parse(a.body);
  const code = c.expect.approval_required ? "approval_required" : "forbidden";
  if (body.error !== code) return `expected ${code}, got ${body.error}`;
  if (JSON.stringify(body.reasons) !== JSON.stringify(c.expect.reasons)) return `reasons ${JSON.stringify(body.reasons)} != ${JSON.stringify(c.expect.reasons)}`;
  return null;
}
