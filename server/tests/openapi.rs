//! The OpenAPI document against the router it describes: every documented
//! route answers (something other than 404) on a running server, the served
//! document is the generated one, and `docs/openapi.json` is current.

use nexmile_server::config::Config;

#[tokio::test]
async fn every_documented_route_exists_and_the_published_document_is_current() {
    let document = nexmile_server::web::openapi::document();
    // The clone under test, as cargo says at run time (see module_graph.rs).
    let path = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(
            || env!("CARGO_MANIFEST_DIR").into(),
            std::path::PathBuf::from,
        )
        .join("../docs/openapi.json");
    let generated = serde_json::to_string_pretty(&document).unwrap() + "\n";
    // `NEXMILE_WRITE_SCHEMA=1 cargo test -p nexmile-server --test openapi` rewrites it.
    if std::env::var_os("NEXMILE_WRITE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    assert!(
        std::fs::read_to_string(&path).unwrap_or_default() == generated,
        "docs/openapi.json is stale: run NEXMILE_WRITE_SCHEMA=1 cargo test -p nexmile-server --test openapi"
    );

    let config = Config::parse(
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1\"\ndatabase = \"sqlite::memory:\"\n\
         [apps]\nandroid_package = \"jp.nexmile.app\"\nios_app_ids = [\"A1B2C3D4E5.jp.nexmile.app\"]\n",
    )
    .unwrap();
    let server = nexmile_server::start(config).await.unwrap();
    let http = reqwest::Client::new();
    let served: serde_json::Value = http
        .get(format!("{}/openapi.json", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, document);
    for (route, operations) in document["paths"].as_object().unwrap() {
        let concrete = route
            .replace("{path}", "wallpapers/x.png")
            .replace("{callToken}", "x");
        for method in operations.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let reply = http
                .request(method.clone(), format!("{}{concrete}", server.url()))
                .send()
                .await
                .unwrap();
            // A handler's own 404 (an unknown resource) says so; the router's is empty.
            let status = reply.status();
            let said = !reply.bytes().await.unwrap().is_empty();
            assert!(
                status != 404 || said,
                "{method} {route} is documented but not routed"
            );
        }
    }
    let missing = http
        .get(format!("{}/not/a/route", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    server.stop().await;
}
