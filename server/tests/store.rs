//! The store on its engines, SQLite and PostgreSQL: the same queries run on
//! both through sqlx's Any driver. PostgreSQL is a cluster the test starts
//! (Debian's, which scripts/setup.sh installs), or the one `DATABASE_URL`
//! names.

use nexmile_server::store::{Attempt, CallEnd, Device, OutboxEntry, PendingReport, Store};

async fn exercise(store: &Store, tag: &str) {
    use nexmile_server::secrets::secret_hash;
    use nexmile_server::store::Shown;
    let device = Device {
        site: format!("site-{tag}"),
        device_token: "106f7a7d-e11c-ef05-2e8c-54b459aa202e".into(),
        user_id: "hanako".into(),
        name: "山田花子".into(),
        session_hash: secret_hash(&format!("session-{tag}")),
        enable_download_effect: true,
        phone_number: Some(format!("050{tag}")),
        secret_hash: Some("ab".repeat(32)),
    };
    store.save_device(&device, 1_000).await.unwrap();
    let found = |hash: String, issued_after: i64, now: i64| {
        let store = store.clone();
        async move {
            store
                .device_by_session(&hash, issued_after, now)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        found(device.session_hash.clone(), 0, 2_000).await,
        Some((device.clone(), Shown::Current { issued_at: 1_000 }))
    );
    // Expired: issued before the oldest time still valid.
    assert_eq!(found(device.session_hash.clone(), 1_000, 2_000).await, None);
    // A rotation: the new token is current, the old one works until its grace ends.
    let rotated = secret_hash(&format!("rotated-{tag}"));
    assert!(
        store
            .rotate_session(&device, &rotated, 5_000, 9_000)
            .await
            .unwrap()
    );
    // Rotating from the old token again does nothing (another connection did it).
    assert!(
        !store
            .rotate_session(&device, "ff", 5_001, 9_000)
            .await
            .unwrap()
    );
    let renewed = Device {
        session_hash: rotated.clone(),
        ..device.clone()
    };
    assert_eq!(
        found(rotated.clone(), 0, 6_000).await,
        Some((renewed.clone(), Shown::Current { issued_at: 5_000 }))
    );
    assert_eq!(
        found(device.session_hash.clone(), 0, 8_999).await,
        Some((renewed.clone(), Shown::Replaced))
    );
    assert_eq!(found(device.session_hash.clone(), 0, 9_000).await, None);
    // An administrator's revocation ends both at once.
    assert_eq!(
        store.revoke_sessions(&device.site, "hanako").await.unwrap(),
        1
    );
    assert_eq!(found(rotated, 0, 6_000).await, None);
    assert_eq!(found(device.session_hash.clone(), 0, 6_000).await, None);
    // Activating again replaces the session, not adds a device.
    let again = Device {
        session_hash: secret_hash(&format!("session2-{tag}")),
        ..device.clone()
    };
    store.save_device(&again, 2).await.unwrap();
    assert_eq!(found(device.session_hash.clone(), 0, 3).await, None);
    assert_eq!(
        store
            .device_by_phone(&device.site, device.phone_number.as_deref().unwrap())
            .await
            .unwrap(),
        Some(again)
    );

    let call = format!("call-{tag}");
    store
        .call_started(&call, &device.site, "hanako", "airi", 10)
        .await
        .unwrap();
    let end = CallEnd {
        call_token: &call,
        reason: -2,
        overview: Some(r#"{"terminateReason":-2}"#),
        at: 20,
    };
    store.settle(&call, &[], true, Some(&end)).await.unwrap();
    let recent = store.recent_calls(100).await.unwrap();
    let record = recent.iter().find(|c| c.call_token == call).unwrap();
    assert_eq!((record.reason, record.ended_at), (Some(-2), Some(20)));
    assert_eq!(record.overview.as_ref().unwrap()["terminateReason"], -2);

    let mut entry = OutboxEntry {
        request_id: format!("request-{tag}"),
        site: device.site.clone(),
        url: "http://partner/CallService".into(),
        body: "%7B%7D".into(),
        first_try: 1_000,
        failures: 0,
        next_try: 1_000,
        state: "pending".into(),
    };
    store.enqueue(&entry).await.unwrap();
    assert!(
        store
            .claim_due(&device.site, "w1", 999, 999, 100)
            .await
            .unwrap()
            .iter()
            .all(|e| e.request_id != entry.request_id)
    );
    assert!(
        store
            .claim_due(&device.site, "w1", 1_000, 1_500, 100)
            .await
            .unwrap()
            .contains(&entry)
    );
    // Claimed: no other worker gets it until the lease ends, or until the
    // worker that holds it gives it back (a server that stops).
    assert!(
        store
            .claim_due(&device.site, "w2", 1_200, 1_200, 100)
            .await
            .unwrap()
            .iter()
            .all(|e| e.request_id != entry.request_id)
    );
    store.release_claims("w2").await.unwrap();
    assert!(
        store
            .claim_due(&device.site, "w2", 1_200, 1_200, 100)
            .await
            .unwrap()
            .iter()
            .all(|e| e.request_id != entry.request_id),
        "only the holder's claims are given back"
    );
    store.release_claims("w1").await.unwrap();
    assert!(
        store
            .claim_due(&device.site, "w2", 1_200, 1_200, 100)
            .await
            .unwrap()
            .contains(&entry)
    );
    entry.failures = 1;
    entry.next_try = 2_000;
    let attempt = Attempt {
        at: 1_000,
        status: 500,
        latency_ms: 12,
        error: None,
    };
    store.record_attempt(&entry, &attempt).await.unwrap();
    assert!(
        store
            .claim_due(&device.site, "w1", 1_999, 1_999, 100)
            .await
            .unwrap()
            .iter()
            .all(|e| e.request_id != entry.request_id)
    );
    let listed = store.outbox(1_000).await.unwrap();
    let (stored, attempts) = listed
        .iter()
        .find(|(e, _)| e.request_id == entry.request_id)
        .unwrap();
    assert_eq!(stored, &entry);
    assert_eq!(attempts, &vec![attempt]);
    // Pruning keeps what is pending, and what was first tried after the cut.
    let listed = |store: Store, id: String| async move {
        store
            .outbox(100_000)
            .await
            .unwrap()
            .iter()
            .any(|(e, _)| e.request_id == id)
    };
    store.prune_outbox(10_000).await.unwrap();
    assert!(listed(store.clone(), entry.request_id.clone()).await);
    entry.state = "delivered".into();
    let delivered = Attempt {
        at: 2_000,
        status: 200,
        latency_ms: 5,
        error: None,
    };
    store.record_attempt(&entry, &delivered).await.unwrap();
    store.prune_outbox(1_000).await.unwrap();
    assert!(listed(store.clone(), entry.request_id.clone()).await);
    store.prune_outbox(10_000).await.unwrap();
    assert!(!listed(store.clone(), entry.request_id.clone()).await);

    // A running call checkpointed twice, then the server dies: the next
    // start queues the latest record once and closes the call.
    let running = format!("running-{tag}");
    store
        .call_started(&running, &device.site, "hanako", "airi", 30)
        .await
        .unwrap();
    let report = PendingReport {
        key: format!("call/{running}"),
        site: device.site.clone(),
        url: "http://partner/CallService".into(),
        body: format!("first-{tag}"),
        reason: Some(4),
    };
    store
        .checkpoint(&running, std::slice::from_ref(&report), 31)
        .await
        .unwrap();
    let latest = PendingReport {
        body: format!("latest-{tag}"),
        ..report
    };
    store.checkpoint(&running, &[latest], 36).await.unwrap();
    let recovered = store.recover(40).await.unwrap();
    assert!(
        recovered.reports >= 1 && recovered.calls >= 1,
        "{recovered:?}"
    );
    let queued = |body: String| {
        let (store, site) = (store.clone(), device.site.clone());
        async move {
            store
                .claim_due(&site, "w1", 40, 40, 1_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.body == body)
                .count()
        }
    };
    assert_eq!(queued(format!("latest-{tag}")).await, 1);
    assert_eq!(queued(format!("first-{tag}")).await, 0);
    let recent = store.recent_calls(100).await.unwrap();
    let record = recent.iter().find(|c| c.call_token == running).unwrap();
    assert_eq!((record.reason, record.ended_at), (Some(4), Some(36)));
    // Recovered once: a second start finds nothing of it.
    store.recover(41).await.unwrap();
    assert_eq!(queued(format!("latest-{tag}")).await, 1);

    // A settled report leaves no record behind to recover.
    let settled = format!("settled-{tag}");
    let pending = PendingReport {
        key: format!("call/{settled}"),
        site: device.site.clone(),
        url: "http://partner/CallService".into(),
        body: format!("provisional-{tag}"),
        reason: Some(4),
    };
    store.checkpoint(&settled, &[pending], 50).await.unwrap();
    let final_report = OutboxEntry {
        request_id: format!("final-{tag}"),
        body: format!("final-{tag}"),
        ..entry.clone()
    };
    store
        .settle(
            &settled,
            &[(format!("call/{settled}"), final_report)],
            true,
            None,
        )
        .await
        .unwrap();
    store.recover(60).await.unwrap();
    assert_eq!(queued(format!("provisional-{tag}")).await, 0);
}

#[tokio::test]
async fn sqlite_file_keeps_everything_across_reopening() {
    let dir = std::env::temp_dir().join(format!("nexmile-store-{}", std::process::id()));
    let url = format!("sqlite://{}", dir.join("db/nexmile.db").display());
    exercise(&Store::open(&url).await.unwrap(), "a").await;
    // Reopening runs no migration twice and finds the data.
    let reopened = Store::open(&url).await.unwrap();
    assert!(
        reopened
            .device_by_session(&nexmile_server::secrets::secret_hash("session2-a"), 0, 3)
            .await
            .unwrap()
            .is_some()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A PostgreSQL cluster of the test's own: initdb in a scratch folder, a
/// free port on loopback, its socket in that folder; stopped and removed
/// when dropped (also after a failed assertion).
struct Cluster {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    port: u16,
}

impl Cluster {
    fn start() -> Self {
        // Debian keeps each major version's programs apart; take the newest.
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|version| version.path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .max()
            .expect("PostgreSQL is not installed: scripts/setup.sh installs it");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("nexmile-pg-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cluster = Self { dir, bin, port };
        // initdb refuses to run as root: there the cluster is the `postgres`
        // user's, whom Debian's package creates.
        if cluster.as_root() {
            cluster.run(
                std::process::Command::new("chown")
                    .arg("postgres")
                    .arg(&cluster.dir),
            );
        }
        let data = cluster.dir.join("data");
        let mut initdb = cluster.owned("initdb");
        initdb
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data);
        cluster.run(&mut initdb);
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            cluster.dir.display()
        );
        let mut start = cluster.owned("pg_ctl");
        start
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(cluster.dir.join("log"))
            .args(["-w", "start"]);
        cluster.run(&mut start);
        cluster
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn as_root(&self) -> bool {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
    }

    /// One of the cluster's programs, run as the cluster's owner.
    fn owned(&self, program: &str) -> std::process::Command {
        let program = self.bin.join(program);
        if self.as_root() {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            std::process::Command::new(program)
        }
    }

    fn run(&self, command: &mut std::process::Command) {
        let out = command.output().expect("PostgreSQL's programs run");
        assert!(
            out.status.success(),
            "{command:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .owned("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn postgresql() {
    let own;
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => {
            own = Cluster::start();
            own.url()
        }
    };
    let tag = format!("{}", std::process::id());
    exercise(&Store::open(&url).await.unwrap(), &tag).await;
}
