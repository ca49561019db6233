//! The function types of the plugin ABI, checked on load: an export of the right name whose type
//! differs from the WIT is an ABI mismatch naming the function, with the expected and the found
//! signature (in WIT syntax), before anything is instantiated.

use wasmtime::Engine;
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, Type};

use crate::PluginError;
use crate::engine::{EMBEDDER_EXPORT, POLICY_EXPORT, PluginKind};

/// `failure-kind` of `wit/plugin.wit`, as [`render`] writes it.
const FAILURE_KIND: &str = "enum { dimension-mismatch, non-finite, zero-vector, \
not-positive-definite, empty, unknown-arm, out-of-range, invalid-parameter, truncated, corrupt, \
version-mismatch, checksum-mismatch, wrong-format, other }";
/// `arm-score`.
const ARM_SCORE: &str = "record { estimate: f32, width: f32, score: f32 }";

/// The named types of the WIT, structurally (as [`render`] writes them) → their names; the
/// outer ones first, so `failure` is replaced before the `failure-kind` inside it.
fn names() -> [(String, &'static str); 4] {
    [
        (
            format!("record {{ kind: {FAILURE_KIND}, message: string }}"),
            "failure",
        ),
        (
            format!("record {{ arm: u32, scores: list<{ARM_SCORE}> }}"),
            "selection",
        ),
        (FAILURE_KIND.to_owned(), "failure-kind"),
        (ARM_SCORE.to_owned(), "arm-score"),
    ]
}

/// The functions of each interface and their WIT signatures, in the names [`render`] uses.
const EMBEDDER: &[(&str, &str)] = &[
    (
        "[static]model.create",
        "func(config: string) -> result<own<model>, failure>",
    ),
    ("[method]model.id", "func(self: borrow<model>) -> string"),
    ("[method]model.dim", "func(self: borrow<model>) -> u32"),
    (
        "[method]model.embed",
        "func(self: borrow<model>, text: string) -> result<list<f32>, failure>",
    ),
];

const POLICY: &[(&str, &str)] = &[
    (
        "[static]router.create",
        "func(config: string) -> result<own<router>, failure>",
    ),
    ("[method]router.dim", "func(self: borrow<router>) -> u32"),
    (
        "[method]router.arm-count",
        "func(self: borrow<router>) -> u32",
    ),
    (
        "[method]router.select",
        "func(self: borrow<router>, context: list<f32>, costs: list<f32>, seed: u64) -> \
         result<selection, failure>",
    ),
    (
        "[method]router.observe",
        "func(self: borrow<router>, arm: u32, context: list<f32>, reward: f32) -> \
         result<_, failure>",
    ),
    (
        "[method]router.snapshot",
        "func(self: borrow<router>) -> result<list<u8>, failure>",
    ),
    (
        "[method]router.restore",
        "func(self: borrow<router>, bytes: list<u8>) -> result<_, failure>",
    ),
];

/// Checks every function of the world's interface against the WIT.
///
/// # Errors
/// [`PluginError::Abi`] naming the first function that is missing or has another type, with
/// the expected and the found signature.
pub(crate) fn check(
    engine: &Engine,
    component: &Component,
    kind: PluginKind,
    what: &str,
) -> Result<(), PluginError> {
    let (interface, functions) = match kind {
        PluginKind::Embedder => (EMBEDDER_EXPORT, EMBEDDER),
        PluginKind::Policy => (POLICY_EXPORT, POLICY),
    };
    let ty = component.component_type();
    let Some(export) = ty.get_export(engine, interface) else {
        return Err(PluginError::Abi(format!("{what}: no export `{interface}`")));
    };
    let ComponentItem::ComponentInstance(instance) = export.ty else {
        return Err(PluginError::Abi(format!(
            "{what}: `{interface}` is exported, but not as an interface instance"
        )));
    };
    let names = names();
    for (name, expected) in functions {
        let found = match instance.get_export(engine, name).map(|e| e.ty) {
            Some(ComponentItem::ComponentFunc(f)) => f,
            Some(other) => {
                return Err(PluginError::Abi(format!(
                    "{what}: `{name}` of `{interface}` is {}, not a function (expected \
                     `{expected}`)",
                    item_kind(&other)
                )));
            }
            None => {
                return Err(PluginError::Abi(format!(
                    "{what}: `{interface}` has no function `{name}` (expected `{expected}`); \
                     rebuild it against this version of pilot-plugin-sdk"
                )));
            }
        };
        let found = signature(&found, name, &names);
        if found != *expected {
            return Err(PluginError::Abi(format!(
                "{what}: `{name}` of `{interface}` has the wrong type: expected `{expected}`, \
                 found `{found}`; rebuild it against this version of pilot-plugin-sdk"
            )));
        }
    }
    Ok(())
}

fn item_kind(item: &ComponentItem) -> &'static str {
    match item {
        ComponentItem::ComponentFunc(_) => "a function",
        ComponentItem::CoreFunc(_) => "a core function",
        ComponentItem::Module(_) => "a core module",
        ComponentItem::Component(_) => "a component",
        ComponentItem::ComponentInstance(_) => "an instance",
        ComponentItem::Type(_) => "a type",
        ComponentItem::Resource(_) => "a resource",
    }
}

/// `func(a: T, …) -> R` for `f`, exported as `name` (whose resource, `model` in
/// `[method]model.dim`, names its handles), with the WIT's named types by name.
fn signature(f: &ComponentFunc, name: &str, names: &[(String, &'static str)]) -> String {
    let resource = name
        .split_once(']')
        .map_or(name, |(_, rest)| rest)
        .split('.')
        .next()
        .unwrap_or("resource");
    let params: Vec<String> = f
        .params()
        .map(|(p, t)| format!("{p}: {}", render(&t, resource)))
        .collect();
    let results: Vec<String> = f.results().map(|t| render(&t, resource)).collect();
    let mut s = format!("func({})", params.join(", "));
    match results.len() {
        0 => {}
        1 => s.push_str(&format!(" -> {}", results[0])),
        _ => s.push_str(&format!(" -> ({})", results.join(", "))),
    }
    for (structure, short) in names {
        s = s.replace(structure.as_str(), short);
    }
    s
}

/// A type in WIT syntax, records, enums and variants spelled out.
fn render(t: &Type, resource: &str) -> String {
    let r = |t: &Type| render(t, resource);
    match t {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", r(&l.ty())),
        Type::FixedLengthList(l) => format!("list<{}, {}>", r(&l.ty()), l.len()),
        Type::Map(m) => format!("map<{}, {}>", r(&m.key()), r(&m.value())),
        Type::Record(rec) => {
            let fields: Vec<String> = rec
                .fields()
                .map(|f| format!("{}: {}", f.name, r(&f.ty)))
                .collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Type::Tuple(tu) => {
            let types: Vec<String> = tu.types().map(|t| r(&t)).collect();
            format!("tuple<{}>", types.join(", "))
        }
        Type::Variant(v) => {
            let cases: Vec<String> = v
                .cases()
                .map(|c| match &c.ty {
                    Some(t) => format!("{}({})", c.name, r(t)),
                    None => c.name.to_owned(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", r(&o.ty())),
        Type::Result(res) => match (res.ok(), res.err()) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{}>", r(&ok)),
            (ok, Some(err)) => format!(
                "result<{}, {}>",
                ok.map_or_else(|| "_".to_owned(), |t| r(&t)),
                r(&err)
            ),
        },
        Type::Own(_) => format!("own<{resource}>"),
        Type::Borrow(_) => format!("borrow<{resource}>"),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
    }
}
