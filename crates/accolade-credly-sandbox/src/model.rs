//! The in-memory data model: organizations, tokens, badge templates (kept in
//! sorted indexes), issued badges, events, and every operation that reads or
//! changes them. Records are immutable `Arc`s; a change swaps in a new record,
//! so a page can be copied out of the lock as a handful of `Arc` clones.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::error::ApiError;
use crate::seed::{Seed, SeedOrganization, SeedTemplate};
use crate::util::{det_uuid, new_id, slugify};

/// Token lifetime when a seed or `add_token` gives no expiry.
pub const DEFAULT_TOKEN_LIFETIME_DAYS: i64 = 180;

/// Immutable organization facts shared by every record that embeds the owner.
#[derive(Debug)]
pub(crate) struct OrgInfo {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
}

/// Badge template state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TemplateState {
    Draft,
    Active,
    Archived,
}

impl TemplateState {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "draft" => Some(Self::Draft),
            "active" => Some(Self::Active),
            "archived" => Some(Self::Archived),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }

    pub fn bit(self) -> u8 {
        match self {
            Self::Draft => 1,
            Self::Active => 2,
            Self::Archived => 4,
        }
    }
}

/// Issued badge state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadgeState {
    Pending,
    Accepted,
    Rejected,
    Revoked,
}

impl BadgeState {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pending" => Some(Self::Pending),
            "accepted" => Some(Self::Accepted),
            "rejected" => Some(Self::Rejected),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Revoked => "revoked",
        }
    }

    pub fn bit(self) -> u8 {
        match self {
            Self::Pending => 1,
            Self::Accepted => 2,
            Self::Rejected => 4,
            Self::Revoked => 8,
        }
    }
}

/// One version of a badge template.
#[derive(Debug)]
pub(crate) struct TemplateRec {
    pub id: String,
    pub org: Arc<OrgInfo>,
    pub name: String,
    pub name_lc: String,
    pub description: String,
    pub description_lc: String,
    pub state: TemplateState,
    pub image_url: Option<String>,
    pub image_id: String,
    pub vanity_slug: String,
    pub skills: Vec<String>,
    pub allow_duplicate_badges: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub state_updated_at: Option<DateTime<Utc>>,
    /// Badges issued from this template (shared by all versions of the template).
    pub issued: Arc<AtomicU64>,
}

/// One version of an issued badge.
#[derive(Debug, Clone)]
pub(crate) struct BadgeRec {
    pub seq: u64,
    pub id: String,
    pub org: Arc<OrgInfo>,
    pub template: Arc<TemplateRec>,
    pub recipient_email: String,
    pub email_lc: String,
    pub first_name: String,
    pub last_name: String,
    pub middle_name: Option<String>,
    pub issuer_earner_id: Option<String>,
    pub locale: String,
    pub suppress_badge_notification_email: bool,
    pub country: Option<String>,
    pub state_or_province: Option<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub state_updated_at: Option<DateTime<Utc>>,
    pub state: BadgeState,
    pub revocation_reason: Option<String>,
    pub evidence: Vec<Value>,
    pub user_id: String,
}

/// What an event is about (a snapshot taken when it occurred).
#[derive(Debug, Clone)]
pub(crate) enum Subject {
    Template(Arc<TemplateRec>),
    Badge(Arc<BadgeRec>),
}

/// One recorded event.
#[derive(Debug)]
pub(crate) struct EventRec {
    pub id: String,
    pub event_type: &'static str,
    pub org: Arc<OrgInfo>,
    pub occurred_at: DateTime<Utc>,
    pub subject: Subject,
}

