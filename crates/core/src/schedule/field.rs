//! The fields of a cron expression, parsed into match sets.
//!
//! Grammar of one field (items separated by `,`; names are case-insensitive):
//!
//! ```text
//! item   = ( "*" | "?" | value [ "-" value ] ) [ "/" step ]
//! value  = number | name          (names: JAN-DEC, SUN-SAT, or the full English names)
//! dom    = item | "L" | "L-" n | n "W" | "LW"
//! dow    = [ "+" ] ( item | value "L" | value "#" k | value "#L" )
//! ```
//!
//! `?` is accepted in the two day fields only, `W` and `L` never take a range or a step, and a
//! range never runs backwards (`10-5` is rejected, as in Vixie cron). Every error names the
//! field and the item.

use chrono::{Datelike, NaiveDate};

/// First year a 7-field expression may name (the portable OCPS range).
pub const MIN_YEAR: i32 = 1970;
/// Last year any expression is evaluated in; later fire times do not exist.
pub const MAX_YEAR: i32 = 2199;

/// How the fields were written; decides the day-of-week numbering and the default day rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `@daily` and friends.
    Macro,
    /// 5 fields, crontab(5): days of week `0`-`7`, 0 and 7 = Sunday.
    Crontab,
    /// 6 or 7 fields, Quartz: days of week `1`-`7` = Sunday-Saturday.
    Quartz,
}

/// Day-of-month items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dom {
    /// Plain days, bits 1-31.
    pub days: u32,
    /// `L`: the last day of the month.
    pub last: bool,
    /// `L-n`: bit n set means n days before the last day.
    pub before_last: u32,
    /// `nW`: bit n set means the weekday nearest day n, within the month.
    pub nearest: u32,
    /// `LW`: the last weekday (Monday-Friday) of the month.
    pub last_weekday: bool,
    /// The field starts with `*` or `?`: unrestricted for the Vixie day rule (the items still
    /// say which days match: `*/2` is every other day).
    pub star: bool,
}

impl Dom {
    /// Whether every day of every month matches.
    pub fn is_every_day(&self) -> bool {
        self.days == u32::MAX - 1
    }
}

impl Dow {
    /// Whether every weekday matches.
    pub fn is_every_day(&self) -> bool {
        self.days == 0x7f
    }
}

/// Day-of-week items; weekdays are bits 0-6, 0 = Sunday, whatever the written numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dow {
    /// Plain weekdays.
    pub days: u8,
    /// `x#k`: `nth[x]` bit k (1-5) set means the k-th weekday x of the month.
    pub nth: [u8; 7],
    /// `xL` / `x#L`: bit x set means the last weekday x of the month.
    pub last: u8,
    /// The field starts with `*` or `?`.
    pub star: bool,
    /// The field starts with `+` (OCPS 1.4): both day fields must match.
    pub plus: bool,
}

/// All fields of an expression as match sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// How it was written.
    pub form: Form,
    /// Bits 0-59.
    pub seconds: u64,
    /// Bits 0-59.
    pub minutes: u64,
    /// Bits 0-23.
    pub hours: u64,
    /// Day-of-month items.
    pub dom: Dom,
    /// Bits 1-12.
    pub months: u64,
    /// Day-of-week items.
    pub dow: Dow,
    /// Bit `y - MIN_YEAR`; all set when the year field is absent or `*`.
    pub years: [u64; 4],
    /// The year field restricts (it is present and not `*`).
    pub years_restricted: bool,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// The numeric domain of one field.
struct Domain {
    /// Name used in error messages.
    name: &'static str,
    min: u32,
    max: u32,
    /// Names and their value, lowercase.
    names: &'static [&'static str],
    /// Value of the first name.
    name_base: u32,
    /// Whether `?` is accepted.
    question: bool,
}

