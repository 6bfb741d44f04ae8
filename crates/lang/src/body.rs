//! Evaluating a block body against a schema: every attribute checked, converted
//! and defaulted, every problem reported at once.

use std::collections::BTreeMap;

use infra_core::{BlockNesting, Schema, Value};
use infra_syntax::ast::{Block, Body};
use infra_syntax::{Code, Diagnostic, Span};

use crate::{Scope, eval_in};

/// Evaluates `body` as an instance of `schema`. The result is an object holding
/// every schema attribute (absent optional ones as null, unknown computed ones as
/// null for the engine to fill); sensitive attributes come back marked.
/// `header` is where a missing attribute is reported.
pub fn eval_body(
    body: &Body,
    schema: &Schema,
    scope: &dyn Scope,
    bindings: &[(String, Value)],
    header: Span,
    what: &str,
) -> Result<Value, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut out = BTreeMap::new();
    for attribute in body.attributes() {
        let name = &attribute.name.name;
        let Some(attr_schema) = schema.attributes.get(name.as_str()) else {
            errors.push(unknown_attribute(name, attribute.name.span, schema, what));
            continue;
        };
        if attr_schema.read_only {
            errors.push(
                Diagnostic::error(
                    Code::ReadOnlyAttribute,
                    format!("`{name}` is computed by the provider and cannot be set"),
                )
                .with_label(attribute.name.span, "read-only attribute")
                .with_help(format!("remove it; read it elsewhere as `{what}.{name}`")),
            );
            continue;
        }
        let value = match eval_in(&attribute.value, scope, bindings.to_vec()) {
            Ok(v) => v,
            Err(d) => {
                errors.push(d);
                continue;
            }
        };
        match attr_schema.ty.convert(value) {
            // Null means "not set", as in Terraform: a required attribute is
            // refused now rather than by the backend mid-apply.
            Ok(v) if v.is_null() && attr_schema.required => {
                errors.push(
                    Diagnostic::error(Code::NullRequired, format!("`{name}` is required and cannot be null"))
                        .with_label(attribute.value.span, "this is null")
                        .with_help(format!("give `{name}` {}", article(&attr_schema.ty.to_string()))),
                );
                out.insert(name.clone(), v); // written, so not reported missing as well
            }
            Ok(v) if v.is_null() => {
                out.insert(name.clone(), attr_schema.default.clone().unwrap_or(Value::Null));
            }
            Ok(v) => {
                let v = if attr_schema.sensitive { v.sensitive() } else { v };
                out.insert(name.clone(), v);
            }
            Err(found) => errors.push(
                Diagnostic::error(
                    Code::TypeMismatch,
                    format!("`{name}` must be {}, found {found}", article(&attr_schema.ty.to_string())),
                )
                .with_label(attribute.value.span, format!("expected {}", attr_schema.ty)),
            ),
        }
    }
    for (name, block_schema) in &schema.blocks {
        let blocks: Vec<&Block> = body.blocks().filter(|b| b.kind.name == *name).collect();
        let mut values = Vec::new();
        for block in &blocks {
            let label = match block_schema.nesting {
                BlockNesting::Named => match block_label(block, &blocks) {
                    Ok(label) => Some(label),
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                },
                _ => None,
            };
            match eval_body(&block.body, &block_schema.schema, scope, bindings, block.kind.span, name) {
                Ok(value) => values.push(match (value, label) {
                    (Value::Object(mut fields), Some(label)) => {
                        fields.insert("name".to_string(), Value::string(label));
                        Value::Object(fields)
                    }
                    (value, _) => value,
                }),
                Err(e) => errors.extend(e),
            }
        }
        let value = match block_schema.nesting {
            BlockNesting::List | BlockNesting::Named => Value::List(values),
            BlockNesting::Single => {
                if blocks.len() > 1 {
                    errors.push(
                        Diagnostic::error(Code::Duplicate, format!("only one `{name}` block is allowed here"))
                            .with_label(blocks[1].kind.span, "second block"),
                    );
                }
                values.into_iter().next().unwrap_or(Value::Null)
            }
        };
        out.insert((*name).to_string(), value);
    }
    for block in body.blocks() {
        if !schema.blocks.contains_key(block.kind.name.as_str()) {
            errors.push(unknown_attribute(&block.kind.name, block.kind.span, schema, what));
        }
    }
    for (name, attr_schema) in &schema.attributes {
        if out.contains_key(*name) {
            continue;
        }
        if attr_schema.required {
            errors.push(
                Diagnostic::error(Code::MissingAttribute, format!("{what} is missing the required attribute `{name}`"))
                    .with_label(header, format!("add `{name} = ...` to this block"))
                    .with_help(if attr_schema.description.is_empty() {
                        format!("`{name}` is {}", article(&attr_schema.ty.to_string()))
                    } else {
                        format!("`{name}`: {}", attr_schema.description)
                    }),
            );
            continue;
        }
        out.insert((*name).to_string(), attr_schema.default.clone().unwrap_or(Value::Null));
    }
    if errors.is_empty() { Ok(Value::Object(out.into())) } else { Err(errors) }
}

/// The one label of a named block (`rule "ssh"`), unique among its siblings.
fn block_label(block: &Block, siblings: &[&Block]) -> Result<String, Diagnostic> {
    let kind = &block.kind.name;
    let [label] = block.labels.as_slice() else {
        return Err(Diagnostic::error(Code::BlockLabel, format!("a `{kind}` block needs exactly one name"))
            .with_label(block.kind.span, "name it")
            .with_help(format!("write `{kind} \"NAME\" {{ ... }}`")));
    };
    let first = siblings.iter().find(|b| b.labels.first().is_some_and(|l| l.name == label.name));
    match first {
        Some(first) if !std::ptr::eq(*first, block) => {
            Err(Diagnostic::error(Code::Duplicate, format!("two `{kind}` blocks are named \"{}\"", label.name))
                .with_label(label.span, "second one")
                .with_label(first.kind.span, "first one"))
        }
        _ => Ok(label.name.clone()),
    }
}

fn article(ty: &str) -> String {
    let vowel = ty.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {ty}", if vowel { "an" } else { "a" })
}

fn unknown_attribute(name: &str, span: Span, schema: &Schema, what: &str) -> Diagnostic {
    let d = Diagnostic::error(Code::UnknownAttribute, format!("{what} has no attribute `{name}`"))
        .with_label(span, "unknown attribute");
    match crate::did_you_mean(name, schema.writable_names()) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d.with_help(format!("{what} accepts: {}", schema.writable_names().collect::<Vec<_>>().join(", "))),
    }
}
