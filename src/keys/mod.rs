//! Keys stage (DESIGN §7). Placeholder until the keys issue lands.

use anyhow::{bail, Result};
use serde::Deserialize;

use crate::context::{Context, StageOutput};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {}

pub fn run(_ctx: &Context, _cfg: &KeysConfig) -> Result<StageOutput> {
    bail!("the keys stage is not built yet")
}

pub fn status(_ctx: &Context, _cfg: &KeysConfig) -> serde_json::Value {
    serde_json::Value::Null
}
