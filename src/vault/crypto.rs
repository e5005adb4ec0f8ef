//! The AES256 cipher of Ansible Vault (ansible-core's `VaultAES256`):
//!
//! - PBKDF2-HMAC-SHA256, 10000 iterations, over the password and the salt,
//!   gives 80 bytes: the AES-256 key, the HMAC key, and the 16-byte initial
//!   counter block;
//! - the plaintext, PKCS#7-padded to 16 bytes, is encrypted with AES-256 in
//!   CTR mode (a 128-bit big-endian counter);
//! - HMAC-SHA256 with the second key covers the ciphertext.
//!
//! The MAC is checked in constant time before anything is decrypted.

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, KeyInit, Mac};
use pbkdf2::sha2::Sha256;
use subtle::ConstantTimeEq;

const ITERATIONS: u32 = 10_000;
const KEY_LEN: usize = 32;
const IV_LEN: usize = 16;
const BLOCK: usize = 16;
/// Ansible draws 32 random bytes of salt.
pub const SALT_LEN: usize = 32;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;
type HmacSha256 = Hmac<Sha256>;

/// Why a sealed payload could not be opened. Carries nothing derived from
/// the password or the plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Wrong password, or the salt, MAC or ciphertext were altered.
    Mac,
    /// The MAC matched but the padding is not PKCS#7 (a writer's bug).
    Padding,
}

/// What [`seal`] produces and [`open`] takes: the three parts of the
/// payload, before their hex encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub salt: Vec<u8>,
    pub mac: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

struct Keys {
    cipher: [u8; KEY_LEN],
    mac: [u8; KEY_LEN],
    iv: [u8; IV_LEN],
}

fn derive(password: &[u8], salt: &[u8]) -> Keys {
    let mut out = [0u8; 2 * KEY_LEN + IV_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, ITERATIONS, &mut out);
    let mut keys = Keys {
        cipher: [0; KEY_LEN],
        mac: [0; KEY_LEN],
        iv: [0; IV_LEN],
    };
    keys.cipher.copy_from_slice(&out[..KEY_LEN]);
    keys.mac.copy_from_slice(&out[KEY_LEN..2 * KEY_LEN]);
    keys.iv.copy_from_slice(&out[2 * KEY_LEN..]);
    out.fill(0);
    keys
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.cipher.fill(0);
        self.mac.fill(0);
        self.iv.fill(0);
    }
}

fn mac_of(key: &[u8; KEY_LEN], ciphertext: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length: a 32-byte key cannot be refused.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(ciphertext);
    mac
}

fn apply_ctr(keys: &Keys, data: &mut [u8]) {
    let mut cipher = Aes256Ctr::new(&keys.cipher.into(), &keys.iv.into());
    cipher.apply_keystream(data);
}

/// Encrypts `plaintext` under `password` with the given salt.
pub fn seal(password: &[u8], salt: &[u8], plaintext: &[u8]) -> Sealed {
    let keys = derive(password, salt);
    let pad = BLOCK - plaintext.len() % BLOCK;
    let mut data = Vec::with_capacity(plaintext.len() + pad);
    data.extend_from_slice(plaintext);
    data.resize(plaintext.len() + pad, pad as u8);
    apply_ctr(&keys, &mut data);
    let mac = mac_of(&keys.mac, &data).finalize().into_bytes().to_vec();
    Sealed {
        salt: salt.to_vec(),
        mac,
        ciphertext: data,
    }
}

/// Checks the MAC (in constant time), then decrypts and unpads.
pub fn open(password: &[u8], sealed: &Sealed) -> Result<Vec<u8>, OpenError> {
    let keys = derive(password, &sealed.salt);
    let expected = mac_of(&keys.mac, &sealed.ciphertext)
        .finalize()
        .into_bytes();
    if !bool::from(expected.as_slice().ct_eq(&sealed.mac)) {
        return Err(OpenError::Mac);
    }
    let mut data = sealed.ciphertext.clone();
    apply_ctr(&keys, &mut data);
    let pad = data.last().copied().map_or(0, usize::from);
    let valid = data.len().is_multiple_of(BLOCK)
        && (1..=BLOCK).contains(&pad)
        && data[data.len() - pad..]
            .iter()
            .all(|&b| usize::from(b) == pad);
    if !valid {
        data.fill(0);
        return Err(OpenError::Padding);
    }
    data.truncate(data.len() - pad);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_sha256_matches_rfc7914_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256("passwd", "salt", 1, 64).
        let mut out = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"passwd", b"salt", 1, &mut out);
        assert_eq!(
            hex::encode(out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
             49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
        );
    }

    #[test]
    fn aes256_ctr_matches_nist_sp800_38a_vector() {
        // NIST SP 800-38A F.5.5, CTR-AES256.Encrypt, first block.
        let keys = Keys {
            cipher: hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
                .unwrap()
                .try_into()
                .unwrap(),
            mac: [0; KEY_LEN],
            iv: hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
                .unwrap()
                .try_into()
                .unwrap(),
        };
        let mut data =
            hex::decode("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
                .unwrap();
        apply_ctr(&keys, &mut data);
        // The second block's counter is ...feff + 1 = ...ff00: a carry out of
        // the last byte, big-endian.
        assert_eq!(
            hex::encode(data),
            "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
        );
    }

    #[test]
    fn round_trip_pads_every_length() {
        for len in [0usize, 1, 15, 16, 17, 100] {
            let plain = vec![b'x'; len];
            let sealed = seal(b"pw", &[7; SALT_LEN], &plain);
            assert_eq!(sealed.ciphertext.len(), (len / BLOCK + 1) * BLOCK);
            assert_eq!(open(b"pw", &sealed).unwrap(), plain);
        }
    }

    #[test]
    fn wrong_password_and_tampering_fail_the_mac() {
        let sealed = seal(b"right", &[1; SALT_LEN], b"secret: value\n");
        assert_eq!(open(b"wrong", &sealed), Err(OpenError::Mac));
        for field in 0..3 {
            let mut bad = sealed.clone();
            let bytes = match field {
                0 => &mut bad.salt,
                1 => &mut bad.mac,
                _ => &mut bad.ciphertext,
            };
            bytes[0] ^= 1;
            assert_eq!(open(b"right", &bad), Err(OpenError::Mac), "field {field}");
        }
    }
}
