//! The LoRA hooks of one forward step: which token rows use which adapter, and adding their
//! low-rank deltas to a linear layer's output.

use std::collections::HashMap;

use candle_core::{D, Tensor};
use rayon::prelude::*;

use crate::Result;
use crate::lora::{LoraAdapter, Target};

/// Which token rows use which adapter, for the LoRA hooks of one forward step.
pub(super) struct LoraRows<'a> {
    /// Per adapter (by position in `adapters`): the token row ranges it applies to.
    groups: Vec<(&'a LoraAdapter, Vec<(usize, usize)>)>,
}

impl<'a> LoraRows<'a> {
    pub(super) fn new(adapters: &[Option<&'a LoraAdapter>], spans: &[(usize, usize)]) -> Self {
        let mut by_id: HashMap<&str, usize> = HashMap::new();
        let mut groups: Vec<(&'a LoraAdapter, Vec<(usize, usize)>)> = Vec::new();
        for (a, &span) in adapters.iter().zip(spans) {
            if let Some(a) = a {
                let gi = *by_id.entry(a.id()).or_insert_with(|| {
                    groups.push((a, Vec::new()));
                    groups.len() - 1
                });
                groups[gi].1.push(span);
            }
        }
        Self { groups }
    }

    /// Adds each adapted row's low-rank delta for `(layer, target)` to `y = x·Wᵀ`.
    pub(super) fn apply(
        &self,
        layer: usize,
        target: Target,
        x: &Tensor,
        y: Tensor,
    ) -> Result<Tensor> {
        let active: Vec<_> = self
            .groups
            .iter()
            .filter_map(|(a, spans)| a.get(layer, target).map(|w| (w, spans)))
            .collect();
        if active.is_empty() {
            return Ok(y);
        }
        let (t, d_in) = x.dims2()?;
        let d_out = y.dim(D::Minus1)?;
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let mut ys = y.flatten_all()?.to_vec1::<f32>()?;
        let mut row_weight = vec![None; t];
        for (w, spans) in active {
            for &(start, len) in spans.iter() {
                row_weight[start..start + len].fill(Some(w));
            }
        }
        // Rows in parallel: with many distinct adapters each row reads its own low-rank
        // weights, and a row's delta is the same whichever thread computes it.
        ys.par_chunks_mut(d_out)
            .zip(xs.par_chunks(d_in))
            .zip(row_weight.par_iter())
            .for_each_init(Vec::new, |h, ((y, x), w)| {
                if let Some(w) = w {
                    w.add_delta(x, y, h);
                }
            });
        Ok(Tensor::from_vec(ys, (t, d_out), y.device())?)
    }
}
