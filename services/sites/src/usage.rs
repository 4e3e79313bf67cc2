//! Usage per network and day, and the monthly cost share.
//!
//! Sites and members come from this service's own gauges; events, posts,
//! stored bytes and requests from the aggregator's meters.

use std::collections::HashMap;

use anp_proto::aggregator::v1::UsageDaysRequest;
use anp_proto::ops::v1::{
    CostShareResponse, DayUsage, MonthUsage, NetworkShare, NetworkUsage, UsageReport,
};
use chrono::{Datelike, NaiveDate, Utc};
use uuid::Uuid;

use crate::Sites;
use crate::error::SitesError;

/// How the usage share is weighed: each network's part of the installation's
/// members, stored bytes, requests served and sites, in these proportions.
pub const WEIGHTS: [(&str, f64); 4] = [
    ("members", 0.4),
    ("stored_bytes", 0.3),
    ("requests", 0.2),
    ("sites", 0.1),
];
pub const BASE_PERCENT: u32 = 40;
/// Largest total accepted, in cents.
const TOTAL_MAX_CENTS: i64 = 100_000_000_000_000;

pub fn formula(base_percent: u32) -> String {
    format!(
        "{base_percent}% of the total is split equally between the networks that existed during the month; \
         the other {}% is split by usage: each network's share of the month's average members (40%), \
         average stored bytes (30%), requests served (20%) and average active sites (10%). \
         A measure nobody used is left out and the others weigh proportionally more. \
         Amounts are rounded to cents so that they add up to the total exactly.",
        100 - base_percent
    )
}

/// The first and last day of `YYYY-MM`.
pub fn month_bounds(month: &str) -> Result<(NaiveDate, NaiveDate), SitesError> {
    let bad = || SitesError::invalid(format!("month: {month:?} is not a month such as 2026-11"));
    if month.len() != 7 {
        return Err(bad());
    }
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").map_err(|_| bad())?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .ok_or_else(bad)?;
    Ok((first, next.pred_opt().ok_or_else(bad)?))
}

/// An amount such as "1800" or "1800.50" in cents.
pub fn parse_amount(text: &str) -> Result<i64, SitesError> {
    let bad = || {
        SitesError::invalid(format!(
            "total: {text:?} is not an amount such as 1800 or 1800.00"
        ))
    };
    let text = text.trim();
    let (units, cents) = match text.split_once('.') {
        Some((units, cents)) if (1..=2).contains(&cents.len()) => (units, format!("{cents:0<2}")),
        Some(_) => return Err(bad()),
        None => (text, "00".to_owned()),
    };
    if units.is_empty()
        || !units.chars().all(|c| c.is_ascii_digit())
        || !cents.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let total = units
        .parse::<i64>()
        .ok()
        .and_then(|units| units.checked_mul(100))
        .and_then(|cents_total| cents_total.checked_add(cents.parse::<i64>().ok()?))
        .filter(|total| (1..=TOTAL_MAX_CENTS).contains(total))
        .ok_or_else(bad)?;
    Ok(total)
}

pub fn format_cents(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Each network's usage weight (they add up to 1).
pub fn usage_weights(months: &[MonthUsage]) -> Vec<f64> {
    let value = |month: &MonthUsage, measure: &str| match measure {
        "members" => month.members,
        "stored_bytes" => month.stored_bytes,
        "requests" => month.requests as f64,
        _ => month.sites,
    };
    let used: Vec<(&str, f64, f64)> = WEIGHTS
        .iter()
        .map(|(measure, weight)| {
            (
                *measure,
                *weight,
                months.iter().map(|m| value(m, measure)).sum::<f64>(),
            )
        })
        .filter(|(_, _, sum)| *sum > 0.0)
        .collect();
    let weight_sum: f64 = used.iter().map(|(_, weight, _)| weight).sum();
    if months.is_empty() {
        return vec![];
    }
    if used.is_empty() {
        return vec![1.0 / months.len() as f64; months.len()];
    }
    months
        .iter()
        .map(|month| {
            used.iter()
                .map(|(measure, weight, sum)| weight / weight_sum * value(month, measure) / sum)
                .sum()
        })
        .collect()
}

/// Splits `total` cents in proportion to `weights` (which add up to 1),
/// handing the cents rounding leaves over to the largest remainders.
pub fn apportion(total: i64, weights: &[f64]) -> Vec<i64> {
    let raw: Vec<f64> = weights.iter().map(|weight| total as f64 * weight).collect();
    let mut shares: Vec<i64> = raw.iter().map(|value| value.floor() as i64).collect();
    let mut left = total - shares.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..raw.len()).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (raw[a] - raw[a].floor(), raw[b] - raw[b].floor());
        fb.partial_cmp(&fa)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    for index in order.iter().cycle().take(raw.len() * 2) {
        if left <= 0 {
            break;
        }
        shares[*index] += 1;
        left -= 1;
    }
    shares
}

