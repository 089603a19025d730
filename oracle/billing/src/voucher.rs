//! The paying client's API key — a signed voucher — and the checks a node runs before it spends
//! any compute on a request.
//!
//! The key is `0x` + hex of `abi.encode(ISettlement.SignedVoucher)` (DESIGN §5), so any wallet
//! library can make one: [`decode_api_key`] / [`encode_api_key`]. [`authorize`] then applies,
//! in order, the checks the settlement contract will apply when the charge is settled, plus the
//! money rule that keeps concurrent requests from overspending:
//!
//! 1. operator = this node, model = the requested one ([`Error::WrongOperator`],
//!    [`Error::WrongModel`]);
//! 2. not expired: `expiry ≥ now + settlement_margin` ([`Error::VoucherExpired`]) — the margin
//!    is how long the node needs to get the charge settled, since the contract refuses a
//!    voucher after its expiry;
//! 3. not revoked, now or by a pending revocation: `nonce ≥ max(minNonce, pendingMinNonce)` of
//!    `voucherRevocation(user)` ([`Error::VoucherCancelled`]) — a pending revocation takes
//!    effect one withdrawal delay later and would void what the node serves now;
//! 4. signed by the user's EOA under the settlement contract's EIP-712 domain (chain id and
//!    contract pinned): a 65-byte `r ‖ s ‖ v` with `v ∈ {27, 28}` and low `s`, exactly what
//!    OpenZeppelin's `ECDSA.tryRecover` accepts ([`Error::MalformedSignature`],
//!    [`Error::WrongSigner`]) — unless [`Signer::Wallet`]: the user is a smart-contract wallet
//!    whose ERC-1271 `isValidSignature` accepted the signature over [`voucher_digest`], which
//!    the caller asked the chain (the contract accepts such wallets too, and checks them the
//!    same way, after ECDSA fails);
//! 5. `worstCase ≤ cap − (spent + unsettled on this voucher's channel)` ([`Error::OverCap`]);
//! 6. `worstCase ≤ guaranteed − unsettled for this user` ([`Error::InsufficientFunds`]), where
//!    guaranteed is `Settlement.guaranteed(user, operator)`: the user's escrow for this node
//!    less any live withdrawal request, which may leave before the node settles.
//!
//! "Unsettled" is what this node has already served or reserved (other requests in flight
//! included, at their worst case) but not yet seen settled: the node's journal knows it, the
//! chain does not. Chain reads are inputs ([`ChainFacts`]), so this module does no I/O.

use alloy::{
    hex,
    primitives::{Address, Signature, U256},
    sol_types::{Eip712Domain, SolValue},
};
use openledger_primitives::eip712::{SignedVoucher, voucher_digest};

use crate::error::{CapShortfall, Error, FundsShortfall, Result};

/// Reads an API key: `0x` + hex of `abi.encode(SignedVoucher)`, canonical encoding only (the
/// one `abi.encode` produces), so one voucher has exactly one key.
pub fn decode_api_key(key: &str) -> Result<SignedVoucher> {
    let malformed = |reason: String| Error::MalformedVoucher { reason };
    let body = key
        .strip_prefix("0x")
        .ok_or_else(|| malformed("it does not start with 0x".into()))?;
    let bytes = hex::decode(body).map_err(|e| malformed(format!("not hex: {e}")))?;
    let voucher = SignedVoucher::abi_decode_validate(&bytes)
        .map_err(|e| malformed(format!("not an ABI-encoded SignedVoucher: {e}")))?;
    if voucher.abi_encode() != bytes {
        return Err(malformed(
            "not in canonical abi.encode form (padding or offsets differ)".into(),
        ));
    }
    Ok(voucher)
}

/// Writes an API key for `voucher`.
pub fn encode_api_key(voucher: &SignedVoucher) -> String {
    format!("0x{}", hex::encode(voucher.abi_encode()))
}

/// The address that signed `voucher` under `domain`, with the contract's signature rules.
pub fn recover_signer(domain: &Eip712Domain, voucher: &SignedVoucher) -> Result<Address> {
    let malformed = |reason: &str| Error::MalformedSignature {
        reason: reason.into(),
    };
    let raw: &[u8; 65] =
        voucher
            .signature
            .as_ref()
            .try_into()
            .map_err(|_| Error::MalformedSignature {
                reason: format!("{} bytes, expected 65", voucher.signature.len()),
            })?;
    if !matches!(raw[64], 27 | 28) {
        return Err(malformed("v must be 27 or 28"));
    }
    let signature = Signature::from_raw_array(raw).map_err(|_| malformed("bad v"))?;
    // `normalize_s` is `Some` exactly when s > n/2.
    if signature.normalize_s().is_some() {
        return Err(malformed("s is in the upper half of the curve order"));
    }
    if signature.r().is_zero() || signature.s().is_zero() {
        return Err(malformed("r or s is zero"));
    }
    signature
        .recover_address_from_prehash(&voucher_digest(domain, &voucher.voucher))
        .map_err(|_| malformed("no public key recovers from it"))
}

