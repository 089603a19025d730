//! EIP-712 domain and signatures for vouchers (signed by users) and batches (signed by an
//! operator's signing key). The domain pins name, version, chain id and the settlement
//! contract, so a signature for one chain or contract is worthless on another.

use alloy::{
    primitives::{Address, B256, Bytes},
    signers::Signer,
    sol_types::{Eip712Domain, SolStruct, eip712_domain},
};

pub use crate::bindings::ISettlement::{Batch, DataCredit, Debit, SignedVoucher, Voucher};

/// The EIP-712 `name` of the settlement contract's domain.
pub const DOMAIN_NAME: &str = "OpenLedger Settlement";
/// The EIP-712 `version` of the settlement contract's domain.
pub const DOMAIN_VERSION: &str = "1";

/// The settlement contract's EIP-712 domain on `chain_id` at `settlement`.
pub fn settlement_domain(chain_id: u64, settlement: Address) -> Eip712Domain {
    eip712_domain! {
        name: DOMAIN_NAME,
        version: DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: settlement,
    }
}

/// The digest a user signs for `voucher`.
pub fn voucher_digest(domain: &Eip712Domain, voucher: &Voucher) -> B256 {
    voucher.eip712_signing_hash(domain)
}

/// The digest an operator's signing key signs for `batch`.
pub fn batch_digest(domain: &Eip712Domain, batch: &Batch) -> B256 {
    batch.eip712_signing_hash(domain)
}

/// Signs `voucher` with the user's key: 65 bytes `r || s || v` as the contract expects.
pub async fn sign_voucher<S: Signer + ?Sized>(
    signer: &S,
    domain: &Eip712Domain,
    voucher: &Voucher,
) -> alloy::signers::Result<SignedVoucher> {
    let signature = signer.sign_hash(&voucher_digest(domain, voucher)).await?;
    Ok(SignedVoucher {
        voucher: voucher.clone(),
        signature: Bytes::from(signature.as_bytes().to_vec()),
    })
}

/// Signs `batch` with the operator's signing key: 65 bytes `r || s || v`.
pub async fn sign_batch<S: Signer + ?Sized>(
    signer: &S,
    domain: &Eip712Domain,
    batch: &Batch,
) -> alloy::signers::Result<Bytes> {
    let signature = signer.sign_hash(&batch_digest(domain, batch)).await?;
    Ok(Bytes::from(signature.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_strings_match_the_contract() {
        // The contract hard-codes these strings (Settlement.sol); a drift breaks every signature.
        assert_eq!(
            Voucher::eip712_encode_type(),
            "Voucher(address user,address operator,uint256 modelId,uint256 cumulativeCap,uint64 expiry,uint64 nonce)"
        );
        assert_eq!(
            Batch::eip712_encode_type(),
            "Batch(address operator,uint64 sequence,uint64 deadline,uint32 policyEpoch,bytes32 receiptsRoot,Debit[] debits,DataCredit[] credits)\
             DataCredit(uint256 modelId,uint256 datanetId,uint256 contributionId,uint256 weight)\
             Debit(address user,uint256 modelId,uint256 amount)"
        );
    }
}
