//! Re-exports the Wasmtime C API so that `cargo build` produces `libwasmtime.a`.
pub use wasmtime_c_api::*;
