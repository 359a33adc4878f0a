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
//!
//! The tests are grouped by subject:
//! - [`configuration`]: templates, requirements, penalties, the configuration version;
//! - [`examples`]: the eleven documented configuration examples and the penalty example of the
//!   Open edX badges feature, each configured exactly as documented;
//! - [`defects`]: the reference implementation's defects D1–D6, one test each;
//! - [`processing`]: exactly-once processing, award times, activation, fresh rules, concurrency,
//!   the inbox, learners and fulfilments;
//! - [`operations`]: manual award and revocation, delivery results, the outbox queue, rules as
//!   code, API tokens, rejected events, counters;
//! - [`credly`]: Credly organizations and keys, template sync, webhook template changes and
//!   notifications, provider award states, deferred jobs and their release on a key rotation;
//! - [`webhooks`]: outbound webhook subscriptions, fan-out, the delivery queue, retries and
//!   replay;
//! - [`admin`]: accounts and sessions of the `/admin` web UI: unique usernames, failed-login
//!   counting and locks, password changes ending sessions, session expiry, logout and purge;
//! - [`openbadges`]: the Open Badges 3.0 issuer: credentials reserved per local award and kept
//!   across a lost lease, the lease, signing once, status-list bits, versions and rollover,
//!   signing keys, the backlog;
//! - [`expiry`]: templates' `expires_after` and `criteria`, an award's `expires_at` fixed when
//!   it is made, the expiry sweep's one `badge.expired` event per award;
//! - [`backfill`]: the inbox scan, backfill jobs (one open per template, lease, cancel, resume
//!   after the cursor) and apply steps: each documented example backfilled equals live
//!   processing, penalties in event-time order, `since`, exactly once, revoking only when asked;
//! - [`import`]: an import's share of one organization: created once, a dry run and a repeat
//!   writing nothing, awards never duplicated, live processing continuing from imported progress;
//! - [`shared`]: tests taking two handles on one database (called by implementations directly).
//!
//! [`support`] holds the event builders and helpers the tests are written with; implementation
//! crates may use them for their own tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod admin;
pub mod backfill;
pub mod configuration;
pub mod credly;
pub mod defects;
pub mod examples;
pub mod expiry;
pub mod import;
pub mod openbadges;
pub mod opencredit;
pub mod operations;
pub mod processing;
pub mod shared;
pub mod support;
pub mod webhooks;

pub use admin::*;
pub use backfill::*;
pub use configuration::*;
pub use credly::*;
pub use defects::*;
pub use examples::*;
pub use expiry::*;
pub use import::*;
pub use openbadges::*;
pub use opencredit::*;
pub use operations::*;
pub use processing::*;
pub use support::local_template;
pub use webhooks::*;

