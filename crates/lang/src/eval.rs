//! Expression evaluation against a caller-provided [`Scope`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use infra_core::Value;
use infra_syntax::ast::{BinaryOp, Expr, ExprKind, ForExpr, ObjectKey, TemplatePart, Traversal, UnaryOp};
use infra_syntax::{Code, Diagnostic};

use crate::Reference;

/// What evaluation may know about the machine it runs on. The CLI fills it; tests
/// pin it, so evaluation never reads the process environment by itself.
#[derive(Clone, Debug, Default)]
pub struct Host {
    pub env: BTreeMap<String, String>,
    pub home: Option<PathBuf>,
    pub cwd: PathBuf,
    /// The configuration's root directory (`path.root`).
    pub root: PathBuf,
    /// The environment being worked on (`env.name`); empty means `default`.
    pub environment: String,
}

impl Host {
    /// `env.name`.
    pub fn environment_name(&self) -> &str {
        if self.environment.is_empty() { "default" } else { &self.environment }
    }
}

/// Supplies the values of references while evaluating.
pub trait Scope {
    /// The value a reference names; `None` when nothing by that name exists.
    /// `Reference::Module(m)` resolves to an object of the module's outputs.
    fn resolve(&self, reference: &Reference) -> Option<Value>;
    /// The directory of the module being evaluated (`path.module`, `file()`).
    fn module_dir(&self) -> &Path;
    fn host(&self) -> &Host;
}

/// Evaluates an expression.
pub fn eval(expr: &Expr, scope: &dyn Scope) -> Result<Value, Diagnostic> {
    Evaluator { scope, bindings: Vec::new() }.eval(expr)
}

/// Evaluates with extra names bound (as `for` does), e.g. `each` in tests.
pub fn eval_in(expr: &Expr, scope: &dyn Scope, bindings: Vec<(String, Value)>) -> Result<Value, Diagnostic> {
    Evaluator { scope, bindings }.eval(expr)
}

pub(crate) fn error(expr: &Expr, message: impl Into<String>, label: impl Into<String>) -> Diagnostic {
    Diagnostic::error(Code::Eval, message).with_label(expr.span, label)
}

struct Evaluator<'a> {
    scope: &'a dyn Scope,
    bindings: Vec<(String, Value)>,
}

/// Functions that arrange the elements of lists and maps without looking
/// inside them: an element known only after apply, or sensitive, stays so in
/// the result, and the rest stays known and shown (`merge` of a map of ids
/// not made yet still has its keys at plan time).
const STRUCTURAL: &[&str] = &["merge", "concat", "keys", "values", "length", "lookup", "element", "slice", "reverse"];

/// Applies `f` to bare values and puts sensitivity back on the result.
fn unmarked<F>(values: &[&Value], f: F) -> Result<Value, String>
where
    F: FnOnce(&[Value]) -> Result<Value, String>,
{
    let mut sensitive = false;
    let bare: Vec<Value> = values
        .iter()
        .map(|v| {
            let (bare, s) = v.unmark();
            sensitive |= s;
            bare
        })
        .collect();
    if bare.iter().any(|v| !v.is_wholly_known()) {
        return Ok(Value::Unknown);
    }
    match f(&bare) {
        Ok(result) => Ok(if sensitive { result.sensitive() } else { result }),
        // The message could quote the secret it failed on.
        Err(_) if sensitive => Err("this failed on a sensitive value; details are hidden so it does not leak".into()),
        Err(e) => Err(e),
    }
}

