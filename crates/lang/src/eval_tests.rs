//! Evaluation tests: an expression in, its value (or error) out, as text.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use infra_core::Value;
use infra_syntax::ast::BodyItem;

use crate::{Host, Reference, Scope, eval};

struct Fixture {
    vars: BTreeMap<String, Value>,
    host: Host,
    dir: PathBuf,
}

impl Scope for Fixture {
    fn resolve(&self, reference: &Reference) -> Option<Value> {
        match reference {
            Reference::Var(name) => self.vars.get(name).cloned(),
            Reference::Resource { kind, name } if kind == "file" && name == "motd" => {
                Some(Value::object([("path", Value::string("/etc/motd")), ("id", Value::Unknown)]))
            }
            _ => None,
        }
    }
    fn module_dir(&self) -> &Path {
        &self.dir
    }
    fn host(&self) -> &Host {
        &self.host
    }
}

fn fixture() -> Fixture {
    let vars = [
        ("name".to_string(), Value::string("web")),
        ("count".to_string(), Value::Number(3.0)),
        ("password".to_string(), Value::string("hunter2").sensitive()),
        ("tags".to_string(), Value::object([("env", Value::string("prod")), ("team", Value::string("ops"))])),
        ("ports".to_string(), Value::List(vec![Value::Number(80.0), Value::Number(443.0)])),
    ]
    .into();
    let host = Host { env: [("DB_PASSWORD".to_string(), "s3cret".to_string())].into(), ..Host::default() };
    Fixture { vars, host, dir: PathBuf::from(".") }
}

/// Evaluates `text` and renders the value (`Display` redacts secrets) or the error.
fn check(text: &str) -> String {
    let file = infra_syntax::parse(infra_syntax::FileId(0), &format!("x = {text}\n")).expect("parses");
    let Some(BodyItem::Attribute(attribute)) = file.body.items.first() else { panic!("no attribute") };
    match eval(&attribute.value, &fixture()) {
        Ok(v) => v.to_string(),
        Err(d) => format!("error: {}", d.message),
    }
}

#[test]
fn expressions_evaluate_like_hcl() {
    let cases = [
        (r#""${var.name}-${var.count + 1}""#, r#""web-4""#),
        ("var.count * 2 - 1 >= 5 && !false", "true"),
        ("var.count > 5 ? \"big\" : \"small\"", r#""small""#),
        ("[for p in var.ports : p + 1 if p > 100]", "[444]"),
        ("{for k, v in var.tags : upper(k) => v}", r#"{ ENV = "prod", TEAM = "ops" }"#),
        ("{for s in [\"a\", \"b\", \"a\"] : s => s...}", r#"{ a = ["a", "a"], b = ["b"] }"#),
        ("var.tags.env", r#""prod""#),
        ("var.tags[\"team\"]", r#""ops""#),
        ("var.ports[1]", "443"),
        ("[var.tags][*].env", r#"["prod"]"#),
        ("length(var.ports) + length(\"héllo\")", "7"),
        ("merge(var.tags, { env = \"dev\" }).env", r#""dev""#),
        ("lookup(var.tags, \"missing\", \"fallback\")", r#""fallback""#),
        ("max(var.ports...)", "443"),
        ("concat([1], var.ports)", "[1, 80, 443]"),
        ("join(\",\", split(\"-\", \"a-b-c\"))", r#""a,b,c""#),
        ("try(var.tags.nope, \"default\")", r#""default""#),
        ("can(var.tags.nope)", "false"),
        ("file.motd.path", r#""/etc/motd""#),
        ("[file.motd][0].path", r#""/etc/motd""#),
        ("{ a = file.motd }[\"a\"].path", r#""/etc/motd""#),
        ("\"id=${file.motd.id}\"", "(known after apply)"),
        // Keys or conditions known only after apply: so is the whole collection.
        ("{for s in [\"a\"] : file.motd.id => s}", "(known after apply)"),
        ("[for p in var.ports : p if file.motd.id == \"x\"]", "(known after apply)"),
        ("{ (file.motd.id) = 1 }", "(known after apply)"),
        // Functions that only arrange elements keep what is known.
        ("merge({ a = file.motd.id }, { b = 1 })", "{ a = (known after apply), b = 1 }"),
        ("concat([file.motd.id], [1])", "[(known after apply), 1]"),
        ("length([file.motd.id, 2])", "2"),
        ("keys({ a = file.motd.id })", r#"["a"]"#),
        ("lookup({ a = file.motd.id }, \"b\", 0)", "0"),
        ("upper(file.motd.id)", "(known after apply)"),
        // Only what a secret flows into is hidden.
        ("[for k, v in { a = var.password, b = \"x\" } : upper(v)]", r#"[(sensitive value), "X"]"#),
    ];
    for (input, expected) in cases {
        assert_eq!(check(input), expected, "evaluating {input}");
    }
}

#[test]
fn secrets_stay_secret_through_operations() {
    for input in [
        "var.password",
        "\"user:${var.password}\"",
        "upper(var.password)",
        "[var.password]",
        "env(\"DB_PASSWORD\")",
        "sensitive(\"x\")",
        "{ pw = var.password }.pw",
        "merge(var.tags, { pw = var.password })",
        "concat([var.password], [1])",
        "lookup({ pw = var.password }, \"pw\", \"\")",
        "values({ pw = var.password })",
        "[for k, v in { a = var.password, b = \"x\" } : upper(v)]",
        "{ for k, v in { a = var.password } : k => v }",
        "[for p in sensitive([1, 2]) : p]",
    ] {
        let shown = check(input);
        assert!(shown.contains("(sensitive value)"), "{input} revealed: {shown}");
        assert!(!shown.contains("hunter2") && !shown.contains("s3cret"), "{input} leaked: {shown}");
    }
    assert_eq!(check("nonsensitive(upper(var.password))"), r#""HUNTER2""#);
    assert!(!check("var.password + 1").contains("hunter2"), "errors must not quote secrets");
}

#[test]
fn errors_say_what_went_wrong() {
    assert_eq!(check("var.tags.nmae"), "error: no attribute `nmae` here");
    assert_eq!(check("var.ports[5]"), "error: index 5 is out of range: the list has 2 elements");
    assert_eq!(check("\"${var.ports}\""), "error: cannot interpolate a list into a string");
    assert_eq!(check("uper(var.name)"), "error: unknown function `uper`");
    assert_eq!(check("1 / 0"), "error: division by zero");
    assert_eq!(check("{for s in [\"a\", \"a\"] : s => s}"), "error: duplicate key \"a\" in `for` expression");
    assert_eq!(check("env(\"NOT_SET\")"), "error: environment variable NOT_SET is not set");
}
