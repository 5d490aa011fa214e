//! The HTTP surface as a hostile client and a framing page meet it
//! (security review M12): body limits, security headers on pages, and the
//! administrator's API on an address of its own.

use nexmile_testkit::world;

#[tokio::test(flavor = "multi_thread")]
async fn pages_carry_security_headers_and_bodies_are_bounded() {
    let world = world(1.0).await;
    let http = world.http();
    let url = world.server.url();
    // The web version's page and an install page: no framing by other sites,
    // only their own scripts.
    for page in [
        format!("{url}/web/makecall/"),
        format!("{url}/sbxapp/makecall/?site=newsite1&calleeId=airi"),
    ] {
        let response = http.get(&page).send().await.unwrap();
        let headers = response.headers();
        let policy = headers
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{page}: no CSP in {headers:?}"))
            .to_str()
            .unwrap();
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert_eq!(headers["x-frame-options"], "DENY", "{page}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{page}");
    }
    // JSON answers are not pages: no CSP, but nosniff.
    let health = http.get(format!("{url}/health")).send().await.unwrap();
    assert!(health.headers().get("content-security-policy").is_none());
    assert_eq!(health.headers()["x-content-type-options"], "nosniff");
    // A body past 64 KiB is refused by its length before a handler reads
    // it: 413, or, when the server has answered and closed while the client
    // was still sending, the connection gone under the upload. Either way
    // the server goes on answering.
    let huge = format!(r#"{{"site":"newsite1","pad":"{}"}}"#, "x".repeat(200_000));
    for (path, body) in [
        ("/api/activate", huge.into_bytes()),
        ("/v1/json-rpc", vec![b' '; 100_000]),
    ] {
        let sent = world
            .http()
            .post(format!("{url}{path}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(answer) => assert_eq!(answer.status(), 413, "{path}"),
            Err(e) => assert!(e.is_request(), "{path}: {e}"),
        }
    }
    assert_eq!(
        world
            .http()
            .get(format!("{url}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    world.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_can_listen_on_its_own_address() {
    let world = world(1.0).await;
    let http = world.http();
    // The same server, restarted with `admin_listen`.
    let admin_port = nexmile_testkit::free_port();
    let world = world
        .restarted_with(&format!("admin_listen = \"127.0.0.1:{admin_port}\""))
        .await;
    let server = &world.server;
    assert_eq!(server.admin_addr.map(|a| a.port()), Some(admin_port));
    let get = |url: String| {
        let http = http.clone();
        async move {
            http.get(url)
                .bearer_auth("admin-secret")
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let public = server.url();
    let admin = format!("https://127.0.0.1:{admin_port}");
    // The public listener no longer knows /admin, even with the token.
    assert_eq!(get(format!("{public}/admin/outbox")).await, 404);
    assert_eq!(get(format!("{public}/admin/calls")).await, 404);
    assert_eq!(get(format!("{public}/health")).await, 200);
    // The admin listener serves it, over the same TLS, and nothing else.
    assert_eq!(get(format!("{admin}/admin/outbox")).await, 200);
    assert_eq!(get(format!("{admin}/admin/calls")).await, 200);
    assert_eq!(get(format!("{admin}/health")).await, 404);
    let anonymous = http
        .get(format!("{admin}/admin/outbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    world.server.stop().await;
}
