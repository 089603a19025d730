//! The projections an adapter can target and the names of their tensors in a file.

use std::fmt;

/// A projection inside a transformer block that an adapter can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// Attention query projection (`attn_q`).
    Q,
    /// Attention key projection (`attn_k`).
    K,
    /// Attention value projection (`attn_v`).
    V,
    /// Attention output projection (`attn_output`).
    O,
    /// MLP gate projection (`ffn_gate`).
    Gate,
    /// MLP up projection (`ffn_up`).
    Up,
    /// MLP down projection (`ffn_down`).
    Down,
}

impl Target {
    /// All targets, in layer order.
    pub const ALL: [Target; 7] = [
        Target::Q,
        Target::K,
        Target::V,
        Target::O,
        Target::Gate,
        Target::Up,
        Target::Down,
    ];

    /// The GGUF name of the projection (`attn_q`, ...), used in our tensor names.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Target::Q => "attn_q",
            Target::K => "attn_k",
            Target::V => "attn_v",
            Target::O => "attn_output",
            Target::Gate => "ffn_gate",
            Target::Up => "ffn_up",
            Target::Down => "ffn_down",
        }
    }

    /// The module path of the projection in a PEFT (Hugging Face) Llama adapter
    /// (`self_attn.q_proj`, ...).
    pub fn peft_name(self) -> &'static str {
        match self {
            Target::Q => "self_attn.q_proj",
            Target::K => "self_attn.k_proj",
            Target::V => "self_attn.v_proj",
            Target::O => "self_attn.o_proj",
            Target::Gate => "mlp.gate_proj",
            Target::Up => "mlp.up_proj",
            Target::Down => "mlp.down_proj",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.gguf_name())
    }
}

/// One of the two low-rank factors of an adapted projection: the delta is `B·A`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Factor {
    /// `A`, shape `(rank, in)`: projects the input down to the rank.
    A,
    /// `B`, shape `(out, rank)`: projects back up to the output size.
    B,
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Factor::A => "A",
            Factor::B => "B",
        })
    }
}

/// What a tensor name in an adapter file stands for: one factor of one projection of one
/// layer.
///
/// Our files name tensors `blk.{layer}.{proj}.lora_a` / `.lora_b`, with the GGUF projection
/// names of [`Target::gguf_name`]. PEFT names
/// (`base_model.model.model.layers.{layer}.{module}.lora_A.weight`, with
/// [`Target::peft_name`] modules) are read too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorName {
    /// Layer index.
    pub layer: usize,
    /// Which projection.
    pub target: Target,
    /// Which factor.
    pub factor: Factor,
}

impl TensorName {
    /// Parses one of our names or a PEFT name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        Self::parse_ours(name).or_else(|| Self::parse_peft(name))
    }

    fn parse_ours(name: &str) -> Option<Self> {
        let rest = name.strip_prefix("blk.")?;
        let (layer, rest) = rest.split_once('.')?;
        let (proj, factor) = rest.rsplit_once('.')?;
        let factor = match factor {
            "lora_a" => Factor::A,
            "lora_b" => Factor::B,
            _ => return None,
        };
        let target = Target::ALL.into_iter().find(|t| t.gguf_name() == proj)?;
        Some(Self {
            layer: parse_layer(layer)?,
            target,
            factor,
        })
    }

    fn parse_peft(name: &str) -> Option<Self> {
        let rest = name.strip_prefix("base_model.model.model.layers.")?;
        let (layer, rest) = rest.split_once('.')?;
        let rest = rest.strip_suffix(".weight").unwrap_or(rest);
        let (module, factor) = rest.rsplit_once('.')?;
        let factor = match factor {
            "lora_A" => Factor::A,
            "lora_B" => Factor::B,
            _ => return None,
        };
        let target = Target::ALL.into_iter().find(|t| t.peft_name() == module)?;
        Some(Self {
            layer: parse_layer(layer)?,
            target,
            factor,
        })
    }
}

/// A layer index in decimal, without a sign or leading zeros (so each layer has one name).
fn parse_layer(s: &str) -> Option<usize> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

impl fmt::Display for TensorName {
    /// Our name for the tensor (`blk.3.attn_q.lora_a`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let factor = match self.factor {
            Factor::A => "lora_a",
            Factor::B => "lora_b",
        };
        write!(f, "blk.{}.{}.{factor}", self.layer, self.target.gguf_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_names_round_trip_for_every_target_and_factor() {
        for target in Target::ALL {
            for factor in [Factor::A, Factor::B] {
                let n = TensorName {
                    layer: 29,
                    target,
                    factor,
                };
                assert_eq!(TensorName::parse(&n.to_string()), Some(n), "{n}");
            }
        }
        assert_eq!(
            TensorName {
                layer: 3,
                target: Target::O,
                factor: Factor::B
            }
            .to_string(),
            "blk.3.attn_output.lora_b"
        );
    }

    #[test]
    fn peft_names_are_read() {
        assert_eq!(
            TensorName::parse("base_model.model.model.layers.7.mlp.down_proj.lora_A.weight"),
            Some(TensorName {
                layer: 7,
                target: Target::Down,
                factor: Factor::A
            })
        );
        assert_eq!(
            TensorName::parse("base_model.model.model.layers.0.self_attn.k_proj.lora_B"),
            Some(TensorName {
                layer: 0,
                target: Target::K,
                factor: Factor::B
            })
        );
    }

    #[test]
    fn other_names_are_not_adapter_tensors() {
        for bad in [
            "",
            "blk.0.attn_q.weight",
            "blk.0.attn_x.lora_a",
            "blk.-1.attn_q.lora_a",
            "blk.+1.attn_q.lora_a",
            "blk.01.attn_q.lora_a",
            "blk..attn_q.lora_a",
            "blk.0.attn_q.lora_A",
            "base_model.model.model.layers.0.self_attn.q_proj.lora_a.weight",
            "base_model.model.model.layers.0.self_attn.x_proj.lora_A.weight",
            "token_embd.weight",
        ] {
            assert_eq!(TensorName::parse(bad), None, "{bad:?}");
        }
    }
}
