//! A plugin with the right ABI name and a wrong function type (`model.dim` returns `u64`, the
//! WIT says `u32`): the host must report the ABI mismatch by name, not a trap.

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
            }
            interface embedder {
                use types.{failure};
                resource model {
                    create: static func(config: string) -> result<model, failure>;
                    id: func() -> string;
                    dim: func() -> u64;
                    embed: func(text: string) -> result<list<f32>, failure>;
                }
            }
            world embedder-plugin {
                export embedder;
            }
        ",
        world: "embedder-plugin",
        runtime_path: "::pilot_plugin_sdk::__private::wit_bindgen::rt",
    });
}

use bindings::exports::pilot::plugin::embedder::{Guest, GuestModel, Model};
use bindings::pilot::plugin::types::Failure;

struct Export;

impl Guest for Export {
    type Model = Wrong;
}

struct Wrong;

impl GuestModel for Wrong {
    fn create(_config: String) -> Result<Model, Failure> {
        Ok(Model::new(Wrong))
    }

    fn id(&self) -> String {
        String::from("wrong-type-v1")
    }

    fn dim(&self) -> u64 {
        8
    }

    fn embed(&self, _text: String) -> Result<Vec<f32>, Failure> {
        Ok(vec![0.5; 8])
    }
}

bindings::export!(Export with_types_in bindings);
