//! Loading a configuration directory and the modules it calls, from disk or,
//! for an editor, with its unsaved buffers in place of the files they edit.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use infra_syntax::{Code, Diagnostic, SourceMap};

use crate::config::{Config, Module, ModuleId, decode_file};

/// How deep module calls may nest before we assume a module calls itself.
const MAX_MODULE_DEPTH: usize = 16;

/// Reads every `.infra` file in `dir` (a directory is one configuration) and,
/// recursively, the modules called from it. Returns what could be loaded together
/// with every problem found, so one run reports them all.
pub fn load(dir: &Path) -> (Config, Vec<Diagnostic>) {
    load_with(dir, &Overlay::new())
}

/// Texts read instead of the files at these paths: an editor's open buffers.
/// A path here counts as a file of its directory even before it is saved.
/// Keys are absolute paths without `.` or `..` (see [`normal_path`]).
pub type Overlay = BTreeMap<PathBuf, String>;

/// [`load`], reading each file from `overlay` when it holds the file's path.
pub fn load_with(dir: &Path, overlay: &Overlay) -> (Config, Vec<Diagnostic>) {
    let mut config = Config { sources: SourceMap::new(), modules: Vec::new() };
    let mut errors = Vec::new();
    load_module(&mut config, dir, Vec::new(), overlay, &mut errors);
    check_backends(&config, &mut errors);
    (config, errors)
}

/// `path` without `.` and `..` components, resolved by text: module sources
/// are `../modules/x`, and an editor names the same file without the dots.
pub fn normal_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// State is kept in one place per configuration: one `backend` block at most,
/// in the root module.
fn check_backends(config: &Config, errors: &mut Vec<Diagnostic>) {
    for module in &config.modules {
        let backends = module.backends.iter().map(|b| b.kind.span);
        let settings = module.state_settings.iter().map(|s| s.span);
        let kinds = [
            ("backend", backends.collect::<Vec<_>>(), "keep one: a configuration keeps its state in one place"),
            ("state", settings.collect(), "keep one: put all state settings in one `state` block"),
        ];
        for (what, spans, keep_one) in kinds {
            let allowed = usize::from(module.path.is_empty());
            for span in spans.into_iter().skip(allowed) {
                let (message, help) = if module.path.is_empty() {
                    (format!("more than one `{what}` block"), keep_one.to_string())
                } else {
                    (
                        format!("a module cannot choose where or how state is kept (`{what}` block)"),
                        format!("move the `{what}` block to the root configuration, the directory infra runs in"),
                    )
                };
                errors.push(Diagnostic::error(Code::Backend, message).with_label(span, "here").with_help(help));
            }
        }
    }
}

fn load_module(
    config: &mut Config,
    dir: &Path,
    path: Vec<String>,
    overlay: &Overlay,
    errors: &mut Vec<Diagnostic>,
) -> ModuleId {
    let id = config.modules.len();
    config.modules.push(Module { dir: dir.to_path_buf(), path: path.clone(), ..Module::default() });
    let mut module = Module { dir: dir.to_path_buf(), path: path.clone(), ..Module::default() };
    for file in infra_files(dir, overlay, errors) {
        let text = match read(&file, overlay) {
            Ok(text) => text,
            Err(e) => {
                errors.push(Diagnostic::error(Code::Io, format!("cannot read {}: {e}", file.display())));
                continue;
            }
        };
        let file_id = config.sources.add(file, text.as_str());
        match infra_syntax::parse(file_id, &text) {
            Ok(ast) => decode_file(&mut module, ast.body, errors),
            Err(parse_errors) => errors.extend(parse_errors),
        }
    }
    let call_names: Vec<String> = module.calls.keys().cloned().collect();
    for name in call_names {
        let call = &module.calls[&name];
        if !(call.source.starts_with("./") || call.source.starts_with("../") || call.source.starts_with('/')) {
            errors.push(
                Diagnostic::error(Code::ModuleSource, format!("module source {:?} is not a local path", call.source))
                    .with_label(call.span, "in this module call")
                    .with_help("module sources are directories: start them with `./` or `../`"),
            );
            continue;
        }
        let child_dir = dir.join(&call.source);
        if path.len() >= MAX_MODULE_DEPTH {
            errors.push(
                Diagnostic::error(Code::ModuleDepth, format!("modules nest deeper than {MAX_MODULE_DEPTH} levels"))
                    .with_label(call.span, "does this module call itself?"),
            );
            continue;
        }
        if !child_dir.is_dir() {
            errors.push(
                Diagnostic::error(
                    Code::ModuleSource,
                    format!("module directory {} does not exist", child_dir.display()),
                )
                .with_label(call.span, "in this module call"),
            );
            continue;
        }
        let mut child_path = path.clone();
        child_path.push(name.clone());
        let child = load_module(config, &child_dir, child_path, overlay, errors);
        if let Some(call) = module.calls.get_mut(&name) {
            call.module = Some(child);
        }
    }
    config.modules[id] = module;
    id
}

fn read(file: &Path, overlay: &Overlay) -> std::io::Result<String> {
    match overlay.get(&normal_path(file)) {
        Some(text) => Ok(text.clone()),
        None => std::fs::read_to_string(file),
    }
}

fn infra_files(dir: &Path, overlay: &Overlay, errors: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(Diagnostic::error(Code::Io, format!("cannot read directory {}: {e}", dir.display())));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "infra") && p.is_file())
        .collect();
    let normal_dir = normal_path(dir);
    let unsaved =
        overlay.keys().filter(|p| p.parent() == Some(&normal_dir) && p.extension().is_some_and(|x| x == "infra"));
    for path in unsaved {
        if !files.iter().any(|f| normal_path(f) == *path) {
            files.push(path.clone());
        }
    }
    files.sort();
    files
}
