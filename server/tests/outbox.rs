//! The outbox worker against two partner sites on loopback: one that never
//! answers and one that does. The dead one's reports must not hold up the
//! live one's (security review M3: head-of-line blocking).

use std::sync::Arc;
use std::time::Duration;

use nexmile_server::clock::Clock;
use nexmile_server::config::Config;
use nexmile_server::partner::PartnerClient;
use nexmile_server::partner::outbox::Outbox;
use nexmile_server::store::{OutboxEntry, Store};

/// A partner that takes connections and never answers.
async fn silent_partner() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// A partner that accepts every report.
async fn answering_partner() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async { "result=0" });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_partner_does_not_hold_up_another_sites_reports() {
    let (dead, alive) = (silent_partner().await, answering_partner().await);
    let config = Config::parse(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1\"\ndatabase = \"sqlite::memory:\"\n\
         [[site]]\ncode = \"dead\"\napi_key = \"dead.key\"\ntoken = \"t1\"\nauth_url = \"http://{dead}/auth\"\n\
         call_service_url = \"http://{dead}/CallService\"\n\
         [[site]]\ncode = \"alive\"\napi_key = \"alive.key\"\ntoken = \"t2\"\nauth_url = \"http://{alive}/auth\"\n\
         call_service_url = \"http://{alive}/CallService\"\n"
    ))
    .unwrap();
    let store = Store::open("sqlite::memory:").await.unwrap();
    let clock = Clock::new(1.0);
    let (outbox, worker) =
        Outbox::start(store.clone(), Arc::new(config), PartnerClient::new(), clock);
    // Twelve reports for the dead site come first, then one for the live one.
    let mut queued: Vec<OutboxEntry> = (0..12)
        .map(|_| {
            outbox.entry(
                "dead",
                &format!("http://{dead}/CallService"),
                "%7B%7D".into(),
            )
        })
        .collect();
    queued.push(outbox.entry(
        "alive",
        &format!("http://{alive}/CallService"),
        "%7B%7D".into(),
    ));
    for entry in &queued {
        store.enqueue(entry).await.unwrap();
    }
    outbox.wake();
    let alive_id = queued.last().unwrap().request_id.clone();
    let mut delivered = false;
    for _ in 0..100 {
        let entries = store.outbox(100).await.unwrap();
        if entries
            .iter()
            .any(|(e, _)| e.request_id == alive_id && e.state == "delivered")
        {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Sequential delivery would have waited 12 × 8 s for the dead site.
    assert!(
        delivered,
        "the live site's report waited behind the dead one"
    );
    let pending = store
        .outbox(100)
        .await
        .unwrap()
        .iter()
        .filter(|(e, _)| e.site == "dead" && e.state == "pending")
        .count();
    assert_eq!(pending, 12);
    worker.abort();
}
