// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Models fine-tuned on datanets, with versions and lineage.
/// @notice A developer registers a model (base model hash, first adapter, the datanets it was
/// trained on, price per 1,000 tokens in OPEN wei). Registration, and adding datanets to a
/// later version, fails unless every datanet meets its requirements. Versions start at 1; each
/// names its parent version. A model's datanet set is the union over its versions: those are
/// the datanets whose contributions can be paid for its inferences. The developer role moves in
/// two steps. A deactivated model stays deactivated; settlement charges for it only during a
/// grace period after `deactivatedAt` (see ISettlement). No admin role.
interface IModelRegistry {
    struct Model {
        address developer;
        bool active;
        uint32 latestVersion;
        /// When it was deactivated (0 while active).
        uint64 deactivatedAt;
        uint256 pricePer1kTokens;
        bytes32 baseModelHash;
    }

    struct ModelVersion {
        uint32 parentVersion;
        bytes32 adapterHash;
        string adapterURI;
    }

    event ModelRegistered(
        uint256 indexed modelId, address indexed developer, bytes32 baseModelHash, uint256 pricePer1kTokens
    );
    event ModelVersionAdded(
        uint256 indexed modelId,
        uint32 indexed version,
        uint32 parentVersion,
        bytes32 adapterHash,
        string adapterURI,
        uint256[] addedDatanetIds
    );
    event ModelPriceChanged(uint256 indexed modelId, uint256 pricePer1kTokens);
    event ModelDeactivated(uint256 indexed modelId);
    event ModelTransferStarted(uint256 indexed modelId, address indexed developer, address indexed pendingDeveloper);
    event ModelTransferred(uint256 indexed modelId, address indexed previousDeveloper, address indexed developer);

    error UnknownModel(uint256 modelId);
    error UnknownVersion(uint256 modelId, uint32 version);
    error NotDeveloper(uint256 modelId, address caller);
    error ModelInactive(uint256 modelId);
    error NotPendingDeveloper(uint256 modelId, address caller);
    error ZeroAddress();
    error NoDatanets();
    /// Datanet ids must be strictly increasing (no duplicates) and not already in the lineage.
    error DatanetListInvalid(uint256 datanetId);
    error DatanetRequirementsNotMet(uint256 datanetId);

    /// Registers a model as version 1 (parent 0) trained on `datanetIds` (strictly increasing).
    function registerModel(
        uint256[] calldata datanetIds,
        bytes32 baseModelHash,
        bytes32 adapterHash,
        string calldata adapterURI,
        uint256 pricePer1kTokens
    ) external returns (uint256 modelId);
    /// Adds a version derived from `parentVersion`, optionally trained on more datanets.
    function addVersion(
        uint256 modelId,
        uint32 parentVersion,
        bytes32 adapterHash,
        string calldata adapterURI,
        uint256[] calldata addedDatanetIds
    ) external returns (uint32 version);
    function setPrice(uint256 modelId, uint256 pricePer1kTokens) external;
    function deactivate(uint256 modelId) external;
    /// Proposes `next` as the model's developer (developer only); `next` calls `acceptModel`.
    function transferModel(uint256 modelId, address next) external;
    function acceptModel(uint256 modelId) external;
    function pendingDeveloper(uint256 modelId) external view returns (address);

    function datanets() external view returns (address);
    function modelCount() external view returns (uint256);
    function getModel(uint256 modelId) external view returns (Model memory);
    function getVersion(uint256 modelId, uint32 version) external view returns (ModelVersion memory);
    function modelDatanets(uint256 modelId) external view returns (uint256[] memory);
    /// True when `datanetId` is in the model's lineage (any version).
    function usesDatanet(uint256 modelId, uint256 datanetId) external view returns (bool);
    function developerOf(uint256 modelId) external view returns (address);
}
