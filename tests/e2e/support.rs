//! A test environment: a temporary working directory, a cleared environment
//! with fixed user and home, and a way to run `infra` in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct TestEnv {
    dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn failure(self) -> Run {
        assert_eq!(self.code, 1, "expected exit 1\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new().prefix("infra-e2e-").tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        TestEnv { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// This environment's unique name in a form Docker accepts in object names.
    pub fn docker_suffix(&self) -> String {
        self.path().file_name().unwrap_or_default().to_string_lossy().to_lowercase().replace(['_', '.'], "-")
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("parent dir");
        }
        std::fs::write(path, text).expect("write");
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    /// The lineage of this directory's state file (it must exist).
    pub fn lineage(&self) -> String {
        self.lineage_of("infra.state")
    }

    /// The lineage of the state file at `rel` (it must exist).
    pub fn lineage_of(&self, rel: &str) -> String {
        let state: serde_json::Value = serde_json::from_str(&self.read(rel)).expect("state is JSON");
        state["lineage"].as_str().expect("lineage").to_string()
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.join(rel).exists()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_infra"));
        command
            .args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.join("home"))
            .env("USER", "tester")
            .stdin(std::process::Stdio::null());
        command
    }

    pub fn infra(&self, args: &[&str]) -> Run {
        self.command(args).output().expect("run infra").into()
    }

    /// Error text with miette's line wrapping undone, for `contains` checks.
    pub fn flat(text: &str) -> String {
        text.lines().map(|l| l.trim_start_matches([' ', '│', '×']).trim_end()).collect::<Vec<_>>().join(" ")
    }

    /// Replaces what varies between runs (lineages, lock ids, times, the temp dir).
    pub fn stable(&self, text: &str) -> String {
        let mut out = text.replace(&self.path().display().to_string(), "[TMP]");
        out = redact_uuids(&out);
        out
    }
}

fn redact_uuids(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let is_uuid = |s: &[u8]| {
        s.len() >= 36
            && s[..36]
                .iter()
                .enumerate()
                .all(|(j, c)| if [8, 13, 18, 23].contains(&j) { *c == b'-' } else { c.is_ascii_hexdigit() })
    };
    while i < bytes.len() {
        if is_uuid(&bytes[i..]) {
            out.push_str("[UUID]");
            i += 36;
        } else {
            let ch = text[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Helpers for the tests that run against the real Docker daemon.
pub mod docker {
    use std::path::Path;
    use std::process::Command;

    /// Runs the docker CLI and returns its trimmed stdout.
    pub fn docker(args: &[&str]) -> String {
        let out = Command::new("docker").args(args).output().expect("the docker CLI runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The tag of the Debian base image every test image starts FROM (built once).
    pub fn base_image() -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/base-image");
        let out = Command::new("bash").arg(script).output().expect("base-image runs");
        assert!(out.status.success(), "building the base image failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Copies the files of a directory of this repository that git tracks or
    /// would track, never what it ignores: a test starts from what is
    /// committed, not from the state files a user's own run of an example left
    /// there (`scripts/quickstart`, then `scripts/test`).
    pub fn copy_dir(from: &Path, to: &Path) {
        let out = Command::new("git")
            .arg("-C")
            .arg(from)
            .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."])
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "the tests copy {} as git sees it; run them in a git checkout: {}",
            from.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        for relative in out.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
            let relative = Path::new(std::str::from_utf8(relative).expect("a UTF-8 path"));
            let source = from.join(relative);
            if !source.is_file() {
                continue; // tracked, but deleted in the working tree
            }
            let target = to.join(relative);
            std::fs::create_dir_all(target.parent().expect("a file has a parent")).expect("mkdir");
            std::fs::copy(&source, &target).expect("copy");
        }
    }

    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
    }

    /// The ids of every object of one kind (`ps -a`, `network ls`, `volume ls`,
    /// `images`) labelled with this lineage.
    pub fn labelled(list: &[&str], lineage: &str) -> Vec<String> {
        let filter = format!("label=infra.lineage={lineage}");
        let mut args = list.to_vec();
        args.extend(["-q", "--filter", &filter]);
        docker(&args).lines().map(str::to_string).collect()
    }

    /// Removes everything labelled with a lineage: containers, networks,
    /// volumes, images. For test guards, whatever happened.
    pub fn remove_labelled(lineage: &str) {
        for (list, remove) in [
            (&["ps", "-a"][..], &["rm", "-f"][..]),
            (&["network", "ls"], &["network", "rm"]),
            (&["volume", "ls"], &["volume", "rm"]),
            (&["images"], &["rmi", "-f"]),
        ] {
            for id in labelled(list, lineage) {
                let _ = Command::new("docker").args(remove).arg(id).output();
            }
        }
    }
}

/// A real PostgreSQL for the team-workflow tests (`scripts/postgres-server`).
pub mod postgres {
    use std::io::{BufRead, BufReader};
    use std::path::Path;
    use std::process::{Child, Command, Stdio};

    use super::{Run, TestEnv};

    /// A PostgreSQL server of its own on a free 127.0.0.1 port; gone when dropped.
    pub struct Postgres {
        server: Child,
        pub url: String,
        /// With `--tls`: the certificate of the CA that signed the server's.
        pub ca_file: Option<String>,
    }

    impl Postgres {
        pub fn start() -> Postgres {
            Postgres::start_with(&[])
        }

        pub fn start_with(options: &[&str]) -> Postgres {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres-server");
            let mut server = Command::new("bash")
                .arg(script)
                .args(options)
                // postgres-server stops when its stdin closes: with this test.
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("scripts/postgres-server runs (apt-get install postgresql)");
            let stdout = server.stdout.take().expect("stdout");
            let mut lines = BufReader::new(stdout);
            let mut first = String::new();
            lines.read_line(&mut first).expect("postgres-server prints its address");
            let url = first
                .trim()
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("postgres-server said {first:?}"))
                .to_string();
            let ca_file = options.contains(&"--tls").then(|| {
                let mut second = String::new();
                lines.read_line(&mut second).expect("postgres-server names its CA");
                second
                    .trim()
                    .strip_prefix("ca-file ")
                    .unwrap_or_else(|| panic!("postgres-server said {second:?}"))
                    .to_string()
            });
            Postgres { server, url, ca_file }
        }

        pub fn command(&self, env: &TestEnv, args: &[&str]) -> Command {
            let mut command = env.command(args);
            command.env("INFRA_PG", &self.url);
            command
        }

        pub fn infra(&self, env: &TestEnv, args: &[&str]) -> Run {
            self.command(env, args).output().expect("run infra").into()
        }

        /// One SQL query's rows, `|`-separated, through psql.
        pub fn sql(&self, query: &str) -> String {
            self.try_sql(query).unwrap_or_else(|e| panic!("psql: {e}"))
        }

        /// The same, for a query that may fail (a table infra has not made yet).
        pub fn try_sql(&self, query: &str) -> Result<String, String> {
            let out = Command::new("psql").args([&self.url, "-At", "-c", query]).output().expect("psql runs");
            if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        }
    }

    impl Drop for Postgres {
        fn drop(&mut self) {
            drop(self.server.stdin.take());
            let _ = self.server.wait();
        }
    }

    pub const BACKEND: &str = "backend \"postgres\" {\n  conn = env(\"INFRA_PG\")\n}\n";
}
