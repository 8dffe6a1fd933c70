//! Node types: what exists, what parameters each takes, and how to build one.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::manifest::parse::typed;
pub use crate::manifest::ParamIssue;
use crate::manifest::{Isolation, NodeCatalog, NodeSpec};
use crate::node::{Node, Runtime};

/// One parameter of a node type, as shown by `remotemedia nodes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamInfo {
    /// Name as written in `params`.
    pub name: String,
    /// JSON type: "integer", "number", "string", ...
    pub kind: String,
    /// Whether the manifest must give it.
    pub required: bool,
    /// Value used when omitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Allowed values, for enumerations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// Inclusive lower bound, for numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// Inclusive upper bound, for numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// Unit of a number ("Hz", "ms", "dBFS"), from the schema's `x-unit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// What it does.
    pub description: String,
}

/// Everything known about a node type.
#[derive(Debug, Clone, Serialize)]
pub struct NodeInfo {
    /// The name used as `node_type`.
    pub node_type: String,
    /// One-paragraph description.
    pub description: String,
    /// Where it runs.
    pub runtime: Runtime,
    /// Its parameters.
    pub params: Vec<ParamInfo>,
    /// JSON Schema of its `params` object.
    pub params_schema: Value,
    /// What it emits (for typed bindings and the docs).
    pub outputs: Outputs,
    /// A command that runs it, when the one-line form (`remotemedia run "Node p=v"`) cannot
    /// (a node with several inputs); `remotemedia nodes NAME` prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
}

impl NodeInfo {
    /// A node type whose parameters are not described (any `params` object; a host-language
    /// node, say) and whose output may be anything.
    pub fn untyped(node_type: &str, description: String, runtime: Runtime) -> Self {
        Self {
            node_type: node_type.to_string(),
            description,
            runtime,
            params: Vec::new(),
            params_schema: serde_json::json!({"type": "object"}),
            outputs: Outputs::One(Output::Any),
            example: None,
        }
    }
}

/// A kind of value a node emits, named by the data it carries (bindings map each to a type:
/// Python's `Audio`, `list[Segment]`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// Audio ([`Data::Audio`](crate::data::Data::Audio)).
    Audio,
    /// Whatever came in (a pass-through).
    Input,
    /// Speech segments ([`Data::Segments`](crate::data::Data::Segments)).
    Segments,
    /// speech_start / speech_end events as JSON objects.
    Events,
    /// Per-frame speech probabilities as JSON objects `{start_ms, end_ms, probability}`.
    Frames,
    /// Anything (a host-language node, say).
    Any,
}

/// What a node type emits: one kind, or one chosen by a string parameter (`emit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outputs {
    /// Always this kind.
    One(Output),
    /// The kind named by the value of `param` (whose default is listed first).
    ByParam {
        /// The parameter that chooses (e.g. `emit`).
        param: &'static str,
        /// Each value of the parameter and what it makes the node emit.
        values: &'static [(&'static str, Output)],
    },
}

/// A node type defined in one place: its name, description, typed parameters (whose schema
/// carries defaults, ranges, units and enums), what it emits, and its constructor. The
/// registry takes the type ([`NodeRegistry::register_type`]); the manifest schema, the CLI's
/// listing, the Python classes and the node docs are all derived from it.
pub trait NodeDef: Node + Sized + 'static {
    /// The manifest's `node_type`.
    const NAME: &'static str;
    /// What the node does: a first sentence that stands alone, then details.
    const DESCRIPTION: &'static str;
    /// What the node emits.
    const OUTPUTS: Outputs = Outputs::One(Output::Audio);
    /// A command that runs it, for node types the one-line form cannot run (several inputs).
    const EXAMPLE: Option<&'static str> = None;
    /// Its parameters.
    type Params: NodeParams;
    /// Builds a node from checked parameters.
    fn build(params: Self::Params) -> Self;
}

