//! Test-only writer for small GGUF images, so structural tests do not depend
//! on the Python fixtures. It writes the layout documented in
//! [`super::format`]; the fixture tests cross-check the reader against files
//! written by gguf-py, which keeps this writer honest.

/// Encoded metadata value (type tag included).
pub(crate) struct EncodedValue(Vec<u8>);

impl EncodedValue {
    pub fn u32(value: u32) -> Self {
        Self(tagged(4, &value.to_le_bytes()))
    }

    pub fn f32(value: f32) -> Self {
        Self(tagged(6, &value.to_le_bytes()))
    }

    pub fn bool(value: bool) -> Self {
        Self(tagged(7, &[u8::from(value)]))
    }

    pub fn string(value: &str) -> Self {
        Self(tagged(8, &string_bytes(value)))
    }

    /// A value of any type from its tag and encoded body.
    pub fn raw(type_id: u32, body: Vec<u8>) -> Self {
        Self(tagged(type_id, &body))
    }

    pub fn string_array(values: &[&str]) -> Self {
        let mut body = 8u32.to_le_bytes().to_vec();
        body.extend_from_slice(&(values.len() as u64).to_le_bytes());
        for value in values {
            body.extend_from_slice(&string_bytes(value));
        }
        Self(tagged(9, &body))
    }
}

fn tagged(type_id: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = type_id.to_le_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

pub(crate) fn string_bytes(value: &str) -> Vec<u8> {
    let mut bytes = (value.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(value.as_bytes());
    bytes
}

struct PlannedTensor {
    name: String,
    dims: Vec<u64>,
    type_id: u32,
    data: Vec<u8>,
}

/// Collects metadata and tensors, then lays them out as a GGUF file.
pub(crate) struct GgufBuilder {
    version: u32,
    alignment: u64,
    metadata: Vec<(String, EncodedValue)>,
    tensors: Vec<PlannedTensor>,
}

impl GgufBuilder {
    pub fn new() -> Self {
        Self { version: 3, alignment: 32, metadata: Vec::new(), tensors: Vec::new() }
    }

    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Sets `general.alignment` and uses it for the layout.
    pub fn alignment(mut self, alignment: u32) -> Self {
        self.alignment = u64::from(alignment);
        self.kv("general.alignment", EncodedValue::u32(alignment))
    }

    pub fn kv(mut self, key: &str, value: EncodedValue) -> Self {
        self.metadata.push((key.to_string(), value));
        self
    }

    pub fn tensor(mut self, name: &str, dims: &[u64], type_id: u32, data: Vec<u8>) -> Self {
        self.tensors.push(PlannedTensor { name: name.to_string(), dims: dims.to_vec(), type_id, data });
        self
    }

    fn pad(bytes: &mut Vec<u8>, alignment: u64) {
        while !(bytes.len() as u64).is_multiple_of(alignment) {
            bytes.push(0);
        }
    }

    /// The file image, plus the absolute offset where tensor data starts.
    pub fn build_with_data_offset(&self) -> (Vec<u8>, usize) {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&self.version.to_le_bytes());
        bytes.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            bytes.extend_from_slice(&string_bytes(key));
            bytes.extend_from_slice(&value.0);
        }
        let mut relative_offset = 0u64;
        for tensor in &self.tensors {
            bytes.extend_from_slice(&string_bytes(&tensor.name));
            bytes.extend_from_slice(&(tensor.dims.len() as u32).to_le_bytes());
            for dim in &tensor.dims {
                bytes.extend_from_slice(&dim.to_le_bytes());
            }
            bytes.extend_from_slice(&tensor.type_id.to_le_bytes());
            bytes.extend_from_slice(&relative_offset.to_le_bytes());
            let len = tensor.data.len() as u64;
            relative_offset += len.div_ceil(self.alignment) * self.alignment;
        }
        Self::pad(&mut bytes, self.alignment);
        let data_offset = bytes.len();
        for tensor in &self.tensors {
            bytes.extend_from_slice(&tensor.data);
            Self::pad(&mut bytes, self.alignment);
        }
        (bytes, data_offset)
    }

    pub fn build(&self) -> Vec<u8> {
        self.build_with_data_offset().0
    }
}

/// A small valid file used by several tests: five metadata entries, an F32
/// vector, an F16 2x2 matrix and a Q8_0 2x32 matrix.
pub(crate) fn small_model() -> GgufBuilder {
    let f32_data: Vec<u8> = [1.0f32, -2.0, 0.5].iter().flat_map(|v| v.to_le_bytes()).collect();
    // f16: 1.0 = 0x3c00, 2.0 = 0x4000, -0.5 = 0xb800, 0.25 = 0x3400
    let f16_data = vec![0x00, 0x3c, 0x00, 0x40, 0x00, 0xb8, 0x00, 0x34];
    let mut q8_data = Vec::new();
    for row in 0..2u8 {
        q8_data.extend_from_slice(&[0x00, 0x38]); // d = 0.5
        q8_data.extend((0..32u8).map(|i| i.wrapping_add(row * 32)));
    }
    GgufBuilder::new()
        .kv("general.architecture", EncodedValue::string("tiny"))
        .kv("tiny.block_count", EncodedValue::u32(2))
        .kv("tiny.eps", EncodedValue::f32(1e-6))
        .kv("tiny.add_bos", EncodedValue::bool(true))
        .kv("tokenizer.ggml.tokens", EncodedValue::string_array(&["<s>", "a", "b"]))
        .tensor("norm.weight", &[3], 0, f32_data)
        .tensor("proj.weight", &[2, 2], 1, f16_data)
        .tensor("embed.weight", &[32, 2], 8, q8_data)
}
