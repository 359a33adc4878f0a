//! Wire types of the JSON API (what clients send and receive), kept apart from domain types so
//! the public format changes only on purpose. Every type derives `ToSchema` for the OpenAPI
//! document.

use accolade_domain::award::Award;
use accolade_domain::outbox::Job;
use accolade_domain::rules::DataRule;
use accolade_domain::template::{Penalty, Requirement, Template, TemplateConfig};
use accolade_store::{Paged, RejectedEvent, StoredEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::{IntoParams, ToSchema};

use accolade_domain::template::NAME_PATTERN;

use crate::error::ApiError;

/// A list page: `data` plus the offset of the next page (null on the last one).
#[derive(Debug, Serialize, ToSchema)]
pub struct ListBody<T> {
    pub data: Vec<T>,
    pub next_offset: Option<u64>,
}

impl<T> ListBody<T> {
    pub fn from_page<U>(page: Paged<U>, f: impl FnMut(U) -> T) -> Self {
        ListBody {
            data: page.items.into_iter().map(f).collect(),
            next_offset: page.next_offset,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Rows to skip (use `next_offset` of the previous page).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    pub offset: Option<u64>,
}

impl PageQuery {
    pub fn page(&self) -> Result<accolade_store::Page, ApiError> {
        page(self.limit, self.offset)
    }
}

/// Largest `offset`: the databases hold it as a signed 64-bit number.
pub const MAX_OFFSET: u64 = i64::MAX as u64;

/// The page a list asks for: `limit` 1-500 (default 50) and `offset` up to [`MAX_OFFSET`], as
/// the OpenAPI document declares; anything else is `invalid_query`. Every list's query has these
/// two fields, each with the same `#[param]` bounds as [`PageQuery`].
pub fn page(limit: Option<u32>, offset: Option<u64>) -> Result<accolade_store::Page, ApiError> {
    let max = accolade_store::Page::MAX_LIMIT;
    if let Some(l) = limit.filter(|l| !(1..=max).contains(l)) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be 1-{max}, got {l}"),
        ));
    }
    if let Some(o) = offset.filter(|o| *o > MAX_OFFSET) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("offset must be at most {MAX_OFFSET}, got {o}"),
        ));
    }
    Ok(accolade_store::Page::new(limit, offset))
}

/// A string schema that accepts only `values` (for `schema_with`); `nullable` also admits `null`
/// (an absent optional body field may be sent as null).
pub fn one_of_strings(values: &[&str], nullable: bool, description: &str) -> Object {
    let ty = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::new(Type::String)
    };
    let mut values: Vec<serde_json::Value> = values.iter().map(|v| (*v).into()).collect();
    if nullable {
        values.push(serde_json::Value::Null);
    }
    ObjectBuilder::new()
        .schema_type(ty)
        .enum_values(Some(values))
        .description(Some(description))
        .build()
}

/// A string schema of `min..=max` characters matching `pattern` (for `schema_with`).
pub fn text(min: usize, max: usize, pattern: &str, nullable: bool, description: &str) -> Object {
    let ty = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::new(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(ty)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .description(Some(description))
        .build()
}

const NAME_DOC: &str = "1-255 characters, not blank, no control characters.";

fn template_name() -> Object {
    text(1, 255, NAME_PATTERN, false, NAME_DOC)
}

fn template_name_or_null() -> Object {
    text(1, 255, NAME_PATTERN, true, NAME_DOC)
}

const EXPIRES_AFTER_DOC: &str =
    "How long an award stays valid after it was earned: a whole number \
     (1-999999, no leading zero) and one unit, `s` seconds, `m` minutes, `h` hours or `d` days, \
     e.g. `365d`, `90d`, `12h`; null: awards never expire. An award's `expires_at` is fixed when \
     it is made, so a change applies to later awards only. Anything else is refused with \
     `invalid_expires_after`.";

fn expires_after() -> Object {
    text(
        2,
        7,
        accolade_domain::expiry::EXPIRES_AFTER_PATTERN,
        true,
        EXPIRES_AFTER_DOC,
    )
}

/// The criteria text: Markdown, at most 10,000 characters, or null.
fn criteria() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(accolade_domain::expiry::MAX_CRITERIA_CHARS))
        .description(Some(
            "Operator-written criteria (Markdown, at most 10,000 characters) for the Open \
             Badges achievement's `criteria.narrative`; null or blank: the narrative is written \
             from the requirements. Longer texts are refused with `invalid_criteria`.",
        ))
        .build()
}

