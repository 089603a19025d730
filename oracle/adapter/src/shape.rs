//! The sizes of a base model that an adapter must fit, as plain numbers.

use crate::Target;

/// The shape of a Llama-family base model, as far as adapters care: how many layers, and the
/// input and output size of every targetable projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BaseShape {
    /// Transformer blocks.
    pub n_layer: usize,
    /// Hidden (embedding) size.
    pub hidden: usize,
    /// MLP inner size.
    pub ffn: usize,
    /// Size of the key and value projections' outputs (`n_kv_head · head_dim`).
    pub kv_dim: usize,
}

impl BaseShape {
    /// Input size of a target projection (the columns of `A`).
    pub fn in_dim(&self, target: Target) -> usize {
        match target {
            Target::Down => self.ffn,
            Target::Q | Target::K | Target::V | Target::O | Target::Gate | Target::Up => {
                self.hidden
            }
        }
    }

    /// Output size of a target projection (the rows of `B`).
    pub fn out_dim(&self, target: Target) -> usize {
        match target {
            Target::Q | Target::O | Target::Down => self.hidden,
            Target::K | Target::V => self.kv_dim,
            Target::Gate | Target::Up => self.ffn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M: 30 layers, hidden 576, ffn 1536, 3 KV heads of 64.
    #[test]
    fn smollm2_projection_sizes() {
        let s = BaseShape {
            n_layer: 30,
            hidden: 576,
            ffn: 1536,
            kv_dim: 192,
        };
        let sizes: Vec<(usize, usize)> = Target::ALL
            .into_iter()
            .map(|t| (s.in_dim(t), s.out_dim(t)))
            .collect();
        assert_eq!(
            sizes,
            [
                (576, 576),
                (576, 192),
                (576, 192),
                (576, 576),
                (576, 1536),
                (576, 1536),
                (1536, 576)
            ]
        );
    }
}
