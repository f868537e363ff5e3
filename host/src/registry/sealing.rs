//! The key that seals device pairing keys in a shared registry: each administrator holds it
//! outside the database (an environment variable or a private file), so a copy of the database
//! alone pairs with nothing.

use super::RegistryError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use facegate_proto::{Key, KEY_LEN};
use rand::RngCore;
use std::path::Path;

/// The registry key as 64 hex digits.
pub const KEY_ENV: &str = "FACEGATE_REGISTRY_KEY";
/// A file holding the registry key as 64 hex digits (readable by its owner only).
pub const KEY_FILE_ENV: &str = "FACEGATE_REGISTRY_KEY_FILE";

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// A sealed pairing key: nonce, ciphertext, tag.
pub(super) const SEALED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;
/// What the check value seals, so a wrong key is refused before it seals anything.
const CHECK: &[u8] = b"facegate registry key check v1";

/// A 256-bit key sealing pairing keys (XChaCha20-Poly1305, the device address as associated
/// data so a sealed key cannot be moved to another device's row).
#[derive(Clone)]
pub struct RegistryKey([u8; 32]);

impl std::fmt::Debug for RegistryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistryKey(<redacted>)")
    }
}

impl RegistryKey {
    pub fn from_bytes(bytes: [u8; 32]) -> RegistryKey {
        RegistryKey(bytes)
    }

    /// A fresh random key.
    pub fn generate() -> RegistryKey {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        RegistryKey(k)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Result<RegistryKey, RegistryError> {
        let bytes = hex::decode(text.trim()).map_err(|_| RegistryError::BadRegistryKey("not hex".into()))?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(RegistryKey)
            .map_err(|_| RegistryError::BadRegistryKey(format!("{} bytes, not 32 (64 hex digits)", bytes.len())))
    }

    /// The key from [`KEY_ENV`], else the file [`KEY_FILE_ENV`] names, else the file `fallback`.
    pub fn from_env(fallback: Option<&Path>) -> Result<RegistryKey, RegistryError> {
        if let Ok(hex) = std::env::var(KEY_ENV) {
            return RegistryKey::from_hex(&hex);
        }
        let file =
            std::env::var_os(KEY_FILE_ENV).map(std::path::PathBuf::from).or_else(|| fallback.map(Path::to_path_buf));
        let Some(file) = file else {
            return Err(RegistryError::NoRegistryKey);
        };
        let text = std::fs::read_to_string(&file).map_err(|error| RegistryError::Io { path: file.clone(), error })?;
        RegistryKey::from_hex(&text)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }

    fn seal_bytes(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, RegistryError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
            .map_err(|_| RegistryError::BadRegistryKey("sealing failed".into()))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    fn open_bytes(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let (nonce, body) = sealed.split_at_checked(NONCE_LEN)?;
        self.cipher().decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad }).ok()
    }

    /// `key` sealed for the device at `addr`.
    pub(super) fn seal(&self, addr: &str, key: &Key) -> Result<Vec<u8>, RegistryError> {
        self.seal_bytes(key, addr.as_bytes())
    }

    /// The pairing key sealed for `addr`; an error if it was sealed with another key or for
    /// another address.
    pub(super) fn open(&self, addr: &str, sealed: &[u8]) -> Result<Key, RegistryError> {
        if sealed.len() != SEALED_LEN {
            return Err(RegistryError::Corrupt(format!(
                "device {addr:?}: sealed pairing key is not {SEALED_LEN} bytes"
            )));
        }
        let plain = self.open_bytes(sealed, addr.as_bytes()).ok_or_else(|| {
            RegistryError::Corrupt(format!("device {addr:?}: its pairing key does not open with the registry key"))
        })?;
        <Key>::try_from(plain.as_slice())
            .map_err(|_| RegistryError::Corrupt(format!("device {addr:?}: pairing key is not {KEY_LEN} bytes")))
    }

    /// The check value stored with the registry.
    pub(super) fn check_value(&self) -> Result<Vec<u8>, RegistryError> {
        self.seal_bytes(CHECK, b"")
    }

    /// Whether this key made `check`.
    pub(super) fn matches(&self, check: &[u8]) -> bool {
        self.open_bytes(check, b"").is_some_and(|p| p == CHECK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_key_and_address() {
        let k = RegistryKey::generate();
        let pairing = [7u8; KEY_LEN];
        let sealed = k.seal("tcp:10.0.0.5:7070", &pairing).expect("seal");
        assert_eq!(sealed.len(), SEALED_LEN);
        assert!(!sealed.windows(KEY_LEN).any(|w| w == pairing), "the key is not in clear");
        assert_eq!(k.open("tcp:10.0.0.5:7070", &sealed).expect("open"), pairing);
        assert!(k.open("tcp:10.0.0.6:7070", &sealed).is_err(), "moved to another device's row");
        assert!(RegistryKey::generate().open("tcp:10.0.0.5:7070", &sealed).is_err(), "another registry key");
        assert!(k.open("tcp:10.0.0.5:7070", &sealed[..10]).is_err(), "truncated");
    }

    #[test]
    fn the_check_value_tells_keys_apart() {
        let k = RegistryKey::generate();
        let check = k.check_value().expect("check");
        assert!(k.matches(&check));
        assert!(!RegistryKey::generate().matches(&check));
        assert_eq!(RegistryKey::from_hex(&k.to_hex()).expect("hex").0, k.0);
        assert!(RegistryKey::from_hex("abcd").is_err());
        assert!(RegistryKey::from_hex("zz").is_err());
    }
}
