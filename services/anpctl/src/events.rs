//! A site's calendar: schedule, cancel and move, list occurrences, iCalendar.

use anp_proto::calendar::v1::calendar_service_client::CalendarServiceClient;
use anp_proto::calendar::v1::*;
use clap::Subcommand;

use crate::{auth, channel, grpc_error, read_body, split_site, time};

#[derive(Subcommand)]
pub enum EventCommand {
    /// Schedule an event in a site's calendar (editors and admins).
    Schedule {
        /// `<network>/<site>`
        site: String,
        #[arg(long)]
        title: String,
        /// Markdown; `-` reads it from standard input.
        #[arg(long, default_value = "")]
        description: String,
        /// IANA time zone, e.g. America/Chicago.
        #[arg(long)]
        time_zone: String,
        /// Local start, YYYY-MM-DDTHH:MM.
        #[arg(long)]
        start: String,
        #[arg(long, default_value_t = 60)]
        minutes: u32,
        #[arg(long)]
        all_day: bool,
        /// RFC 5545 rule, e.g. FREQ=WEEKLY;BYDAY=TU;COUNT=10.
        #[arg(long, default_value = "")]
        rrule: String,
        #[arg(long, default_value = "")]
        venue: String,
        #[arg(long, default_value = "")]
        address: String,
        /// in_person, online or mixed.
        #[arg(long, default_value = "in_person")]
        mode: String,
        /// The link of an online or mixed event.
        #[arg(long, default_value = "")]
        url: String,
        #[arg(long, default_value_t = 0)]
        capacity: u32,
    },
    /// Cancel a whole event.
    Cancel { event_id: String },
    /// Cancel one occurrence, by its original local start.
    CancelOccurrence { event_id: String, original: String },
    /// Move one occurrence to another local start (and length).
    Move {
        event_id: String,
        original: String,
        #[arg(long)]
        start: String,
        #[arg(long, default_value_t = 0)]
        minutes: u32,
    },
    /// A site's occurrences from now on (--days ahead).
    List {
        /// `<network>/<site>`
        site: String,
        #[arg(long, default_value_t = 31)]
        days: i64,
    },
    /// A site's calendar as iCalendar.
    Ics {
        /// `<network>/<site>`
        site: String,
    },
}

fn print_event(event: &CalendarEvent) {
    println!(
        "{}\t{}/{}\t{} {}\t{}\tseq {}\t{}",
        event.id,
        event.network_slug,
        event.site_slug,
        event.start_local,
        event.time_zone,
        event.status,
        event.sequence,
        event.title
    );
}

pub async fn event(url: &str, command: EventCommand) -> anyhow::Result<()> {
    let mut calendar = CalendarServiceClient::new(channel(url).await?);
    match command {
        EventCommand::Schedule {
            site,
            title,
            description,
            time_zone,
            start,
            minutes,
            all_day,
            rrule,
            venue,
            address,
            mode,
            url,
            capacity,
        } => {
            let (network_slug, site_slug) = split_site(&site)?;
            let event = calendar
                .schedule_event(auth::session(ScheduleEventRequest {
                    network_slug,
                    site_slug,
                    title,
                    description_markdown: read_body(description)?,
                    time_zone,
                    start_local: start,
                    duration_minutes: minutes,
                    all_day,
                    rrule,
                    location: Some(Location {
                        mode,
                        venue,
                        address,
                        url,
                        ..Default::default()
                    }),
                    capacity,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_event(&event);
        }
        EventCommand::Cancel { event_id } => {
            let event = calendar
                .cancel_event(auth::session(CancelEventRequest { event_id })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_event(&event);
        }
        EventCommand::CancelOccurrence { event_id, original } => {
            let event = calendar
                .cancel_occurrence(auth::session(OccurrenceRequest {
                    event_id,
                    original_local: original,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_event(&event);
        }
        EventCommand::Move {
            event_id,
            original,
            start,
            minutes,
        } => {
            let event = calendar
                .reschedule_occurrence(auth::session(RescheduleOccurrenceRequest {
                    event_id,
                    original_local: original,
                    start_local: start,
                    duration_minutes: minutes,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_event(&event);
        }
        EventCommand::List { site, days } => {
            let (network_slug, site_slug) = split_site(&site)?;
            let now = chrono::Utc::now();
            let list = calendar
                .list_occurrences(ListOccurrencesRequest {
                    network_slug,
                    site_slug,
                    from: Some(anp_kit::timestamp(now)),
                    to: Some(anp_kit::timestamp(now + chrono::Duration::days(days))),
                })
                .await
                .map_err(grpc_error)?
                .into_inner();
            for occurrence in &list.occurrences {
                println!(
                    "{}\t{} {}\t{}{}\t{}",
                    time(occurrence.start.as_ref()),
                    occurrence.start_local,
                    occurrence.time_zone,
                    occurrence.event_id,
                    if occurrence.cancelled {
                        "\tcancelled"
                    } else {
                        ""
                    },
                    occurrence.title
                );
            }
        }
        EventCommand::Ics { site } => {
            let (network_slug, site_slug) = split_site(&site)?;
            let ics = calendar
                .export_ics(ExportIcsRequest {
                    event_id: String::new(),
                    network_slug,
                    site_slug,
                })
                .await
                .map_err(grpc_error)?
                .into_inner();
            print!("{}", ics.text);
        }
    }
    Ok(())
}
