//! A new user's first commands: `infra new` with each starter gives a
//! directory that validates and formats clean, and says what to run next; an
//! occupied directory is refused untouched.

use crate::support::TestEnv;

#[test]
fn every_starter_validates_and_is_formatted() {
    let env = TestEnv::new();
    for (starter, next) in
        [("quickstart", "-var base_image="), ("server", "ssh-keyscan"), ("fleet", "-var-file fleet.infravars")]
    {
        let dir = format!("new-{starter}");
        let made = env.infra(&["new", &dir, "-template", starter]).success();
        assert!(made.stdout.starts_with(&format!("Created {dir} (")), "{}", made.stdout);
        assert!(
            made.stdout.contains(&format!("cd {dir}\n  infra validate\n")) && made.stdout.contains(next),
            "{}",
            made.stdout
        );
        let validate = env.infra(&["-chdir", &dir, "validate"]).success();
        assert!(validate.stdout.contains("The configuration is valid"), "{starter}: {}", validate.stdout);
        env.infra(&["-chdir", &dir, "fmt", "-check"]).success();
    }
    assert!(env.exists("new-server/modules/hardened-server/templates/login.defs"), "the module comes along");
    assert!(env.read("new-fleet/main.infra").contains("source      = \"./modules/hardened-server\""));
    let entrypoint = env.join("new-quickstart/images/postgres/entrypoint.sh");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(entrypoint).map(|m| m.permissions().mode() & 0o777).unwrap_or_default();
    assert_eq!(mode, 0o755, "scripts stay executable");
}

#[test]
fn an_occupied_directory_is_refused_and_left_alone() {
    let env = TestEnv::new();
    env.write("taken/notes.txt", "mine\n");
    let refused = env.infra(&["new", "taken"]).failure();
    assert!(TestEnv::flat(&refused.stderr).contains("taken already exists and is not empty"), "{}", refused.stderr);
    assert_eq!(std::fs::read_dir(env.join("taken")).map(|d| d.count()).unwrap_or_default(), 1);
    assert_eq!(env.read("taken/notes.txt"), "mine\n");
}

/// `scripts/install` (what `scripts/quickstart` runs first) puts a stripped
/// binary in PREFIX/bin that runs, with its debug information beside it and
/// linked, so a backtrace can still be symbolised. Installed here from the
/// test build, which carries full debug information.
#[test]
fn install_puts_a_stripped_binary_on_the_path_with_its_debug_information_linked() {
    let env = TestEnv::new();
    let prefix = env.join("prefix");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install");
    let out = std::process::Command::new("bash")
        .arg(script)
        .env("INFRA_BINARY", env!("CARGO_BIN_EXE_infra"))
        .env("INFRA_PREFIX", &prefix)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let installed = prefix.join("bin/infra");
    assert!(stdout.contains(&format!("installed {}", installed.display())), "{stdout}");
    assert!(stdout.contains("is not on your PATH; add it with:"), "the one line to add it: {stdout}");
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or_default();
    let built = std::path::Path::new(env!("CARGO_BIN_EXE_infra"));
    assert!(size(&installed) * 2 < size(built), "stripped: {} of {} bytes", size(&installed), size(built));
    assert!(size(&prefix.join("bin/.debug/infra.debug")) > size(&installed), "the debug information is kept");
    let link = std::process::Command::new("objcopy")
        .args(["--dump-section", ".gnu_debuglink=/dev/stdout"])
        .arg(&installed)
        .arg(env.join("scratch"))
        .output()
        .expect("objcopy runs");
    assert!(String::from_utf8_lossy(&link.stdout).starts_with("infra.debug"), "debuglink: {:?}", link);
    let version = std::process::Command::new(&installed).arg("--version").output().expect("the installed infra runs");
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("infra "), "{version:?}");
}
