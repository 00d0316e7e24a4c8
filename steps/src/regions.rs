//! Every commercial AWS region and its availability zones: one table, used by the value checks
//! of the steps (a region parameter must be one of these) and by the simulated cloud (which
//! serves exactly these regions, with these zones).
//!
//! Zone letters are what a new account sees; AWS maps letters to physical zones per account, and
//! in a few regions (us-west-1, ap-northeast-1, ca-central-1) some letters are not offered to new
//! accounts. The GovCloud and China partitions are not commercial regions and are not listed.

use drflow_engine::{Format, Violation, nearest};
use serde_json::json;

/// Region codes and their zone letters.
const REGIONS: &[(&str, &str)] = &[
    ("af-south-1", "abc"),
    ("ap-east-1", "abc"),
    ("ap-east-2", "abc"),
    ("ap-northeast-1", "acd"),
    ("ap-northeast-2", "abcd"),
    ("ap-northeast-3", "abc"),
    ("ap-south-1", "abc"),
    ("ap-south-2", "abc"),
    ("ap-southeast-1", "abc"),
    ("ap-southeast-2", "abc"),
    ("ap-southeast-3", "abc"),
    ("ap-southeast-4", "abc"),
    ("ap-southeast-5", "abc"),
    ("ap-southeast-6", "abc"),
    ("ap-southeast-7", "abc"),
    ("ca-central-1", "abd"),
    ("ca-west-1", "abc"),
    ("eu-central-1", "abc"),
    ("eu-central-2", "abc"),
    ("eu-north-1", "abc"),
    ("eu-south-1", "abc"),
    ("eu-south-2", "abc"),
    ("eu-west-1", "abc"),
    ("eu-west-2", "abc"),
    ("eu-west-3", "abc"),
    ("il-central-1", "abc"),
    ("me-central-1", "abc"),
    ("me-south-1", "abc"),
    ("mx-central-1", "abc"),
    ("sa-east-1", "abc"),
    ("us-east-1", "abcdef"),
    ("us-east-2", "abc"),
    ("us-west-1", "ac"),
    ("us-west-2", "abcd"),
];

/// Every commercial region code, sorted.
pub fn all() -> impl Iterator<Item = &'static str> {
    REGIONS.iter().map(|(r, _)| *r)
}

/// Whether `region` is a commercial AWS region.
pub fn is_region(region: &str) -> bool {
    REGIONS.iter().any(|(r, _)| *r == region)
}

/// The availability zones of a region (`us-east-2a`, …), or `None` for an unknown region.
pub fn availability_zones(region: &str) -> Option<Vec<String>> {
    let (_, letters) = REGIONS.iter().find(|(r, _)| *r == region)?;
    Some(letters.chars().map(|l| format!("{region}{l}")).collect())
}

/// A commercial AWS region code, checked against the table.
pub const AWS_REGION: Format = Format {
    name: "aws-region",
    doc: "a commercial AWS region such as `us-east-1`",
    check: check_region,
    schema: Some(|| json!({"enum": all().collect::<Vec<_>>()})),
};

fn check_region(text: &str) -> Result<(), Violation> {
    if is_region(text) {
        return Ok(());
    }
    Err(Violation::new(format!("is not an AWS region: `{text}`")).hint(region_hint(text)))
}

/// What to say about a region code that is not one: its siblings (`us-east-3`: the us-east
/// regions), or the nearest code.
pub fn region_hint(text: &str) -> String {
    let lower = text.trim().to_ascii_lowercase();
    if lower != text && is_region(&lower) {
        if text.trim() != text {
            return format!("remove the spaces around it: `{lower}`");
        }
        return format!("region codes are lower case: `{lower}`");
    }
    // Not a typo of a commercial region: "did you mean us-west-1" would send a GovCloud or
    // China deployment to another partition.
    if lower.starts_with("us-gov-") || lower.starts_with("us-iso") || lower.starts_with("cn-") {
        return "GovCloud, China and isolated regions are separate AWS partitions, which drflow \
                does not support; use a commercial region such as `us-east-1`"
            .into();
    }
    let area = lower.trim_end_matches(|c: char| c.is_ascii_digit());
    let siblings: Vec<String> = all()
        .filter(|r| r.len() > area.len() && r.starts_with(area) && area.ends_with('-'))
        .map(|r| format!("`{r}`"))
        .collect();
    match siblings.as_slice() {
        [] => match nearest(&lower, all()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => "write a region code such as `us-east-1` or `eu-central-1`".into(),
        },
        [one] => format!("the only {} region is {one}", area.trim_end_matches('-')),
        many => {
            let (last, init) = many.split_last().expect("two or more");
            format!(
                "the {} regions are {} and {last}",
                area.trim_end_matches('-'),
                init.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_regions_the_sim_used_to_refuse() {
        for r in [
            "ap-northeast-1",
            "ca-central-1",
            "eu-central-2",
            "mx-central-1",
        ] {
            assert!(is_region(r), "{r}");
            assert!(availability_zones(r).is_some_and(|z| z.len() >= 3), "{r}");
        }
        assert_eq!(
            availability_zones("us-west-1").unwrap(),
            vec!["us-west-1a", "us-west-1c"]
        );
        assert!(!is_region("us-east-3"));
        assert!(!is_region("us-gov-west-1"));
    }

    #[test]
    fn the_table_is_sorted_and_has_no_duplicates() {
        let codes: Vec<&str> = all().collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted);
    }

    #[test]
    fn a_wrong_region_names_its_siblings() {
        let v = check_region("us-east-3").unwrap_err();
        assert_eq!(v.problem, "is not an AWS region: `us-east-3`");
        assert_eq!(
            v.hint.as_deref(),
            Some("the us-east regions are `us-east-1` and `us-east-2`")
        );
        assert_eq!(
            region_hint("EU-WEST-1"),
            "region codes are lower case: `eu-west-1`"
        );
        assert_eq!(region_hint("eu-wset-1"), "did you mean `eu-west-1`?");
    }

    /// A region outside the commercial partition is not "corrected" to a commercial one, and
    /// a region with a stray space is not said to be in the wrong case.
    #[test]
    fn gov_china_and_padded_regions_get_a_hint_of_their_own() {
        for r in [
            "us-gov-west-1",
            "us-gov-east-1",
            "cn-north-1",
            "cn-northwest-1",
            "us-isob-east-1",
        ] {
            let hint = region_hint(r);
            assert!(hint.contains("separate AWS partitions"), "{r}: {hint}");
        }
        assert_eq!(
            region_hint("us-east-1 "),
            "remove the spaces around it: `us-east-1`"
        );
    }
}
