//! Where outbound webhooks may go.
//!
//! A subscriber URL is chosen by whoever holds an admin token, and the worker POSTs to it from
//! inside the operator's network. Unchecked, that reaches loopback services, the cloud metadata
//! endpoint and anything else on the private network (server-side request forgery). So only
//! public unicast addresses are destinations by default, checked twice:
//!
//! - **when subscribing** (API and CLI, [`Destinations::check`]): an IP-literal host directly, in
//!   the one form the URL parser normalises every spelling to (`2130706433`, `0x7f.1` and
//!   `127.1` all become `127.0.0.1`; `[::ffff:127.0.0.1]` is checked as the IPv4 address inside
//!   it), and a name by resolving it. A name that does not resolve now is accepted: the check
//!   below covers it.
//! - **when sending**, because a name can resolve elsewhere later (DNS rebinding): the client's
//!   resolver ([`GuardedResolver`]) drops the addresses that are not destinations before a
//!   connection is made, an IP-literal host is checked before the request
//!   ([`Destinations::refuses_url`]), redirects are never followed and proxies from the
//!   environment are not used (a proxy would resolve the name where this check cannot see it).
//!
//! `webhooks.allowed_destinations` lists the exceptions, for intranets and tests: host names
//! (exact, or `*.example.org` for the names under one), IP addresses and CIDR blocks. A listed
//! name is trusted whatever it resolves to; a listed block admits its addresses under any name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;

/// What a delivery refused here records as its error (no address: that is the subscriber's).
pub const REFUSED: &str = "destination refused: private address";

/// How long a subscription waits for its URL's host to resolve.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The resolver's refusal; found again in the request error's source chain by the sender.
#[derive(Debug, thiserror::Error)]
#[error("{REFUSED}")]
pub struct Refused;

/// The name did not resolve (no such name, no answer).
#[derive(Debug, thiserror::Error)]
#[error("could not resolve the host")]
pub struct Unresolved(#[source] pub std::io::Error);

/// IPv4 blocks that are not destinations, with what they are (for the subscriber's error).
#[rustfmt::skip]
const V4_REFUSED: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0),       8,  "an unspecified (\"this network\") address"),
    (Ipv4Addr::new(10, 0, 0, 0),      8,  "a private address"),
    (Ipv4Addr::new(100, 64, 0, 0),    10, "a shared (carrier-grade NAT) address"),
    (Ipv4Addr::new(127, 0, 0, 0),     8,  "a loopback address"),
    (Ipv4Addr::new(169, 254, 0, 0),   16, "a link-local (cloud metadata) address"),
    (Ipv4Addr::new(172, 16, 0, 0),    12, "a private address"),
    (Ipv4Addr::new(192, 0, 0, 0),     24, "an IETF protocol address"),
    (Ipv4Addr::new(192, 0, 2, 0),     24, "a documentation address"),
    (Ipv4Addr::new(192, 88, 99, 0),   24, "a 6to4 relay address"),
    (Ipv4Addr::new(192, 168, 0, 0),   16, "a private address"),
    (Ipv4Addr::new(198, 18, 0, 0),    15, "a benchmarking address"),
    (Ipv4Addr::new(198, 51, 100, 0),  24, "a documentation address"),
    (Ipv4Addr::new(203, 0, 113, 0),   24, "a documentation address"),
    (Ipv4Addr::new(224, 0, 0, 0),     4,  "a multicast address"),
    (Ipv4Addr::new(240, 0, 0, 0),     4,  "a reserved or broadcast address"),
];

/// IPv6 blocks that are not destinations, most specific first. Whatever lies outside 2000::/3
/// (global unicast) is refused as well; these name the common cases and the holes inside
/// 2000::/3.
#[rustfmt::skip]
const V6_REFUSED: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),             128, "an unspecified address"),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1),             128, "a loopback address"),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),             96,  "an IPv4-compatible (deprecated) address"),
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),     48,  "a local-use NAT64 address"),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),         64,  "a discard-only address"),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),    32,  "a documentation address"),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),        23,  "an IETF protocol (Teredo, benchmarking) address"),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),        20,  "a documentation address"),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),        7,   "a unique-local address"),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),        10,  "a link-local address"),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),        10,  "a site-local (deprecated) address"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),        8,   "a multicast address"),
];

