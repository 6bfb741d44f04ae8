//! `backup` against a real systemd test server and real restic: a directory
//! backed up, changed, and restored byte for byte; the timer firing by itself;
//! retention over snapshots with simulated times; `verify` passing, then
//! catching a damaged repository; and the errors a user meets (a wrong
//! password, an unreachable repository, a full disk, a missing source), each
//! naming the backup and leaving state as it was.

use std::time::{Duration, Instant};

use crate::ssh::{TestServer, key_pair};
use crate::support::TestEnv;

const PASSWORD: &str = "correct horse battery staple";

fn backup_block(name: &str, body: &str) -> String {
    format!("backup \"{name}\" {{\n  server   = server.box\n  password = var.restic_password\n{body}}}\n")
}

fn configuration(server: &TestServer, key: &std::path::Path, backups: &str) -> String {
    format!(
        "{}\nvariable \"restic_password\" {{\n  sensitive = true\n  default   = \"{PASSWORD}\"\n}}\n\n{backups}",
        server.block("box", key)
    )
}

const DATA: &str =
    "  paths      = [\"/srv/data\"]\n  repository = \"/var/backups/data\"\n  schedule   = \"SCHEDULE\"\n";

/// sha256 of every file under a directory, relative names, sorted.
fn checksums(server: &TestServer, dir: &str) -> String {
    server.sh(&format!("cd {dir} && find . -type f -print0 | sort -z | xargs -0 sha256sum"))
}

/// restic on the server with a backup's own settings (for what infra does not
/// do itself: snapshots with simulated times).
fn restic(server: &TestServer, name: &str, args: &str) -> String {
    server.sh(&format!(
        "RESTIC_REPOSITORY=$(cat /etc/infra/backup/{name}/repository) RESTIC_PASSWORD_FILE=/etc/infra/backup/{name}/password restic {args}"
    ))
}

#[test]
fn a_directory_backup_restores_byte_identical_on_schedule_with_retention_and_verify() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let server = TestServer::start_with_systemd(&key);
    server.sh("mkdir -p /srv/data/sub && head -c 300000 /dev/urandom > /srv/data/blob \
         && printf 'hello\\n' > /srv/data/a.txt && printf 'x\\0y' > '/srv/data/sub/odd name'");
    let original = checksums(&server, "/srv/data");
    let every_5s = DATA.replace("SCHEDULE", "*:*:0/5");
    env.write("main.infra", &configuration(&server, &key, &backup_block("data", &every_5s)));
    let plan = env.infra(&["plan", "-no-color"]).success();
    assert!(plan.stdout.contains("+ password        = (sensitive value)"), "{}", plan.stdout);
    // The password shows in no format, nor in the saved plan a CI job keeps.
    for format in ["json", "markdown"] {
        let other = env.infra(&["plan", "-format", format]).success();
        assert!(!other.stdout.contains(PASSWORD), "plan -format {format} shows the password");
    }
    env.infra(&["plan", "-out", "plan.bin"]).success();
    assert!(!String::from_utf8_lossy(&std::fs::read(env.join("plan.bin")).expect("plan")).contains(PASSWORD));
    env.infra(&["apply", "plan.bin"]).success();
    assert!(!env.read("infra.state").contains(PASSWORD), "the password is not in state");
    for args in [&["show"][..], &["show", "-format", "json"], &["state", "show", "backup.data"], &["output"]] {
        let shown = env.infra(args).success();
        assert!(!shown.stdout.contains(PASSWORD) && !shown.stderr.contains(PASSWORD), "{args:?} shows the password");
    }

    // The timer fires by itself: a snapshot appears without infra asking.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !restic(&server, "data", "snapshots --json").contains("short_id") {
        assert!(
            Instant::now() < deadline,
            "the timer never ran the backup: {}",
            server.sh("systemctl status infra-backup-data.service 2>&1 | tail -5")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let status = env.infra(&["backup", "status", "backup.data"]).success();
    assert!(status.stdout.contains("Result=success"), "{}", status.stdout);
    env.write("main.infra", &configuration(&server, &key, &backup_block("data", &DATA.replace("SCHEDULE", "daily"))));
    let changed = env.infra(&["plan", "-no-color"]).success();
    assert!(
        !changed.stdout.contains("password"),
        "an unchanged password is neither sent nor shown: {}",
        changed.stdout
    );
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0, "no changes after apply");

    // Run, change the source, restore: byte for byte what was backed up.
    let run = env.infra(&["backup", "run", "backup.data"]).success();
    assert!(run.stdout.contains("snapshot") && run.stdout.contains("saved"), "{}", run.stdout);
    server.sh("rm /srv/data/a.txt && head -c 1000 /dev/urandom > /srv/data/blob && echo new > /srv/data/new");
    env.infra(&["restore", "backup.data", "--to", "/srv/restored"]).success();
    assert_eq!(checksums(&server, "/srv/restored/srv/data"), original, "restored byte-identical");
    let list = env.infra(&["backup", "list", "backup.data"]).success();
    assert!(list.stdout.contains("/srv/data") && list.stdout.contains("KiB"), "{}", list.stdout);

    // verify: a fresh snapshot matches its source; a damaged repository does not pass.
    env.infra(&["backup", "run", "backup.data"]).success();
    let verify = env.infra(&["backup", "verify", "backup.data"]).success();
    assert!(verify.stdout.contains("no errors") && verify.stdout.contains("0 differ"), "{}", verify.stdout);
    server.sh("f=$(find /var/backups/data/data -type f | head -n 1) && printf 'damage' | dd of=$f bs=1 seek=40 conv=notrunc 2>/dev/null");
    let damaged = env.infra(&["backup", "verify", "backup.data"]).failure();
    assert!(
        TestEnv::flat(&damaged.stderr).contains("backup data: restic check found the repository damaged"),
        "{}",
        damaged.stderr
    );

    // Retention over snapshots with simulated times: keep { daily = 3 } keeps exactly three days.
    server.sh("mkdir -p /srv/kept && echo k > /srv/kept/file");
    let kept = "  paths      = [\"/srv/kept\"]\n  repository = \"/var/backups/kept\"\n  schedule   = \"\"\n  keep {\n    daily = 3\n  }\n";
    let both = format!("{}{}", backup_block("data", &DATA.replace("SCHEDULE", "daily")), backup_block("kept", kept));
    env.write("main.infra", &configuration(&server, &key, &both));
    env.infra(&["apply", "-auto-approve"]).success();
    for day in 1..=6 {
        restic(
            &server,
            "kept",
            &format!(
                "backup --tag infra --time \"$(date -u -d '{day} days ago' '+%Y-%m-%d 03:00:00')\" /srv/kept >/dev/null"
            ),
        );
    }
    env.infra(&["backup", "run", "backup.kept"]).success();
    let times = restic(&server, "kept", "snapshots --json | grep -o '\"time\":\"[0-9-]*' | cut -d'\"' -f4 | sort -r");
    let expected: Vec<String> = (0..=2).map(|d| server.sh(&format!("date -u -d '{d} days ago' +%Y-%m-%d"))).collect();
    assert_eq!(times.lines().collect::<Vec<_>>(), expected, "today's snapshot and the two days before it");
}

