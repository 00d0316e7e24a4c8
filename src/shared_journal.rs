//! `--journal dynamodb://TABLE`: the journal shared between the two machines of the HA daemon
//! (docs/operations.md). Runs are still journaled in the state dir, which is brought up to date
//! from the table first and writes through to it; the run locks are taken in the same table.

use std::sync::Arc;

use drflow_engine::Journal;
use drflow_engine::runner::SharedJournal;

use crate::{Failure, Global, Target};

/// Where `--journal` says the shared journal is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DynamoJournal {
    /// The DynamoDB table (`drflow-state-<env_suffix>`, made by provision).
    pub(crate) table: String,
    /// Its region; `None`: `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub(crate) region: Option<String>,
}

impl DynamoJournal {
    fn url(&self) -> String {
        match &self.region {
            Some(r) => format!("dynamodb://{}?region={r}", self.table),
            None => format!("dynamodb://{}", self.table),
        }
    }
}

/// Parses `dynamodb://TABLE` or `dynamodb://TABLE?region=REGION` (a clap value parser).
pub(crate) fn parse_journal(s: &str) -> Result<DynamoJournal, String> {
    const FORM: &str = "give dynamodb://TABLE or dynamodb://TABLE?region=REGION, e.g. \
                        dynamodb://drflow-state-prod?region=us-west-2 (without --journal, runs \
                        are journaled in the state dir only)";
    let Some(rest) = s.strip_prefix("dynamodb://") else {
        return Err(format!("`{s}` is not a shared journal; {FORM}"));
    };
    let (table, query) = rest.split_once('?').unwrap_or((rest, ""));
    // DynamoDB's own rule for table names.
    let valid = (3..=255).contains(&table.len())
        && table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Err(format!(
            "`{table}` is not a DynamoDB table name (3 to 255 of a-z, A-Z, 0-9, `_`, `-`, `.`); {FORM}"
        ));
    }
    let region = match query {
        "" => None,
        q => match q.strip_prefix("region=") {
            Some(r) if drflow_steps::regions::is_region(r) => Some(r.to_owned()),
            Some(r) => return Err(format!("`{r}` is not an AWS region name; {FORM}")),
            None => {
                return Err(format!(
                    "`?{q}`: only `?region=REGION` is understood; {FORM}"
                ));
            }
        },
    };
    Ok(DynamoJournal {
        table: table.to_owned(),
        region,
    })
}

/// The shared journal `--journal` names, if any. Errors (exit 2): without `--target aws`
/// (nothing reaches AWS unless asked), or with no region to find the table in.
pub(crate) fn open(global: &Global) -> Result<Option<SharedJournal>, Failure> {
    let Some(j) = &global.journal else {
        return Ok(None);
    };
    if global.target != Target::Aws {
        return Err(Failure::invalid(format!(
            "error: --journal {}: a shared journal is a DynamoDB table, and this command runs on \
             --target sim\n  hint: add --target aws (the HA daemon's deployment), or leave \
             --journal out to journal in the state dir\n",
            j.url()
        )));
    }
    let region = j
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
        .or_else(|| {
            std::env::var("AWS_DEFAULT_REGION")
                .ok()
                .filter(|r| !r.is_empty())
        });
    let Some(region) = region else {
        return Err(Failure::invalid(format!(
            "error: --journal {}: no region to find the table in\n  hint: give \
             dynamodb://{}?region=REGION (the same region on every machine: conditional \
             writes are only serialised within one region)\n",
            j.url(),
            j.table
        )));
    };
    let clients = drflow_steps::aws::Clients::new(drflow_steps::aws::AwsSettings {
        endpoint_url: global.endpoint_url.clone(),
        profile: global.profile.clone(),
        static_keys: None,
    });
    let log =
        drflow_steps::aws::DynamoDbLog::new(&clients, &region, &j.table).map_err(|e| Failure {
            code: crate::EXIT_FAILED,
            message: format!(
                "error: --journal {}: cannot reach the table: {e}\n",
                j.url()
            ),
            diagnostics: Vec::new(),
        })?;
    let leases = drflow_steps::aws::DynamoDbLeaseStore::new(clients, &region, &j.table);
    Ok(Some(SharedJournal {
        log: Arc::new(log),
        leases: Arc::new(leases),
        fences: Vec::new(),
    }))
}

/// With `--journal`: the state dir's journal (created if needed) brought up to date from the
/// shared one, for the commands that read runs (`runs`, `show`, `outputs`) and `runs prune`,
/// which then prunes both. `None` without `--journal`.
pub(crate) fn synced_journal(global: &Global) -> Result<Option<Journal>, Failure> {
    let Some(shared) = open(global)? else {
        return Ok(None);
    };
    let journal_failure = |e: drflow_engine::JournalError| Failure {
        code: match e {
            drflow_engine::JournalError::Shared { .. } => crate::EXIT_FAILED,
            _ => crate::EXIT_INVALID,
        },
        message: format!("error: {e}"),
        diagnostics: Vec::new(),
    };
    let mut journal = Journal::open_in(&global.state_dir)
        .map_err(journal_failure)?
        .with_shared(shared.log);
    journal.sync(None).map_err(journal_failure)?;
    Ok(Some(journal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_and_a_region_are_read_and_anything_else_is_refused_with_the_form() {
        assert_eq!(
            parse_journal("dynamodb://drflow-state-prod?region=eu-central-1").unwrap(),
            DynamoJournal {
                table: "drflow-state-prod".into(),
                region: Some("eu-central-1".into())
            }
        );
        assert_eq!(parse_journal("dynamodb://t_1.x").unwrap().region, None);
        for bad in [
            "drflow-state-prod",
            "sqlite://x",
            "dynamodb://",
            "dynamodb://ab",
            "dynamodb://a b c",
            "dynamodb://table?region=mars-1",
            "dynamodb://table?profile=x",
        ] {
            let e = parse_journal(bad).unwrap_err();
            assert!(e.contains("dynamodb://TABLE"), "{bad}: {e}");
        }
    }
}
