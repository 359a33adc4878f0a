//! An import from another badge system (today: Open edX Credentials), as the store writes it: one
//! organization's share per call, one transaction, adding only what is missing.

use std::sync::Arc;

use accolade_domain::award::Award;
use accolade_domain::event::LearnerData;
use accolade_domain::template::TemplateConfig;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::models::NewCredlyOrganization;

/// One organization's share of an import.
#[derive(Debug, Clone)]
pub struct ImportPart {
    /// Created unless an organization with its UUID exists (then kept as it is, key included).
    pub organization: NewCredlyOrganization,
    /// Each template is created unless it exists; its requirements and penalties (with their
    /// links) are created unless their ids exist. The caller leaves out the configuration of a
    /// template that Accolade configures differently (a conflict, reported).
    pub templates: Vec<TemplateConfig>,
    /// Created unless the username exists (an existing learner's data is kept).
    pub learners: Vec<LearnerData>,
    /// (learner, template id, requirement id): created unless present, with no event id and
    /// `now` as the time.
    pub fulfilments: Vec<(Arc<str>, Arc<str>, Arc<str>)>,
    /// Created unless an award with the id or the Credly id (`external_id`) exists, or the learner
    /// already holds an unrevoked award of the template; numbered after the learner's existing
    /// episodes of the template. No outbox job and no outgoing event: the badges exist already.
    pub awards: Vec<Award>,
    pub now: DateTime<Utc>,
}

/// What an import call created (on a dry run: would create).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    pub organizations: u64,
    pub templates: u64,
    pub requirements: u64,
    pub penalties: u64,
    pub learners: u64,
    pub fulfilments: u64,
    pub awards: u64,
    /// Awards not created because the learner holds an unrevoked award of the template already.
    pub awards_held_already: u64,
}

impl ImportCounts {
    pub fn add(&mut self, o: ImportCounts) {
        self.organizations += o.organizations;
        self.templates += o.templates;
        self.requirements += o.requirements;
        self.penalties += o.penalties;
        self.learners += o.learners;
        self.fulfilments += o.fulfilments;
        self.awards += o.awards;
        self.awards_held_already += o.awards_held_already;
    }

    /// Whether the call created nothing (a repeated import).
    pub fn is_empty(&self) -> bool {
        *self
            == ImportCounts {
                awards_held_already: self.awards_held_already,
                ..Default::default()
            }
    }
}
