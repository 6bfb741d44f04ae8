//! The language's own blocks and the words each takes, with a sentence on each:
//! the decoder checks blocks against these lists, and an editor offers and
//! explains the same words.

/// A word a block takes: an attribute (`name = ...`) or a nested block.
#[derive(Clone, Copy, Debug)]
pub struct Word {
    pub name: &'static str,
    pub doc: &'static str,
    pub is_block: bool,
}

const fn attribute(name: &'static str, doc: &'static str) -> Word {
    Word { name, doc, is_block: false }
}

const fn block(name: &'static str, doc: &'static str) -> Word {
    Word { name, doc, is_block: true }
}

/// A block of the language itself (not a resource type).
#[derive(Clone, Copy, Debug)]
pub struct Keyword {
    pub kind: &'static str,
    /// What its labels name, in order (`NAME`), for the editor's template.
    pub labels: &'static [&'static str],
    pub doc: &'static str,
    /// Its words; a module call or provider block also takes its module's
    /// variables or its provider's settings.
    pub words: &'static [Word],
}

pub const VARIABLE_WORDS: &[Word] = &[
    attribute("type", "The type a value must convert to: string, number, bool, list(T), map(T), object({...}), any."),
    attribute("default", "The value used when none is given; without one the variable is required."),
    attribute("description", "What the variable is for, shown to whoever sets it."),
    attribute("sensitive", "true: the value is never shown in plans, logs or errors."),
    attribute("nullable", "false: null is refused, and the default is used instead of it."),
    block("validation", "A condition every value must meet, and the error shown when it does not."),
];

pub const CONDITION_WORDS: &[Word] = &[
    attribute("condition", "An expression that must be true."),
    attribute("error_message", "The message shown when the condition is false."),
];

pub const OUTPUT_WORDS: &[Word] = &[
    attribute("value", "The value the output shows, and that a calling module reads as module.NAME.OUTPUT."),
    attribute("description", "What the output is."),
    attribute("sensitive", "true: shown as (sensitive value)."),
    attribute("depends_on", "Resources or modules to finish before the output is read, beyond those its value names."),
];

pub const LIFECYCLE_WORDS: &[Word] = &[
    attribute("prevent_destroy", "true: a plan that would destroy this object is refused."),
    attribute("create_before_destroy", "true: a replacement is created before the old object is destroyed."),
    attribute("ignore_changes", "Attributes whose changes outside infra (or in the configuration) are not applied."),
    attribute("abandon_on_destroy", "true: destroying only forgets the object; it is left running."),
];

/// The words every resource block takes besides its type's attributes.
pub const RESOURCE_META_WORDS: &[Word] = &[
    attribute("count", "How many instances to make: TYPE.NAME[0], [1], ...; the body may read count.index."),
    attribute(
        "for_each",
        "A map or set of strings: one instance per key, TYPE.NAME[\"KEY\"]; the body may read each.key and each.value.",
    ),
    attribute("depends_on", "Resources or modules to create first, beyond those the body names."),
    attribute("provider", "Which provider configuration manages it: NAME, NAME.ALIAS or NAME.ALIAS[KEY]."),
    block("lifecycle", "How the object is replaced and destroyed."),
];

/// The words every module call takes besides the module's variables.
pub const MODULE_META_WORDS: &[Word] = &[
    attribute("source", "The module's directory, starting ./ or ../"),
    attribute("count", "How many instances of the module to make: module.NAME[0], ..."),
    attribute("for_each", "A map or set of strings: one module instance per key, module.NAME[\"KEY\"]."),
    attribute("providers", "Provider configurations the module uses under its own names: { docker = docker.remote }."),
    attribute("depends_on", "Resources or modules to finish before anything in the module."),
];

/// The words every provider block takes besides the provider's settings.
pub const PROVIDER_META_WORDS: &[Word] = &[
    attribute("alias", "A second configuration of the provider, selected with provider = NAME.ALIAS."),
    attribute("for_each", "One configuration per key, selected with provider = NAME.ALIAS[KEY]."),
];

pub const KEYWORDS: &[Keyword] = &[
    Keyword {
        kind: "variable",
        labels: &["NAME"],
        doc: "An input of the module, read as var.NAME.",
        words: VARIABLE_WORDS,
    },
    Keyword { kind: "locals", labels: &[], doc: "Named values, read as local.NAME.", words: &[] },
    Keyword {
        kind: "output",
        labels: &["NAME"],
        doc: "A value the module shows, and that its caller reads.",
        words: OUTPUT_WORDS,
    },
    Keyword {
        kind: "module",
        labels: &["NAME"],
        doc: "A call of the module in a directory, with its inputs.",
        words: MODULE_META_WORDS,
    },
    Keyword {
        kind: "provider",
        labels: &["NAME"],
        doc: "The settings of a provider: where and how its resources are made.",
        words: PROVIDER_META_WORDS,
    },
    Keyword { kind: "backend", labels: &["KIND"], doc: "Where state is kept: local or postgres.", words: &[] },
    Keyword {
        kind: "state",
        labels: &[],
        doc: "How state is kept: encryption.",
        words: &[block("encryption", "Seal state with a key.")],
    },
    Keyword {
        kind: "moved",
        labels: &[],
        doc: "A rename: the object recorded at `from` is kept and recorded at `to`.",
        words: &[attribute("from", "The old address."), attribute("to", "The new address.")],
    },
    Keyword {
        kind: "import",
        labels: &[],
        doc: "An existing object taken under management at the next apply.",
        words: &[attribute("to", "The address to record it at."), attribute("id", "The object's id for its provider.")],
    },
    Keyword {
        kind: "check",
        labels: &["NAME"],
        doc: "Assertions checked at every plan, reported as warnings.",
        words: &[block("assert", "A condition and its message.")],
    },
];

/// The nested blocks of the language's own blocks, by name.
pub const NESTED_KEYWORDS: &[(&str, &[Word])] =
    &[("validation", CONDITION_WORDS), ("assert", CONDITION_WORDS), ("lifecycle", LIFECYCLE_WORDS)];

pub fn keyword(kind: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|k| k.kind == kind)
}

pub(crate) fn attribute_names(words: &[Word]) -> Vec<&'static str> {
    words.iter().filter(|w| !w.is_block).map(|w| w.name).collect()
}

pub(crate) fn block_names(words: &[Word]) -> Vec<&'static str> {
    words.iter().filter(|w| w.is_block).map(|w| w.name).collect()
}
