//! Generates the example workflow service (`proto/workflow.proto`) for the examples
//! and their integration tests, with a pure-Rust protobuf compiler (no `protoc`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/workflow.proto");
    let files = protox::compile(["workflow.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(files)?;
    Ok(())
}