impl Evaluator<'_> {
    fn eval(&mut self, expr: &Expr) -> Result<Value, Diagnostic> {
        match &expr.kind {
            ExprKind::Null => Ok(Value::Null),
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::Number(n) => Ok(Value::Number(*n)),
            ExprKind::Template(parts) => self.template(parts),
            ExprKind::Tuple(items) => items.iter().map(|e| self.eval(e)).collect::<Result<_, _>>().map(Value::List),
            ExprKind::Object(items) => {
                let mut map = BTreeMap::new();
                let mut unknown_key = false;
                for item in items {
                    let key = match &item.key {
                        ObjectKey::Ident(ident) => Some(ident.name.clone()),
                        ObjectKey::Expr(e) => self.key_string(e)?,
                    };
                    let value = self.eval(&item.value)?;
                    match key {
                        Some(key) => _ = map.insert(key, value),
                        None => unknown_key = true,
                    }
                }
                // A key known only after apply: the object's shape is not known either.
                Ok(if unknown_key { Value::Unknown } else { Value::Object(map.into()) })
            }
            ExprKind::Variable(root) => {
                if let Some((_, v)) = self.bindings.iter().rev().find(|(n, _)| n == &root.name) {
                    return Ok(v.clone());
                }
                Err(error(expr, format!("`{}` cannot be used on its own", root.name), "incomplete reference")
                    .with_help(format!("refer to something inside it, such as `{}.NAME`", root.name)))
            }
            ExprKind::GetAttr(inner, attr) => {
                if let Some(value) = self.reference(expr)? {
                    return Ok(value);
                }
                let base = self.eval(inner)?;
                get_attr(&base, &attr.name).map_err(|(msg, help)| {
                    let mut d = error(expr, msg, "no such attribute");
                    if let Some(help) = help {
                        d = d.with_help(help);
                    }
                    d
                })
            }
            ExprKind::Index(inner, index) => {
                let base = self.eval(inner)?;
                let key = self.eval(index)?;
                index_value(&base, &key).map_err(|msg| error(expr, msg, "invalid index"))
            }
            ExprKind::Splat(inner, rest) => {
                let base = self.eval(inner)?;
                let items = match base.peel() {
                    Value::Unknown => return Ok(Value::Unknown),
                    Value::Null => Vec::new(),
                    Value::List(items) => items.clone(),
                    other => vec![other.clone()],
                };
                let mut out = Vec::with_capacity(items.len());
                for mut item in items {
                    for t in rest {
                        item = match t {
                            Traversal::Attr(name) => {
                                get_attr(&item, &name.name).map_err(|(m, _)| error(expr, m, "in this splat"))?
                            }
                            Traversal::Index(i) => {
                                let key = self.eval(i)?;
                                index_value(&item, &key).map_err(|m| error(expr, m, "in this splat"))?
                            }
                        };
                    }
                    out.push(item);
                }
                Ok(Value::List(out))
            }
            ExprKind::Call { name, args, expand_final } => self.call(expr, &name.name, args, *expand_final),
            ExprKind::Unary(op, inner) => {
                let v = self.eval(inner)?;
                let result = unmarked(&[&v], |v| match (op, &v[0]) {
                    (UnaryOp::Neg, Value::Number(n)) => Ok(Value::Number(-n)),
                    (UnaryOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
                    (UnaryOp::Neg, other) => Err(format!("`-` needs a number, found a {}", other.type_name())),
                    (UnaryOp::Not, other) => Err(format!("`!` needs a bool, found a {}", other.type_name())),
                });
                result.map_err(|m| error(expr, m, "wrong type"))
            }
            ExprKind::Binary(op, l, r) => self.binary(expr, *op, l, r),
            ExprKind::Conditional(c, t, f) => {
                let cond = self.eval(c)?;
                match cond.peel() {
                    Value::Bool(true) => self.eval(t),
                    Value::Bool(false) => self.eval(f),
                    Value::Unknown => Ok(Value::Unknown),
                    other => Err(error(
                        c,
                        format!("a condition must be a bool, found a {}", other.type_name()),
                        "not a bool",
                    )),
                }
                .map(|v| if cond.contains_sensitive() { v.sensitive() } else { v })
            }
            ExprKind::For(f) => self.for_expr(expr, f),
            ExprKind::Paren(inner) => self.eval(inner),
        }
    }

    /// Resolves `var.x`, `file.motd`, `module.m`, `count.index`, ... when `expr`
    /// is exactly such a reference; `Ok(None)` when it is not one.
    fn reference(&mut self, expr: &Expr) -> Result<Option<Value>, Diagnostic> {
        let ExprKind::GetAttr(inner, attr) = &expr.kind else {
            return Ok(None);
        };
        let ExprKind::Variable(root) = &inner.kind else {
            return Ok(None);
        };
        if self.bindings.iter().any(|(n, _)| n == &root.name) {
            return Ok(None);
        }
        let name = attr.name.clone();
        let reference = match root.name.as_str() {
            "var" => Reference::Var(name),
            "local" => Reference::Local(name),
            "module" => Reference::Module(name),
            "count" if name == "index" => Reference::CountIndex,
            "each" if name == "key" => Reference::EachKey,
            "each" if name == "value" => Reference::EachValue,
            "path" => Reference::Path(name),
            "env" => Reference::Env(name),
            kind => Reference::Resource { kind: kind.to_string(), name },
        };
        match self.scope.resolve(&reference) {
            Some(v) => Ok(Some(v)),
            None => Err(error(expr, format!("unknown reference `{}.{}`", root.name, attr.name), "not declared")),
        }
    }

    /// An object key; `None` when it is known only after apply.
    fn key_string(&mut self, e: &Expr) -> Result<Option<String>, Diagnostic> {
        let v = self.eval(e)?;
        if matches!(v.peel(), Value::Unknown) {
            return Ok(None);
        }
        v.peel().to_template_string().map(Some).ok_or_else(|| {
            error(e, format!("an object key must be a string, found a {}", v.type_name()), "not a string")
        })
    }

    fn template(&mut self, parts: &[TemplatePart]) -> Result<Value, Diagnostic> {
        let mut out = String::new();
        let mut sensitive = false;
        let mut unknown = false;
        for part in parts {
            match part {
                TemplatePart::Literal(text) => out.push_str(text),
                TemplatePart::Interpolation(e) => {
                    let v = self.eval(e)?;
                    sensitive |= v.contains_sensitive();
                    match v.peel() {
                        Value::Unknown => unknown = true,
                        Value::Null => {
                            return Err(error(e, "cannot interpolate a null value", "this is null")
                                .with_help("use a default, e.g. `coalesce(x, \"\")`"));
                        }
                        other => match other.to_template_string() {
                            Some(s) => out.push_str(&s),
                            None => {
                                return Err(error(
                                    e,
                                    format!("cannot interpolate a {} into a string", other.type_name()),
                                    "not a string",
                                )
                                .with_help("convert it first, e.g. with `join(\",\", list)` or `jsonencode(value)`"));
                            }
                        },
                    }
                }
            }
        }
        let value = if unknown { Value::Unknown } else { Value::String(out) };
        Ok(if sensitive { value.sensitive() } else { value })
    }

    fn binary(&mut self, expr: &Expr, op: BinaryOp, l: &Expr, r: &Expr) -> Result<Value, Diagnostic> {
        let left = self.eval(l)?;
        // `&&` and `||` short-circuit on known bools.
        match (op, left.peel()) {
            (BinaryOp::And, Value::Bool(false)) => return Ok(left),
            (BinaryOp::Or, Value::Bool(true)) => return Ok(left),
            _ => {}
        }
        let right = self.eval(r)?;
        let result = unmarked(&[&left, &right], |v| binary_op(op, &v[0], &v[1]));
        result.map_err(|m| error(expr, m, format!("in this `{}`", op.symbol())))
    }

    fn for_expr(&mut self, expr: &Expr, f: &ForExpr) -> Result<Value, Diagnostic> {
        let collection = self.eval(&f.collection)?;
        // A sensitive collection makes a sensitive result; a sensitive element
        // stays marked on its own, through whatever the expressions do with it.
        let sensitive = matches!(collection, Value::Sensitive(_));
        let pairs: Vec<(Value, Value)> = match collection.peel() {
            Value::Unknown => return Ok(Value::Unknown),
            Value::List(items) => items.iter().enumerate().map(|(i, v)| (Value::Number(i as f64), v.clone())).collect(),
            Value::Object(map) => map.iter().map(|(k, v)| (Value::string(k.clone()), v.clone())).collect(),
            other => {
                return Err(error(
                    &f.collection,
                    format!("`for` needs a list or a map, found a {}", other.type_name()),
                    "not a collection",
                ));
            }
        };
        let mut list = Vec::new();
        let mut map: BTreeMap<String, Value> = BTreeMap::new();
        let mut grouped: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (key, value) in pairs {
            let depth = self.bindings.len();
            if let Some(k) = &f.key_var {
                self.bindings.push((k.name.clone(), key));
            }
            self.bindings.push((f.value_var.name.clone(), value));
            let result = self.for_item(f);
            self.bindings.truncate(depth);
            let (k, v) = match result? {
                ForItem::Skipped => continue,
                // Which items there are, or their keys, is known only after apply.
                ForItem::Unknown => return Ok(if sensitive { Value::Unknown.sensitive() } else { Value::Unknown }),
                ForItem::Kept(k, v) => (k, v),
            };
            match k {
                None => list.push(v),
                Some(k) if f.group => grouped.entry(k).or_default().push(v),
                Some(k) => {
                    if map.insert(k.clone(), v).is_some() {
                        return Err(error(
                            expr,
                            format!("duplicate key {k:?} in `for` expression"),
                            "two items have the same key",
                        )
                        .with_help("add `...` after the value to group items by key"));
                    }
                }
            }
        }
        let result = match &f.key_expr {
            None => Value::List(list),
            Some(_) if f.group => Value::Object(grouped.into_iter().map(|(k, v)| (k, Value::List(v))).collect()),
            Some(_) => Value::Object(map.into()),
        };
        Ok(if sensitive { result.sensitive() } else { result })
    }

    fn for_item(&mut self, f: &ForExpr) -> Result<ForItem, Diagnostic> {
        if let Some(cond) = &f.condition {
            match self.eval(cond)?.peel() {
                Value::Bool(true) => {}
                Value::Bool(false) => return Ok(ForItem::Skipped),
                Value::Unknown => return Ok(ForItem::Unknown),
                other => {
                    return Err(error(
                        cond,
                        format!("an `if` clause must be a bool, found a {}", other.type_name()),
                        "not a bool",
                    ));
                }
            }
        }
        let key = match &f.key_expr {
            Some(k) => match self.key_string(k)? {
                Some(key) => Some(key),
                None => return Ok(ForItem::Unknown),
            },
            None => None,
        };
        Ok(ForItem::Kept(key, self.eval(&f.value_expr)?))
    }

    fn call(&mut self, expr: &Expr, name: &str, args: &[Expr], expand_final: bool) -> Result<Value, Diagnostic> {
        // Functions that look at their arguments unevaluated or keep marks themselves.
        match name {
            "try" => {
                let mut last = None;
                for arg in args {
                    match self.eval(arg) {
                        Ok(v) => return Ok(v),
                        Err(e) => last = Some(e),
                    }
                }
                return Err(last.unwrap_or_else(|| error(expr, "`try` needs at least one argument", "no arguments")));
            }
            "can" if args.len() == 1 => return Ok(Value::Bool(self.eval(&args[0]).is_ok())),
            "sensitive" if args.len() == 1 => return Ok(self.eval(&args[0])?.sensitive()),
            "nonsensitive" if args.len() == 1 => return Ok(self.eval(&args[0])?.unmark().0),
            _ => {}
        }
        let mut values = args.iter().map(|a| self.eval(a)).collect::<Result<Vec<_>, _>>()?;
        if expand_final {
            match values.pop().as_ref().map(Value::peel) {
                Some(Value::List(items)) => values.extend(items.iter().cloned()),
                Some(Value::Unknown) => return Ok(Value::Unknown),
                _ => {
                    return Err(error(expr, "`...` expands a list, but the last argument is not one", "not a list"));
                }
            }
        }
        let ctx = crate::functions::Context { module_dir: self.scope.module_dir(), host: self.scope.host() };
        let Some(function) = crate::functions::lookup(name) else {
            let mut d = error(expr, format!("unknown function `{name}`"), "no such function");
            if let Some(s) = crate::did_you_mean(name, crate::functions::names()) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            return Err(d);
        };
        if name == "env" {
            return function(&values, &ctx)
                .map(Value::sensitive)
                .map_err(|m| error(expr, m, format!("in `{name}(...)`")));
        }
        if STRUCTURAL.contains(&name) && values.iter().all(|v| !matches!(v.peel(), Value::Unknown)) {
            let sensitive = values.iter().any(|v| matches!(v, Value::Sensitive(_)));
            let bare: Vec<Value> = values.iter().map(|v| v.peel().clone()).collect();
            let result = function(&bare, &ctx).map_err(|m| error(expr, m, format!("in `{name}(...)`")))?;
            return Ok(if sensitive { result.sensitive() } else { result });
        }
        let refs: Vec<&Value> = values.iter().collect();
        unmarked(&refs, |bare| function(bare, &ctx)).map_err(|m| error(expr, m, format!("in `{name}(...)`")))
    }
}