/// One authorization token.
#[derive(Debug, Clone)]
pub(crate) struct TokenRec {
    pub id: String,
    pub token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Template sort keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TemplateSort {
    Name,
    CreatedAt,
    UpdatedAt,
}

/// Badge template filter (`filter=state::active|name::x|query::y|public::true`).
#[derive(Debug, Default)]
pub(crate) struct TemplateFilter {
    /// Bitmask of [`TemplateState::bit`]; 0 = any.
    pub states: u8,
    /// `name::` (lower-cased substring) or exact (`name::"Exact Name"`).
    pub name: Option<NameMatch>,
    /// `query::` lower-cased substring of name or description.
    pub query: Option<String>,
    /// `public::true|false` (every sandbox template is public).
    pub public: Option<bool>,
    /// `id::a,b` (extension).
    pub ids: Vec<String>,
}

#[derive(Debug)]
pub(crate) enum NameMatch {
    Exact(String),
    Contains(String),
}

impl TemplateFilter {
    fn matches(&self, t: &TemplateRec) -> bool {
        if self.states != 0 && self.states & t.state.bit() == 0 {
            return false;
        }
        match &self.name {
            Some(NameMatch::Exact(n)) if &t.name != n => return false,
            Some(NameMatch::Contains(n)) if !t.name_lc.contains(n.as_str()) => return false,
            _ => {}
        }
        if let Some(q) = &self.query {
            if !t.name_lc.contains(q.as_str()) && !t.description_lc.contains(q.as_str()) {
                return false;
            }
        }
        if self.public == Some(false) {
            return false;
        }
        if !self.ids.is_empty() && !self.ids.iter().any(|i| i == &t.id) {
            return false;
        }
        true
    }
}

/// Badge sort keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadgeSort {
    Created,
    Issued,
    Updated,
}

/// Issued badge filter.
#[derive(Debug, Default)]
pub(crate) struct BadgeFilter {
    pub recipient_email: Option<String>,
    pub template_ids: Vec<String>,
    pub states: u8,
    pub issuer_earner_id: Option<String>,
    pub query: Option<String>,
    pub public: Option<bool>,
}

impl BadgeFilter {
    fn matches(&self, b: &BadgeRec) -> bool {
        if self.states != 0 && self.states & b.state.bit() == 0 {
            return false;
        }
        if let Some(e) = &self.recipient_email {
            if &b.email_lc != e {
                return false;
            }
        }
        if !self.template_ids.is_empty() && !self.template_ids.iter().any(|t| t == &b.template.id) {
            return false;
        }
        if let Some(id) = &self.issuer_earner_id {
            if b.issuer_earner_id.as_deref() != Some(id.as_str()) {
                return false;
            }
        }
        if let Some(q) = &self.query {
            let hit = b.email_lc.contains(q.as_str())
                || b.first_name.to_lowercase().contains(q.as_str())
                || b.last_name.to_lowercase().contains(q.as_str())
                || b.template.name_lc.contains(q.as_str());
            if !hit {
                return false;
            }
        }
        if self.public == Some(false) {
            return false;
        }
        true
    }
}

/// Templates of one organization, indexed by id and by each sort key.
#[derive(Default)]
pub(crate) struct TemplateIndex {
    by_id: HashMap<String, Arc<TemplateRec>>,
    by_name: BTreeMap<(String, String, String), Arc<TemplateRec>>,
    by_created: BTreeMap<(DateTime<Utc>, String), Arc<TemplateRec>>,
    by_updated: BTreeMap<(DateTime<Utc>, String), Arc<TemplateRec>>,
}

impl TemplateIndex {
    fn insert(&mut self, t: Arc<TemplateRec>) -> Option<Arc<TemplateRec>> {
        let old = self.remove(&t.id);
        self.by_name
            .insert((t.name_lc.clone(), t.name.clone(), t.id.clone()), t.clone());
        self.by_created
            .insert((t.created_at, t.id.clone()), t.clone());
        self.by_updated
            .insert((t.updated_at, t.id.clone()), t.clone());
        self.by_id.insert(t.id.clone(), t);
        old
    }

    fn remove(&mut self, id: &str) -> Option<Arc<TemplateRec>> {
        let old = self.by_id.remove(id)?;
        self.by_name
            .remove(&(old.name_lc.clone(), old.name.clone(), old.id.clone()));
        self.by_created.remove(&(old.created_at, old.id.clone()));
        self.by_updated.remove(&(old.updated_at, old.id.clone()));
        Some(old)
    }

