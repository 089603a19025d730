// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IDatanetRegistry} from "../../interfaces/IDatanetRegistry.sol";
import {Governed} from "./Governed.sol";

/// @title Datanets and their contributions (see IDatanetRegistry).
contract DatanetRegistry is IDatanetRegistry, Governed, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// How long curators have before a contributor may withdraw a pending contribution.
    uint64 public constant CURATION_TIMEOUT = 14 days;

    struct ContentClaim {
        address author;
        bool live;
    }

    address public immutable token;
    address public immutable treasury;

    uint256 public datanetCount;
    uint256 public contributionCount;

    mapping(uint256 => Datanet) private _datanets;
    mapping(uint256 => Contribution) private _contributions;
    mapping(uint256 => mapping(address => bool)) private _curators;
    mapping(uint256 => mapping(bytes32 => ContentClaim)) private _content;
    mapping(uint256 => address) private _pendingOwners;
    mapping(bytes32 => uint256) private _commitments;

    constructor(address token_, address governance_, address treasury_) Governed(governance_) {
        if (token_ == address(0) || treasury_ == address(0)) revert ZeroAddress();
        token = token_;
        treasury = treasury_;
    }

    function createDatanet(string calldata metadataURI, uint32 minAccepted) external returns (uint256 datanetId) {
        datanetId = ++datanetCount;
        Datanet storage d = _datanets[datanetId];
        d.owner = msg.sender;
        d.minAccepted = minAccepted;
        d.metadataURI = metadataURI;
        emit DatanetCreated(datanetId, msg.sender, minAccepted, metadataURI);
    }

    function setCurator(uint256 datanetId, address curator, bool enabled) external onlyGovernance {
        _requireDatanet(datanetId);
        if (curator == address(0)) revert ZeroAddress();
        _curators[datanetId][curator] = enabled;
        emit CuratorSet(datanetId, curator, enabled);
    }

    function transferDatanet(uint256 datanetId, address next) external {
        _requireDatanet(datanetId);
        if (_datanets[datanetId].owner != msg.sender) revert NotDatanetOwner(datanetId, msg.sender);
        if (next == address(0)) revert ZeroAddress();
        _pendingOwners[datanetId] = next;
        emit DatanetTransferStarted(datanetId, msg.sender, next);
    }

    function acceptDatanet(uint256 datanetId) external {
        _requireDatanet(datanetId);
        if (_pendingOwners[datanetId] != msg.sender) revert NotPendingOwner(datanetId, msg.sender);
        address previous = _datanets[datanetId].owner;
        _datanets[datanetId].owner = msg.sender;
        delete _pendingOwners[datanetId];
        emit DatanetTransferred(datanetId, previous, msg.sender);
    }

    function commitContribution(bytes32 commitment) external {
        // The earliest block counts; a copy of someone's commitment only confirms it.
        if (_commitments[commitment] == 0) _commitments[commitment] = block.number;
        emit ContributionCommitted(commitment, msg.sender);
    }

    function addContribution(
        uint256 datanetId,
        bytes32 contentHash,
        uint64 tokens,
        string calldata uri,
        uint256 stake,
        bytes32 salt
    ) external nonReentrant returns (uint256 contributionId) {
        _requireDatanet(datanetId);
        if (contentHash == bytes32(0) || tokens == 0) revert EmptyContribution();
        bytes32 commitment = keccak256(abi.encode(msg.sender, datanetId, contentHash, salt));
        uint256 committedAt = _commitments[commitment];
        if (committedAt == 0 || committedAt >= block.number) revert NotCommitted(commitment);
        delete _commitments[commitment];
        ContentClaim storage claim = _content[datanetId][contentHash];
        if (claim.live) revert DuplicateContent(datanetId, contentHash);
        if (claim.author != address(0) && claim.author != msg.sender) {
            revert ContentReserved(datanetId, contentHash, claim.author);
        }
        claim.author = msg.sender;
        claim.live = true;

        contributionId = ++contributionCount;
        Contribution storage c = _contributions[contributionId];
        c.datanetId = datanetId;
        c.contributor = msg.sender;
        c.status = ContributionStatus.Pending;
        c.tokens = tokens;
        c.stake = stake;
        c.addedAt = uint64(block.timestamp);
        c.contentHash = contentHash;
        c.uri = uri;
        emit ContributionAdded(contributionId, datanetId, msg.sender, contentHash, tokens, stake, uri);

        if (stake > 0) IERC20(token).safeTransferFrom(msg.sender, address(this), stake);
    }

    function acceptContribution(uint256 contributionId) external nonReentrant {
        Contribution storage c = _pendingForCurator(contributionId);
        uint256 datanetId = c.datanetId;
        uint256 stake = c.stake;
        c.status = ContributionStatus.Accepted;
        c.stake = 0;
        _datanets[datanetId].acceptedCount += 1;
        emit ContributionAccepted(contributionId, datanetId, msg.sender);

        if (stake > 0) IERC20(token).safeTransfer(c.contributor, stake);
    }

    function rejectContribution(uint256 contributionId, bool slash) external nonReentrant {
        Contribution storage c = _pendingForCurator(contributionId);
        uint256 stake = c.stake;
        if (slash && stake == 0) revert ZeroAmount();
        c.status = ContributionStatus.Rejected;
        c.stake = 0;
        // Its author may submit it again (e.g. with a better licence); nobody else may.
        _content[c.datanetId][c.contentHash].live = false;
        emit ContributionRejected(contributionId, c.datanetId, msg.sender, slash ? stake : 0);

        if (stake > 0) IERC20(token).safeTransfer(slash ? treasury : c.contributor, stake);
    }

    function withdrawContribution(uint256 contributionId) external nonReentrant {
        _requireContribution(contributionId);
        Contribution storage c = _contributions[contributionId];
        if (c.contributor != msg.sender) revert NotContributor(contributionId, msg.sender);
        if (c.status != ContributionStatus.Pending) revert NotPending(contributionId, c.status);
        uint64 timesOutAt = c.addedAt + CURATION_TIMEOUT;
        if (block.timestamp < timesOutAt) revert CurationNotTimedOut(contributionId, timesOutAt);
        uint256 stake = c.stake;
        c.status = ContributionStatus.Withdrawn;
        c.stake = 0;
        _content[c.datanetId][c.contentHash].live = false;
        emit ContributionWithdrawn(contributionId, c.datanetId, msg.sender, stake);

        if (stake > 0) IERC20(token).safeTransfer(msg.sender, stake);
    }

    function getDatanet(uint256 datanetId) external view returns (Datanet memory) {
        _requireDatanet(datanetId);
        return _datanets[datanetId];
    }

    function getContribution(uint256 contributionId) external view returns (Contribution memory) {
        _requireContribution(contributionId);
        return _contributions[contributionId];
    }

    function contributionOwner(uint256 contributionId)
        external
        view
        returns (uint256 datanetId, address contributor, ContributionStatus status)
    {
        Contribution storage c = _contributions[contributionId];
        return (c.datanetId, c.contributor, c.status);
    }

    function datanetOwner(uint256 datanetId) external view returns (address) {
        _requireDatanet(datanetId);
        return _datanets[datanetId].owner;
    }

    function pendingDatanetOwner(uint256 datanetId) external view returns (address) {
        return _pendingOwners[datanetId];
    }

    function commitmentBlock(bytes32 commitment) external view returns (uint256) {
        return _commitments[commitment];
    }

    function contentAuthor(uint256 datanetId, bytes32 contentHash) external view returns (address author, bool live) {
        ContentClaim storage claim = _content[datanetId][contentHash];
        return (claim.author, claim.live);
    }

    function isCurator(uint256 datanetId, address account) public view returns (bool) {
        return _datanets[datanetId].owner == account || _curators[datanetId][account];
    }

    function meetsRequirements(uint256 datanetId) external view returns (bool) {
        _requireDatanet(datanetId);
        Datanet storage d = _datanets[datanetId];
        return d.acceptedCount >= d.minAccepted;
    }

    function _pendingForCurator(uint256 contributionId) private view returns (Contribution storage c) {
        _requireContribution(contributionId);
        c = _contributions[contributionId];
        if (!isCurator(c.datanetId, msg.sender)) revert NotCurator(c.datanetId, msg.sender);
        if (c.status != ContributionStatus.Pending) revert NotPending(contributionId, c.status);
    }

    function _requireDatanet(uint256 datanetId) private view {
        if (datanetId == 0 || datanetId > datanetCount) revert UnknownDatanet(datanetId);
    }

    function _requireContribution(uint256 contributionId) private view {
        if (contributionId == 0 || contributionId > contributionCount) revert UnknownContribution(contributionId);
    }
}
