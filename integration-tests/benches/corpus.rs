//! The benchmarks' corpus: networks, sites and posts in English and Spanish
//! from a fixed seed (Zipf-distributed words, real ones first, then made-up
//! ones for the long tail), and the events the services would publish.

use anp_proto::events::v1::{Envelope, PostPublished, PostState, SiteCreated};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use uuid::Uuid;

pub const SEED: u64 = 20_261_127;
pub const SITES_PER_NETWORK: usize = 20;
pub const VOCABULARY: usize = 30_000;

const ENGLISH: &str = "the of and to in a is for that on with we our are this as at be by from \
    it not all will have you they more can people community rights workers housing climate \
    justice meeting city support action public water school health right march union \
    tenants families organize local against new power work change policy members solidarity \
    campaign vote safe youth women land food energy free state time year week police \
    immigration border detention asylum deportation legal clinic volunteers training \
    neighborhood rent eviction wages strike coalition rally assembly petition council budget \
    transit pollution drought flood heat forest river coast farm green future children \
    teachers nurses care story voices history culture music art festival library garden \
    kitchen shelter together listen share learn build defend protect demand";
const SPANISH: &str = "de la que el en y a los se del las un por con no una su para es al lo \
    como más pero sus le ya o este sí porque esta entre cuando muy sin sobre también me hasta \
    comunidad derechos trabajadores vivienda clima justicia reunión ciudad apoyo acción \
    pública agua escuela salud marcha sindicato inquilinos familias organización local \
    contra poder trabajo cambio política miembros solidaridad campaña voto seguro juventud \
    mujeres tierra comida energía libre estado tiempo año semana policía migración frontera \
    detención asilo deportación legal clínica voluntarios formación barrio alquiler desalojo \
    salarios huelga coalición asamblea petición consejo presupuesto transporte contaminación \
    sequía inundación calor bosque río costa campo verde futuro niños maestras enfermeras \
    cuidado historia voces cultura música arte festival biblioteca huerta cocina refugio";
const EN_SYLLABLES: &[&str] = &[
    "ba", "ter", "lin", "mor", "ca", "den", "ri", "sto", "pla", "ven", "gor", "tha", "mi", "ro",
    "sel", "fen", "dra", "ku", "wel", "pan", "shor", "bel", "tin", "ox", "ward",
];
const ES_SYLLABLES: &[&str] = &[
    "ma", "ri", "po", "sa", "lu", "te", "ci", "do", "ra", "ve", "ni", "ga", "lo", "che", "mu",
    "ba", "que", "ño", "fi", "ta", "ción", "gue", "llo", "rí", "dé",
];
const TAGS: &[&str] = &[
    "housing",
    "climate",
    "migration",
    "labor",
    "health",
    "education",
    "water",
    "food",
    "transit",
    "youth",
    "women",
    "indigenous",
    "legal",
    "art",
    "energy",
    "police",
    "asylum",
    "rent",
    "strike",
    "vivienda",
    "clima",
    "migracion",
    "salud",
    "trabajo",
];

