//! Bakes the one WIT package (`wit/plugin.wit` at the repository root) into the export macros as
//! a string literal, so a plugin crate needs neither a copy of the WIT nor a path to it.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let wit_path = manifest.join("../../wit/plugin.wit");
    let template_path = manifest.join("src/export_macros.rs.in");
    println!("cargo:rerun-if-changed={}", wit_path.display());
    println!("cargo:rerun-if-changed={}", template_path.display());
    let wit = match std::fs::read_to_string(&wit_path) {
        Ok(text) => text,
        Err(e) => {
            println!("cargo:warning=cannot read {}: {e}", wit_path.display());
            std::process::exit(1);
        }
    };
    let template = match std::fs::read_to_string(&template_path) {
        Ok(text) => text,
        Err(e) => {
            println!("cargo:warning=cannot read {}: {e}", template_path.display());
            std::process::exit(1);
        }
    };
    let out = template.replace("__PILOT_WIT__", &format!("{wit:?}"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(out_dir.join("export_macros.rs"), out) {
        println!("cargo:warning=cannot write export_macros.rs: {e}");
        std::process::exit(1);
    }
}