/// Expands to one tokio test per conformance test. `$make` is an async block that yields a
/// fresh `Arc<dyn Store>`.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            create_and_list_templates,
            create_template_keeps_fields,
            template_filters_and_pagination,
            template_search_ignores_case_beyond_ascii,
            get_template_returns_configuration,
            unknown_template_is_not_found,
            update_template_fields,
            activate_and_deactivate_template,
            requirement_crud_and_default_groups,
            penalty_links_requirements,
            config_version_increases_on_every_change,
            example_01_any_grade_update,
            example_02_any_course_completion,
            example_03_any_course_except_demo,
            example_04_specific_course,
            example_05_two_courses_both_required,
            example_06_one_of_two_courses,
            example_07_any_ccx_completion,
            example_08_specific_ccx,
            example_09_any_ccx_of_master,
            example_10_ccx_of_master_except_one,
            example_11_master_or_ccx_except_3,
            penalty_example,
            d1_one_group_of_two_awards_nothing,
            d2_penalty_on_two_requirements_revokes_once,
            d3_requalifying_after_revocation_awards_again,
            d4_award_leaves_a_retryable_issue_job,
            d5_issued_at_is_the_completing_event_time,
            d6_requirement_without_rules_matches_any_event_of_its_type,
            deleted_requirement_does_not_strand_learners,
            group_added_after_the_award_is_no_edge_for_a_penalty,
            replay_in_same_batch_is_duplicate,
            replay_in_later_batch_is_duplicate,
            earned_at_is_time_of_completing_event,
            local_jobs_are_done_in_the_awarding_transaction,
            inactive_template_is_ignored,
            deactivating_keeps_awards_and_reactivating_resumes,
            rule_change_applies_to_next_batch,
            one_event_completes_several_templates,
            batch_sees_its_own_effects,
            concurrent_batches_award_exactly_once,
            concurrent_duplicate_is_processed_once,
            fulfillments_name_the_event,
            events_are_listed_by_learner,
            learners_are_recorded_from_events,
            empty_batch_is_a_no_op,
            large_batch_is_processed,
            unusual_text_is_stored_verbatim,
            manual_award_and_conflict,
            manual_revoke_and_conflict,
            unknown_ids_are_not_found,
            record_delivery_keeps_revoked_state,
            claim_jobs_returns_each_due_job_once,
            expired_lease_is_claimable_again,
            finish_job_succeeded_retry_dead,
            list_jobs_filters_by_status_and_kind,
            concurrent_claims_never_share_a_job,
            apply_template_creates_and_is_idempotent,
            apply_template_removes_absent_requirements,
            apply_template_rejects_unknown_requirement_key,
            api_tokens_are_found_by_hash,
            api_tokens_are_listed_revoked_and_touched,
            rejected_events_are_recorded,
            stats_follow_events_awards_and_jobs,
            credly_org_is_added_listed_and_unique,
            credly_org_update_renames_and_rotates,
            credly_oauth_org_is_added_and_switches_method,
            credly_key_rotation_is_claimed_once_and_recorded,
            credly_key_rotation_concurrent_claims_one_wins,
            credly_unknown_org_is_not_found,
            credly_sync_creates_inactive_templates,
            credly_sync_updates_changed_fields,
            credly_sync_is_stable_for_untrimmed_names,
            credly_sync_deactivates_unlisted_templates,
            credly_sync_reappearing_template_stays_inactive,
            credly_sync_dry_run_writes_nothing,
            credly_sync_records_last_sync,
            credly_sync_refuses_foreign_template_ids,
            credly_sync_leaves_other_organizations_alone,
            credly_apply_template_creates_and_updates,
            credly_apply_archived_deactivates,
            credly_apply_deleted_marks_deleted,
            credly_apply_deleted_unknown_is_missing,
            credly_notification_is_recorded_once_with_its_job,
            credly_notification_finish_and_list,
            credly_notifications_backlog_is_counted_and_settled_ones_pruned,
            credly_award_external_state_is_set_by_external_id,
            defer_job_keeps_its_attempts,
            release_jobs_waiting_for_key_frees_only_that_organizations_jobs,
            deferring_for_a_key_rotated_meanwhile_does_not_wait,
            deferring_for_refused_oauth_credentials_waits_for_release,
            finish_jobs_records_results_with_deliveries,
            outgoing_events_wait_until_published,
            webhook_subscriptions_crud,
            webhook_fan_out_one_delivery_per_matching_subscription,
            webhook_fan_out_cursor_is_idempotent,
            webhook_fan_out_without_subscribers_passes_events_by,
            webhook_claim_leases_deliveries,
            webhook_retry_follows_the_schedule,
            webhook_dead_after_max_age,
            webhook_replay_sends_the_event_again,
            admin_user_is_created_and_unique,
            admin_unknown_user_is_not_found,
            admin_failed_logins_are_counted_and_lock,
            admin_concurrent_attempts_are_counted_one_by_one,
            admin_successful_login_resets_failures,
            admin_password_change_ends_sessions_and_lock,
            admin_session_is_read_with_its_username,
            admin_session_expires,
            admin_session_is_deleted,
            admin_sessions_are_purged_once_expired,
            oc_apps_are_found_by_key_and_retiered,
            oc_register_creates_the_user_and_its_organization,
            oc_register_refuses_a_taken_address_and_writes_nothing,
            oc_addresses_verify_once,
            oc_tokens_are_found_by_hash,
            oc_badges_crud_and_list_by_creator,
            oc_member_badges_follow_the_recipient_address,
            oc_awards_of_linked_templates_become_member_badges,
            oc_a_verified_claim_takes_an_address_from_an_unverified_one,
            backfill_equals_live_processing_for_every_documented_example,
            backfill_applies_penalties_in_event_time_order,
            backfill_since_limits_the_history,
            backfill_is_exactly_once_and_revokes_only_when_asked,
            backfill_jobs_lease_cancel_and_resume,
            import_dry_run_writes_nothing,
            import_creates_every_row_and_a_repeat_changes_nothing,
            imported_progress_continues_under_live_processing,
            import_never_duplicates_an_award,
            scan_inbox_reads_types_and_ranges,
            ob_claim_reserves_one_credential_per_local_award,
            ob_credly_template_events_are_skipped,
            ob_complete_stores_each_credential_once,
            ob_lease_keeps_other_holders_out_until_it_expires,
            ob_revocation_sets_its_entry_bit_and_bumps_the_version,
            ob_status_lists_roll_over_when_half_used,
            ob_keys_are_added_once_and_rotated,
            ob_unknown_credentials_and_lists_are_not_found,
            ob_backlog_counts_events_after_the_cursor,
            ob_expired_events_are_passed_by,
            template_expiry_and_criteria_are_stored,
            expiry_is_fixed_when_the_award_is_made,
            expiry_sweep_notifies_each_expired_award_once,
            concurrent_expiry_sweeps_notify_once,
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
