//! The credentials the sandbox accepts and how they change: authorization tokens (checked
//! against an organization, rotated by `POST …/authorization_tokens/rotate`), OAuth clients and
//! the Bearer access tokens they are issued, with their lifetimes.
//!
//! Rules (the crate docs and README list them for clients):
//! - a token or access token that is unknown or expired is refused with 401 everywhere;
//! - a valid one used on another existing organization also gets 401; on an unknown
//!   organization, 404;
//! - rotating replaces the token in every organization it acts for, and the old value stops
//!   working at once, as Credly documents;
//! - access tokens carry the scopes they were granted, which are recorded and not enforced.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;

use crate::auth::Presented;
use crate::error::ApiError;
use crate::model::{Org, State, TokenRec, DEFAULT_TOKEN_LIFETIME_DAYS};
use crate::util::new_id;

/// Access token lifetime of a client whose seed gives none: Credly's two hours.
pub const DEFAULT_ACCESS_TOKEN_LIFETIME_SECS: u64 = 7200;

/// The scopes Credly documents for the client credentials grant (credly-auth.md §4.2).
pub const SCOPES: [&str; 8] = [
    "authorization_tokens",
    "badge_templates",
    "events",
    "invitations",
    "issued_badges",
    "memberships",
    "recommendations",
    "workforce",
];

/// One OAuth application.
#[derive(Debug, Clone)]
pub(crate) struct OAuthClientRec {
    pub client_id: String,
    pub client_secret: String,
    pub org: String,
    pub lifetime_secs: u64,
}

/// One issued access token.
#[derive(Debug, Clone)]
pub(crate) struct AccessTokenRec {
    pub org: String,
    pub expires_at: DateTime<Utc>,
}

/// OAuth clients by id, and the access tokens issued so far.
#[derive(Default)]
pub(crate) struct OAuthState {
    pub clients: HashMap<String, OAuthClientRec>,
    access_tokens: HashMap<String, AccessTokenRec>,
}

/// A token answer's fields.
#[derive(Debug)]
pub(crate) struct Issued {
    pub access_token: String,
    pub expires_in: u64,
    pub scope: String,
    pub created_at: DateTime<Utc>,
}

/// Why a token request is refused (RFC 6749 §5.2 codes).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 401: unknown client, wrong secret or no client authentication.
    InvalidClient,
    /// 400: a grant other than `client_credentials`, or none.
    UnsupportedGrantType,
    /// 400: a scope Credly does not document.
    InvalidScope(String),
}

impl State {
    /// Adds (or replaces) an OAuth client of an organization.
    pub fn add_oauth_client(
        &mut self,
        org: &str,
        client_id: &str,
        client_secret: &str,
        lifetime_secs: Option<u64>,
    ) -> Result<(), ApiError> {
        if client_id.trim().is_empty() || client_secret.trim().is_empty() {
            return Err(ApiError::unprocessable(
                "client_id and client_secret must not be empty",
            ));
        }
        self.org(org)?;
        self.oauth.clients.insert(
            client_id.to_owned(),
            OAuthClientRec {
                client_id: client_id.to_owned(),
                client_secret: client_secret.to_owned(),
                org: org.to_owned(),
                lifetime_secs: lifetime_secs.unwrap_or(DEFAULT_ACCESS_TOKEN_LIFETIME_SECS),
            },
        );
        Ok(())
    }

    /// OAuth clients of an organization, by id.
    pub fn oauth_clients_of(&self, org: &str) -> Vec<&OAuthClientRec> {
        let mut list: Vec<_> = self
            .oauth
            .clients
            .values()
            .filter(|c| c.org == org)
            .collect();
        list.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        list
    }

