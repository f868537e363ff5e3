//! Who may pass a door when: weekly time windows and validity dates per person, sent by the host
//! with [`Request::SetAccess`](crate::Request::SetAccess) and checked by the device on its own,
//! offline, in its local time (its time zone, so daylight-saving changes are the device's
//! calendar's, not the host's).
//!
//! A person the device holds templates for but who has no [`AccessEntry`] may pass at any time.

use crate::PersonId;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Time windows one person has at one door (the union of their groups' schedules there).
pub const WINDOWS_PER_PERSON: usize = 8;
/// Entries per [`Request::SetAccess`](crate::Request::SetAccess) message.
pub const ACCESS_PER_MESSAGE: usize = 64;
/// Minutes in a day: a window's `end` may be 1440 (midnight at the end of the day).
pub const DAY_MINUTES: u16 = 24 * 60;

/// Day names as schedules write them, Monday first.
pub const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A weekly window: on `days` (bit 0 Monday .. bit 6 Sunday), from `start` to `end` minutes
/// after local midnight. `end <= start` runs past midnight into the next day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub days: u8,
    pub start: u16,
    pub end: u16,
}

/// A moment in the door's local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    /// Days since 1970-01-01 in the local calendar.
    pub day: i32,
    /// 0 Monday .. 6 Sunday.
    pub weekday: u8,
    /// Minutes since local midnight (0..1440).
    pub minute: u16,
}

/// One person's rules at one door.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    pub person_id: PersonId,
    /// First day allowed (local calendar, days since 1970-01-01); `None`: no start.
    pub valid_from: Option<i32>,
    /// Last day allowed, inclusive; `None`: no end.
    pub valid_until: Option<i32>,
    /// When; empty: at any time.
    pub windows: heapless::Vec<Window, WINDOWS_PER_PERSON>,
}

/// What the rules say at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    NotYetValid,
    Expired,
    OutsideSchedule,
}

impl Window {
    pub fn contains(&self, t: LocalTime) -> bool {
        let on = |weekday: u8| self.days & (1 << (weekday % 7)) != 0;
        if self.start < self.end {
            on(t.weekday) && (self.start..self.end).contains(&t.minute)
        } else {
            // Past midnight: the evening of a listed day, or the early hours after one.
            (on(t.weekday) && t.minute >= self.start) || (on((t.weekday + 6) % 7) && t.minute < self.end)
        }
    }
}

impl AccessEntry {
    pub fn check(&self, t: LocalTime) -> Verdict {
        if self.valid_from.is_some_and(|d| t.day < d) {
            Verdict::NotYetValid
        } else if self.valid_until.is_some_and(|d| t.day > d) {
            Verdict::Expired
        } else if !self.windows.is_empty() && !self.windows.iter().any(|w| w.contains(t)) {
            Verdict::OutsideSchedule
        } else {
            Verdict::Allowed
        }
    }
}

/// Why a schedule's text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleError {
    /// Not `DAYS HH:MM-HH:MM`.
    Syntax,
    /// A day that is not Mon, Tue, Wed, Thu, Fri, Sat or Sun.
    Day,
    /// A time that is not HH:MM between 00:00 and 24:00.
    Time,
    /// Start and end equal (an empty window; "always" means any time).
    Empty,
    /// More than [`WINDOWS_PER_PERSON`] windows.
    TooMany,
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScheduleError::Syntax => "expected windows like \"Mon-Fri 07:00-19:00; Sat 09:00-13:00\" or \"always\"",
            ScheduleError::Day => {
                "days are Mon, Tue, Wed, Thu, Fri, Sat, Sun (ranges like Mon-Fri, lists like Mon,Wed)"
            }
            ScheduleError::Time => "times are HH:MM from 00:00 to 24:00",
            ScheduleError::Empty => "a window's start and end are the same",
            ScheduleError::TooMany => "more than 8 windows",
        })
    }
}

