// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IGoverned} from "./IGoverned.sol";

/// @title Datanets: community datasets and their contributions.
/// @notice Anyone creates a datanet (and curates it); anyone contributes, optionally staking OPEN
/// behind the contribution. Curators (the datanet owner plus the accounts governance adds)
/// accept or reject pending contributions. Accepting returns the stake; rejecting returns it or,
/// when `slash` is set (with a non-zero stake), sends it to the treasury. Ids start at 1.
///
/// Authorship is bound by commit-reveal: the contributor first commits
/// `keccak256(abi.encode(contributor, datanetId, contentHash, salt))`, then, in a later block,
/// `addContribution` reveals it. Nobody who sees the reveal can claim the content first, since
/// their own commitment would have to be older. Content hashes are unique per datanet; a
/// rejected or withdrawn hash stays reserved for its author, so a curator cannot reject content
/// and re-add it as its own. A contribution pending for `CURATION_TIMEOUT` may be withdrawn by
/// its contributor, stake returned. Ownership of a datanet moves in two steps.
interface IDatanetRegistry is IGoverned {
    enum ContributionStatus {
        None,
        Pending,
        Accepted,
        Rejected,
        Withdrawn
    }

    struct Datanet {
        address owner;
        /// Accepted contributions required before a model may be registered on this datanet.
        uint32 minAccepted;
        uint32 acceptedCount;
        string metadataURI;
    }

    struct Contribution {
        uint256 datanetId;
        address contributor;
        ContributionStatus status;
        /// Size of the content in tokens of the reference tokenizer.
        uint64 tokens;
        /// OPEN (wei) held by this contract until curation.
        uint256 stake;
        /// When it was added (the curation timeout runs from here).
        uint64 addedAt;
        /// keccak256 of the raw content bytes.
        bytes32 contentHash;
        string uri;
    }

    event DatanetCreated(uint256 indexed datanetId, address indexed owner, uint32 minAccepted, string metadataURI);
    event DatanetTransferStarted(uint256 indexed datanetId, address indexed owner, address indexed pendingOwner);
    event DatanetTransferred(uint256 indexed datanetId, address indexed previousOwner, address indexed owner);
    event ContributionCommitted(bytes32 indexed commitment, address indexed committer);
    event CuratorSet(uint256 indexed datanetId, address indexed curator, bool enabled);
    event ContributionAdded(
        uint256 indexed contributionId,
        uint256 indexed datanetId,
        address indexed contributor,
        bytes32 contentHash,
        uint64 tokens,
        uint256 stake,
        string uri
    );
    event ContributionAccepted(uint256 indexed contributionId, uint256 indexed datanetId, address indexed curator);
    /// `slashed` is the stake sent to the treasury (0 when the stake was returned).
    event ContributionRejected(
        uint256 indexed contributionId, uint256 indexed datanetId, address indexed curator, uint256 slashed
    );

    event ContributionWithdrawn(
        uint256 indexed contributionId, uint256 indexed datanetId, address indexed contributor, uint256 stake
    );

    error UnknownDatanet(uint256 datanetId);
    error NotDatanetOwner(uint256 datanetId, address caller);
    error NotPendingOwner(uint256 datanetId, address caller);
    error ZeroAmount();
    /// No commitment of the caller for this content, or it was made in this very block.
    error NotCommitted(bytes32 commitment);
    /// The hash belongs to a rejected or withdrawn contribution of `author`; only it may re-add it.
    error ContentReserved(uint256 datanetId, bytes32 contentHash, address author);
    error NotContributor(uint256 contributionId, address caller);
    error CurationNotTimedOut(uint256 contributionId, uint64 timesOutAt);
    error UnknownContribution(uint256 contributionId);
    error NotCurator(uint256 datanetId, address caller);
    error NotPending(uint256 contributionId, ContributionStatus status);
    /// A contribution needs a non-zero content hash and a non-zero token count.
    error EmptyContribution();
    error DuplicateContent(uint256 datanetId, bytes32 contentHash);

    function createDatanet(string calldata metadataURI, uint32 minAccepted) external returns (uint256 datanetId);
    /// Adds or removes a curator of a datanet (governance only).
    function setCurator(uint256 datanetId, address curator, bool enabled) external;
    /// Proposes `next` as owner of a datanet (owner only); `next` accepts with `acceptDatanet`.
    function transferDatanet(uint256 datanetId, address next) external;
    function acceptDatanet(uint256 datanetId) external;
    /// Step one of adding a contribution: `keccak256(abi.encode(msg.sender, datanetId, contentHash, salt))`.
    function commitContribution(bytes32 commitment) external;
    /// Step two, in a later block: registers the committed contribution and pulls `stake` OPEN
    /// from the caller (approve first).
    function addContribution(
        uint256 datanetId,
        bytes32 contentHash,
        uint64 tokens,
        string calldata uri,
        uint256 stake,
        bytes32 salt
    ) external returns (uint256 contributionId);
    function acceptContribution(uint256 contributionId) external;
    function rejectContribution(uint256 contributionId, bool slash) external;
    /// The contributor takes back a contribution still pending `CURATION_TIMEOUT` after it was added.
    function withdrawContribution(uint256 contributionId) external;

    function token() external view returns (address);
    function treasury() external view returns (address);
    function datanetCount() external view returns (uint256);
    function contributionCount() external view returns (uint256);
    function getDatanet(uint256 datanetId) external view returns (Datanet memory);
    function getContribution(uint256 contributionId) external view returns (Contribution memory);
    /// The three facts settlement needs about a contribution, without copying its strings.
    function contributionOwner(uint256 contributionId)
        external
        view
        returns (uint256 datanetId, address contributor, ContributionStatus status);
    function datanetOwner(uint256 datanetId) external view returns (address);
    function pendingDatanetOwner(uint256 datanetId) external view returns (address);
    /// The block a commitment was made in (0 if none).
    function commitmentBlock(bytes32 commitment) external view returns (uint256);
    /// Who holds `contentHash` in a datanet (0 if nobody), and whether its contribution is live
    /// (pending or accepted) rather than reserved (rejected or withdrawn).
    function contentAuthor(uint256 datanetId, bytes32 contentHash) external view returns (address author, bool live);
    function isCurator(uint256 datanetId, address account) external view returns (bool);
    /// True when the datanet has at least `minAccepted` accepted contributions.
    function meetsRequirements(uint256 datanetId) external view returns (bool);
}
