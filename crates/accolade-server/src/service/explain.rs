//! "Explain" on a template's admin page: what a sample event would do to each requirement and
//! penalty of the template, rule by rule, judged as event processing judges it (the event type,
//! then every data rule against the payload).

use accolade_domain::event::IncomingEvent;
use accolade_domain::rules::DataRule;
use accolade_domain::template::{Penalty, Requirement, TemplateConfig};
use accolade_domain::DomainError;

/// Why a sample cannot be judged.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a usable event: {0}")]
    Event(#[from] DomainError),
}

/// Reads a pasted sample event as ingest would.
pub fn sample(text: &str) -> Result<IncomingEvent, SampleError> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    IncomingEvent::from_value(value).map_err(|(e, _)| SampleError::Event(e))
}

/// What is judged: a requirement or a penalty of the template.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    Requirement(&'a Requirement),
    Penalty(&'a Penalty),
}

/// One requirement or penalty against the sample.
#[derive(Debug)]
pub struct Verdict<'a> {
    pub subject: Subject<'a>,
    /// The sample's event type is the one it listens to.
    pub type_matches: bool,
    /// Each data rule and whether the payload satisfies it.
    pub rules: Vec<(&'a DataRule, bool)>,
    /// The event type and every rule match: a requirement would be fulfilled, a penalty would
    /// reset its requirements.
    pub matched: bool,
}

/// Every requirement, then every penalty, of `config` against `ev`.
pub fn judge<'a>(config: &'a TemplateConfig, ev: &IncomingEvent) -> Vec<Verdict<'a>> {
    let verdict = |subject, event_type: &str, rules: &'a [DataRule]| {
        let type_matches = event_type == ev.event_type;
        let rules: Vec<(&DataRule, bool)> = rules
            .iter()
            .map(|r| (r, r.compile().matches(&ev.payload)))
            .collect();
        Verdict {
            subject,
            matched: type_matches && rules.iter().all(|(_, m)| *m),
            type_matches,
            rules,
        }
    };
    let requirements = config
        .requirements
        .iter()
        .map(|r| verdict(Subject::Requirement(r), &r.event_type, &r.rules));
    let penalties = config
        .penalties
        .iter()
        .map(|p| verdict(Subject::Penalty(p), &p.event_type, &p.rules));
    requirements.chain(penalties).collect()
}