pub(crate) fn get_attr(base: &Value, name: &str) -> Result<Value, (String, Option<String>)> {
    let sensitive = matches!(base, Value::Sensitive(_));
    let result = match base.peel() {
        Value::Unknown => Ok(Value::Unknown),
        Value::Object(map) => map.get(name).cloned().ok_or_else(|| {
            let help =
                crate::did_you_mean(name, map.keys().map(String::as_str)).map(|s| format!("did you mean `{s}`?"));
            (
                format!("no attribute `{name}` here"),
                help.or_else(|| Some(format!("available: {}", map.keys().cloned().collect::<Vec<_>>().join(", ")))),
            )
        }),
        Value::Null => Err((format!("cannot read `{name}` of a null value"), None)),
        Value::List(_) => Err((
            format!("cannot read `{name}` of a list"),
            Some(format!("pick one element with `[0].{name}`, or all with `[*].{name}`")),
        )),
        other => Err((format!("cannot read `{name}` of a {}", other.type_name()), None)),
    };
    result.map(|v| if sensitive { v.sensitive() } else { v })
}

/// Indexing keeps the element as it is: unknown or sensitive parts elsewhere in
/// the collection do not make the chosen element unknown or sensitive. A
/// sensitive collection or key makes the result sensitive.
fn index_value(base: &Value, key: &Value) -> Result<Value, String> {
    let sensitive = matches!(base, Value::Sensitive(_)) || key.contains_sensitive();
    let key = key.unmark().0;
    let element = match (base.peel(), &key) {
        (Value::Unknown, _) | (_, Value::Unknown) => Ok(Value::Unknown),
        (Value::List(items), Value::Number(n)) => {
            if n.fract() != 0.0 || *n < 0.0 {
                return Err(format!("a list index must be a whole number, found {n}"));
            }
            items
                .get(*n as usize)
                .cloned()
                .ok_or_else(|| format!("index {n} is out of range: the list has {} elements", items.len()))
        }
        (Value::Object(map), k) => {
            let k = k
                .to_template_string()
                .ok_or_else(|| format!("a map key must be a string, found a {}", k.type_name()))?;
            map.get(&k).cloned().ok_or_else(|| {
                let keys: Vec<String> = map.keys().take(10).map(|key| format!("{key:?}")).collect();
                let more = if map.len() > keys.len() { ", ..." } else { "" };
                format!("the map has no key {k:?} (its keys: {}{more})", keys.join(", "))
            })
        }
        (Value::List(_), k) => Err(format!("a list index must be a number, found a {}", k.type_name())),
        (other, _) => Err(format!("cannot index a {}", other.type_name())),
    };
    match element {
        Ok(v) => Ok(if sensitive { v.sensitive() } else { v }),
        // The message could name a secret key.
        Err(_) if sensitive => {
            Err("cannot index with a sensitive value; details are hidden so it does not leak".into())
        }
        Err(e) => Err(e),
    }
}

