//! The users a fresh demo database starts with.

use sqlx::AnyPool;

struct SeedUser {
    user_id: &'static str,
    password: &'static str,
    name: &'static str,
    points: i64,
    call_option: i64,
    paid_callee: bool,
    call_unit_sec: i64,
    call_unit_price: i64,
    /// enableDownloadEffect: may download face-filter packages (§3.2 ③).
    face_filters: bool,
}

const SEED_USERS: [SeedUser; 5] = [
    SeedUser {
        user_id: "hanako",
        password: "hanako-pw",
        name: "山田花子",
        points: 1000,
        call_option: 3,
        paid_callee: false,
        call_unit_sec: 0,
        call_unit_price: 0,
        face_filters: true,
    },
    SeedUser {
        user_id: "taro",
        password: "taro-pw",
        name: "佐藤太郎",
        points: 500,
        call_option: 1,
        paid_callee: false,
        call_unit_sec: 0,
        call_unit_price: 0,
        face_filters: true,
    },
    // Too few points for one minute with airi: shows the refusal.
    SeedUser {
        user_id: "yuki",
        password: "yuki-pw",
        name: "鈴木ゆき",
        points: 20,
        call_option: 1,
        paid_callee: false,
        call_unit_sec: 0,
        call_unit_price: 0,
        // No face-filter licence: shows enableDownloadEffect=0.
        face_filters: false,
    },
    // A performer: callers pay 100 yen a minute.
    SeedUser {
        user_id: "airi",
        password: "airi-pw",
        name: "星野あいり",
        points: 0,
        call_option: 7,
        paid_callee: false,
        call_unit_sec: 60,
        call_unit_price: 100,
        face_filters: true,
    },
    // A support line: the site pays for calls to it (paidCallee).
    SeedUser {
        user_id: "support",
        password: "support-pw",
        name: "サポート窓口",
        points: 5000,
        call_option: 0,
        paid_callee: true,
        call_unit_sec: 60,
        call_unit_price: 10,
        face_filters: true,
    },
];

pub(super) async fn seed_if_empty(pool: &AnyPool) -> Result<(), sqlx::Error> {
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await?;
    if users > 0 {
        return Ok(());
    }
    for user in SEED_USERS {
        sqlx::query(
            "INSERT INTO users (user_id, password, name, points, enable_download_effect, \
             call_option, paid_callee, call_unit_sec, call_unit_price) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(user.user_id)
        .bind(user.password)
        .bind(user.name)
        .bind(user.points)
        .bind(i64::from(user.face_filters))
        .bind(user.call_option)
        .bind(i64::from(user.paid_callee))
        .bind(user.call_unit_sec)
        .bind(user.call_unit_price)
        .execute(pool)
        .await?;
    }
    Ok(())
}
