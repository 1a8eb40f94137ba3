//! Writing ONNX graphs: a small node-by-node builder and an external-data weight file.
//!
//! Weights go to one `.onnx.data` file beside the graph and are referenced by offset, so a
//! graph file stays small, several graphs (the full model and its per-block parts) can share
//! one copy of the weights, and ONNX Runtime can memory-map them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::runtime::FloatType;

use super::onnx::tensor_shape_proto::{dimension, Dimension};
use super::onnx::{
    data_type, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, DATA_LOCATION_EXTERNAL,
};

/// The opset our generated graphs use: every op we emit has its current semantics there
/// (ReduceMean/ReduceLogSumExp still take `axes` as an attribute).
pub const OPSET: i64 = 17;

/// Offsets in the weight file are aligned so that memory-mapped tensors are aligned for SIMD loads.
const WEIGHT_ALIGNMENT: u64 = 64;

/// Appends tensors to an external-data file and hands back `TensorProto`s that point at them.
pub struct WeightFile {
    path: PathBuf,
    location: String,
    out: BufWriter<File>,
    offset: u64,
    /// What [`WeightFile::append_weight`] stores matrices in (vectors and tables stay f32).
    matrix_type: FloatType,
}

impl WeightFile {
    /// `location` is the file name recorded in each tensor: relative to the graph's folder.
    pub fn create(dir: &Path, location: &str) -> std::io::Result<Self> {
        let path = dir.join(location);
        let out = BufWriter::with_capacity(1 << 22, File::create(&path)?);
        Ok(WeightFile { path, location: location.to_string(), out, offset: 0, matrix_type: FloatType::F32 })
    }

    /// Stores the matrices later appended with [`WeightFile::append_weight`] in `t`.
    pub fn with_matrix_type(mut self, t: FloatType) -> Self {
        self.matrix_type = t;
        self
    }

    /// The type a model weight of `dims` is stored in: 2-D matrices (embedding, linear layers,
    /// output layer) in the file's matrix type; vectors (norm gains, biases) in f32, where
    /// they cost almost nothing and Gemma's folded `1 + w` gains keep their f32 value.
    pub fn type_of(&self, dims: &[usize]) -> FloatType {
        if dims.len() == 2 {
            self.matrix_type
        } else {
            FloatType::F32
        }
    }

    /// Appends a model weight in [`WeightFile::type_of`] its shape.
    pub fn append_weight(&mut self, name: &str, dims: &[usize], data: &[f32]) -> std::io::Result<TensorProto> {
        let t = self.type_of(dims);
        let mut data = data;
        self.append_typed_with(name, dims, t, |chunk| {
            let (now, rest) = data.split_at(chunk.len());
            chunk.copy_from_slice(now);
            data = rest;
        })
    }

    /// As [`WeightFile::append_f32_with`], for a model weight stored in [`WeightFile::type_of`] its shape.
    pub fn append_weight_with(&mut self, name: &str, dims: &[usize], fill: impl FnMut(&mut [f32])) -> std::io::Result<TensorProto> {
        let t = self.type_of(dims);
        self.append_typed_with(name, dims, t, fill)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append_f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> std::io::Result<TensorProto> {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let pad = (WEIGHT_ALIGNMENT - self.offset % WEIGHT_ALIGNMENT) % WEIGHT_ALIGNMENT;
        self.out.write_all(&vec![0u8; pad as usize])?;
        self.offset += pad;
        let start = self.offset;
        for chunk in data.chunks(1 << 16) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.out.write_all(&bytes)?;
        }
        let length = (data.len() * 4) as u64;
        self.offset += length;
        Ok(external_tensor(name, dims, data_type::FLOAT, &self.location, start, length))
    }

