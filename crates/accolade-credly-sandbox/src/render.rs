//! Wire shapes: serializers that write organizations, tokens, badge templates,
//! issued badges and events straight from the records (no intermediate
//! `serde_json::Value`), matching the Credly fixtures field for field.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crate::model::{BadgeRec, BadgeState, EventRec, OrgInfo, Subject, TemplateRec, TokenRec};
use crate::util::{ser_opt_date, ser_opt_ts, ser_ts};

/// Rendering context: the absolute base URL (`http://host:port/`) links are built from.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub base: &'a str,
}

/// `{"data": …, "metadata": …}`.
#[derive(Serialize)]
pub(crate) struct Envelope<D, M> {
    pub data: D,
    pub metadata: M,
}

/// Serializes as `{}` (the metadata of single-object responses).
#[derive(Serialize)]
pub(crate) struct NoMeta {}

/// Serializes `body` into a JSON response with the given status.
pub(crate) fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut resp = Response::new(Body::from(bytes));
            *resp.status_mut() = status;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "serializing a response failed");
            let mut resp = Response::new(Body::from(
                r#"{"data":{"message":"Internal Server Error"}}"#,
            ));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            resp
        }
    }
}

/// A string made of parts, serialized without building it first.
struct Cat<'a>(&'a [&'a str]);

impl fmt::Display for Cat<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in self.0 {
            f.write_str(p)?;
        }
        Ok(())
    }
}

impl Serialize for Cat<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Timestamp in Credly format.
struct Ts<'a>(&'a chrono::DateTime<chrono::Utc>);

impl Serialize for Ts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ser_ts(self.0, s)
    }
}

struct OptTs<'a>(&'a Option<chrono::DateTime<chrono::Utc>>);

impl Serialize for OptTs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ser_opt_ts(self.0, s)
    }
}

struct OptDate<'a>(&'a Option<chrono::DateTime<chrono::Utc>>);

impl Serialize for OptDate<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ser_opt_date(self.0, s)
    }
}

const EMPTY: [(); 0] = [];

/// `{"id":…, "url":…}` image object.
struct Image<'a> {
    id: &'a str,
    t: &'a TemplateRec,
    ctx: Ctx<'a>,
}

impl Serialize for Image<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("id", self.id)?;
        m.serialize_entry("url", &ImageUrl(self.t, self.ctx))?;
        m.end()
    }
}

struct ImageUrl<'a>(&'a TemplateRec, Ctx<'a>);

impl Serialize for ImageUrl<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0.image_url {
            Some(u) => s.serialize_str(u),
            None => Cat(&[self.1.base, "images/", &self.0.id, "/image.svg"]).serialize(s),
        }
    }
}

/// Organization reference as embedded in templates (`owner`).
struct Owner<'a> {
    org: &'a OrgInfo,
    ctx: Ctx<'a>,
    full: bool,
}

impl Serialize for Owner<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = self.org;
        let b = self.ctx.base;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", "Organization")?;
        m.serialize_entry("id", &o.id)?;
        m.serialize_entry("name", &o.name)?;
        if self.full {
            m.serialize_entry("enable_blockchain", &false)?;
        }
        m.serialize_entry("url", &Cat(&[b, "v1/organizations/", &o.id]))?;
        m.serialize_entry("vanity_url", &Cat(&[b, "org/", &o.slug]))?;
        if self.full {
            m.serialize_entry("vanity_slug", &o.slug)?;
        }
        m.serialize_entry("verified", &true)?;
        if self.full {
            m.serialize_entry("viewable", &true)?;
        }
        m.end()
    }
}

/// A badge template object.
pub(crate) struct TemplateView<'a> {
    pub t: &'a TemplateRec,
    pub ctx: Ctx<'a>,
}

