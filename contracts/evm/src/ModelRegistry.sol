// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IDatanetRegistry} from "../../interfaces/IDatanetRegistry.sol";
import {IModelRegistry} from "../../interfaces/IModelRegistry.sol";

/// @title Models, versions and their datanet lineage (see IModelRegistry). No admin role.
contract ModelRegistry is IModelRegistry {
    address public immutable datanets;
    uint256 public modelCount;

    mapping(uint256 => Model) private _models;
    mapping(uint256 => mapping(uint32 => ModelVersion)) private _versions;
    mapping(uint256 => uint256[]) private _lineage;
    mapping(uint256 => mapping(uint256 => bool)) private _usesDatanet;
    mapping(uint256 => address) private _pendingDevelopers;

    constructor(address datanets_) {
        if (datanets_ == address(0)) revert ZeroAddress();
        datanets = datanets_;
    }

    function registerModel(
        uint256[] calldata datanetIds,
        bytes32 baseModelHash,
        bytes32 adapterHash,
        string calldata adapterURI,
        uint256 pricePer1kTokens
    ) external returns (uint256 modelId) {
        if (datanetIds.length == 0) revert NoDatanets();
        modelId = ++modelCount;
        Model storage m = _models[modelId];
        m.developer = msg.sender;
        m.active = true;
        m.latestVersion = 1;
        m.pricePer1kTokens = pricePer1kTokens;
        m.baseModelHash = baseModelHash;
        emit ModelRegistered(modelId, msg.sender, baseModelHash, pricePer1kTokens);
        _addVersion(modelId, 1, 0, adapterHash, adapterURI, datanetIds);
    }

    function addVersion(
        uint256 modelId,
        uint32 parentVersion,
        bytes32 adapterHash,
        string calldata adapterURI,
        uint256[] calldata addedDatanetIds
    ) external returns (uint32 version) {
        Model storage m = _developerModel(modelId);
        if (!m.active) revert ModelInactive(modelId);
        if (parentVersion == 0 || parentVersion > m.latestVersion) revert UnknownVersion(modelId, parentVersion);
        version = ++m.latestVersion;
        _addVersion(modelId, version, parentVersion, adapterHash, adapterURI, addedDatanetIds);
    }

    function setPrice(uint256 modelId, uint256 pricePer1kTokens) external {
        Model storage m = _developerModel(modelId);
        if (!m.active) revert ModelInactive(modelId);
        m.pricePer1kTokens = pricePer1kTokens;
        emit ModelPriceChanged(modelId, pricePer1kTokens);
    }

    function deactivate(uint256 modelId) external {
        Model storage m = _developerModel(modelId);
        if (!m.active) revert ModelInactive(modelId);
        m.active = false;
        m.deactivatedAt = uint64(block.timestamp);
        emit ModelDeactivated(modelId);
    }

    function transferModel(uint256 modelId, address next) external {
        _developerModel(modelId);
        if (next == address(0)) revert ZeroAddress();
        _pendingDevelopers[modelId] = next;
        emit ModelTransferStarted(modelId, msg.sender, next);
    }

    function acceptModel(uint256 modelId) external {
        _requireModel(modelId);
        if (_pendingDevelopers[modelId] != msg.sender) revert NotPendingDeveloper(modelId, msg.sender);
        Model storage m = _models[modelId];
        address previous = m.developer;
        m.developer = msg.sender;
        delete _pendingDevelopers[modelId];
        emit ModelTransferred(modelId, previous, msg.sender);
    }

    function pendingDeveloper(uint256 modelId) external view returns (address) {
        return _pendingDevelopers[modelId];
    }

    function getModel(uint256 modelId) external view returns (Model memory) {
        _requireModel(modelId);
        return _models[modelId];
    }

    function getVersion(uint256 modelId, uint32 version) external view returns (ModelVersion memory) {
        _requireModel(modelId);
        if (version == 0 || version > _models[modelId].latestVersion) revert UnknownVersion(modelId, version);
        return _versions[modelId][version];
    }

    function modelDatanets(uint256 modelId) external view returns (uint256[] memory) {
        _requireModel(modelId);
        return _lineage[modelId];
    }

    function usesDatanet(uint256 modelId, uint256 datanetId) external view returns (bool) {
        return _usesDatanet[modelId][datanetId];
    }

    function developerOf(uint256 modelId) external view returns (address) {
        _requireModel(modelId);
        return _models[modelId].developer;
    }

    function _addVersion(
        uint256 modelId,
        uint32 version,
        uint32 parentVersion,
        bytes32 adapterHash,
        string calldata adapterURI,
        uint256[] calldata addedDatanetIds
    ) private {
        ModelVersion storage v = _versions[modelId][version];
        v.parentVersion = parentVersion;
        v.adapterHash = adapterHash;
        v.adapterURI = adapterURI;

        IDatanetRegistry registry = IDatanetRegistry(datanets);
        uint256 previous = 0;
        for (uint256 i = 0; i < addedDatanetIds.length; ++i) {
            uint256 id = addedDatanetIds[i];
            if (id <= previous || _usesDatanet[modelId][id]) revert DatanetListInvalid(id);
            if (!registry.meetsRequirements(id)) revert DatanetRequirementsNotMet(id);
            previous = id;
            _usesDatanet[modelId][id] = true;
            _lineage[modelId].push(id);
        }
        emit ModelVersionAdded(modelId, version, parentVersion, adapterHash, adapterURI, addedDatanetIds);
    }

    function _developerModel(uint256 modelId) private view returns (Model storage m) {
        _requireModel(modelId);
        m = _models[modelId];
        if (m.developer != msg.sender) revert NotDeveloper(modelId, msg.sender);
    }

    function _requireModel(uint256 modelId) private view {
        if (modelId == 0 || modelId > modelCount) revert UnknownModel(modelId);
    }
}
