//! Signing throughput of Open Badges credentials on this machine: builds and signs N
//! credentials (eddsa-rdfc-2022) on T threads and prints credentials per second.
//!
//! `cargo run --release -p accolade-openbadges --example sign_bench -- [N] [THREADS]`

use std::time::Instant;

use accolade_openbadges::credential::{Achievement, Award, Issuer};
use accolade_openbadges::{keys, proof, status_list};
use chrono::Utc;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(4000, |a| a.parse().expect("N"));
    let threads: usize = args.next().map_or_else(
        || std::thread::available_parallelism().map_or(1, |p| p.get()),
        |a| a.parse().expect("THREADS"),
    );
    let key = keys::signing_key([42; 32]);
    let issuer = Issuer {
        id: "did:web:badges.example.org".into(),
        name: "Example University".into(),
        url: Some("https://badges.example.org".into()),
        email: None,
    };
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (key, issuer) = (&key, &issuer);
            scope.spawn(move || {
                for i in (t..n).step_by(threads) {
                    let award = Award {
                        id: format!("urn:uuid:00000000-0000-4000-8000-{i:012}"),
                        issuer: issuer.clone(),
                        achievement: Achievement {
                            id: "https://badges.example.org/ob/v3/achievements/t1".into(),
                            name: "Course completed".into(),
                            description: "Passed every graded unit of the course.".into(),
                            criteria: "Pass the final exam (grade >= 0.8).".into(),
                            image: Some(
                                "https://badges.example.org/ob/v3/achievements/t1/image.svg".into(),
                            ),
                            achievement_type: "Badge".into(),
                            creator: Some(issuer.clone()),
                        },
                        email: Some(format!("learner{i}@example.org")),
                        salt: format!("{i:032x}"),
                        name: Some("Ada Lovelace".into()),
                        earned_at: Utc::now(),
                        valid_until: None,
                        status: status_list::entry(
                            "https://badges.example.org/ob/v3/status/1",
                            i as i64,
                        ),
                    };
                    let options = proof::ProofOptions {
                        verification_method: "did:web:badges.example.org#key-1".into(),
                        created: "2026-12-07T09:00:00Z".into(),
                    };
                    let signed = proof::sign_own(&award.unsigned(), key, &options).expect("signs");
                    std::hint::black_box(serde_json::to_string(&signed).unwrap());
                }
            });
        }
    });
    let elapsed = started.elapsed();
    println!(
        "signed {n} credentials on {threads} threads in {:.3} s: {:.0} credentials/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
}
