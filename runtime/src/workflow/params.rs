//! `params:`: a step's typed parameters, any YAML map, handed to the guest as canonical JSON
//! in the `HERMETIC_PARAMS` environment variable, where the SDK's `params()` deserializes them.
//!
//! ```yaml
//! steps:
//!   render:
//!     task: template
//!     params: { template: page.html, vars: { title: Home } }
//! ```
//!
//! Being part of the environment, the parameters are part of the step's action key like any
//! other variable. Keys are sorted, so the same map written in another order is the same JSON.

use super::decode::{Decoder, Entry};
use super::node::{Node, Value};

/// The variable that carries a step's parameters.
pub const PARAMS_ENV: &str = "HERMETIC_PARAMS";

/// The `params:` of a step as JSON, or `None` after reporting why it is not a map of
/// JSON-compatible values.
pub(crate) fn decode(d: &mut Decoder<'_>, e: &Entry<'_>) -> Option<serde_json::Value> {
    if !matches!(e.value.value, Value::Map(_)) {
        d.type_error(e, "a map of parameters");
        return None;
    }
    let mut ok = true;
    let json = to_json(d, e.value, &mut ok);
    ok.then_some(json)
}

fn to_json(d: &mut Decoder<'_>, node: &Node, ok: &mut bool) -> serde_json::Value {
    use serde_json::Value as J;
    let mut fail = |d: &mut Decoder<'_>, message: String| {
        let diag = d.error(node.span, message);
        d.report(diag);
        *ok = false;
        J::Null
    };
    match &node.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => {
            if let Ok(n) = i64::try_from(*i) {
                J::from(n)
            } else if let Ok(n) = u64::try_from(*i) {
                J::from(n)
            } else {
                fail(
                    d,
                    format!("the integer `{}` is too large for a parameter", node.raw),
                )
            }
        }
        Value::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => J::Number(n),
            None => fail(
                d,
                format!(
                    "`{}` is not a number JSON can hold (no NaN or infinity)",
                    node.raw
                ),
            ),
        },
        Value::Str(s) => J::String(s.clone()),
        Value::Seq(items) => J::Array(items.iter().map(|n| to_json(d, n, ok)).collect()),
        Value::Map(pairs) => {
            let duplicate = |key: &str| format!("duplicate parameter `{key}`");
            let entries = d.unique_entries(pairs, &duplicate);
            if entries.len() != pairs.len() {
                *ok = false;
            }
            let mut map = serde_json::Map::new();
            for entry in entries {
                map.insert(entry.key.to_string(), to_json(d, entry.value, ok));
            }
            J::Object(map)
        }
    }
}
