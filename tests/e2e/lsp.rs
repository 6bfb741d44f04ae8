//! `infra lsp` driven by a client speaking JSON-RPC over the binary's standard
//! input and output, as an editor does: diagnostics as you type (the messages
//! `infra validate` prints), completion, hover, definition, references and
//! formatting.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::TestEnv;

/// How long one answer may take before the test fails: generous, the machine
/// may be busy with other tests.
const PATIENCE: Duration = Duration::from_secs(30);

struct Client {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    /// Notifications that arrived while waiting for a response.
    notifications: Vec<Value>,
    next_id: i64,
}

impl Client {
    fn start(env: &TestEnv) -> Client {
        let mut child = env
            .command(&["lsp"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start infra lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, incoming) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(message) = read_message(&mut reader) {
                if sender.send(message).is_err() {
                    return;
                }
            }
        });
        let mut client = Client { child, stdin, incoming, notifications: Vec::new(), next_id: 1 };
        let root = url(env, "");
        let init = client.request("initialize", json!({ "processId": null, "rootUri": root, "capabilities": {} }));
        let capabilities = &init["capabilities"];
        let providers = [
            "hoverProvider",
            "definitionProvider",
            "referencesProvider",
            "documentFormattingProvider",
            "documentSymbolProvider",
        ];
        for provider in providers {
            assert_eq!(capabilities[provider], json!(true), "{provider} in {init}");
        }
        client.notify("initialized", json!({}));
        client
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write to infra lsp");
        self.stdin.flush().expect("flush");
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let message = self.next_message(method);
            if message["id"] == json!(id) {
                assert!(message.get("error").is_none(), "{method} failed: {message}");
                return message["result"].clone();
            }
            self.notifications.push(message);
        }
    }

    fn next_message(&mut self, waiting_for: &str) -> Value {
        match self.incoming.recv_timeout(PATIENCE) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => panic!("no answer to {waiting_for} in {PATIENCE:?}"),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("infra lsp closed its output while waiting for {waiting_for}")
            }
        }
    }

    /// The diagnostics published for version `version` of `uri`, waiting for
    /// them: an older version's may still be on its way and are passed over.
    fn diagnostics(&mut self, uri: &str, version: i64) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = self.notifications.iter().position(|n| {
                n["method"] == "textDocument/publishDiagnostics"
                    && n["params"]["uri"] == json!(uri)
                    && n["params"]["version"] == json!(version)
            });
            if let Some(at) = found {
                let published = self.notifications.remove(at);
                return published["params"]["diagnostics"].as_array().cloned().unwrap_or_default();
            }
            assert!(Instant::now() < deadline, "no diagnostics for version {version} of {uri}");
            let message = self.next_message("diagnostics");
            self.notifications.push(message);
        }
    }

    fn open(&mut self, uri: &str, text: &str) -> Vec<Value> {
        let document = json!({ "uri": uri, "languageId": "infra", "version": 1, "text": text });
        self.notify("textDocument/didOpen", json!({ "textDocument": document }));
        self.diagnostics(uri, 1)
    }

    fn change(&mut self, uri: &str, version: i64, text: &str) -> Vec<Value> {
        let params =
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "text": text }] });
        self.notify("textDocument/didChange", params);
        self.diagnostics(uri, version)
    }

    fn at(&mut self, method: &str, uri: &str, (line, character): (u32, u32)) -> Value {
        let mut params = json!({
            "textDocument": { "uri": uri },
            "position": { "line": line, "character": character },
        });
        if method == "textDocument/references" {
            params["context"] = json!({ "includeDeclaration": true });
        }
        self.request(method, params)
    }

    fn stop(mut self) {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for infra lsp") {
                assert!(status.success(), "infra lsp exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "infra lsp did not exit after `exit`");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn read_message(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(value) = line.strip_prefix("Content-Length: ") {
            length = value.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

fn url(env: &TestEnv, rel: &str) -> String {
    let path = env.path().canonicalize().expect("canonical temp dir").join(rel);
    format!("file://{}", path.display())
}

/// The position `shift` bytes after the start of `needle` in `text` (ASCII).
fn position_of(text: &str, needle: &str, shift: usize) -> (u32, u32) {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in the text")) + shift;
    let line = text[..at].matches('\n').count() as u32;
    let column = (at - text[..at].rfind('\n').map_or(0, |i| i + 1)) as u32;
    (line, column)
}

/// The position just after `needle`.
fn end_of(text: &str, needle: &str) -> (u32, u32) {
    position_of(text, needle, needle.len())
}

fn labels(completion: &Value) -> Vec<String> {
    let items = completion.as_array().or_else(|| completion["items"].as_array()).cloned().unwrap_or_default();
    items.iter().filter_map(|i| i["label"].as_str().map(str::to_string)).collect()
}

const VARIABLES: &str = r#"variable "region" {
  type        = string
  default     = "eu-west-1"
  description = "Where the site is served from."
}
"#;

const MODULE: &str = r#"variable "name" {
  type        = string
  description = "The site's name."
}

