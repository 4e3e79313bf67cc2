//! Compiles `proto/` with protox (no `protoc` needed) and generates prost
//! messages plus tonic clients and servers. The descriptor set is kept for
//! gRPC reflection.
use std::path::PathBuf;

use prost::Message;

const FILES: &[&str] = &[
    "anp/events/v1/events.proto",
    "anp/sites/v1/sites.proto",
    "anp/ops/v1/ops.proto",
    "anp/content/v1/content.proto",
    "anp/aggregator/v1/aggregator.proto",
    "anp/archive/v1/archive.proto",
    "anp/calendar/v1/calendar.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    println!("cargo:rerun-if-changed={}", proto_root.display());
    let descriptor_set = protox::compile(FILES, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("anp_descriptor.bin"),
        descriptor_set.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptor_set)?;
    Ok(())
}
