//! Values for root variables given on the command line or in var files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use infra_core::{Type, Value};
use infra_syntax::{Code, Diagnostic, SourceMap};

use crate::{Host, Reference, Scope, eval};

/// Parses `-var NAME=TEXT`: a string variable takes TEXT as it is; any other type
/// reads TEXT as an expression (`-var 'ports=[80, 443]'`).
pub fn parse_cli_var(text: &str, ty: &Type) -> Result<Value, String> {
    if matches!(ty, Type::String | Type::Any) && !looks_like_expression(text) {
        return Ok(Value::string(text));
    }
    if matches!(ty, Type::Number | Type::Bool) {
        return ty.convert(Value::string(text)).map_err(|found| format!("expected {ty}, found {found}"));
    }
    let source = format!("v = {text}\n");
    let file = infra_syntax::parse(infra_syntax::FileId(0), &source).map_err(|d| d[0].message.clone())?;
    let attr = file.body.attributes().next().ok_or("empty value")?;
    let scope = ConstantScope { host: Host::default(), dir: PathBuf::new() };
    eval(&attr.value, &scope).map_err(|d| d.message)
}

fn looks_like_expression(text: &str) -> bool {
    text.starts_with('[') || text.starts_with('{')
}

/// Reads a var file: `name = value` lines, values without references.
pub fn load_var_file(
    path: &Path,
    sources: &mut SourceMap,
    host: &Host,
) -> Result<BTreeMap<String, Value>, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![Diagnostic::error(Code::Io, format!("cannot read var file {}: {e}", path.display()))])?;
    let file_id = sources.add(path, text.as_str());
    let file = infra_syntax::parse(file_id, &text)?;
    let scope = ConstantScope { host: host.clone(), dir: path.parent().map(Path::to_path_buf).unwrap_or_default() };
    let mut values = BTreeMap::new();
    let mut errors = Vec::new();
    for block in file.body.blocks() {
        errors.push(
            Diagnostic::error(Code::VarFile, "a var file holds only `name = value` lines")
                .with_label(block.kind.span, "blocks are not allowed here"),
        );
    }
    for attribute in file.body.attributes() {
        match eval(&attribute.value, &scope) {
            Ok(v) => {
                values.insert(attribute.name.name.clone(), v);
            }
            Err(d) => errors.push(d),
        }
    }
    if errors.is_empty() { Ok(values) } else { Err(errors) }
}

/// Evaluates a block read before the configuration (`backend`): each attribute
/// must be one of `allowed` (name, what it is for) and may use functions but no
/// references. Nested blocks are refused.
pub fn eval_settings(
    body: &infra_syntax::ast::Body,
    allowed: &[(&str, &str)],
    host: &Host,
    dir: &Path,
    what: &str,
) -> Result<BTreeMap<String, Value>, Vec<Diagnostic>> {
    let scope = ConstantScope { host: host.clone(), dir: dir.to_path_buf() };
    let mut values = BTreeMap::new();
    let mut errors = Vec::new();
    for block in body.blocks() {
        errors.push(
            Diagnostic::error(Code::UnexpectedBlock, format!("{what} takes no blocks"))
                .with_label(block.kind.span, "not allowed here"),
        );
    }
    for attribute in body.attributes() {
        let name = attribute.name.name.as_str();
        if !allowed.iter().any(|(n, _)| *n == name) {
            let names = allowed.iter().map(|(n, _)| *n);
            let help = crate::did_you_mean(name, names).map_or_else(
                || {
                    format!(
                        "{what} takes: {}",
                        allowed.iter().map(|(n, d)| format!("`{n}` ({d})")).collect::<Vec<_>>().join(", ")
                    )
                },
                |s| format!("did you mean `{s}`?"),
            );
            errors.push(
                Diagnostic::error(Code::UnknownAttribute, format!("{what} has no attribute `{name}`"))
                    .with_label(attribute.name.span, "unknown attribute")
                    .with_help(help),
            );
            continue;
        }
        if let Some((_, span)) = crate::references(&attribute.value).first() {
            errors.push(
                Diagnostic::error(Code::Backend, format!("{what} cannot refer to variables, resources or modules"))
                    .with_label(*span, "read before the configuration is evaluated")
                    .with_help("use a literal or a function such as env(\"INFRA_PG\")"),
            );
            continue;
        }
        match eval(&attribute.value, &scope) {
            Ok(v) => {
                values.insert(name.to_string(), v);
            }
            Err(d) => errors.push(d),
        }
    }
    if errors.is_empty() { Ok(values) } else { Err(errors) }
}

/// Evaluates an expression that may use functions but no references (an
/// `import` block's `id`).
pub fn eval_constant(expr: &infra_syntax::ast::Expr, host: &Host, dir: &Path) -> Result<Value, Diagnostic> {
    if let Some((_, span)) = crate::references(expr).first() {
        return Err(Diagnostic::error(Code::Constant, "this value is read before anything is evaluated")
            .with_label(*span, "a reference is not allowed here")
            .with_help("use a literal or a function such as env(\"NAME\")"));
    }
    eval(expr, &ConstantScope { host: host.clone(), dir: dir.to_path_buf() })
}

/// A scope with no names in it: only literals and functions.
struct ConstantScope {
    host: Host,
    dir: PathBuf,
}

impl Scope for ConstantScope {
    fn resolve(&self, _: &Reference) -> Option<Value> {
        None
    }
    fn module_dir(&self) -> &Path {
        &self.dir
    }
    fn host(&self) -> &Host {
        &self.host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_vars_follow_the_declared_type() {
        assert_eq!(parse_cli_var("hello world", &Type::String), Ok(Value::string("hello world")));
        assert_eq!(parse_cli_var("3", &Type::Number), Ok(Value::Number(3.0)));
        assert_eq!(
            parse_cli_var("[80, 443]", &Type::list(Type::Number)),
            Ok(Value::List(vec![Value::Number(80.0), Value::Number(443.0)]))
        );
        assert!(parse_cli_var("[80,", &Type::list(Type::Number)).is_err());
        assert_eq!(
            parse_cli_var("abc", &Type::Number),
            Err("expected number, found a string \"abc\" that is not a number".into())
        );
    }
}