const GLOBAL_UNICAST_V6: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);
const NAT64_V6: (Ipv6Addr, u8) = (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);
const SIX_TO_FOUR_V6: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16);

fn v4_within(net: Ipv4Addr, prefix: u8, addr: Ipv4Addr) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    net.to_bits() & mask == addr.to_bits() & mask
}

fn v6_within(net: Ipv6Addr, prefix: u8, addr: Ipv6Addr) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    net.to_bits() & mask == addr.to_bits() & mask
}

/// The IPv4 address an IPv6 address reaches: IPv4-mapped (`::ffff:a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::`) carry one.
fn embedded_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = a.to_ipv4_mapped() {
        return Some(v4);
    }
    let bits = a.to_bits();
    if v6_within(NAT64_V6.0, NAT64_V6.1, a) {
        return Some(Ipv4Addr::from_bits(bits as u32));
    }
    if v6_within(SIX_TO_FOUR_V6.0, SIX_TO_FOUR_V6.1, a) {
        return Some(Ipv4Addr::from_bits((bits >> 80) as u32));
    }
    None
}

/// Why `ip` is no destination by default (e.g. "a loopback address"), or `None` for a public
/// unicast address.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => V4_REFUSED
            .iter()
            .find(|(net, prefix, _)| v4_within(*net, *prefix, a))
            .map(|(_, _, what)| *what),
        IpAddr::V6(a) => {
            if let Some(v4) = embedded_v4(a) {
                return non_public(IpAddr::V4(v4));
            }
            let named = V6_REFUSED
                .iter()
                .find(|(net, prefix, _)| v6_within(*net, *prefix, a))
                .map(|(_, _, what)| *what);
            match named {
                Some(what) => Some(what),
                None if !v6_within(GLOBAL_UNICAST_V6.0, GLOBAL_UNICAST_V6.1, a) => {
                    Some("not a global unicast address")
                }
                None => None,
            }
        }
    }
}

/// An allowed CIDR block (a single address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    net: IpAddr,
    prefix: u8,
}

