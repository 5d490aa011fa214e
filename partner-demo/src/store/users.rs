//! Users, their points, one-time IDs and blocks.

use std::time::Duration;

use nexmile_core::clock::UnixMillis;
use nexmile_core::wire::codes::{CallOption, CandidateMode};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;

/// How long a one-time ID from a page stays usable.
pub(crate) const UNIQUE_ID_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// One row of `users`.
#[derive(Debug, Clone)]
pub(crate) struct UserAccount {
    pub user_id: String,
    pub password: String,
    pub name: String,
    pub profile_image_url: Option<String>,
    pub points: i64,
    pub enable_download_effect: bool,
    pub call_option: CallOption,
    /// Calls to this user are billed to this user, not the caller.
    pub paid_callee: bool,
    /// The tariff of calls to this user; 0 means free.
    pub call_unit_sec: u32,
    pub call_unit_price: u32,
}

const USER_COLUMNS: &str = "u.user_id, u.password, u.name, u.profile_image_url, u.points, \
     u.enable_download_effect, u.call_option, u.paid_callee, u.call_unit_sec, u.call_unit_price";

impl UserAccount {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let small = |name: &str| -> Result<u32, sqlx::Error> {
            let value: i64 = row.try_get(name)?;
            Ok(u32::try_from(value).unwrap_or(0))
        };
        Ok(Self {
            user_id: row.try_get("user_id")?,
            password: row.try_get("password")?,
            name: row.try_get("name")?,
            profile_image_url: row.try_get("profile_image_url")?,
            points: row.try_get("points")?,
            enable_download_effect: row.try_get::<i64, _>("enable_download_effect")? != 0,
            call_option: CallOption::from_bits_retain(small("call_option")?),
            paid_callee: row.try_get::<i64, _>("paid_callee")? != 0,
            call_unit_sec: small("call_unit_sec")?,
            call_unit_price: small("call_unit_price")?,
        })
    }
}

impl Store {
    pub async fn user(&self, user_id: &str) -> Result<Option<UserAccount>, sqlx::Error> {
        sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.user_id = ?"
        ))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(UserAccount::from_row)
        .transpose()
    }

    pub async fn users(&self) -> Result<Vec<UserAccount>, sqlx::Error> {
        sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u ORDER BY u.user_id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(UserAccount::from_row)
        .collect()
    }

    /// A new one-time ID for `user_id`, for an app link's `uniqueId`.
    pub async fn issue_unique_id(
        &self,
        user_id: &str,
        now: UnixMillis,
    ) -> Result<String, sqlx::Error> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        sqlx::query("INSERT INTO unique_ids (id, user_id, created_at) VALUES (?, ?, ?)")
            .bind(&id)
            .bind(user_id)
            .bind(now.0)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    /// The user of a one-time ID, which is used up by this call; `None` when
    /// it is unknown, already used or older than [`UNIQUE_ID_LIFETIME`].
    pub async fn redeem_unique_id(
        &self,
        unique_id: &str,
        now: UnixMillis,
    ) -> Result<Option<UserAccount>, sqlx::Error> {
        let oldest = now - UNIQUE_ID_LIFETIME;
        // One statement marks it used, so two requests racing cannot both win.
        let user_id: Option<String> = sqlx::query_scalar(
            "UPDATE unique_ids SET used_at = ? \
             WHERE id = ? AND used_at IS NULL AND created_at >= ? RETURNING user_id",
        )
        .bind(now.0)
        .bind(unique_id)
        .bind(oldest.0)
        .fetch_optional(&self.pool)
        .await?;
        match user_id {
            Some(user_id) => self.user(&user_id).await,
            None => Ok(None),
        }
    }

    pub async fn block(
        &self,
        blocker_id: &str,
        blocked_id: &str,
        now: UnixMillis,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(blocker_id)
        .bind(blocked_id)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The IP family `user_id` asked their media to use.
    pub async fn set_candidate_mode(
        &self,
        user_id: &str,
        mode: CandidateMode,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO candidate_modes (user_id, candidate_mode) VALUES (?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET candidate_mode = excluded.candidate_mode",
        )
        .bind(user_id)
        .bind(mode as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What [`Self::set_candidate_mode`] stored, if anything.
    pub async fn candidate_mode(
        &self,
        user_id: &str,
    ) -> Result<Option<CandidateMode>, sqlx::Error> {
        let stored: Option<i64> =
            sqlx::query_scalar("SELECT candidate_mode FROM candidate_modes WHERE user_id = ?")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(stored.map(|mode| match mode {
            1 => CandidateMode::Ipv4Only,
            2 => CandidateMode::Ipv6Only,
            _ => CandidateMode::Both,
        }))
    }

    pub async fn is_blocked(
        &self,
        blocker_id: &str,
        blocked_id: &str,
    ) -> Result<bool, sqlx::Error> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM blocks WHERE blocker_id = ? AND blocked_id = ?")
                .bind(blocker_id)
                .bind(blocked_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }
}
