//! State encryption at rest: `state { encryption { key = env("INFRA_STATE_KEY") } }`.
//!
//! Every piece of state a store writes (the snapshot, each journal line, the
//! backup copy, each version kept in PostgreSQL) is sealed whole with
//! AES-256-GCM-SIV (RustCrypto's `aes-gcm-siv`), so an encrypted file shows no
//! address, attribute or output, and any change to it is detected. The key is
//! 32 random bytes in base64 (`openssl rand -base64 32`), never derived from a
//! password. The nonce is derived from the key and the plaintext, so the same
//! state always seals to the same bytes: stores that compare what they wrote
//! (PostgreSQL's versions) keep working, and all that leaks is whether two
//! sealed states are equal.
//!
//! Rotation: set the new key as `key` and the old one as `previous_key`; reading
//! accepts either (the envelope names which by a key id), writing always uses
//! `key`, and `infra state rekey` writes the state again at once.
//!
//! A state written before encryption was turned on is read as it is and sealed
//! at its next write.

use std::borrow::Cow;

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::StateError;

/// What every sealed piece starts with, so it is told from plain JSON at once.
const MARKER: &[u8] = b"{\"infra_encrypted\":";
const CIPHER: &str = "aes-256-gcm-siv";

/// The keys a configuration gives: one to write with, and the one before it.
pub struct Encryption {
    key: StateKey,
    previous: Option<StateKey>,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Encryption {{ key id {} }}", self.key.id)
    }
}

struct StateKey {
    cipher: Aes256GcmSiv,
    /// Names the key in envelopes without revealing it.
    id: String,
    /// Keys the nonce derivation apart from the cipher.
    nonce_secret: [u8; 32],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("`{0}` must be 32 random bytes in base64 (make one with `openssl rand -base64 32`)")]
    NotAKey(&'static str),
    #[error("`key` and `previous_key` are the same key")]
    SameKey,
}

/// The sealed form of one piece of state.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    infra_encrypted: u64,
    cipher: String,
    key_id: String,
    nonce: String,
    data: String,
}

impl StateKey {
    fn parse(setting: &'static str, text: &str) -> Result<StateKey, KeyError> {
        let bytes = BASE64.decode(text.trim()).map_err(|_| KeyError::NotAKey(setting))?;
        let Ok(bytes) = <[u8; 32]>::try_from(bytes.as_slice()) else { return Err(KeyError::NotAKey(setting)) };
        let derive = |purpose: &str| -> [u8; 32] {
            let mut hasher = Sha256::new();
            hasher.update(purpose.as_bytes());
            hasher.update(bytes);
            hasher.finalize().into()
        };
        let cipher = Aes256GcmSiv::new_from_slice(&bytes).map_err(|_| KeyError::NotAKey(setting))?;
        Ok(StateKey {
            cipher,
            id: hex::encode(&derive("infra state key id")[..8]),
            nonce_secret: derive("infra nonce"),
        })
    }

    fn nonce(&self, plain: &[u8]) -> [u8; 12] {
        let mut hasher = Sha256::new();
        hasher.update(self.nonce_secret);
        hasher.update(plain);
        let digest: [u8; 32] = hasher.finalize().into();
        let mut nonce = [0; 12];
        nonce.copy_from_slice(&digest[..12]);
        nonce
    }
}

impl Encryption {
    pub fn new(key: &str, previous_key: Option<&str>) -> Result<Encryption, KeyError> {
        let key = StateKey::parse("key", key)?;
        let previous = previous_key.map(|p| StateKey::parse("previous_key", p)).transpose()?;
        if previous.as_ref().is_some_and(|p| p.id == key.id) {
            return Err(KeyError::SameKey);
        }
        Ok(Encryption { key, previous })
    }

    /// `plain` sealed with `key`, as one line of JSON (no newline inside).
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let nonce = self.key.nonce(plain);
        let data = self
            .key
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: CIPHER.as_bytes() })
            .expect("AES-GCM-SIV seals any message shorter than 64 GiB");
        let envelope = Envelope {
            infra_encrypted: 1,
            cipher: CIPHER.into(),
            key_id: self.key.id.clone(),
            nonce: BASE64.encode(nonce),
            data: BASE64.encode(data),
        };
        serde_json::to_vec(&envelope).expect("an envelope serializes")
    }

    fn open_envelope(&self, what: &str, bytes: &[u8]) -> Result<Vec<u8>, StateError> {
        let fail = |reason: String| StateError::Encryption { path: what.to_string(), reason };
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|e| fail(format!("its encryption envelope is damaged: {e}")))?;
        if envelope.infra_encrypted != 1 || envelope.cipher != CIPHER {
            return Err(fail(format!(
                "it is sealed with {} version {}, unknown here",
                envelope.cipher, envelope.infra_encrypted
            )));
        }
        let key = [Some(&self.key), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == envelope.key_id)
            .ok_or_else(|| {
                fail(format!(
                    "it was encrypted with another key (key id {}); neither `key` nor `previous_key` is that key",
                    envelope.key_id
                ))
            })?;
        let nonce = BASE64.decode(&envelope.nonce).ok().filter(|n| n.len() == 12);
        let data = BASE64.decode(&envelope.data).ok();
        let (Some(nonce), Some(data)) = (nonce, data) else {
            return Err(fail("its encryption envelope is damaged".into()));
        };
        key.cipher
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &data, aad: CIPHER.as_bytes() })
            .map_err(|_| fail("it does not decrypt: it was changed or damaged after it was written".into()))
    }
}