impl Block {
    fn parse(text: &str) -> Option<Block> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let net = literal(addr)?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Block { net, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => v4_within(net, self.prefix, a),
            (IpAddr::V6(net), IpAddr::V6(a)) => v6_within(net, self.prefix, a),
            // An IPv4 block also admits the IPv6 forms of its addresses.
            (IpAddr::V4(_), IpAddr::V6(a)) => {
                embedded_v4(a).is_some_and(|v4| self.contains(v4.into()))
            }
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

/// An IP address written as a URL host or a setting: `10.0.0.1`, `::1` or `[::1]`.
fn literal(host: &str) -> Option<IpAddr> {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

/// Lower case without the root's trailing dot, as names are compared.
fn normalise_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `localhost` and the names under it are loopback by definition (RFC 6761), whatever DNS says.
fn is_localhost(name: &str) -> bool {
    let name = normalise_name(name);
    name == "localhost" || name.ends_with(".localhost")
}

fn valid_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// The destinations allowed besides public addresses (`webhooks.allowed_destinations`).
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    /// Lower-case names; `*.suffix` for the names under `suffix`.
    names: Vec<String>,
    blocks: Vec<Block>,
}

impl Destinations {
    /// Reads the setting's entries: names, addresses or CIDR blocks.
    pub fn parse(entries: &[String]) -> anyhow::Result<Destinations> {
        let mut allowed = Destinations::default();
        for entry in entries {
            if let Some(block) = Block::parse(entry.trim()) {
                allowed.blocks.push(block);
                continue;
            }
            let name = normalise_name(entry);
            if !valid_name(&name) {
                bail!(
                    "webhooks.allowed_destinations: `{entry}` is neither a host name (or \
                     *.domain), an IP address nor a CIDR block like 10.0.0.0/8"
                );
            }
            allowed.names.push(name);
        }
        Ok(allowed)
    }

    /// Whether the name is listed (then whatever it resolves to is a destination).
    pub fn allows_name(&self, host: &str) -> bool {
        let host = normalise_name(host);
        self.names
            .iter()
            .any(|listed| match listed.strip_prefix("*.") {
                Some(domain) => host
                    .strip_suffix(domain)
                    .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
                None => *listed == host,
            })
    }

    /// Why `ip` is not a destination, or `None` when it is (public, or in a listed block).
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        if self.blocks.iter().any(|b| b.contains(ip)) {
            return None;
        }
        non_public(ip)
    }

    /// The subscription-time check of a URL's host; `Err` says why it is refused.
    pub async fn check(&self, url: &reqwest::Url) -> Result<(), String> {
        let Some(host) = url.host_str() else {
            return Ok(());
        };
        if let Some(ip) = literal(host) {
            return match self.refusal(ip) {
                Some(what) => Err(format!("{host} is {what}")),
                None => Ok(()),
            };
        }
        if self.allows_name(host) {
            return Ok(());
        }
        if is_localhost(host) {
            return Err(format!("{host} is a loopback name"));
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let lookup = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port)));
        // A name that does not resolve now is checked again whenever a delivery is sent.
        let Ok(Ok(addresses)) = lookup.await else {
            return Ok(());
        };
        for address in addresses {
            if let Some(what) = self.refusal(address.ip()) {
                return Err(format!("{host} resolves to {}, {what}", address.ip()));
            }
        }
        Ok(())
    }

    /// The send-time check of what the resolver never sees: an IP-literal host.
    pub fn refuses_url(&self, url: &str) -> bool {
        let Ok(url) = reqwest::Url::parse(url) else {
            return false; // the request fails on its own
        };
        url.host_str()
            .and_then(literal)
            .is_some_and(|ip| self.refusal(ip).is_some())
    }
}

/// The webhook client's resolver: the system's, minus the addresses that are not
/// destinations. Connections are made only to what it returns, so a name that resolves to a
/// public address when subscribed and to a private one later is refused at the later time.
pub struct GuardedResolver {
    allowed: Arc<Destinations>,
}

