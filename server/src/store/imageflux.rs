//! The ImageFlux surface's tables: systems (tenants), their users, login
//! tokens (hashed), schedules and each schedule's chat.

use nexmile_compat::imageflux::{self as rules, Caller, HlsRung, Permissions};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// The ImageFlux tables of a store.
pub(crate) struct ImageFluxStore<'a> {
    store: &'a Store,
}

impl Store {
    pub(crate) fn imageflux(&self) -> ImageFluxStore<'_> {
        ImageFluxStore { store: self }
    }
}

/// The user a login token names, and when the token expires.
pub(crate) struct TokenUser {
    pub caller: Caller,
    pub system_id: String,
    pub name: String,
    pub expires_at: i64,
}

/// What a login checks: the user an email names in a system.
pub(crate) struct LoginUser {
    pub user_id: i64,
    pub system_id: String,
    pub password_hash: String,
}

/// A user as the user list shows it.
pub(crate) struct ListedUser {
    pub caller: Caller,
    pub name: String,
    pub email: String,
    pub created_at: i64,
}

/// A user to add to a system.
pub(crate) struct NewUser<'a> {
    pub system_id: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub is_master: bool,
    pub permissions: Permissions,
    pub created_at: i64,
}

/// What an update changes of a user; `None` keeps it.
#[derive(Default)]
pub(crate) struct UserChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub delivery: Option<bool>,
    pub view: Option<bool>,
    pub schedule: Option<bool>,
    pub user: Option<bool>,
}

/// One stored schedule.
pub(crate) struct Schedule {
    pub schedule_id: String,
    pub system_id: String,
    pub name: String,
    pub start_at: i64,
    pub end_at: i64,
    pub ladder: Vec<HlsRung>,
    pub channel_id: String,
    pub created_at: i64,
    pub created_by: String,
}

/// One chat message of a schedule.
pub(crate) struct ChatLine {
    pub seq: i64,
    pub user_name: String,
    pub body: String,
    pub at: i64,
}

const SCHEDULE_COLUMNS: &str =
    "schedule_id, system_id, name, start_at, end_at, params, channel_id, created_at, created_by";

fn schedule_of(row: &AnyRow) -> Result<Schedule, sqlx::Error> {
    let params: String = row.try_get("params")?;
    Ok(Schedule {
        schedule_id: row.try_get("schedule_id")?,
        system_id: row.try_get("system_id")?,
        name: row.try_get("name")?,
        start_at: row.try_get("start_at")?,
        end_at: row.try_get("end_at")?,
        ladder: serde_json::from_str(&params).unwrap_or_else(|_| rules::default_ladder()),
        channel_id: row.try_get("channel_id")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
    })
}

/// A user row's identity and rights (flags are stored as 0/1).
fn caller_of(row: &AnyRow) -> Result<Caller, sqlx::Error> {
    let flag = |column: &str| row.try_get::<i32, _>(column).map(|v| v != 0);
    Ok(Caller {
        user_id: row.try_get("user_id")?,
        is_master: flag("is_master")?,
        permissions: Permissions {
            delivery: flag("perm_delivery")?,
            view: flag("perm_view")?,
            schedule: flag("perm_schedule")?,
            user: flag("perm_user")?,
        },
    })
}

