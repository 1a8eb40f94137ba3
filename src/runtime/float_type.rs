//! The float formats weights are stored in: f32, or one of the two 16-bit formats that halve
//! a model's bytes on disk and in memory. Compute on the CPU stays f32; a 16-bit weight is
//! widened (exactly: every f16 and bf16 value is an f32 value) where it is loaded.

/// A weight's storage format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FloatType {
    #[default]
    F32,
    F16,
    Bf16,
}

impl FloatType {
    /// The safetensors tag.
    pub fn tag(self) -> &'static str {
        match self {
            FloatType::F32 => "F32",
            FloatType::F16 => "F16",
            FloatType::Bf16 => "BF16",
        }
    }

    /// The name transformers gives it in `config.json` (`torch_dtype` / `dtype`).
    pub fn torch_name(self) -> &'static str {
        match self {
            FloatType::F32 => "float32",
            FloatType::F16 => "float16",
            FloatType::Bf16 => "bfloat16",
        }
    }

    /// The name `--dtype` takes.
    pub fn flag_name(self) -> &'static str {
        match self {
            FloatType::F32 => "f32",
            FloatType::F16 => "f16",
            FloatType::Bf16 => "bf16",
        }
    }

    pub fn bytes(self) -> usize {
        match self {
            FloatType::F32 => 4,
            _ => 2,
        }
    }

    /// Little-endian bytes of this type to f32 (exact: both 16-bit formats widen losslessly).
    pub fn widen(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            FloatType::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            FloatType::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()).collect(),
            FloatType::Bf16 => bytes.chunks_exact(2).map(|b| half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()).collect(),
        }
    }

    /// f32 to little-endian bytes of this type, rounding to nearest even as torch's casts do
    /// (so f16/bf16 values widened by [`FloatType::widen`] come back bit for bit; 0 stays 0).
    pub fn narrow(self, values: &[f32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(values.len() * self.bytes());
        self.narrow_into(values, &mut out);
        out
    }

    /// As [`FloatType::narrow`], appending to `out`.
    pub fn narrow_into(self, values: &[f32], out: &mut Vec<u8>) {
        match self {
            FloatType::F32 => values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
            FloatType::F16 => values.iter().for_each(|v| out.extend_from_slice(&half::f16::from_f32(*v).to_bits().to_le_bytes())),
            FloatType::Bf16 => values.iter().for_each(|v| out.extend_from_slice(&half::bf16::from_f32(*v).to_bits().to_le_bytes())),
        }
    }

    /// `v` rounded to this type and widened back: the value a weight stored in it holds.
    pub fn round(self, v: f32) -> f32 {
        match self {
            FloatType::F32 => v,
            FloatType::F16 => half::f16::from_f32(v).to_f32(),
            FloatType::Bf16 => half::bf16::from_f32(v).to_f32(),
        }
    }
}

impl std::fmt::Display for FloatType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.flag_name())
    }
}

impl std::str::FromStr for FloatType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(FloatType::F32),
            "f16" | "float16" => Ok(FloatType::F16),
            "bf16" | "bfloat16" => Ok(FloatType::Bf16),
            _ => Err(format!("unknown dtype '{s}' (f32, f16 or bf16)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rounding is to nearest even (1 + 2^-11 is halfway between two f16 neighbours and goes
    /// to the even one, 1.0; bf16's step at 1 is 2^-7) and a rounded value round-trips exactly.
    #[test]
    fn rounding_is_nearest_even_and_round_trips() {
        assert_eq!(FloatType::F16.round(1.0 + 2f32.powi(-11)), 1.0);
        assert_eq!(FloatType::F16.round(1.0 + 3.0 * 2f32.powi(-11)), 1.0 + 2.0 * 2f32.powi(-10));
        assert_eq!(FloatType::Bf16.round(1.0 + 2f32.powi(-8)), 1.0);
        assert_eq!(FloatType::Bf16.round(1.0 + 3.0 * 2f32.powi(-8)), 1.0 + 2.0 * 2f32.powi(-7));
        for t in [FloatType::F32, FloatType::F16, FloatType::Bf16] {
            let values = [0.0f32, -0.0, 1.5, -3.25e-3, 65504.0, 0.1];
            let rounded: Vec<f32> = values.iter().map(|&v| t.round(v)).collect();
            assert_eq!(t.widen(&t.narrow(&rounded)), rounded, "{t}");
            assert_eq!(t.narrow(&[0.0]), vec![0u8; t.bytes()], "{t}: a pruned weight stays exactly zero");
        }
    }
}
