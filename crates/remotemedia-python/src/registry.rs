//! Registering Python node types with the core's registry: live instances (from
//! `Pipeline.run`) and importable classes (`"module:Class"` node types, for the CLI).

use std::collections::HashMap;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use remotemedia_core::manifest::{Isolation, Manifest, NodeSpec};
use remotemedia_core::node::{Node, Runtime};
use remotemedia_core::registry::{NodeFactory, NodeInfo, NodeRegistry, ParamIssue};
use serde_json::{Map, Value};

use crate::pynode::PythonNode;

/// The node types of local pipelines: built-in native nodes and `RemotePipelineNode`. Built
/// once (each type's schema is extracted when it is registered).
pub fn base_registry() -> &'static NodeRegistry {
    static REGISTRY: std::sync::OnceLock<NodeRegistry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut r = remotemedia_cli::builtin_registry();
        remotemedia_grpc::remote_node::register(&mut r);
        r
    })
}

/// Registers the operator's allowlisted Python node types (`name -> "module:Class"`) for a
/// server. This is the only place a server imports Python code, and it happens at start-up,
/// from the operator's configuration, never from a manifest.
pub fn register_allowlisted(
    py: Python<'_>,
    allow: &std::collections::BTreeMap<String, String>,
    registry: &mut NodeRegistry,
) -> PyResult<()> {
    for (name, target) in allow {
        let class = import_node_class(py, target).map_err(|e| {
            PyValueError::new_err(format!(
                "python_nodes.{name}: cannot import '{target}': {}",
                e.value(py)
            ))
        })?;
        registry.register(class_factory(name, class));
    }
    Ok(())
}

/// A node type `node_type` whose nodes are made by calling `class`.
fn class_factory(node_type: &str, class: Bound<'_, PyAny>) -> Arc<PythonFactory> {
    Arc::new(PythonFactory {
        info: python_info(node_type, doc_of(&class)),
        source: Source::Class(class.unbind()),
    })
}

fn python_info(node_type: &str, description: String) -> NodeInfo {
    NodeInfo::untyped(node_type, description, Runtime::Host("python"))
}

fn doc_of(obj: &Bound<'_, PyAny>) -> String {
    obj.getattr("__doc__")
        .ok()
        .and_then(|d| d.extract::<String>().ok())
        .map(|d| d.trim().lines().next().unwrap_or_default().to_string())
        .unwrap_or_else(|| "Python node".to_string())
}

/// Where a Python node type's objects come from.
enum Source {
    /// Live objects given by the caller, looked up by node id.
    Instances(HashMap<String, Py<PyAny>>),
    /// An imported class, called with the manifest's params as keywords.
    Class(Py<PyAny>),
}

/// A node type whose nodes are Python objects; their parameters are the object's business.
struct PythonFactory {
    info: NodeInfo,
    source: Source,
}

impl NodeFactory for PythonFactory {
    fn info(&self) -> &NodeInfo {
        &self.info
    }
    fn check(&self, _: &Map<String, Value>) -> Vec<ParamIssue> {
        Vec::new()
    }
    fn create(
        &self,
        node_id: &str,
        params: &Map<String, Value>,
    ) -> Result<Box<dyn Node>, Vec<ParamIssue>> {
        self.node(node_id, self.object(node_id, params)?)
    }

    fn can_isolate(&self) -> bool {
        true
    }

    /// The node in a worker process (`remotemedia.isolation.IsolatedNode`): built there from
    /// its class and params, never in this process. Live objects (a local Pipeline's) come
    /// isolated already.
    fn create_isolated(
        &self,
        node_id: &str,
        params: &Map<String, Value>,
    ) -> Result<Box<dyn Node>, Vec<ParamIssue>> {
        self.node(node_id, self.isolated_object(node_id, params)?)
    }

