//! A policy plugin's pool is fixed by its configuration: the WIT ABI (v1) has no call to add an
//! arm, so growing it live is refused with a reason instead of being faked.

use pilot_core::{ArmId, Error, ErrorKind, GrowPool, Result};

use crate::PluginPolicy;

impl GrowPool<f32> for PluginPolicy {
    fn add_arm(&mut self, _prior: Option<&[f32]>) -> Result<ArmId> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "PluginPolicy::add_arm: the plugin ABI has no call to add an arm; restart the plugin \
             with a configuration naming the larger pool",
        ))
    }
}
