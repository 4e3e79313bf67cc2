//! Statements prepared once a connection where the client can keep them.
//!
//! tokio-postgres prepares a statement given as text on every call: a round
//! trip to parse and plan it, then one to run it. A pooled connection
//! (deadpool) keeps what it prepared, so a hot statement costs one round
//! trip and no parsing after the first call on that connection.

use std::future::Future;

use tokio_postgres::{GenericClient, Statement};

/// A client that prepares statements: from its connection's cache where it
/// has one (a pooled client or transaction), afresh otherwise (a bare
/// tokio-postgres client or transaction).
pub trait Statements: Sync {
    /// What runs the statements.
    type Client: GenericClient + Sync;

    fn client(&self) -> &Self::Client;

    /// `sql` prepared.
    fn statement(
        &self,
        sql: &str,
    ) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send;
}

/// `Statements` for a client type: what runs its statements, and how it
/// prepares them.
macro_rules! statements {
    ([$($lifetime:lifetime)?] $client:ty => $runs:ty, $prepare:ident) => {
        impl<$($lifetime)?> Statements for $client {
            type Client = $runs;

            fn client(&self) -> &Self::Client {
                self
            }

            fn statement(
                &self,
                sql: &str,
            ) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send {
                self.$prepare(sql)
            }
        }
    };
}

statements!(['a] deadpool_postgres::Transaction<'a> => tokio_postgres::Transaction<'a>, prepare_cached);
statements!([] deadpool_postgres::Client => tokio_postgres::Client, prepare_cached);
statements!(['a] tokio_postgres::Transaction<'a> => Self, prepare);
statements!([] tokio_postgres::Client => Self, prepare);
