//! Static references: what an expression names, found without evaluating it.

use std::collections::HashSet;

use infra_syntax::Span;
use infra_syntax::ast::{Expr, ExprKind, ObjectKey, TemplatePart, Traversal};

/// Something an expression reads from its scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reference {
    Var(String),
    Local(String),
    /// `module.NAME.OUTPUT`, or `module.NAME[KEY].OUTPUT` (`indexed`) for one
    /// instance of a call with `count` or `for_each`.
    ModuleOutput {
        module: String,
        output: String,
        indexed: bool,
    },
    /// `module.NAME` as a whole.
    Module(String),
    /// `TYPE.NAME`
    Resource {
        kind: String,
        name: String,
    },
    CountIndex,
    EachKey,
    EachValue,
    /// `path.module`, `path.root`, `path.cwd`
    Path(String),
    /// `env.name`: the environment (`infra env`) being planned or applied.
    Env(String),
}

/// The roots that are not resource types.
pub(crate) const RESERVED_ROOTS: [&str; 8] = ["var", "local", "module", "count", "each", "path", "self", "env"];

/// Every reference in `expr`, with the span of the traversal that makes it.
/// Names bound by `for` expressions are not references.
pub fn references(expr: &Expr) -> Vec<(Reference, Span)> {
    let mut out = Vec::new();
    collect(expr, &mut HashSet::new(), &mut out);
    out
}

fn collect(expr: &Expr, bound: &mut HashSet<String>, out: &mut Vec<(Reference, Span)>) {
    if let Some(reference) = traversal_reference(expr, bound) {
        out.push(reference);
        // Index expressions inside a traversal may still refer to things.
        collect_indexes(expr, bound, out);
        return;
    }
    match &expr.kind {
        ExprKind::Null | ExprKind::Bool(_) | ExprKind::Number(_) | ExprKind::Variable(_) => {}
        ExprKind::Template(parts) => {
            for part in parts {
                if let TemplatePart::Interpolation(e) = part {
                    collect(e, bound, out);
                }
            }
        }
        ExprKind::Tuple(items) => items.iter().for_each(|e| collect(e, bound, out)),
        ExprKind::Object(items) => {
            for item in items {
                if let ObjectKey::Expr(k) = &item.key {
                    collect(k, bound, out);
                }
                collect(&item.value, bound, out);
            }
        }
        ExprKind::GetAttr(e, _) | ExprKind::Paren(e) | ExprKind::Unary(_, e) => collect(e, bound, out),
        ExprKind::Index(e, i) => {
            collect(e, bound, out);
            collect(i, bound, out);
        }
        ExprKind::Splat(e, rest) => {
            collect(e, bound, out);
            for t in rest {
                if let Traversal::Index(i) = t {
                    collect(i, bound, out);
                }
            }
        }
        ExprKind::Call { args, .. } => args.iter().for_each(|e| collect(e, bound, out)),
        ExprKind::Binary(_, l, r) => {
            collect(l, bound, out);
            collect(r, bound, out);
        }
        ExprKind::Conditional(c, t, f) => {
            collect(c, bound, out);
            collect(t, bound, out);
            collect(f, bound, out);
        }
        ExprKind::For(f) => {
            collect(&f.collection, bound, out);
            let names: Vec<String> =
                f.key_var.iter().chain(std::iter::once(&f.value_var)).map(|i| i.name.clone()).collect();
            let newly: Vec<String> = names.into_iter().filter(|n| bound.insert(n.clone())).collect();
            for e in f.key_expr.iter().chain(std::iter::once(&f.value_expr)).chain(f.condition.iter()) {
                collect(e, bound, out);
            }
            for n in newly {
                bound.remove(&n);
            }
        }
    }
}

fn collect_indexes(expr: &Expr, bound: &mut HashSet<String>, out: &mut Vec<(Reference, Span)>) {
    match &expr.kind {
        ExprKind::GetAttr(e, _) => collect_indexes(e, bound, out),
        ExprKind::Index(e, i) => {
            collect_indexes(e, bound, out);
            collect(i, bound, out);
        }
        _ => {}
    }
}

