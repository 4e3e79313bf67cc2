//! `anpctl usage`: usage per network (table or CSV) and the cost share.

use anp_proto::ops::v1::ops_service_client::OpsServiceClient;
use anp_proto::ops::v1::{CostShareRequest, GetUsageRequest, MonthUsage};
use clap::{Args, Subcommand};

use crate::{auth, channel, grpc_error};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct UsageArgs {
    #[command(subcommand)]
    command: Option<UsageCommand>,
    #[command(flatten)]
    report: ReportArgs,
}

#[derive(Args)]
pub struct ReportArgs {
    /// The month, YYYY-MM.
    #[arg(long)]
    month: Option<String>,
    /// One network only.
    #[arg(long, default_value = "")]
    network: String,
    /// One row per network and day instead of per network.
    #[arg(long)]
    daily: bool,
    /// CSV instead of a table.
    #[arg(long)]
    csv: bool,
}

#[derive(Subcommand)]
pub enum UsageCommand {
    /// Split a month's hosting cost between the networks (docs/usage.md).
    CostShare {
        #[arg(long)]
        month: String,
        /// The month's cost, e.g. 1800 or 1800.00.
        #[arg(long)]
        total: String,
        /// The part split equally, in percent.
        #[arg(long, default_value_t = 40)]
        base_percent: u32,
        #[arg(long)]
        csv: bool,
    },
}

/// Prints rows as an aligned table (numbers right-aligned) or as CSV.
fn print(header: &[&str], rows: &[Vec<String>], csv: bool) -> anyhow::Result<()> {
    if csv {
        let mut writer = csv::Writer::from_writer(std::io::stdout());
        writer.write_record(header)?;
        for row in rows {
            writer.write_record(row)?;
        }
        writer.flush()?;
        return Ok(());
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let numeric = i > 0 && cell.chars().next().is_some_and(|c| c.is_ascii_digit());
                if numeric {
                    format!("{cell:>w$}", w = widths[i])
                } else {
                    format!("{cell:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    println!("{}", line(header.to_vec()));
    for row in rows {
        println!("{}", line(row.iter().map(String::as_str).collect()));
    }
    Ok(())
}

fn month_cells(month: &MonthUsage) -> Vec<String> {
    vec![
        month.days.to_string(),
        format!("{:.1}", month.sites),
        format!("{:.1}", month.members),
        month.posts.to_string(),
        month.events.to_string(),
        format!("{:.0}", month.stored_bytes),
        month.requests.to_string(),
    ]
}

pub async fn usage(url: &str, args: UsageArgs) -> anyhow::Result<()> {
    let mut ops = OpsServiceClient::new(channel(url).await?);
    match args.command {
        Some(UsageCommand::CostShare {
            month,
            total,
            base_percent,
            csv,
        }) => {
            let response = ops
                .cost_share(auth::ops(CostShareRequest {
                    month,
                    total,
                    base_percent,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            let rows: Vec<Vec<String>> = response
                .shares
                .iter()
                .map(|share| {
                    let month = share.month.unwrap_or_default();
                    vec![
                        share.network_slug.clone(),
                        share.base.clone(),
                        share.usage.clone(),
                        share.total.clone(),
                        format!("{:.2}", share.usage_weight * 100.0),
                        format!("{:.1}", month.members),
                        format!("{:.0}", month.stored_bytes),
                        month.requests.to_string(),
                        format!("{:.1}", month.sites),
                    ]
                })
                .collect();
            print(
                &[
                    "network",
                    "base",
                    "usage",
                    "total",
                    "usage_%",
                    "avg_members",
                    "avg_stored_bytes",
                    "requests",
                    "avg_sites",
                ],
                &rows,
                csv,
            )?;
            if !csv {
                println!(
                    "\n{} for {} in all. {}",
                    response.total, response.month, response.formula
                );
            }
        }
        None => {
            let month = args
                .report
                .month
                .ok_or_else(|| anyhow::anyhow!("--month YYYY-MM is required"))?;
            let report = ops
                .get_usage(auth::ops(GetUsageRequest {
                    month,
                    network_slug: args.report.network,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            if args.report.daily {
                let rows: Vec<Vec<String>> = report
                    .networks
                    .iter()
                    .flat_map(|network| {
                        network.days.iter().map(|day| {
                            vec![
                                network.network_slug.clone(),
                                day.day.clone(),
                                day.sites.to_string(),
                                day.members.to_string(),
                                day.posts.to_string(),
                                day.events.to_string(),
                                day.stored_bytes.to_string(),
                                day.requests.to_string(),
                            ]
                        })
                    })
                    .collect();
                print(
                    &[
                        "network",
                        "day",
                        "sites",
                        "members",
                        "posts",
                        "events",
                        "stored_bytes",
                        "requests",
                    ],
                    &rows,
                    args.report.csv,
                )?;
            } else {
                let rows: Vec<Vec<String>> = report
                    .networks
                    .iter()
                    .map(|network| {
                        let mut row = vec![network.network_slug.clone(), network.plan.clone()];
                        row.extend(month_cells(&network.month.unwrap_or_default()));
                        row
                    })
                    .collect();
                print(
                    &[
                        "network",
                        "plan",
                        "days",
                        "avg_sites",
                        "avg_members",
                        "posts",
                        "events",
                        "avg_stored_bytes",
                        "requests",
                    ],
                    &rows,
                    args.report.csv,
                )?;
            }
        }
    }
    Ok(())
}
