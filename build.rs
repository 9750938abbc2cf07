//! Compiles the proto contract without `protoc` (protox), generates prost/tonic code and the
//! canonical proto3 JSON mapping (pbjson), writes the descriptor set for server reflection,
//! and embeds the `rules/` directory as the default rule data.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use prost::Message;

const PROTO_ROOT: &str = "proto";
const PROTO_FILE: &str = "proto/claimlint/v1/claimlint.proto";
const RULES_DIR: &str = "rules";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    // protox does not emit these for us.
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    println!("cargo:rerun-if-changed={RULES_DIR}");

    let descriptors = protox::compile([PROTO_FILE], [PROTO_ROOT])?;
    let descriptor_bytes = descriptors.encode_to_vec();
    fs::write(out_dir.join("claimlint_descriptor.bin"), &descriptor_bytes)?;

    tonic_prost_build::configure()
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(descriptors)?;

    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .ignore_unknown_fields()
        .build(&[".claimlint.v1"])?;
    use_fast_number_deserialize(&out_dir.join("claimlint.v1.serde.rs"))?;

    embed_rules(Path::new(RULES_DIR), &out_dir.join("embedded_rules.rs"))?;
    Ok(())
}

/// pbjson reads every number field through `pbjson::private::NumberDeserialize`, an untagged
/// serde enum that tries "string" first and builds (and drops) a formatted error for every
/// plain JSON number: a third of decoding the seed visit (callgrind). The generated code is
/// pointed at `crate::proto::NumberDeserialize`, which accepts the same inputs
/// (`proto::tests` compares the two) without buffering. Fails the build if pbjson's generated
/// code no longer names the helper, so an upgrade cannot silently drop the substitution.
fn use_fast_number_deserialize(serde_file: &Path) -> Result<(), Box<dyn std::error::Error>> {
    const PBJSON_HELPER: &str = "::pbjson::private::NumberDeserialize";
    const OWN_HELPER: &str = "crate::proto::NumberDeserialize";
    let code = fs::read_to_string(serde_file)
        .map_err(|error| format!("reading {}: {error}", serde_file.display()))?;
    if !code.contains(PBJSON_HELPER) {
        return Err(format!("{} no longer uses {PBJSON_HELPER}", serde_file.display()).into());
    }
    let code = code.replace(PBJSON_HELPER, OWN_HELPER);
    // Any other spelling of the helper would stay slow without a word.
    if code.contains("pbjson::private::NumberDeserialize") {
        return Err(format!("{} names the helper another way", serde_file.display()).into());
    }
    fs::write(serde_file, code)?;
    Ok(())
}

/// Writes `EMBEDDED_RULES: &[(&str, &[u8])]`, every file under `rules/` with its relative path,
/// so the compiled-in default and `CLAIMLINT_RULES_DIR` go through the same loader.
fn embed_rules(dir: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    let mut code = String::from("pub static EMBEDDED_RULES: &[(&str, &[u8])] = &[\n");
    for file in files {
        let relative = file.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
        let absolute = fs::canonicalize(&file)?;
        writeln!(
            code,
            "    ({relative:?}, include_bytes!({:?})),",
            absolute.to_string_lossy()
        )?;
        println!("cargo:rerun-if-changed={}", file.display());
    }
    code.push_str("];\n");
    fs::write(out, code)?;
    Ok(())
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        // Hidden entries (an editor's swap file, .DS_Store) are not rule data, as at run time.
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}
