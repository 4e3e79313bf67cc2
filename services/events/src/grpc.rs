//! tonic adapter for [`crate::calendar::Calendar`].

use anp_kit::{Caller, ServiceError};
use anp_proto::calendar::v1::calendar_service_server::{CalendarService, CalendarServiceServer};
use anp_proto::calendar::v1::*;
use anp_session::Verifier;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

use crate::EventsError;
use crate::calendar::Calendar;

/// Largest request accepted on the wire; fields have their own limits.
pub const MAX_MESSAGE_BYTES: usize = crate::import::IMPORT_MAX_BYTES + 64 * 1024;

pub fn routes(calendar: Calendar, sessions: Verifier) -> Routes {
    Routes::new(
        CalendarServiceServer::new(Api { calendar, sessions })
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
    )
}

#[derive(Clone)]
struct Api {
    calendar: Calendar,
    sessions: Verifier,
}

impl Api {
    /// A write: the signed-in caller and their token go to `call`.
    async fn write<T, R, Fut>(
        &self,
        request: Request<T>,
        call: impl FnOnce(Calendar, T, Caller, String) -> Fut,
    ) -> Result<Response<R>, Status>
    where
        Fut: std::future::Future<Output = Result<R, EventsError>>,
    {
        let session = self.sessions.session_of(&request)?;
        let token = anp_session::bearer(&request).unwrap_or_default().to_owned();
        let caller = Caller::of(&request, &session.account_id.to_string());
        call(self.calendar.clone(), request.into_inner(), caller, token)
            .await
            .map(Response::new)
            .map_err(|err| err.to_status())
    }

    /// A public read.
    async fn read<T, R, Fut>(
        &self,
        request: Request<T>,
        call: impl FnOnce(Calendar, T) -> Fut,
    ) -> Result<Response<R>, Status>
    where
        Fut: std::future::Future<Output = Result<R, EventsError>>,
    {
        call(self.calendar.clone(), request.into_inner())
            .await
            .map(Response::new)
            .map_err(|err| err.to_status())
    }
}

#[tonic::async_trait]
impl CalendarService for Api {
    async fn schedule_event(
        &self,
        request: Request<ScheduleEventRequest>,
    ) -> Result<Response<CalendarEvent>, Status> {
        self.write(request, |calendar, r, caller, token| async move {
            calendar.schedule_event(&r, caller, &token).await
        })
        .await
    }

    async fn cancel_event(
        &self,
        request: Request<CancelEventRequest>,
    ) -> Result<Response<CalendarEvent>, Status> {
        self.write(request, |calendar, r, caller, token| async move {
            calendar.cancel_event(&r.event_id, caller, &token).await
        })
        .await
    }

    async fn cancel_occurrence(
        &self,
        request: Request<OccurrenceRequest>,
    ) -> Result<Response<CalendarEvent>, Status> {
        self.write(request, |calendar, r, caller, token| async move {
            calendar.cancel_occurrence(&r, caller, &token).await
        })
        .await
    }

    async fn reschedule_occurrence(
        &self,
        request: Request<RescheduleOccurrenceRequest>,
    ) -> Result<Response<CalendarEvent>, Status> {
        self.write(request, |calendar, r, caller, token| async move {
            calendar.reschedule_occurrence(&r, caller, &token).await
        })
        .await
    }

    async fn update_event(
        &self,
        request: Request<UpdateEventRequest>,
    ) -> Result<Response<CalendarEvent>, Status> {
        self.write(request, |calendar, r, caller, token| async move {
            calendar.update_event(&r, caller, &token).await
        })
        .await
    }

    async fn invite_cohost(
        &self,
        request: Request<CohostRequest>,
    ) -> Result<Response<CalendarEvent>, Status> {
        self.write(request, |calendar, r, caller, token| async move {
            calendar.invite_cohost(&r, caller, &token).await
        })
        .await
    }

    async fn decide_cohost(
        &self,
        request: Request<DecideCohostRequest>,
    ) -> Result<Response<CalendarEvent>, Status> {
        self.write(request, |calendar, r, caller, token| async move {
            calendar.decide_cohost(&r, caller, &token).await
        })
        .await
    }

    async fn remove_cohost(
        &self,
        request: Request<CohostRequest>,
    ) -> Result<Response<CalendarEvent>, Status> {
        self.write(request, |calendar, r, caller, token| async move {
            calendar.remove_cohost(&r, caller, &token).await
        })
        .await
    }

    async fn rsvp(&self, request: Request<RsvpRequest>) -> Result<Response<RsvpSummary>, Status> {
        self.write(request, |calendar, r, caller, token| async move {
            calendar.rsvp(&r, caller, &token).await
        })
        .await
    }

    async fn get_rsvps(
        &self,
        request: Request<GetRsvpsRequest>,
    ) -> Result<Response<RsvpSummary>, Status> {
        // Anyone reads the counts; a valid session adds its own answer.
        let token = match self.sessions.session_of(&request) {
            Ok(_) => anp_session::bearer(&request).map(str::to_owned),
            Err(_) => None,
        };
        self.read(request, |calendar, r| async move {
            calendar.get_rsvps(&r, token.as_deref()).await
        })
        .await
    }

    async fn import_ics(
        &self,
        request: Request<ImportIcsRequest>,
    ) -> Result<Response<ImportIcsResponse>, Status> {
        self.write(request, |calendar, r, caller, token| async move {
            calendar.import_ics(&r, caller, &token).await
        })
        .await
    }

    async fn get_event(
        &self,
        request: Request<GetEventRequest>,
    ) -> Result<Response<CalendarEvent>, Status> {
        self.read(request, |calendar, r| async move {
            calendar.get_event(&r.event_id).await
        })
        .await
    }

    async fn list_occurrences(
        &self,
        request: Request<ListOccurrencesRequest>,
    ) -> Result<Response<ListOccurrencesResponse>, Status> {
        self.read(request, |calendar, r| async move {
            calendar.list_occurrences(&r).await
        })
        .await
    }

    async fn export_ics(
        &self,
        request: Request<ExportIcsRequest>,
    ) -> Result<Response<IcsFile>, Status> {
        self.read(request, |calendar, r| async move {
            calendar.export_ics(&r).await
        })
        .await
    }
}
