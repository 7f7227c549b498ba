//! Durations as users write them: `250ms`, `10s`, `5m`, `24h`, `2d`.

use std::time::Duration;

/// Reads a duration such as `"250ms"` or `"2d"`; the error is a sentence for a diagnostic.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let explain = || {
        format!(
            "`{text}` is not a duration; write a whole number and a unit, such as \"250ms\", \"10s\", \"5m\", \"24h\" or \"2d\""
        )
    };
    if digits.is_empty() {
        return Err(explain());
    }
    let amount: u64 = digits.parse().map_err(|_| explain())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(explain()),
    };
    amount
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long a duration"))
}

/// Writes a duration back in the largest unit that divides it exactly.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}