impl Domain {
    fn value(&self, text: &str, field: &str) -> Result<u32, String> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return match text.parse::<u32>() {
                Ok(n) if (self.min..=self.max).contains(&n) => Ok(n),
                _ => Err(format!(
                    "{} field `{field}`: `{text}` is out of range {}-{}",
                    self.name, self.min, self.max
                )),
            };
        }
        let lower = text.to_ascii_lowercase();
        if lower.len() >= 3 {
            for (i, name) in self.names.iter().enumerate() {
                if *name == lower || (lower.len() == 3 && name.starts_with(&lower)) {
                    return Ok(self.name_base + u32::try_from(i).unwrap_or(0));
                }
            }
        }
        Err(if self.names.is_empty() {
            format!(
                "{} field `{field}`: `{text}` is not a number in {}-{}",
                self.name, self.min, self.max
            )
        } else {
            format!(
                "{} field `{field}`: `{text}` is neither a number in {}-{} nor a name such as {}",
                self.name,
                self.min,
                self.max,
                self.names
                    .iter()
                    .take(3)
                    .map(|n| n[..3].to_ascii_uppercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    /// The values of one plain item (`*`, `?`, `a`, `a-b`, with an optional `/step`).
    fn item(&self, item: &str, field: &str) -> Result<Vec<u32>, String> {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => {
                let n = match step.parse::<u32>() {
                    Ok(n) if n >= 1 => n,
                    _ => {
                        return Err(format!(
                            "{} field `{field}`: step `{step}` in `{item}` is not a positive number",
                            self.name
                        ));
                    }
                };
                (base, Some(n))
            }
            None => (item, None),
        };
        let (start, end) = match base {
            "*" => (self.min, self.max),
            "?" if self.question => (self.min, self.max),
            "?" => {
                return Err(format!(
                    "{} field `{field}`: `?` is only allowed in the day-of-month and day-of-week \
                     fields",
                    self.name
                ));
            }
            "" => {
                return Err(format!(
                    "{} field `{field}`: `{item}` has nothing before `/`",
                    self.name
                ));
            }
            _ => match base.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (self.value(a, field)?, self.value(b, field)?);
                    if a > b {
                        return Err(format!(
                            "{} field `{field}`: range `{base}` runs backwards",
                            self.name
                        ));
                    }
                    (a, b)
                }
                // `a/step` runs to the end of the domain.
                None if step.is_some() => (self.value(base, field)?, self.max),
                None => {
                    let v = self.value(base, field)?;
                    (v, v)
                }
            },
        };
        let step = usize::try_from(step.unwrap_or(1)).unwrap_or(usize::MAX);
        Ok((start..=end).step_by(step).collect())
    }
}

fn mask(values: &[u32]) -> u64 {
    values.iter().fold(0, |m, v| m | (1u64 << v))
}

fn items<'a>(field: &'a str, name: &str) -> Result<Vec<&'a str>, String> {
    let items: Vec<&str> = field.split(',').collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err(format!("{name} field `{field}`: empty item in the list"));
    }
    Ok(items)
}

fn plain(domain: &Domain, field: &str) -> Result<u64, String> {
    let mut m = 0;
    for item in items(field, domain.name)? {
        m |= mask(&domain.item(item, field)?);
    }
    Ok(m)
}

const SECOND: Domain = Domain {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
    name_base: 0,
    question: false,
};
const MINUTE: Domain = Domain {
    name: "minute",
    ..SECOND
};
const HOUR: Domain = Domain {
    name: "hour",
    max: 23,
    ..SECOND
};
const DOM: Domain = Domain {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    name_base: 0,
    question: true,
};
const MONTH: Domain = Domain {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTHS,
    name_base: 1,
    question: false,
};
const DOW_CRONTAB: Domain = Domain {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &WEEKDAYS,
    name_base: 0,
    question: true,
};
const DOW_QUARTZ: Domain = Domain {
    min: 1,
    max: 7,
    name_base: 1,
    ..DOW_CRONTAB
};
const YEAR: Domain = Domain {
    name: "year",
    min: 1970,
    max: 2199,
    names: &[],
    name_base: 0,
    question: false,
};