/// For fields of a partial update that can be cleared: absent stays `None` (unchanged, with
/// `#[serde(default)]`), `null` is `Some(None)` (clear), a value `Some(Some(v))`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn local_origin() -> Object {
    one_of_strings(
        &["local"],
        true,
        "Only `local` can be created here; Credly templates come from sync (`credly` is refused \
         with `origin_not_creatable`).",
    )
}

/// Every spelling `Operator::parse` accepts.
fn operator() -> Object {
    one_of_strings(
        &[
            "=",
            "==",
            "eq",
            "!=",
            "ne",
            "in",
            "not_in",
            "exists",
            "not_exists",
            "<",
            "lt",
            "<=",
            "le",
            ">",
            "gt",
            ">=",
            "ge",
        ],
        false,
        "Comparison; `in`/`not_in` take a comma list, `<` `<=` `>` `>=` a number.",
    )
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    /// Dot path into the event payload, e.g. `course.course_key`.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
    )]
    pub path: String,
    #[schema(schema_with = operator)]
    pub op: String,
    /// Expected value (comma list for `in`/`not_in`; unused by `exists`/`not_exists`).
    #[serde(default)]
    pub value: String,
}

impl RuleBody {
    pub fn to_rule(&self) -> Result<DataRule, ApiError> {
        // The path as sent (`DataRule::new` would trim it), as the document's pattern says.
        accolade_domain::rules::validate_path(&self.path)?;
        Ok(DataRule::new(&self.path, &self.op, &self.value)?)
    }
    pub fn from_rule(r: &DataRule) -> Self {
        RuleBody {
            path: r.path.clone(),
            op: r.operator.as_str().to_string(),
            value: r.value.clone(),
        }
    }
}