fn number(v: &Value) -> Result<f64, String> {
    infra_core::Type::Number
        .convert(v.clone())
        .map_err(|found| format!("expected a number, found {found}"))?
        .as_number()
        .ok_or_else(|| format!("expected a number, found a {}", v.type_name()))
}

fn binary_op(op: BinaryOp, l: &Value, r: &Value) -> Result<Value, String> {
    use BinaryOp::*;
    Ok(match op {
        Eq => Value::Bool(l == r),
        Ne => Value::Bool(l != r),
        And | Or => match (l, r) {
            (Value::Bool(a), Value::Bool(b)) => Value::Bool(if op == And { *a && *b } else { *a || *b }),
            _ => {
                return Err(format!("`{}` needs bools, found {} and {}", op.symbol(), l.type_name(), r.type_name()));
            }
        },
        Lt | Gt | Le | Ge => {
            let (a, b) = (number(l)?, number(r)?);
            Value::Bool(match op {
                Lt => a < b,
                Gt => a > b,
                Le => a <= b,
                _ => a >= b,
            })
        }
        Add | Sub | Mul | Div | Rem => {
            let (a, b) = (number(l)?, number(r)?);
            if matches!(op, Div | Rem) && b == 0.0 {
                return Err("division by zero".into());
            }
            Value::Number(match op {
                Add => a + b,
                Sub => a - b,
                Mul => a * b,
                Div => a / b,
                _ => a % b,
            })
        }
    })
}

/// One item of a `for` expression.
enum ForItem {
    /// Its `if` clause is false.
    Skipped,
    /// Its `if` clause or its key is known only after apply.
    Unknown,
    Kept(Option<String>, Value),
}
