//! `infra convert compose`: a docker compose file (the Compose specification)
//! turned into a readable `.infra` configuration for the `docker` provider,
//! with a report of everything that could not be carried over, and why.
//!
//! - `hcl.rs`: values and how they are spelled; compose's `${VAR}` becomes `var.VAR`;
//! - `service.rs`: one service → a `container` (and an `image` to build or pull);
//! - here: the file's top level: the project, networks, volumes, secrets, and the text.
//!
//! What compose does implicitly is written out: the project's default network,
//! each service reachable by its name on its networks, named volumes and
//! networks prefixed with the project name, ports published on every address.
//! Invariant: the text returned always parses (checked before it is returned).

mod hcl;
mod service;

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

use crate::hcl::{Hcl, Interpolation};

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("the compose file is not valid YAML: {0}")]
    Yaml(String),
    #[error("the compose file {0}")]
    Shape(String),
}

/// Something of the compose file that the configuration does not carry over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Where in the compose file: `services.web.stop_signal`.
    pub place: String,
    pub reason: String,
}

#[derive(Debug)]
pub struct Conversion {
    /// The `.infra` configuration, formatted as `infra fmt` would.
    pub text: String,
    pub notes: Vec<Note>,
    /// The variables made from the file's `${NAME}`s, by name.
    pub variables: Vec<String>,
}

impl Conversion {
    /// What to tell a user whose compose file sits beside a `.env` (text
    /// given): compose reads it on its own, infra does not, so the variables it
    /// sets must be given another way. `None` when it sets none of them.
    pub fn dotenv_note(&self, dotenv: &str) -> Option<Note> {
        let set: Vec<&str> = dotenv
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.trim_start_matches("export ").split_once('=').map(|(k, _)| k.trim()))
            .filter(|k| self.variables.iter().any(|v| v == k))
            .collect();
        (!set.is_empty()).then(|| Note {
            place: ".env".to_string(),
            reason: format!(
                "compose reads it on its own and infra does not: give {} with -var, INFRA_VAR_NAME or an \
                 *.auto.infravars file (keep it out of git if it holds secrets)",
                set.join(", ")
            ),
        })
    }
}

/// A block of the configuration being written.
#[derive(Debug, Default)]
struct Block {
    kind: &'static str,
    name: String,
    comment: Option<String>,
    attributes: Vec<(&'static str, Hcl)>,
}

impl Block {
    fn new(kind: &'static str, name: &str) -> Block {
        Block { kind, name: hcl::name(name), ..Block::default() }
    }

    fn set(&mut self, attribute: &'static str, value: Hcl) {
        self.attributes.push((attribute, value));
    }

