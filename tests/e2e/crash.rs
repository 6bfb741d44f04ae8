//! `kill -9` in the middle of a 200-resource apply: state stays readable, the
//! lock is free again, and the next apply converges with nothing lost or
//! duplicated. Trials are bounded and their kill delays printed.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::TestEnv;

const RESOURCES: usize = 200;

fn config() -> String {
    format!(
        r#"
directory "out" {{
  path = "out"
}}

file "item" {{
  count   = {RESOURCES}
  path    = "${{directory.out.path}}/item-${{count.index}}"
  content = "item ${{count.index}}\n"
}}

file "index" {{
  path    = "index"
  content = join("\n", file.item[*].path)
}}
"#
    )
}

#[test]
fn kill_9_mid_apply_then_apply_converges() {
    // Delays spread over the apply's duration; fixed so a failure can be rerun.
    let delays_ms = [15u64, 40, 80, 150, 300];
    for delay in delays_ms {
        let env = TestEnv::new();
        env.write("main.infra", &config());
        let mut child = env.command(&["apply", "-auto-approve", "-parallelism", "8"]).spawn().expect("spawn");
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();

        let listed = env.infra(&["state", "list"]);
        assert_eq!(listed.code, 0, "delay {delay} ms: state unreadable after kill -9: {}", listed.stderr);
        let recorded = listed.stdout.lines().count();
        println!("kill -9 after {delay} ms: {recorded} of {} resources recorded", RESOURCES + 2);

        let apply = env.infra(&["apply", "-auto-approve"]);
        assert_eq!(apply.code, 0, "delay {delay} ms: the next apply must converge: {}{}", apply.stdout, apply.stderr);
        let plan = env.infra(&["plan", "-detailed-exitcode"]);
        assert_eq!(plan.code, 0, "delay {delay} ms: converged state must plan no changes: {}", plan.stdout);

        let addresses: Vec<String> =
            env.infra(&["state", "list"]).success().stdout.lines().map(str::to_string).collect();
        let unique: BTreeSet<&String> = addresses.iter().collect();
        assert_eq!(addresses.len(), RESOURCES + 2, "delay {delay} ms: every resource recorded once");
        assert_eq!(unique.len(), addresses.len(), "delay {delay} ms: no duplicates");
        let files: BTreeSet<String> = std::fs::read_dir(env.join("out"))
            .expect("out dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let expected: BTreeSet<String> = (0..RESOURCES).map(|i| format!("item-{i}")).collect();
        assert_eq!(files, expected, "delay {delay} ms: exactly the configured files, no leftovers");
        assert_eq!(env.read("out/item-7"), "item 7\n");
    }
}