/// A network in a usage report: here, or gone since `until`.
struct Billed {
    id: Uuid,
    slug: String,
    name: String,
    plan: String,
    created_at: chrono::DateTime<Utc>,
    until: Option<NaiveDate>,
}

impl Sites {
    pub async fn usage_report(
        &self,
        month: &str,
        network_slug: &str,
    ) -> Result<UsageReport, SitesError> {
        let (first, last) = month_bounds(month)?;
        let last = last.min(Utc::now().date_naive());
        if !network_slug.is_empty() {
            anp_kit::check_slug("network_slug", network_slug).map_err(SitesError::Invalid)?;
        }
        let client = self.pool.get().await?;
        // Networks here, and those that left during or after the month (up
        // to the day they left).
        let rows = client
            .query(
                "SELECT id, slug, name, plan, created_at, NULL::date FROM networks \
                   WHERE created_at::date <= $1 AND ($2 = '' OR slug = $2) \
                 UNION ALL \
                 SELECT id, slug, name, plan, created_at, offboarded_at::date FROM offboarded_networks \
                   WHERE created_at::date <= $1 AND offboarded_at::date >= $3 AND ($2 = '' OR slug = $2) \
                 ORDER BY 2",
                &[&last, &network_slug, &first],
            )
            .await?;
        let networks: Vec<Billed> = rows
            .iter()
            .map(|row| Billed {
                id: row.get(0),
                slug: row.get(1),
                name: row.get(2),
                plan: row.get(3),
                created_at: row.get(4),
                until: row.get(5),
            })
            .collect();
        if !network_slug.is_empty() && networks.is_empty() {
            return Err(SitesError::not_found(format!(
                "network_slug: no network {network_slug:?} in {month}"
            )));
        }
        let ids: Vec<Uuid> = networks.iter().map(|n| n.id).collect();
        let gauges = client
            .query(
                "SELECT network_id, day, sites, members FROM usage_gauges \
                 WHERE network_id = ANY($1) AND day <= $2 ORDER BY network_id, day",
                &[&ids, &last],
            )
            .await?;
        drop(client);
        let mut gauge_days: HashMap<Uuid, Vec<(NaiveDate, i64, i64)>> = HashMap::new();
        for row in &gauges {
            gauge_days
                .entry(row.get(0))
                .or_default()
                .push((row.get(1), row.get(2), row.get(3)));
        }
        let meters = if first <= last {
            self.aggregator
                .clone()
                .usage_days(UsageDaysRequest {
                    from_day: first.to_string(),
                    to_day: last.to_string(),
                })
                .await
                .map_err(|status| {
                    SitesError::Internal(format!("aggregator usage: {}", status.message()))
                })?
                .into_inner()
                .days
        } else {
            vec![]
        };
        let mut by_id: HashMap<(String, String), &anp_proto::aggregator::v1::UsageDay> =
            HashMap::new();
        let mut by_slug: HashMap<(String, String), u64> = HashMap::new();
        for day in &meters {
            if day.network_id.is_empty() {
                by_slug.insert((day.network_slug.clone(), day.day.clone()), day.requests);
            } else {
                by_id.insert((day.network_id.clone(), day.day.clone()), day);
            }
        }
        let mut report = Vec::new();
        for network in &networks {
            let start = first.max(network.created_at.date_naive());
            let last = network.until.map_or(last, |until| until.min(last));
            let history = gauge_days.get(&network.id).cloned().unwrap_or_default();
            let mut days = Vec::new();
            let mut day = start;
            while day <= last {
                let (sites, members) = history
                    .iter()
                    .rev()
                    .find(|(at, ..)| *at <= day)
                    .map(|&(_, sites, members)| (sites, members))
                    .unwrap_or((0, 0));
                let key = day.to_string();
                let meter = by_id.get(&(network.id.to_string(), key.clone()));
                days.push(DayUsage {
                    day: key.clone(),
                    sites,
                    members,
                    posts: meter.map_or(0, |m| m.posts as i64),
                    events: meter.map_or(0, |m| m.events as i64),
                    stored_bytes: meter.map_or(0, |m| m.stored_bytes as i64),
                    requests: by_slug
                        .get(&(network.slug.clone(), key))
                        .copied()
                        .unwrap_or(0) as i64,
                });
                day = day.succ_opt().unwrap_or(day);
                if day == NaiveDate::MAX {
                    break;
                }
            }
            let count = days.len().max(1) as f64;
            let month = MonthUsage {
                days: days.len() as u32,
                sites: days.iter().map(|d| d.sites as f64).sum::<f64>() / count,
                members: days.iter().map(|d| d.members as f64).sum::<f64>() / count,
                posts: days.iter().map(|d| d.posts).sum(),
                events: days.iter().map(|d| d.events).sum(),
                stored_bytes: days.iter().map(|d| d.stored_bytes as f64).sum::<f64>() / count,
                requests: days.iter().map(|d| d.requests).sum(),
            };
            report.push(NetworkUsage {
                network_slug: network.slug.clone(),
                network_name: network.name.clone(),
                plan: network.plan.clone(),
                days,
                month: Some(month),
            });
        }
        Ok(UsageReport {
            month: month.to_owned(),
            networks: report,
        })
    }

