# Bridle starter policy: every agent is a governed identity.
#
# An agent is known by its SPIFFE ID and listed in `data.agents` with an owner, a purpose, the
# environments it may act in, and the routes (methods + path patterns) it may call. Anything
# not listed is denied; an agent without an owner is denied.
#
# Path patterns: `*` matches one segment, a trailing `/**` matches any remainder (including
# none). Methods: upper-case names, or `*` for any.
package bridle.agents

import rego.v1

agent_id := input.identity.spiffe.id

agent := data.agents[agent_id]

environment := object.get(input.environment, "name", "")

reasons contains "caller has no SPIFFE ID" if not input.identity.spiffe

reasons contains msg if {
	agent_id
	not data.agents[agent_id]
	msg := sprintf("agent %s is not in the inventory", [agent_id])
}

reasons contains msg if {
	agent
	not has_owner
	msg := sprintf("agent %s has no owner", [agent_id])
}

reasons contains msg if {
	agent
	not environment in object.get(agent, "environments", [])
	msg := sprintf("agent %s may not act in environment %q", [agent_id, environment])
}

reasons contains msg if {
	agent
	not route_allowed
	msg := sprintf("agent %s may not %s %s", [agent_id, input.request.method, input.request.path])
}

has_owner if {
	is_string(agent.owner)
	agent.owner != ""
}

route_allowed if {
	some rule in object.get(agent, "allow", [])
	method_matches(rule.methods, input.request.method)
	some pattern in rule.paths
	path_matches(pattern, input.request.segments)
}

method_matches(methods, _) if "*" in methods

method_matches(methods, method) if method in methods

pattern_segments(pattern) := [] if pattern in {"", "/"}

pattern_segments(pattern) := split(trim_prefix(pattern, "/"), "/") if not pattern in {"", "/"}

segment_matches("*", _) := true

segment_matches(expected, actual) := true if expected == actual

path_matches(pattern, segments) if {
	not endswith(pattern, "/**")
	expected := pattern_segments(pattern)
	count(expected) == count(segments)
	every i, e in expected {
		segment_matches(e, segments[i])
	}
}

path_matches(pattern, segments) if {
	endswith(pattern, "/**")
	expected := pattern_segments(trim_suffix(pattern, "/**"))
	count(segments) >= count(expected)
	every i, e in expected {
		segment_matches(e, segments[i])
	}
}

default decision := {"allow": false, "reasons": ["policy could not establish an allow"]}

decision := {
	"allow": true,
	"reasons": [],
	"headers": {
		"x-bridle-agent": agent_id,
		"x-bridle-agent-owner": agent.owner,
	},
} if {
	agent
	count(reasons) == 0
}

decision := {"allow": false, "reasons": sort(reasons)} if count(reasons) > 0
