// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The usage receipt: one paid inference, as the oracle records, serves and commits to.
/// @notice ABI documentation only: no function takes a receipt. Receipts stay off chain; a
/// settled batch's `receiptsRoot` (ISettlement.Batch) is the root of an OpenZeppelin
/// `StandardMerkleTree` of its receipts: leaf `keccak256(bytes.concat(keccak256(abi.encode(r))))`,
/// sorted-pair nodes, so `MerkleProof.verify(proof, root, leaf)` checks a receipt the oracle
/// serves (`GET /v1/receipts/{id}`) against the root settled on chain.
///
/// **Fee.** `fee = ceil((tokensIn + tokensOut) * pricePer1kTokens / 1000)` wei, with the
/// model's on-chain price when served and the counts of the model's own tokenizer (prompt after
/// the chat template; completion including a final end-of-sequence token).
///
/// **Attribution.** `attribution` lists contributions by (datanetId, contributionId), strictly
/// increasing, each with parts per million of the receipt's data share; the weights sum to at
/// most 1,000,000 and the rest is the unattributed share of `datanetId`: the lineage datanet
/// whose contributions got the largest attributed weight (ties: the lowest id), or the model's
/// lowest lineage datanet when nothing was attributed.
///
/// **Credits.** A batch's data credits for model m are, per key k = (datanetId, contributionId),
/// the weight `W_k = sum over m's receipts r of fee_r * ppm_{r,k}`, with key (datanetId_r, 0)
/// getting `fee_r * (1,000,000 - sum_k ppm_{r,k})`; zero weights are dropped; keys ascend.
/// So the weights sum to `T * 1,000,000` (T = m's receipts' fees) and anyone recomputes them
/// from the receipts under the root. Defined in Rust by `openledger-billing` (`credit`).
interface IReceipts {
    /// One contribution's share of a receipt's data fee.
    struct AttributionWeight {
        uint256 datanetId;
        uint256 contributionId;
        uint32 ppm;
    }

    struct Receipt {
        bytes32 requestId;
        address user;
        address operator;
        uint256 modelId;
        uint32 modelVersion;
        uint64 tokensIn;
        uint64 tokensOut;
        uint256 fee;
        bytes32 promptHash;
        bytes32 outputHash;
        uint256 datanetId;
        AttributionWeight[] attribution;
        uint64 timestamp;
    }
}
