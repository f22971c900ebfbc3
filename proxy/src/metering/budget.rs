//! Budget arithmetic: calendar periods in UTC, a request's maximum cost, and the local
//! account book of spent-per-day and in-flight reservations that enforces a budget on one
//! replica (and stands in for the database when PostgreSQL cannot be reached).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, TimeZone, Utc};

use super::money::NanoUsd;
use crate::config::{BudgetPeriod, Price};

const DAY_MS: i64 = 86_400_000;
/// Days of spend the book keeps: more than the longest period (a month).
const KEPT_DAYS: i64 = 40;

/// A half-open interval of UTC time `[start_ms, end_ms)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Period {
    /// The calendar period of `kind` that contains `now_ms`: a UTC day, an ISO week starting
    /// Monday 00:00 UTC, or a calendar month.
    pub fn containing(kind: BudgetPeriod, now_ms: i64) -> Period {
        let now = Utc
            .timestamp_millis_opt(now_ms)
            .single()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let day = now.date_naive();
        let (start, end) = match kind {
            BudgetPeriod::Daily => (day, day + ChronoDuration::days(1)),
            BudgetPeriod::Weekly => {
                let monday =
                    day - ChronoDuration::days(i64::from(day.weekday().num_days_from_monday()));
                (monday, monday + ChronoDuration::days(7))
            }
            BudgetPeriod::Monthly => {
                let first = day.with_day(1).unwrap_or(day);
                let next = match first.month() {
                    12 => NaiveDate::from_ymd_opt(first.year() + 1, 1, 1),
                    m => NaiveDate::from_ymd_opt(first.year(), m + 1, 1),
                }
                .unwrap_or(first + ChronoDuration::days(31));
                (first, next)
            }
        };
        Period {
            start_ms: midnight_ms(start),
            end_ms: midnight_ms(end),
        }
    }

    /// The days (as day numbers since the epoch) this period covers.
    fn days(self) -> std::ops::Range<i64> {
        self.start_ms.div_euclid(DAY_MS)..self.end_ms.div_euclid(DAY_MS)
    }

    pub fn start_rfc3339(self) -> String {
        rfc3339(self.start_ms)
    }

    pub fn end_rfc3339(self) -> String {
        rfc3339(self.end_ms)
    }
}

fn midnight_ms(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_millis())
}

/// `2026-11-01T00:00:00Z`.
pub fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Day number since the epoch of a Unix-millisecond instant.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// The price a reservation uses: the most expensive target of the plan (per million input
/// and output tokens taken separately), so that failing over cannot exceed the reservation.
pub fn reservation_price<'a>(prices: impl IntoIterator<Item = &'a Price>) -> Price {
    let (input, output) = prices
        .into_iter()
        .map(Price::per_million)
        .fold((0.0_f64, 0.0_f64), |(i, o), (pi, po)| {
            (i.max(pi), o.max(po))
        });
    Price::PerMillion {
        input,
        output,
        cached_input: None,
        cache_write: None,
        cache_write_1h: None,
    }
}

/// What one replica knows: money spent per team and UTC day (loaded from the ledger at
/// start, then added to as requests settle) and money reserved by requests in flight.
#[derive(Debug, Default)]
pub struct LocalBook {
    inner: Mutex<Book>,
}

#[derive(Debug, Default)]
struct Book {
    spent_by_day: HashMap<(String, i64), NanoUsd>,
    reserved: HashMap<String, NanoUsd>,
}

/// The state of one team's budget for a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub spent_usd: NanoUsd,
    pub reserved_usd: NanoUsd,
}

impl Standing {
    /// A request is admitted when its maximum cost `amount` fits what remains, so spend
    /// stays within the budget as long as reservations bound what requests cost
    /// (docs/spend.md, "Budgets").
    pub fn admits(&self, budget_usd: NanoUsd, amount: NanoUsd) -> bool {
        self.spent_usd + self.reserved_usd + amount <= budget_usd
    }
}

impl LocalBook {
    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds spend loaded from the ledger (team, day number, amount).
    pub fn load(&self, rows: impl IntoIterator<Item = (String, i64, NanoUsd)>) {
        let mut book = self.book();
        for (team, day, usd) in rows {
            *book.spent_by_day.entry((team, day)).or_default() += usd;
        }
    }

    pub fn standing(&self, team: &str, period: Period) -> Standing {
        let book = self.book();
        standing_of(&book, team, period)
    }

    /// Reserves `amount` for `team` if its budget still has room; returns the standing
    /// before the reservation, and whether it was made.
    pub fn try_reserve(
        &self,
        team: &str,
        period: Period,
        budget_usd: NanoUsd,
        amount: NanoUsd,
    ) -> (Standing, bool) {
        let mut book = self.book();
        let standing = standing_of(&book, team, period);
        let admitted = standing.admits(budget_usd, amount);
        if admitted {
            *book.reserved.entry(team.to_owned()).or_default() += amount;
        }
        (standing, admitted)
    }

    /// Adds a request's reservation without checking (the database already admitted it),
    /// so that the local view stays close to the fleet's.
    pub fn track(&self, team: &str, amount: NanoUsd) {
        *self.book().reserved.entry(team.to_owned()).or_default() += amount;
    }