/// True when `bytes` are sealed.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(MARKER)
}

/// Seals `plain` when encryption is configured.
pub fn seal(encryption: Option<&Encryption>, plain: Vec<u8>) -> Vec<u8> {
    match encryption {
        Some(e) => e.seal(&plain),
        None => plain,
    }
}

/// The plain bytes of a piece of state, sealed or not. `what` names it in errors.
pub fn open<'a>(encryption: Option<&Encryption>, what: &str, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, StateError> {
    if !is_sealed(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    match encryption {
        Some(e) => e.open_envelope(what, bytes).map(Cow::Owned),
        None => Err(StateError::Encryption {
            path: what.to_string(),
            reason: "it is encrypted, and this configuration has no `state { encryption { key = ... } }`".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8s=";
    const OTHER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn sealed_state_shows_nothing_and_opens_again() {
        let e = Encryption::new(KEY, None).expect("a key");
        let plain = br#"{"format_version":1,"resources":[{"address":"file.motd","attributes":{"content":"hello"}}]}"#;
        let sealed = e.seal(plain);
        let text = String::from_utf8_lossy(&sealed);
        assert!(is_sealed(&sealed) && !text.contains("motd") && !text.contains("hello"), "{text}");
        assert!(!text.contains('\n'), "one line, so it can be a journal line");
        assert_eq!(open(Some(&e), "s", &sealed).expect("opens").as_ref(), plain);
        assert_eq!(e.seal(plain), sealed, "the same state seals to the same bytes");
        assert_ne!(e.seal(b"other"), sealed);
    }

    #[test]
    fn a_wrong_missing_or_tampered_key_is_an_error_naming_the_file() {
        let sealed = Encryption::new(KEY, None).expect("key").seal(b"{}");
        let other = Encryption::new(OTHER, None).expect("key");
        let wrong = open(Some(&other), "infra.state", &sealed).expect_err("another key").to_string();
        assert!(wrong.starts_with("cannot read state infra.state: it was encrypted with another key"), "{wrong}");
        let missing = open(None, "infra.state", &sealed).expect_err("no key").to_string();
        assert!(missing.contains("it is encrypted, and this configuration has no `state"), "{missing}");

        let mut envelope: serde_json::Value = serde_json::from_slice(&sealed).expect("json");
        let data = envelope["data"].as_str().expect("data").to_string();
        let flipped = if data.starts_with('A') { data.replacen('A', "B", 1) } else { format!("A{}", &data[1..]) };
        envelope["data"] = flipped.into();
        let tampered = serde_json::to_vec(&envelope).expect("json");
        let e = Encryption::new(KEY, None).expect("key");
        let error = open(Some(&e), "infra.state", &tampered).expect_err("tampered").to_string();
        assert!(error.contains("changed or damaged"), "{error}");
    }

    #[test]
    fn rotation_reads_with_either_key_and_writes_with_the_new_one() {
        let old = Encryption::new(OTHER, None).expect("key").seal(b"{\"v\":1}");
        let rotating = Encryption::new(KEY, Some(OTHER)).expect("keys");
        assert_eq!(open(Some(&rotating), "s", &old).expect("previous key opens").as_ref(), b"{\"v\":1}");
        let new = rotating.seal(b"{\"v\":1}");
        let only_new = Encryption::new(KEY, None).expect("key");
        assert!(open(Some(&only_new), "s", &new).is_ok());
        assert!(open(Some(&only_new), "s", &old).is_err(), "the old key is needed for what it sealed");
    }

    #[test]
    fn keys_are_32_random_bytes_and_plain_state_still_reads() {
        assert_eq!(Encryption::new("correct horse battery staple", None).err(), Some(KeyError::NotAKey("key")));
        assert_eq!(Encryption::new(KEY, Some("c2hvcnQ=")).err(), Some(KeyError::NotAKey("previous_key")));
        assert_eq!(Encryption::new(KEY, Some(KEY)).err(), Some(KeyError::SameKey));
        let e = Encryption::new(KEY, None).expect("key");
        assert_eq!(open(Some(&e), "s", b"{\"format_version\":1}").expect("plain").as_ref(), b"{\"format_version\":1}");
    }
}
