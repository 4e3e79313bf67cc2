//! A site's calendar: schedule, edit, cancel and move, co-host, RSVP,
//! import and export iCalendar, list occurrences.

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
    /// Change an event's details (only the options given change).
    Edit {
        event_id: String,
        #[arg(long)]
        title: Option<String>,
        /// Markdown; `-` reads it from standard input.
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        time_zone: Option<String>,
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        minutes: Option<u32>,
        #[arg(long)]
        all_day: Option<bool>,
        #[arg(long)]
        rrule: Option<String>,
        #[arg(long)]
        venue: Option<String>,
        #[arg(long)]
        address: Option<String>,
        #[arg(long)]
        mode: Option<String>,
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        capacity: Option<u32>,
    },
    /// Invite another site (`<network>/<site>`) to co-host an event.
    Cohost { event_id: String, site: String },
    /// As the invited site's editor: accept (or --decline) co-hosting.
    CohostAnswer {
        event_id: String,
        site: String,
        #[arg(long)]
        decline: bool,
    },
    /// End a co-hosting (the event's editors or the co-host's).
    CohostEnd { event_id: String, site: String },
    /// Say you are going (or --not) to an occurrence.
    Rsvp {
        event_id: String,
        /// The occurrence's original local start; not needed for one-off events.
        #[arg(long, default_value = "")]
        at: String,
        #[arg(long)]
        not: bool,
    },
    /// Counts and your answer; the list of people for the hosts' editors.
    Rsvps {
        event_id: String,
        #[arg(long, default_value = "")]
        at: String,
    },
    /// Import an iCalendar file or URL into a site's calendar (again:
    /// updates what changed).
    Import {
        /// `<network>/<site>`
        site: String,
        /// A file, or `-` for standard input.
        #[arg(long, conflicts_with = "url")]
        file: Option<String>,
        #[arg(long)]
        url: Option<String>,
        /// For times without a zone in the file.
        #[arg(long, default_value = "")]
        time_zone: String,
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
    /// iCalendar of a site (`<network>/<site>`), a network, or every network
    /// (no argument).
    Ics { scope: Option<String> },
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

fn print_rsvps(summary: &RsvpSummary) {
    let capacity = if summary.capacity == 0 {
        "no limit".to_owned()
    } else {
        format!("{} places", summary.capacity)
    };
    println!(
        "{}\t{} going, {} waitlisted ({capacity})",
        summary.original_local, summary.going, summary.waitlisted
    );
    match summary.my_status.as_str() {
        "going" => println!("you: going"),
        "waitlisted" => println!("you: waitlisted, number {}", summary.my_waitlist_position),
        _ => {}
    }
    for attendee in &summary.attendees {
        println!(
            "{}\t{}\t{}\t{}",
            attendee.status,
            time(attendee.at.as_ref()),
            attendee.account_id,
            attendee.display_name
        );
    }
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
        EventCommand::Edit {
            event_id,
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
            let current = calendar
                .get_event(GetEventRequest {
                    event_id: event_id.clone(),
                })
                .await
                .map_err(grpc_error)?
                .into_inner();
            let location = current.location.clone().unwrap_or_default();
            let details = ScheduleEventRequest {
                network_slug: String::new(),
                site_slug: String::new(),
                title: title.unwrap_or(current.title),
                description_markdown: match description {
                    Some(text) => read_body(text)?,
                    None => current.description_markdown,
                },
                time_zone: time_zone.unwrap_or(current.time_zone),
                start_local: start.unwrap_or(current.start_local),
                duration_minutes: minutes.unwrap_or(current.duration_minutes),
                all_day: all_day.unwrap_or(current.all_day),
                rrule: rrule.unwrap_or(current.rrule),
                location: Some(Location {
                    mode: mode.unwrap_or(location.mode),
                    venue: venue.unwrap_or(location.venue),
                    address: address.unwrap_or(location.address),
                    url: url.unwrap_or(location.url),
                    ..location
                }),
                capacity: capacity.unwrap_or(current.capacity),
            };
            let event = calendar
                .update_event(auth::session(UpdateEventRequest {
                    event_id,
                    details: Some(details),
                    expected_version: current.version,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_event(&event);
        }
        EventCommand::Cohost { event_id, site } => {
            let (network_slug, site_slug) = split_site(&site)?;
            let event = calendar
                .invite_cohost(auth::session(CohostRequest {
                    event_id,
                    network_slug,
                    site_slug,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_event(&event);
        }
        EventCommand::CohostAnswer {
            event_id,
            site,
            decline,
        } => {
            let (network_slug, site_slug) = split_site(&site)?;
            let event = calendar
                .decide_cohost(auth::session(DecideCohostRequest {
                    event_id,
                    network_slug,
                    site_slug,
                    accept: !decline,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_event(&event);
        }
        EventCommand::CohostEnd { event_id, site } => {
            let (network_slug, site_slug) = split_site(&site)?;
            let event = calendar
                .remove_cohost(auth::session(CohostRequest {
                    event_id,
                    network_slug,
                    site_slug,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_event(&event);
        }
        EventCommand::Rsvp { event_id, at, not } => {
            let summary = calendar
                .rsvp(auth::session(RsvpRequest {
                    event_id,
                    original_local: at,
                    going: !not,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_rsvps(&summary);
        }
        EventCommand::Rsvps { event_id, at } => {
            let request = GetRsvpsRequest {
                event_id,
                original_local: at,
            };
            // Signed in: your answer too (and names, for the hosts' editors).
            let request =
                auth::session(request.clone()).unwrap_or_else(|_| tonic::Request::new(request));
            let summary = calendar
                .get_rsvps(request)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_rsvps(&summary);
        }
        EventCommand::Import {
            site,
            file,
            url,
            time_zone,
        } => {
            let (network_slug, site_slug) = split_site(&site)?;
            let text = match file.as_deref() {
                None => String::new(),
                Some("-") => read_body("-".into())?,
                Some(path) => {
                    std::fs::read_to_string(path).map_err(|err| anyhow::anyhow!("{path}: {err}"))?
                }
            };
            if text.is_empty() && url.is_none() {
                anyhow::bail!("give --file or --url");
            }
            let response = calendar
                .import_ics(auth::session(ImportIcsRequest {
                    network_slug,
                    site_slug,
                    text,
                    url: url.unwrap_or_default(),
                    default_time_zone: time_zone,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            println!(
                "created {}, updated {}, unchanged {}",
                response.created, response.updated, response.unchanged
            );
            for note in &response.notes {
                println!("note: {note}");
            }
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
        EventCommand::Ics { scope } => {
            let (network_slug, site_slug) = match scope.as_deref() {
                None | Some("") => (String::new(), String::new()),
                Some(scope) => match scope.split_once('/') {
                    Some(_) => split_site(scope)?,
                    None => (scope.to_owned(), String::new()),
                },
            };
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
