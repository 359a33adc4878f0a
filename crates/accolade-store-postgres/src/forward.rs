//! `forward!`: implements a store trait whose methods only hand their arguments to a function of
//! one of this crate's modules, run on a connection or in a transaction; and `in_tx!`, which runs
//! such a call in a transaction and commits.
//!
//! ```text
//! forward! {
//!     impl ConfigStore for PgStore {
//!         conn          fn get_requirement(id: &str) -> Requirement = config::requirement;
//!         config_change fn update_template(id: &str, patch: TemplatePatch) -> Template
//!             = config::update_template;
//!
//!         async fn active_config(&self) -> Result<(i64, Vec<TemplateConfig>)> {
//!             // written out: more than one call
//!         }
//!     }
//! }
//! ```
//!
//! A line `MODE fn NAME(ARGS) -> T = FUNCTION;` is the trait method `NAME(&self, ARGS) ->
//! Result<T>`, which calls `FUNCTION(connection, ARGS)` where `MODE` says on what:
//!
//! - `conn`: a connection from the pool, each statement committing on its own;
//! - `write`: a read-write transaction (`PgStore::write`), committed by `in_tx!`;
//! - `snapshot`: a read-only transaction on one snapshot (`PgStore::snapshot`);
//! - `config_change`: a transaction holding the configuration lock (`PgStore::config_change`).
//!
//! The two lines above become
//!
//! ```text
//! async fn get_requirement(&self, id: &str) -> Result<Requirement> {
//!     config::requirement(&mut *self.conn().await?, id).await
//! }
//!
//! async fn update_template(&self, id: &str, patch: TemplatePatch) -> Result<Template> {
//!     in_tx!(self.config_change().await?, |c| config::update_template(c, id, patch))
//! }
//! ```
//!
//! Arguments are passed as the trait method receives them. A method that does more than that
//! (several calls, a transaction chosen at run time, its own SQL) is written out in full
//! (`async fn …`) among the lines, in the trait's order, and kept as it is. The macro emits the
//! whole `#[async_trait]` impl, since `async_trait` must see every method.

/// Runs `$body` (an async expression using the connection `$c`) in the transaction `$tx` and
/// commits; an error returns early and the dropped transaction rolls back.
macro_rules! in_tx {
    ($tx:expr, |$c:ident| $body:expr) => {{
        let mut tx = $tx;
        let $c: &mut PgConnection = &mut tx;
        let out = $body.await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }};
}

macro_rules! forward {
    (impl $trait:ident for $ty:ty { $($body:tt)* }) => {
        forward!(@munch [$trait $ty] [] $($body)*);
    };

    // Every method read: the impl.
    (@munch [$trait:ident $ty:ty] [$($done:tt)*]) => {
        #[async_trait::async_trait]
        impl $trait for $ty {
            $($done)*
        }
    };
    // A method written out in full.
    (@munch $head:tt [$($done:tt)*]
        async fn $name:ident $params:tt -> $ret:ty { $($body:tt)* } $($rest:tt)*
    ) => {
        forward!(@munch $head [$($done)* async fn $name $params -> $ret { $($body)* }] $($rest)*);
    };
    // A forwarding line on a pool connection.
    (@munch $head:tt [$($done:tt)*]
        conn fn $name:ident ($($params:tt)*) -> $ret:ty = $func:path; $($rest:tt)*
    ) => {
        forward!(@munch $head [$($done)*
            async fn $name(&self, $($params)*) -> Result<$ret> {
                forward!(@call $func, [&mut *self.conn().await?] $($params)*).await
            }
        ] $($rest)*);
    };
    // A forwarding line in a transaction (`write`, `snapshot` or `config_change`).
    (@munch $head:tt [$($done:tt)*]
        $tx:ident fn $name:ident ($($params:tt)*) -> $ret:ty = $func:path; $($rest:tt)*
    ) => {
        forward!(@munch $head [$($done)*
            async fn $name(&self, $($params)*) -> Result<$ret> {
                in_tx!(self.$tx().await?, |c| forward!(@call $func, [c] $($params)*))
            }
        ] $($rest)*);
    };

    // The call: the connection, then the arguments by name.
    (@call $func:path, [$($c:tt)*] $($arg:ident: $t:ty),* $(,)?) => {
        $func($($c)*, $($arg),*)
    };
}