#[test]
fn backup_errors_name_the_backup_and_leave_state_as_it_was() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let server = TestServer::start_with_systemd(&key);
    server.sh("mkdir -p /srv/data /mnt/small && head -c 3000000 /dev/urandom > /srv/data/big && mount -t tmpfs -o size=1m tmpfs /mnt/small");
    let body = |paths: &str, repository: &str| {
        format!("  paths      = [\"{paths}\"]\n  repository = \"{repository}\"\n  schedule   = \"\"\n")
    };
    env.write(
        "main.infra",
        &configuration(&server, &key, &backup_block("ok", &body("/srv/data", "/var/backups/shared"))),
    );
    env.infra(&["apply", "-auto-approve"]).success();
    let state = env.read("infra.state");

    // The same repository with another password.
    let other = format!(
        "{}backup \"other\" {{\n  server   = server.box\n  password = \"not the one\"\n{}}}\n",
        backup_block("ok", &body("/srv/data", "/var/backups/shared")),
        body("/srv/data", "/var/backups/shared")
    );
    env.write("main.infra", &configuration(&server, &key, &other));
    let wrong = env.infra(&["apply", "-auto-approve"]).failure();
    let message = TestEnv::flat(&wrong.stderr);
    assert!(message.contains("backup.other: creating failed") && message.contains("refused the password"), "{message}");
    assert!(!message.contains("not the one"), "the password is not printed");
    assert_eq!(env.read("infra.state").len(), state.len(), "nothing recorded");

    // A repository that cannot be reached.
    let unreachable = backup_block("far", &body("/srv/data", "sftp://nobody@127.0.0.1:1//srv/none"));
    env.write(
        "main.infra",
        &configuration(
            &server,
            &key,
            &format!("{}{unreachable}", backup_block("ok", &body("/srv/data", "/var/backups/shared"))),
        ),
    );
    let far = env.infra(&["apply", "-auto-approve"]).failure();
    let far = TestEnv::flat(&far.stderr);
    assert!(far.contains("backup far: the repository sftp://") && far.contains("cannot be reached"), "{far}");
    assert!(far.contains("unable to open repository"), "restic's own words come along: {far}");

    // A full disk and a missing source fail the run, by name.
    let small = backup_block("small", &body("/srv/data", "/mnt/small/repo"));
    let missing = backup_block("missing", &body("/srv/none", "/var/backups/missing"));
    env.write(
        "main.infra",
        &configuration(
            &server,
            &key,
            &format!("{}{small}{missing}", backup_block("ok", &body("/srv/data", "/var/backups/shared"))),
        ),
    );
    env.infra(&["apply", "-auto-approve"]).success();
    let full = env.infra(&["backup", "run", "backup.small"]).failure();
    let full = TestEnv::flat(&full.stderr);
    assert!(full.contains("backup small: restic backup failed") && full.contains("no space left"), "{full}");
    let gone = env.infra(&["backup", "run", "backup.missing"]).failure();
    assert!(
        TestEnv::flat(&gone.stderr).contains("backup missing: the source /srv/none does not exist"),
        "{}",
        gone.stderr
    );
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0, "failed runs leave state as it was");

    // Destroying a backup keeps the repository's data.
    env.write("main.infra", &configuration(&server, &key, ""));
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(server.sh("test -f /var/backups/shared/config && echo kept"), "kept");
    assert_eq!(server.sh("ls /etc/systemd/system | grep -c infra-backup || true"), "0");
}

