//! Secrets stage (DESIGN §8). Placeholder until the secrets issue lands.

use anyhow::{bail, Result};
use serde::Deserialize;

use crate::context::{Context, StageOutput};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {}

pub fn run(_ctx: &Context, _cfg: &SecretsConfig) -> Result<StageOutput> {
    bail!("the secrets stage is not built yet")
}

pub fn status(_ctx: &Context, _cfg: &SecretsConfig) -> serde_json::Value {
    serde_json::Value::Null
}
