# Bridle's governed-agents policy.
#
# Every agent is a governed identity: `data.agents` lists each agent by SPIFFE ID with its owner,
# purpose, risk tier, the environments it may act in, the action classes it holds (read, write
# and execute are separate grants), the HTTP routes and MCP tools it may use, the data classes
# it may touch, and how deep it may be in a delegation chain. Unknown agents and agents without
# an owner are denied. Sensitive data classes need an explicit scope on the task credential.
# Executing anything in production needs a human approval bound to that exact action.
#
# Path patterns: `*` matches one segment, a trailing `/**` any remainder (including none).
package bridle.agents

import rego.v1

# Agents are SPIFFE workloads. A SPIFFE ID counts only from an issuer trusted to assert them
# (`data.spiffe_issuers`), with a profile it is trusted for and in its own trust domain: an OIDC
# user named `spiffe://…/agent/deploy-bot` is not deploy-bot.
agent_id := input.identity.spiffe.id if {
	trusted := data.spiffe_issuers[input.identity.issuer]
	input.identity.profile in trusted.profiles
	input.identity.spiffe.trust_domain == trusted.trust_domain
}

agent := data.agents[agent_id]

environment := object.get(input.environment, "name", "")

intent := object.get(input, "intent", {"protocol": "http", "action": http_action})

http_action := "read" if input.request.method in {"GET", "HEAD", "OPTIONS"}

else := "write"

task_scopes := {s | some s in object.get(input, ["task", "scopes"], [])}

# --- denials, each with a reason a human can act on -------------------------------------------

reasons contains "caller has no SPIFFE ID" if not input.identity.spiffe

reasons contains msg if {
	input.identity.spiffe
	not agent_id
	msg := sprintf("SPIFFE ID %s is not asserted by a trusted SPIFFE issuer (issuer %s, profile %s)", [input.identity.spiffe.id, input.identity.issuer, input.identity.profile])
}

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
	not intent.action in object.get(agent, "actions", [])
	msg := sprintf("agent %s holds no %s grant", [agent_id, intent.action])
}

reasons contains msg if {
	agent
	intent.protocol == "http"
	not http_route_clear
	msg := sprintf("agent %s may not %s %s", [agent_id, input.request.method, input.request.path])
}

reasons contains msg if {
	agent
	intent.protocol == "mcp"
	intent.tool
	not intent.tool in object.get(agent, "tools", [])
	msg := sprintf("agent %s may not call tool %s", [agent_id, intent.tool])
}

reasons contains msg if {
	agent
	intent.data_class
	not intent.data_class in object.get(agent, "data_classes", [])
	msg := sprintf("agent %s may not touch %s data", [agent_id, intent.data_class])
}

reasons contains msg if {
	agent
	scope := data.sensitive_data_classes[intent.data_class]
	not scope in task_scopes
	msg := sprintf("%s data needs the task scope %s", [intent.data_class, scope])
}

reasons contains msg if {
	agent
	depth := object.get(input, ["delegation", "depth"], 0)
	depth > object.get(agent, "max_delegation_depth", 0)
	msg := sprintf("agent %s may not act %d hops down a delegation chain (at most %d)", [agent_id, depth, object.get(agent, "max_delegation_depth", 0)])
}

has_owner if {
	is_string(agent.owner)
	agent.owner != ""
}

# An HTTP request's method and path are granted by one of the agent's routes; other protocols
# pass here and are checked by their own rules. One rule with no helper calls per pattern: in
# the policy VM a rule or function call costs far more than the comparisons it makes, and this
# runs for every HTTP request.
http_route_clear if intent.protocol != "http"

http_route_clear if {
	some rule in object.get(agent, "routes", [])
	some pattern in rule.paths
	not contains(pattern, "*")
	trim_prefix(pattern, "/") == request_path
	method_allowed(rule.methods)
}

http_route_clear if {
	some rule in object.get(agent, "routes", [])
	some pattern in rule.paths
	contains(pattern, "*")
	not endswith(pattern, "/**")
	expected := split(trim_prefix(pattern, "/"), "/")
	count(expected) == count(segments)
	every i, e in expected {
		e in {"*", segments[i]}
	}
	method_allowed(rule.methods)
}

http_route_clear if {
	some rule in object.get(agent, "routes", [])
	some pattern in rule.paths
	endswith(pattern, "/**")
	prefix := trim_prefix(trim_suffix(pattern, "/**"), "/")
	expected := split_path(prefix)
	count(segments) >= count(expected)
	every i, e in expected {
		e in {"*", segments[i]}
	}
	method_allowed(rule.methods)
}

method_allowed(methods) if {
	some method in methods
	method in {"*", input.request.method}
}

segments := input.request.segments

# The request's segments joined by "/". Segments are never empty and never contain "/" (Bridle
# refuses encoded separators and empty segments), so equal strings mean equal segment lists.
request_path := concat("/", segments)

split_path(path) := [] if path == ""

split_path(path) := split(path, "/") if path != ""

# --- escalation: execute in production waits for a human ---------------------------------------

needs_approval if {
	intent.action == "execute"
	environment == "prod"
}

approval_reason := sprintf("agent %s may not call tool %s in prod without approval", [agent_id, intent.tool]) if intent.tool

else := sprintf("agent %s may not execute %s %s in prod without approval", [agent_id, input.request.method, input.request.path])

# --- the decision -------------------------------------------------------------------------------

default decision := {"allow": false, "reasons": ["policy could not establish an allow"]}

allowed_headers := {
	"x-bridle-agent": agent_id,
	"x-bridle-agent-owner": agent.owner,
}

# All checks passed: the conjunction of the negations of every `reasons` rule above, evaluated in
# one body so an allowed request does not run (and build messages for) each denial rule.
clear if {
	agent
	has_owner
	environment in object.get(agent, "environments", [])
	intent.action in object.get(agent, "actions", [])
	http_route_clear
	mcp_tool_clear
	data_class_clear
	scope_clear
	object.get(input, ["delegation", "depth"], 0) <= object.get(agent, "max_delegation_depth", 0)
}

mcp_tool_clear if intent.protocol != "mcp"

mcp_tool_clear if not intent.tool

mcp_tool_clear if intent.tool in object.get(agent, "tools", [])

data_class_clear if not intent.data_class

data_class_clear if intent.data_class in object.get(agent, "data_classes", [])

scope_clear if not data.sensitive_data_classes[intent.data_class]

scope_clear if data.sensitive_data_classes[intent.data_class] in task_scopes

decision := {"allow": true, "reasons": [], "headers": allowed_headers} if {
	clear
	not needs_approval
}

decision := {"allow": false, "approval_required": true, "reasons": [approval_reason]} if {
	clear
	needs_approval
}

decision := {"allow": false, "reasons": sort(reasons)} if {
	not clear
	count(reasons) > 0
}
