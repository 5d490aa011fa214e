//! Where the app keeps its secrets (the device token, each site's session
//! token): the OS keychain through `keyring` (Windows Credential Manager,
//! macOS Keychain, the Secret Service of a Linux desktop). Where no keychain
//! answers (a bare Linux session, a CI machine), an encrypted file.
//!
//! The file's key is derived from this machine's ID and the user, with a
//! random salt kept beside it: a copied profile folder does not open on
//! another machine or account. It does not stop a program running as the
//! same user on the same machine — only a keychain does that, which is why
//! the keychain comes first and the home screen says which one is in use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, rand_core::RngCore};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use nexmile_client::profiles::{SecretStore, create_private_dir, write_private};
use sha2::Sha256;

/// The keychain's service name for every Nexmile secret.
const SERVICE: &str = "jp.nexmile.desktop";

pub struct Keychain;

impl Keychain {
    fn entry(name: &str) -> Result<keyring::Entry, String> {
        keyring::Entry::new(SERVICE, name).map_err(|e| e.to_string())
    }

    /// Whether a keychain answers here (an absent entry is an answer).
    fn answers() -> bool {
        matches!(
            Self::entry("probe").map(|e| e.get_password()),
            Ok(Ok(_) | Err(keyring::Error::NoEntry))
        )
    }
}

impl SecretStore for Keychain {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        match Self::entry(name)?.get_password() {
            Ok(value) => Ok(Some(value)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn set(&self, name: &str, value: &str) -> Result<(), String> {
        Self::entry(name)?
            .set_password(value)
            .map_err(|e| e.to_string())
    }

    fn delete(&self, name: &str) -> Result<(), String> {
        match Self::entry(name)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// All secrets in one file: a 12-byte nonce, then the ChaCha20-Poly1305
/// sealed JSON map of name → value. Rewritten whole on every change.
pub struct EncryptedFile {
    path: PathBuf,
    cipher: ChaCha20Poly1305,
    lock: Mutex<()>,
}

fn machine_id() -> String {
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|id| id.trim().to_owned())
        .unwrap_or_default()
}

fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_default()
}

impl EncryptedFile {
    /// The file under `dir`, keyed to `machine` and `user`.
    pub fn open(dir: &Path, machine: &str, user: &str) -> Result<Self, String> {
        // Owner-only: the key derives from the salt and facts other local
        // accounts can read (security review M9).
        create_private_dir(dir).map_err(|e| e.to_string())?;
        let salt_path = dir.join("secrets.salt");
        let salt = match std::fs::read(&salt_path) {
            Ok(salt) if salt.len() == 16 => salt,
            _ => {
                let mut salt = vec![0u8; 16];
                OsRng.fill_bytes(&mut salt);
                write_private(&salt_path, &salt).map_err(|e| e.to_string())?;
                salt
            }
        };
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(Some(&salt), format!("{machine}\0{user}").as_bytes())
            .expand(b"nexmile secrets v1", &mut key)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            path: dir.join("secrets.enc"),
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            lock: Mutex::new(()),
        })
    }

    fn read(&self) -> Result<BTreeMap<String, String>, String> {
        let sealed = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(e.to_string()),
        };
        if sealed.len() < 12 {
            return Err(format!("{} is damaged", self.path.display()));
        }
        let (nonce, body) = sealed.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| {
                format!(
                    "{} cannot be opened on this machine or account (or is damaged)",
                    self.path.display()
                )
            })?;
        serde_json::from_slice(&plain).map_err(|e| e.to_string())
    }

    fn write(&self, secrets: &BTreeMap<String, String>) -> Result<(), String> {
        let plain = serde_json::to_vec(secrets).map_err(|e| e.to_string())?;
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut sealed = nonce.to_vec();
        sealed.extend(
            self.cipher
                .encrypt(&nonce, plain.as_slice())
                .map_err(|e| e.to_string())?,
        );
        write_private(&self.path, &sealed).map_err(|e| e.to_string())
    }
}

impl SecretStore for EncryptedFile {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        let _held = self.lock.lock().map_err(|e| e.to_string())?;
        Ok(self.read()?.get(name).cloned())
    }

    fn set(&self, name: &str, value: &str) -> Result<(), String> {
        let _held = self.lock.lock().map_err(|e| e.to_string())?;
        let mut secrets = self.read()?;
        secrets.insert(name.to_owned(), value.to_owned());
        self.write(&secrets)
    }

    fn delete(&self, name: &str) -> Result<(), String> {
        let _held = self.lock.lock().map_err(|e| e.to_string())?;
        let mut secrets = self.read()?;
        if secrets.remove(name).is_some() {
            self.write(&secrets)?;
        }
        Ok(())
    }
}

/// Which store holds the secrets, for the log and the home screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SecretsKind {
    Keychain,
    EncryptedFile,
}

/// The keychain where one answers, the encrypted file under `dir` otherwise.
/// `NEXMILE_SECRETS=file` chooses the file (tests keep off the user's keychain).
pub fn open(dir: &Path) -> Result<(Box<dyn SecretStore>, SecretsKind), String> {
    let file_only = std::env::var("NEXMILE_SECRETS").as_deref() == Ok("file");
    if !file_only && Keychain::answers() {
        return Ok((Box::new(Keychain), SecretsKind::Keychain));
    }
    let file = EncryptedFile::open(dir, &machine_id(), &user())?;
    Ok((Box::new(file), SecretsKind::EncryptedFile))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encrypted_file_keeps_secrets_sealed_and_only_for_its_machine() {
        let dir = std::env::temp_dir().join(format!("nexmile-secrets-{}", std::process::id()));
        let store = EncryptedFile::open(&dir, "machine-a", "hanako").unwrap();
        assert_eq!(store.get("newsite1/session-token").unwrap(), None);
        store.set("newsite1/session-token", "s3cr3t-token").unwrap();
        store.set("device-token", "106f7a7d").unwrap();
        assert_eq!(
            store.get("newsite1/session-token").unwrap().as_deref(),
            Some("s3cr3t-token")
        );
        let on_disk = std::fs::read(dir.join("secrets.enc")).unwrap();
        // M9: nobody but the owner can read the salt or the file, or list the folder.
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("secrets.salt")), 0o600);
        assert_eq!(mode(&dir.join("secrets.enc")), 0o600);
        assert!(
            !on_disk.windows(12).any(|w| w == b"s3cr3t-token"),
            "the file holds no plain text"
        );
        // The same file reopened here opens; on another machine it does not.
        let again = EncryptedFile::open(&dir, "machine-a", "hanako").unwrap();
        assert_eq!(
            again.get("device-token").unwrap().as_deref(),
            Some("106f7a7d")
        );
        let elsewhere = EncryptedFile::open(&dir, "machine-b", "hanako").unwrap();
        let refused = elsewhere.get("device-token").unwrap_err();
        assert!(refused.contains("cannot be opened"), "{refused}");
        // A damaged file is an error, not an empty store that would lose the rest.
        let mut damaged = on_disk.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        std::fs::write(dir.join("secrets.enc"), damaged).unwrap();
        assert!(again.get("device-token").is_err());
        std::fs::write(dir.join("secrets.enc"), on_disk).unwrap();
        again.delete("newsite1/session-token").unwrap();
        assert_eq!(again.get("newsite1/session-token").unwrap(), None);
        assert_eq!(
            again.get("device-token").unwrap().as_deref(),
            Some("106f7a7d")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
