//! The one error type of the pruning module.
//!
//! Every message names the offending thing (layer, file, value) and ends with what the caller
//! can do about it, because these errors surface in a command-line benchmark whose user did not
//! write the code that failed.

use std::path::PathBuf;

/// Everything that can go wrong while configuring, computing, storing or loading a pruning result.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// A sparsity outside `[0, 1)` (or NaN) was requested.
    #[error(
        "sparsity {value} is not in [0, 1); pass the fraction of weights to remove, e.g. 0.5 \
         (1.0 would remove every weight and is not allowed)"
    )]
    InvalidSparsity {
        /// The rejected value.
        value: f64,
    },

    /// Unstructured pruning was requested without saying how much.
    #[error("unstructured pruning needs a sparsity; pass the fraction of weights to remove, e.g. 0.5")]
    MissingSparsity,

    /// A method name that is not known.
    #[error("unknown pruning method '{text}'; use one of magnitude, magnitude-row, wanda, sparsegpt, snip, grasp")]
    UnknownMethod {
        /// The text given.
        text: String,
    },

    /// A pattern string could not be parsed or describes an impossible N:M pattern.
    #[error(
        "pruning pattern '{text}' is invalid: {reason}; write 'unstructured' or 'N:M' with \
         0 <= N < M (N of every M consecutive inputs are pruned), e.g. '2:4'"
    )]
    InvalidPattern {
        /// The text that was parsed, or a rendering of the numbers given.
        text: String,
        /// Why it was rejected.
        reason: String,
    },

    /// An N:M pattern was combined with a sparsity other than N/M.
    #[error(
        "pattern {n}:{m} fixes the sparsity at {n}/{m} = {implied}, but sparsity {requested} was \
         requested; drop the sparsity setting or set it to {implied}"
    )]
    SparsityConflictsWithPattern {
        /// Pruned inputs per group.
        n: usize,
        /// Group width.
        m: usize,
        /// n / m.
        implied: f64,
        /// What the caller asked for.
        requested: f64,
    },

    /// The dampening fraction for SparseGPT is negative or not finite.
    #[error(
        "SparseGPT dampening {value} is invalid; use a finite fraction >= 0 of the mean Hessian \
         diagonal (0.01 is the usual default)"
    )]
    InvalidDampening {
        /// The rejected value.
        value: f64,
    },

    /// The SparseGPT block size is zero or does not hold whole N:M groups.
    #[error(
        "SparseGPT block size {block_size} is invalid for group width {m}: {reason}; use a \
         positive multiple of {m} such as 128"
    )]
    InvalidBlockSize {
        /// The rejected block size.
        block_size: usize,
        /// The N:M group width it must hold (1 for unstructured).
        m: usize,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// Weight data length does not match the declared shape.
    #[error(
        "weight of layer '{layer}' has {len} values but its shape {out_features} x {in_features} \
         needs {expected}; pass the row-major [out][in] data of exactly that layer"
    )]
    WeightShape {
        /// Layer name.
        layer: String,
        /// Declared output features (rows).
        out_features: usize,
        /// Declared input features (columns).
        in_features: usize,
        /// out_features * in_features (saturating).
        expected: usize,
        /// Actual data length.
        len: usize,
    },

    /// A weight is NaN or infinite.
    #[error(
        "weight of layer '{layer}' at row {row}, column {col} is {value}; the model file is \
         damaged or was converted with an overflowing dtype, re-export it"
    )]
    NonFiniteWeight {
        /// Layer name.
        layer: String,
        /// Output row.
        row: usize,
        /// Input column.
        col: usize,
        /// The value found.
        value: f32,
    },

    /// The input width is not a multiple of the N:M group width.
    #[error(
        "layer '{layer}' has {in_features} inputs, not a multiple of the group width {m} of \
         pattern {n}:{m}; exclude this layer from N:M pruning or use an unstructured pattern"
    )]
    InputsNotMultipleOfGroup {
        /// Layer name.
        layer: String,
        /// Number of input features.
        in_features: usize,
        /// Pruned per group.
        n: usize,
        /// Group width.
        m: usize,
    },

    /// The method needs calibration statistics but none were given.
    #[error(
        "method {method} needs calibration statistics for layer '{layer}' but none were given; \
         run the calibration pass for this layer first"
    )]
    MissingStatistics {
        /// Layer name.
        layer: String,
        /// Method name.
        method: &'static str,
    },

    /// A gradient saliency (SNIP, GraSP) does not fit its layer.
    #[error("the {what} of layer {layer} does not fit it: {reason}; the gradient pass failed or was given another model's layers")]
    BadSaliency {
        /// Layer name.
        layer: String,
        /// "gradient", "Hessian-gradient product" or "scores".
        what: &'static str,
        /// What was wrong.
        reason: String,
    },

    /// A saliency scope name that is not known.
    #[error("unknown saliency scope '{text}'; use layer (each matrix to the target) or global (one ranking over all layers)")]
    UnknownScope {
        /// The text given.
        text: String,
    },

    /// SparseGPT was given statistics gathered without the Gram matrix.
    #[error(
        "SparseGPT needs the Gram matrix X^T X of layer '{layer}' but its statistics were \
         collected without it; create the statistics with the Gram matrix enabled"
    )]
    MissingGram {
        /// Layer name.
        layer: String,
    },

    /// The statistics are for an input of another width.
    #[error(
        "statistics '{statistics}' have width {found} but layer '{layer}' has {expected} inputs; \
         pair each layer with the statistics of its own input"
    )]
    StatisticsWidth {
        /// Layer name.
        layer: String,
        /// Label of the statistics.
        statistics: String,
        /// The layer's in_features.
        expected: usize,
        /// The statistics' width.
        found: usize,
    },

    /// Statistics contain no tokens.
    #[error(
        "statistics '{statistics}' for layer '{layer}' contain no calibration tokens; run the \
         calibration pass (with at least one token) before pruning"
    )]
    NoCalibrationTokens {
        /// Layer name.
        layer: String,
        /// Label of the statistics.
        statistics: String,
    },

    /// The dampened Hessian is not positive definite, even after growing the dampening.
    #[error(
        "the dampened Hessian of layer '{layer}' is not positive definite: Cholesky failed at \
         pivot {pivot} with every dampening from {percdamp} to {last_percdamp} ({attempts} tries, \
         each 10x the last). The layer has {inputs} inputs and calibration gave {tokens} tokens: \
         calibrate on more tokens (more samples, or longer windows; at least as many tokens as \
         inputs), or raise --percdamp; check the calibration text for non-finite activations"
    )]
    NotPositiveDefinite {
        /// Layer name.
        layer: String,
        /// Dampening fraction configured.
        percdamp: f64,
        /// The largest dampening fraction tried.
        last_percdamp: f64,
        /// Factorisations tried.
        attempts: u32,
        /// Index where the last factorisation broke down.
        pivot: usize,
        /// The layer's input width.
        inputs: usize,
        /// Calibration tokens behind the Hessian.
        tokens: usize,
    },

    /// An activation batch has the wrong number of values.
    #[error(
        "activation batch for '{statistics}' has {len} values but {tokens} tokens x width \
         {width} needs {expected}; pass row-major [tokens][width] data"
    )]
    ActivationShape {
        /// Label of the statistics.
        statistics: String,
        /// Declared tokens.
        tokens: usize,
        /// Statistics width.
        width: usize,
        /// tokens * width (saturating).
        expected: usize,
        /// Actual length.
        len: usize,
    },

    /// An activation is NaN or infinite.
    #[error(
        "activation for '{statistics}' at token {token}, channel {channel} is {value}; the \
         forward pass overflowed, check the model's dtype and the input text"
    )]
    NonFiniteActivation {
        /// Label of the statistics.
        statistics: String,
        /// Token index within the batch.
        token: usize,
        /// Channel index.
        channel: usize,
        /// The value found.
        value: f32,
    },

    /// Two statistics that cannot be merged.
    #[error(
        "cannot merge statistics '{other}' into '{target}': {reason}; merge only statistics of \
         the same layer input created with the same settings"
    )]
    StatisticsMismatch {
        /// Label of the receiving statistics.
        target: String,
        /// Label of the merged-in statistics.
        other: String,
        /// What differs.
        reason: String,
    },

    /// A mask was applied to, or compared with, data of another shape.
    #[error(
        "mask of {rows} x {cols} cannot be used with {what} of {len} values; use the mask \
         computed for this very layer"
    )]
    MaskShape {
        /// Mask rows.
        rows: usize,
        /// Mask columns.
        cols: usize,
        /// What the mask was used with.
        what: &'static str,
        /// Its length.
        len: usize,
    },

    /// Reading or writing a mask file failed at the operating-system level.
    #[error(
        "could not {action} mask file {path}: {source}; check that the path exists and is \
         readable/writable"
    )]
    MaskIo {
        /// "read" or "write".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A mask file is not a valid mask file.
    #[error("mask file {path} is corrupt: {reason}; delete it and prune the layer again")]
    CorruptMaskFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}