fn day_index(name: &str) -> Result<u8, ScheduleError> {
    DAY_NAMES.iter().position(|d| d.eq_ignore_ascii_case(name.trim())).map(|i| i as u8).ok_or(ScheduleError::Day)
}

fn parse_days(text: &str) -> Result<u8, ScheduleError> {
    let mut mask = 0u8;
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day_index(a)?, day_index(b)?);
                // Fri-Mon wraps over the weekend.
                let mut d = a;
                loop {
                    mask |= 1 << d;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => mask |= 1 << day_index(part)?,
        }
    }
    Ok(mask)
}

fn parse_time(text: &str) -> Result<u16, ScheduleError> {
    let (h, m) = text.trim().split_once(':').ok_or(ScheduleError::Time)?;
    let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return Err(ScheduleError::Time);
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| ScheduleError::Time)?, m.parse().map_err(|_| ScheduleError::Time)?);
    if m >= 60 || h * 60 + m > DAY_MINUTES {
        return Err(ScheduleError::Time);
    }
    Ok(h * 60 + m)
}

/// Parses `"Mon-Fri 07:00-19:00; Sat 09:00-13:00"` (windows separated by `;`); `"always"` (or
/// nothing) is any time, an empty list.
pub fn parse_schedule(text: &str) -> Result<heapless::Vec<Window, WINDOWS_PER_PERSON>, ScheduleError> {
    let mut out = heapless::Vec::new();
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("always") {
        return Ok(out);
    }
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (days, times) = part.split_once(char::is_whitespace).ok_or(ScheduleError::Syntax)?;
        let (start, end) = times.trim().split_once('-').ok_or(ScheduleError::Syntax)?;
        let window = Window { days: parse_days(days)?, start: parse_time(start)?, end: parse_time(end)? };
        if window.start == window.end {
            return Err(ScheduleError::Empty);
        }
        out.push(window).map_err(|_| ScheduleError::TooMany)?;
    }
    Ok(out)
}

impl fmt::Display for Window {
    /// `Mon-Fri 07:00-19:00`, as [`parse_schedule`] reads it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut d = 0u8;
        while d < 7 {
            if self.days & (1 << d) == 0 {
                d += 1;
                continue;
            }
            let mut e = d;
            while e + 1 < 7 && self.days & (1 << (e + 1)) != 0 {
                e += 1;
            }
            f.write_str(if first { "" } else { "," })?;
            first = false;
            match e - d {
                0 => f.write_str(DAY_NAMES[d as usize])?,
                1 => write!(f, "{},{}", DAY_NAMES[d as usize], DAY_NAMES[e as usize])?,
                _ => write!(f, "{}-{}", DAY_NAMES[d as usize], DAY_NAMES[e as usize])?,
            }
            d = e + 1;
        }
        let hm = |m: u16| (m / 60, m % 60);
        let ((sh, sm), (eh, em)) = (hm(self.start), hm(self.end));
        write!(f, " {sh:02}:{sm:02}-{eh:02}:{em:02}")
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (`None` if it does not exist).
pub fn days_from_civil(year: i32, month: u8, day: u8) -> Option<i32> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let len = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month) || day == 0 || day > len[usize::from(month - 1)] {
        return None;
    }
    // Shifted so the year starts in March (the leap day last); 400-year eras of 146097 days.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i32::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i32::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// `YYYY-MM-DD` as days since 1970-01-01.
