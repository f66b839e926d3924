//! Build script: only makes sure the vendored `protoc` is part of the dependency
//! graph, so cargo downloads it before Lance's build scripts ask for it through
//! `tools/protoc` (see `.cargo/config.toml`).
fn main() {
    let _ = protoc_bin_vendored::protoc_bin_path();
    println!("cargo:rerun-if-changed=build.rs");
}
