//! Arithmetic that fails as Solidity's checked arithmetic does (revert `Panic(0x11)`), and
//! OpenZeppelin's `Math.mulDiv`.

use ink::U256;
use primitive_types::U512;

use crate::{abi, call::revert_with};

const PANIC: [u8; 4] = abi::selector(ink::keccak_256!("Panic(uint256)"));

/// Reverts with `Panic(code)`, as Solidity does (0x11: overflow, 0x12: division by zero).
pub fn panic(code: u64) -> ! {
    revert_with(&crate::call::error_data(PANIC, &[abi::small(code)]))
}

/// `a + b`, or `Panic(0x11)`.
pub fn add(a: U256, b: U256) -> U256 {
    a.checked_add(b).unwrap_or_else(|| panic(0x11))
}

/// `a - b`, or `Panic(0x11)`.
pub fn sub(a: U256, b: U256) -> U256 {
    a.checked_sub(b).unwrap_or_else(|| panic(0x11))
}

/// `a * b`, or `Panic(0x11)`.
pub fn mul(a: U256, b: U256) -> U256 {
    a.checked_mul(b).unwrap_or_else(|| panic(0x11))
}

/// `a + b` for `u64` timestamps and counters, or `Panic(0x11)`.
pub fn add64(a: u64, b: u64) -> u64 {
    a.checked_add(b).unwrap_or_else(|| panic(0x11))
}

/// `floor(a * b / c)` with a 512-bit intermediate; `c` is never 0 where it is used, and the
/// result fits because `b <= c`.
pub fn mul_div(a: U256, b: U256, c: U256) -> U256 {
    if c.is_zero() {
        panic(0x12)
    }
    let q: U512 = a.full_mul(b) / U512::from(c);
    U256::try_from(q).unwrap_or_else(|_| panic(0x11))
}
