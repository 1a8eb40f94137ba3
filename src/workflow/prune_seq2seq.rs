//! `prune` on an encoder-decoder (mT5/T5): the same options, results folder and saved folder
//! as the decoder-only workflow, through [`crate::pruned::seq2seq`].
//!
//! Calibration text is drawn as for a decoder (`CalibrationSet::draw`, seeded windows of
//! `seqlen` tokens); each window's text tokens followed by `</s>` are both the encoder's input
//! and the decoder's labels, which is how the text reaches every layer of both stacks.
//! Sequential mode prunes the encoder's blocks in order, then the decoder's, each calibrated
//! on the model pruned so far; one-shot mode calibrates everything on the dense model. SNIP and
//! GraSP score the dense model from the encoder-decoder's reverse pass in either mode.

use super::folder::ModelFolder;
use super::prune::{compare_perplexity, write_results, PruneOptions, PruneRun, PrunedRun};
use super::WorkflowError;
use crate::calibrate::{CalibrationSet, CaptureMode};
use crate::model::seq2seq::Seq2SeqFolder;
use crate::progress::Progress;
use crate::prune::{SparsityTarget, StatisticsNeed};
use crate::pruned::seq2seq::{prune_seq2seq_selected, save_pruned_seq2seq, Seq2SeqPruneOptions};
use crate::store::{new_run, RunKind};

/// The calibration sequences: each window without its start token, ended with `</s>` as the
/// encoder sees a text, so every sequence has `seqlen` tokens.
fn calibration_sequences(set: &CalibrationSet, eos: u32) -> Vec<Vec<u32>> {
    set.windows.iter().map(|w| w[1..].iter().copied().chain(std::iter::once(eos)).collect()).collect()
}

pub(super) fn prune_encoder_decoder(
    opts: &PruneOptions,
    folder: &Seq2SeqFolder,
    target: SparsityTarget,
    progress: &mut dyn Progress,
) -> Result<PruneRun, WorkflowError> {
    if let Some(m) = opts.methods.iter().find(|m| m.statistics_need() != StatisticsNeed::None).filter(|_| opts.calibration.is_none()) {
        return Err(WorkflowError::Refused(format!("{} needs calibration data: give --calib <languages>", m.name())));
    }
    let spec = &folder.card.spec;
    // A filter that leaves none of the encoder-decoder's layers would prune nothing.
    if !spec.layers().iter().any(|l| opts.filter.selects(&l.as_linear(spec.encoder_blocks))) {
        return Err(WorkflowError::Refused(format!(
            "{}: --include/--exclude select none of its layers; its names are like enc.blk.0.attn_q.weight and \
             dec.blk.1.cross_attn_k.weight (see `polyprune model inspect`)",
            folder.dir.display()
        )));
    }
    let started = std::time::Instant::now();
    let set = match &opts.calibration {
        Some(requested) => {
            let registry = crate::eval::registry(opts.flores.as_deref());
            let tokenizer = folder.tokenizer()?;
            Some(CalibrationSet::draw(requested, &registry, &tokenizer, spec.eos_token_id)?)
        }
        None => None,
    };
    let sequences = set.as_ref().map(|s| calibration_sequences(s, spec.eos_token_id)).unwrap_or_default();
    let calibration = set.as_ref().map(|s| s.spec.label()).unwrap_or_default();
    let sequential = opts.mode == CaptureMode::Sequential;
    let mut runs = Vec::new();
    for method in &opts.methods {
        progress.stage(&format!("{} {calibration}", method.name()), 1);
        let options = Seq2SeqPruneOptions { method: *method, target, sequential };
        let result = prune_seq2seq_selected(folder, &sequences, &options, &opts.filter, &opts.runtime);
        progress.finish();
        let result = result?;
        let pruned = result.to_pruned_model(spec);
        let record = serde_json::json!({
            "method": method, "target": format!("{target:?}"), "pattern": opts.pattern.to_string(),
            "sparsity": opts.sparsity.map(|s| s.get()),
            "calibration": set.as_ref().map(|s| &s.spec), "calibration_text": set.as_ref().map(|s| &s.text),
            "calibration_input": "each window's text and </s>: the encoder's input and the decoder's labels",
            "mode": opts.mode,
            "model": folder.identity(), "architecture": spec.architecture, "timings": pruned.timings,
            "calibration_seconds": result.calibration_seconds, "block_seconds": result.blocks,
            "overall_sparsity": pruned.overall_sparsity(), "mask_sparsity": pruned.mask_sparsity(),
        });
        let results_dir = new_run(&opts.results, RunKind::Prune, &format!("{}-{}", method.name(), calibration));
        write_results(&results_dir, folder.identity(), &pruned, set.as_ref(), &record, started)?;
        let saved = match &opts.save {
            Some(out) => {
                let out = if opts.methods.len() > 1 { out.join(method.name()) } else { out.clone() };
                save_pruned_seq2seq(folder, &pruned, &out, &record)?;
                Some(out)
            }
            None => None,
        };
        runs.push(PrunedRun { method: *method, pruned, results_dir, saved, perplexity: Vec::new() });
    }
    let dense = compare_perplexity(opts, &ModelFolder::EncoderDecoder(folder.clone()), &mut runs, progress)?;
    Ok(PruneRun { calibration, runs, dense })
}
