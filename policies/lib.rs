//! The policies Bridle ships, embedded so tests, the demo and tools use exactly these files.

/// One shipped policy: its Rego modules, its data document and its entrypoint.
pub struct ShippedPolicy {
    pub name: &'static str,
    pub entrypoint: &'static str,
    pub modules: &'static [(&'static str, &'static str)],
    pub data: &'static str,
    /// Folder of YAML decision cases, relative to this crate.
    pub cases_dir: &'static str,
}

/// The starter agent policy: an inventory of governed agents and the routes each may call.
pub const AGENTS: ShippedPolicy = ShippedPolicy {
    name: "agents",
    entrypoint: "data.bridle.agents.decision",
    modules: &[("agents.rego", include_str!("agents/agents.rego"))],
    data: include_str!("agents/data.json"),
    cases_dir: "agents/cases",
};

impl ShippedPolicy {
    /// The `policy` block of a Bridle configuration for this policy.
    pub fn config_block(&self) -> Result<serde_json::Value, serde_json::Error> {
        let data: serde_json::Value = serde_json::from_str(self.data)?;
        let modules: Vec<serde_json::Value> = self
            .modules
            .iter()
            .map(|(name, source)| serde_json::json!({"name": name, "source": source}))
            .collect();
        Ok(serde_json::json!({
            "entrypoint": self.entrypoint,
            "modules": modules,
            "data": data,
        }))
    }
}
