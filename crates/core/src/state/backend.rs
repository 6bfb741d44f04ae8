//! Backends: where the states of a configuration's environments are kept.
//!
//! One configuration has one state per environment (`default`, `staging`, ...).
//! A [`Backend`] hands out the [`StateStore`] of each and knows which exist.
//! [`LocalBackend`] keeps them as files, as Terraform keeps workspaces: the
//! default environment in `infra.state`, the others in
//! `infra.state.d/NAME/infra.state` beside it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Encryption, LocalStore, StateError, StateStore};

/// The environment a configuration uses until another is selected.
pub const DEFAULT_ENVIRONMENT: &str = "default";

/// Keeps one state per environment.
pub trait Backend: Send + Sync {
    /// Where, for messages (never a password).
    fn describe(&self) -> String;
    /// The store of one environment, whether or not it holds state yet.
    fn store(&self, environment: &str) -> Result<Box<dyn StateStore>, StateError>;
    /// The environments that hold a state, sorted.
    fn environments(&self) -> Result<Vec<String>, StateError>;
    /// Forgets an environment's state (and its history, where kept). The caller
    /// holds its lock and has checked that it manages nothing.
    fn delete_environment(&self, environment: &str) -> Result<(), StateError>;

    /// Whether an environment holds a state.
    fn has_environment(&self, environment: &str) -> Result<bool, StateError> {
        Ok(environment == DEFAULT_ENVIRONMENT || self.environments()?.iter().any(|e| e == environment))
    }
}

/// Environment names become file names and database keys: letters, digits, `-`
/// and `_`, starting with a letter or digit.
pub fn check_environment_name(name: &str) -> Result<(), StateError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(StateError::Environment(format!(
            "{name:?} is not a valid environment name: use up to 64 letters, digits, `-` and `_`, starting with a \
             letter or digit"
        )))
    }
}

#[derive(Clone, Debug)]
pub struct LocalBackend {
    /// The default environment's state file.
    default_path: PathBuf,
    encryption: Option<Arc<Encryption>>,
}

impl LocalBackend {
    pub fn new(default_path: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend { default_path: default_path.into(), encryption: None }
    }

    /// Every environment's state sealed with these keys.
    pub fn with_encryption(mut self, encryption: Option<Arc<Encryption>>) -> LocalBackend {
        self.encryption = encryption;
        self
    }

    fn environments_dir(&self) -> PathBuf {
        let mut name = self.file_name().to_os_string();
        name.push(".d");
        self.default_path.with_file_name(name)
    }

    fn file_name(&self) -> &std::ffi::OsStr {
        self.default_path.file_name().unwrap_or(std::ffi::OsStr::new("infra.state"))
    }

    /// The state file of an environment.
    pub fn path(&self, environment: &str) -> PathBuf {
        if environment == DEFAULT_ENVIRONMENT {
            self.default_path.clone()
        } else {
            self.environments_dir().join(environment).join(self.file_name())
        }
    }
}

impl Backend for LocalBackend {
    fn describe(&self) -> String {
        format!("local state files ({})", self.default_path.display())
    }

    fn store(&self, environment: &str) -> Result<Box<dyn StateStore>, StateError> {
        check_environment_name(environment)?;
        let path = self.path(environment);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            std::fs::create_dir_all(dir).map_err(|source| StateError::Io {
                action: "create the directory of",
                path: path.display().to_string(),
                source,
            })?;
        }
        Ok(Box::new(LocalStore::new(path).with_encryption(self.encryption.clone())))
    }

    fn environments(&self) -> Result<Vec<String>, StateError> {
        let mut names = Vec::new();
        if self.default_path.exists() {
            names.push(DEFAULT_ENVIRONMENT.to_string());
        }
        let dir = self.environments_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
            Err(source) => return Err(StateError::Io { action: "list", path: dir.display().to_string(), source }),
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if check_environment_name(&name).is_ok() && entry.path().join(self.file_name()).exists() {
                names.push(name);
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn delete_environment(&self, environment: &str) -> Result<(), StateError> {
        check_environment_name(environment)?;
        if environment == DEFAULT_ENVIRONMENT {
            return Err(StateError::Environment("the default environment cannot be deleted".into()));
        }
        let dir = self.environments_dir().join(environment);
        // The lock file stays until the caller lets go of it; everything else goes.
        for entry in std::fs::read_dir(&dir).map_err(io_error("list", &dir))?.filter_map(Result::ok) {
            let lock = entry.file_name().to_string_lossy().ends_with(".lock");
            if !lock {
                std::fs::remove_file(entry.path()).map_err(io_error("remove", &entry.path()))?;
            }
        }
        Ok(())
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
    let path = path.display().to_string();
    move |source| StateError::Io { action, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;

    #[test]
    fn environments_are_files_beside_the_default_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = LocalBackend::new(dir.path().join("infra.state"));
        assert!(backend.environments().expect("lists").is_empty());
        backend.store("staging").expect("store").save(&State::new()).expect("saves");
        backend.store("default").expect("store").save(&State::new()).expect("saves");
        assert_eq!(backend.environments().expect("lists"), ["default", "staging"]);
        assert!(dir.path().join("infra.state.d/staging/infra.state").exists());
        backend.delete_environment("staging").expect("deletes");
        assert_eq!(backend.environments().expect("lists"), ["default"]);
        assert!(backend.delete_environment("default").is_err());
    }

    #[test]
    fn environment_names_are_checked() {
        for good in ["staging", "prod-eu_1", "2026"] {
            check_environment_name(good).expect(good);
        }
        for bad in ["", "../x", "a/b", "-x", "a b", &"x".repeat(65)] {
            assert!(check_environment_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
