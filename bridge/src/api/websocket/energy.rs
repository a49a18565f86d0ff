//! `hearth/energy/summary`: what the dashboard's energy page shows, in one
//! call; [`crate::energy::summary`] figures it and describes the answer.
//!
//! Request: `{"type": "hearth/energy/summary", "period": "day" | "week" |
//! "month"}` (`period` defaults to `day`). Unknown keys or periods are
//! `invalid_format` naming the field (`… @ data['period']`).

use super::commands::Outcome;
use super::protocol::{self, Command, Fields};
use super::session::Session;
use crate::api::calls::Failure;
use crate::usage::periods::PeriodKind;
use serde_json::json;

pub use crate::energy::summary::{SummarySources, summary};

pub fn handle(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["period"])?;
    let kind = parse_period(f.str("period")?)?;
    let permit = s.calls_in_flight.clone().try_acquire_owned().map_err(|_| {
        Failure::new(
            protocol::ERR_HOME_ASSISTANT_ERROR,
            "too many calls of this connection are still running; wait for their results",
        )
    })?;
    let store = s.api.store.clone();
    let recorder = s.api.recorder.clone();
    let sources = s.api.energy_summary.clone();
    let data_dir = s.api.data_dir.clone();
    let (conn, id) = (s.conn.clone(), cmd.id);
    while s.calls.try_join_next().is_some() {}
    // The ledgers and statistics are on disk: off the connection's loop.
    s.calls.spawn(async move {
        let _permit = permit;
        let answer = tokio::task::spawn_blocking(move || {
            let now = store.clock().now_ms();
            summary(&store, recorder.as_deref(), &data_dir, &sources, kind, now)
        })
        .await
        .unwrap_or_else(|e| Err(format!("energy summary failed: {e}")));
        match answer {
            Ok(v) => conn.send(protocol::result(id, v)),
            Err(e) => conn.send(protocol::error(
                json!(id),
                protocol::ERR_HOME_ASSISTANT_ERROR,
                &e,
            )),
        };
    });
    Ok(())
}

fn parse_period(p: Option<&str>) -> Result<PeriodKind, Failure> {
    match p.unwrap_or("day") {
        "day" => Ok(PeriodKind::Day),
        "week" => Ok(PeriodKind::Week),
        "month" => Ok(PeriodKind::Month),
        other => Err(Failure::from(format!(
            "expected day, week or month, got `{other}` @ data['period']"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_names() {
        assert!(parse_period(Some("year")).is_err());
        assert_eq!(parse_period(None).unwrap(), PeriodKind::Day);
    }
}
