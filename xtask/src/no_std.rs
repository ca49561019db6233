//! `cargo xtask no-std`: each no_std crate built alone for a bare-metal target (placeholder).

use crate::util::Runner;

/// Builds the no_std crates for thumbv7em-none-eabihf; returns false for unknown arguments.
pub fn run(_runner: &mut Runner, args: &[String]) -> bool {
    args.is_empty()
}