/// Real words first (the most frequent), then made-up ones to `VOCABULARY`.
fn vocabulary(real: &str, syllables: &[&str], rng: &mut StdRng) -> Vec<String> {
    let mut words: Vec<String> = real.split_whitespace().map(str::to_owned).collect();
    let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
    while words.len() < VOCABULARY {
        let parts = rng.random_range(2..=4);
        let word: String = (0..parts)
            .map(|_| syllables[rng.random_range(0..syllables.len())])
            .collect();
        if seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

pub struct Corpus {
    pub networks: usize,
    pub en: Vec<String>,
    pub es: Vec<String>,
    pub posts: Vec<Post>,
    pub network_ids: Vec<Uuid>,
    pub site_ids: Vec<Uuid>,
}

pub struct Post {
    pub id: Uuid,
    pub event_id: Uuid,
    pub network: usize,
    pub site: usize,
    pub spanish: bool,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    pub micros: i64,
}

/// A UUIDv7 of `millis` with the low bits of `random`.
fn v7(millis: i64, random: u128) -> Uuid {
    let bytes = random.to_le_bytes();
    let mut tail = [0u8; 10];
    tail.copy_from_slice(&bytes[..10]);
    uuid::Builder::from_unix_timestamp_millis(millis as u64, &tail).into_uuid()
}

impl Corpus {
    pub fn generate(networks: usize, posts: usize) -> Corpus {
        let mut rng = StdRng::seed_from_u64(SEED);
        let en = vocabulary(ENGLISH, EN_SYLLABLES, &mut rng);
        let es = vocabulary(SPANISH, ES_SYLLABLES, &mut rng);
        let zipf = Zipf::new(VOCABULARY as f64, 1.07).expect("zipf");
        let network_ids: Vec<Uuid> = (0..networks)
            .map(|_| Uuid::from_u128(rng.random()))
            .collect();
        let site_ids: Vec<Uuid> = (0..networks * SITES_PER_NETWORK)
            .map(|_| Uuid::from_u128(rng.random()))
            .collect();
        let start = 1_732_700_000_000_000i64; // 2024-11-27
        let span = 2 * 365 * 86_400 * 1_000_000i64;
        let words = |rng: &mut StdRng, spanish: bool, count: usize| -> String {
            let vocabulary = if spanish { &es } else { &en };
            (0..count)
                .map(|_| vocabulary[zipf.sample(rng) as usize - 1].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut generated = Vec::with_capacity(posts);
        for n in 0..posts {
            let spanish = rng.random_bool(0.4);
            let network = rng.random_range(0..networks);
            let site = network * SITES_PER_NETWORK + rng.random_range(0..SITES_PER_NETWORK);
            let title_words = rng.random_range(4..=8);
            let body_words = rng.random_range(60..=140);
            let title = words(&mut rng, spanish, title_words);
            let body = words(&mut rng, spanish, body_words);
            let tags = if rng.random_bool(0.3) {
                vec![TAGS[rng.random_range(0..TAGS.len())].to_owned()]
            } else {
                vec![]
            };
            // Ids as the services make them (UUIDv7: time-ordered), which
            // PostgreSQL's indexes take at their right-hand end.
            let created_ms = (start + span / posts as i64 * n as i64) / 1_000;
            let id = v7(created_ms, rng.random());
            let event_id = v7(created_ms, rng.random());
            generated.push(Post {
                id,
                event_id,
                network,
                site,
                spanish,
                title,
                body,
                tags,
                micros: start + span / posts as i64 * n as i64 + rng.random_range(0..1_000_000),
            });
        }
        Corpus {
            networks,
            en,
            es,
            posts: generated,
            network_ids,
            site_ids,
        }
    }

    pub fn text_bytes(&self) -> u64 {
        self.posts
            .iter()
            .map(|post| (post.title.len() + post.body.len()) as u64)
            .sum()
    }

    pub fn site_created(&self, site: usize) -> (String, Envelope) {
        let network = site / SITES_PER_NETWORK;
        let created = SiteCreated {
            site_id: self.site_ids[site].to_string(),
            network_id: self.network_ids[network].to_string(),
            network_slug: network_slug(network),
            slug: site_slug(site),
            name: format!("Site {site}"),
            parent_site_id: String::new(),
            settings: None,
        };
        let envelope = Envelope {
            event_id: Uuid::from_u128(0x5175_0000_0000_0000_0000_0000_0000_0000 + site as u128)
                .to_string(),
            stream_id: format!("site-{}", self.site_ids[site]),
            version: 1,
            event_type: "SiteCreated".into(),
            schema_version: 1,
            service: "sites".into(),
            network_id: self.network_ids[network].to_string(),
            site_id: self.site_ids[site].to_string(),
            actor: "bench".into(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: 1_732_000_000,
                nanos: 0,
            }),
            traceparent: String::new(),
            payload: created.encode_to_vec(),
        };
        ("sites".into(), envelope)
    }

    pub fn post_state(&self, post: &Post) -> PostState {
        let at = prost_types::Timestamp {
            seconds: post.micros / 1_000_000,
            nanos: (post.micros % 1_000_000) as i32 * 1000,
        };
        PostState {
            post_id: post.id.to_string(),
            network_id: self.network_ids[post.network].to_string(),
            network_slug: network_slug(post.network),
            site_id: self.site_ids[post.site].to_string(),
            site_slug: site_slug(post.site),
            site_name: format!("Site {}", post.site),
            title: post.title.clone(),
            body_markdown: post.body.clone(),
            body_html: format!("<p>{}</p>", post.body),
            lang: if post.spanish { "es" } else { "en" }.into(),
            author: "bench".into(),
            published_at: Some(at),
            updated_at: Some(at),
            status: "published".into(),
            visibility: "public".into(),
            tags: post.tags.clone(),
            ..Default::default()
        }
    }

    pub fn post_published(&self, post: &Post) -> Envelope {
        let state = self.post_state(post);
        Envelope {
            event_id: post.event_id.to_string(),
            stream_id: format!("post-{}", post.id),
            version: 1,
            event_type: "PostPublished".into(),
            schema_version: 1,
            service: "content".into(),
            network_id: state.network_id.clone(),
            site_id: state.site_id.clone(),
            actor: "bench".into(),
            occurred_at: state.published_at,
            traceparent: String::new(),
            payload: PostPublished { post: Some(state) }.encode_to_vec(),
        }
    }
}

pub fn network_slug(network: usize) -> String {
    format!("net-{network:04}")
}

pub fn site_slug(site: usize) -> String {
    format!("site-{:02}", site % SITES_PER_NETWORK)
}
