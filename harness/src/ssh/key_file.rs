//! Private key files: whether one is encrypted, and its passphrase.
//!
//! A passphrase comes from `FAULTLINE_SSH_PASSPHRASE`, or, when faultline
//! runs on a terminal, from a prompt on it (asked once per key file per
//! process, however many hosts use the key: the hosts are reached in
//! parallel, so the prompt is serialized and its answer kept). Without
//! either, an encrypted key is skipped with a message saying how to open
//! it (the agent, the variable, a terminal). CI has no terminal, so it
//! never waits on a prompt.

use base64::Engine;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The variable a passphrase may come from.
pub const PASSPHRASE_ENV: &str = "FAULTLINE_SSH_PASSPHRASE";

/// Whether the key file's text is an encrypted private key: an OpenSSH key
/// whose cipher is not `none`, a legacy PEM key with `Proc-Type:
/// 4,ENCRYPTED`, or an encrypted PKCS#8 key. Unreadable text counts as not
/// encrypted (libssh2 then says what is wrong with it).
pub fn is_encrypted(text: &str) -> bool {
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return true;
    }
    let Some(body) = between(
        text,
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "-----END OPENSSH PRIVATE KEY-----",
    ) else {
        return false;
    };
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64) else {
        return false;
    };
    openssh_cipher(&bytes).is_some_and(|cipher| cipher != b"none")
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// The cipher name of an `openssh-key-v1` blob.
fn openssh_cipher(bytes: &[u8]) -> Option<&[u8]> {
    const MAGIC: &[u8] = b"openssh-key-v1\0";
    let rest = bytes.strip_prefix(MAGIC)?;
    let len_bytes: [u8; 4] = rest.get(..4)?.try_into().ok()?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    rest.get(4..4usize.checked_add(len)?)
}

static PASSPHRASES: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);

/// The passphrase for `path`: from [`PASSPHRASE_ENV`], else asked on the
/// terminal (once per file), else `None`.
pub fn passphrase_for(path: &Path) -> Option<String> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Some(p);
    }
    let mut cache = PASSPHRASES.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(p) = cache.get(path) {
        return Some(p.clone());
    }
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let answer =
        rpassword::prompt_password(format!("Enter passphrase for key '{}': ", path.display()))
            .ok()?;
    cache.insert(path.to_path_buf(), answer.clone());
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keygen(
        dir: &Path,
        name: &str,
        kind: &str,
        passphrase: &str,
        extra: &[&str],
    ) -> Option<String> {
        let path = dir.join(name);
        let ok = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", passphrase, "-f"])
            .arg(&path)
            .args(extra)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| std::fs::read_to_string(&path).expect("key written"))
    }

    #[test]
    fn tells_encrypted_keys_from_plain_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(plain) = keygen(dir.path(), "plain", "ed25519", "", &[]) else {
            crate::errln!("SKIPPED: no ssh-keygen");
            return;
        };
        assert!(!is_encrypted(&plain));
        let locked = keygen(dir.path(), "locked", "ed25519", "s3cret", &[]).expect("keygen");
        assert!(is_encrypted(&locked));
        let ecdsa = keygen(dir.path(), "ecdsa", "ecdsa", "s3cret", &[]).expect("keygen");
        assert!(is_encrypted(&ecdsa));
        // Legacy PEM, as older ssh-keygen wrote by default.
        let pem = keygen(
            dir.path(),
            "pem",
            "rsa",
            "s3cret",
            &["-m", "PEM", "-b", "2048"],
        )
        .expect("keygen");
        assert!(pem.contains("Proc-Type: 4,ENCRYPTED"), "{pem}");
        assert!(is_encrypted(&pem));
        let pem_plain = keygen(
            dir.path(),
            "pem-plain",
            "rsa",
            "",
            &["-m", "PEM", "-b", "2048"],
        )
        .expect("keygen");
        assert!(!is_encrypted(&pem_plain));
        // Garbage is not called encrypted (libssh2 reports it as it is).
        for junk in [
            "",
            "not a key",
            "-----BEGIN OPENSSH PRIVATE KEY-----\n!!\n-----END OPENSSH PRIVATE KEY-----",
        ] {
            assert!(!is_encrypted(junk), "{junk:?}");
        }
    }

    #[test]
    fn truncated_openssh_blobs_are_not_read_past_their_end() {
        assert_eq!(openssh_cipher(b"openssh-key-v1\0"), None);
        assert_eq!(openssh_cipher(b"openssh-key-v1\0\0\0\0\x09none"), None);
        assert_eq!(openssh_cipher(b"openssh-key-v1\0\xff\xff\xff\xffx"), None);
        assert_eq!(
            openssh_cipher(b"openssh-key-v1\0\0\0\0\x04none"),
            Some(&b"none"[..])
        );
    }
}
