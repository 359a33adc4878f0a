//! List requests: the request context (absolute base URL from `Host`), the
//! `filter` / `sort` / `page` / `per` parameters and the pagination metadata
//! with absolute `next_page_url` / `previous_page_url`.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use serde::Serialize;
use std::convert::Infallible;
use std::fmt::Write as _;

use crate::error::ApiError;
use crate::model::{
    BadgeFilter, BadgeSort, BadgeState, NameMatch, TemplateFilter, TemplateSort, TemplateState,
};
use crate::render::Ctx;
use crate::util::{parse_pairs, QueryEncoded};
use crate::Sandbox;

/// Default page size (Credly's).
pub const DEFAULT_PER: usize = 50;
/// Largest page size honoured; larger `per` values are capped (and `metadata.per` says so).
pub const MAX_PER: usize = 100;

/// What a handler needs to know about the request URL.
pub(crate) struct ReqCtx {
    /// `http://host:port` (no trailing slash).
    pub origin: String,
    /// `http://host:port/`.
    pub base: String,
    /// Request path as sent (`/v1/organizations/…`, with or without trailing slash).
    pub path: String,
    /// Decoded query pairs in order.
    pub query: Vec<(String, String)>,
}

impl ReqCtx {
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx { base: &self.base }
    }

    /// Last value of a query parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl FromRequestParts<Sandbox> for ReqCtx {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, sb: &Sandbox) -> Result<Self, Self::Rejection> {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && !h.contains(['/', ' ']));
        let origin = match host {
            Some(h) => format!("http://{h}"),
            None => sb.public_base().trim_end_matches('/').to_owned(),
        };
        let base = format!("{origin}/");
        let query = parts.uri.query().map(parse_pairs).unwrap_or_default();
        Ok(ReqCtx {
            origin,
            base,
            path: parts.uri.path().to_owned(),
            query,
        })
    }
}

/// Parsed `page`, `per`, `sort` and `filter` parameters.
pub(crate) struct ListParams {
    pub page: usize,
    pub per: usize,
    pub sort: Option<String>,
    pub filter: Option<String>,
    /// `(key, value)` filter terms from `filter=k::v|k2::v2` and `filter[k]=v`.
    pub terms: Vec<(String, String)>,
}