pub fn parse_date(text: &str) -> Option<i32> {
    let mut parts = text.trim().splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    days_from_civil(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(weekday: u8, h: u16, m: u16) -> LocalTime {
        LocalTime { day: 20_000, weekday, minute: h * 60 + m }
    }

    #[test]
    fn office_hours_hold_on_weekdays_only() {
        let w = parse_schedule("Mon-Fri 07:00-19:00").expect("parse");
        assert_eq!(w.len(), 1);
        assert!(w[0].contains(at(0, 7, 0)), "the first minute is in");
        assert!(!w[0].contains(at(0, 19, 0)), "the end is out");
        assert!(w[0].contains(at(4, 18, 59)));
        assert!(!w[0].contains(at(5, 12, 0)), "Saturday");
        assert!(!w[0].contains(at(2, 6, 59)));
    }

    #[test]
    fn a_night_shift_runs_past_midnight() {
        let w = parse_schedule("Fri 22:00-06:00").expect("parse")[0];
        assert!(w.contains(at(4, 23, 30)));
        assert!(w.contains(at(5, 5, 59)), "Saturday morning belongs to Friday's shift");
        assert!(!w.contains(at(5, 6, 0)));
        assert!(!w.contains(at(4, 5, 0)), "Friday morning belongs to Thursday");
        assert!(!w.contains(at(5, 23, 0)));
    }

    #[test]
    fn schedules_read_back_as_written() {
        for text in ["Mon-Fri 07:00-19:00", "Sat,Sun 09:00-13:00", "Mon,Wed,Fri 00:00-24:00", "Sun 22:30-06:15"] {
            let w = parse_schedule(text).expect("parse");
            let mut s = heapless::String::<64>::new();
            core::fmt::write(&mut s, format_args!("{}", w[0])).expect("fits");
            assert_eq!(s.as_str(), text);
        }
        assert_eq!(parse_schedule("always").map(|w| w.len()), Ok(0));
        assert_eq!(parse_schedule("mon-fri 07:00-19:00; sat 09:00-12:00").map(|w| w.len()), Ok(2));
        assert_eq!(parse_schedule("Fri-Mon 10:00-11:00").map(|w| w[0].days), Ok(0b111_0001));
    }

    #[test]
    fn malformed_schedules_say_why() {
        assert_eq!(parse_schedule("Mon-Fri"), Err(ScheduleError::Syntax));
        assert_eq!(parse_schedule("Moon 07:00-19:00"), Err(ScheduleError::Day));
        assert_eq!(parse_schedule("Mon 7:00-19:00"), Err(ScheduleError::Time));
        assert_eq!(parse_schedule("Mon 07:00-24:01"), Err(ScheduleError::Time));
        assert_eq!(parse_schedule("Mon 07:60-08:00"), Err(ScheduleError::Time));
        assert_eq!(parse_schedule("Mon 08:00-08:00"), Err(ScheduleError::Empty));
        let nine = "Mon 01:00-02:00;".repeat(9);
        assert_eq!(parse_schedule(&nine), Err(ScheduleError::TooMany));
    }

    #[test]
    fn validity_days_are_inclusive() {
        let windows = parse_schedule("always").expect("parse");
        let entry = AccessEntry { person_id: 1, valid_from: Some(100), valid_until: Some(200), windows };
        let day = |day| LocalTime { day, weekday: 0, minute: 600 };
        assert_eq!(entry.check(day(99)), Verdict::NotYetValid);
        assert_eq!(entry.check(day(100)), Verdict::Allowed);
        assert_eq!(entry.check(day(200)), Verdict::Allowed);
        assert_eq!(entry.check(day(201)), Verdict::Expired);
        let office = AccessEntry { windows: parse_schedule("Mon-Fri 07:00-19:00").expect("parse"), ..entry };
        assert_eq!(office.check(LocalTime { day: 150, weekday: 6, minute: 600 }), Verdict::OutsideSchedule);
    }

    #[test]
    fn civil_dates_count_from_1970() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(days_from_civil(2027, 3, 31), Some(20_908));
        assert_eq!(days_from_civil(1969, 12, 31), Some(-1));
        assert_eq!(days_from_civil(2024, 2, 29).map(|d| d + 1), days_from_civil(2024, 3, 1));
        assert_eq!(days_from_civil(2023, 2, 29), None);
        assert_eq!(parse_date("2027-03-31"), Some(20_908));
        assert_eq!(parse_date("2027-3-31"), None);
        assert_eq!(parse_date("tomorrow"), None);
    }
}
