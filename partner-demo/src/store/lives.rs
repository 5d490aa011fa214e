//! Lives announced by the Nexmile server (11…13, 29) and the points viewers
//! spend in them.

use super::Store;

/// A live as the site lists it.
#[derive(Debug, Clone)]
pub(crate) struct LiveRecord {
    pub live_token: String,
    pub link_id: String,
    pub liver_id: String,
    pub title: String,
}

impl Store {
    pub async fn live_prepared(&self, live: &LiveRecord, at: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO lives (live_token, link_id, liver_id, title, prepared_at)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&live.live_token)
        .bind(&live.link_id)
        .bind(&live.liver_id)
        .bind(&live.title)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn live_on_air(&self, live_token: &str, at: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE lives SET on_air_at = ? WHERE live_token = ?")
            .bind(at)
            .bind(live_token)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// 13 or 29 (retried): the first one counts.
    pub async fn live_ended(&self, live_token: &str, at: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE lives SET ended_at = ? WHERE live_token = ? AND ended_at IS NULL")
            .bind(at)
            .bind(live_token)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Lives on air now, newest first.
    pub async fn lives_on_air(&self) -> Result<Vec<LiveRecord>, sqlx::Error> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT live_token, link_id, liver_id, title FROM lives
             WHERE on_air_at IS NOT NULL AND ended_at IS NULL ORDER BY on_air_at DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(live_token, link_id, liver_id, title)| LiveRecord {
                live_token,
                link_id,
                liver_id,
                title,
            })
            .collect())
    }

    /// Takes `points` from the user if the user has them, once per
    /// `request_id`: `Ok(false)` when the points are not there.
    pub async fn spend_in_live(
        &self,
        request_id: &str,
        live_token: &str,
        user_id: &str,
        what: &str,
        points: i64,
        at: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO live_spending (request_id, live_token, user_id, what, points, at)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(request_id)
        .bind(live_token)
        .bind(user_id)
        .bind(what)
        .bind(points)
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            // A repeat of a request already applied.
            return Ok(true);
        }
        let taken =
            sqlx::query("UPDATE users SET points = points - ? WHERE user_id = ? AND points >= ?")
                .bind(points)
                .bind(user_id)
                .bind(points)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if taken == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }
}
