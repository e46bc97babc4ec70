//! RFC 8693 delegation chains (`act`, nested) and the attenuation rule: along a chain, authority
//! may only narrow.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// One party in a delegation chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub sub: String,
    /// The scopes this party held when it delegated, when the credential states them.
    pub scopes: Option<BTreeSet<String>>,
}

/// The chain in delegation order: `chain[0]` is the origin (the token's `sub`), the last entry
/// is the current actor (the outermost `act`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub chain: Vec<Actor>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelegationError {
    #[error("delegation chain is deeper than {0}")]
    TooDeep(usize),
    #[error("delegation `act` at depth {0} is not an object with a string `sub`")]
    Malformed(usize),
    #[error("delegation hop {hop} ({from} → {to}) amplifies privilege: {to} holds {extra}, which {from} did not")]
    Amplification {
        hop: usize,
        from: String,
        to: String,
        extra: String,
    },
    #[error("the credential exercises {extra}, which its current actor {actor} did not hold")]
    ExceedsActor { actor: String, extra: String },
    #[error("delegation chain's current actor `{actor}` is not the caller `{caller}`")]
    ActorIsNotCaller { actor: String, caller: String },
    #[error("the delegated credential's current actor `{actor}` is not the mTLS peer `{peer}` presenting it")]
    ActorIsNotPeer { actor: String, peer: String },
    #[error("`{actor}` is not permitted to act for `{subject}` (`may_act`)")]
    MayAct { actor: String, subject: String },
}