    /// Ends a reservation: releases `reserved` and books `cost` on the day `at_ms`.
    pub fn settle(&self, team: &str, reserved: NanoUsd, cost: NanoUsd, at_ms: i64) {
        let mut book = self.book();
        if let Some(r) = book.reserved.get_mut(team) {
            *r = r.minus_floor_zero(reserved);
        }
        if cost > NanoUsd::ZERO {
            let day = day_of(at_ms);
            if !book.spent_by_day.contains_key(&(team.to_owned(), day)) {
                // A new day: forget days no period can reach any more.
                book.spent_by_day.retain(|(_, d), _| *d > day - KEPT_DAYS);
            }
            *book.spent_by_day.entry((team.to_owned(), day)).or_default() += cost;
        }
    }
}

fn standing_of(book: &Book, team: &str, period: Period) -> Standing {
    let spent_usd = period
        .days()
        .filter_map(|day| book.spent_by_day.get(&(team.to_owned(), day)))
        .sum();
    Standing {
        spent_usd,
        reserved_usd: book.reserved.get(team).copied().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(usd: f64) -> NanoUsd {
        NanoUsd::from_usd_f64(usd).unwrap()
    }

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn periods_are_calendar_aligned_in_utc() {
        let now = ms("2026-11-28T13:45:10Z"); // a Saturday
        let day = Period::containing(BudgetPeriod::Daily, now);
        assert_eq!(day.start_rfc3339(), "2026-11-28T00:00:00Z");
        assert_eq!(day.end_rfc3339(), "2026-11-29T00:00:00Z");
        let week = Period::containing(BudgetPeriod::Weekly, now);
        assert_eq!(week.start_rfc3339(), "2026-11-23T00:00:00Z");
        assert_eq!(week.end_rfc3339(), "2026-11-30T00:00:00Z");
        let month = Period::containing(BudgetPeriod::Monthly, now);
        assert_eq!(month.start_rfc3339(), "2026-11-01T00:00:00Z");
        assert_eq!(month.end_rfc3339(), "2026-12-01T00:00:00Z");
    }

    #[test]
    fn period_boundaries_belong_to_the_period_they_start() {
        let december = Period::containing(BudgetPeriod::Monthly, ms("2026-12-31T23:59:59Z"));
        assert_eq!(december.end_rfc3339(), "2027-01-01T00:00:00Z");
        let january = Period::containing(BudgetPeriod::Monthly, ms("2027-01-01T00:00:00Z"));
        assert_eq!(january.start_ms, december.end_ms);
        let monday = Period::containing(BudgetPeriod::Weekly, ms("2026-11-30T00:00:00Z"));
        assert_eq!(monday.start_rfc3339(), "2026-11-30T00:00:00Z");
        let leap = Period::containing(BudgetPeriod::Monthly, ms("2028-02-29T12:00:00Z"));
        assert_eq!(leap.end_rfc3339(), "2028-03-01T00:00:00Z");
    }

    #[test]
    fn reservation_price_is_the_most_expensive_target() {
        let a = Price::PerMillion {
            input: 1.0,
            output: 8.0,
            cached_input: None,
            cache_write: None,
            cache_write_1h: None,
        };
        let b = Price::PerMillion {
            input: 3.0,
            output: 4.0,
            cached_input: None,
            cache_write: None,
            cache_write_1h: None,
        };
        assert_eq!(
            reservation_price([&a, &b, &Price::Free]).per_million(),
            (3.0, 8.0)
        );
    }

    #[test]
    fn reservations_are_settled_to_the_actual_cost() {
        let book = LocalBook::default();
        let now = ms("2026-11-28T10:00:00Z");
        let period = Period::containing(BudgetPeriod::Monthly, now);
        book.load([("t".to_owned(), day_of(ms("2026-11-02T00:00:00Z")), usd(0.4))]);
        book.load([("t".to_owned(), day_of(ms("2026-10-31T00:00:00Z")), usd(9.0))]);
        let (before, ok) = book.try_reserve("t", period, usd(1.0), usd(0.5));
        assert!(ok);
        assert_eq!(before.spent_usd, usd(0.4), "October is not in November");
        let (standing, refused) = book.try_reserve("t", period, usd(1.0), usd(0.5));
        assert!(!refused, "0.4 spent + 0.5 reserved + 0.5 > 1.0");
        assert_eq!(standing.reserved_usd, usd(0.5));
        let (_, ok) = book.try_reserve("t", period, usd(1.0), usd(0.1));
        assert!(ok, "0.4 + 0.5 + 0.1 fits exactly");
        book.settle("t", usd(0.5), usd(0.1), now);
        book.settle("t", usd(0.1), usd(0.2), now);
        let end = book.standing("t", period);
        assert_eq!(end.spent_usd, usd(0.7));
        assert_eq!(end.reserved_usd, NanoUsd::ZERO);
        assert!(end.admits(usd(1.0), usd(0.3)));
        assert!(!end.admits(usd(1.0), usd(0.31)));
    }

    #[test]
    fn concurrent_requests_cannot_overshoot_when_reservations_bound_their_cost() {
        let book = LocalBook::default();
        let period = Period::containing(BudgetPeriod::Daily, 0);
        let max = usd(0.3);
        let admitted = (0..100)
            .filter(|_| book.try_reserve("t", period, usd(1.0), max).1)
            .count();
        // Every admitted request then spends its whole maximum: still within the budget.
        assert_eq!(admitted, 3);
        let worst: NanoUsd = std::iter::repeat_n(max, admitted).sum();
        assert!(worst <= usd(1.0));
    }
}