output "url" {
  value       = "https://${var.name}.example"
  description = "Where the site answers."
}
"#;

fn configuration(env: &TestEnv) {
    env.write("variables.infra", VARIABLES);
    env.write("modules/site/main.infra", MODULE);
}

#[test]
fn diagnostics_as_you_type_are_the_ones_validate_prints() {
    let env = TestEnv::new();
    configuration(&env);
    let typo = "file \"motd\" {\n  path    = \"motd\"\n  content = \"served from ${var.regoin}\\n\"\n}\n";
    env.write("main.infra", typo);
    let mut client = Client::start(&env);
    let uri = url(&env, "main.infra");

    let diagnostics = client.open(&uri, typo);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    let d = &diagnostics[0];
    assert_eq!((&d["code"], &d["source"]), (&json!("infra::unknown_reference"), &json!("infra")));
    assert!(d["message"].as_str().unwrap_or_default().contains("did you mean `var.region`?"), "{d}");
    let under_the_typo = json!({ "start": { "line": 2, "character": 27 }, "end": { "line": 2, "character": 37 } });
    assert_eq!(d["range"], under_the_typo, "{d}");

    // Each edit is an unsaved buffer (the file on disk keeps the typo); each
    // answer is compared with `infra validate` run on that text.
    let fixed = typo.replace("regoin", "region");
    let cases = [
        ("typo", typo.to_string(), &["infra::unknown_reference"][..]),
        ("fixed", fixed.clone(), &[]),
        ("unclosed string", fixed.replace("\"motd\"\n", "\"motd\n"), &["infra::syntax"]),
        (
            "wrong type",
            fixed.replace("path    = \"motd\"", "path    = [\"motd\"]"),
            &["infra::type_mismatch", "infra::missing_attribute"],
        ),
        ("unknown attribute", fixed.replace("  content =", "  contnet ="), &["infra::unknown_attribute"]),
        ("cycle", format!("{fixed}locals {{\n  a = local.b\n  b = local.a\n}}\n"), &["infra::cycle"]),
    ];
    let validator = TestEnv::new();
    configuration(&validator);
    let mut seen = Vec::new();
    for (version, (name, text, codes)) in cases.iter().enumerate() {
        let diagnostics = client.change(&uri, version as i64 + 2, text);
        let found: Vec<&str> = diagnostics.iter().map(|d| d["code"].as_str().unwrap_or_default()).collect();
        assert_eq!(found, *codes, "{name}: {diagnostics:#?}");
        validator.write("main.infra", text);
        let validate = validator.infra(&["validate"]);
        assert_eq!(validate.code, if codes.is_empty() { 0 } else { 1 }, "{name}: {}", validate.stderr);
        for d in &diagnostics {
            let message = d["message"].as_str().unwrap_or_default();
            let summary = message.split([':', '\n']).next().unwrap_or_default();
            assert!(
                TestEnv::flat(&validate.stderr).contains(summary),
                "{name}: validate said\n{}\nthe editor: {message}",
                validate.stderr
            );
        }
        seen.push(json!({ "case": name, "diagnostics": diagnostics }));
    }
    // Related locations name files of the temporary directory.
    let seen = serde_json::to_string_pretty(&seen).unwrap_or_default().replace(&url(&env, ""), "file:///[config]/");
    insta::assert_snapshot!("lsp_diagnostics", seen);
    client.stop();
}

#[test]
fn completion_offers_blocks_attributes_references_and_functions() {
    let env = TestEnv::new();
    configuration(&env);
    let text = r#"module "site" {
  source = "./modules/site"
  name   = "www"
}

