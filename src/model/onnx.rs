//! The ONNX protobuf schema: every message and field of `onnx.proto`, generated at build time
//! (`build.rs`) from the proto the pinned `onnx` package ships.
//!
//! Generated rather than declared by hand because prost drops fields it does not know when it
//! re-encodes: a user's exported model, read and written back by `prune --save`, must keep
//! everything its exporter wrote (functions, metadata, sparse initializers, training info).
//! ONNX is proto2, so scalar fields keep their presence (`Option`; the generated getters such as
//! `name()` give the default when absent) and repeated numbers stay unpacked, as ONNX writes them.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

pub use generated::*;

/// `TensorProto.DataType` values this crate reads or writes, as the `i32` the messages hold.
pub mod data_type {
    use super::tensor_proto::DataType;

    pub const FLOAT: i32 = DataType::Float as i32;
    pub const UINT8: i32 = DataType::Uint8 as i32;
    pub const INT8: i32 = DataType::Int8 as i32;
    pub const INT32: i32 = DataType::Int32 as i32;
    pub const INT64: i32 = DataType::Int64 as i32;
    pub const BOOL: i32 = DataType::Bool as i32;
    pub const FLOAT16: i32 = DataType::Float16 as i32;
    pub const DOUBLE: i32 = DataType::Double as i32;
    pub const BFLOAT16: i32 = DataType::Bfloat16 as i32;

    /// Bytes per element, for the types whose weights can be pruned or read back.
    pub fn element_size(dt: i32) -> Option<usize> {
        match dt {
            FLOAT | INT32 => Some(4),
            INT64 | DOUBLE => Some(8),
            FLOAT16 | BFLOAT16 => Some(2),
            UINT8 | INT8 | BOOL => Some(1),
            _ => None,
        }
    }
}

/// `TensorProto.DataLocation::EXTERNAL`.
pub const DATA_LOCATION_EXTERNAL: i32 = tensor_proto::DataLocation::External as i32;

impl TensorProto {
    /// The value of one `external_data` key (`location`, `offset`, `length`).
    pub fn external_entry(&self, key: &str) -> Option<&str> {
        self.external_data.iter().find(|e| e.key() == key).map(|e| e.value())
    }

    pub fn is_external(&self) -> bool {
        self.data_location == Some(DATA_LOCATION_EXTERNAL)
    }

    /// The element count its dims give; `None` when a dim is negative or the product overflows.
    pub fn element_count(&self) -> Option<usize> {
        self.dims.iter().try_fold(1usize, |n, &d| usize::try_from(d).ok().and_then(|d| n.checked_mul(d)))
    }
}

impl StringStringEntryProto {
    pub fn new(key: &str, value: impl Into<String>) -> Self {
        StringStringEntryProto { key: Some(key.into()), value: Some(value.into()) }
    }
}

impl AttributeProto {
    fn typed(name: &str, kind: attribute_proto::AttributeType) -> Self {
        AttributeProto { name: Some(name.into()), r#type: Some(kind as i32), ..Default::default() }
    }
    pub fn int(name: &str, value: i64) -> Self {
        AttributeProto { i: Some(value), ..Self::typed(name, attribute_proto::AttributeType::Int) }
    }
    pub fn float(name: &str, value: f32) -> Self {
        AttributeProto { f: Some(value), ..Self::typed(name, attribute_proto::AttributeType::Float) }
    }
    pub fn ints(name: &str, values: &[i64]) -> Self {
        AttributeProto { ints: values.to_vec(), ..Self::typed(name, attribute_proto::AttributeType::Ints) }
    }
    pub fn string(name: &str, value: &str) -> Self {
        AttributeProto { s: Some(value.as_bytes().to_vec()), ..Self::typed(name, attribute_proto::AttributeType::String) }
    }
    pub fn tensor(name: &str, value: TensorProto) -> Self {
        AttributeProto { t: Some(value), ..Self::typed(name, attribute_proto::AttributeType::Tensor) }
    }
}
