//! Passwords of admin accounts and Open Credit members: argon2id hashes in PHC form. Verifying
//! against a fixed dummy hash when the account does not exist keeps "unknown user" and "wrong
//! password" equally slow.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;

use crate::service::blocking::{workers_for, Budget};

/// Shortest password `accolade admin create-user` accepts.
pub const MIN_LENGTH: usize = 12;

/// Hashes a new password (argon2id, the crate's default parameters, a random 16-byte salt).
pub fn hash(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// True when `password` matches the PHC `hash` (false for a malformed hash).
pub fn verify(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification (for logins naming an unknown account).
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("not a real password").unwrap_or_default());
    let _ = verify(password, dummy);
}

/// Most sign-in verifications that wait for a slot before the rest are refused as busy.
const MAX_WAITING: usize = 64;

/// Verifications run at once: argon2 takes a core for tens of milliseconds (more in debug
/// builds), so on the async runtime a burst of sign-ins stalls every other request. They run on
/// the blocking pool instead, at most one core's worth less than the machine has, so requests
/// keep a core to themselves. A sign-in whose request ends while it waits gives its place back
/// (the budget counts waiting callers with a drop guard).
fn budget() -> &'static Budget {
    static BUDGET: OnceLock<Budget> = OnceLock::new();
    BUDGET.get_or_init(|| Budget::new("sign_in", workers_for(0), MAX_WAITING))
}

/// Why a sign-in could not be checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

/// [`verify`] (or, with no hash, [`verify_dummy`]) off the async runtime within the sign-in
/// budget; `Err(Busy)` when too many sign-ins already wait, so a flood costs bounded work.
pub async fn verify_off_runtime(password: &str, hash: Option<&str>) -> Result<bool, Busy> {
    let password = password.to_string();
    let hash = hash.map(str::to_string);
    budget()
        .run(move |_| match hash {
            Some(h) => verify(&password, &h),
            None => {
                verify_dummy(&password);
                false
            }
        })
        .await
        .map_err(|_| Busy)
}

/// Why a new password is refused, if it is.
pub fn check_strength(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_LENGTH {
        return Err(format!(
            "the password must have at least {MIN_LENGTH} characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("correct horse battery", "not a phc string"));
        // Salted: the same password hashes differently.
        assert_ne!(h, hash("correct horse battery").unwrap());
    }

    /// Sign-ins whose requests ended while they waited for a turn (408, client gone) once kept
    /// counting as waiting: after 64 of them every sign-in was refused as busy until a restart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sign_ins_dropped_while_waiting_give_their_place_back() {
        let h = hash("correct horse battery").unwrap();
        for _ in 0..3 {
            let dropped: Vec<_> = (0..MAX_WAITING + 8)
                .map(|_| {
                    let h = h.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(
                            std::time::Duration::from_millis(1),
                            verify_off_runtime("wrong", Some(&h)),
                        )
                        .await;
                    })
                })
                .collect();
            for d in dropped {
                d.await.unwrap();
            }
        }
        assert_eq!(
            verify_off_runtime("correct horse battery", Some(&h)).await,
            Ok(true)
        );
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_strength("short").is_err());
        assert!(check_strength("long enough pw").is_ok());
    }
}
