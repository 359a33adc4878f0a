//! `forward!`: implements a store trait whose methods only hand their arguments to a function of
//! one of this crate's modules, run on a connection.
//!
//! ```text
//! forward! {
//!     impl ConfigStore for SqliteStore {
//!         read  fn get_template(id: &str) -> TemplateConfig = config::template_config;
//!         write fn update_template(id: &str, patch: TemplatePatch) -> Template
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
//! Result<T>`, which calls `FUNCTION(connection, ARGS)`: `read` on a reader connection
//! (`SqliteStore::read`), `write` in one write transaction on the writer (`SqliteStore::write`).
//! The first line above becomes
//!
//! ```text
//! async fn get_template(&self, id: &str) -> Result<TemplateConfig> {
//!     let id = id.to_owned();
//!     self.read(move |c| config::template_config(c, &id)).await
//! }
//! ```
//!
//! The function runs on a blocking thread, so the closure owns its arguments: a borrowed one
//! (`&str`, `&T`) is copied with `to_owned` and lent to the function as a reference, an
//! `Option<&str>` becomes an `Option<String>` lent with `as_deref`, anything else is moved.
//!
//! A method that does more than that (several calls, an owned argument the function borrows, a
//! slice of borrowed strings) is written out in full (`async fn …`) among the lines, in the
//! trait's order, and kept as it is. The macro emits the whole `#[async_trait]` impl, since
//! `async_trait` must see every method.

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
    // A forwarding line.
    (@munch $head:tt [$($done:tt)*]
        $mode:ident fn $name:ident ($($params:tt)*) -> $ret:ty = $func:path; $($rest:tt)*
    ) => {
        forward!(@munch $head [$($done)*
            async fn $name(&self, $($params)*) -> Result<$ret> {
                forward!(@own $($params)*);
                self.$mode(move |c| forward!(@call $func, c, [] $($params)*)).await
            }
        ] $($rest)*);
    };

    // `let` statements giving the closure owned copies of the borrowed arguments.
    (@own) => {};
    (@own $arg:ident: Option<&str> $(, $($rest:tt)*)?) => {
        let $arg = $arg.map(str::to_owned);
        forward!(@own $($($rest)*)?);
    };
    (@own $arg:ident: &$t:ty $(, $($rest:tt)*)?) => {
        let $arg = $arg.to_owned();
        forward!(@own $($($rest)*)?);
    };
    (@own $arg:ident: $t:ty $(, $($rest:tt)*)?) => {
        forward!(@own $($($rest)*)?);
    };

    // The call, with the owned arguments lent back as the function takes them.
    (@call $func:path, $c:ident, [$($args:tt)*]) => {
        $func($c, $($args)*)
    };
    (@call $func:path, $c:ident, [$($args:tt)*] $arg:ident: Option<&str> $(, $($rest:tt)*)?) => {
        forward!(@call $func, $c, [$($args)* $arg.as_deref(),] $($($rest)*)?)
    };
    (@call $func:path, $c:ident, [$($args:tt)*] $arg:ident: &$t:ty $(, $($rest:tt)*)?) => {
        forward!(@call $func, $c, [$($args)* &$arg,] $($($rest)*)?)
    };
    (@call $func:path, $c:ident, [$($args:tt)*] $arg:ident: $t:ty $(, $($rest:tt)*)?) => {
        forward!(@call $func, $c, [$($args)* $arg,] $($($rest)*)?)
    };
}
