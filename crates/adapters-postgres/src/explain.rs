//! `EXPLAIN` for tests that check query plans: the store's own queries,
//! with their own binds, planned on a database seeded large enough that a
//! sequential scan would not be chosen by accident.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// `EXPLAIN <query>`.
struct Explain<Q>(Q);

impl<Q> QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for Explain<Q> {
    type SqlType = Text;
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Explain<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("EXPLAIN ");
        self.0.walk_ast(out.reborrow())
    }
}

/// The plan of `query`, one line a node or condition.
pub(crate) async fn explain<Q>(conn: &mut AsyncPgConnection, query: Q) -> String
where
    Q: QueryFragment<Pg> + Send,
{
    let plan: Vec<String> = Explain(query).load(conn).await.expect("explain");
    plan.join("\n")
}