impl ListParams {
    pub fn from_ctx(req: &ReqCtx) -> Self {
        let page = req
            .param("page")
            .and_then(|p| p.trim().parse::<usize>().ok())
            .filter(|p| *p > 0)
            .unwrap_or(1);
        let per = req
            .param("per")
            .and_then(|p| p.trim().parse::<usize>().ok())
            .filter(|p| *p > 0)
            .map_or(DEFAULT_PER, |p| p.min(MAX_PER));
        let sort = req
            .param("sort")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let filter = req
            .param("filter")
            .filter(|f| !f.trim().is_empty())
            .map(str::to_owned);
        let mut terms = Vec::new();
        if let Some(f) = &filter {
            for part in f.split('|') {
                if let Some((k, v)) = part.split_once("::") {
                    terms.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
        }
        for (k, v) in &req.query {
            if let Some(key) = k.strip_prefix("filter[").and_then(|k| k.strip_suffix(']')) {
                terms.push((key.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        ListParams {
            page,
            per,
            sort,
            filter,
            terms,
        }
    }

    /// The sort key (first of `a|b`) and whether it is descending.
    fn sort_key(&self) -> Option<(&str, bool)> {
        let first = self.sort.as_deref()?.split('|').next()?.trim();
        Some(match first.strip_prefix('-') {
            Some(k) => (k.trim(), true),
            None => (first.strip_prefix('+').unwrap_or(first), false),
        })
    }

    pub fn template_sort(&self) -> Result<(TemplateSort, bool), ApiError> {
        match self.sort_key() {
            None => Ok((TemplateSort::UpdatedAt, true)),
            Some(("name", d)) => Ok((TemplateSort::Name, d)),
            Some(("created_at", d)) => Ok((TemplateSort::CreatedAt, d)),
            Some(("updated_at", d)) => Ok((TemplateSort::UpdatedAt, d)),
            Some((k, _)) => Err(ApiError::unprocessable(format!(
                "sort {k:?} is not supported; use name, created_at or updated_at (prefix - for descending)"
            ))),
        }
    }

    pub fn badge_sort(&self) -> Result<(BadgeSort, bool), ApiError> {
        match self.sort_key() {
            None => Ok((BadgeSort::Created, true)),
            Some(("created_at", d)) => Ok((BadgeSort::Created, d)),
            Some(("issued_at", d)) => Ok((BadgeSort::Issued, d)),
            Some(("updated_at", d)) => Ok((BadgeSort::Updated, d)),
            Some((k, _)) => Err(ApiError::unprocessable(format!(
                "sort {k:?} is not supported; use created_at, issued_at or updated_at (prefix - for descending)"
            ))),
        }
    }

    pub fn event_sort_desc(&self) -> Result<bool, ApiError> {
        match self.sort_key() {
            None => Ok(true),
            Some(("occurred_at" | "created_at", d)) => Ok(d),
            Some((k, _)) => Err(ApiError::unprocessable(format!(
                "sort {k:?} is not supported; use occurred_at or -occurred_at"
            ))),
        }
    }

    pub fn template_filter(&self) -> Result<TemplateFilter, ApiError> {
        let mut f = TemplateFilter::default();
        for (k, v) in &self.terms {
            match k.as_str() {
                "state" => {
                    for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        let st = TemplateState::parse(s).ok_or_else(|| {
                            ApiError::unprocessable(format!(
                                "filter state::{s} is invalid; use draft, active or archived"
                            ))
                        })?;
                        f.states |= st.bit();
                    }
                }
                "name" => {
                    f.name = Some(
                        match v.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                            Some(exact) => NameMatch::Exact(exact.to_owned()),
                            None => NameMatch::Contains(v.to_lowercase()),
                        },
                    )
                }
                "query" => f.query = Some(v.to_lowercase()),
                "public" => f.public = Some(parse_bool_filter(k, v)?),
                "id" => f.ids = split_list(v),
                _ => {}
            }
        }
        Ok(f)
    }

    pub fn badge_filter(&self) -> Result<BadgeFilter, ApiError> {
        let mut f = BadgeFilter::default();
        for (k, v) in &self.terms {
            match k.as_str() {
                "recipient_email" | "recipient_email_all" => {
                    f.recipient_email = Some(v.to_lowercase())
                }
                "badge_template_id" => f.template_ids = split_list(v),
                "state" => {
                    for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        let st = BadgeState::parse(s).ok_or_else(|| {
                            ApiError::unprocessable(format!(
                                "filter state::{s} is invalid; use pending, accepted, rejected or revoked"
                            ))
                        })?;
                        f.states |= st.bit();
                    }
                }
                "issuer_earner_id" => f.issuer_earner_id = Some(v.clone()),
                "query" => f.query = Some(v.to_lowercase()),
                "public" => f.public = Some(parse_bool_filter(k, v)?),
                _ => {}
            }
        }
        Ok(f)
    }

    pub fn event_types(&self) -> Vec<String> {
        self.terms
            .iter()
            .filter(|(k, _)| k == "event_type")
            .flat_map(|(_, v)| split_list(v))
            .collect()
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_bool_filter(k: &str, v: &str) -> Result<bool, ApiError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::unprocessable(format!(
            "filter {k}::{v} is invalid; use true or false"
        ))),
    }
}

/// Pagination metadata of list responses.
#[derive(Debug, Serialize)]
pub(crate) struct Metadata {
    pub count: usize,
    pub current_page: usize,
    pub total_count: usize,
    pub total_pages: usize,
    pub per: usize,
    pub previous_page_url: Option<String>,
    pub next_page_url: Option<String>,
}

impl Metadata {
    /// Builds the metadata; page links are absolute and keep `per`, `sort`, `filter`
    /// and any other parameter of the request.
    pub fn new(req: &ReqCtx, lp: &ListParams, total: usize, count: usize) -> Self {
        let total_pages = total.div_ceil(lp.per);
        let next = (lp.page < total_pages).then(|| page_url(req, lp, lp.page + 1));
        let prev = (lp.page > 1).then(|| page_url(req, lp, lp.page - 1));
        Metadata {
            count,
            current_page: lp.page,
            total_count: total,
            total_pages,
            per: lp.per,
            previous_page_url: prev,
            next_page_url: next,
        }
    }
}

fn page_url(req: &ReqCtx, lp: &ListParams, page: usize) -> String {
    let mut u = String::with_capacity(req.origin.len() + req.path.len() + 64);
    let _ = write!(u, "{}{}?page={page}&per={}", req.origin, req.path, lp.per);
    if let Some(s) = &lp.sort {
        let _ = write!(u, "&sort={}", QueryEncoded(s));
    }
    if let Some(f) = &lp.filter {
        let _ = write!(u, "&filter={}", QueryEncoded(f));
    }
    for (k, v) in &req.query {
        if !matches!(k.as_str(), "page" | "per" | "sort" | "filter") {
            let _ = write!(u, "&{}={}", QueryEncoded(k), QueryEncoded(v));
        }
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(q: &str) -> ReqCtx {
        ReqCtx {
            origin: "http://h:1".into(),
            base: "http://h:1/".into(),
            path: "/v1/organizations/o/badge_templates/".into(),
            query: parse_pairs(q),
        }
    }

    #[test]
    fn params_and_links() {
        let r = req("filter=state%3A%3Aactive%7Cname%3A%3AX&per=2&page=2&sort=-name&x=1");
        let lp = ListParams::from_ctx(&r);
        assert_eq!((lp.page, lp.per), (2, 2));
        assert_eq!(lp.template_sort().unwrap(), (TemplateSort::Name, true));
        let f = lp.template_filter().unwrap();
        assert_eq!(f.states, TemplateState::Active.bit());
        let m = Metadata::new(&r, &lp, 5, 2);
        assert_eq!(m.total_pages, 3);
        assert_eq!(
            m.next_page_url.as_deref(),
            Some("http://h:1/v1/organizations/o/badge_templates/?page=3&per=2&sort=-name&filter=state%3A%3Aactive%7Cname%3A%3AX&x=1")
        );
        assert!(m.previous_page_url.unwrap().contains("page=1&"));
    }

    #[test]
    fn defaults_caps_and_errors() {
        let lp = ListParams::from_ctx(&req("per=1000&page=0"));
        assert_eq!((lp.page, lp.per), (1, MAX_PER));
        let lp = ListParams::from_ctx(&req("sort=bogus"));
        assert!(lp.template_sort().is_err());
        let lp = ListParams::from_ctx(&req("filter%5Bstate%5D=draft,archived"));
        assert_eq!(
            lp.template_filter().unwrap().states,
            TemplateState::Draft.bit() | TemplateState::Archived.bit()
        );
        let lp = ListParams::from_ctx(&req("filter=state::bogus"));
        assert!(lp.template_filter().is_err());
        let m = Metadata::new(&req(""), &ListParams::from_ctx(&req("")), 0, 0);
        assert_eq!((m.total_pages, m.next_page_url), (0, None));
    }
}
