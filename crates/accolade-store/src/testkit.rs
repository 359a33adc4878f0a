//! The conformance suite every `Store` implementation must pass (feature `testkit`).
//!
//! Each test is an `async fn(Arc<dyn Store>)` taking a fresh, empty, migrated store. An
//! implementation crate runs them all with
//!
//! ```ignore
//! accolade_store::conformance_suite!(async { Arc::new(make_fresh_store().await) as Arc<dyn Store> });
//! ```
//!
//! which expands to one `#[tokio::test(flavor = "multi_thread")]` per test below, so a failure
//! names the behaviour that broke.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::{NewTemplate, Page, Store, TemplateFilter};
use accolade_domain::template::Origin;

/// A new local template with the given name, active or not.
pub fn local_template(name: &str, active: bool) -> NewTemplate {
    NewTemplate {
        id: None,
        name: name.to_string(),
        description: format!("{name} description"),
        image_url: None,
        origin: Origin::Local,
        provider_state: "active".into(),
        is_active: active,
        allow_reaward: true,
        organization_id: None,
    }
}

pub async fn create_and_list_templates(store: Arc<dyn Store>) {
    let t = store.create_template(local_template("Demo", false)).await.unwrap();
    let page = store.list_templates(&TemplateFilter::default(), Page::default()).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, t.id);
    assert!(!page.items[0].is_active);
}

/// Expands to one tokio test per conformance test. `$make` is an async block that yields a
/// fresh `Arc<dyn Store>`.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            create_and_list_templates,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store: std::sync::Arc<dyn $crate::Store> = $make.await;
                $crate::testkit::$name(store).await;
            }
        )*
    };
}
