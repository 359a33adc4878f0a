//! Identifiers. Ids that are ours and internal get a short type prefix (`req_…`, `pen_…`) so a
//! stray id in a log or URL says what it is; ids that travel to other systems (template and award
//! ids, which appear as UUIDs in Open edX badge events and Credly) stay plain UUIDs.

use uuid::Uuid;

/// A new time-ordered id with the given prefix, e.g. `req_0190b6…`.
pub fn prefixed(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::now_v7().simple())
}

/// A new plain UUID (v7, time ordered) in hyphenated lower-case form.
pub fn uuid() -> String {
    Uuid::now_v7().hyphenated().to_string()
}

pub fn requirement_id() -> String {
    prefixed("req")
}
pub fn penalty_id() -> String {
    prefixed("pen")
}
pub fn job_id() -> String {
    prefixed("job")
}
/// The outbox job that delivers the award (`revoked == false`) or the revocation of award
/// `award_id`. Derived from the award, not random: an award has at most one of each (the primary
/// key says so), and the admin UI finds an award's jobs without an extra index on the job table.
pub fn award_job_id(award_id: &str, revoked: bool) -> String {
    let id =
        Uuid::parse_str(award_id).map_or_else(|_| award_id.to_string(), |u| u.simple().to_string());
    format!("job_{id}_{}", if revoked { "revoke" } else { "issue" })
}
pub fn token_id() -> String {
    prefixed("tok")
}
pub fn webhook_id() -> String {
    prefixed("whk")
}
pub fn webhook_delivery_id() -> String {
    prefixed("whd")
}
pub fn admin_user_id() -> String {
    prefixed("adm")
}

/// True when `s` is a UUID in any of the usual textual forms.
pub fn is_uuid(s: &str) -> bool {
    Uuid::parse_str(s).is_ok()
}

/// The hyphenated lower-case form of a UUID in any form [`is_uuid`] accepts (braced, `urn:uuid:`,
/// without hyphens); anything else lower-cased as it is.
pub fn normalize_uuid(s: &str) -> String {
    Uuid::parse_str(s)
        .map(|u| u.hyphenated().to_string())
        .unwrap_or_else(|_| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn award_jobs_are_named_after_their_award() {
        let award = "0192f1d2-3c4d-7e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(
            award_job_id(award, false),
            "job_0192f1d23c4d7e5f8a9b0c1d2e3f4a5b_issue"
        );
        assert_eq!(
            award_job_id(award, true),
            "job_0192f1d23c4d7e5f8a9b0c1d2e3f4a5b_revoke"
        );
    }

    #[test]
    fn prefixed_ids_are_unique_and_prefixed() {
        let a = requirement_id();
        let b = requirement_id();
        assert!(a.starts_with("req_"));
        assert_ne!(a, b);
        assert!(is_uuid(&uuid()));
        assert!(!is_uuid("req_x"));
    }
}
