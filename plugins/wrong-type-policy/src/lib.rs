//! A policy plugin with the right ABI name and a wrong function type (`router.observe` takes its
//! reward as `f64`, the WIT says `f32`): the host must refuse it on load, naming the function
//! and both signatures, before anything is instantiated.

mod bindings {
    pilot_plugin_sdk::__private::wit_bindgen::generate!({
        inline: "
            package pilot:plugin@0.1.0;
            interface types {
                enum failure-kind {
                    dimension-mismatch, non-finite, zero-vector, not-positive-definite, empty,
                    unknown-arm, out-of-range, invalid-parameter, truncated, corrupt,
                    version-mismatch, checksum-mismatch, wrong-format, other,
                }
                record failure {
                    kind: failure-kind,
                    message: string,
                }
                record arm-score {
                    estimate: f32,
                    width: f32,
                    score: f32,
                }
                record selection {
                    arm: u32,
                    scores: list<arm-score>,
                }
            }
            interface policy {
                use types.{failure, selection};
                resource router {
                    create: static func(config: string) -> result<router, failure>;
                    dim: func() -> u32;
                    arm-count: func() -> u32;
                    select: func(context: list<f32>, costs: list<f32>, seed: u64) -> result<selection, failure>;
                    observe: func(arm: u32, context: list<f32>, reward: f64) -> result<_, failure>;
                    snapshot: func() -> result<list<u8>, failure>;
                    restore: func(bytes: list<u8>) -> result<_, failure>;
                }
            }
            world policy-plugin {
                export policy;
            }
        ",
        world: "policy-plugin",
        runtime_path: "::pilot_plugin_sdk::__private::wit_bindgen::rt",
    });
}

use bindings::exports::pilot::plugin::policy::{Guest, GuestRouter, Router};
use bindings::pilot::plugin::types::{ArmScore, Failure, Selection};

struct Export;

impl Guest for Export {
    type Router = Wrong;
}

/// One arm, one dimension, always arm 0.
struct Wrong;

impl GuestRouter for Wrong {
    fn create(_config: String) -> Result<Router, Failure> {
        Ok(Router::new(Wrong))
    }

    fn dim(&self) -> u32 {
        1
    }

    fn arm_count(&self) -> u32 {
        1
    }

    fn select(
        &self,
        _context: Vec<f32>,
        _costs: Vec<f32>,
        _seed: u64,
    ) -> Result<Selection, Failure> {
        Ok(Selection {
            arm: 0,
            scores: vec![ArmScore {
                estimate: 0.5,
                width: 0.0,
                score: 0.5,
            }],
        })
    }

    fn observe(&self, _arm: u32, _context: Vec<f32>, _reward: f64) -> Result<(), Failure> {
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, Failure> {
        Ok(Vec::new())
    }

    fn restore(&self, _bytes: Vec<u8>) -> Result<(), Failure> {
        Ok(())
    }
}

bindings::export!(Export with_types_in bindings);
