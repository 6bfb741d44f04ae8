//! One configuration directory checked as `infra validate` checks it, with the
//! editor's unsaved buffers in place of their files, and its diagnostics in the
//! protocol's terms.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use infra_core::ProviderRegistry;
use infra_engine::Workspace;
use infra_lang::{Config, Host, Overlay};
use infra_syntax::{Diagnostic, Severity, SourceMap};
use lsp_types::{DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString, Url};

use crate::position::LineIndex;

/// The diagnostics source editors show beside each message.
const SOURCE: &str = "infra";

/// A loaded configuration and what checking it found.
#[derive(Debug)]
pub struct Analysis {
    pub dir: PathBuf,
    pub config: Config,
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads `dir` and checks it the way `infra validate` does: a file that does not
/// parse stops there (every reference into it would look unknown), a graph that
/// cannot be built stops there, and otherwise every expression is evaluated
/// with unknown inputs against the providers' schemas.
pub fn analyse(dir: &Path, overlay: &Overlay, registry: &ProviderRegistry) -> Analysis {
    let (config, mut diagnostics) = infra_lang::load_with(dir, overlay);
    if !diagnostics.iter().any(|d| d.code.is_unreadable()) {
        match infra_engine::build_graph(&config, registry) {
            Ok(graph) if !diagnostics.iter().any(Diagnostic::is_error) => {
                let host = host(dir);
                let workspace = Workspace { config: &config, registry, host: &host };
                diagnostics.extend(infra_engine::validate(&workspace, &graph));
            }
            Ok(_) => {}
            Err(errors) => diagnostics.extend(errors),
        }
    }
    Analysis { dir: dir.to_path_buf(), config, diagnostics }
}

/// What evaluation may read of the machine: the editor's environment, as the
/// CLI would see it from this directory in the default environment.
fn host(dir: &Path) -> Host {
    Host {
        env: std::env::vars().collect(),
        home: std::env::var_os("HOME").map(PathBuf::from),
        cwd: dir.to_path_buf(),
        root: dir.to_path_buf(),
        environment: "default".to_string(),
    }
}

/// The diagnostics to publish for each file of the analysed directory (an
/// empty list clears a file's old ones). Files of called modules are left to
/// their own directory's analysis, so two analyses never publish one file.
/// A diagnostic that points nowhere goes to `fallback`, the edited file.
pub fn by_file(analysis: &Analysis, fallback: &Path) -> BTreeMap<PathBuf, Vec<lsp_types::Diagnostic>> {
    let sources = &analysis.config.sources;
    let dir = infra_lang::normal_path(&analysis.dir);
    let mut out: BTreeMap<PathBuf, Vec<lsp_types::Diagnostic>> = sources
        .files()
        .map(|(_, f)| infra_lang::normal_path(&f.path))
        .filter(|p| p.parent() == Some(dir.as_path()))
        .map(|p| (p, Vec::new()))
        .collect();
    out.entry(fallback.to_path_buf()).or_default();
    for diagnostic in &analysis.diagnostics {
        let (path, converted) = convert(diagnostic, sources, fallback);
        if let Some(list) = out.get_mut(&path) {
            list.push(converted);
        }
    }
    out
}

fn convert(diagnostic: &Diagnostic, sources: &SourceMap, fallback: &Path) -> (PathBuf, lsp_types::Diagnostic) {
    let (path, range) = match diagnostic.primary_span() {
        Some(span) => {
            let file = sources.get(span.file);
            (infra_lang::normal_path(&file.path), LineIndex::new(&file.text).range(span.start, span.end))
        }
        None => (fallback.to_path_buf(), lsp_types::Range::default()),
    };
    let mut message = diagnostic.message.clone();
    if let Some(label) = diagnostic.labels.first().filter(|l| !l.message.is_empty() && l.message != "here") {
        message = format!("{message}: {}", label.message);
    }
    if let Some(help) = &diagnostic.help {
        message = format!("{message}\nhelp: {help}");
    }
    let related = diagnostic.labels.iter().skip(1).filter_map(|label| {
        let file = sources.get(label.span.file);
        let uri = Url::from_file_path(infra_lang::normal_path(&file.path)).ok()?;
        let range = LineIndex::new(&file.text).range(label.span.start, label.span.end);
        Some(DiagnosticRelatedInformation { location: Location::new(uri, range), message: label.message.clone() })
    });
    let related: Vec<_> = related.collect();
    let converted = lsp_types::Diagnostic {
        range,
        severity: Some(match diagnostic.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(diagnostic.code.as_str().to_string())),
        source: Some(SOURCE.to_string()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..lsp_types::Diagnostic::default()
    };
    (path, converted)
}