impl Serialize for TemplateView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.t;
        let ctx = self.ctx;
        let issued = t.issued.load(Relaxed);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &t.id)?;
        m.serialize_entry("allow_duplicate_badges", &t.allow_duplicate_badges)?;
        m.serialize_entry("cost", &())?;
        m.serialize_entry("description", &t.description)?;
        m.serialize_entry("global_activity_url", &())?;
        m.serialize_entry("level", &())?;
        m.serialize_entry("lock_badge_state", &false)?;
        m.serialize_entry("name", &t.name)?;
        m.serialize_entry("state", t.state.as_str())?;
        m.serialize_entry("public", &true)?;
        m.serialize_entry("badges_count", &issued)?;
        m.serialize_entry("recipient_type", "User")?;
        m.serialize_entry("send_expiring_badge_notifications", &false)?;
        m.serialize_entry("show_badge_lmi", &false)?;
        m.serialize_entry("show_lmi_jobs", &false)?;
        m.serialize_entry("show_skill_tag_links", &true)?;
        m.serialize_entry("vanity_slug", &t.vanity_slug)?;
        m.serialize_entry("record_to_blockchain", &())?;
        m.serialize_entry("time_to_earn", &())?;
        m.serialize_entry("type_category", &())?;
        m.serialize_entry("printing_disabled", &false)?;
        m.serialize_entry("visibility", "public")?;
        m.serialize_entry("criteria_url_name", &())?;
        m.serialize_entry("criteria_url", &())?;
        m.serialize_entry("certification", &false)?;
        m.serialize_entry("state_updated_at", &OptTs(&t.state_updated_at))?;
        m.serialize_entry("created_at", &Ts(&t.created_at))?;
        m.serialize_entry("updated_at", &Ts(&t.updated_at))?;
        m.serialize_entry("show_template_settings", &false)?;
        m.serialize_entry("get_issue_count", &issued)?;
        m.serialize_entry(
            "image",
            &Image {
                id: &t.image_id,
                t,
                ctx,
            },
        )?;
        m.serialize_entry("image_url", &ImageUrl(t, ctx))?;
        m.serialize_entry(
            "url",
            &Cat(&[ctx.base, "org/", &t.org.slug, "/badge/", &t.vanity_slug]),
        )?;
        m.serialize_entry(
            "owner",
            &Owner {
                org: &t.org,
                ctx,
                full: true,
            },
        )?;
        m.serialize_entry("alignments", &EMPTY)?;
        m.serialize_entry("recommendations", &EMPTY)?;
        m.serialize_entry("required_badge_templates", &EMPTY)?;
        m.serialize_entry("badge_template_activities", &EMPTY)?;
        m.serialize_entry("skills", &t.skills)?;
        m.serialize_entry("reporting_tags", &EMPTY)?;
        m.end()
    }
}

struct User<'a> {
    b: &'a BadgeRec,
    ctx: Ctx<'a>,
}

impl Serialize for User<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.b;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &b.user_id)?;
        m.serialize_entry("email", &b.recipient_email)?;
        m.serialize_entry("first_name", &b.first_name)?;
        m.serialize_entry("last_name", &b.last_name)?;
        m.serialize_entry("current_position_name", "*****")?;
        m.serialize_entry("current_organization_name", "*****")?;
        m.serialize_entry("confirmed", &true)?;
        m.serialize_entry("photo", &())?;
        m.serialize_entry("photo_url", &())?;
        m.serialize_entry("url", &Cat(&[self.ctx.base, "users/", &b.user_id]))?;
        m.end()
    }
}

struct Issuer<'a> {
    org: &'a OrgInfo,
    ctx: Ctx<'a>,
}

impl Serialize for Issuer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Entity<'a>(&'a Issuer<'a>);
        impl Serialize for Entity<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("label", "Issued by")?;
                m.serialize_entry("primary", &true)?;
                m.serialize_entry(
                    "entity",
                    &Owner {
                        org: self.0.org,
                        ctx: self.0.ctx,
                        full: false,
                    },
                )?;
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("summary", &Cat(&["issued by ", &self.org.name]))?;
        m.serialize_entry("entities", &[Entity(self)])?;
        m.end()
    }
}

/// An issued badge object.
pub(crate) struct BadgeView<'a> {
    pub b: &'a BadgeRec,
    pub ctx: Ctx<'a>,
}

