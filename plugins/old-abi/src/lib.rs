//! A plugin built against an older ABI (`pilot:plugin@0.0.1`): the host must refuse it by name.

mod bindings {
    pilot_plugin_sdk::__private::wit_bindgen::generate!({
        inline: "
            package pilot:plugin@0.0.1;
            interface embedder {
                dim: func() -> u32;
            }
            world embedder-plugin {
                export embedder;
            }
        ",
        world: "embedder-plugin",
        runtime_path: "::pilot_plugin_sdk::__private::wit_bindgen::rt",
    });
}

struct Old;

impl bindings::exports::pilot::plugin::embedder::Guest for Old {
    fn dim() -> u32 {
        8
    }
}

bindings::export!(Old with_types_in bindings);
