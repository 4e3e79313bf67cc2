//! The directory across the umbrella: filters, paging, GeoJSON, the map.

use anp_proto::sites::v1::*;
use tonic::Code;

use crate::harness::{Stack, expect_error, with_token};
use crate::people::scope;

async fn site(
    stack: &Stack,
    network: &str,
    slug: &str,
    tags: &[&str],
    languages: &[&str],
    place: Option<(&str, &str, f64, f64)>,
) {
    let settings = SiteSettings {
        name: slug.to_uppercase(),
        languages: languages.iter().map(|s| s.to_string()).collect(),
        tags: tags.iter().map(|s| s.to_string()).collect(),
        place: place.map(|(city, country, latitude, longitude)| Place {
            city: city.into(),
            country: country.into(),
            has_coordinates: true,
            latitude,
            longitude,
        }),
        ..Default::default()
    };
    stack
        .sites()
        .create_site(with_token(
            CreateSiteRequest {
                network_slug: network.into(),
                slug: slug.into(),
                name: String::new(),
                parent_site_slug: String::new(),
                settings: Some(settings),
            },
            &stack.admin(network),
        ))
        .await
        .unwrap_or_else(|err| panic!("site {slug}: {err}"));
}

fn filter(network: &str, tag: &str, language: &str, country: &str, city: &str) -> DirectoryRequest {
    DirectoryRequest {
        network_slug: network.into(),
        tag: tag.into(),
        language: language.into(),
        country: country.into(),
        city: city.into(),
        ..Default::default()
    }
}

async fn slugs(stack: &Stack, request: DirectoryRequest) -> Vec<String> {
    stack
        .sites()
        .directory(request)
        .await
        .unwrap()
        .into_inner()
        .sites
        .into_iter()
        .map(|s| s.slug)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn directory_filters_pages_and_maps_sites() {
    let stack = Stack::start().await;
    stack.onboard("climate", "Climate").await;
    stack.onboard("migrants", "Migrants").await;
    site(
        &stack,
        "climate",
        "nyc",
        &["climate", "energy"],
        &["en"],
        Some(("New York", "US", 40.71, -74.01)),
    )
    .await;
    site(
        &stack,
        "climate",
        "madrid",
        &["climate"],
        &["es", "en"],
        Some(("Madrid", "ES", 40.42, -3.70)),
    )
    .await;
    site(&stack, "climate", "online", &["climate"], &["en"], None).await;
    site(
        &stack,
        "migrants",
        "boston",
        &["migration", "labor"],
        &["en", "es"],
        Some(("Boston", "US", 42.36, -71.06)),
    )
    .await;
    site(
        &stack,
        "migrants",
        "old",
        &["migration"],
        &["en"],
        Some(("Boston", "US", 42.3, -71.1)),
    )
    .await;
    stack
        .sites()
        .archive_site(with_token(
            ArchiveSiteRequest {
                site: scope("migrants", "old"),
            },
            &stack.admin("migrants"),
        ))
        .await
        .unwrap();

    assert_eq!(
        slugs(&stack, filter("", "", "", "", "")).await,
        ["madrid", "nyc", "online", "boston"],
        "all active sites, archived left out"
    );
    assert_eq!(
        slugs(&stack, filter("", "climate", "", "", "")).await,
        ["madrid", "nyc", "online"]
    );
    assert_eq!(
        slugs(&stack, filter("", "", "es", "", "")).await,
        ["madrid", "boston"]
    );
    assert_eq!(
        slugs(&stack, filter("", "", "", "us", "")).await,
        ["nyc", "boston"]
    );
    assert_eq!(
        slugs(&stack, filter("", "", "", "", "boston")).await,
        ["boston"]
    );
    assert_eq!(
        slugs(&stack, filter("migrants", "", "", "", "")).await,
        ["boston"]
    );
    assert_eq!(
        slugs(&stack, filter("climate", "climate", "en", "US", "New York")).await,
        ["nyc"]
    );
    let all = stack
        .sites()
        .directory(filter("", "", "", "", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total, 4);
    assert_eq!(
        (all.tags[0].tag.as_str(), all.tags[0].sites),
        ("climate", 3)
    );
    let located = slugs(
        &stack,
        DirectoryRequest {
            with_coordinates: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(located, ["madrid", "nyc", "boston"]);

    // Paging without gaps or repeats.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = stack
            .sites()
            .directory(DirectoryRequest {
                limit: 3,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.sites.len() <= 3);
        seen.extend(page.sites.into_iter().map(|s| s.slug));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(seen, ["madrid", "nyc", "online", "boston"]);

    // Bad filters name their field.
    let mut sites = stack.sites();
    for (request, field) in [
        (filter("Bad Slug", "", "", "", ""), "network_slug"),
        (filter("", "no spaces", "", "", ""), "tag"),
        (filter("", "", "xx", "", ""), "language"),
        (filter("", "", "", "USA", ""), "country"),
        (filter("", "", "", "", &"c".repeat(121)), "city"),
        (
            DirectoryRequest {
                limit: 5000,
                ..Default::default()
            },
            "limit",
        ),
        (
            DirectoryRequest {
                cursor: "garbage".into(),
                ..Default::default()
            },
            "cursor",
        ),
    ] {
        expect_error(sites.directory(request).await, Code::InvalidArgument, field);
    }

    // GeoJSON and the pages.
    let response = reqwest::get(stack.http("/directory.geojson?tag=climate"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/geo+json");
    let geojson: serde_json::Value = response.json().await.unwrap();
    assert_eq!(geojson["type"], "FeatureCollection");
    let features = geojson["features"].as_array().unwrap();
    assert_eq!(features.len(), 2, "the two located climate sites");
    let nyc = features
        .iter()
        .find(|f| f["properties"]["name"] == "NYC")
        .unwrap();
    assert_eq!(nyc["geometry"]["type"], "Point");
    assert_eq!(
        nyc["geometry"]["coordinates"],
        serde_json::json!([-74.01, 40.71]),
        "longitude first"
    );
    assert!(
        nyc["properties"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/n/climate/nyc")
    );
    let page = reqwest::get(stack.http("/directory?lang=es"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("MADRID") && page.contains("BOSTON") && !page.contains("NYC"));
    assert_eq!(
        reqwest::get(stack.http("/directory?country=USA"))
            .await
            .unwrap()
            .status(),
        400
    );
    let umbrella = reqwest::get(stack.http("/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        umbrella.contains("Browse all 4 sites"),
        "the umbrella page shows the directory"
    );
    assert_eq!(
        umbrella.matches("<circle").count(),
        3,
        "one dot per located site"
    );
    stack.stop().await;
}
