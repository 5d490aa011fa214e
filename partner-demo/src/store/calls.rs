//! Ended calls and the points they cost; points bought or auto-charged.

use nexmile_core::clock::UnixMillis;
use nexmile_core::wire::call::CallOverview;

use super::Store;

/// A 通話終了 to record, and whom to charge its talkingPoint.
pub(crate) struct CallEnd<'a> {
    pub call_token: &'a str,
    pub request_id: Option<&'a str>,
    pub caller_id: &'a str,
    pub callee_id: &'a str,
    pub payer_id: &'a str,
    pub overview: &'a CallOverview,
    pub at: UnixMillis,
}

/// Points added to a user, under the sid the Nexmile server gets back.
pub(crate) struct TopUp<'a> {
    pub sid: &'a str,
    pub user_id: &'a str,
    pub points: i64,
    /// `payment` or `autocharge`.
    pub source: &'a str,
    pub at: UnixMillis,
}

impl Store {
    /// Records the call and takes its points from the payer, once: a call
    /// already recorded under this callToken or request ID changes nothing.
    /// The points taken (never more than the payer has), or `None` for a repeat.
    pub async fn record_call_end(&self, end: &CallEnd<'_>) -> Result<Option<i64>, sqlx::Error> {
        let overview = serde_json::to_string(end.overview).expect("the overview serializes");
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO calls (call_token, request_id, caller_id, callee_id, payer_id, overview, \
             charged_points, ended_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT DO NOTHING",
        )
        .bind(end.call_token)
        .bind(end.request_id)
        .bind(end.caller_id)
        .bind(end.callee_id)
        .bind(end.payer_id)
        .bind(overview)
        .bind(end.at.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.commit().await?;
            return Ok(None);
        }
        let points: Option<i64> = sqlx::query_scalar("SELECT points FROM users WHERE user_id = ?")
            .bind(end.payer_id)
            .fetch_optional(&mut *tx)
            .await?;
        let talking_point = i64::try_from(end.overview.talking_point).unwrap_or(i64::MAX);
        let charged = talking_point.min(points.unwrap_or(0)).max(0);
        sqlx::query("UPDATE users SET points = points - ? WHERE user_id = ?")
            .bind(charged)
            .bind(end.payer_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE calls SET charged_points = ? WHERE call_token = ?")
            .bind(charged)
            .bind(end.call_token)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(charged))
    }

    /// Adds the points and records the top-up; the new balance, or `None`
    /// (and nothing recorded) for an unknown user.
    pub async fn top_up(&self, top_up: &TopUp<'_>) -> Result<Option<i64>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let balance: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET points = points + ? WHERE user_id = ? RETURNING points",
        )
        .bind(top_up.points)
        .bind(top_up.user_id)
        .fetch_optional(&mut *tx)
        .await?;
        if balance.is_some() {
            sqlx::query(
                "INSERT INTO top_ups (sid, user_id, points, source, at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(top_up.sid)
            .bind(top_up.user_id)
            .bind(top_up.points)
            .bind(top_up.source)
            .bind(top_up.at.0)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(balance)
    }
}