    pub fn get(&self, id: &str) -> Option<&Arc<TemplateRec>> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    fn iter_sorted(
        &self,
        sort: TemplateSort,
        desc: bool,
    ) -> Box<dyn Iterator<Item = &Arc<TemplateRec>> + '_> {
        match (sort, desc) {
            (TemplateSort::Name, false) => Box::new(self.by_name.values()),
            (TemplateSort::Name, true) => Box::new(self.by_name.values().rev()),
            (TemplateSort::CreatedAt, false) => Box::new(self.by_created.values()),
            (TemplateSort::CreatedAt, true) => Box::new(self.by_created.values().rev()),
            (TemplateSort::UpdatedAt, false) => Box::new(self.by_updated.values()),
            (TemplateSort::UpdatedAt, true) => Box::new(self.by_updated.values().rev()),
        }
    }
}

/// One organization and everything it owns.
pub(crate) struct Org {
    pub info: Arc<OrgInfo>,
    pub webhook_url: Option<String>,
    pub tokens: Vec<TokenRec>,
    pub templates: TemplateIndex,
    pub badges: Vec<Arc<BadgeRec>>,
    badge_idx: HashMap<String, usize>,
    /// Non-revoked badges per `template_id \0 lower-cased email`.
    dup_email: HashMap<String, u32>,
    /// Non-revoked badges per `template_id \0 issuer_earner_id`.
    dup_earner: HashMap<String, u32>,
    pub events: Vec<Arc<EventRec>>,
    event_idx: HashMap<String, usize>,
}

impl Org {
    fn new(info: OrgInfo, webhook_url: Option<String>) -> Self {
        Org {
            info: Arc::new(info),
            webhook_url,
            tokens: Vec::new(),
            templates: TemplateIndex::default(),
            badges: Vec::new(),
            badge_idx: HashMap::new(),
            dup_email: HashMap::new(),
            dup_earner: HashMap::new(),
            events: Vec::new(),
            event_idx: HashMap::new(),
        }
    }

    pub fn badge(&self, id: &str) -> Option<&Arc<BadgeRec>> {
        self.badge_idx.get(id).map(|i| &self.badges[*i])
    }

    pub fn event(&self, id: &str) -> Option<&Arc<EventRec>> {
        self.event_idx.get(id).map(|i| &self.events[*i])
    }

    fn push_event(&mut self, event_type: &'static str, subject: Subject) -> Arc<EventRec> {
        let ev = Arc::new(EventRec {
            id: new_id(),
            event_type,
            org: self.info.clone(),
            occurred_at: Utc::now(),
            subject,
        });
        self.event_idx.insert(ev.id.clone(), self.events.len());
        self.events.push(ev.clone());
        ev
    }

    fn dup_keys(b: &BadgeRec) -> (String, Option<String>) {
        let email = format!("{}\0{}", b.template.id, b.email_lc);
        let earner = b
            .issuer_earner_id
            .as_ref()
            .map(|e| format!("{}\0{}", b.template.id, e));
        (email, earner)
    }

    fn dup_add(&mut self, b: &BadgeRec) {
        let (email, earner) = Self::dup_keys(b);
        *self.dup_email.entry(email).or_insert(0) += 1;
        if let Some(k) = earner {
            *self.dup_earner.entry(k).or_insert(0) += 1;
        }
    }

    fn dup_remove(&mut self, b: &BadgeRec) {
        let (email, earner) = Self::dup_keys(b);
        dec(&mut self.dup_email, &email);
        if let Some(k) = earner {
            dec(&mut self.dup_earner, &k);
        }
    }

    pub(crate) fn add_token(
        &mut self,
        token: &str,
        created: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) {
        self.tokens.retain(|t| t.token != token);
        self.tokens.push(TokenRec {
            id: det_uuid(&self.info.id, crate::util::fnv1a(token)),
            token: token.to_owned(),
            created_at: created,
            expires_at: expires,
        });
    }
}

