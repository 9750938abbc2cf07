//! Where rule data comes from: the `rules/` directory compiled into the binary, or a
//! directory named by `CLAIMLINT_RULES_DIR` (a complete copy of `rules/`, replacing it), with
//! an optional overlay (`CLAIMLINT_RULES_OVERLAY`) whose files replace or add to it by path.
//! Hidden entries (`.`-names, such as a Kubernetes volume's `..data`) are skipped.

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

/// Where to read rule data from (the same flags for `serve`, `validate` and `rules`).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct RulesSource {
    /// A complete rules directory replacing the compiled-in rule data.
    #[arg(long = "rules-dir", env = "CLAIMLINT_RULES_DIR", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Files that replace or add to the rule data by relative path (e.g. a ConfigMap with
    /// `profiles.toml`), over the rules directory or the compiled-in data.
    #[arg(
        long = "rules-overlay",
        env = "CLAIMLINT_RULES_OVERLAY",
        value_name = "DIR"
    )]
    pub overlay: Option<PathBuf>,
}

impl RulesSource {
    /// A name for logs and errors.
    pub fn describe(&self) -> String {
        let base = self
            .dir
            .as_ref()
            .map_or_else(|| "(built in)".to_owned(), |d| d.display().to_string());
        match &self.overlay {
            Some(overlay) => format!("{base} + overlay {}", overlay.display()),
            None => base,
        }
    }

    /// Loads and checks the rule data.
    pub fn load(&self) -> Result<RuleSet, RulesLoadError> {
        let Some(overlay) = &self.overlay else {
            return load_rules(self.dir.as_deref());
        };
        let mut files: std::collections::BTreeMap<String, Vec<u8>> = match &self.dir {
            None => embedded_files()
                .map(|(path, bytes)| (path.to_owned(), bytes.to_vec()))
                .collect(),
            Some(dir) => {
                let mut files = Vec::new();
                read_tree(dir, dir, &mut files)?;
                files.into_iter().collect()
            }
        };
        let mut overlaid = Vec::new();
        read_tree(overlay, overlay, &mut overlaid)?;
        files.extend(overlaid);
        RuleSet::from_files(files.iter().map(|(path, bytes)| RuleFile {
            path: path.as_str(),
            bytes: bytes.as_slice(),
        }))
        .map_err(|source| RulesLoadError::Data {
            dir: self.describe(),
            source,
        })
    }

    /// A digest of the names, sizes and modification times of the files read, to notice a
    /// change without reading them (`None` for the compiled-in data alone).
    pub fn fingerprint(&self) -> Option<u64> {
        use std::hash::Hasher;
        if self.dir.is_none() && self.overlay.is_none() {
            return None;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for root in self.dir.iter().chain(&self.overlay) {
            fingerprint_tree(root, root, &mut hasher);
        }
        Some(hasher.finish())
    }
}

fn fingerprint_tree(root: &Path, dir: &Path, hasher: &mut impl std::hash::Hasher) {
    use std::hash::Hash;
    if depth_below(root, dir) > MAX_DEPTH {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        // A directory that cannot be read is a change too (the load will say why).
        dir.hash(hasher);
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| !is_hidden(p))
        .collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            fingerprint_tree(root, &path, hasher);
        } else if let Ok(meta) = fs::metadata(&path) {
            path.hash(hasher);
            meta.len().hash(hasher);
            meta.modified().ok().hash(hasher);
        }
    }
}

/// Rule data is at most a few directories deep; deeper means a symbolic link loop.
const MAX_DEPTH: usize = 8;

fn depth_below(root: &Path, dir: &Path) -> usize {
    dir.strip_prefix(root)
        .map_or(0, |rest| rest.components().count())
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with('.'))
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
    if depth_below(root, dir) > MAX_DEPTH {
        return Err(io(dir)(std::io::Error::other(format!(
            "nested deeper than {MAX_DEPTH} directories (a symbolic link loop?)"
        ))));
    }
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if is_hidden(&path) {
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::data::RuleSetting;
    use crate::core::reason::{ReasonCode, Severity};

    fn medicare_npi_setting(rules: &RuleSet) -> RuleSetting {
        let profiles = rules.profiles().all();
        let medicare = profiles
            .iter()
            .find(|p| p.name == "medicare")
            .expect("a medicare profile");
        medicare.setting(ReasonCode::NpiInvalid)
    }

    #[test]
    fn an_overlay_replaces_files_by_path_and_hidden_entries_are_skipped() {
        let built_in = RulesSource::default().load().unwrap();
        assert_eq!(
            medicare_npi_setting(&built_in),
            RuleSetting::On(Severity::Error)
        );
        let overlay = tempfile::tempdir().unwrap();
        let profiles = String::from_utf8_lossy(
            embedded_files()
                .find(|(path, _)| *path == "profiles.toml")
                .unwrap()
                .1,
        )
        .replacen(
            "[profile.medicare]\n",
            "[profile.medicare]\nrules = { NPI_INVALID = \"warning\" }\n",
            1,
        );
        fs::write(overlay.path().join("profiles.toml"), profiles).unwrap();
        // What a Kubernetes ConfigMap volume holds beside the files, and an editor's leftover:
        // neither is rule data.
        fs::create_dir(overlay.path().join("..2026_11_28_00_00_00.1")).unwrap();
        fs::write(
            overlay.path().join("..2026_11_28_00_00_00.1/reasons.toml"),
            "not toml [",
        )
        .unwrap();
        fs::write(overlay.path().join(".profiles.toml.swp"), "junk").unwrap();
        let source = RulesSource {
            dir: None,
            overlay: Some(overlay.path().to_path_buf()),
        };
        let overlaid = source.load().unwrap();
        assert_eq!(
            medicare_npi_setting(&overlaid),
            RuleSetting::On(Severity::Warning)
        );
        assert_ne!(overlaid.version(), built_in.version());
        assert!(source.describe().contains("(built in) + overlay"));
    }

    #[test]
    fn the_fingerprint_changes_with_the_files_and_not_otherwise() {
        assert_eq!(RulesSource::default().fingerprint(), None);
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("profiles.toml"), "a").unwrap();
        let source = RulesSource {
            dir: Some(dir.path().to_path_buf()),
            overlay: None,
        };
        let first = source.fingerprint();
        assert_eq!(source.fingerprint(), first);
        fs::write(dir.path().join("profiles.toml"), "ab").unwrap();
        assert_ne!(source.fingerprint(), first);
        let second = source.fingerprint();
        fs::write(dir.path().join("new.toml"), "").unwrap();
        assert_ne!(source.fingerprint(), second);
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_loop_is_refused_not_followed_forever() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
        let source = RulesSource {
            dir: None,
            overlay: Some(dir.path().to_path_buf()),
        };
        let error = source.load().unwrap_err();
        assert!(
            crate::telemetry::error_chain(&error).contains("symbolic link loop"),
            "{error}"
        );
        assert!(source.fingerprint().is_some());
    }
}
