//! WebAssembly plugin host for PILOT router: embedders and policies as wasmtime components with fuel, deadline and memory limits.