impl GuardedResolver {
    pub fn new(allowed: Arc<Destinations>) -> GuardedResolver {
        GuardedResolver { allowed }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allowed = self.allowed.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let trusted = allowed.allows_name(&host);
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Box::new(Unresolved(e)) as Box<dyn std::error::Error + Send + Sync>)?
                .collect();
            if found.is_empty() {
                let none = std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses");
                return Err(Box::new(Unresolved(none)) as Box<dyn std::error::Error + Send + Sync>);
            }
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| trusted || allowed.refusal(a.ip()).is_none())
                .collect();
            if kept.is_empty() {
                tracing::debug!(host = %host, "webhook destination {host} resolves to private addresses only; refused");
                return Err(Box::new(Refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn none() -> Destinations {
        Destinations::default()
    }

    #[test]
    fn internal_addresses_are_not_destinations() {
        for (addr, what) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.0.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "carrier-grade"),
            ("100.100.100.200", "carrier-grade"),
            ("0.0.0.0", "unspecified"),
            ("255.255.255.255", "broadcast"),
            ("224.0.0.1", "multicast"),
            ("192.0.2.10", "documentation"),
            ("198.51.100.1", "documentation"),
            ("203.0.113.1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("64:ff9b::10.0.0.1", "private"),
            ("2002:7f00:1::", "loopback"),
            ("fc00::1", "unique-local"),
            ("fd00:ec2::254", "unique-local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("2001::1", "Teredo"),
            ("3fff::1", "documentation"),
            ("100::1", "discard"),
            ("4000::1", "global unicast"),
        ] {
            let why = none()
                .refusal(ip(addr))
                .unwrap_or_else(|| panic!("{addr} allowed"));
            assert!(why.contains(what), "{addr}: {why}");
        }
    }

    #[test]
    fn public_addresses_are_destinations() {
        for addr in [
            "1.1.1.1",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
        ] {
            assert_eq!(none().refusal(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn the_allow_list_takes_names_addresses_and_blocks() {
        let allowed = Destinations::parse(&[
            "127.0.0.1".into(),
            "10.1.0.0/16".into(),
            "[fd00::1]".into(),
            "Hooks.Intranet.".into(),
            "*.corp.example".into(),
        ])
        .unwrap();
        assert_eq!(allowed.refusal(ip("127.0.0.1")), None);
        assert_eq!(allowed.refusal(ip("::ffff:127.0.0.1")), None);
        assert!(allowed.refusal(ip("127.0.0.2")).is_some());
        assert_eq!(allowed.refusal(ip("10.1.200.3")), None);
        assert!(allowed.refusal(ip("10.2.0.1")).is_some());
        assert_eq!(allowed.refusal(ip("fd00::1")), None);
        assert!(allowed.allows_name("hooks.intranet"));
        assert!(allowed.allows_name("HOOKS.intranet."));
        assert!(allowed.allows_name("crm.corp.example"));
        assert!(!allowed.allows_name("corp.example"));
        assert!(!allowed.allows_name("evilcorp.example"));
        assert!(!allowed.allows_name("localhost"));
        for bad in ["10.0.0.0/33", "::/129", "not a host", "a..b", "http://x/"] {
            let e = Destinations::parse(&[bad.into()]).unwrap_err().to_string();
            assert!(e.contains("webhooks.allowed_destinations"), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn every_spelling_of_an_address_is_refused_in_a_url() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1:8080/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "https://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://0/",
        ] {
            let parsed = reqwest::Url::parse(url).unwrap();
            assert!(none().check(&parsed).await.is_err(), "{url} accepted");
            assert!(none().refuses_url(url), "{url} not refused when sending");
        }
        // Names: refused when subscribing; when sending, the resolver drops their addresses.
        for url in [
            "http://localhost/",
            "http://LOCALHOST./",
            "http://api.localhost/",
        ] {
            let parsed = reqwest::Url::parse(url).unwrap();
            assert!(none().check(&parsed).await.is_err(), "{url} accepted");
        }
        let public = reqwest::Url::parse("https://93.184.216.34/hook").unwrap();
        assert!(none().check(&public).await.is_ok());
        assert!(!none().refuses_url("https://93.184.216.34/hook"));
        assert!(!none().refuses_url("https://hooks.example.org/x"));
    }

    #[tokio::test]
    async fn the_resolver_drops_addresses_that_are_not_destinations() {
        use reqwest::dns::Resolve;
        let resolve = |allowed: &[&str]| {
            let entries: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
            let resolver = GuardedResolver::new(Arc::new(Destinations::parse(&entries).unwrap()));
            resolver.resolve("localhost".parse().unwrap())
        };
        let refused = resolve(&[]).await.err().expect("localhost refused");
        assert!(refused.is::<Refused>(), "{refused}");
        let by_name: Vec<SocketAddr> = resolve(&["localhost"]).await.unwrap().collect();
        assert!(
            by_name.iter().any(|a| a.ip() == ip("127.0.0.1")),
            "{by_name:?}"
        );
        let by_block: Vec<SocketAddr> = resolve(&["127.0.0.0/8"]).await.unwrap().collect();
        assert!(
            !by_block.is_empty() && by_block.iter().all(|a| a.ip().is_ipv4()),
            "only the listed block: {by_block:?}"
        );
    }
}