    /// With `batch`, the object is wrapped in `remotemedia.batching.BatchedNode`, whose
    /// `process` calls are gathered with those of equal nodes into `process_batch` calls.
    fn create_for(&self, spec: &NodeSpec) -> Result<Box<dyn Node>, Vec<ParamIssue>> {
        let obj = if spec.isolation == Some(Isolation::Process) {
            self.isolated_object(&spec.id, &spec.params)?
        } else {
            self.object(&spec.id, &spec.params)?
        };
        let Some(batch) = spec
            .batch
            .filter(|_| matches!(self.source, Source::Class(_)))
        else {
            // Live objects (a local Pipeline's) come batched already.
            return self.node(&spec.id, obj);
        };
        let batched = Python::attach(|py| -> PyResult<Py<PyAny>> {
            let policy = PyDict::new(py);
            policy.set_item("max_size", batch.max_size)?;
            policy.set_item("max_delay_ms", batch.max_delay_ms)?;
            let node = py
                .import("remotemedia.batching")?
                .getattr("BatchedNode")?
                .call1((obj, policy))?;
            node.setattr("node_id", &spec.id)?;
            Ok(node.unbind())
        })
        .map_err(|e| {
            vec![ParamIssue::new(
                "",
                format!("cannot batch {}: {e}", self.info.node_type),
            )]
        })?;
        self.node(&spec.id, batched)
    }
}

impl PythonFactory {
    /// The node's Python object, built in this process (or the caller's live object).
    fn object(
        &self,
        node_id: &str,
        params: &Map<String, Value>,
    ) -> Result<Py<PyAny>, Vec<ParamIssue>> {
        Python::attach(|py| match &self.source {
            Source::Instances(instances) => instances
                .get(node_id)
                .map(|obj| obj.clone_ref(py))
                .ok_or_else(|| {
                    vec![ParamIssue::new(
                        "",
                        format!("no Python object was given for node '{node_id}'"),
                    )]
                }),
            Source::Class(class) => construct(py, class.bind(py), &self.info.node_type, params),
        })
    }

    /// An `IsolatedNode` of the class (the caller's live object for a local Pipeline, which
    /// comes isolated already).
    fn isolated_object(
        &self,
        node_id: &str,
        params: &Map<String, Value>,
    ) -> Result<Py<PyAny>, Vec<ParamIssue>> {
        let Source::Class(class) = &self.source else {
            return self.object(node_id, params);
        };
        Python::attach(|py| -> PyResult<Py<PyAny>> {
            let params = params_dict(py, params)?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("node_class", class.bind(py))?;
            kwargs.set_item("params", params)?;
            let node = py
                .import("remotemedia.isolation")?
                .getattr("IsolatedNode")?
                .call((), Some(&kwargs))?;
            node.setattr("node_id", node_id)?;
            node.setattr("registered_type", &self.info.node_type)?;
            Ok(node.unbind())
        })
        .map_err(|e| {
            vec![ParamIssue::new(
                "",
                format!("cannot isolate {}: {e}", self.info.node_type),
            )]
        })
    }

    fn node(&self, node_id: &str, obj: Py<PyAny>) -> Result<Box<dyn Node>, Vec<ParamIssue>> {
        Ok(Box::new(PythonNode::new(
            obj,
            node_id,
            &self.info.node_type,
        )))
    }
}

/// Manifest params as a Python dict (through `json.loads`, so values are what Python's JSON
/// gives, as for `Pipeline.from_manifest`).
fn params_dict<'py>(py: Python<'py>, params: &Map<String, Value>) -> PyResult<Bound<'py, PyDict>> {
    let text = serde_json::to_string(params).expect("params serialize");
    let loaded = py.import("json")?.call_method1("loads", (text,))?;
    Ok(loaded.cast_into::<PyDict>()?)
}

/// Calls `class` with `params` as keywords, through the one constructor manifests use
/// everywhere (`remotemedia.nodes.base.construct`, which handles `*args` parameters).
fn construct(
    py: Python<'_>,
    class: &Bound<'_, PyAny>,
    node_type: &str,
    params: &Map<String, Value>,
) -> Result<Py<PyAny>, Vec<ParamIssue>> {
    let kwargs = params_dict(py, params).map_err(|e| vec![ParamIssue::new("", e.to_string())])?;
    py.import("remotemedia.nodes.base")
        .and_then(|m| m.getattr("construct"))
        .and_then(|construct| construct.call1((class, kwargs)))
        .map(Bound::unbind)
        .map_err(|e| {
            vec![ParamIssue::new(
                "",
                format!("constructing {node_type} raised {}", e.value(py)),
            )]
        })
}