    /// The client credentials grant. `grant_type` and `scope` as sent (`None` when absent).
    pub fn issue_access_token(
        &mut self,
        client_id: Option<&str>,
        client_secret: Option<&str>,
        grant_type: Option<&str>,
        scope: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Issued, Refusal> {
        let client = match (client_id, client_secret) {
            (Some(id), Some(secret)) => self
                .oauth
                .clients
                .get(id)
                .filter(|c| c.client_secret == secret)
                .cloned()
                .ok_or(Refusal::InvalidClient)?,
            _ => return Err(Refusal::InvalidClient),
        };
        if grant_type != Some("client_credentials") {
            return Err(Refusal::UnsupportedGrantType);
        }
        let scope = scope.unwrap_or("").split_whitespace().collect::<Vec<_>>();
        if let Some(bad) = scope.iter().find(|s| !SCOPES.contains(s)) {
            return Err(Refusal::InvalidScope((*bad).to_owned()));
        }
        // Expired tokens are dropped here, so a long run does not keep every token it issued.
        self.oauth.access_tokens.retain(|_, t| t.expires_at > now);
        let access_token = format!("sandbox-at-{}", new_id());
        self.oauth.access_tokens.insert(
            access_token.clone(),
            AccessTokenRec {
                org: client.org.clone(),
                expires_at: now + Duration::seconds(client.lifetime_secs as i64),
            },
        );
        Ok(Issued {
            access_token,
            expires_in: client.lifetime_secs,
            scope: scope.join(" "),
            created_at: now,
        })
    }

    /// Organizations a credential may act for at `now`.
    pub fn orgs_for(&self, presented: &Presented, now: DateTime<Utc>) -> Vec<&Org> {
        match presented {
            Presented::Token(token) => {
                let Some(ids) = self.tokens.get(token) else {
                    return Vec::new();
                };
                ids.iter()
                    .filter_map(|id| self.orgs.get(id))
                    .filter(|o| {
                        o.tokens
                            .iter()
                            .any(|t| &t.token == token && t.expires_at > now)
                    })
                    .collect()
            }
            Presented::Bearer(token) => self
                .oauth
                .access_tokens
                .get(token)
                .filter(|t| t.expires_at > now)
                .and_then(|t| self.orgs.get(&t.org))
                .into_iter()
                .collect(),
        }
    }

    /// Checks a credential against an organization (see the module docs for the rules).
    pub fn authorize(&self, presented: &Presented, org: Option<&str>) -> Result<(), ApiError> {
        let valid = self.orgs_for(presented, Utc::now());
        if valid.is_empty() {
            return Err(ApiError::unauthorized());
        }
        match org {
            None => Ok(()),
            Some(id) if valid.iter().any(|o| o.info.id == id) => Ok(()),
            Some(id) if !self.orgs.contains_key(id) => {
                Err(ApiError::not_found(format!("Organization {id} not found")))
            }
            Some(_) => Err(ApiError::unauthorized()),
        }
    }

    /// Replaces `old` by a new token in every organization it acts for; `old` stops working at
    /// once. Returns the new token as `org` holds it.
    pub fn rotate_token(&mut self, org: &str, old: &str) -> Result<TokenRec, ApiError> {
        let orgs = self.tokens.remove(old).unwrap_or_default();
        if !orgs.iter().any(|o| o == org) {
            // The guard let the token through for this organization, so this cannot happen;
            // put the index back rather than lose it.
            self.tokens.insert(old.to_owned(), orgs);
            return Err(ApiError::unauthorized());
        }
        let now = Utc::now();
        let new = format!("sandbox-token-{}", new_id());
        let mut rotated = None;
        for id in &orgs {
            if let Some(o) = self.orgs.get_mut(id) {
                o.tokens.retain(|t| t.token != old);
                o.add_token(&new, now, now + Duration::days(DEFAULT_TOKEN_LIFETIME_DAYS));
                if id == org {
                    rotated = o.tokens.iter().find(|t| t.token == new).cloned();
                }
            }
            self.index_token(&new, id);
        }
        rotated.ok_or_else(|| ApiError::not_found(format!("Organization {org} not found")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::{Seed, SeedOAuthClient, SeedOrganization, SeedToken};

    fn state() -> State {
        State::from_seed(Seed {
            organizations: vec![
                SeedOrganization {
                    id: "a".into(),
                    tokens: vec![SeedToken::new("shared"), SeedToken::new("only-a")],
                    oauth_clients: vec![SeedOAuthClient {
                        client_id: "cid".into(),
                        client_secret: "sec".into(),
                        access_token_lifetime_secs: Some(5),
                    }],
                    ..SeedOrganization::default()
                },
                SeedOrganization {
                    id: "b".into(),
                    tokens: vec![SeedToken::new("shared")],
                    ..SeedOrganization::default()
                },
            ],
            ..Seed::default()
        })
    }

    #[test]
    fn access_tokens_act_for_their_organization_until_they_expire() {
        let mut st = state();
        let now = Utc::now();
        assert_eq!(
            st.issue_access_token(
                Some("cid"),
                Some("bad"),
                Some("client_credentials"),
                None,
                now
            )
            .unwrap_err(),
            Refusal::InvalidClient
        );
        assert_eq!(
            st.issue_access_token(Some("cid"), Some("sec"), Some("password"), None, now)
                .unwrap_err(),
            Refusal::UnsupportedGrantType
        );
        assert_eq!(
            st.issue_access_token(
                Some("cid"),
                Some("sec"),
                Some("client_credentials"),
                Some("issued_badges read"),
                now
            )
            .unwrap_err(),
            Refusal::InvalidScope("read".into())
        );
        let issued = st
            .issue_access_token(
                Some("cid"),
                Some("sec"),
                Some("client_credentials"),
                Some("badge_templates  issued_badges"),
                now,
            )
            .unwrap();
        assert_eq!(issued.expires_in, 5);
        assert_eq!(issued.scope, "badge_templates issued_badges");
        let bearer = Presented::Bearer(issued.access_token);
        assert!(st.authorize(&bearer, Some("a")).is_ok());
        assert_eq!(st.authorize(&bearer, Some("b")).unwrap_err().status, 401);
        assert_eq!(st.authorize(&bearer, Some("zzz")).unwrap_err().status, 404);
        assert!(st.orgs_for(&bearer, now + Duration::seconds(6)).is_empty());
        let unknown = Presented::Bearer("sandbox-at-nope".into());
        assert_eq!(st.authorize(&unknown, Some("a")).unwrap_err().status, 401);
    }

    #[test]
    fn rotation_replaces_the_token_everywhere_at_once() {
        let mut st = state();
        let new = st.rotate_token("a", "shared").unwrap();
        assert!(new.expires_at > Utc::now() + Duration::days(179));
        let old = Presented::Token("shared".into());
        assert_eq!(st.authorize(&old, Some("a")).unwrap_err().status, 401);
        assert_eq!(st.authorize(&old, Some("b")).unwrap_err().status, 401);
        let fresh = Presented::Token(new.token.clone());
        assert!(st.authorize(&fresh, Some("a")).is_ok());
        assert!(st.authorize(&fresh, Some("b")).is_ok());
        // Other tokens are untouched.
        assert!(st
            .authorize(&Presented::Token("only-a".into()), Some("a"))
            .is_ok());
        assert_eq!(st.orgs["a"].tokens.len(), 2);
    }
}
