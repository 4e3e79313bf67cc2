//! Fetching a document from a URL people gave us (a site's social feed, a
//! calendar to import) without letting them reach inside our network: only
//! http(s), only public addresses unless allowed, the address checked is
//! the one connected to, redirects followed by hand (each checked), within
//! a time and a size limit.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::Url;

const REDIRECTS_MAX: usize = 3;

/// What one fetch may do.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The whole fetch.
    pub timeout: Duration,
    pub max_bytes: usize,
    /// Fetch from loopback and private networks too (tests, closed setups).
    pub allow_private: bool,
    pub user_agent: &'static str,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(15),
            max_bytes: 5 * 1024 * 1024,
            allow_private: false,
            user_agent: "ANP (+https://liberation.network)",
        }
    }
}

impl Limits {
    /// These limits with `{prefix}TIMEOUT_MS`, `{prefix}MAX_BYTES` and
    /// `{prefix}ALLOW_PRIVATE` (`true`/`false`) from the environment.
    pub fn from_env(self, prefix: &str) -> Result<Limits, String> {
        let number = |name: String, default: u64| -> Result<u64, String> {
            match std::env::var(&name) {
                Ok(value) => value.parse().map_err(|_| format!("{name}: not a number")),
                Err(_) => Ok(default),
            }
        };
        Ok(Limits {
            timeout: Duration::from_millis(number(
                format!("{prefix}TIMEOUT_MS"),
                self.timeout.as_millis() as u64,
            )?),
            max_bytes: number(format!("{prefix}MAX_BYTES"), self.max_bytes as u64)? as usize,
            allow_private: std::env::var(format!("{prefix}ALLOW_PRIVATE"))
                .map_or(self.allow_private, |value| value == "true"),
            user_agent: self.user_agent,
        })
    }
}

/// Whether an address is on the public internet: not loopback, private,
/// link-local, unique-local, shared (CGNAT), multicast, documentation or
/// unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_multicast()
                || ip.is_broadcast()
                || ip.is_unspecified()
                || ip.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = ip.segments()[0];
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && ip.segments()[1] == 0x0db8)
        }
    }
}

/// What one fetch brought.
#[derive(Debug)]
pub enum Fetched {
    NotModified,
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

/// Fetches a document: only http(s), only public addresses (unless allowed),
/// the address checked is the one connected to, redirects followed by hand
/// (each checked), within the time and size limits.
pub async fn fetch(
    url: &str,
    etag: Option<&str>,
    last_modified: Option<&str>,
    limits: &Limits,
) -> Result<Fetched, String> {
    let mut url = Url::parse(url).map_err(|err| format!("not a URL: {err}"))?;
    let work = async {
        for _ in 0..=REDIRECTS_MAX {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("{}: only http and https", url.scheme()));
            }
            let port = url.port_or_known_default().ok_or("no port")?;
            let (host, addrs): (String, Vec<SocketAddr>) = match url.host().ok_or("no host")? {
                url::Host::Ipv4(ip) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
                url::Host::Ipv6(ip) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
                url::Host::Domain(name) => (
                    name.to_owned(),
                    tokio::net::lookup_host((name, port))
                        .await
                        .map_err(|err| format!("{name}: {err}"))?
                        .collect(),
                ),
            };
            if addrs.is_empty() {
                return Err(format!("{host}: no address"));
            }
            if !limits.allow_private && addrs.iter().any(|addr| !is_public(addr.ip())) {
                return Err(format!("{host}: refused, it is a private or local address"));
            }
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .resolve_to_addrs(&host, &addrs)
                .user_agent(limits.user_agent)
                .build()
                .map_err(|err| err.to_string())?;
            let mut request = client.get(url.clone());
            if let Some(etag) = etag {
                request = request.header(reqwest::header::IF_NONE_MATCH, etag);
            }
            if let Some(since) = last_modified {
                request = request.header(reqwest::header::IF_MODIFIED_SINCE, since);
            }
            let mut response = request.send().await.map_err(|err| err.to_string())?;
            let status = response.status();
            if status == reqwest::StatusCode::NOT_MODIFIED {
                return Ok(Fetched::NotModified);
            }
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .ok_or_else(|| format!("HTTP {status} without a Location"))?;
                url = url
                    .join(location)
                    .map_err(|err| format!("redirect: {err}"))?;
                continue;
            }
            if !status.is_success() {
                return Err(format!("HTTP {status}"));
            }
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|value: &reqwest::header::HeaderValue| value.to_str().ok())
                    .map(|value| value.chars().take(200).collect::<String>())
            };
            let etag = header(reqwest::header::ETAG);
            let last_modified = header(reqwest::header::LAST_MODIFIED);
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|err| err.to_string())? {
                if bytes.len() + chunk.len() > limits.max_bytes {
                    return Err(format!("larger than {} bytes", limits.max_bytes));
                }
                bytes.extend_from_slice(&chunk);
            }
            return Ok(Fetched::Body {
                bytes,
                etag,
                last_modified,
            });
        }
        Err(format!("more than {REDIRECTS_MAX} redirects"))
    };
    tokio::time::timeout(limits.timeout, work)
        .await
        .map_err(|_| format!("no answer within {} ms", limits.timeout.as_millis()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn private_addresses_are_refused_before_connecting() {
        let limits = Limits::default();
        for url in [
            "http://127.0.0.1:9/feed",
            "http://localhost:9/feed",
            "http://[::1]:9/feed",
            "http://169.254.169.254/latest/meta-data",
        ] {
            let err = fetch(url, None, None, &limits).await.unwrap_err();
            assert!(err.contains("private or local"), "{url}: {err}");
        }
        let err = fetch("ftp://example.org/feed", None, None, &limits)
            .await
            .unwrap_err();
        assert!(err.contains("only http"), "{err}");
    }
}
