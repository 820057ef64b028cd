//! Typed parameters: a step's `params:` map, deserialized with serde.
//!
//! hermetic hands the map to the task as canonical JSON in the `HERMETIC_PARAMS` environment
//! variable (part of the step's action key, like all of its environment). Under plain
//! `wasmtime run`, pass it yourself: `wasmtime run --env HERMETIC_PARAMS='{"n":3}' task.wasm`.

use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// The environment variable that carries the parameters.
pub const PARAMS_ENV: &str = "HERMETIC_PARAMS";

/// The step's parameters as a `T`. A step without `params:` has the empty map `{}`, so a `T`
/// whose fields all have defaults needs none.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Params {
///     #[serde(default)]
///     title: String,
/// }
/// let params: Params = hermetic_sdk::params()?;
/// # Ok::<(), hermetic_sdk::Error>(())
/// ```
pub fn params<T: DeserializeOwned>() -> Result<T> {
    match std::env::var(PARAMS_ENV) {
        Ok(json) => params_from(&json),
        Err(std::env::VarError::NotPresent) => params_from("{}"),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Error::msg(format!("{PARAMS_ENV} is not valid UTF-8")))
        }
    }
}

/// Parses `json` as the parameters `T`; what [`params`] does with the environment variable.
///
/// ```
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct Params { level: u8 }
/// assert_eq!(hermetic_sdk::params_from::<Params>(r#"{"level": 3}"#)?, Params { level: 3 });
/// let err = hermetic_sdk::params_from::<Params>(r#"{"level": "high"}"#).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid params: invalid type: string \"high\", expected u8 at line 1 column 16"
/// );
/// # Ok::<(), hermetic_sdk::Error>(())
/// ```
pub fn params_from<T: DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| Error::msg(format!("invalid params: {e}")))
}

/// Runs a task configured only by its `params:`: refuses arguments (saying
/// ``<task> takes no arguments (got …); configure it with `params:` ``), deserializes the
/// parameters as a `P`, and passes them to `body`; errors end the task as [`crate::main`]
/// does.
///
/// ```no_run
/// #[derive(serde::Deserialize)]
/// struct Params { output: String }
///
/// // inside the task's `fn main()`:
/// hermetic_sdk::main_with_params("greet", |params: Params| {
///     hermetic_sdk::write_output(&params.output, "hello\n")
/// });
/// ```
pub fn main_with_params<P, F>(task: &str, body: F)
where
    P: DeserializeOwned,
    F: FnOnce(P) -> Result<()>,
{
    crate::main(|args| {
        if !args.is_empty() {
            return Err(Error::msg(format!(
                "{task} takes no arguments (got {}); configure it with `params:`",
                args.join(" ")
            )));
        }
        body(params()?)
    });
}
