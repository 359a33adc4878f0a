//! What Accolade's Open Badges documents say, from its own records: an award's unsigned
//! `OpenBadgeCredential`, a template's `Achievement` (with a criteria narrative written from its
//! requirements), the DID document and a status list's unsigned credential.

use std::collections::BTreeMap;

use accolade_domain::template::{Requirement, Template};
use accolade_openbadges::credential::{self, Achievement, Award};
use accolade_openbadges::{did, status_list};
use accolade_store::{ObIssue, ObKey, ObStatusList};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::OpenBadges;

/// The criteria narrative (Markdown) of a template: every group of requirements must be met, one
/// requirement of a group is enough. A template without requirements is awarded by hand.
pub fn criteria(requirements: &[Requirement]) -> String {
    if requirements.is_empty() {
        return "Awarded by the issuer.".into();
    }
    let mut groups: BTreeMap<String, Vec<&Requirement>> = BTreeMap::new();
    for r in requirements {
        groups.entry(r.group.to_string()).or_default().push(r);
    }
    let what = |r: &Requirement| {
        let text = r.description.trim();
        if text.is_empty() {
            format!("`{}`", r.event_type)
        } else {
            text.to_string()
        }
    };
    let mut out = String::from("Earned by meeting all of the following:\n");
    for members in groups.values() {
        if members.len() == 1 {
            out.push_str(&format!("\n- {}", what(members[0])));
        } else {
            let options: Vec<String> = members.iter().map(|r| what(r)).collect();
            out.push_str(&format!("\n- one of: {}", options.join("; ")));
        }
    }
    out
}

/// A template's achievement.
pub fn achievement(
    ob: &OpenBadges,
    template: &Template,
    requirements: &[Requirement],
) -> Achievement {
    Achievement {
        id: ob.achievement_url(&template.id),
        name: template.name.clone(),
        description: if template.description.trim().is_empty() {
            template.name.clone()
        } else {
            template.description.clone()
        },
        // The operator's text when there is one, else written from the requirements.
        criteria: template
            .criteria
            .clone()
            .unwrap_or_else(|| criteria(requirements)),
        image: Some(ob.image_url(&template.id, template.image_url.as_deref())),
        achievement_type: "Badge".into(),
        creator: Some(ob.issuer.clone()),
    }
}

/// The unsigned credential of a claimed award. `salt` is fresh randomness (hex).
pub fn credential(
    ob: &OpenBadges,
    issue: &ObIssue,
    achievement: Achievement,
    salt: String,
) -> Value {
    Award {
        id: format!("urn:uuid:{}", issue.credential_id),
        issuer: ob.issuer.clone(),
        achievement,
        email: issue.learner_email.clone().filter(|e| !e.trim().is_empty()),
        salt,
        name: issue
            .learner_name
            .clone()
            .filter(|n| ob.show_names && !n.trim().is_empty()),
        earned_at: issue.award.earned_at,
        valid_until: issue.award.expires_at,
        status: status_list::entry(&ob.status_list_url(issue.status_list), issue.status_index),
    }
    .unsigned()
}

/// The DID document: every key, oldest first.
pub fn did_document(ob: &OpenBadges, keys: &[ObKey]) -> Value {
    let methods: Vec<did::Method<'_>> = keys
        .iter()
        .map(|k| did::Method {
            id: &k.id,
            public_multibase: &k.public_multibase,
        })
        .collect();
    did::document(&ob.did, &methods)
}

/// A status list's unsigned credential, valid from `now`.
pub fn status_list(ob: &OpenBadges, list: &ObStatusList, now: DateTime<Utc>) -> Value {
    status_list::list_credential(
        &ob.status_list_url(list.id),
        &ob.did,
        &credential::datetime(now),
        &list.bits,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use accolade_domain::template::Group;

    fn req(group: &str, description: &str, event_type: &str) -> Requirement {
        Requirement {
            id: "r".into(),
            template_id: "t".into(),
            key: None,
            event_type: event_type.into(),
            description: description.into(),
            group: Group::parse(group).unwrap(),
            rules: vec![],
        }
    }

    #[test]
    fn criteria_say_all_groups_and_one_of_each() {
        assert_eq!(criteria(&[]), "Awarded by the issuer.");
        let text = criteria(&[
            req("A", "Pass the exam", "x"),
            req("B", "Course A", "y"),
            req("B", "", "org.openedx.z"),
        ]);
        assert_eq!(
            text,
            "Earned by meeting all of the following:\n\n- Pass the exam\n- one of: Course A; `org.openedx.z`"
        );
    }
}
