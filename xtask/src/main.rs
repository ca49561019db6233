//! Project automation on the rust-analyzer xtask pattern (`cargo xtask <task>`).

fn main() {
    eprintln!("xtask: not yet implemented");
    std::process::exit(2);
}