/// Scopes from an OAuth `scope` claim: a space-separated string, or (leniently) an array.
pub fn scopes(value: Option<&Value>) -> Option<BTreeSet<String>> {
    match value? {
        Value::String(s) => Some(s.split_ascii_whitespace().map(str::to_owned).collect()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

fn describe(extra: &BTreeSet<String>) -> String {
    let names: Vec<String> = extra.iter().take(8).map(|s| format!("`{s}`")).collect();
    names.join(", ")
}

impl Chain {
    /// Reads the chain from verified claims. `None` when the credential has no `act`.
    pub fn from_claims(
        claims: &Map<String, Value>,
        max_depth: usize,
    ) -> Result<Option<Chain>, DelegationError> {
        let Some(mut act) = claims.get("act") else {
            return Ok(None);
        };
        let origin = Actor {
            sub: claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            scopes: None,
        };
        // `act` nests from the current actor inwards to the first delegate.
        let mut actors = Vec::new();
        loop {
            let depth = actors.len() + 1;
            if depth > max_depth {
                return Err(DelegationError::TooDeep(max_depth));
            }
            let Value::Object(object) = act else {
                return Err(DelegationError::Malformed(depth));
            };
            let sub = object
                .get("sub")
                .and_then(Value::as_str)
                .ok_or(DelegationError::Malformed(depth))?;
            actors.push(Actor {
                sub: sub.to_owned(),
                scopes: scopes(object.get("scope")),
            });
            match object.get("act") {
                Some(inner) => act = inner,
                None => break,
            }
        }
        actors.reverse();
        let mut chain = Vec::with_capacity(actors.len() + 1);
        chain.push(origin);
        chain.extend(actors);
        Ok(Some(Chain { chain }))
    }

    pub fn depth(&self) -> usize {
        self.chain.len().saturating_sub(1)
    }

    pub fn current_actor(&self) -> &str {
        self.chain
            .last()
            .map(|a| a.sub.as_str())
            .unwrap_or_default()
    }

    pub fn origin(&self) -> &str {
        self.chain
            .first()
            .map(|a| a.sub.as_str())
            .unwrap_or_default()
    }

    /// Checks that authority only narrows along the chain. `held` gives, for a party, the
    /// scopes the agent inventory grants it (`None`: the inventory does not know the party).
    /// `exercised` is the credential's own `scope`.
    pub fn check_attenuation(
        &self,
        exercised: Option<&BTreeSet<String>>,
        held: &dyn Fn(&str) -> Option<BTreeSet<String>>,
    ) -> Result<(), DelegationError> {
        // What each party may pass on: what the chain says it held, narrowed by the inventory.
        let authority = |actor: &Actor| -> Option<BTreeSet<String>> {
            match (&actor.scopes, held(&actor.sub)) {
                (Some(stated), Some(granted)) => {
                    Some(stated.intersection(&granted).cloned().collect())
                }
                (Some(stated), None) => Some(stated.clone()),
                (None, granted) => granted,
            }
        };
        for (hop, pair) in self.chain.windows(2).enumerate() {
            let [from, to] = pair else { continue };
            let (Some(from_authority), Some(to_scopes)) = (authority(from), to.scopes.as_ref())
            else {
                continue;
            };
            let extra: BTreeSet<String> = to_scopes.difference(&from_authority).cloned().collect();
            if !extra.is_empty() {
                return Err(DelegationError::Amplification {
                    hop: hop + 1,
                    from: from.sub.clone(),
                    to: to.sub.clone(),
                    extra: describe(&extra),
                });
            }
        }
        if let (Some(exercised), Some(actor)) = (exercised, self.chain.last()) {
            if let Some(actor_authority) = authority(actor) {
                let extra: BTreeSet<String> =
                    exercised.difference(&actor_authority).cloned().collect();
                if !extra.is_empty() {
                    return Err(DelegationError::ExceedsActor {
                        actor: actor.sub.clone(),
                        extra: describe(&extra),
                    });
                }
            }
        }
        Ok(())
    }
}

/// RFC 8693 `may_act`: when the credential says who may act for its subject, the acting
/// party must be one of them.
pub fn check_may_act(
    claims: &serde_json::Map<String, serde_json::Value>,
    actor: &str,
) -> Result<(), DelegationError> {
    let Some(may_act) = claims.get("may_act") else {
        return Ok(());
    };
    let allowed = match may_act {
        serde_json::Value::Array(items) => items
            .iter()
            .any(|i| i.get("sub").and_then(|s| s.as_str()) == Some(actor)),
        other => other.get("sub").and_then(|s| s.as_str()) == Some(actor),
    };
    if allowed {
        Ok(())
    } else {
        Err(DelegationError::MayAct {
            actor: actor.to_owned(),
            subject: claims
                .get("sub")
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn chain_is_in_delegation_order() {
        let c = claims(
            json!({"sub": "user:alice", "act": {"sub": "agent:b", "act": {"sub": "agent:a"}}}),
        );
        let chain = Chain::from_claims(&c, 4).unwrap().unwrap();
        let subs: Vec<&str> = chain.chain.iter().map(|a| a.sub.as_str()).collect();
        assert_eq!(subs, ["user:alice", "agent:a", "agent:b"]);
        assert_eq!(
            (chain.depth(), chain.current_actor(), chain.origin()),
            (2, "agent:b", "user:alice")
        );
        assert_eq!(
            Chain::from_claims(&claims(json!({"sub": "x"})), 4).unwrap(),
            None
        );
    }

    #[test]
    fn depth_and_shape_are_bounded() {
        let mut act = json!({"sub": "a0"});
        for i in 1..6 {
            act = json!({"sub": format!("a{i}"), "act": act});
        }
        let c = claims(json!({"sub": "origin", "act": act}));
        assert_eq!(Chain::from_claims(&c, 4), Err(DelegationError::TooDeep(4)));
        assert!(Chain::from_claims(&c, 6).unwrap().is_some());
        let bad = claims(json!({"sub": "o", "act": {"act": {"sub": "x"}}}));
        assert_eq!(
            Chain::from_claims(&bad, 4),
            Err(DelegationError::Malformed(1))
        );
    }

    #[test]
    fn narrowing_passes_and_amplifying_names_the_hop() {
        let none = |_: &str| None;
        let narrowing = claims(
            json!({"sub": "o", "act": {"sub": "b", "scope": "read", "act": {"sub": "a", "scope": "read write"}}}),
        );
        let chain = Chain::from_claims(&narrowing, 4).unwrap().unwrap();
        assert!(chain
            .check_attenuation(Some(&set(&["read"])), &none)
            .is_ok());
        assert!(matches!(
            chain.check_attenuation(Some(&set(&["read", "write"])), &none),
            Err(DelegationError::ExceedsActor { ref actor, .. }) if actor == "b"
        ));
        let amplifying = claims(
            json!({"sub": "o", "act": {"sub": "b", "scope": "read deploy", "act": {"sub": "a", "scope": "read"}}}),
        );
        let chain = Chain::from_claims(&amplifying, 4).unwrap().unwrap();
        let err = chain.check_attenuation(None, &none).unwrap_err();
        assert_eq!(
            err.to_string(),
            "delegation hop 2 (a → b) amplifies privilege: b holds `deploy`, which a did not"
        );
    }

    #[test]
    fn the_inventory_bounds_what_a_party_can_pass_on() {
        let c = claims(
            json!({"sub": "o", "act": {"sub": "b", "scope": "read deploy", "act": {"sub": "a"}}}),
        );
        let chain = Chain::from_claims(&c, 4).unwrap().unwrap();
        let inventory = |sub: &str| (sub == "a").then(|| set(&["read"]));
        assert!(matches!(
            chain.check_attenuation(None, &inventory),
            Err(DelegationError::Amplification { hop: 2, .. })
        ));
        let generous = |sub: &str| (sub == "a").then(|| set(&["read", "deploy"]));
        assert!(chain.check_attenuation(None, &generous).is_ok());
    }
}
