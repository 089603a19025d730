// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IGoverned} from "./IGoverned.sol";

/// @title Datanets: community datasets and their contributions.
/// @notice Anyone creates a datanet (and curates it); anyone contributes, optionally staking OPEN
/// behind the contribution. Curators (the datanet owner plus the accounts governance adds)
/// accept or reject pending contributions. Accepting returns the stake; rejecting returns it or,
/// when `slash` is set, sends it to the treasury. Ids start at 1.
interface IDatanetRegistry is IGoverned {
    enum ContributionStatus {
        None,
        Pending,
        Accepted,
        Rejected
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
        /// keccak256 of the raw content bytes.
        bytes32 contentHash;
        string uri;
    }

    event DatanetCreated(uint256 indexed datanetId, address indexed owner, uint32 minAccepted, string metadataURI);
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

    error UnknownDatanet(uint256 datanetId);
    error UnknownContribution(uint256 contributionId);
    error NotCurator(uint256 datanetId, address caller);
    error NotPending(uint256 contributionId, ContributionStatus status);
    /// A contribution needs a non-zero content hash and a non-zero token count.
    error EmptyContribution();
    error DuplicateContent(uint256 datanetId, bytes32 contentHash);

    function createDatanet(string calldata metadataURI, uint32 minAccepted) external returns (uint256 datanetId);
    /// Adds or removes a curator of a datanet (governance only).
    function setCurator(uint256 datanetId, address curator, bool enabled) external;
    /// Registers a contribution; pulls `stake` OPEN from the caller (approve first).
    function addContribution(uint256 datanetId, bytes32 contentHash, uint64 tokens, string calldata uri, uint256 stake)
        external
        returns (uint256 contributionId);
    function acceptContribution(uint256 contributionId) external;
    function rejectContribution(uint256 contributionId, bool slash) external;

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
    function isCurator(uint256 datanetId, address account) external view returns (bool);
    /// True when the datanet has at least `minAccepted` accepted contributions.
    function meetsRequirements(uint256 datanetId) external view returns (bool);
}
