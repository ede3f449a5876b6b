//! What the PostgreSQL tests share: the throwaway cluster's address, a connection, and a fresh
//! database per test. (A directory module, so cargo does not build it as a test of its own.)

use tokio_postgres::NoTls;

/// The cluster `tools/pg-cluster` started (`SIMEX_TEST_DATABASE_URL`); `None`, after saying so,
/// when there is none, unless `CI=true` or `SIMEX_REQUIRE_PG=1`, when the test fails instead.
pub fn base_url() -> Option<String> {
    match std::env::var("SIMEX_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let required = std::env::var("CI").is_ok_and(|v| v == "true")
                || std::env::var("SIMEX_REQUIRE_PG").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "SIMEX_TEST_DATABASE_URL is not set, and PostgreSQL is required here (CI or SIMEX_REQUIRE_PG=1): \
                 run through tools/test or `eval \"$(tools/pg-cluster start)\"`"
            );
            eprintln!(
                "SKIPPED: SIMEX_TEST_DATABASE_URL is not set (eval \"$(tools/pg-cluster start)\" to run this test)"
            );
            None
        }
    }
}

pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connects to PostgreSQL");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A fresh database of its own for one test.
pub fn fresh_database(base: &str, name: &str) -> String {
    let database = format!("simex_{name}_{}", std::process::id());
    block_on(async {
        let client = connect(base).await;
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {database}")).await.unwrap();
        client.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
    });
    let (server, _) = base.rsplit_once('/').expect("a URL ending in /database");
    format!("{server}/{database}")
}
