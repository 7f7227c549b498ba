//! The call history as CSV (RFC 4180): one writer for every shell, so `airlock history
//! --csv` and the desktop's export write the same columns the same way. Rows are read in
//! keyset pages and written as they come, so an export of every call holds one page in
//! memory, never the whole history.

use std::borrow::Cow;
use std::io::Write;

use airlock_store::{
    HistoryFilter, HistoryRange, HistoryRow, MAX_HISTORY_PAGE, Millis, Store, StoreError,
};

/// The columns, in order.
pub const CSV_COLUMNS: [&str; 20] = [
    "intent_at",
    "outcome_at",
    "call_id",
    "task_id",
    "workflow",
    "server",
    "tool",
    "step_no",
    "attempt",
    "outcome",
    "allowed_by",
    "refused_by",
    "rule",
    "approved_by",
    "rejected_by",
    "approval_or_grant",
    "resolved_by",
    "args",
    "result",
    "error",
];

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the CSV failed: {0}")]
    Write(#[from] std::io::Error),
}

/// One field, quoted when it holds a comma, a quote, CR or LF (quotes doubled).
pub fn csv_field(s: &str) -> Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(s)
    }
}

/// One record, its fields separated by commas and ended by CRLF.
pub fn write_csv_record<W: Write, S: AsRef<str>>(out: &mut W, fields: &[S]) -> std::io::Result<()> {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(csv_field(field.as_ref()).as_bytes())?;
    }
    out.write_all(b"\r\n")
}

/// A row's fields, in [`CSV_COLUMNS`] order. Times are UTC, ISO 8601 with milliseconds;
/// arguments and results are their JSON. A refused call has `refused` as its outcome,
/// what refused it in `refused_by`, the rule that denied it (or asked for the approval)
/// in `rule`, the approval in `approval_or_grant`, and why in `error`.
pub fn csv_fields(row: &HistoryRow) -> [String; 20] {
    let c = &row.call;
    let allowed = c.allowed.as_ref();
    let refused = c.refusal.as_ref();
    [
        utc_time(c.intent_at),
        c.outcome_at.map(utc_time).unwrap_or_default(),
        c.id.clone(),
        c.task_id.clone(),
        row.workflow.clone(),
        row.server().to_owned(),
        c.tool.clone(),
        c.step_no.to_string(),
        c.attempt.to_string(),
        c.outcome.map_or("pending", |o| o.as_str()).to_owned(),
        allowed
            .map(|a| a.kind().as_str())
            .unwrap_or_default()
            .to_owned(),
        refused
            .map(|r| r.kind().as_str())
            .unwrap_or_default()
            .to_owned(),
        allowed
            .and_then(|a| a.rule())
            .or_else(|| refused.and_then(|r| r.rule()))
            .unwrap_or_default()
            .to_owned(),
        allowed
            .and_then(|a| a.approver())
            .unwrap_or_default()
            .to_owned(),
        refused
            .and_then(|r| r.rejected_by())
            .unwrap_or_default()
            .to_owned(),
        allowed
            .and_then(|a| a.reference())
            .or_else(|| refused.and_then(|r| r.approval()))
            .unwrap_or_default()
            .to_owned(),
        c.resolved_by.clone().unwrap_or_default(),
        c.args.to_string(),
        c.result
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        c.error.clone().unwrap_or_default(),
    ]
}

/// Writes every call matching `filter` (newest first, with a header) to `out`; returns
/// how many rows were written.
pub async fn export_history_csv<W: Write>(
    store: &Store,
    filter: &HistoryFilter,
    out: &mut W,
) -> Result<u64, ExportError> {
    write_csv_record(out, &CSV_COLUMNS)?;
    let mut range = HistoryRange::default();
    let mut written = 0;
    loop {
        let page = store
            .call_history(filter, &range, 0, MAX_HISTORY_PAGE)
            .await?;
        for row in &page {
            write_csv_record(out, &csv_fields(row))?;
        }
        written += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == MAX_HISTORY_PAGE as usize => {
                range.older_than = Some(last.key());
            }
            _ => break,
        }
    }
    out.flush()?;
    Ok(written)
}

const DAY_MS: i64 = 86_400_000;

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn utc_time(ms: Millis) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    let in_day = ms.rem_euclid(DAY_MS);
    let (h, min, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// The proleptic Gregorian date of a day number since 1970-01-01 (Howard Hinnant's).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_they_must_be() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\r"), "\"cr\r\"");
        assert_eq!(csv_field("{\"a\":1}"), "\"{\"\"a\"\":1}\"");
    }

    #[test]
    fn records_end_with_crlf() {
        let mut out = Vec::new();
        write_csv_record(&mut out, &["a", "b,c", ""]).expect("written");
        assert_eq!(out, b"a,\"b,c\",\r\n");
    }

    #[test]
    fn times_are_utc_with_milliseconds() {
        assert_eq!(utc_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_time(1_795_392_000_123), "2026-11-23T00:00:00.123Z");
        assert_eq!(
            utc_time(951_782_400_000 + 3_723_004),
            "2000-02-29T01:02:03.004Z"
        );
        assert_eq!(utc_time(-1), "1969-12-31T23:59:59.999Z");
    }
}
