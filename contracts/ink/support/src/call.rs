//! Calls whose result is read raw (so a callee's garbage or revert never traps the caller), and
//! reverts with exact revert data.

use ink::{
    abi::Sol,
    env::{ReturnFlags, call::utils::DecodeMessageResult},
    prelude::vec::Vec,
    scale,
};

/// What a called contract returned, undecoded.
pub struct RawReturn {
    /// The callee reverted (its state changes are gone).
    pub reverted: bool,
    /// Its return or revert data.
    pub data: Vec<u8>,
}

impl DecodeMessageResult<Sol> for RawReturn {
    fn decode_output(
        buffer: &[u8],
        did_revert: bool,
    ) -> ink::env::Result<ink::MessageResult<Self>> {
        Ok(Ok(RawReturn {
            reverted: did_revert,
            data: buffer.to_vec(),
        }))
    }
}

/// Bytes written as they are (no SCALE length prefix).
struct Raw<'a>(&'a [u8]);

impl scale::Encode for Raw<'_> {
    fn size_hint(&self) -> usize {
        self.0.len()
    }
    fn encode_to<T: scale::Output + ?Sized>(&self, dest: &mut T) {
        dest.write(self.0)
    }
}

/// Ends the call with a revert carrying exactly `data` (e.g. a callee's revert, bubbled up, or
/// an error encoded by hand). Every state change of the call is undone.
pub fn revert_with(data: &[u8]) -> ! {
    #[cfg(not(feature = "std"))]
    {
        ink::env::return_value(ReturnFlags::REVERT, &Raw(data))
    }
    #[cfg(feature = "std")]
    {
        let _ = (ReturnFlags::REVERT, Raw(data));
        panic!("revert 0x{}", hex(data))
    }
}

#[cfg(feature = "std")]
fn hex(data: &[u8]) -> ink::prelude::string::String {
    data.iter()
        .map(|b| ink::prelude::format!("{b:02x}"))
        .collect()
}

/// `selector ‖ words`: the revert data of a Solidity custom error with static arguments.
pub fn error_data(selector: [u8; 4], words: &[crate::abi::Word]) -> Vec<u8> {
    let mut data = Vec::with_capacity(4 + 32 * words.len());
    data.extend_from_slice(&selector);
    for w in words {
        data.extend_from_slice(w);
    }
    data
}

/// Calls `to` with `input` and returns its answer decoded as `R`. A callee's revert is bubbled
/// up unchanged (as a Solidity external call does); a trap, or an answer that does not decode,
/// reverts with no data.
pub fn call<Args, R>(to: ink::Address, input: ink::env::call::ExecutionInput<Args, Sol>) -> R
where
    Args: ink::env::call::utils::EncodeArgsWith<Sol>,
    R: ink::SolDecode,
{
    let result = ink::env::call::build_call_sol::<ink::env::DefaultEnvironment>()
        .call(to)
        .exec_input(input)
        .returns::<RawReturn>()
        .try_invoke();
    match result {
        Ok(Ok(RawReturn {
            reverted: false,
            data,
        })) => R::decode(&data).unwrap_or_else(|_| revert_with(&[])),
        Ok(Ok(RawReturn { data, .. })) => revert_with(&data),
        _ => revert_with(&[]),
    }
}

/// Calls `to` with exactly `input` (a Solidity `address.call(data)`): `Ok(return data)`, or
/// `Err(revert data)` when the callee reverted, trapped or was refused (re-entry, no code).
/// For test contracts that forward arbitrary calldata.
pub fn raw_call(to: ink::Address, input: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
    #[cfg(not(feature = "std"))]
    {
        use pallet_revive_uapi::{CallFlags, HostFn, HostFnImpl as api};
        let mut buffer = ink::prelude::vec![0u8; 16 * 1024];
        let mut output = &mut buffer[..];
        let result = api::call(
            CallFlags::empty(),
            &to.0,
            u64::MAX,
            u64::MAX,
            &[u8::MAX; 32],
            &[0u8; 32],
            input,
            Some(&mut output),
        );
        let len = output.len();
        buffer.truncate(len);
        match result {
            Ok(()) => Ok(buffer),
            Err(_) => Err(buffer),
        }
    }
    #[cfg(feature = "std")]
    {
        let _ = (to, input);
        unimplemented!("raw calls run on chain only")
    }
}