fn dom(field: &str) -> Result<Dom, String> {
    let mut dom = Dom {
        star: field.starts_with('*') || field.starts_with('?'),
        ..Dom::default()
    };
    let name = DOM.name;
    for item in items(field, name)? {
        let upper = item.to_ascii_uppercase();
        if upper == "L" {
            dom.last = true;
        } else if upper == "LW" {
            dom.last_weekday = true;
        } else if let Some(n) = upper.strip_prefix("L-") {
            match n.parse::<u32>() {
                Ok(n) if (1..=30).contains(&n) => dom.before_last |= 1 << n,
                _ => {
                    return Err(format!(
                        "{name} field `{field}`: `{item}` needs a day count in 1-30 after `L-`"
                    ));
                }
            }
        } else if let Some(n) = upper.strip_suffix('W') {
            if n.contains(['-', '/', '*', ',']) {
                return Err(format!(
                    "{name} field `{field}`: `W` takes a single day, not a range or step \
                     (`{item}`)"
                ));
            }
            dom.nearest |= 1 << DOM.value(n, field)?;
        } else if upper.contains(['L', 'W', '#']) {
            return Err(format!(
                "{name} field `{field}`: `{item}` is not a day, `L`, `L-n`, `nW` or `LW`"
            ));
        } else {
            dom.days |= u32::try_from(mask(&DOM.item(item, field)?)).unwrap_or(0);
        }
    }
    Ok(dom)
}

fn dow(field: &str, form: Form) -> Result<Dow, String> {
    let domain = if form == Form::Quartz {
        &DOW_QUARTZ
    } else {
        &DOW_CRONTAB
    };
    let name = domain.name;
    let (plus, body) = match field.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, field),
    };
    if body.is_empty() {
        return Err(format!("{name} field `{field}`: nothing after `+`"));
    }
    let mut dow = Dow {
        star: body.starts_with('*') || body.starts_with('?'),
        plus,
        ..Dow::default()
    };
    // Weekday value as written -> bit 0-6 (0 = Sunday).
    let bit = |v: u32| -> u8 {
        let wd = if form == Form::Quartz { v - 1 } else { v % 7 };
        1 << wd
    };
    let index = |v: u32| -> usize {
        usize::try_from(if form == Form::Quartz { v - 1 } else { v % 7 }).unwrap_or(0)
    };
    for item in items(body, name)? {
        let upper = item.to_ascii_uppercase();
        if upper == "L" {
            return Err(format!(
                "{name} field `{field}`: `L` alone is ambiguous (Quartz reads it as Saturday); \
                 write `SAT`, or `5L` / `FRIL` for the last Friday of the month"
            ));
        }
        if let Some((day, nth)) = upper.split_once('#') {
            let v = domain.value(day, field)?;
            if nth == "L" {
                dow.last |= bit(v);
            } else {
                match nth.parse::<u8>() {
                    Ok(k) if (1..=5).contains(&k) => dow.nth[index(v)] |= 1 << k,
                    _ => {
                        return Err(format!(
                            "{name} field `{field}`: `{item}` needs a week number in 1-5 or `L` \
                             after `#`"
                        ));
                    }
                }
            }
        } else if let Some(day) = upper.strip_suffix('L')
            && !day.is_empty()
            && !day.contains(['-', '/', '*'])
        {
            dow.last |= bit(domain.value(day, field)?);
        } else {
            for v in domain.item(item, field)? {
                dow.days |= bit(v);
            }
        }
    }
    Ok(dow)
}

fn years(field: &str) -> Result<[u64; 4], String> {
    let mut set = [0u64; 4];
    for item in items(field, YEAR.name)? {
        for y in YEAR.item(item, field)? {
            let i = y - YEAR.min;
            set[(i / 64) as usize] |= 1 << (i % 64);
        }
    }
    Ok(set)
}

/// Every year of the evaluated range.
const ALL_YEARS: [u64; 4] = {
    let count = (MAX_YEAR - MIN_YEAR + 1) as u32;
    let mut set = [u64::MAX; 4];
    set[3] = (1u64 << (count - 192)) - 1;
    set
};