/// Builds nodes of one type.
pub trait NodeFactory: Send + Sync {
    /// Name, description and parameters.
    fn info(&self) -> &NodeInfo;
    /// Checks parameters without building a node.
    fn check(&self, params: &Map<String, Value>) -> Vec<ParamIssue>;
    /// Builds a node (parameters are checked first).
    fn create(
        &self,
        node_id: &str,
        params: &Map<String, Value>,
    ) -> Result<Box<dyn Node>, Vec<ParamIssue>>;
    /// Builds node `spec` with its hosting settings (`isolation`, `batch`). The default runs
    /// [`create_isolated`](Self::create_isolated) for `"isolation": "process"` and
    /// [`create`](Self::create) otherwise (validation refuses `batch` for types that cannot
    /// batch).
    fn create_for(&self, spec: &NodeSpec) -> Result<Box<dyn Node>, Vec<ParamIssue>> {
        if spec.isolation == Some(Isolation::Process) {
            self.create_isolated(&spec.id, &spec.params)
        } else {
            self.create(&spec.id, &spec.params)
        }
    }
    /// Whether [`create_isolated`](Self::create_isolated) can run this type in a worker
    /// process (a manifest's `"isolation": "process"`). Native nodes cannot (and need not).
    fn can_isolate(&self) -> bool {
        false
    }
    /// Builds a node that runs in a worker process of its own.
    fn create_isolated(
        &self,
        node_id: &str,
        params: &Map<String, Value>,
    ) -> Result<Box<dyn Node>, Vec<ParamIssue>> {
        let _ = (node_id, params);
        Err(vec![ParamIssue::new(
            "",
            "this node type cannot run in a worker process",
        )])
    }
}

/// Typed parameters of a native node: parsed with serde (unknown fields rejected), described by
/// schemars. Numeric ranges come from the schema (`#[schemars(range(...))]`) and are checked
/// generically, for every entry point; [`check`](NodeParams::check) is only for rules that
/// span several fields.
pub trait NodeParams: DeserializeOwned + Serialize + JsonSchema + Send + Sync + 'static {
    /// Consistency checks across fields (ranges of single fields belong in the schema).
    fn check(&self) -> Vec<ParamIssue> {
        Vec::new()
    }
}

type BuildFn<P> = dyn Fn(&str, P) -> Box<dyn Node> + Send + Sync;

/// A [`NodeFactory`] for native nodes with typed parameters.
pub struct TypedFactory<P: NodeParams> {
    info: NodeInfo,
    build: Box<BuildFn<P>>,
    _params: PhantomData<fn() -> P>,
}

impl<P: NodeParams> TypedFactory<P> {
    /// A factory for `node_type` that builds nodes with `build(node_id, params)`.
    pub fn new(
        node_type: &str,
        description: &str,
        build: impl Fn(&str, P) -> Box<dyn Node> + Send + Sync + 'static,
    ) -> Self {
        Self::with_outputs(node_type, description, Outputs::One(Output::Any), build)
    }

    /// [`TypedFactory::new`] for a node type that says what it emits.
    pub fn with_outputs(
        node_type: &str,
        description: &str,
        outputs: Outputs,
        build: impl Fn(&str, P) -> Box<dyn Node> + Send + Sync + 'static,
    ) -> Self {
        let schema = serde_json::to_value(schemars::schema_for!(P)).expect("schema serializes");
        Self {
            info: NodeInfo {
                node_type: node_type.to_string(),
                description: description.to_string(),
                runtime: Runtime::Rust,
                params: params_from_schema(&schema),
                params_schema: schema,
                outputs,
                example: None,
            },
            build: Box::new(build),
            _params: PhantomData,
        }
    }

    fn parse(&self, params: &Map<String, Value>) -> Result<P, Vec<ParamIssue>> {
        let parsed = typed::<P>(Value::Object(params.clone())).map_err(|(path, message)| {
            let message = friendlier(&message, &path, &self.info);
            vec![ParamIssue::new(path, message)]
        })?;
        let mut issues = range_issues(&self.info, params);
        // One message per field: the schema's range check speaks first.
        for i in parsed.check() {
            if !issues.iter().any(|r| r.field == i.field) {
                issues.push(i);
            }
        }
        if issues.is_empty() {
            Ok(parsed)
        } else {
            Err(issues)
        }
    }
}

