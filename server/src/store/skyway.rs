//! The SkyWay Channel API's tables: channels made by `createChannel`, and
//! method calls per month.

use nexmile_compat::skyway::ChannelSummary;
use sqlx::Row;

use super::{Store, StoreError};

/// How a stored channel is looked up.
pub(crate) enum ChannelColumn {
    Id,
    Name,
}

impl Store {
    /// The stored channel whose id (lowercase) or name is `value`.
    pub(crate) async fn skyway_channel(
        &self,
        column: ChannelColumn,
        value: &str,
    ) -> Result<Option<ChannelSummary>, StoreError> {
        let column = match column {
            ChannelColumn::Id => "id",
            ChannelColumn::Name => "name",
        };
        let row = sqlx::query(&format!(
            "SELECT id, name, metadata FROM skyway_channels WHERE {column} = $1"
        ))
        .bind(value)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(ChannelSummary {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            metadata: row.try_get("metadata")?,
        }))
    }

    /// Stores a new channel; `Ok(false)` when its name is taken.
    pub(crate) async fn add_skyway_channel(
        &self,
        channel: &ChannelSummary,
        created_at: i64,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO skyway_channels (id, name, metadata, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&channel.id)
        .bind(&channel.name)
        .bind(&channel.metadata)
        .bind(created_at)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Counts one method call in `month` (`yyyy/MM`, JST); returns the month's total.
    pub(crate) async fn count_skyway_call(&self, month: &str) -> Result<u64, StoreError> {
        let calls: i64 = sqlx::query_scalar(
            "INSERT INTO skyway_usage (month, calls) VALUES ($1, 1)
             ON CONFLICT (month) DO UPDATE SET calls = skyway_usage.calls + 1
             RETURNING calls",
        )
        .bind(month)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(calls).unwrap_or(0))
    }
}