impl Fields {
    /// Parses the whitespace-separated fields of a 5-, 6- or 7-field expression.
    pub fn parse(fields: &[&str]) -> Result<Fields, String> {
        let (form, sec, rest) = match fields {
            [_, _, _, _, _] => (Form::Crontab, "0", fields),
            [sec, rest @ ..] if fields.len() == 6 || fields.len() == 7 => {
                (Form::Quartz, *sec, rest)
            }
            _ => {
                return Err(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week), 6 (second \
                     first) or 7 (second first, year last), found {}",
                    fields.len()
                ));
            }
        };
        let [minute, hour, day, month, weekday, year @ ..] = rest else {
            return Err("expected at least 5 fields".to_owned());
        };
        let (years, years_restricted) = match year {
            [] | ["*"] | ["?"] => (ALL_YEARS, false),
            [y] => (years(y)?, true),
            _ => return Err("too many fields".to_owned()),
        };
        Ok(Fields {
            form,
            seconds: plain(&SECOND, sec)?,
            minutes: plain(&MINUTE, minute)?,
            hours: plain(&HOUR, hour)?,
            dom: dom(day)?,
            months: plain(&MONTH, month)?,
            dow: dow(weekday, form)?,
            years,
            years_restricted,
        })
    }

    /// The fields of a macro (`@daily`, ...), case-insensitive.
    pub fn parse_macro(text: &str) -> Result<Fields, String> {
        let crontab = match text.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            "@reboot" => {
                return Err(
                    "`@reboot` is not supported: sked has no start-up event to fire on".to_owned(),
                );
            }
            _ => {
                return Err(format!(
                    "unknown cron macro `{text}`, expected one of @yearly, @annually, @monthly, \
                     @weekly, @daily, @midnight, @hourly"
                ));
            }
        };
        let fields: Vec<&str> = crontab.split(' ').collect();
        Ok(Fields {
            form: Form::Macro,
            ..Fields::parse(&fields)?
        })
    }

    /// Whether year `y` may match.
    pub fn year_ok(&self, y: i32) -> bool {
        if !(MIN_YEAR..=MAX_YEAR).contains(&y) {
            return false;
        }
        let i = u32::try_from(y - MIN_YEAR).unwrap_or(0);
        self.years[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// The days of `year`-`month` matched by the day-of-month items (bits 1-31).
    pub fn dom_mask(&self, len: u32, first_weekday: u32) -> u32 {
        let d = &self.dom;
        let mut m = d.days;
        if d.last {
            m |= 1 << len;
        }
        let mut before = d.before_last;
        while before != 0 {
            let n = before.trailing_zeros();
            before &= before - 1;
            if n < len {
                m |= 1 << (len - n);
            }
        }
        let weekday = |day: u32| (first_weekday + day - 1) % 7;
        let mut nearest = d.nearest;
        while nearest != 0 {
            let n = nearest.trailing_zeros();
            nearest &= nearest - 1;
            if n > len {
                continue;
            }
            let day = match weekday(n) {
                6 if n == 1 => 3,
                6 => n - 1,
                0 if n == len => n - 2,
                0 => n + 1,
                _ => n,
            };
            m |= 1 << day;
        }
        if d.last_weekday {
            let day = match weekday(len) {
                6 => len - 1,
                0 => len - 2,
                _ => len,
            };
            m |= 1 << day;
        }
        m & full_month(len)
    }

    /// The days of a month matched by the day-of-week items (bits 1-31).
    pub fn dow_mask(&self, len: u32, first_weekday: u32) -> u32 {
        let w = &self.dow;
        if w.days == 0x7f {
            return full_month(len);
        }
        let mut m = 0;
        for day in 1..=len {
            let wd = (first_weekday + day - 1) % 7;
            let bit = 1u8 << wd;
            let week = (day - 1) / 7 + 1;
            if w.days & bit != 0
                || w.nth[wd as usize] & (1 << week) != 0
                || (w.last & bit != 0 && day + 7 > len)
            {
                m |= 1 << day;
            }
        }
        m
    }
}

/// Bits 1..=len.
pub fn full_month(len: u32) -> u32 {
    u32::try_from((1u64 << (len + 1)) - 2).unwrap_or(u32::MAX)
}

/// Days in `month` of `year`, and the weekday of its 1st (0 = Sunday).
pub fn month_shape(year: i32, month: u32) -> Option<(u32, u32)> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    let len = u32::try_from((next - first).num_days()).ok()?;
    Some((len, first.weekday().num_days_from_sunday()))
}