/// Registers the live Python node objects `{node_id: instance}` under their manifest types.
pub fn register_instances(
    manifest: &Manifest,
    nodes: &Bound<'_, PyDict>,
    registry: &mut NodeRegistry,
) -> PyResult<()> {
    let mut by_type: HashMap<String, (NodeInfo, HashMap<String, Py<PyAny>>)> = HashMap::new();
    for (key, obj) in nodes.iter() {
        let node_id: String = key.extract()?;
        let spec = manifest
            .nodes
            .iter()
            .find(|n| n.id == node_id)
            .ok_or_else(|| PyValueError::new_err(format!("no node '{node_id}' in the manifest")))?;
        let (_, instances) = by_type
            .entry(spec.node_type.clone())
            .or_insert_with(|| (python_info(&spec.node_type, doc_of(&obj)), HashMap::new()));
        instances.insert(node_id, obj.unbind());
    }
    for (_, (info, instances)) in by_type {
        registry.register(Arc::new(PythonFactory {
            info,
            source: Source::Instances(instances),
        }));
    }
    Ok(())
}

/// Imports `"package.module:Class"`.
pub fn import_class<'py>(py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyAny>> {
    let (module, qualname) = path.split_once(':').ok_or_else(|| {
        PyValueError::new_err(format!(
            "'{path}' is not an import path like 'package.module:Class'"
        ))
    })?;
    if module == "__main__" {
        return Err(PyValueError::new_err(format!(
            "cannot load '{path}': classes defined in a script's __main__ cannot be imported \
             from a manifest; move the class into a module"
        )));
    }
    let mut obj = py
        .import(PyString::new(py, module))
        .map_err(|e| {
            if e.is_instance_of::<pyo3::exceptions::PyModuleNotFoundError>(py) {
                pyo3::exceptions::PyModuleNotFoundError::new_err(format!(
                    "{}; Python looks in the current directory and on PYTHONPATH: run from the \
                     folder that holds the module, or add that folder to PYTHONPATH",
                    e.value(py)
                ))
            } else {
                e
            }
        })?
        .into_any();
    for part in qualname.split('.') {
        obj = obj.getattr(part)?;
    }
    Ok(obj)
}

/// Imports `"package.module:Class"` and checks it is a `remotemedia.Node` subclass (so a
/// manifest cannot name an arbitrary callable such as `os:system`).
pub fn import_node_class<'py>(py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyAny>> {
    let class = import_class(py, path)?;
    let node = py.import("remotemedia.nodes.base")?.getattr("Node")?;
    let is_node = class.is_instance_of::<pyo3::types::PyType>()
        && class
            .cast::<pyo3::types::PyType>()
            .map(|c| c.is_subclass(&node).unwrap_or(false))
            .unwrap_or(false);
    if !is_node {
        return Err(PyValueError::new_err(format!(
            "'{path}' is not a remotemedia.Node subclass"
        )));
    }
    Ok(class)
}

/// Registers every `"module:Class"` node type of `manifest` that is not registered yet
/// (importing the modules). Only for manifests the user runs locally: the server never does this.
pub fn register_importable(
    py: Python<'_>,
    manifest: &Manifest,
    registry: &mut NodeRegistry,
) -> PyResult<()> {
    for spec in &manifest.nodes {
        let t = spec.node_type.as_str();
        if registry.contains(t) || !t.contains(':') {
            continue;
        }
        let class = import_node_class(py, t).map_err(|e| {
            PyValueError::new_err(format!(
                "node '{}': cannot import node type '{t}': {}",
                spec.id,
                e.value(py)
            ))
        })?;
        registry.register(class_factory(t, class));
    }
    Ok(())
}
