//! String formats any step library may use in its declarations: an IPv4 CIDR block, an e-mail
//! address, a domain name. Formats that need knowledge of a cloud (its regions, its instance
//! classes) live with the steps that need them.

use serde_json::json;

use crate::constraint::{Format, Violation};

/// An IPv4 CIDR block whose address is the network address (`10.1.0.0/16`, not `10.1.0.1/16`:
/// AWS keeps the network address, so a block with host bits set would read back as drift).
pub const IPV4_CIDR: Format = Format {
    name: "ipv4-cidr",
    doc: "an IPv4 CIDR block whose address is the network address, e.g. `10.0.0.0/16`",
    check: check_cidr,
    schema: Some(|| json!({"pattern": "^([0-9]{1,3}\\.){3}[0-9]{1,3}/[0-9]{1,2}$"})),
};

/// An e-mail address: `name@domain.tld`, with no spaces.
pub const EMAIL: Format = Format {
    name: "email",
    doc: "an e-mail address such as `ops@example.com`",
    check: check_email,
    schema: Some(|| json!({"pattern": "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"})),
};

/// A DNS domain name of two labels or more in lower case, without a final dot
/// (`trading.example.com`).
pub const DOMAIN_NAME: Format = Format {
    name: "domain-name",
    doc: "a domain name such as `trading.example.com`",
    check: check_domain,
    schema: Some(
        || json!({"pattern": "^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z0-9-]{2,63}$"}),
    ),
};

/// A parsed IPv4 CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The address as written, as a number.
    pub address: u32,
    /// The prefix length, 0 to 32.
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// Parses `a.b.c.d/p`; host bits may be set (see [`Ipv4Cidr::network`]).
    pub fn parse(text: &str) -> Option<Ipv4Cidr> {
        let (ip, prefix) = text.trim().split_once('/')?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let prefix: u8 = prefix.parse().ok()?;
        let octets: Vec<&str> = ip.split('.').collect();
        if octets.len() != 4 || prefix > 32 {
            return None;
        }
        let mut address = 0u32;
        for o in octets {
            if o.is_empty() || o.len() > 3 || !o.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            address = (address << 8) | u32::from(o.parse::<u8>().ok()?);
        }
        Some(Ipv4Cidr { address, prefix })
    }

    /// The network mask.
    pub fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The block with its host bits cleared.
    pub fn network(self) -> Ipv4Cidr {
        Ipv4Cidr {
            address: self.address & self.mask(),
            prefix: self.prefix,
        }
    }

    /// Whether the two blocks share an address.
    pub fn overlaps(self, other: Ipv4Cidr) -> bool {
        let shorter = Ipv4Cidr {
            address: 0,
            prefix: self.prefix.min(other.prefix),
        }
        .mask();
        self.address & shorter == other.address & shorter
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = self.address;
        write!(
            f,
            "{}.{}.{}.{}/{}",
            a >> 24,
            (a >> 16) & 255,
            (a >> 8) & 255,
            a & 255,
            self.prefix
        )
    }
}

fn check_cidr(text: &str) -> Result<(), Violation> {
    let Some(cidr) = Ipv4Cidr::parse(text) else {
        return Err(
            Violation::new(format!("is not an IPv4 CIDR block: `{text}`"))
                .hint("write an address and a prefix length, e.g. `10.0.0.0/16`"),
        );
    };
    let network = cidr.network();
    if network != cidr {
        return Err(Violation::new(format!(
            "has host bits set (`{text}`): AWS keeps only the network address, {network}, so \
             every later run would see the block as changed"
        ))
        .hint(format!("did you mean `{network}`?")));
    }
    Ok(())
}

fn check_email(text: &str) -> Result<(), Violation> {
    let bad = || {
        Violation::new(format!("is not an e-mail address: `{text}`"))
            .hint("write an address such as `ops@example.com`")
    };
    let (local, domain) = text.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || local.len() > 64
        || text.len() > 254
        || local.contains(char::is_whitespace)
        || domain.contains('@')
        || domain_labels(domain).is_err()
    {
        return Err(bad());
    }
    Ok(())
}

fn check_domain(text: &str) -> Result<(), Violation> {
    // AWS stores names in lower case without the final dot, and ACM refuses the dot: a name
    // written otherwise would read back as drift on every run, or fail half-way.
    if let Some(name) = text.strip_suffix('.') {
        return Err(
            Violation::new(format!("ends with a dot: `{text}`")).hint(format!(
                "write `{name}`: drflow adds the final dot where DNS needs it"
            )),
        );
    }
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(
            Violation::new(format!("has upper-case letters: `{text}`")).hint(format!(
                "write `{}`: DNS names are case-insensitive and AWS keeps them in lower case",
                text.to_ascii_lowercase()
            )),
        );
    }
    domain_labels(text)
}

/// The shape of a domain name, in any case and with an optional final dot (as in an e-mail
/// address's domain).
fn domain_labels(text: &str) -> Result<(), Violation> {
    let name = text.strip_suffix('.').unwrap_or(text);
    let bad = |why: &str| {
        Violation::new(format!("is not a domain name ({why}): `{text}`")).hint(
            "write labels of letters, digits and dashes joined by dots, e.g. `trading.example.com`",
        )
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err(bad("it needs at least two labels"));
    }
    for label in labels {
        if label.is_empty() {
            return Err(bad("it has an empty label"));
        }
        if label.len() > 63 {
            return Err(bad("a label is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad("only letters, digits and dashes may appear in a label"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label starts or ends with a dash"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cidr_with_host_bits_set_suggests_the_network_address() {
        let v = check_cidr("10.1.0.1/16").unwrap_err();
        assert!(v.problem.contains("has host bits set"), "{v}");
        assert_eq!(v.hint.as_deref(), Some("did you mean `10.1.0.0/16`?"));
        assert!(check_cidr("10.1.0.0/16").is_ok());
        assert!(check_cidr("10.1.0.0/33").is_err());
        assert!(check_cidr("10.1.0/16").is_err());
        assert!(check_cidr("10.256.0.0/16").is_err());
        assert!(check_cidr("10.1.0.0").is_err());
    }

    #[test]
    fn overlap_is_decided_by_the_shorter_prefix() {
        let a = Ipv4Cidr::parse("10.0.0.0/16").unwrap();
        assert!(a.overlaps(Ipv4Cidr::parse("10.0.128.0/17").unwrap()));
        assert!(!a.overlaps(Ipv4Cidr::parse("10.1.0.0/16").unwrap()));
        assert!(Ipv4Cidr::parse("10.0.0.0/8").unwrap().overlaps(a));
    }

    #[test]
    fn e_mail_addresses() {
        assert!(check_email("ops@example.com").is_ok());
        assert!(check_email("ops+dr@trading.example.co.uk").is_ok());
        for bad in [
            "no",
            "ops@",
            "@example.com",
            "ops@example",
            "o ps@example.com",
            "a@b@c.com",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn domain_names() {
        assert!(check_domain("trading.example.com").is_ok());
        assert!(domain_labels("api.trading.example.com.").is_ok());
        // AWS keeps names in lower case and ACM refuses the final dot: either would be drift.
        assert!(check_domain("api.trading.example.com.").is_err());
        assert!(check_domain("Trading.Example.com").is_err());
        assert!(check_email("Ops@Example.COM").is_ok());
        for bad in [
            "example",
            "-x.example.com",
            "a..b.com",
            "a_b.example.com",
            "",
        ] {
            assert!(check_domain(bad).is_err(), "{bad}");
        }
    }
}
