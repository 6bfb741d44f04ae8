//! The `firewall` resource against real servers: systemd test servers with
//! NET_ADMIN, probed from the host through their published 127.0.0.1 ports
//! (bounded: one connection, a few seconds, per probe). Allowed ports answer,
//! blocked ones do not; drift is seen and repaired; the rules survive a
//! restart; rules that would cut SSH are rolled back by the server itself; and
//! on a server running Docker, published container ports obey the rules.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::ssh::{DockerHost, TestServer, key_pair};
use crate::support::TestEnv;
use crate::support::docker::{docker, free_port};

/// Sends `request` to 127.0.0.1:`port` and says whether `expected` came back
/// within three seconds. Through Docker's port publishing a connection is
/// always accepted; a filtered port is one that never answers.
fn answers(port: u16, request: &[u8], expected: &str) -> bool {
    let timeout = Duration::from_secs(3);
    let Ok(mut stream) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout) else { return false };
    let _ = stream.set_read_timeout(Some(timeout));
    if stream.write_all(request).is_err() {
        return false;
    }
    let mut reply = Vec::new();
    let mut buffer = [0u8; 512];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buffer[..n]);
        if String::from_utf8_lossy(&reply).contains(expected) {
            return true;
        }
    }
    false
}

fn echoes(port: u16) -> bool {
    answers(port, b"ping\n", "ping")
}

/// Echo services (systemd socket units, enabled) on the server's ports 8080 and 8081.
fn start_echo_services(server: &TestServer) {
    server.sh(
        r#"for p in 8080 8081; do
  printf '[Socket]\nListenStream=%s\nAccept=yes\n[Install]\nWantedBy=sockets.target\n' $p > /etc/systemd/system/echo$p.socket
  printf '[Service]\nExecStart=/bin/cat\nStandardInput=socket\n' > /etc/systemd/system/echo$p@.service
done
systemctl daemon-reload && systemctl enable --now echo8080.socket echo8081.socket"#,
    );
}

fn firewall_config(server: &TestServer, key: &std::path::Path, body: &str) -> String {
    format!(
        "{}\nfirewall \"box\" {{\n  server           = server.box\n  rollback_seconds = 20\n{body}}}\n",
        server.block("box", key)
    )
}

const ALLOW_8080: &str = "  rule \"app\" {\n    port = 8080\n  }\n";

#[test]
fn default_deny_with_drift_repair_restart_and_a_rollback_that_keeps_ssh() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let (ssh, app, other) = (free_port(), free_port(), free_port());
    let publish = [format!("127.0.0.1:{ssh}:22"), format!("127.0.0.1:{app}:8080"), format!("127.0.0.1:{other}:8081")];
    let options: Vec<&str> = publish.iter().flat_map(|p| ["-p", p.as_str()]).collect();
    let server = TestServer::start_with_systemd_and(&key, &options);
    start_echo_services(&server);
    assert!(echoes(app) && echoes(other), "both services answer before any firewall");

    env.write("main.infra", &firewall_config(&server, &key, ALLOW_8080));
    let plan = env.infra(&["plan", "-no-color"]).success();
    assert!(plan.stdout.contains("+ input_policy     = \"drop\""), "{}", plan.stdout);
    assert!(plan.stdout.contains("{ name = \"app\", port = 8080 }"), "rules are shown one by one: {}", plan.stdout);
    env.infra(&["apply", "-auto-approve"]).success();
    assert!(echoes(app), "the allowed port answers");
    assert!(!echoes(other), "the other port is dropped");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0, "no changes after apply");

    // A rule added by hand is drift, shown line by line, and apply takes it out.
    server.sh("nft add rule inet infra input tcp dport 8081 accept");
    assert!(echoes(other), "the hand-made rule opened the port");
    let drift = env.infra(&["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(drift.code, 2, "{}", drift.stdout);
    assert!(drift.stdout.contains("+ \"input: tcp dport 8081 accept\""), "{}", drift.stdout);
    env.infra(&["apply", "-auto-approve"]).success();
    assert!(!echoes(other), "the hand-made rule is gone");
    // So is a table deleted by hand.
    server.sh("nft delete table inet infra");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 2);
    env.infra(&["apply", "-auto-approve"]).success();
    assert!(echoes(app) && !echoes(other), "the rules are back");

    // The rules are loaded again at boot.
    docker(&["restart", &server.id]);
    server.after_boot();
    assert!(
        server.sh("nft list table inet infra").contains("tcp dport 8080 accept"),
        "the table is back after a restart"
    );
    assert!(echoes(app) && !echoes(other), "and filters as before");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0, "no drift after a restart");

    // Rules that cut SSH: the server puts the previous ones back by itself.
    env.write("main.infra", &firewall_config(&server, &key, &format!("  keep_ssh = false\n{ALLOW_8080}")));
    let started = std::time::Instant::now();
    let locked = env.infra(&["apply", "-auto-approve"]).failure();
    let message = TestEnv::flat(&locked.stderr);
    assert!(message.contains("firewall.box: updating failed: the new rules cut off SSH"), "{message}");
    assert!(message.contains("restored its previous rules by itself after 20 s"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(90), "the rollback came within its time");
    assert!(server.sh("nft list table inet infra").contains("keep_ssh"), "the previous rules are loaded");
    let after = env.infra(&["plan", "-no-color"]).success();
    assert!(!after.stdout.contains("changed outside of infra"), "state still matches the server: {}", after.stdout);
    assert!(after.stdout.contains("keep_ssh"), "and the plan still wants the change: {}", after.stdout);

    env.write("main.infra", &server.block("box", &key));
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(server.sh("nft list table inet infra 2>&1 >/dev/null | grep -c 'No such file' || true"), "1");
    assert!(echoes(other), "destroying the firewall opens the server again");
}

#[test]
fn published_container_ports_obey_the_firewall() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let host = DockerHost::start(&key, &["-p", "127.0.0.1::8081"]);
    let server = &host.server;
    // A container of the server's own engine, publishing port 8081 to the world.
    server.sh("mkdir -p /r/bin /r/www && cp /bin/busybox /r/bin/ && echo published > /r/www/index.html \
         && tar -C /r -c . | docker import - tiny:1 >/dev/null \
         && docker run -d --name web -p 0.0.0.0:8081:80 tiny:1 /bin/busybox httpd -f -p 80 -h /www >/dev/null");
    let port = server.published(8081);
    let get = |port| answers(port, b"GET / HTTP/1.0\r\n\r\n", "published");
    assert!(get(port), "the published port answers without a firewall");

    let config = |rules: &str| firewall_config(server, &key, &format!("  docker = true\n{rules}"));
    env.write("main.infra", &config(""));
    env.infra(&["apply", "-auto-approve"]).success();
    assert!(!get(port), "a published port is blocked by the default-deny input policy");
    env.write("main.infra", &config("  rule \"web\" {\n    port = 8081\n  }\n"));
    let plan = env.infra(&["plan", "-no-color"]).success();
    assert!(
        plan.stdout.contains("+ { name = \"web\", port = 8081 }"),
        "the plan shows the one rule added: {}",
        plan.stdout
    );
    env.infra(&["apply", "-auto-approve"]).success();
    assert!(get(port), "allowed by a rule, the published port answers");
}