/// What this node is and when it is asked.
#[derive(Debug, Clone)]
pub struct Node {
    /// The settlement contract's EIP-712 domain on this chain.
    pub domain: Eip712Domain,
    /// This node's operator account (vouchers name it).
    pub operator: Address,
    /// Seconds the node needs, after serving, to get a charge settled: vouchers expiring
    /// sooner are refused.
    pub settlement_margin: u64,
}

/// On-chain facts about the voucher's user, read by the caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChainFacts {
    /// The larger of `minNonce` and `pendingMinNonce` of `Settlement.voucherRevocation(user)`.
    pub min_nonce: u64,
    /// `Settlement.spent(user, operator, modelId)`.
    pub spent: U256,
    /// `Settlement.guaranteed(user, operator)`.
    pub guaranteed: U256,
}

/// What the node owes itself but has not yet seen settled, from its journal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unsettled {
    /// Served or reserved on this (user, operator, model) channel.
    pub channel: U256,
    /// Served or reserved for this user on any model of this node.
    pub user: U256,
}

/// The request being authorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The model asked for.
    pub model_id: U256,
    /// Its worst-case fee ([`crate::meter::worst_case_fee`]).
    pub worst_case_fee: U256,
    /// Unix seconds now.
    pub now: u64,
}

/// A request the voucher pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authorization {
    /// The paying user.
    pub user: Address,
    /// What the cap leaves after this request's worst case.
    pub cap_left: U256,
    /// What the deposit leaves after this request's worst case.
    pub funds_left: U256,
}

/// How the voucher's signature is checked (step 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Signer {
    /// ECDSA recovery must give the voucher's user.
    #[default]
    Eoa,
    /// The user's ERC-1271 wallet accepted the signature (asked on chain by the caller).
    Wallet,
}

/// Runs every check of the module docs, in that order; the first failure is returned.
pub fn authorize(
    node: &Node,
    signed: &SignedVoucher,
    request: &Request,
    facts: &ChainFacts,
    unsettled: &Unsettled,
) -> Result<Authorization> {
    authorize_signed_by(node, signed, request, facts, unsettled, Signer::Eoa)
}

/// [`authorize`], with the signature checked as `signer` says.
pub fn authorize_signed_by(
    node: &Node,
    signed: &SignedVoucher,
    request: &Request,
    facts: &ChainFacts,
    unsettled: &Unsettled,
    signer: Signer,
) -> Result<Authorization> {
    let v = &signed.voucher;
    if v.operator != node.operator {
        return Err(Error::WrongOperator {
            voucher_operator: v.operator,
            operator: node.operator,
        });
    }
    if v.modelId != request.model_id {
        return Err(Error::WrongModel {
            voucher_model: v.modelId,
            model: request.model_id,
        });
    }
    let needed = request.now.saturating_add(node.settlement_margin);
    if v.expiry < needed {
        return Err(Error::VoucherExpired {
            expiry: v.expiry,
            needed,
        });
    }
    if v.nonce < facts.min_nonce {
        return Err(Error::VoucherCancelled {
            nonce: v.nonce,
            min_nonce: facts.min_nonce,
        });
    }
    if signer == Signer::Eoa {
        let recovered = recover_signer(&node.domain, signed)?;
        if recovered != v.user {
            return Err(Error::WrongSigner {
                recovered,
                user: v.user,
                chain_id: node.domain.chain_id.map_or(0, |c| c.saturating_to()),
            });
        }
    }
    let worst_case = request.worst_case_fee;
    let committed = facts.spent.saturating_add(unsettled.channel);
    let cap_left = v.cumulativeCap.saturating_sub(committed);
    if worst_case > cap_left {
        return Err(Error::OverCap(Box::new(CapShortfall {
            worst_case,
            cap: v.cumulativeCap,
            spent: facts.spent,
            unsettled: unsettled.channel,
            left: cap_left,
        })));
    }
    let available = facts.guaranteed;
    let funds_left = available.saturating_sub(unsettled.user);
    if worst_case > funds_left {
        return Err(Error::InsufficientFunds(Box::new(FundsShortfall {
            worst_case,
            available,
            unsettled: unsettled.user,
            left: funds_left,
        })));
    }
    Ok(Authorization {
        user: v.user,
        cap_left: cap_left - worst_case,
        funds_left: funds_left - worst_case,
    })
}
