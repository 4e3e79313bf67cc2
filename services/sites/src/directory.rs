//! The directory: active sites across the umbrella, filtered.

use anp_proto::sites::v1::{DirectoryRequest, DirectoryResponse, TagCount};

use crate::error::SitesError;
use crate::model::{SITE_COLUMNS, SiteRow};
use crate::{Sites, SitesError as E};

pub const DIRECTORY_LIMIT: u32 = 50;
pub const DIRECTORY_MAX: u32 = 1000;

const FILTER: &str = "s.archived_at IS NULL \
     AND ($1 = '' OR n.slug = $1) \
     AND ($2 = '' OR $2 = ANY(s.tags)) \
     AND ($3 = '' OR $3 = ANY(s.languages)) \
     AND ($4 = '' OR s.country = $4) \
     AND ($5 = '' OR lower(s.city) = lower($5)) \
     AND (NOT $6 OR (s.latitude IS NOT NULL AND s.longitude IS NOT NULL))";

impl Sites {
    pub async fn directory(
        &self,
        request: &DirectoryRequest,
    ) -> Result<DirectoryResponse, SitesError> {
        let check = |field: &str, value: &str| -> Result<(), SitesError> {
            if value.is_empty() {
                return Ok(());
            }
            anp_kit::check_slug(field, value).map_err(E::Invalid)
        };
        check("network_slug", &request.network_slug)?;
        check("tag", &request.tag)?;
        if !request.language.is_empty() {
            anp_kit::check_language("language", &request.language).map_err(SitesError::invalid)?;
        }
        let country = request.country.to_ascii_uppercase();
        if !country.is_empty()
            && (country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()))
        {
            return Err(SitesError::invalid(format!(
                "country: {country:?} is not an ISO 3166-1 alpha-2 code such as \"US\""
            )));
        }
        if request.city.chars().count() > 120 {
            return Err(SitesError::invalid("city: at most 120 characters"));
        }
        if request.limit > DIRECTORY_MAX {
            return Err(SitesError::invalid(format!(
                "limit: at most {DIRECTORY_MAX}"
            )));
        }
        let limit = if request.limit == 0 {
            DIRECTORY_LIMIT
        } else {
            request.limit
        };
        let offset: i64 = if request.cursor.is_empty() {
            0
        } else {
            request
                .cursor
                .parse()
                .ok()
                .filter(|offset| (0..1_000_000).contains(offset))
                .ok_or_else(|| SitesError::invalid("cursor: not a cursor from a previous page"))?
        };
        let client = self.pool.get().await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
            &request.network_slug,
            &request.tag,
            &request.language,
            &country,
            &request.city,
            &request.with_coordinates,
        ];
        let rows = client
            .query(
                &format!(
                    "SELECT {SITE_COLUMNS} FROM sites s JOIN networks n ON n.id = s.network_id \
                     WHERE {FILTER} ORDER BY n.slug, s.slug LIMIT {} OFFSET {offset}",
                    i64::from(limit) + 1
                ),
                &params,
            )
            .await?;
        let mut sites = rows
            .iter()
            .map(|row| Ok(SiteRow::from_row(row)?.to_proto()))
            .collect::<Result<Vec<_>, SitesError>>()?;
        let more = sites.len() > limit as usize;
        sites.truncate(limit as usize);
        let summary = client
            .query(
                &format!(
                    "SELECT tag, count(*) OVER () AS total_tags, sites_with_tag, total FROM ( \
                       SELECT t.tag, count(*) AS sites_with_tag, max(total) AS total FROM ( \
                         SELECT s.tags, count(*) OVER () AS total FROM sites s \
                         JOIN networks n ON n.id = s.network_id WHERE {FILTER}) f \
                       LEFT JOIN LATERAL unnest(f.tags) AS t(tag) ON true GROUP BY t.tag) g \
                     ORDER BY sites_with_tag DESC, tag LIMIT 50"
                ),
                &params,
            )
            .await?;
        let total = summary
            .first()
            .map(|row| row.get::<_, i64>("total"))
            .unwrap_or_default();
        let tags = summary
            .iter()
            .filter_map(|row| {
                let tag: Option<String> = row.get("tag");
                tag.map(|tag| TagCount {
                    tag,
                    sites: row.get::<_, i64>("sites_with_tag") as u32,
                })
            })
            .collect();
        Ok(DirectoryResponse {
            sites,
            next_cursor: if more {
                (offset + i64::from(limit)).to_string()
            } else {
                String::new()
            },
            total: total as u32,
            tags,
        })
    }
}
