//! The benchmark workload shared by the drivers: the peer-baseline rule set (20 active templates,
//! 50 requirements in 2–3 groups, 100 data rules, 20 penalties).

use anyhow::Context;
use serde_json::json;

use crate::server::{call, Server};

pub const PASSING: &str = "org.openedx.learning.course.passing.status.updated.v1";
/// Distinct courses used by requirements.
pub const COURSES: usize = 25;
const GROUPS: [&str; 3] = ["A", "B", "C"];

pub fn course(i: usize) -> String {
    format!("course-v1:BenchX+C{i:02}+2026")
}

/// 20 active templates, 50 requirements in 2-3 groups, 100 data rules, 20 penalties.
pub async fn configure(client: &reqwest::Client, s: &Server) -> anyhow::Result<()> {
    let mut requirements = 0;
    let mut rules = 0;
    for t in 0..20 {
        let tpl = call(
            client,
            s,
            reqwest::Method::POST,
            "/api/v1/templates",
            json!({"name": format!("Bench template {t}")}),
        )
        .await?;
        let id = tpl["id"].as_str().context("template id")?.to_string();
        // 10 templates with 3 requirements (groups A, B, C), 10 with 2 (groups A, B): 50 in all.
        let n = if t < 10 { 3 } else { 2 };
        let mut req_ids = Vec::new();
        for (g, group) in GROUPS.iter().enumerate().take(n) {
            let c = course((t * 3 + g) % COURSES);
            let r = call(client, s, reqwest::Method::POST, &format!("/api/v1/templates/{id}/requirements"), json!({
                "event_type": PASSING,
                "group": group,
                "rules": [{"path": "is_passing", "op": "=", "value": "true"}, {"path": "course.course_key", "op": "=", "value": c}],
            })).await?;
            req_ids.push(r["id"].clone());
            requirements += 1;
            rules += 2;
        }
        call(client, s, reqwest::Method::POST, &format!("/api/v1/templates/{id}/penalties"), json!({
            "event_type": PASSING,
            "requirements": [req_ids[0]],
            "rules": [{"path": "is_passing", "op": "=", "value": "false"}, {"path": "course.course_key", "op": "=", "value": course((t * 3) % COURSES)}],
        })).await?;
        call(
            client,
            s,
            reqwest::Method::POST,
            &format!("/api/v1/templates/{id}/activate"),
            json!({}),
        )
        .await?;
    }
    println!("configured: 20 active templates, {requirements} requirements, {rules} requirement data rules + 40 penalty rules, 20 penalties");
    Ok(())
}