    fn render(&self) -> String {
        let comment = self.comment.as_ref().map(|c| format!("# {c}\n")).unwrap_or_default();
        let body: Vec<String> = self.attributes.iter().map(|(k, v)| format!("  {k} = {}", v.render())).collect();
        format!("{comment}{} \"{}\" {{\n{}\n}}\n", self.kind, self.name, body.join("\n"))
    }
}

/// What converting one file collects.
#[derive(Debug, Default)]
struct Converter {
    interpolation: Interpolation,
    notes: Vec<Note>,
    /// Compose network name → the expression of its name in the configuration.
    networks: BTreeMap<String, Hcl>,
    volumes: BTreeMap<String, Hcl>,
    /// Secret or config name → the file it reads, as written.
    files: BTreeMap<String, String>,
    blocks: Vec<Block>,
}

impl Converter {
    fn note(&mut self, place: impl Into<String>, reason: impl Into<String>) {
        self.notes.push(Note { place: place.into(), reason: reason.into() });
    }
}

/// Converts compose text. `project` names everything when the file has no
/// `name:` (compose uses the directory's name).
pub fn convert(text: &str, project: &str) -> Result<Conversion, ComposeError> {
    let mut document: Value = serde_yaml_ng::from_str(text).map_err(|e| ComposeError::Yaml(e.to_string()))?;
    document.apply_merge().map_err(|e| ComposeError::Yaml(e.to_string()))?;
    let top = document.as_mapping().ok_or_else(|| ComposeError::Shape("is not a mapping of sections".into()))?;
    let services = top
        .get("services")
        .and_then(Value::as_mapping)
        .ok_or_else(|| ComposeError::Shape("has no `services` section".into()))?;
    let project = top.get("name").and_then(Value::as_str).unwrap_or(project);
    let mut c = Converter::default();
    for (key, _) in top {
        let key = key.as_str().unwrap_or_default();
        if !["services", "networks", "volumes", "secrets", "configs", "name", "version"].contains(&key)
            && !key.starts_with("x-")
        {
            c.note(key, "not a section this converter knows");
        }
    }
    c.networks(top.get("networks").and_then(Value::as_mapping), services);
    c.volumes(top.get("volumes").and_then(Value::as_mapping));
    for section in ["secrets", "configs"] {
        c.files(section, top.get(section).and_then(Value::as_mapping));
    }
    for (name, service) in services {
        let name = name.as_str().unwrap_or_default().to_string();
        match service.as_mapping() {
            Some(service) => service::convert(&mut c, &name, service),
            None => c.note(format!("services.{name}"), "is not a mapping"),
        }
    }
    let text = render(&c, project);
    if let Err(errors) = infra_syntax::parse(infra_syntax::FileId(0), &text) {
        let first = errors.first().map(|d| d.message.clone()).unwrap_or_default();
        return Err(ComposeError::Shape(format!(
            "gave a configuration that does not parse ({first}); please report this"
        )));
    }
    let variables = c.interpolation.variables.keys().cloned().collect();
    Ok(Conversion { text: infra_syntax::format::format(&text), notes: c.notes, variables })
}

impl Converter {
    /// Declared networks, and `default` when a service joins no network
    /// (compose's implicit `PROJECT_default`).
    fn networks(&mut self, declared: Option<&Mapping>, services: &Mapping) {
        let mut declared: Vec<(String, Option<&Mapping>)> = declared
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v.as_mapping()))
            .collect();
        let needs_default = services.values().any(|s| s.get("networks").is_none() && s.get("network_mode").is_none());
        if needs_default && !declared.iter().any(|(n, _)| n == "default") {
            declared.insert(0, ("default".to_string(), None));
        }
        for (name, settings) in declared {
            let value = self.managed(
                "network",
                "networks",
                &name,
                settings,
                &["driver", "internal", "labels", "name", "external"],
            );
            self.networks.insert(name, value);
        }
    }

    fn volumes(&mut self, declared: Option<&Mapping>) {
        for (name, settings) in declared.into_iter().flatten() {
            let name = name.as_str().unwrap_or_default().to_string();
            let value = self.managed(
                "volume",
                "volumes",
                &name,
                settings.as_mapping(),
                &["driver", "labels", "name", "external"],
            );
            self.volumes.insert(name, value);
        }
    }

    /// A network or volume: a block named `PROJECT_NAME` (or its `name:`), or
    /// for an `external` one, its name as it is. Returns how services name it.
    fn managed(
        &mut self,
        kind: &'static str,
        section: &str,
        name: &str,
        settings: Option<&Mapping>,
        known: &[&str],
    ) -> Hcl {
        let get = |key: &str| settings.and_then(|s| s.get(key));
        let given_name = get("name").and_then(Value::as_str).map(|n| self.interpolation.string(n));
        if get("external").and_then(Value::as_bool) == Some(true) {
            self.note(format!("{section}.{name}"), "external: used by name, not managed by infra");
            return given_name.unwrap_or_else(|| Hcl::Template(hcl::literal(name)));
        }
        let mut block = Block::new(kind, name);
        block.set(
            "name",
            given_name.unwrap_or_else(|| Hcl::Template(format!("${{var.project}}_{}", hcl::literal(name)))),
        );
        if let Some(driver) = get("driver").and_then(Value::as_str) {
            block.set("driver", self.interpolation.string(driver));
        }
        if get("internal").and_then(Value::as_bool) == Some(true) {
            block.set("internal", Hcl::Bool(true));
        }
        if let Some(labels) = get("labels") {
            let labels = service::string_map(self, labels);
            block.set("labels", labels);
        }
        for (key, _) in settings.into_iter().flatten() {
            let key = key.as_str().unwrap_or_default();
            if !known.contains(&key) {
                self.note(format!("{section}.{name}.{key}"), format!("not a setting of infra's `{kind}`"));
            }
        }
        let reference = Hcl::Expr(format!("{kind}.{}.name", block.name));
        self.blocks.push(block);
        reference
    }

    /// Secrets and configs read from files; each service mounts its own read-only.
    fn files(&mut self, section: &str, declared: Option<&Mapping>) {
        for (name, settings) in declared.into_iter().flatten() {
            let name = name.as_str().unwrap_or_default().to_string();
            match settings.get("file").and_then(Value::as_str) {
                Some(file) => {
                    self.files.insert(name, file.to_string());
                }
                None => self.note(
                    format!("{section}.{name}"),
                    "only secrets and configs read from a `file` are carried over (as read-only bind mounts)",
                ),
            }
        }
    }
}

/// The whole configuration: a header with the report, the project variable,
/// compose's variables, then the blocks in the order they were made.
fn render(c: &Converter, project: &str) -> String {
    let mut out = String::from("# Converted from a docker compose file by `infra convert compose`.\n");
    if !c.notes.is_empty() {
        out.push_str("# Not carried over (details: `infra convert compose` prints them too):\n");
        for note in &c.notes {
            out.push_str(&format!("#   {}: {}\n", note.place, note.reason.replace('\n', " ")));
        }
    }
    out.push('\n');
    out.push_str(&format!(
        "variable \"project\" {{\n  type = string\n  default = \"{}\"\n  description = \"Prefix of every name, as compose's project name\"\n}}\n\n",
        hcl::literal(&project_name(project))
    ));
    for (name, default) in &c.interpolation.variables {
        let default = default.as_deref().unwrap_or("");
        out.push_str(&format!(
            "variable \"{name}\" {{\n  type = string\n  default = \"{}\"\n  description = \"{}\"\n}}\n\n",
            hcl::literal(default),
            hcl::literal(&format!("${{{name}}} in the compose file"))
        ));
    }
    for block in &c.blocks {
        out.push_str(&block.render());
        out.push('\n');
    }
    out
}

/// Compose's rule for project names: lower case letters, digits, `-` and `_`.
fn project_name(text: &str) -> String {
    let name: String =
        text.to_lowercase().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    if name.is_empty() { "project".to_string() } else { name }
}
