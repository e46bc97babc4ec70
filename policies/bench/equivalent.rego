# The benchmarks' reference check: exactly what Envoy's RBAC filter checks in
# scripts/bench-envoy.py (b), as Rego. Used by bench-envoy.py (c), the harness benches and the
# decide_profile example to measure a decision apart from the agent policy's evaluation.
package bench

import rego.v1

default decision := {"allow": false, "reasons": ["not allowed"]}

decision := {"allow": true, "reasons": []} if {
	input.identity.spiffe.id == "spiffe://demo.bridle.dev/agent/research-bot"
	input.request.method == "GET"
	segments := input.request.segments
	array.slice(segments, 0, 2) == ["api", "reports"]
	count(segments) <= 3
}
