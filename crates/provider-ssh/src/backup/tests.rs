//! What a backup's configuration becomes on the server, and how its secrets
//! stay out of state and plans.

use infra_core::Value;

use super::{plan, settings, validate};

fn config(json: serde_json::Value) -> Value {
    Value::from_json(&json)
}

#[test]
fn settings_are_one_file_each_and_retention_becomes_forget_flags() {
    let backup = config(serde_json::json!({
        "paths": ["/srv/data", "/etc"], "exclude": ["*.tmp"], "repository": "/var/backups/restic",
        "schedule": "daily", "verify": "weekly", "keep": { "daily": 7, "weekly": 4, "monthly": 6 },
        "before": ["systemctl", "stop", "app"], "limit_upload": 2048
    }));
    let files: std::collections::BTreeMap<String, String> =
        settings(&backup, "data").into_iter().map(|(p, b)| (p, String::from_utf8_lossy(&b).into_owned())).collect();
    assert_eq!(files["/etc/infra/backup/data/paths"], "/srv/data\0/etc\0");
    assert_eq!(files["/etc/infra/backup/data/keep"], "--keep-daily\n7\n--keep-weekly\n4\n--keep-monthly\n6\n");
    assert_eq!(files["/etc/infra/backup/data/before"], "systemctl\0stop\0app\0");
    assert_eq!(files["/etc/infra/backup/data/limit_upload"], "2048");
    assert!(files["/etc/systemd/system/infra-backup-data.timer"].contains("OnCalendar=daily\n"));
    assert!(files["/etc/systemd/system/infra-backup-verify-data.timer"].contains("OnCalendar=weekly\n"));
    assert!(
        files["/etc/systemd/system/infra-backup-data.service"]
            .contains("ExecStart=/usr/local/sbin/infra-backup run data\n")
    );
    assert!(!files.keys().any(|p| p.ends_with("password")), "secrets are not settings");
}

#[test]
fn an_unchanged_password_stays_out_of_the_plan() {
    let written = config(serde_json::json!({
        "name": "data", "paths": ["/srv"], "repository": "/r", "password": "s3cret", "schedule": "daily"
    }));
    let first = plan(None, written.clone());
    assert_eq!(first.get("password").and_then(Value::as_str), Some("s3cret"), "a new backup needs it");
    let digest = first.get("secrets_digest").and_then(Value::as_str).expect("a digest").to_string();
    assert!(!digest.contains("s3cret"));
    let recorded = config(serde_json::json!({ "name": "data", "secrets_digest": digest }));
    let again = plan(Some(&recorded), written.clone());
    assert_eq!(again.get("password"), Some(&Value::Null), "unchanged: not sent, not shown");
    let mut changed = written;
    changed.set("password", Value::string("new one"));
    let changed = plan(Some(&recorded), changed);
    assert_eq!(changed.get("password").and_then(Value::as_str), Some("new one"));
}

#[test]
fn mistakes_are_named_by_their_attribute() {
    let errors: Vec<String> = validate(&config(serde_json::json!({
        "paths": ["relative/path"], "password": "", "repository": "/r", "keep": { "daily": -1 }, "before": []
    })))
    .into_iter()
    .map(|e| e.attribute.unwrap_or_default())
    .collect();
    assert_eq!(errors, ["paths[0]", "password", "keep.daily", "before"]);
}