impl<P: NodeParams> NodeFactory for TypedFactory<P> {
    fn info(&self) -> &NodeInfo {
        &self.info
    }

    fn check(&self, params: &Map<String, Value>) -> Vec<ParamIssue> {
        self.parse(params).err().unwrap_or_default()
    }

    fn create(
        &self,
        node_id: &str,
        params: &Map<String, Value>,
    ) -> Result<Box<dyn Node>, Vec<ParamIssue>> {
        let parsed = self.parse(params)?;
        Ok((self.build)(node_id, parsed))
    }
}

/// Checks every numeric parameter given against the range its schema declares: the one
/// source of parameter ranges for Rust, Python constructors, the CLI and the server.
fn range_issues(info: &NodeInfo, params: &Map<String, Value>) -> Vec<ParamIssue> {
    let mut issues = Vec::new();
    for p in &info.params {
        let Some(v) = params.get(&p.name).and_then(Value::as_f64) else {
            continue;
        };
        let below = p.minimum.is_some_and(|lo| v < lo);
        let above = p.maximum.is_some_and(|hi| v > hi);
        if below || above {
            issues.push(ParamIssue::new(
                &p.name,
                format!(
                    "{} is out of range; expected {}",
                    params[&p.name],
                    valid_values(p)
                ),
            ));
        }
    }
    issues
}

/// Rewrites serde's messages in the manifest's terms: a parameter's valid range instead of a
/// Rust type name ("expected u32"), and no "there are no fields" for parameterless nodes.
fn friendlier(message: &str, field: &str, info: &NodeInfo) -> String {
    if message.starts_with("unknown field") && info.params.is_empty() {
        let name = message.split(',').next().unwrap_or(message);
        return format!("{name}; {} takes no parameters", info.node_type);
    }
    let Some(param) = info.params.iter().find(|p| p.name == field) else {
        return message.replace("expected a map", "expected an object");
    };
    if message == "missing (required)" {
        return format!("missing (required); expected {}", valid_values(param));
    }
    let Some((got, _)) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.split_once(", expected "))
    else {
        return message.to_string();
    };
    format!("got {got}; expected {}", valid_values(param))
}

/// What a parameter accepts, in words: "an integer in 8000..=384000", "one of fast, high".
fn valid_values(param: &ParamInfo) -> String {
    let kind = match param.kind.as_str() {
        "integer" => "an integer",
        "number" => "a number",
        "string" if !param.choices.is_empty() => "one of",
        "string" => "a string",
        "boolean" => "true or false",
        other => other,
    };
    if !param.choices.is_empty() {
        return format!("{kind} {}", param.choices.join(", "));
    }
    let unit = param
        .unit
        .as_deref()
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    match (param.minimum, param.maximum) {
        (Some(lo), Some(hi)) => format!("{kind} in {lo}..={hi}{unit}"),
        (Some(lo), None) => format!("{kind} >= {lo}{unit}"),
        _ => kind.to_string(),
    }
}

