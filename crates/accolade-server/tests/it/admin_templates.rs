//! The admin UI's template pages as an operator sees them: the real binary serves them, the
//! operator signs in through the form, and the HTML is read. Only Credly templates have a
//! Credly state; a local template shows none, in the list and on its own page.

use accolade_credly_sandbox::{Sandbox, Seed, SeedOrganization, SeedTemplate, SeedToken};
use serde_json::json;

use crate::process::Operator;

const ORG: &str = "a11ce000-2b3c-4d5e-8f60-718293a4b5c6";
const KEY: &str = "admin-templates-key-01";
const CREDLY_TEMPLATE: &str = "00000000-0000-4000-8000-0000000ad41e";

fn seed() -> Seed {
    Seed {
        organizations: vec![SeedOrganization {
            id: ORG.into(),
            name: "Admin Org".into(),
            tokens: vec![SeedToken::new(KEY)],
            webhook_url: None,
            oauth_clients: Vec::new(),
        }],
        templates: vec![SeedTemplate {
            id: Some(CREDLY_TEMPLATE.into()),
            organization_id: ORG.into(),
            name: "Cloud Basics".into(),
            state: "active".into(),
            ..Default::default()
        }],
        generate: None,
    }
}

/// The text of each cell of the list row that links to template `id`.
fn row_cells(html: &str, id: &str) -> Vec<String> {
    let link = format!("href=\"/admin/templates/{id}\"");
    let row = html
        .split("<tr>")
        .find(|r| r.contains(&link))
        .unwrap_or_else(|| panic!("no row for {id} in:\n{html}"));
    let row = row.split("</tr>").next().unwrap();
    row.split("<td>")
        .skip(1)
        .map(|cell| {
            let mut text = String::new();
            let mut in_tag = false;
            for c in cell.split("</td>").next().unwrap().chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text.trim().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_credly_templates_show_a_credly_state() {
    let sb = Sandbox::start(seed()).await.unwrap();
    let work = Operator::new("admin-templates");
    work.create_admin("ann");
    let token = work.token();
    let server = work
        .serve_env(&[], &[("ACCOLADE_CREDLY__API_BASE_URL", &sb.api_base_url)])
        .await
        .with_token(&token);
    let (s, r) = server
        .api(
            "POST",
            "/credly/organizations",
            Some(json!({"uuid": ORG, "api_key": KEY})),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let (s, r) = server
        .api("POST", &format!("/credly/organizations/{ORG}/sync"), None)
        .await;
    assert_eq!((s, r["created"].as_u64()), (200, Some(1)), "{r}");
    let (s, local) = server
        .api("POST", "/templates", Some(json!({"name": "Local Hero"})))
        .await;
    assert_eq!(s, 201, "{local}");
    let local = local["id"].as_str().unwrap().to_string();

    let session = server.admin_session("ann").await;
    let (s, html) = server.admin_page(&session, "/admin/templates").await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("<th>Credly state</th>"), "{html}");
    // Name, origin, organization, Credly state, active, updated.
    let cells = row_cells(&html, &local);
    assert_eq!(cells[1], "local", "{cells:?}");
    assert_eq!(
        cells[3], "—",
        "a local template has no Credly state: {cells:?}"
    );
    let cells = row_cells(&html, CREDLY_TEMPLATE);
    assert_eq!(
        (cells[1].as_str(), cells[2].as_str(), cells[3].as_str()),
        ("credly", "Admin Org", "active"),
        "{cells:?}"
    );

    // Filtering on a Credly state lists Credly templates only.
    let (_, html) = server
        .admin_page(&session, "/admin/templates?state=active")
        .await;
    assert!(html.contains(CREDLY_TEMPLATE), "{html}");
    assert!(!html.contains(&local), "local template listed: {html}");
    let (_, html) = server
        .admin_page(&session, "/admin/templates?origin=local&state=active")
        .await;
    assert!(html.contains("No template matches."), "{html}");

    // The template pages: a Credly section with the state only for the Credly template.
    let (s, html) = server
        .admin_page(&session, &format!("/admin/templates/{local}"))
        .await;
    assert_eq!(s, 200);
    assert!(!html.contains("Credly state"), "{html}");
    let (s, html) = server
        .admin_page(&session, &format!("/admin/templates/{CREDLY_TEMPLATE}"))
        .await;
    assert_eq!(s, 200);
    assert!(
        html.contains("<dt>Credly state</dt><dd>active</dd>"),
        "{html}"
    );
}