fn dec(map: &mut HashMap<String, u32>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// Validated fields of an issue request.
#[derive(Debug)]
pub(crate) struct IssueInput {
    pub recipient_email: String,
    pub first_name: String,
    pub last_name: String,
    pub middle_name: Option<String>,
    pub badge_template_id: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub issuer_earner_id: Option<String>,
    pub locale: String,
    pub suppress_badge_notification_email: bool,
    pub country: Option<String>,
    pub state_or_province: Option<String>,
    pub evidence: Vec<Value>,
}

/// The outcome of a change that records an event.
pub(crate) struct Changed<T> {
    pub value: T,
    pub event: Arc<EventRec>,
    pub webhook_url: Option<String>,
}

/// The whole sandbox state, behind one lock.
#[derive(Default)]
pub(crate) struct State {
    pub orgs: HashMap<String, Org>,
    /// token → organization ids it acts for.
    pub(crate) tokens: HashMap<String, Vec<String>>,
    /// OAuth clients and their access tokens (`credentials.rs`).
    pub(crate) oauth: crate::credentials::OAuthState,
    badge_seq: u64,
}

impl State {
    /// Builds the state from a seed (missing organizations referenced by templates are created).
    pub fn from_seed(seed: Seed) -> State {
        let mut st = State::default();
        let start = Utc::now();
        for o in &seed.organizations {
            st.ensure_org(o, start);
        }
        let default_org = if seed.organizations.len() == 1 {
            seed.organizations[0].id.clone()
        } else {
            String::new()
        };
        let mut templates = seed.templates;
        if let Some(g) = &seed.generate {
            templates.extend(g.expand(&default_org));
        }
        let n = templates.len() as i64;
        for (i, mut t) in templates.into_iter().enumerate() {
            if t.organization_id.is_empty() {
                if default_org.is_empty() {
                    tracing::warn!(template = %t.name, "seed template without organization_id ignored");
                    continue;
                }
                t.organization_id = default_org.clone();
            }
            if !st.orgs.contains_key(&t.organization_id) {
                tracing::warn!(org = %t.organization_id, "seed template names an unknown organization; creating it");
                let o = SeedOrganization {
                    id: t.organization_id.clone(),
                    ..SeedOrganization::default()
                };
                st.ensure_org(&o, start);
            }
            let state = TemplateState::parse(&t.state).unwrap_or_else(|| {
                tracing::warn!(template = %t.name, state = %t.state, "unknown template state; using draft");
                TemplateState::Draft
            });
            // Seed order = creation order, one second apart, ending at start.
            let created = t
                .created_at
                .unwrap_or(start - Duration::seconds(n - i as i64));
            let updated = t.updated_at.unwrap_or(created);
            let org = st.orgs.get_mut(&t.organization_id).expect("ensured");
            let rec = build_template(
                &org.info,
                t,
                state,
                created,
                updated,
                None,
                Arc::new(AtomicU64::new(0)),
            );
            org.templates.insert(Arc::new(rec));
        }
        st
    }

    fn ensure_org(&mut self, o: &SeedOrganization, start: DateTime<Utc>) {
        if self.orgs.contains_key(&o.id) {
            tracing::warn!(org = %o.id, "duplicate organization in seed ignored");
            return;
        }
        let info = OrgInfo {
            id: o.id.clone(),
            name: o.name.clone(),
            slug: slugify(&o.name),
            created_at: start,
        };
        let mut org = Org::new(info, o.webhook_url.clone());
        for t in &o.tokens {
            let created = t.created_at.unwrap_or(start);
            let expires = t
                .expires_at
                .unwrap_or(created + Duration::days(DEFAULT_TOKEN_LIFETIME_DAYS));
            org.add_token(&t.token, created, expires);
            self.index_token(&t.token, &o.id);
        }
        self.orgs.insert(o.id.clone(), org);
        for c in &o.oauth_clients {
            if let Err(e) = self.add_oauth_client(
                &o.id,
                &c.client_id,
                &c.client_secret,
                c.access_token_lifetime_secs,
            ) {
                tracing::warn!(org = %o.id, "seed OAuth client ignored: {}", e.message);
            }
        }
    }

    pub(crate) fn index_token(&mut self, token: &str, org: &str) {
        let orgs = self.tokens.entry(token.to_owned()).or_default();
        if !orgs.iter().any(|o| o == org) {
            orgs.push(org.to_owned());
        }
    }

    pub fn org(&self, id: &str) -> Result<&Org, ApiError> {
        self.orgs
            .get(id)
            .ok_or_else(|| ApiError::not_found(format!("Organization {id} not found")))
    }

    fn org_mut(&mut self, id: &str) -> Result<&mut Org, ApiError> {
        self.orgs
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found(format!("Organization {id} not found")))
    }

    pub fn add_token(
        &mut self,
        org: &str,
        token: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), ApiError> {
        if token.trim().is_empty() {
            return Err(ApiError::unprocessable("token must not be empty"));
        }
        let now = Utc::now();
        let o = self.org_mut(org)?;
        o.add_token(
            token,
            now,
            expires_at.unwrap_or(now + Duration::days(DEFAULT_TOKEN_LIFETIME_DAYS)),
        );
        self.index_token(token, org);
        Ok(())
    }

    pub fn set_webhook_url(&mut self, org: &str, url: Option<String>) -> Result<(), ApiError> {
        self.org_mut(org)?.webhook_url = url.filter(|u| !u.trim().is_empty());
        Ok(())
    }

    /// One page of templates plus the total number matching.
    pub fn list_templates(
        &self,
        org: &str,
        filter: &TemplateFilter,
        sort: TemplateSort,
        desc: bool,
        page: usize,
        per: usize,
    ) -> Result<(Vec<Arc<TemplateRec>>, usize), ApiError> {
        let o = self.org(org)?;
        let start = (page - 1).saturating_mul(per);
        let mut out = Vec::with_capacity(per.min(o.templates.len()));
        let mut total = 0usize;
        for t in o.templates.iter_sorted(sort, desc) {
            if filter.matches(t) {
                if total >= start && out.len() < per {
                    out.push(t.clone());
                }
                total += 1;
            }
        }
        Ok((out, total))
    }

    /// One page of badges plus the total number matching.
    pub fn list_badges(
        &self,
        org: &str,
        filter: &BadgeFilter,
        sort: BadgeSort,
        desc: bool,
        page: usize,
        per: usize,
    ) -> Result<(Vec<Arc<BadgeRec>>, usize), ApiError> {
        let o = self.org(org)?;
        let start = (page - 1).saturating_mul(per);
        if sort == BadgeSort::Created {
            let mut out = Vec::with_capacity(per.min(o.badges.len()));
            let mut total = 0usize;
            let iter: Box<dyn Iterator<Item = &Arc<BadgeRec>>> = if desc {
                Box::new(o.badges.iter().rev())
            } else {
                Box::new(o.badges.iter())
            };
            for b in iter {
                if filter.matches(b) {
                    if total >= start && out.len() < per {
                        out.push(b.clone());
                    }
                    total += 1;
                }
            }
            return Ok((out, total));
        }
        let mut hits: Vec<&Arc<BadgeRec>> = o.badges.iter().filter(|b| filter.matches(b)).collect();
        let key = |b: &BadgeRec| match sort {
            BadgeSort::Issued => (b.issued_at, b.seq),
            _ => (b.updated_at, b.seq),
        };
        hits.sort_by_key(|b| key(b));
        if desc {
            hits.reverse();
        }
        let total = hits.len();
        let out = hits.into_iter().skip(start).take(per).cloned().collect();
        Ok((out, total))
    }

    /// One page of events (filtered by type) plus the total number matching.
    pub fn list_events(
        &self,
        org: &str,
        types: &[String],
        desc: bool,
        page: usize,
        per: usize,
    ) -> Result<(Vec<Arc<EventRec>>, usize), ApiError> {
        let o = self.org(org)?;
        let start = (page - 1).saturating_mul(per);
        let matches = |e: &EventRec| types.is_empty() || types.iter().any(|t| t == e.event_type);
        let iter: Box<dyn Iterator<Item = &Arc<EventRec>>> = if desc {
            Box::new(o.events.iter().rev())
        } else {
            Box::new(o.events.iter())
        };
        let mut out = Vec::new();
        let mut total = 0usize;
        for e in iter {
            if matches(e) {
                if total >= start && out.len() < per {
                    out.push(e.clone());
                }
                total += 1;
            }
        }
        Ok((out, total))
    }

    /// Creates or changes a template and records `badge_template.created` / `.changed`.
    pub fn upsert_template(&mut self, t: SeedTemplate) -> Result<Changed<String>, ApiError> {
        let state = TemplateState::parse(&t.state).ok_or_else(|| {
            ApiError::unprocessable(format!(
                "state {:?} is invalid; expected draft, active or archived",
                t.state
            ))
        })?;
        if t.name.trim().is_empty() {
            return Err(ApiError::unprocessable("name must not be empty"));
        }
        let now = Utc::now();
        let org = self.org_mut(&t.organization_id)?;
        let id =
            t.id.clone()
                .filter(|i| !i.trim().is_empty())
                .unwrap_or_else(new_id);
        let t = SeedTemplate {
            id: Some(id.clone()),
            ..t
        };
        let (rec, event_type) = match org.templates.get(&id) {
            Some(old) => {
                let state_updated = if old.state != state {
                    Some(now)
                } else {
                    old.state_updated_at
                };
                let created = t.created_at.unwrap_or(old.created_at);
                let updated = t.updated_at.unwrap_or(now);
                let issued = old.issued.clone();
                (
                    build_template(&org.info, t, state, created, updated, state_updated, issued),
                    "badge_template.changed",
                )
            }
            None => {
                let created = t.created_at.unwrap_or(now);
                let updated = t.updated_at.unwrap_or(created);
                (
                    build_template(
                        &org.info,
                        t,
                        state,
                        created,
                        updated,
                        None,
                        Arc::new(AtomicU64::new(0)),
                    ),
                    "badge_template.created",
                )
            }
        };
        let rec = Arc::new(rec);
        org.templates.insert(rec.clone());
        let event = org.push_event(event_type, Subject::Template(rec));
        Ok(Changed {
            value: id,
            event,
            webhook_url: org.webhook_url.clone(),
        })
    }

    /// Deletes a template and records `badge_template.deleted` (carrying the last version).
    pub fn delete_template(&mut self, org: &str, id: &str) -> Result<Changed<()>, ApiError> {
        let o = self.org_mut(org)?;
        let old = o
            .templates
            .remove(id)
            .ok_or_else(|| ApiError::not_found(format!("Badge template {id} not found")))?;
        let event = o.push_event("badge_template.deleted", Subject::Template(old));
        Ok(Changed {
            value: (),
            event,
            webhook_url: o.webhook_url.clone(),
        })
    }

    /// Issues a badge and records `badge.created`.
    pub fn issue(
        &mut self,
        org: &str,
        input: IssueInput,
    ) -> Result<Changed<Arc<BadgeRec>>, ApiError> {
        let seq = self.badge_seq;
        let o = self.org_mut(org)?;
        let template = o
            .templates
            .get(&input.badge_template_id)
            .cloned()
            .ok_or_else(|| {
                ApiError::unprocessable(format!(
                    "badge_template_id is invalid: no badge template {} in this organization",
                    input.badge_template_id
                ))
            })?;
        match template.state {
            TemplateState::Active => {}
            TemplateState::Archived => {
                return Err(ApiError::unprocessable(
                    "Badge template is archived and cannot be used to issue badges",
                ))
            }
            TemplateState::Draft => {
                return Err(ApiError::unprocessable(
                    "Badge template is a draft and cannot be used to issue badges",
                ))
            }
        }
        let email_lc = input.recipient_email.to_lowercase();
        if !template.allow_duplicate_badges {
            let dup_email = o
                .dup_email
                .contains_key(&format!("{}\0{}", template.id, email_lc));
            let dup_earner = input.issuer_earner_id.as_ref().is_some_and(|e| {
                o.dup_earner
                    .contains_key(&format!("{}\0{}", template.id, e))
            });
            if dup_email || dup_earner {
                return Err(ApiError::unprocessable("User already has this badge"));
            }
        }
        let now = Utc::now();
        let badge = Arc::new(BadgeRec {
            seq,
            id: new_id(),
            org: o.info.clone(),
            user_id: det_uuid(&email_lc, 0x05E7),
            template: template.clone(),
            recipient_email: input.recipient_email,
            email_lc,
            first_name: input.first_name,
            last_name: input.last_name,
            middle_name: input.middle_name,
            issuer_earner_id: input.issuer_earner_id,
            locale: input.locale,
            suppress_badge_notification_email: input.suppress_badge_notification_email,
            country: input.country,
            state_or_province: input.state_or_province,
            issued_at: input.issued_at,
            expires_at: input.expires_at,
            created_at: now,
            updated_at: now,
            state_updated_at: None,
            state: BadgeState::Pending,
            revocation_reason: None,
            evidence: input.evidence,
        });
        o.dup_add(&badge);
        o.badge_idx.insert(badge.id.clone(), o.badges.len());
        o.badges.push(badge.clone());
        template.issued.fetch_add(1, Relaxed);
        let event = o.push_event("badge.created", Subject::Badge(badge.clone()));
        let webhook_url = o.webhook_url.clone();
        self.badge_seq += 1;
        Ok(Changed {
            value: badge,
            event,
            webhook_url,
        })
    }

    /// Revokes a badge and records `badge.state.changed`.
    pub fn revoke(
        &mut self,
        org: &str,
        id: &str,
        reason: String,
    ) -> Result<Changed<Arc<BadgeRec>>, ApiError> {
        let o = self.org_mut(org)?;
        let idx = *o
            .badge_idx
            .get(id)
            .ok_or_else(|| ApiError::not_found(format!("Badge {id} not found")))?;
        let old = o.badges[idx].clone();
        if old.state == BadgeState::Revoked {
            return Err(ApiError::unprocessable("Badge has already been revoked"));
        }
        let now = Utc::now();
        let mut b = (*old).clone();
        b.state = BadgeState::Revoked;
        b.revocation_reason = Some(reason);
        b.updated_at = now;
        b.state_updated_at = Some(now);
        o.dup_remove(&old);
        let b = Arc::new(b);
        o.badges[idx] = b.clone();
        let event = o.push_event("badge.state.changed", Subject::Badge(b.clone()));
        Ok(Changed {
            value: b,
            event,
            webhook_url: o.webhook_url.clone(),
        })
    }

    /// Moves a pending badge to accepted or rejected and records `badge.state.changed`.
    pub fn set_badge_state(
        &mut self,
        org: &str,
        id: &str,
        state: &str,
    ) -> Result<Changed<Arc<BadgeRec>>, ApiError> {
        let target = match BadgeState::parse(state) {
            Some(s @ (BadgeState::Accepted | BadgeState::Rejected)) => s,
            _ => {
                return Err(ApiError::unprocessable(format!(
                    "state {state:?} is invalid; expected accepted or rejected"
                )))
            }
        };
        let o = self.org_mut(org)?;
        let idx = *o
            .badge_idx
            .get(id)
            .ok_or_else(|| ApiError::not_found(format!("Badge {id} not found")))?;
        let old = o.badges[idx].clone();
        if old.state != BadgeState::Pending {
            return Err(ApiError::unprocessable(format!(
                "Badge is {}; only pending badges can be accepted or rejected",
                old.state.as_str()
            )));
        }
        let now = Utc::now();
        let mut b = (*old).clone();
        b.state = target;
        b.updated_at = now;
        b.state_updated_at = Some(now);
        let b = Arc::new(b);
        o.badges[idx] = b.clone();
        let event = o.push_event("badge.state.changed", Subject::Badge(b.clone()));
        Ok(Changed {
            value: b,
            event,
            webhook_url: o.webhook_url.clone(),
        })
    }

    /// Finds a badge by id in any organization (for the demo accept page).
    pub fn find_badge(&self, id: &str) -> Option<&Arc<BadgeRec>> {
        self.orgs.values().find_map(|o| o.badge(id))
    }
}

fn build_template(
    org: &Arc<OrgInfo>,
    t: SeedTemplate,
    state: TemplateState,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    state_updated_at: Option<DateTime<Utc>>,
    issued: Arc<AtomicU64>,
) -> TemplateRec {
    let id = t.id.unwrap_or_else(new_id);
    TemplateRec {
        image_id: det_uuid(&id, 0x1A6E),
        vanity_slug: slugify(&t.name),
        name_lc: t.name.to_lowercase(),
        description_lc: t.description.to_lowercase(),
        id,
        org: org.clone(),
        name: t.name,
        description: t.description,
        state,
        image_url: t.image_url.filter(|u| !u.is_empty()),
        skills: t.skills,
        allow_duplicate_badges: t.allow_duplicate_badges,
        created_at,
        updated_at,
        state_updated_at,
        issued,
    }
}