pub fn rules_from(bodies: &[RuleBody]) -> Result<Vec<DataRule>, ApiError> {
    bodies.iter().map(RuleBody::to_rule).collect()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateBody {
    pub id: String,
    pub name: String,
    pub description: String,
    pub image_url: Option<String>,
    /// `local` or `credly`.
    pub origin: String,
    pub provider_state: String,
    pub is_active: bool,
    pub allow_reaward: bool,
    pub organization_id: Option<String>,
    /// How long an award stays valid (`365d`, `12h`, …); null: awards never expire.
    #[schema(schema_with = expires_after)]
    pub expires_after: Option<String>,
    /// Operator-written criteria (Markdown) of the Open Badges achievement; null: written from
    /// the requirements.
    #[schema(schema_with = criteria)]
    pub criteria: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Template> for TemplateBody {
    fn from(t: Template) -> Self {
        TemplateBody {
            id: t.id,
            name: t.name,
            description: t.description,
            image_url: t.image_url,
            origin: t.origin.as_str().to_string(),
            provider_state: t.provider_state,
            is_active: t.is_active,
            allow_reaward: t.allow_reaward,
            organization_id: t.organization_id,
            expires_after: t.expires_after.map(|e| e.to_string()),
            criteria: t.criteria,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateDetailBody {
    #[serde(flatten)]
    pub template: TemplateBody,
    pub requirements: Vec<RequirementBody>,
    pub penalties: Vec<PenaltyBody>,
}

impl From<TemplateConfig> for TemplateDetailBody {
    fn from(c: TemplateConfig) -> Self {
        TemplateDetailBody {
            template: c.template.into(),
            requirements: c.requirements.into_iter().map(Into::into).collect(),
            penalties: c.penalties.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplate {
    /// Optional UUID; generated when absent.
    #[schema(format = "uuid")]
    pub uuid: Option<String>,
    #[schema(schema_with = template_name)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub image_url: Option<String>,
    #[schema(schema_with = local_origin)]
    pub origin: Option<String>,
    #[serde(default)]
    pub active: bool,
    pub allow_reaward: Option<bool>,
    #[schema(schema_with = expires_after)]
    pub expires_after: Option<String>,
    #[schema(schema_with = criteria)]
    pub criteria: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTemplate {
    #[schema(schema_with = template_name_or_null)]
    pub name: Option<String>,
    pub description: Option<String>,
    pub image_url: Option<String>,
    pub allow_reaward: Option<bool>,
    /// Absent: unchanged; null: awards made from now on never expire.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = expires_after)]
    pub expires_after: Option<Option<String>>,
    /// Absent: unchanged; null or blank: the narrative is written from the requirements.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = criteria)]
    pub criteria: Option<Option<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequirementBody {
    pub id: String,
    pub template: String,
    pub key: Option<String>,
    pub event_type: String,
    pub description: String,
    pub group: String,
    pub rules: Vec<RuleBody>,
}

impl From<Requirement> for RequirementBody {
    fn from(r: Requirement) -> Self {
        RequirementBody {
            id: r.id,
            template: r.template_id,
            key: r.key,
            event_type: r.event_type,
            description: r.description,
            group: r.group.to_string(),
            rules: r.rules.iter().map(RuleBody::from_rule).collect(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequirement {
    /// One of the configured `events.types` (else `event_type_not_configured`).
    #[schema(max_length = 255, pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")]
    pub event_type: String,
    /// Letter A-Z; the next free letter when absent.
    #[schema(pattern = "^[A-Z]$")]
    pub group: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub rules: Vec<RuleBody>,
    pub key: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequirement {
    /// One of the configured `events.types` (else `event_type_not_configured`).
    #[schema(max_length = 255, pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")]
    pub event_type: Option<String>,
    #[schema(pattern = "^[A-Z]$")]
    pub group: Option<String>,
    pub description: Option<String>,
    pub rules: Option<Vec<RuleBody>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PenaltyBody {
    pub id: String,
    pub template: String,
    pub key: Option<String>,
    pub event_type: String,
    pub description: String,
    pub rules: Vec<RuleBody>,
    pub requirements: Vec<String>,
}

impl From<Penalty> for PenaltyBody {
    fn from(p: Penalty) -> Self {
        PenaltyBody {
            id: p.id,
            template: p.template_id,
            key: p.key,
            event_type: p.event_type,
            description: p.description,
            rules: p.rules.iter().map(RuleBody::from_rule).collect(),
            requirements: p.requirement_ids,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePenalty {
    /// One of the configured `events.types` (else `event_type_not_configured`).
    #[schema(max_length = 255, pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")]
    pub event_type: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub rules: Vec<RuleBody>,
    /// Ids of the requirements this penalty resets (at least one, of this template).
    #[schema(min_items = 1)]
    pub requirements: Vec<String>,
    pub key: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePenalty {
    /// One of the configured `events.types` (else `event_type_not_configured`).
    #[schema(max_length = 255, pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")]
    pub event_type: Option<String>,
    pub description: Option<String>,
    pub rules: Option<Vec<RuleBody>>,
    #[schema(min_items = 1)]
    pub requirements: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AwardBody {
    pub id: String,
    pub template: String,
    pub learner: String,
    pub episode: i64,
    pub state: String,
    pub earned_at: DateTime<Utc>,
    pub awarded_at: DateTime<Utc>,
    pub issued_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoke_reason: Option<String>,
    pub event_id: Option<String>,
    pub external_id: Option<String>,
    pub external_state: Option<String>,
    /// The award's signed Open Badges 3.0 credential (local templates; null until signed, which
    /// takes about a second, and when Open Badges issuing is off).
    pub credential_url: Option<String>,
    /// The learner's public page of the badge (with the credential).
    pub badge_url: Option<String>,
    /// When the award stops being valid: `earned_at` plus the template's `expires_after` as it
    /// was when the award was made; null: never.
    pub expires_at: Option<DateTime<Utc>>,
    /// True once `expires_at` has passed (a revoked award is revoked, not expired).
    pub expired: bool,
    /// What made it: `event` (live processing of `event_id`), `backfill` (a backfill replaying
    /// stored events; `event_id` completed the replayed progress) or `manual`.
    #[schema(pattern = "^(event|backfill|manual)$")]
    pub source: &'static str,
    /// The backfill that made it, if one did (`GET /backfills/{id}`).
    pub backfill_id: Option<String>,
}

impl From<Award> for AwardBody {
    fn from(a: Award) -> Self {
        let expired = a.is_expired(Utc::now());
        let source = match (&a.backfill_id, &a.event_id) {
            (Some(_), _) => "backfill",
            (None, Some(_)) => "event",
            (None, None) => "manual",
        };
        AwardBody {
            id: a.id,
            template: a.template_id,
            learner: a.learner,
            episode: a.episode,
            state: a.state.as_str().to_string(),
            earned_at: a.earned_at,
            awarded_at: a.awarded_at,
            issued_at: a.issued_at,
            revoked_at: a.revoked_at,
            revoke_reason: a.revoke_reason,
            event_id: a.event_id,
            external_id: a.external_id,
            external_state: a.external_state,
            credential_url: None,
            badge_url: None,
            expired,
            expires_at: a.expires_at,
            source,
            backfill_id: a.backfill_id,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAward {
    pub template: String,
    /// The learner's username: at most 255 bytes (UTF-8), not blank.
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub learner: String,
    /// 1-1000 characters, not blank.
    #[schema(min_length = 1, max_length = 1000, pattern = r"\S")]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeAward {
    /// 1-1000 characters, not blank.
    #[schema(min_length = 1, max_length = 1000, pattern = r"\S")]
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobBody {
    pub id: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub status: String,
    pub attempts: i64,
    pub run_at: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Job> for JobBody {
    fn from(j: Job) -> Self {
        JobBody {
            id: j.id,
            kind: j.kind,
            payload: j.payload,
            status: j.status.as_str().to_string(),
            attempts: j.attempts,
            run_at: j.run_at,
            locked_until: j.locked_until,
            last_error: j.last_error,
            created_at: j.created_at,
        }
    }
}

/// Answer of `POST /api/v1/events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestBody {
    /// Events stored and processed (durable).
    pub accepted: usize,
    /// Events whose id was already processed (nothing changed).
    pub duplicates: usize,
    pub rejected: Vec<RejectionBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RejectionBody {
    /// Position in the submitted array (0 for a single object).
    pub index: usize,
    pub code: String,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventBody {
    pub id: String,
    pub event_type: String,
    pub learner: String,
    pub time: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub body: serde_json::Value,
}

impl From<StoredEvent> for EventBody {
    fn from(e: StoredEvent) -> Self {
        EventBody {
            id: e.id,
            event_type: e.event_type,
            learner: e.learner,
            time: e.time,
            received_at: e.received_at,
            body: e.body,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedEventBody {
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub code: String,
    pub detail: String,
    pub source: String,
    pub received_at: DateTime<Utc>,
}

impl From<RejectedEvent> for RejectedEventBody {
    fn from(r: RejectedEvent) -> Self {
        RejectedEventBody {
            event_id: r.event_id,
            event_type: r.event_type,
            code: r.code,
            detail: r.detail,
            source: r.source,
            received_at: r.received_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LearnerBody {
    pub username: String,
    pub lms_user_id: Option<i64>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<accolade_store::Learner> for LearnerBody {
    fn from(l: accolade_store::Learner) -> Self {
        LearnerBody {
            username: l.username,
            lms_user_id: l.lms_user_id,
            email: l.email,
            name: l.name,
            created_at: l.created_at,
        }
    }
}