impl Serialize for BadgeView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.b;
        let ctx = self.ctx;
        let t = &*b.template;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("user", &User { b, ctx })?;
        m.serialize_entry(
            "created_by",
            &Owner {
                org: &b.org,
                ctx,
                full: false,
            },
        )?;
        m.serialize_entry("issuer", &Issuer { org: &b.org, ctx })?;
        m.serialize_entry("printing_enabled", &false)?;
        m.serialize_entry("print_method", &())?;
        m.serialize_entry("badge_template", &TemplateView { t, ctx })?;
        m.serialize_entry("id", &b.id)?;
        match &b.middle_name {
            Some(mid) => m.serialize_entry(
                "issued_to",
                &Cat(&[&b.first_name, " ", mid, " ", &b.last_name]),
            )?,
            None => m.serialize_entry("issued_to", &Cat(&[&b.first_name, " ", &b.last_name]))?,
        }
        m.serialize_entry("issued_to_first_name", &b.first_name)?;
        if let Some(mid) = &b.middle_name {
            m.serialize_entry("issued_to_middle_name", mid)?;
        }
        m.serialize_entry("issued_to_last_name", &b.last_name)?;
        m.serialize_entry("issuer_earner_id", &b.issuer_earner_id)?;
        m.serialize_entry("locale", &b.locale)?;
        m.serialize_entry("public", &true)?;
        m.serialize_entry("recipient_email", &b.recipient_email)?;
        m.serialize_entry("replacement_badge_id", &())?;
        m.serialize_entry("replaces_badge_id", &())?;
        m.serialize_entry("revocation_reason", &b.revocation_reason)?;
        m.serialize_entry("state", b.state.as_str())?;
        m.serialize_entry(
            "suppress_badge_notification_email",
            &b.suppress_badge_notification_email,
        )?;
        m.serialize_entry("updated_at", &Ts(&b.updated_at))?;
        m.serialize_entry("country", &b.country)?;
        m.serialize_entry("state_or_province", &b.state_or_province)?;
        m.serialize_entry("created_at", &Ts(&b.created_at))?;
        m.serialize_entry("expires_at", &OptTs(&b.expires_at))?;
        m.serialize_entry("expires_at_date", &OptDate(&b.expires_at))?;
        m.serialize_entry("issued_at", &Ts(&b.issued_at))?;
        m.serialize_entry("issued_at_date", &OptDate(&Some(b.issued_at)))?;
        m.serialize_entry("state_updated_at", &OptTs(&b.state_updated_at))?;
        m.serialize_entry(
            "image",
            &Image {
                id: &t.image_id,
                t,
                ctx,
            },
        )?;
        m.serialize_entry("image_url", &ImageUrl(t, ctx))?;
        m.serialize_entry("alignments", &EMPTY)?;
        m.serialize_entry("evidence", &b.evidence)?;
        match b.state {
            BadgeState::Pending => m.serialize_entry(
                "accept_badge_url",
                &Cat(&[ctx.base, "badges/", &b.id, "/accept"]),
            )?,
            BadgeState::Accepted => {
                m.serialize_entry("badge_url", &Cat(&[ctx.base, "badges/", &b.id]))?
            }
            _ => {}
        }
        m.end()
    }
}

/// An event object (`badge_template` or `badge` next to the envelope fields).
pub(crate) struct EventView<'a> {
    pub e: &'a EventRec,
    pub ctx: Ctx<'a>,
}

impl Serialize for EventView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.e;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("id", &e.id)?;
        m.serialize_entry("event_type", e.event_type)?;
        m.serialize_entry("organization_id", &e.org.id)?;
        m.serialize_entry("occurred_at", &Ts(&e.occurred_at))?;
        match &e.subject {
            Subject::Template(t) => {
                m.serialize_entry("badge_template", &TemplateView { t, ctx: self.ctx })?
            }
            Subject::Badge(b) => m.serialize_entry("badge", &BadgeView { b, ctx: self.ctx })?,
        }
        m.end()
    }
}

/// An organization object (`GET /organizations/{org}`).
pub(crate) struct OrgView<'a> {
    pub org: &'a OrgInfo,
    pub webhook_url: Option<&'a str>,
    pub ctx: Ctx<'a>,
}

impl Serialize for OrgView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = self.org;
        let b = self.ctx.base;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &o.id)?;
        m.serialize_entry("name", &o.name)?;
        m.serialize_entry("website_url", &())?;
        m.serialize_entry("webhook_url", &self.webhook_url)?;
        m.serialize_entry("contact_email", &Cat(&["badges@", &o.slug, ".example"]))?;
        for k in [
            "legal_contact_email",
            "technical_contact_email",
            "zip_or_postal_code",
        ] {
            m.serialize_entry(k, &())?;
        }
        m.serialize_entry("organization_type", "Training Provider")?;
        m.serialize_entry(
            "bio",
            "An organization served by the Accolade Credly sandbox.",
        )?;
        m.serialize_entry("twitter_url", &())?;
        m.serialize_entry("vanity_slug", &o.slug)?;
        for k in [
            "facebook_url",
            "linked_in_url",
            "linked_in_name",
            "linked_in_org_id",
            "city",
            "address",
            "primary_hex_color",
            "support_email",
            "support_url",
        ] {
            m.serialize_entry(k, &())?;
        }
        m.serialize_entry("allow_saml_debug", &false)?;
        m.serialize_entry("allowed_webhooks", &EMPTY)?;
        m.serialize_entry("enable_blockchain", &false)?;
        m.serialize_entry("print_method", &())?;
        m.serialize_entry("pdf_id", &())?;
        m.serialize_entry("internationalize_badge_templates", &false)?;
        m.serialize_entry("integrated_with_faethm", &false)?;
        m.serialize_entry("hide_subscription", &false)?;
        m.serialize_entry("default_page", "badges")?;
        m.serialize_entry("industry_id", &())?;
        m.serialize_entry("workforce_enabled", &false)?;
        m.serialize_entry("linkedin_a2p_url", &())?;
        m.serialize_entry("location", &())?;
        m.serialize_entry("country", &())?;
        m.serialize_entry("state_or_province", &())?;
        m.serialize_entry("created_at", &Ts(&o.created_at))?;
        m.serialize_entry("updated_at", &Ts(&o.created_at))?;
        m.serialize_entry("vanity_url", &Cat(&[b, "org/", &o.slug]))?;
        m.serialize_entry("verified_at", &Ts(&o.created_at))?;
        m.serialize_entry("verified", &true)?;
        m.serialize_entry("require_template_detail_attributes", &false)?;
        m.serialize_entry("photo", &())?;
        m.serialize_entry("photo_url", &())?;
        m.serialize_entry("has_employees", &false)?;
        m.serialize_entry("missing_required_info", &false)?;
        m.serialize_entry("featured_badge_templates", &EMPTY)?;
        m.end()
    }
}