impl ImageFluxStore<'_> {
    fn pool(&self) -> &sqlx::AnyPool {
        &self.store.pool
    }

    pub(crate) async fn system_named(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT system_id FROM if_systems WHERE name = $1")
                .bind(name)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub(crate) async fn add_system(
        &self,
        system_id: &str,
        name: &str,
        access_code_hash: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO if_systems (system_id, name, access_code_hash) VALUES ($1, $2, $3)",
        )
        .bind(system_id)
        .bind(name)
        .bind(access_code_hash)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The system holding an access code, by either of its hashes.
    pub(crate) async fn access_code_owner(
        &self,
        hash: &str,
        legacy_hash: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT system_id FROM if_systems WHERE access_code_hash = $1 OR access_code_hash = $2",
        )
        .bind(hash)
        .bind(legacy_hash)
        .fetch_optional(self.pool())
        .await?)
    }

    pub(crate) async fn set_access_code(
        &self,
        system_id: &str,
        hash: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE if_systems SET access_code_hash = $1 WHERE system_id = $2")
            .bind(hash)
            .bind(system_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Adds a user with the next free id, which it returns.
    pub(crate) async fn add_user(&self, user: &NewUser<'_>) -> Result<i64, StoreError> {
        let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(user_id), 0) + 1 FROM if_users")
            .fetch_one(self.pool())
            .await?;
        let p = user.permissions;
        sqlx::query(
            "INSERT INTO if_users (user_id, system_id, name, email, password_hash, is_master,
                perm_delivery, perm_view, perm_schedule, perm_user, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(next)
        .bind(user.system_id)
        .bind(user.name)
        .bind(user.email)
        .bind(user.password_hash)
        .bind(i32::from(user.is_master))
        .bind(i32::from(p.delivery))
        .bind(i32::from(p.view))
        .bind(i32::from(p.schedule))
        .bind(i32::from(p.user))
        .bind(user.created_at)
        .execute(self.pool())
        .await?;
        Ok(next)
    }

    /// The user a login token (its hash) belongs to.
    pub(crate) async fn token_user(
        &self,
        token_hash: &str,
    ) -> Result<Option<TokenUser>, StoreError> {
        let row = sqlx::query(
            "SELECT t.expires_at, u.user_id, u.system_id, u.name, u.is_master,
                    u.perm_delivery, u.perm_view, u.perm_schedule, u.perm_user
             FROM if_tokens t JOIN if_users u ON u.user_id = t.user_id
             WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(TokenUser {
            caller: caller_of(&row)?,
            system_id: row.try_get("system_id")?,
            name: row.try_get("name")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    /// The user an email names in the system an access code (hashed) names.
    pub(crate) async fn login_user(
        &self,
        access_code_hash: &str,
        email: &str,
    ) -> Result<Option<LoginUser>, StoreError> {
        let row = sqlx::query(
            "SELECT u.user_id, u.system_id, u.password_hash FROM if_users u
             JOIN if_systems s ON s.system_id = u.system_id
             WHERE s.access_code_hash = $1 AND u.email = $2",
        )
        .bind(access_code_hash)
        .bind(email)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(LoginUser {
            user_id: row.try_get("user_id")?,
            system_id: row.try_get("system_id")?,
            password_hash: row.try_get("password_hash")?,
        }))
    }

    /// Keeps a new login token (its hash), forgetting the expired ones.
    pub(crate) async fn add_token(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM if_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        sqlx::query("INSERT INTO if_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(user_id)
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub(crate) async fn users(&self, system_id: &str) -> Result<Vec<ListedUser>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, name, email, is_master, perm_delivery, perm_view, perm_schedule,
                    perm_user, created_at
             FROM if_users WHERE system_id = $1 ORDER BY user_id",
        )
        .bind(system_id)
        .fetch_all(self.pool())
        .await?;
        let listed = rows.iter().map(|row| {
            Ok(ListedUser {
                caller: caller_of(row)?,
                name: row.try_get("name")?,
                email: row.try_get("email")?,
                created_at: row.try_get("created_at")?,
            })
        });
        Ok(listed.collect::<Result<_, sqlx::Error>>()?)
    }

    /// The user of `system_id` with this email.
    pub(crate) async fn user_with_email(
        &self,
        system_id: &str,
        email: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT user_id FROM if_users WHERE system_id = $1 AND email = $2")
                .bind(system_id)
                .bind(email)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Whether the user is its system's master; `None` if it is not of that system.
    pub(crate) async fn user_is_master(
        &self,
        user_id: i64,
        system_id: &str,
    ) -> Result<Option<bool>, StoreError> {
        let is_master: Option<i32> = sqlx::query_scalar(
            "SELECT is_master FROM if_users WHERE user_id = $1 AND system_id = $2",
        )
        .bind(user_id)
        .bind(system_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(is_master.map(|v| v != 0))
    }

    /// Applies `changes` to the user, in one transaction.
    pub(crate) async fn update_user(
        &self,
        user_id: i64,
        changes: &UserChanges,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let texts = [
            ("name", &changes.name),
            ("email", &changes.email),
            ("password_hash", &changes.password_hash),
        ];
        for (column, value) in texts {
            if let Some(value) = value {
                sqlx::query(&format!(
                    "UPDATE if_users SET {column} = $1 WHERE user_id = $2"
                ))
                .bind(value)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        let flags = [
            ("perm_delivery", changes.delivery),
            ("perm_view", changes.view),
            ("perm_schedule", changes.schedule),
            ("perm_user", changes.user),
        ];
        for (column, value) in flags {
            if let Some(allowed) = value {
                sqlx::query(&format!(
                    "UPDATE if_users SET {column} = $1 WHERE user_id = $2"
                ))
                .bind(i32::from(allowed))
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes the user and its login tokens.
    pub(crate) async fn delete_user(&self, user_id: i64) -> Result<(), StoreError> {
        for table in ["if_tokens", "if_users"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                .bind(user_id)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    /// A new password; every other login token of the user stops working.
    pub(crate) async fn set_password(
        &self,
        user_id: i64,
        password_hash: &str,
        kept_token_hash: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE if_users SET password_hash = $1 WHERE user_id = $2")
            .bind(password_hash)
            .bind(user_id)
            .execute(self.pool())
            .await?;
        sqlx::query("DELETE FROM if_tokens WHERE user_id = $1 AND token_hash <> $2")
            .bind(user_id)
            .bind(kept_token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The schedule `schedule_id` of `system_id`.
    pub(crate) async fn schedule(
        &self,
        schedule_id: &str,
        system_id: &str,
    ) -> Result<Option<Schedule>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM if_schedules WHERE schedule_id = $1 AND system_id = $2"
        ))
        .bind(schedule_id)
        .bind(system_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(schedule_of).transpose()?)
    }

    /// The schedule on `channel_id`, whatever the system.
    pub(crate) async fn schedule_on_channel(
        &self,
        channel_id: &str,
    ) -> Result<Option<Schedule>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM if_schedules WHERE channel_id = $1"
        ))
        .bind(channel_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(schedule_of).transpose()?)
    }

    /// The system's schedules, latest start first.
    pub(crate) async fn schedules(&self, system_id: &str) -> Result<Vec<Schedule>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM if_schedules WHERE system_id = $1 ORDER BY start_at DESC"
        ))
        .bind(system_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(schedule_of).collect::<Result<_, _>>()?)
    }

    pub(crate) async fn add_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO if_schedules ({SCHEDULE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&schedule.schedule_id)
        .bind(&schedule.system_id)
        .bind(&schedule.name)
        .bind(schedule.start_at)
        .bind(schedule.end_at)
        .bind(serde_json::to_string(&schedule.ladder).unwrap_or_default())
        .bind(&schedule.channel_id)
        .bind(schedule.created_at)
        .bind(&schedule.created_by)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Writes a schedule's name, times and ladder.
    pub(crate) async fn update_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE if_schedules SET name = $1, start_at = $2, end_at = $3, params = $4 WHERE schedule_id = $5",
        )
        .bind(&schedule.name)
        .bind(schedule.start_at)
        .bind(schedule.end_at)
        .bind(serde_json::to_string(&schedule.ladder).unwrap_or_default())
        .bind(&schedule.schedule_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub(crate) async fn delete_schedule(&self, schedule_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM if_schedules WHERE schedule_id = $1")
            .bind(schedule_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub(crate) async fn chat(&self, schedule_id: &str) -> Result<Vec<ChatLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, user_name, body, at FROM if_chat WHERE schedule_id = $1 ORDER BY seq",
        )
        .bind(schedule_id)
        .fetch_all(self.pool())
        .await?;
        let lines = rows.iter().map(|row| {
            Ok(ChatLine {
                seq: row.try_get("seq")?,
                user_name: row.try_get("user_name")?,
                body: row.try_get("body")?,
                at: row.try_get("at")?,
            })
        });
        Ok(lines.collect::<Result<_, sqlx::Error>>()?)
    }

    /// Adds a chat message as the schedule's next.
    pub(crate) async fn add_chat(
        &self,
        schedule_id: &str,
        user_name: &str,
        body: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let next: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM if_chat WHERE schedule_id = $1",
        )
        .bind(schedule_id)
        .fetch_one(self.pool())
        .await?;
        sqlx::query(
            "INSERT INTO if_chat (schedule_id, seq, user_name, body, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(schedule_id)
        .bind(next)
        .bind(user_name)
        .bind(body)
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