file "motd" {
  path    = "motd"
  content = upper(module.site.url)
}

container "web" {
  
}
"#;
    env.write("main.infra", text);
    let mut client = Client::start(&env);
    let uri = url(&env, "main.infra");
    client.open(&uri, text);

    // A block's attributes from the provider's schema, meta-arguments too.
    let inside = client.at("textDocument/completion", &uri, end_of(text, "container \"web\" {\n  "));
    let names = labels(&inside);
    insta::assert_json_snapshot!("lsp_completion_in_a_container", inside);
    for wanted in ["image", "ports", "env", "count", "for_each", "lifecycle"] {
        assert!(names.contains(&wanted.to_string()), "{wanted} not in {names:?}");
    }
    // Top level: the language's blocks and resource types.
    let typed = format!("{text}fi");
    client.change(&uri, 2, &typed);
    let top = labels(&client.at("textDocument/completion", &uri, end_of(&typed, "\nfi")));
    assert_eq!(top, ["file", "firewall"]);
    // References, while the line does not parse yet.
    let typing = text.replace("upper(module.site.url)", "upper(module.site.)");
    client.change(&uri, 3, &typing);
    let outputs = labels(&client.at("textDocument/completion", &uri, position_of(&typing, "site.)", 5)));
    assert_eq!(outputs, ["url"]);
    let typing = text.replace("upper(module.site.url)", "var.");
    client.change(&uri, 4, &typing);
    assert_eq!(labels(&client.at("textDocument/completion", &uri, position_of(&typing, "var.", 4))), ["region"]);
    let typing = text.replace("upper(module.site.url)", "up");
    client.change(&uri, 5, &typing);
    assert_eq!(labels(&client.at("textDocument/completion", &uri, position_of(&typing, "= up", 4))), ["upper"]);
    // A module call's inputs are the module's variables.
    let inputs = labels(&client.at("textDocument/completion", &uri, position_of(text, "  name   =", 2)));
    assert!(inputs.contains(&"name".to_string()) && inputs.contains(&"source".to_string()), "{inputs:?}");
    client.stop();
}

#[test]
fn hover_definition_references_and_formatting() {
    let env = TestEnv::new();
    configuration(&env);
    let text = r#"module "site" {
  source = "./modules/site"
  name   = var.region
}

file "motd" {
  path = "motd"
  mode = "0644"
  content = "${upper(module.site.url)} in ${var.region}"
}
"#;
    env.write("main.infra", text);
    let mut client = Client::start(&env);
    let uri = url(&env, "main.infra");
    client.open(&uri, text);

    let hover = |client: &mut Client, at| {
        client.at("textDocument/hover", &uri, at)["contents"]["value"].as_str().unwrap_or_default().to_string()
    };
    let on_mode = hover(&mut client, position_of(text, "mode =", 1));
    assert!(on_mode.contains("**mode**") && on_mode.contains("string"), "{on_mode}");
    let on_variable = hover(&mut client, position_of(text, "var.region\n", 5));
    assert!(on_variable.contains("Where the site is served from.") && on_variable.contains("string"), "{on_variable}");
    let on_function = hover(&mut client, position_of(text, "upper(", 1));
    assert!(on_function.contains("upper(string) → string"), "{on_function}");
    let on_output = hover(&mut client, position_of(text, "site.url", 6));
    assert!(on_output.contains("Where the site answers."), "{on_output}");

    let definition = client.at("textDocument/definition", &uri, position_of(text, "var.region\n", 5));
    assert_eq!(definition["uri"], json!(url(&env, "variables.infra")));
    assert_eq!(definition["range"]["start"], json!({ "line": 0, "character": 9 }), "the variable's name");
    let into_module = client.at("textDocument/definition", &uri, position_of(text, "module.site.url", 8));
    assert_eq!(into_module["uri"], json!(url(&env, "modules/site/main.infra")), "{into_module}");
    let output = client.at("textDocument/definition", &uri, position_of(text, "site.url", 6));
    assert_eq!(output["range"]["start"]["line"], 5, "{output}");

    let references = client.at("textDocument/references", &uri, position_of(text, "var.region\n", 5));
    let mut found: Vec<(String, u64)> = references
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            (
                l["uri"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_string(),
                l["range"]["start"]["line"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [("main.infra".to_string(), 2), ("main.infra".to_string(), 8), ("variables.infra".to_string(), 0)]
    );

    let outline = client.request("textDocument/documentSymbol", json!({ "textDocument": { "uri": uri } }));
    let names: Vec<&str> = outline.as_array().into_iter().flatten().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["module.site", "file.motd"], "the outline: {outline}");

    let edits = client.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": uri }, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    let edits = edits.as_array().cloned().unwrap_or_default();
    assert_eq!(edits.len(), 1, "{edits:?}");
    env.infra(&["fmt"]).success();
    assert_eq!(edits[0]["newText"].as_str(), Some(env.read("main.infra").as_str()), "the same layout as infra fmt");
    client.stop();
}

