//! Generated code of `proto/claimlint/v1/claimlint.proto`: prost messages, the tonic service,
//! and the canonical proto3 JSON mapping (pbjson).

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/claimlint.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/claimlint.v1.serde.rs"));
}

/// The encoded `FileDescriptorSet` of the contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/claimlint_descriptor.bin"));
