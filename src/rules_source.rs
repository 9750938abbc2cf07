//! Where rule data comes from: the `rules/` directory compiled into the binary, or a
//! directory named by `CLAIMLINT_RULES_DIR` (a complete copy of `rules/`, replacing it).

use std::fs;
use std::path::{Path, PathBuf};

use crate::core::data::{RuleDataError, RuleFile, RuleSet};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_rules.rs"));
}

#[derive(Debug, thiserror::Error)]
pub enum RulesLoadError {
    #[error("rules directory {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rules directory {dir}")]
    Data {
        dir: String,
        #[source]
        source: RuleDataError,
    },
}

/// The compiled-in rule files: `(path relative to rules/, bytes)`.
pub fn embedded_files() -> impl Iterator<Item = (&'static str, &'static [u8])> {
    embedded::EMBEDDED_RULES.iter().copied()
}

/// Loads the rule data from `dir`, or the compiled-in default when `dir` is `None`.
pub fn load_rules(dir: Option<&Path>) -> Result<RuleSet, RulesLoadError> {
    match dir {
        None => RuleSet::from_files(embedded_files().map(|(path, bytes)| RuleFile { path, bytes }))
            .map_err(|source| RulesLoadError::Data {
                dir: "(built in)".into(),
                source,
            }),
        Some(dir) => {
            let mut files = Vec::new();
            read_tree(dir, dir, &mut files)?;
            files.sort();
            RuleSet::from_files(files.iter().map(|(path, bytes)| RuleFile {
                path: path.as_str(),
                bytes: bytes.as_slice(),
            }))
            .map_err(|source| RulesLoadError::Data {
                dir: dir.display().to_string(),
                source,
            })
        }
    }
}

fn read_tree(
    root: &Path,
    dir: &Path,
    files: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), RulesLoadError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RulesLoadError::Io { path, source }
    };
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.is_dir() {
            read_tree(root, &path, files)?;
        } else {
            let bytes = fs::read(&path).map_err(io(&path))?;
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.push((relative, bytes));
        }
    }
    Ok(())
}