    pub async fn cost_share(
        &self,
        month: &str,
        total: &str,
        base_percent: u32,
    ) -> Result<CostShareResponse, SitesError> {
        let total_cents = parse_amount(total)?;
        let base_percent = match base_percent {
            0 => BASE_PERCENT,
            percent if percent <= 100 => percent,
            _ => return Err(SitesError::invalid("base_percent: at most 100")),
        };
        let report = self.usage_report(month, "").await?;
        let networks: Vec<&NetworkUsage> = report
            .networks
            .iter()
            .filter(|n| !n.days.is_empty())
            .collect();
        let months: Vec<MonthUsage> = networks
            .iter()
            .map(|n| n.month.unwrap_or_default())
            .collect();
        let base_total = total_cents * i64::from(base_percent) / 100;
        let usage_total = total_cents - base_total;
        let equal = vec![1.0 / networks.len().max(1) as f64; networks.len()];
        let bases = apportion(base_total, &equal);
        let weights = usage_weights(&months);
        let usages = apportion(usage_total, &weights);
        let shares = networks
            .iter()
            .enumerate()
            .map(|(i, network)| NetworkShare {
                network_slug: network.network_slug.clone(),
                base: format_cents(bases[i]),
                usage: format_cents(usages[i]),
                total: format_cents(bases[i] + usages[i]),
                usage_weight: weights[i],
                month: Some(months[i]),
            })
            .collect();
        Ok(CostShareResponse {
            month: month.to_owned(),
            total: format_cents(total_cents),
            base_percent,
            shares,
            formula: formula(base_percent),
        })
    }
}

impl Sites {
    /// Asks the aggregator to rebuild its projections from the event
    /// stores, with a grant for the operator's call.
    pub async fn reindex(
        &self,
        scope: &str,
        actor: &str,
    ) -> Result<anp_proto::aggregator::v1::ReindexResponse, SitesError> {
        if !matches!(scope, "" | "all" | "search" | "feeds") {
            return Err(SitesError::invalid(format!(
                "scope: {scope:?} is not search, feeds or all"
            )));
        }
        let request = self.grant(
            anp_proto::aggregator::v1::ReindexRequest {
                scope: scope.to_owned(),
            },
            actor,
            "reindex",
            Uuid::nil(),
        )?;
        Ok(self
            .aggregator
            .clone()
            .reindex(request)
            .await
            .map_err(|status| SitesError::Peer {
                service: "aggregator".into(),
                status,
            })?
            .into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(members: f64, stored_bytes: f64, requests: i64, sites: f64) -> MonthUsage {
        MonthUsage {
            days: 30,
            members,
            stored_bytes,
            requests,
            sites,
            ..Default::default()
        }
    }

    #[test]
    fn months_and_amounts_parse() {
        assert_eq!(
            month_bounds("2026-02").unwrap(),
            (
                NaiveDate::from_ymd_opt(2026, 2, 1).unwrap(),
                NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()
            )
        );
        assert_eq!(
            month_bounds("2026-12").unwrap().1,
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
        );
        for bad in ["2026-13", "2026-1", "26-11", "november", ""] {
            assert!(
                month_bounds(bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with("month:"),
                "{bad}"
            );
        }
        assert_eq!(parse_amount("1800").unwrap(), 180_000);
        assert_eq!(parse_amount("1800.5").unwrap(), 180_050);
        assert_eq!(parse_amount("0.07").unwrap(), 7);
        for bad in [
            "-5",
            "1,800",
            "18.000",
            "abc",
            "",
            "0",
            "99999999999999999999",
        ] {
            assert!(
                parse_amount(bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with("total:"),
                "{bad}"
            );
        }
        assert_eq!(format_cents(180_050), "1800.50");
    }

    #[test]
    fn shares_add_up_to_the_cent_and_follow_usage() {
        let months = [
            usage(100.0, 1e9, 5000, 4.0),
            usage(300.0, 3e9, 15000, 12.0),
            usage(0.0, 0.0, 0, 0.0),
        ];
        let weights = usage_weights(&months);
        assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(
            (weights[1] - 3.0 * weights[0]).abs() < 1e-9,
            "three times the usage, three times the share"
        );
        assert_eq!(weights[2], 0.0);
        let shares = apportion(100_001, &weights);
        assert_eq!(shares.iter().sum::<i64>(), 100_001);
        let equal = apportion(1000, &[1.0 / 3.0; 3]);
        assert_eq!(equal, [334, 333, 333]);
    }

    #[test]
    fn unused_measures_weigh_nothing() {
        let weights = usage_weights(&[usage(1.0, 0.0, 0, 0.0), usage(3.0, 0.0, 0, 0.0)]);
        assert_eq!(weights, [0.25, 0.75]);
        assert_eq!(usage_weights(&[usage(0.0, 0.0, 0, 0.0); 2]), [0.5, 0.5]);
    }
}