/// An authorization token object (the token value is shown, as in the fixture).
pub(crate) struct TokenView<'a> {
    pub t: &'a TokenRec,
    pub org: &'a OrgInfo,
    pub ctx: Ctx<'a>,
}

impl Serialize for TokenView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct TokenOwner<'a>(&'a OrgInfo, Ctx<'a>);
        impl Serialize for TokenOwner<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(4))?;
                m.serialize_entry("type", "Organization")?;
                m.serialize_entry("id", &self.0.id)?;
                m.serialize_entry("name", &self.0.name)?;
                m.serialize_entry("url", &Cat(&[self.1.base, "v1/organizations/", &self.0.id]))?;
                m.end()
            }
        }
        let t = self.t;
        let mut m = s.serialize_map(Some(10))?;
        m.serialize_entry("id", &t.id)?;
        m.serialize_entry("token", &t.token)?;
        m.serialize_entry("owner_id", &self.org.id)?;
        m.serialize_entry("description", "Credly sandbox token")?;
        m.serialize_entry("write_enabled", &true)?;
        m.serialize_entry("read_enabled", &true)?;
        m.serialize_entry("delete_enabled", &false)?;
        m.serialize_entry("created_at", &Ts(&t.created_at))?;
        m.serialize_entry("expires_at", &Ts(&t.expires_at))?;
        m.serialize_entry("owner", &TokenOwner(self.org, self.ctx))?;
        m.end()
    }
}

/// Records that render as a JSON object given a context.
pub(crate) trait Viewable {
    type View<'a>: Serialize
    where
        Self: 'a;
    fn view<'a>(&'a self, ctx: Ctx<'a>) -> Self::View<'a>;
}

impl Viewable for Arc<TemplateRec> {
    type View<'a> = TemplateView<'a>;
    fn view<'a>(&'a self, ctx: Ctx<'a>) -> TemplateView<'a> {
        TemplateView { t: self, ctx }
    }
}

impl Viewable for Arc<BadgeRec> {
    type View<'a> = BadgeView<'a>;
    fn view<'a>(&'a self, ctx: Ctx<'a>) -> BadgeView<'a> {
        BadgeView { b: self, ctx }
    }
}

impl Viewable for Arc<EventRec> {
    type View<'a> = EventView<'a>;
    fn view<'a>(&'a self, ctx: Ctx<'a>) -> EventView<'a> {
        EventView { e: self, ctx }
    }
}

/// A token with its organization (list item).
pub(crate) struct TokenItem {
    pub token: TokenRec,
    pub org: Arc<OrgInfo>,
}

impl Viewable for TokenItem {
    type View<'a> = TokenView<'a>;
    fn view<'a>(&'a self, ctx: Ctx<'a>) -> TokenView<'a> {
        TokenView {
            t: &self.token,
            org: &self.org,
            ctx,
        }
    }
}

/// An organization with its webhook URL (list item).
pub(crate) struct OrgItem {
    pub org: Arc<OrgInfo>,
    pub webhook_url: Option<String>,
}

impl Viewable for OrgItem {
    type View<'a> = OrgView<'a>;
    fn view<'a>(&'a self, ctx: Ctx<'a>) -> OrgView<'a> {
        OrgView {
            org: &self.org,
            webhook_url: self.webhook_url.as_deref(),
            ctx,
        }
    }
}

/// A JSON array of records rendered lazily.
pub(crate) struct List<'a, T> {
    pub items: &'a [T],
    pub ctx: Ctx<'a>,
}

impl<T: Viewable> Serialize for List<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.items.iter().map(|i| i.view(self.ctx)))
    }
}

/// Convenience: render one badge to a `serde_json::Value` (for the Rust API).
pub(crate) fn badge_value(b: &Arc<BadgeRec>, ctx: Ctx<'_>) -> serde_json::Value {
    serde_json::to_value(BadgeView { b, ctx }).unwrap_or(serde_json::Value::Null)
}

/// Convenience: render one event to a `serde_json::Value` (for the Rust API).
pub(crate) fn event_value(e: &Arc<EventRec>, ctx: Ctx<'_>) -> serde_json::Value {
    serde_json::to_value(EventView { e, ctx }).unwrap_or(serde_json::Value::Null)
}