fn path_with_this_build() -> std::ffi::OsString {
    let this = std::path::Path::new(env!("CARGO_BIN_EXE_infra")).parent().map(std::path::Path::to_path_buf);
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(this.into_iter().chain(std::env::split_paths(&rest))).unwrap_or(rest)
}

/// Neovim's own LSP client, headless, set up by `editors/neovim/infra.lua` as a
/// user would: an editor other than our test client gets diagnostics and hover. Neovim comes from Debian's
/// packages (`.ci/run` installs it); the test fails, never skips, without it.
#[test]
fn neovim_shows_diagnostics_and_hover() {
    let env = TestEnv::new();
    configuration(&env);
    let text = "file \"motd\" {\n  path    = \"motd\"\n  content = \"${var.regoin} ${var.region}\"\n}\n";
    env.write("main.infra", text);
    let script = r#"
local out = {}
-- The setup editors/neovim/infra.lua ships, as a user installs it.
vim.cmd("luafile " .. vim.fn.fnameescape(vim.env.PLUGIN))
vim.cmd("edit " .. vim.fn.fnameescape(vim.env.LSP_FILE))
vim.wait(20000, function() return #vim.diagnostic.get(0) > 0 end, 50)
for _, d in ipairs(vim.diagnostic.get(0)) do
  table.insert(out, "diagnostic " .. d.lnum .. ": " .. (d.message:gsub("\n", " ")))
end
local params = { textDocument = { uri = vim.uri_from_bufnr(0) }, position = { line = 2, character = 33 } }
for _, r in pairs(vim.lsp.buf_request_sync(0, "textDocument/hover", params, 20000) or {}) do
  if r.result then table.insert(out, "hover " .. (r.result.contents.value:gsub("\n", " "))) end
end
local f = io.open(vim.env.LSP_OUT, "w")
f:write(table.concat(out, "\n"))
f:close()
vim.cmd("qa!")
"#;
    env.write("check.lua", script);
    let status = std::process::Command::new("nvim")
        .args(["--headless", "--clean", "-u", "NONE", "-c"])
        .arg(format!("luafile {}", env.join("check.lua").display()))
        .env("HOME", env.join("home"))
        .env("PLUGIN", std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("editors/neovim/infra.lua"))
        // The plugin runs `infra lsp`: this build, first on PATH.
        .env("PATH", path_with_this_build())
        .env("LSP_DIR", env.path())
        .env("LSP_FILE", env.join("main.infra"))
        .env("LSP_OUT", env.join("nvim.out"))
        .stdin(Stdio::null())
        .status()
        .expect("nvim runs (Debian's neovim package; .ci/run installs it)");
    assert!(status.success(), "nvim exited with {status}");
    let seen = env.read("nvim.out");
    assert!(seen.contains("diagnostic 2: unknown reference") && seen.contains("var.region"), "{seen}");
    assert!(seen.contains("hover **variable** `region`") && seen.contains("Where the site is served from."), "{seen}");
}

/// Started by hand, or fed something that is not the protocol, the server
/// says what it is for and exits 1 instead of hanging.
#[test]
fn input_that_is_not_the_protocol_ends_with_a_clear_error() {
    let env = TestEnv::new();
    let mut child = env
        .command(&["lsp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start infra lsp");
    child.stdin.take().expect("stdin").write_all(b"hello\n").expect("write");
    let out = child.wait_with_output().expect("infra lsp ends");
    assert_eq!(out.status.code(), Some(1));
    let stderr = TestEnv::flat(&String::from_utf8_lossy(&out.stderr));
    assert!(stderr.contains("no editor started a session") && stderr.contains("README.md says how"), "{stderr}");
}
