//! The egress rules of webhook deliveries: which addresses a delivery may connect to,
//! checked on the addresses a host resolves to, when the connection is made.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// A network in CIDR notation (`10.0.0.0/8`, `::1/128`; an address alone is a network of
/// one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

/// Why a text is not a [`Network`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a network in CIDR notation (like 10.0.0.0/8 or fd00::/8): {why}")]
pub struct InvalidNetwork {
    text: String,
    why: String,
}

impl Network {
    /// Whether `ip` (or the IPv4 address an IPv4-mapped IPv6 address stands for) is in it.
    pub fn contains(&self, ip: IpAddr) -> bool {
        [ip, ip.to_canonical()].into_iter().any(|ip| {
            ip.is_ipv4() == self.address.is_ipv4() && masked(ip, self.prefix) == self.address
        })
    }
}

/// `ip` with the bits after the first `prefix` cleared.
pub(super) fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

impl FromStr for Network {
    type Err = InvalidNetwork;

    fn from_str(text: &str) -> Result<Self, InvalidNetwork> {
        let invalid = |why: String| InvalidNetwork {
            text: text.to_string(),
            why,
        };
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| invalid(format!("{address:?} is not an IP address")))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|n| *n <= max).ok_or_else(|| {
                invalid(format!(
                    "the prefix length {p:?} is not a number from 0 to {max}"
                ))
            })?,
        };
        let network = masked(address, prefix);
        if network != address {
            return Err(invalid(format!(
                "bits are set after the prefix; the network is {network}/{prefix}"
            )));
        }
        Ok(Self { address, prefix })
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// The networks refused unless allowed: this network, private, CGNAT, loopback,
/// link-local (cloud metadata), multicast, broadcast; IPv6 unspecified, loopback,
/// unique-local, link-local and multicast. [`Network::contains`] also finds the IPv4-mapped
/// forms of the IPv4 ones.
const LOCAL: &str = "0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 \
                     172.16.0.0/12 192.0.0.0/24 192.168.0.0/16 198.18.0.0/15 224.0.0.0/4 \
                     240.0.0.0/4 ::/128 ::1/128 fc00::/7 fe80::/10 ff00::/8";

/// Whether `ip` is in one of the [`LOCAL`] networks, or is an IPv6 address that carries
/// an IPv4 address in one (NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, IPv4-compatible
/// `::a.b.c.d`), which a gateway on the way would turn into that address.
fn is_local(ip: IpAddr) -> bool {
    static NETWORKS: LazyLock<Vec<Network>> = LazyLock::new(|| {
        LOCAL
            .split_whitespace()
            .map(|n| n.parse().expect("a valid network"))
            .collect()
    });
    NETWORKS.iter().any(|n| n.contains(ip)) || embedded_v4(ip).is_some_and(|v4| is_local(v4.into()))
}

/// The IPv4 address an IPv6 address carries for a translator or a tunnel, if it does.
fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else {
        return None;
    };
    let s = v6.segments();
    let o = v6.octets();
    let last = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        // NAT64's well-known prefix.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last),
        // 6to4: the IPv4 address follows the prefix.
        [0x2002, _, _, _, _, _, _, _] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        // IPv4-compatible (deprecated, but some stacks still route it); not :: or ::1.
        [0, 0, 0, 0, 0, 0, _, _] if u32::from(last) > 1 => Some(last),
        _ => None,
    }
}

/// Whether a webhook may be sent to `ip`.
pub(super) fn permitted(ip: IpAddr, allowed: &[Network]) -> bool {
    !is_local(ip) || allowed.iter().any(|n| n.contains(ip))
}

/// The egress rules, applied to the addresses a webhook's host resolves to, when the
/// connection is made: the addresses refused are dropped, and when none is left the
/// attempt fails and says why.
#[derive(Debug)]
pub(super) struct Egress {
    pub(super) inner: DefaultResolver,
    pub(super) allowed: Arc<[Network]>,
}

/// A webhook's host resolves only to addresses the egress rules refuse.
#[derive(Debug, thiserror::Error)]
#[error(
    "the webhook's host {host} resolves only to private or local addresses, which the \
     server's egress rules refuse; ops can allow a network with --webhook-allow-network CIDR"
)]
struct Refused {
    host: String,
}

impl Resolver for Egress {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let found = self.inner.resolve(uri, config, timeout)?;
        let mut kept = self.empty();
        let mut refused = false;
        for addr in found.iter() {
            if permitted(addr.ip(), &self.allowed) {
                kept.push(*addr);
            } else {
                refused = true;
            }
        }
        // Which addresses were refused is not said: the delivery history is an app
        // owner's, and must not map the platform's internal names.
        if refused && kept.is_empty() {
            return Err(ureq::Error::Other(Box::new(Refused {
                host: uri.host().unwrap_or_default().to_string(),
            })));
        }
        Ok(kept)
    }
}
