//! `Now(format)`: strftime on the record time, UTC, in the C locale.
//!
//! The directives of C / Python's `strftime`, except that `%f` is the
//! milliseconds (three digits) so that the default format
//! `%Y-%m-%dT%H:%M:%S.%fZ` gives the same text as `datetime` columns. Unknown
//! directives are kept as written.

use std::fmt::Write;

use crate::record::civil_from_days;

const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Broken-down UTC time.
struct Tm {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    millis: i64,
    /// 0 = Sunday.
    weekday: i64,
    /// 0-based day of the year.
    yday: i64,
    unix: i64,
}

impl Tm {
    fn from_ns(ns: i64) -> Tm {
        let ms = ns.div_euclid(1_000_000);
        let secs = ms.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let jan1 = days_from_civil(year, 1, 1);
        Tm {
            year,
            month,
            day,
            hour: of_day / 3600,
            minute: of_day / 60 % 60,
            second: of_day % 60,
            millis: ms.rem_euclid(1000),
            weekday: (days + 4).rem_euclid(7),
            yday: days - jan1,
            unix: secs,
        }
    }

    /// ISO 8601 week-based year and week number.
    fn iso_week(&self) -> (i64, i64) {
        let iso_weekday = (self.weekday + 6) % 7; // Monday = 0
        let week = (self.yday - iso_weekday + 10) / 7;
        if week < 1 {
            let prev = self.year - 1;
            (prev, weeks_in_iso_year(prev))
        } else if week > weeks_in_iso_year(self.year) {
            (self.year + 1, 1)
        } else {
            (self.year, week)
        }
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn weeks_in_iso_year(year: i64) -> i64 {
    // A year has 53 ISO weeks when it starts on a Thursday, or on a Wednesday in a leap year.
    let jan1_weekday = (days_from_civil(year, 1, 1) + 4).rem_euclid(7);
    if jan1_weekday == 4 || (jan1_weekday == 3 && is_leap(year)) {
        53
    } else {
        52
    }
}

/// Howard Hinnant's `days_from_civil`: (year, month, day) → days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats the time `ns` (nanoseconds since the Unix epoch) with `format`.
pub(super) fn format(format: &str, ns: i64) -> String {
    let tm = Tm::from_ns(ns);
    let mut out = String::with_capacity(format.len() + 16);
    write_format(&mut out, format, &tm);
    out
}

fn write_format(out: &mut String, format: &str, tm: &Tm) {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(directive) = chars.next() else {
            out.push('%');
            break;
        };
        // Writing to a String cannot fail.
        let _ = write_directive(out, directive, tm);
    }
}

fn write_directive(out: &mut String, directive: char, tm: &Tm) -> std::fmt::Result {
    let hour12 = match tm.hour % 12 {
        0 => 12,
        h => h,
    };
    match directive {
        'Y' => write!(out, "{}", tm.year),
        'C' => write!(out, "{:02}", tm.year.div_euclid(100)),
        'y' => write!(out, "{:02}", tm.year.rem_euclid(100)),
        'm' => write!(out, "{:02}", tm.month),
        'd' => write!(out, "{:02}", tm.day),
        'e' => write!(out, "{:2}", tm.day),
        'H' => write!(out, "{:02}", tm.hour),
        'k' => write!(out, "{:2}", tm.hour),
        'I' => write!(out, "{hour12:02}"),
        'l' => write!(out, "{hour12:2}"),
        'M' => write!(out, "{:02}", tm.minute),
        'S' => write!(out, "{:02}", tm.second),
        'f' => write!(out, "{:03}", tm.millis),
        'p' => out.write_str(if tm.hour < 12 { "AM" } else { "PM" }),
        'P' => out.write_str(if tm.hour < 12 { "am" } else { "pm" }),
        'j' => write!(out, "{:03}", tm.yday + 1),
        'a' => out.write_str(&DAYS[tm.weekday as usize][..3]),
        'A' => out.write_str(DAYS[tm.weekday as usize]),
        'b' | 'h' => out.write_str(&MONTHS[tm.month as usize - 1][..3]),
        'B' => out.write_str(MONTHS[tm.month as usize - 1]),
        'u' => write!(out, "{}", if tm.weekday == 0 { 7 } else { tm.weekday }),
        'w' => write!(out, "{}", tm.weekday),
        'U' => write!(out, "{:02}", (tm.yday + 7 - tm.weekday) / 7),
        'W' => write!(out, "{:02}", (tm.yday + 7 - (tm.weekday + 6) % 7) / 7),
        'G' => write!(out, "{}", tm.iso_week().0),
        'g' => write!(out, "{:02}", tm.iso_week().0.rem_euclid(100)),
        'V' => write!(out, "{:02}", tm.iso_week().1),
        's' => write!(out, "{}", tm.unix),
        'z' => out.write_str("+0000"),
        'Z' => out.write_str("UTC"),
        'n' => out.write_str("\n"),
        't' => out.write_str("\t"),
        '%' => out.write_str("%"),
        'F' => {
            write_format(out, "%Y-%m-%d", tm);
            Ok(())
        }
        'T' => {
            write_format(out, "%H:%M:%S", tm);
            Ok(())
        }
        'R' => {
            write_format(out, "%H:%M", tm);
            Ok(())
        }
        'D' | 'x' => {
            write_format(out, "%m/%d/%y", tm);
            Ok(())
        }
        'X' => {
            write_format(out, "%H:%M:%S", tm);
            Ok(())
        }
        'r' => {
            write_format(out, "%I:%M:%S %p", tm);
            Ok(())
        }
        'c' => {
            write_format(out, "%a %b %e %H:%M:%S %Y", tm);
            Ok(())
        }
        other => {
            out.push('%');
            out.push(other);
            Ok(())
        }
    }
}