/// Derives the parameter list from a schemars schema (one source of truth: the Rust struct).
fn params_from_schema(schema: &Value) -> Vec<ParamInfo> {
    let defs = schema.get("$defs");
    let resolve = |v: &Value| -> Value {
        if let Some(r) = v.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or_default();
            let mut target = defs
                .and_then(|d| d.get(name))
                .cloned()
                .unwrap_or(Value::Null);
            // Keep the referring schema's own keys (default, description) over the target's.
            if let (Value::Object(t), Value::Object(src)) = (&mut target, v) {
                for (k, val) in src {
                    if k != "$ref" {
                        t.insert(k.clone(), val.clone());
                    }
                }
            }
            target
        } else {
            v.clone()
        }
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(Value::Object(props)) = schema.get("properties") else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, raw)| {
            let p = resolve(raw);
            let mut choices: Vec<String> = p
                .get("enum")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(one_of) = p.get("oneOf").and_then(Value::as_array) {
                for alt in one_of {
                    if let Some(c) = alt.get("const").and_then(Value::as_str) {
                        choices.push(c.to_string());
                    }
                    if let Some(e) = alt.get("enum").and_then(Value::as_array) {
                        choices.extend(e.iter().filter_map(Value::as_str).map(String::from));
                    }
                }
            }
            let kind = match p.get("type") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|t| *t != "null")
                    .collect::<Vec<_>>()
                    .join("|"),
                _ if !choices.is_empty() => "string".to_string(),
                _ => "any".to_string(),
            };
            ParamInfo {
                name: name.clone(),
                kind,
                required: required.contains(&name.as_str()),
                default: p.get("default").cloned(),
                choices,
                minimum: p.get("minimum").and_then(Value::as_f64),
                maximum: p.get("maximum").and_then(Value::as_f64),
                unit: p.get("x-unit").and_then(Value::as_str).map(String::from),
                description: p
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            }
        })
        .collect()
}

/// The node types a pipeline may use.
#[derive(Clone, Default)]
pub struct NodeRegistry {
    factories: BTreeMap<String, Arc<dyn NodeFactory>>,
}

impl NodeRegistry {
    /// An empty registry.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the node type `T`, defined by its [`NodeDef`].
    pub fn register_type<T: NodeDef>(&mut self) {
        let mut factory =
            TypedFactory::<T::Params>::with_outputs(T::NAME, T::DESCRIPTION, T::OUTPUTS, |_, p| {
                Box::new(T::build(p))
            });
        factory.info.example = T::EXAMPLE.map(str::to_string);
        self.register(Arc::new(factory));
    }

    /// Adds (or replaces) a node type.
    pub fn register(&mut self, factory: Arc<dyn NodeFactory>) {
        self.factories
            .insert(factory.info().node_type.clone(), factory);
    }

    /// Looks up a node type.
    pub fn get(&self, node_type: &str) -> Option<&Arc<dyn NodeFactory>> {
        self.factories.get(node_type)
    }

    /// Whether `node_type` is registered.
    pub fn contains(&self, node_type: &str) -> bool {
        self.factories.contains_key(node_type)
    }

    /// Registered type names, sorted.
    pub fn node_types(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    /// Info for every registered type, sorted by name.
    pub fn infos(&self) -> impl Iterator<Item = &NodeInfo> {
        self.factories.values().map(|f| f.info())
    }

    /// The closest registered name to `name`, for "did you mean" hints.
    pub fn suggest(&self, name: &str) -> Option<&str> {
        crate::text::closest(name, self.node_types())
    }
}

/// Registers the fault-injection node types (`TestFlakyNode`, `TestPanicNode`, ...) when this
/// build has the `test-nodes` feature (test builds only); returns whether it did. A release
/// build has no such nodes, whatever its environment says.
pub fn register_test_nodes(registry: &mut NodeRegistry) -> bool {
    #[cfg(feature = "test-nodes")]
    {
        crate::testing::register(registry);
        true
    }
    #[cfg(not(feature = "test-nodes"))]
    {
        let _ = registry;
        false
    }
}

/// The manifest checks see node types through this trait, so `manifest` never depends on the
/// registry (dependencies run manifest -> graph -> registry -> nodes -> executor).
impl NodeCatalog for NodeRegistry {
    fn check_params(
        &self,
        node_type: &str,
        params: &Map<String, Value>,
    ) -> Option<Vec<ParamIssue>> {
        self.get(node_type).map(|f| f.check(params))
    }

    fn suggest(&self, node_type: &str) -> Option<&str> {
        NodeRegistry::suggest(self, node_type)
    }

    fn node_types(&self) -> Vec<&str> {
        NodeRegistry::node_types(self).collect()
    }

    fn can_isolate(&self, node_type: &str) -> bool {
        self.get(node_type).is_some_and(|f| f.can_isolate())
    }
}
