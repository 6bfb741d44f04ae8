//! `infra new DIR`: a directory to start from, as `cargo new` makes one. The
//! starters are the repository's own examples and modules, built into the
//! binary, so what `infra new` writes is what CI plans, applies and validates.
//! (Not `infra init`: that keeps Terraform's meaning, choosing where state lives.)

use std::path::{Path, PathBuf};

use crate::args::Starter;
use crate::report::CliError;

/// A file of a starter: its path in the new directory and its text.
type StarterFile = (&'static str, &'static str);

const QUICKSTART: &[StarterFile] = &[
    ("images/backup/Dockerfile", include_str!("../../../examples/quickstart/images/backup/Dockerfile")),
    ("images/postgres/Dockerfile", include_str!("../../../examples/quickstart/images/postgres/Dockerfile")),
    ("images/postgres/entrypoint.sh", include_str!("../../../examples/quickstart/images/postgres/entrypoint.sh")),
    ("images/queue/Dockerfile", include_str!("../../../examples/quickstart/images/queue/Dockerfile")),
    ("images/redis/Dockerfile", include_str!("../../../examples/quickstart/images/redis/Dockerfile")),
    ("images/web/Dockerfile", include_str!("../../../examples/quickstart/images/web/Dockerfile")),
    ("images/web/app.py", include_str!("../../../examples/quickstart/images/web/app.py")),
    ("main.infra", include_str!("../../../examples/quickstart/main.infra")),
];

const HARDENED_SERVER_MODULE: &[StarterFile] = &[
    ("modules/hardened-server/main.infra", include_str!("../../../modules/hardened-server/main.infra")),
    (
        "modules/hardened-server/templates/audit.rules",
        include_str!("../../../modules/hardened-server/templates/audit.rules"),
    ),
    (
        "modules/hardened-server/templates/login.defs",
        include_str!("../../../modules/hardened-server/templates/login.defs"),
    ),
    (
        "modules/hardened-server/templates/modprobe.conf",
        include_str!("../../../modules/hardened-server/templates/modprobe.conf"),
    ),
];

const SERVER: &[StarterFile] = &[("main.infra", include_str!("../../../examples/hardened-server/main.infra"))];

const FLEET: &[StarterFile] = &[("main.infra", include_str!("../../../examples/fleet/main.infra"))];

/// What a starter is made of and what to run next in it.
fn parts(starter: Starter) -> (Vec<StarterFile>, &'static str) {
    match starter {
        Starter::Quickstart => (
            QUICKSTART.to_vec(),
            "infra plan -var base_image=debian:bookworm-slim   # the image local builds start FROM\n  \
             infra apply -var base_image=debian:bookworm-slim",
        ),
        Starter::Server => (
            [SERVER, HARDENED_SERVER_MODULE].concat(),
            "infra plan -var host=ADDRESS -var host_key=\"$(ssh-keyscan -t ed25519 ADDRESS 2>/dev/null | cut -d' ' -f2-)\" \\\n      \
             -var admin_key=\"$(cat ~/.ssh/id_ed25519.pub)\"",
        ),
        Starter::Fleet => (
            [FLEET, HARDENED_SERVER_MODULE].concat(),
            "infra plan -var-file fleet.infravars   # main.infra shows what goes in it",
        ),
    }
}

/// A starter's file as written in the new directory: examples call the
/// repository's modules two levels up; the new directory has its own copy.
fn text_in_new_dir(text: &str) -> String {
    text.replace("\"../../modules/", "\"./modules/")
}

/// Writes `starter` into `dir`, which must not exist or be empty. Returns the
/// number of files written and what to run next.
pub fn new(dir: &Path, starter: Starter) -> Result<(usize, &'static str), CliError> {
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        return Err(CliError::with_help(
            format!("{} already exists and is not empty", dir.display()),
            "infra new writes a new directory: name one that does not exist yet",
        ));
    }
    let (files, next) = parts(starter);
    for (relative, text) in &files {
        write(&dir.join(relative), &text_in_new_dir(text))?;
    }
    Ok((files.len(), next))
}

fn write(path: &PathBuf, text: &str) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError::message(format!("cannot write {}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(path, text).map_err(fail)?;
    if path.extension().is_some_and(|e| e == "sh") {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of the example and module directories is in a starter: a
    /// file added to the quickstart cannot be left out of `infra new`.
    #[test]
    fn the_starters_hold_every_file_of_their_directories() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (dir, files) in [("examples/quickstart", QUICKSTART), ("modules/hardened-server", HARDENED_SERVER_MODULE)] {
            let mut on_disk = Vec::new();
            collect(&root.join(dir), &mut on_disk);
            let prefix = if dir.starts_with("modules") { root.to_path_buf() } else { root.join(dir) };
            let mut on_disk: Vec<String> =
                on_disk.iter().filter_map(|p| Some(p.strip_prefix(&prefix).ok()?.display().to_string())).collect();
            on_disk.sort();
            let mut listed: Vec<String> = files.iter().map(|(p, _)| p.to_string()).collect();
            listed.sort();
            assert_eq!(listed, on_disk, "{dir}");
        }
    }

    /// The files of `dir`, without what running the example leaves (git ignores those).
    fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let left_by_a_run = name.starts_with("infra.state")
                || [".infravars", ".plan"].iter().any(|e| name.ends_with(e))
                || [".infra", "build"].contains(&name.as_str());
            if left_by_a_run {
                continue;
            }
            if path.is_dir() {
                collect(&path, out);
            } else {
                out.push(path);
            }
        }
    }
}
