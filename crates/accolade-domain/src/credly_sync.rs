//! What a Credly template sync or a template webhook does to the stored templates, decided
//! without I/O. Both stores load an organization's templates, ask these planners, and write what
//! the plan says (issue 17: one place for every rule).
//!
//! - A full sync ([`plan_sync`]) gets Credly's *active* templates: new ones are created
//!   (inactive, for an operator to configure), changed ones updated, and this organization's
//!   templates Credly no longer lists are marked [`PROVIDER_STATE_GONE`] and deactivated.
//! - A webhook ([`plan_apply`]) brings one template in any state, `deleted` included, which may
//!   carry only the id.
//! - A template id is global: an id that already belongs to a local template or to another
//!   organization is a conflict for an operator to see ([`Foreign`]), never overwritten.

use std::collections::HashMap;

use crate::template::{Origin, Template};

/// A badge template as Credly describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderTemplate {
    pub id: String,
    pub name: String,
    pub description: String,
    pub image_url: Option<String>,
    /// `draft`, `active`, `archived`, or `deleted` (a `badge_template.deleted` webhook).
    pub state: String,
}

/// Provider state given to templates that dropped out of Credly's active list at a full sync
/// (archived, back to draft or deleted: the active-only listing cannot tell which).
pub const PROVIDER_STATE_GONE: &str = "inactive";

/// The name stored for a provider template: trimmed, or the id when empty (Credly requires
/// names, but an empty one must not break the sync).
pub fn stored_name(p: &ProviderTemplate) -> &str {
    if p.name.trim().is_empty() {
        &p.id
    } else {
        p.name.trim()
    }
}

/// Whether writing `p` would change `t` (compared with the name as stored, or such a template
/// would count as updated at every sync).
pub fn differs(t: &Template, p: &ProviderTemplate) -> bool {
    t.name != stored_name(p)
        || t.description != p.description
        || t.image_url != p.image_url
        || t.provider_state != p.state
}

/// Whether writing `p` over `t` deactivates it: an active template whose provider state is no
/// longer `active` stops awarding.
pub fn deactivates(t: &Template, p: &ProviderTemplate) -> bool {
    t.is_active && p.state != "active"
}

/// A template id that is taken outside this organization's Credly templates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {id} already exists outside Credly organization {organization_id}")]
pub struct Foreign {
    pub id: String,
    pub organization_id: String,
}

/// `existing` (the template with the provider template's id, if any) back when it is one of
/// `org_id`'s Credly templates or there is none; [`Foreign`] otherwise.
pub fn check_foreign(
    existing: Option<Template>,
    org_id: &str,
    id: &str,
) -> Result<Option<Template>, Foreign> {
    match existing {
        Some(t) if t.origin != Origin::Credly || t.organization_id.as_deref() != Some(org_id) => {
            Err(Foreign {
                id: id.to_string(),
                organization_id: org_id.to_string(),
            })
        }
        other => Ok(other),
    }
}

/// One template's part of a full sync.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncStep {
    /// New at Credly: create it, inactive (after checking the id is not [`Foreign`]).
    Create(ProviderTemplate),
    /// Known and changed: write `to` over `current`.
    Update {
        current: Template,
        to: ProviderTemplate,
    },
    /// Known, and no longer in Credly's active list: write `to` (state
    /// [`PROVIDER_STATE_GONE`]) over `current`, which deactivates it.
    Deactivate {
        current: Template,
        to: ProviderTemplate,
    },
}

/// A full sync: the writes, in order, and the counts reported to the operator.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncPlan {
    pub steps: Vec<SyncStep>,
    pub created: u32,
    pub updated: u32,
    pub deactivated: u32,
    pub unchanged: u32,
}

