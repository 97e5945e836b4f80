//! API keys: `gmf_` followed by 64 hex digits of 32 random bytes (256 bits from the operating
//! system's generator). Only the sha256 of a key is stored; a presented key is hashed and its
//! row looked up by that hash, then the hashes are compared in constant time (`subtle`), so
//! neither the database nor the comparison reveals how much of a guess was right.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every key starts with this.
pub const KEY_PREFIX: &str = "gmf_";

/// How many characters of a key `gmfuse keys list` shows.
pub const SHOWN_CHARS: usize = 12;

/// A new key, its sha256 and its shown prefix.
#[derive(Debug)]
pub struct NewKey {
    /// The secret: print it once, never store it.
    pub secret: String,
    pub sha256: String,
    pub prefix: String,
}

/// Draw a new key.
///
/// # Errors
/// When the operating system has no randomness to give.
pub fn generate() -> Result<NewKey, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let secret = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    Ok(NewKey {
        sha256: hash(&secret),
        prefix: secret[..SHOWN_CHARS].to_string(),
        secret,
    })
}

/// Lower-case hex sha256 of a key.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// True when `key` has the shape of a key (the prefix and 64 lower-case hex digits).
pub fn well_formed(key: &str) -> bool {
    key.strip_prefix(KEY_PREFIX).is_some_and(|rest| {
        rest.len() == 64 && rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Compare two hashes without an early exit.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A tenant name: 1–64 characters of `a-z`, `0-9`, `-`, `_`, `.`.
pub fn valid_tenant(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_well_formed_and_hashes_to_its_stored_hash() {
        let k = generate().unwrap();
        assert!(well_formed(&k.secret), "{}", k.secret);
        assert_eq!(k.secret.len(), 68);
        assert!(same_hash(&hash(&k.secret), &k.sha256));
        assert!(k.secret.starts_with(&k.prefix));
    }

    #[test]
    fn two_keys_differ() {
        assert_ne!(generate().unwrap().secret, generate().unwrap().secret);
    }

    #[test]
    fn malformed_keys_are_told_apart() {
        assert!(!well_formed("gmf_short"));
        assert!(!well_formed(&format!("xyz_{}", "a".repeat(64))));
        assert!(!well_formed(&format!("gmf_{}", "A".repeat(64))));
    }

    #[test]
    fn tenant_names_are_checked() {
        assert!(valid_tenant("team-a"));
        assert!(!valid_tenant("Team A"));
        assert!(!valid_tenant(""));
    }
}