    /// Appends a tensor produced piece by piece: `fill` is handed consecutive chunks of the
    /// tensor (row-major) to write into, so a tensor larger than memory never exists whole.
    pub fn append_f32_with(&mut self, name: &str, dims: &[usize], fill: impl FnMut(&mut [f32])) -> std::io::Result<TensorProto> {
        self.append_typed_with(name, dims, FloatType::F32, fill)
    }

    /// As [`WeightFile::append_f32_with`], storing the values in `t` (rounded to nearest even).
    fn append_typed_with(
        &mut self,
        name: &str,
        dims: &[usize],
        t: FloatType,
        mut fill: impl FnMut(&mut [f32]),
    ) -> std::io::Result<TensorProto> {
        let pad = (WEIGHT_ALIGNMENT - self.offset % WEIGHT_ALIGNMENT) % WEIGHT_ALIGNMENT;
        self.out.write_all(&vec![0u8; pad as usize])?;
        self.offset += pad;
        let start = self.offset;
        let total: usize = dims.iter().product();
        let mut chunk = vec![0f32; total.min(1 << 16)];
        let mut bytes: Vec<u8> = Vec::with_capacity(chunk.len() * 4);
        let mut left = total;
        while left > 0 {
            let n = left.min(chunk.len());
            fill(&mut chunk[..n]);
            bytes.clear();
            t.narrow_into(&chunk[..n], &mut bytes);
            self.out.write_all(&bytes)?;
            left -= n;
        }
        let length = (total * t.bytes()) as u64;
        self.offset += length;
        Ok(external_tensor(name, dims, onnx_type(t), &self.location, start, length))
    }

    pub fn finish(mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }
}

/// The ONNX element type of a weight format.
pub fn onnx_type(t: FloatType) -> i32 {
    match t {
        FloatType::F32 => data_type::FLOAT,
        FloatType::F16 => data_type::FLOAT16,
        FloatType::Bf16 => data_type::BFLOAT16,
    }
}

/// The weight format of an ONNX element type, for the three float types weights come in.
pub fn float_type_of(onnx: i32) -> Option<FloatType> {
    match onnx {
        data_type::FLOAT => Some(FloatType::F32),
        data_type::FLOAT16 => Some(FloatType::F16),
        data_type::BFLOAT16 => Some(FloatType::Bf16),
        _ => None,
    }
}

fn external_tensor(name: &str, dims: &[usize], dt: i32, location: &str, offset: u64, length: u64) -> TensorProto {
    let entry = |k: &str, v: String| StringStringEntryProto::new(k, v);
    TensorProto {
        name: Some(name.into()),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(dt),
        data_location: Some(DATA_LOCATION_EXTERNAL),
        external_data: vec![entry("location", location.into()), entry("offset", offset.to_string()), entry("length", length.to_string())],
        ..Default::default()
    }
}

/// A dimension of a graph input or output: fixed, or named and dynamic.
#[derive(Clone, Copy, Debug)]
pub enum Dim<'a> {
    Fixed(i64),
    Named(&'a str),
}

fn value_info(name: &str, elem_type: i32, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(v) => dimension::Value::DimValue(*v),
                Dim::Named(p) => dimension::Value::DimParam(p.to_string()),
            }),
            denotation: None,
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem_type),
                shape: Some(TensorShapeProto { dim }),
            })),
            denotation: None,
        }),
        ..Default::default()
    }
}

/// Builds one graph node by node. Intermediate names are generated unless the caller names a
/// tensor, which it does for every tensor someone else needs to find (taps, weights, outputs).
#[derive(Default)]
pub struct GraphBuilder {
    graph: GraphProto,
    next_id: usize,
}

impl GraphBuilder {
    pub fn new(name: &str) -> Self {
        GraphBuilder { graph: GraphProto { name: Some(name.into()), ..Default::default() }, next_id: 0 }
    }

    /// Continues an existing graph (an exported model being given extra heads or outputs).
    pub fn wrap(graph: GraphProto) -> Self {
        GraphBuilder { graph, next_id: 0 }
    }

