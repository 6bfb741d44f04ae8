//! What each function of the library takes and returns, in words: the text an
//! editor shows on hover and in completion. A test keeps it in step with
//! `functions.rs`.

/// A function's name, its signature and one sentence on what it returns.
#[derive(Clone, Copy, Debug)]
pub struct FunctionDoc {
    pub name: &'static str,
    pub signature: &'static str,
    pub summary: &'static str,
}

const fn doc(name: &'static str, signature: &'static str, summary: &'static str) -> FunctionDoc {
    FunctionDoc { name, signature, summary }
}

/// Every function, by name.
pub const FUNCTION_DOCS: &[FunctionDoc] = &[
    doc("abs", "abs(number) → number", "The number without its sign."),
    doc(
        "abspath",
        "abspath(path) → string",
        "The path made absolute, relative paths taken from the working directory.",
    ),
    doc("alltrue", "alltrue(list of bool) → bool", "Whether every element is true (true for an empty list)."),
    doc("anytrue", "anytrue(list of bool) → bool", "Whether any element is true (false for an empty list)."),
    doc("base64decode", "base64decode(string) → string", "The UTF-8 text a Base64 string encodes."),
    doc("base64encode", "base64encode(string) → string", "The text encoded as Base64."),
    doc("basename", "basename(path) → string", "The last component of a path."),
    doc("can", "can(expression) → bool", "Whether the expression evaluates without an error."),
    doc("ceil", "ceil(number) → number", "The smallest whole number not below the number."),
    doc("chomp", "chomp(string) → string", "The text without its trailing newlines."),
    doc("cidrhost", "cidrhost(prefix, hostnum) → string", "The address of host number `hostnum` in a CIDR prefix."),
    doc("cidrnetmask", "cidrnetmask(prefix) → string", "The netmask of an IPv4 CIDR prefix, dotted."),
    doc(
        "cidrsubnet",
        "cidrsubnet(prefix, newbits, netnum) → string",
        "Subnet `netnum` of a prefix extended by `newbits` bits.",
    ),
    doc("coalesce", "coalesce(value, ...) → value", "The first argument that is neither null nor an empty string."),
    doc("compact", "compact(list of string) → list of string", "The list without nulls and empty strings."),
    doc("concat", "concat(list, ...) → list", "The lists joined into one."),
    doc("contains", "contains(list, value) → bool", "Whether the list holds the value."),
    doc("dirname", "dirname(path) → string", "The path without its last component."),
    doc("distinct", "distinct(list) → list", "The list without repeated elements, first occurrences kept in order."),
    doc("element", "element(list, index) → value", "The element at `index`, wrapping around past the end."),
    doc("endswith", "endswith(string, suffix) → bool", "Whether the text ends with the suffix."),
    doc(
        "env",
        "env(name, default?) → string",
        "An environment variable of the machine running infra; the default, or an error, when unset.",
    ),
    doc(
        "file",
        "file(path) → string",
        "The contents of a file; a relative path is from the working directory (write `${path.module}/x` in a module).",
    ),
    doc(
        "fileexists",
        "fileexists(path) → bool",
        "Whether a file exists; a relative path is from the working directory.",
    ),
    doc("flatten", "flatten(list) → list", "Nested lists replaced by their elements, recursively."),
    doc("floor", "floor(number) → number", "The largest whole number not above the number."),
    doc("format", "format(spec, value, ...) → string", "Text made from a format spec: `%s`, `%d`, `%q`, `%v`, `%%`."),
    doc("indent", "indent(spaces, string) → string", "Every line but the first indented by `spaces` spaces."),
    doc("join", "join(separator, list, ...) → string", "The strings of the lists joined with the separator."),
    doc("jsondecode", "jsondecode(string) → value", "The value a JSON text encodes."),
    doc("jsonencode", "jsonencode(value) → string", "The value as JSON text."),
    doc("keys", "keys(map) → list of string", "The map's keys, sorted."),
    doc("length", "length(list | map | string) → number", "The number of elements, keys or characters."),
    doc(
        "lookup",
        "lookup(map, key, default?) → value",
        "The map's value at `key`; the default, or an error, when absent.",
    ),
    doc("lower", "lower(string) → string", "The text in lower case."),
    doc("max", "max(number, ...) → number", "The largest of the numbers."),
    doc("merge", "merge(map, ...) → map", "The maps merged; a later map's key wins."),
    doc("min", "min(number, ...) → number", "The smallest of the numbers."),
    doc("nonsensitive", "nonsensitive(value) → value", "The value without its sensitive mark: it will be shown."),
    doc("pathexpand", "pathexpand(path) → string", "The path with a leading `~` replaced by the home directory."),
    doc("pow", "pow(base, exponent) → number", "`base` raised to `exponent`."),
    doc(
        "range",
        "range(limit) | range(start, limit, step?) → list of number",
        "The numbers from start (0) up to, not including, limit.",
    ),
    doc("replace", "replace(string, search, replacement) → string", "The text with every `search` replaced."),
    doc("reverse", "reverse(list) → list", "The list in reverse order."),
    doc("sensitive", "sensitive(value) → value", "The value, marked sensitive: never shown in plans, logs or errors."),
    doc("sha256", "sha256(string) → string", "The SHA-256 digest of the text, in hex."),
    doc("slice", "slice(list, start, end) → list", "The elements from `start` up to, not including, `end`."),
    doc("sort", "sort(list of string) → list of string", "The strings in lexical order."),
    doc("split", "split(separator, string) → list of string", "The text cut at each separator."),
    doc("startswith", "startswith(string, prefix) → bool", "Whether the text starts with the prefix."),
    doc("substr", "substr(string, offset, length) → string", "`length` characters from `offset` (-1: to the end)."),
    doc("sum", "sum(list of number) → number", "The numbers added up."),
    doc("templatefile", "templatefile(path, vars) → string", "A template file rendered with the variables of a map."),
    doc("tobool", "tobool(value) → bool", "The value converted to a bool."),
    doc("tolist", "tolist(value) → list", "The value converted to a list."),
    doc("tomap", "tomap(value) → map", "The value converted to a map."),
    doc("tonumber", "tonumber(value) → number", "The value converted to a number."),
    doc("toset", "toset(list) → set", "The list as a set: distinct elements."),
    doc("tostring", "tostring(value) → string", "The value converted to a string."),
    doc("trim", "trim(string, characters) → string", "The text without the given characters at either end."),
    doc("trimprefix", "trimprefix(string, prefix) → string", "The text without the prefix, if it starts with it."),
    doc("trimspace", "trimspace(string) → string", "The text without white space at either end."),
    doc("trimsuffix", "trimsuffix(string, suffix) → string", "The text without the suffix, if it ends with it."),
    doc("try", "try(expression, ...) → value", "The first expression that evaluates without an error."),
    doc("upper", "upper(string) → string", "The text in upper case."),
    doc("values", "values(map) → list", "The map's values, in the order of its sorted keys."),
    doc("zipmap", "zipmap(keys, values) → map", "A map from a list of keys and a list of values."),
];

/// The documentation of one function.
pub fn function_doc(name: &str) -> Option<&'static FunctionDoc> {
    FUNCTION_DOCS.iter().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_is_documented_and_nothing_else() {
        let documented: Vec<&str> = FUNCTION_DOCS.iter().map(|d| d.name).collect();
        let mut known: Vec<&str> = crate::functions::names().collect();
        known.sort_unstable();
        known.dedup();
        assert_eq!(documented, known);
        for d in FUNCTION_DOCS {
            assert!(d.signature.starts_with(&format!("{}(", d.name)), "{}", d.signature);
        }
    }
}