#[test]
fn a_backup_goes_to_another_server_over_sftp() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let network = format!("infra-e2e-sftp-{}", env.docker_suffix());
    crate::support::docker::docker(&["network", "create", "--label", "infra-e2e=ssh", &network]);
    struct Network(String);
    impl Drop for Network {
        fn drop(&mut self) {
            let _ = std::process::Command::new("docker").args(["network", "rm", &self.0]).output();
        }
    }
    let _network = Network(network.clone());
    let storage_name = format!("{network}-storage");
    let storage = TestServer::run(&key, &["--network", &network, "--name", &storage_name], &[]);
    let source = TestServer::run(&key, &["--network", &network], &[]);
    // The source's root logs in to the storage server with a key of its own,
    // whose host key it knows.
    source.sh("ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519");
    let public = source.sh("cat /root/.ssh/id_ed25519.pub");
    storage.sh(&format!("printf '%s\\n' '{public}' >> /root/.ssh/authorized_keys && mkdir -p /srv/restic"));
    source.sh(&format!("ssh-keyscan -t ed25519 {storage_name} > /root/.ssh/known_hosts 2>/dev/null"));
    source.sh("mkdir -p /srv/data && printf 'kept elsewhere\\n' > /srv/data/file");
    let offsite = format!(
        "  paths      = [\"/srv/data\"]\n  repository = \"sftp:root@{storage_name}:/srv/restic/box\"\n  schedule   = \"\"\n"
    );
    env.write("main.infra", &configuration(&source, &key, &backup_block("offsite", &offsite)));
    env.infra(&["apply", "-auto-approve"]).success();
    env.infra(&["backup", "run", "backup.offsite"]).success();
    assert_eq!(
        storage.sh("test -f /srv/restic/box/config && ls /srv/restic/box/snapshots | wc -l"),
        "1",
        "the snapshot is on the storage server"
    );
    source.sh("rm -rf /srv/data");
    env.infra(&["restore", "backup.offsite", "--to", "/"]).success();
    assert_eq!(source.sh("cat /srv/data/file"), "kept elsewhere");
}

/// A changed password: the new one is added as a key beside the old one, both
/// open the repository until a backup with the new one succeeds, then the old
/// key is gone; a restore with the new password gets the data back.
#[test]
fn a_changed_password_is_added_and_the_old_key_goes_after_the_next_backup() {
    const NEW: &str = "a new password for the backups";
    let env = TestEnv::new();
    let key = key_pair(&env);
    let server = TestServer::start_with_systemd(&key);
    server.sh("mkdir -p /srv/data && echo before > /srv/data/a.txt");
    env.write("main.infra", &configuration(&server, &key, &backup_block("data", &DATA.replace("SCHEDULE", ""))));
    env.infra(&["apply", "-auto-approve"]).success();
    env.infra(&["backup", "run", "backup.data"]).success();
    let opens = |password: &str| {
        server.sh(&format!(
            "printf %s '{password}' > /tmp/pw && RESTIC_REPOSITORY=/var/backups/data RESTIC_PASSWORD_FILE=/tmp/pw \
             restic cat config >/dev/null 2>&1 && echo opens || echo refused"
        )) == "opens"
    };
    assert!(opens(PASSWORD) && !opens(NEW));

    let new = format!("restic_password={NEW}");
    let changed = env.infra(&["apply", "-auto-approve", "-var", &new]).success();
    assert!(!changed.stdout.contains(NEW), "{}", changed.stdout);
    assert!(opens(PASSWORD) && opens(NEW), "both keys open the repository until a backup with the new one");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode", "-var", &new]).code, 0, "applied");

    server.sh("echo after > /srv/data/a.txt");
    let run = env.infra(&["backup", "run", "backup.data", "-var", &new]).success();
    assert!(run.stdout.contains("the old password's key was removed"), "{}", run.stdout);
    assert!(!opens(PASSWORD) && opens(NEW), "the old key is gone once the new one has made a backup");
    env.infra(&["restore", "backup.data", "--to", "/srv/restored", "-var", &new]).success();
    assert_eq!(server.sh("cat /srv/restored/srv/data/a.txt"), "after");
}
