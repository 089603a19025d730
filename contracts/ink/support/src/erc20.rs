//! ERC-20 calls with OpenZeppelin `SafeERC20` semantics: a reverting token's revert data is
//! bubbled up unchanged; a token that answers anything but `true` (or nothing, from a contract)
//! reverts with `SafeERC20FailedOperation(token)`.

use ink::{
    Address, U256,
    env::call::{ExecutionInput, Selector, build_call_sol},
    sol::FixedBytes,
};

use crate::{
    abi::{self, selector},
    call::{RawReturn, error_data, revert_with},
};

const TRANSFER: [u8; 4] = selector(ink::keccak_256!("transfer(address,uint256)"));
const TRANSFER_FROM: [u8; 4] = selector(ink::keccak_256!("transferFrom(address,address,uint256)"));
const PERMIT: [u8; 4] = selector(ink::keccak_256!(
    "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)"
));
const SAFE_ERC20_FAILED_OPERATION: [u8; 4] =
    selector(ink::keccak_256!("SafeERC20FailedOperation(address)"));

/// `token.transfer(to, amount)`, or revert.
pub fn safe_transfer(token: Address, to: Address, amount: U256) {
    let result = build_call_sol::<ink::env::DefaultEnvironment>()
        .call(token)
        .exec_input(
            ExecutionInput::new(Selector::new(TRANSFER))
                .push_arg(to)
                .push_arg(amount),
        )
        .returns::<RawReturn>()
        .try_invoke();
    check(token, result);
}

/// `token.transferFrom(from, to, amount)`, or revert.
pub fn safe_transfer_from(token: Address, from: Address, to: Address, amount: U256) {
    let result = build_call_sol::<ink::env::DefaultEnvironment>()
        .call(token)
        .exec_input(
            ExecutionInput::new(Selector::new(TRANSFER_FROM))
                .push_arg(from)
                .push_arg(to)
                .push_arg(amount),
        )
        .returns::<RawReturn>()
        .try_invoke();
    check(token, result);
}

/// `token.permit(...)`, ignoring any failure (`try ... catch {}`): a permit front-run by
/// someone else leaves the allowance in place, and the transfer that follows decides.
#[allow(clippy::too_many_arguments)]
pub fn try_permit(
    token: Address,
    owner: Address,
    spender: Address,
    value: U256,
    deadline: U256,
    v: u8,
    r: [u8; 32],
    s: [u8; 32],
) {
    let _ = build_call_sol::<ink::env::DefaultEnvironment>()
        .call(token)
        .exec_input(
            ExecutionInput::new(Selector::new(PERMIT))
                .push_arg(owner)
                .push_arg(spender)
                .push_arg(value)
                .push_arg(deadline)
                .push_arg(v)
                .push_arg(FixedBytes(r))
                .push_arg(FixedBytes(s)),
        )
        .returns::<RawReturn>()
        .try_invoke();
}

fn check(token: Address, result: ink::env::Result<ink::MessageResult<RawReturn>>) {
    let failed = || {
        revert_with(&error_data(
            SAFE_ERC20_FAILED_OPERATION,
            &[abi::address(token)],
        ))
    };
    match result {
        Ok(Ok(RawReturn {
            reverted: true,
            data,
        })) => revert_with(&data),
        Ok(Ok(RawReturn { data, .. })) => {
            let ok = if data.is_empty() {
                ink::env::is_contract(&token)
            } else {
                data.len() >= 32 && data[..32] == abi::small(1)
            };
            if !ok {
                failed()
            }
        }
        _ => failed(),
    }
}
