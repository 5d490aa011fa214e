//! A deployment whose app links live under another path (`[apps] link_path`)
//! answers them there, and tells iOS so.

use nexmile_server::config::Config;

#[tokio::test]
async fn app_links_under_a_configured_path_land_on_the_page() {
    let config = Config::parse(
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1\"\n\
         database = \"sqlite::memory:\"\n\
         [apps]\nlink_path = \"/links/\"\nios_app_ids = [\"A1B2C3D4E5.jp.nexmile.app\"]\n\
         desktop_download_url = \"https://nexmile.jp/download\"\n\
         [[site]]\ncode = \"newsite1\"\napi_key = \"k\"\ntoken = \"t\"\nauth_url = \"http://127.0.0.1:9/auth\"\n",
    )
    .unwrap();
    let server = nexmile_server::start(config).await.unwrap();
    let http = reqwest::Client::new();
    let page = http
        .get(format!(
            "{}/links/videoSetting/?site=newsite1&download=0",
            server.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("https://nexmile.jp/download")
    );
    let spec_path = http
        .get(format!(
            "{}/sbxapp/videoSetting/?site=newsite1&download=0",
            server.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        spec_path.status(),
        404,
        "only the configured path is an app-link path"
    );
    let association: serde_json::Value = http
        .get(format!(
            "{}/.well-known/apple-app-site-association",
            server.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        association["applinks"]["details"][0]["components"][0]["/"],
        "/links/*"
    );
    server.stop().await;
}
