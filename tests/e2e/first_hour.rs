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