/// The root name and the first attribute after it, looking through indexes.
fn root_and_attrs(expr: &Expr) -> Option<(&infra_syntax::ast::Ident, Vec<&infra_syntax::ast::Ident>)> {
    match &expr.kind {
        ExprKind::Variable(root) => Some((root, Vec::new())),
        ExprKind::GetAttr(inner, attr) => {
            let (root, mut attrs) = root_and_attrs(inner)?;
            attrs.push(attr);
            Some((root, attrs))
        }
        ExprKind::Index(inner, _) => root_and_attrs(inner),
        _ => None,
    }
}

/// Whether `module.NAME` is indexed right after its name in `module.NAME[KEY].OUTPUT...`.
fn indexed_after_call(expr: &Expr) -> bool {
    // Walk down to the traversal's first two steps: `module` then `NAME`.
    let mut current = expr;
    let mut indexed_here = false;
    loop {
        match &current.kind {
            ExprKind::GetAttr(inner, _) => {
                if matches!(&inner.kind, ExprKind::Variable(root) if root.name == "module") {
                    return indexed_here;
                }
                indexed_here = false;
                current = inner;
            }
            ExprKind::Index(inner, _) => {
                indexed_here = true;
                current = inner;
            }
            _ => return false,
        }
    }
}

fn traversal_reference(expr: &Expr, bound: &HashSet<String>) -> Option<(Reference, Span)> {
    let (root, attrs) = root_and_attrs(expr)?;
    if bound.contains(&root.name) {
        return None;
    }
    let span_to = |n: usize| attrs.get(n.saturating_sub(1)).map_or(root.span, |a| root.span.to(a.span));
    let first = attrs.first().map(|a| a.name.clone());
    let reference = match (root.name.as_str(), first) {
        ("var", Some(name)) => (Reference::Var(name), span_to(1)),
        ("local", Some(name)) => (Reference::Local(name), span_to(1)),
        ("module", Some(module)) => match attrs.get(1) {
            Some(output) => {
                let indexed = indexed_after_call(expr);
                (Reference::ModuleOutput { module, output: output.name.clone(), indexed }, span_to(2))
            }
            None => (Reference::Module(module), span_to(1)),
        },
        ("count", Some(attr)) if attr == "index" => (Reference::CountIndex, span_to(1)),
        ("each", Some(attr)) if attr == "key" => (Reference::EachKey, span_to(1)),
        ("each", Some(attr)) if attr == "value" => (Reference::EachValue, span_to(1)),
        ("path", Some(attr)) => (Reference::Path(attr), span_to(1)),
        ("env", Some(attr)) => (Reference::Env(attr), span_to(1)),
        (kind, Some(name)) => (Reference::Resource { kind: kind.to_string(), name }, span_to(1)),
        _ => return None,
    };
    Some(reference)
}

#[cfg(test)]
mod tests {
    use super::*;
    use infra_syntax::ast::BodyItem;

    fn refs_of(text: &str) -> Vec<Reference> {
        let file = infra_syntax::parse(infra_syntax::FileId(0), &format!("x = {text}\n")).expect("parses");
        let Some(BodyItem::Attribute(a)) = file.body.items.first() else { panic!("no attribute") };
        references(&a.value).into_iter().map(|(r, _)| r).collect()
    }

    #[test]
    fn finds_roots_and_skips_for_bindings() {
        assert_eq!(
            refs_of("\"${var.a}-${file.motd.path}\""),
            vec![Reference::Var("a".into()), Reference::Resource { kind: "file".into(), name: "motd".into() }]
        );
        assert_eq!(refs_of("[for x in local.l : x.name]"), vec![Reference::Local("l".into())]);
        assert_eq!(
            refs_of("module.web.addr[count.index]"),
            vec![
                Reference::ModuleOutput { module: "web".into(), output: "addr".into(), indexed: false },
                Reference::CountIndex
            ]
        );
        assert_eq!(refs_of("upper(each.key)"), vec![Reference::EachKey]);
        assert_eq!(
            refs_of("module.web[\"a\"].url"),
            vec![Reference::ModuleOutput { module: "web".into(), output: "url".into(), indexed: true }]
        );
    }
}