/// Plans a full sync of one organization: `known` are its Credly templates as stored, `active`
/// what Credly lists as active now. Templates that left the list are handled in id order, so
/// concurrent writers lock rows in one order.
pub fn plan_sync(mut known: HashMap<String, Template>, active: Vec<ProviderTemplate>) -> SyncPlan {
    let mut plan = SyncPlan::default();
    for p in active {
        match known.remove(&p.id) {
            None => {
                plan.created += 1;
                plan.steps.push(SyncStep::Create(p));
            }
            Some(t) if differs(&t, &p) => {
                plan.updated += 1;
                plan.steps.push(SyncStep::Update { current: t, to: p });
            }
            Some(_) => plan.unchanged += 1,
        }
    }
    let mut left: Vec<Template> = known.into_values().collect();
    left.sort_by(|a, b| a.id.cmp(&b.id));
    for t in left {
        if t.provider_state == "active" || t.is_active {
            let to = ProviderTemplate {
                id: t.id.clone(),
                name: t.name.clone(),
                description: t.description.clone(),
                image_url: t.image_url.clone(),
                state: if t.provider_state == "active" {
                    PROVIDER_STATE_GONE.to_string()
                } else {
                    t.provider_state.clone()
                },
            };
            plan.deactivated += 1;
            plan.steps.push(SyncStep::Deactivate { current: t, to });
        } else {
            plan.unchanged += 1;
        }
    }
    plan
}

/// What a template webhook does.
#[derive(Debug, Clone, PartialEq)]
pub enum ApplyStep {
    /// A deletion of a template this store never had: nothing to do.
    Missing,
    /// Create it (inactive).
    Create(ProviderTemplate),
    /// Write `to` over `current` (boxed: a template is much larger than the other variants).
    Update {
        current: Box<Template>,
        to: ProviderTemplate,
    },
    /// Already as Credly says.
    Unchanged,
}

/// Plans a template webhook over `existing` (already checked with [`check_foreign`]). A
/// deletion may carry only the id: the stored fields are kept and only the state changes.
pub fn plan_apply(existing: Option<Template>, p: ProviderTemplate) -> ApplyStep {
    match existing {
        None if p.state == "deleted" => ApplyStep::Missing,
        None => ApplyStep::Create(p),
        Some(t) => {
            let to = if p.state == "deleted" {
                ProviderTemplate {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    description: t.description.clone(),
                    image_url: t.image_url.clone(),
                    state: p.state,
                }
            } else {
                p
            };
            if differs(&t, &to) {
                ApplyStep::Update {
                    current: Box::new(t),
                    to,
                }
            } else {
                ApplyStep::Unchanged
            }
        }
    }
}

