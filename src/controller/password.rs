//! The login password as the status may know it: a salted digest, never the password.
//!
//! The operator never watches Secrets (its RBAC is `get` by name), so it cannot be told that
//! a password changed; it reads the Secret again and compares this digest with the one it
//! recorded (`status.passwordHash`). HMAC-SHA256 keyed by the resource's UID: the same
//! password gives different digests in different resources, so equal digests never tell
//! that two machines share a password, and no table of precomputed digests applies.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tencent_cloud::credentials::SecretString;

/// The digest of `password` for the resource with `uid`, in hex.
pub fn digest(uid: &str, password: &SecretString) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(uid.as_bytes()).expect("HMAC takes any key");
    mac.update(password.expose().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_depends_on_the_password_and_the_resource_and_hides_the_password() {
        let password = SecretString::new("Pw-for-e2e-9f3k!");
        let mine = digest("uid-1", &password);
        assert_eq!(
            mine,
            digest("uid-1", &SecretString::new("Pw-for-e2e-9f3k!"))
        );
        assert_ne!(mine, digest("uid-2", &password), "salted by the resource");
        assert_ne!(
            mine,
            digest("uid-1", &SecretString::new("Pw-for-e2e-9f3k?"))
        );
        assert_eq!(mine.len(), 64);
        assert!(!mine.contains("Pw-for"));
    }
}