    pub fn into_graph(self) -> GraphProto {
        self.graph
    }

    fn fresh(&mut self, op: &str) -> String {
        self.next_id += 1;
        format!("pp/{}_{}", op.to_ascii_lowercase(), self.next_id)
    }

    /// Adds a node with one generated output and returns that output's name.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(op);
        self.op_named(op, inputs, &out, attrs);
        out
    }

    /// Adds a node whose single output has a chosen name.
    pub fn op_named(&mut self, op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) {
        let name = format!("{}#{}", op, self.graph.node.len());
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: Some(name),
            op_type: Some(op.into()),
            attribute: attrs,
            ..Default::default()
        });
    }

    pub fn initializer(&mut self, tensor: TensorProto) -> String {
        let name = tensor.name().to_string();
        if !self.graph.initializer.iter().any(|t| t.name() == name) {
            self.graph.initializer.push(tensor);
        }
        name
    }

    /// A small constant stored inline in the graph (shapes, axes, scalars).
    pub fn const_i64(&mut self, values: &[i64], dims: &[i64]) -> String {
        let name = self.fresh("const_i64");
        self.graph.initializer.push(TensorProto {
            name: Some(name.clone()),
            dims: dims.to_vec(),
            data_type: Some(data_type::INT64),
            int64_data: values.to_vec(),
            ..Default::default()
        });
        name
    }

    pub fn scalar_i64(&mut self, v: i64) -> String {
        self.const_i64(&[v], &[])
    }

    pub fn vec_i64(&mut self, values: &[i64]) -> String {
        self.const_i64(values, &[values.len() as i64])
    }

    pub fn scalar_f32(&mut self, v: f32) -> String {
        let name = self.fresh("const_f32");
        self.graph.initializer.push(TensorProto {
            name: Some(name.clone()),
            dims: vec![],
            data_type: Some(data_type::FLOAT),
            float_data: vec![v],
            ..Default::default()
        });
        name
    }

    /// A scalar constant of float type `t` (f32 or a 16-bit type, rounded to nearest even).
    pub fn scalar_typed(&mut self, v: f32, t: FloatType) -> String {
        if t == FloatType::F32 {
            return self.scalar_f32(v);
        }
        let name = self.fresh("const_half");
        self.graph.initializer.push(TensorProto {
            name: Some(name.clone()),
            dims: vec![],
            data_type: Some(onnx_type(t)),
            raw_data: Some(t.narrow(&[v])),
            ..Default::default()
        });
        name
    }

    /// Makes the tensor `name` (a graph output) a cast of what the graph computed under that
    /// name: its producer's output and every reader are renamed `<name>.computed`, and a
    /// `Cast` to `elem_type` takes the name. Half-compute graphs use it to keep f32 outputs.
    pub fn cast_output(&mut self, name: &str, elem_type: i32) {
        let computed = format!("{name}.computed");
        for node in &mut self.graph.node {
            for t in node.output.iter_mut().chain(node.input.iter_mut()) {
                if t == name {
                    *t = computed.clone();
                }
            }
        }
        self.op_named("Cast", &[&computed], name, vec![AttributeProto::int("to", i64::from(elem_type))]);
    }

    pub fn input(&mut self, name: &str, elem_type: i32, dims: &[Dim]) {
        self.graph.input.push(value_info(name, elem_type, dims));
    }

    pub fn output(&mut self, name: &str, elem_type: i32, dims: &[Dim]) {
        self.graph.output.push(value_info(name, elem_type, dims));
    }

    pub fn finish(self, producer: &str, metadata: &[(&str, String)]) -> ModelProto {
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
            producer_name: Some(producer.into()),
            producer_version: Some(env!("CARGO_PKG_VERSION").into()),
            graph: Some(self.graph),
            metadata_props: metadata.iter().map(|(k, v)| StringStringEntryProto::new(k, v.clone())).collect(),
            ..Default::default()
        }
    }
}