/// The template as stored after `to` is written over `current` (what both stores do).
pub fn written(current: &Template, to: &ProviderTemplate) -> Template {
    Template {
        name: stored_name(to).to_string(),
        description: to.description.clone(),
        image_url: to.image_url.clone(),
        provider_state: to.state.clone(),
        is_active: current.is_active && !deactivates(current, to),
        ..current.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use proptest::prelude::*;

    const ORG: &str = "org-1";

    fn stored(id: &str, name: &str, state: &str, active: bool) -> Template {
        Template {
            id: id.into(),
            name: name.into(),
            description: "d".into(),
            image_url: None,
            origin: Origin::Credly,
            provider_state: state.into(),
            is_active: active,
            allow_reaward: true,
            organization_id: Some(ORG.into()),
            expires_after: None,
            criteria: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn provider(id: &str, name: &str, state: &str) -> ProviderTemplate {
        ProviderTemplate {
            id: id.into(),
            name: name.into(),
            description: "d".into(),
            image_url: None,
            state: state.into(),
        }
    }

    /// The stored templates after a sync plan is carried out.
    fn carry_out(known: &HashMap<String, Template>, plan: &SyncPlan) -> HashMap<String, Template> {
        let mut after = known.clone();
        for step in &plan.steps {
            match step {
                SyncStep::Create(p) => {
                    let t = Template {
                        is_active: false,
                        ..written(&stored(&p.id, "", "", false), p)
                    };
                    after.insert(p.id.clone(), t);
                }
                SyncStep::Update { current, to } | SyncStep::Deactivate { current, to } => {
                    after.insert(current.id.clone(), written(current, to));
                }
            }
        }
        after
    }

    #[test]
    fn a_sync_creates_updates_deactivates_and_leaves_the_rest() {
        let known: HashMap<_, _> = [
            stored("a", "Same", "active", true),
            stored("b", "Old name", "active", true),
            stored("c", "Gone", "active", true),
            stored("d", "Draft before", "draft", false),
            stored("e", "Gone but configured", "archived", true),
        ]
        .into_iter()
        .map(|t| (t.id.clone(), t))
        .collect();
        let plan = plan_sync(
            known,
            vec![
                provider("a", " Same ", "active"),
                provider("b", "New name", "active"),
                provider("n", "", "active"),
            ],
        );
        assert_eq!(
            (plan.created, plan.updated, plan.deactivated, plan.unchanged),
            (1, 1, 2, 2)
        );
        let kinds: Vec<String> = plan
            .steps
            .iter()
            .map(|s| match s {
                SyncStep::Create(p) => format!("create {}", p.id),
                SyncStep::Update { to, .. } => format!("update {} {}", to.id, to.name),
                SyncStep::Deactivate { to, .. } => format!("deactivate {} {}", to.id, to.state),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "update b New name",
                "create n",
                "deactivate c inactive",
                "deactivate e archived"
            ]
        );
    }

    #[test]
    fn a_nameless_template_is_stored_under_its_id() {
        let p = provider("tpl-9", "  ", "active");
        assert_eq!(stored_name(&p), "tpl-9");
        assert!(!differs(&stored("tpl-9", "tpl-9", "active", false), &p));
    }

    #[test]
    fn ids_of_local_templates_or_other_organizations_are_foreign() {
        let mine = stored("x", "X", "active", true);
        assert_eq!(
            check_foreign(Some(mine.clone()), ORG, "x"),
            Ok(Some(mine.clone()))
        );
        assert_eq!(check_foreign(None, ORG, "x"), Ok(None));
        let local = Template {
            origin: Origin::Local,
            organization_id: None,
            ..mine.clone()
        };
        let err = check_foreign(Some(local), ORG, "x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "template x already exists outside Credly organization org-1"
        );
        let other = Template {
            organization_id: Some("org-2".into()),
            ..mine
        };
        assert!(check_foreign(Some(other), ORG, "x").is_err());
    }

    #[test]
    fn a_webhook_deletion_keeps_the_fields_and_deactivates() {
        let t = stored("x", "Kept", "active", true);
        let step = plan_apply(Some(t.clone()), provider("x", "", "deleted"));
        let ApplyStep::Update { current, to } = step else {
            panic!("{step:?}")
        };
        assert_eq!((to.name.as_str(), to.state.as_str()), ("Kept", "deleted"));
        let after = written(&current, &to);
        assert_eq!((after.name.as_str(), after.is_active), ("Kept", false));
        assert_eq!(
            plan_apply(None, provider("y", "", "deleted")),
            ApplyStep::Missing
        );
        assert_eq!(
            plan_apply(None, provider("y", "Y", "draft")),
            ApplyStep::Create(provider("y", "Y", "draft"))
        );
        assert_eq!(
            plan_apply(Some(t), provider("x", "Kept", "active")),
            ApplyStep::Unchanged
        );
    }

    fn any_template() -> impl Strategy<Value = (String, String, String, bool)> {
        (
            "[a-e]",
            prop_oneof![Just(""), Just("A"), Just(" B "), Just("C")],
            prop_oneof![
                Just("active"),
                Just("draft"),
                Just("archived"),
                Just("inactive")
            ],
            any::<bool>(),
        )
            .prop_map(|(id, n, s, a)| (id, n.to_string(), s.to_string(), a))
    }

    proptest! {
        /// Every template is counted once; a second sync with the same list changes nothing;
        /// afterwards only listed templates are active or in state `active`.
        #[test]
        fn a_sync_counts_everything_once_and_is_idempotent(
            known in proptest::collection::vec(any_template(), 0..6),
            active in proptest::collection::vec(any_template(), 0..6),
        ) {
            let known: HashMap<String, Template> = known
                .into_iter()
                .map(|(id, n, s, a)| (id.clone(), stored(&id, &n, &s, a)))
                .collect();
            // Credly lists each id once, in state active.
            let mut seen = std::collections::HashSet::new();
            let active: Vec<ProviderTemplate> = active
                .into_iter()
                .filter(|(id, ..)| seen.insert(id.clone()))
                .map(|(id, n, _, _)| provider(&id, &n, "active"))
                .collect();
            let plan = plan_sync(known.clone(), active.clone());
            let all_ids: std::collections::HashSet<_> =
                known.keys().chain(active.iter().map(|p| &p.id)).collect();
            prop_assert_eq!(
                (plan.created + plan.updated + plan.deactivated + plan.unchanged) as usize,
                all_ids.len()
            );
            let after = carry_out(&known, &plan);
            let again = plan_sync(after.clone(), active.clone());
            prop_assert!(again.steps.is_empty(), "{:?}", again.steps);
            for t in after.values() {
                if !active.iter().any(|p| p.id == t.id) {
                    prop_assert!(!t.is_active && t.provider_state != "active");
                }
            }
        }
    }
}
