//! The access rules at this door: the door's clock in its own time zone (daylight-saving time
//! from the tz database), and what the rules say about a recognised person now.

use facegate_proto::access::days_from_civil;
use facegate_proto::{AccessEntry, LocalTime, Verdict};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("time zone {zone:?}: {error} (an IANA name such as Europe/Paris, from the tz database)")]
    Zone { zone: String, error: jiff::Error },
    #[error("clock start {start:?}: {error} (RFC 3339, e.g. 2027-01-04T08:00:00+01:00)")]
    Start { start: String, error: jiff::Error },
}

/// The door's local time: the system clock (optionally shifted so it started at a set moment,
/// for tests and demonstrations) in the configured zone.
#[derive(Debug, Clone)]
pub struct DoorClock {
    zone: jiff::tz::TimeZone,
    shift_ms: i64,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl DoorClock {
    /// `zone`: an IANA time zone (default: the system's); `start`: the moment the clock reads
    /// now (default: the system clock).
    pub fn new(zone: Option<&str>, start: Option<&str>) -> Result<DoorClock, ClockError> {
        let zone = match zone {
            Some(name) => {
                jiff::tz::TimeZone::get(name).map_err(|error| ClockError::Zone { zone: name.into(), error })?
            }
            None => jiff::tz::TimeZone::system(),
        };
        let shift_ms = match start {
            Some(text) => {
                let at: jiff::Timestamp =
                    text.parse().map_err(|error| ClockError::Start { start: text.into(), error })?;
                at.as_millisecond() - now_ms()
            }
            None => 0,
        };
        Ok(DoorClock { zone, shift_ms })
    }

    /// Local time now.
    pub fn now(&self) -> LocalTime {
        self.local(now_ms().saturating_add(self.shift_ms))
    }

    /// Local time at `ms` after the Unix epoch.
    pub fn local(&self, ms: i64) -> LocalTime {
        let zoned =
            jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH).to_zoned(self.zone.clone());
        let (date, time) = (zoned.date(), zoned.time());
        LocalTime {
            day: days_from_civil(i32::from(date.year()), date.month() as u8, date.day() as u8).unwrap_or(0),
            weekday: date.weekday().to_monday_zero_offset() as u8,
            minute: time.hour() as u16 * 60 + time.minute() as u16,
        }
    }

    /// The zone's name, for logs.
    /// Seconds since the Unix epoch on this clock (shifted like [`DoorClock::now`]).
    pub fn unix_seconds(&self) -> u64 {
        u64::try_from(now_ms().saturating_add(self.shift_ms) / 1000).unwrap_or(0)
    }

    pub fn zone_name(&self) -> &str {
        self.zone.iana_name().unwrap_or("local")
    }
}

/// A date as `YYYY-MM-DD` from days since 1970-01-01.
fn date(day: i32) -> String {
    jiff::civil::date(1970, 1, 1)
        .checked_add(jiff::Span::new().days(i64::from(day)))
        .map_or_else(|_| format!("day {day}"), |d| d.to_string())
}

/// Why `entry` refuses at this moment, for the audit log (whose details hold 48 bytes: the
/// rule first, then the moment).
pub fn refusal(entry: &AccessEntry, verdict: Verdict, at: LocalTime) -> String {
    match verdict {
        Verdict::NotYetValid => {
            format!("valid from {} (today {})", entry.valid_from.map_or_else(String::new, date), date(at.day))
        }
        Verdict::Expired => {
            format!("expired {} (today {})", entry.valid_until.map_or_else(String::new, date), date(at.day))
        }
        Verdict::OutsideSchedule => {
            let windows: Vec<String> = entry.windows.iter().map(ToString::to_string).collect();
            let day = facegate_proto::access::DAY_NAMES[usize::from(at.weekday % 7)];
            format!("outside {} at {day} {:02}:{:02}", windows.join("; "), at.minute / 60, at.minute % 60)
        }
        Verdict::Allowed => "allowed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facegate_proto::access::parse_schedule;

    fn ms(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().expect("timestamp").as_millisecond()
    }

    #[test]
    fn local_time_follows_daylight_saving_time() {
        let paris = DoorClock::new(Some("Europe/Paris"), None).expect("zone");
        // 06:30 UTC is 07:30 in winter (UTC+1) and 08:30 in summer (UTC+2).
        let winter = paris.local(ms("2027-01-04T06:30:00Z"));
        let summer = paris.local(ms("2027-07-05T06:30:00Z"));
        assert_eq!((winter.weekday, winter.minute), (0, 7 * 60 + 30), "Monday 07:30");
        assert_eq!((summer.weekday, summer.minute), (0, 8 * 60 + 30), "Monday 08:30");
        // The night the clocks go forward (2027-03-28 02:00 -> 03:00): 01:30 UTC is 03:30.
        let spring = paris.local(ms("2027-03-28T01:30:00Z"));
        assert_eq!((spring.weekday, spring.minute), (6, 3 * 60 + 30));
        // Midnight local is still the previous UTC day.
        let midnight = paris.local(ms("2027-01-04T23:30:00Z"));
        assert_eq!((midnight.day - winter.day, midnight.weekday, midnight.minute), (1, 1, 30));
    }

    #[test]
    fn a_started_clock_reads_its_start_and_runs() {
        let clock = DoorClock::new(Some("UTC"), Some("2027-01-04T08:00:00Z")).expect("clock");
        let t = clock.now();
        assert_eq!(t.weekday, 0);
        assert!((8 * 60..8 * 60 + 2).contains(&t.minute), "{t:?}");
        assert!(DoorClock::new(Some("Mars/Olympus"), None).is_err());
        assert!(DoorClock::new(None, Some("next tuesday")).is_err());
    }

    #[test]
    fn refusals_name_the_window_or_date() {
        let clock = DoorClock::new(Some("UTC"), None).expect("zone");
        let saturday = clock.local(ms("2027-01-09T10:00:00Z"));
        let entry = AccessEntry {
            person_id: 3,
            valid_from: None,
            valid_until: facegate_proto::access::parse_date("2027-01-08"),
            windows: parse_schedule("Mon-Fri 07:00-19:00").expect("schedule"),
        };
        assert_eq!(entry.check(saturday), Verdict::Expired);
        assert_eq!(refusal(&entry, Verdict::Expired, saturday), "expired 2027-01-08 (today 2027-01-09)");
        let open = AccessEntry { valid_until: None, ..entry };
        assert_eq!(open.check(saturday), Verdict::OutsideSchedule);
        assert_eq!(refusal(&open, Verdict::OutsideSchedule, saturday), "outside Mon-Fri 07:00-19:00 at Sat 10:00");
    }
}
