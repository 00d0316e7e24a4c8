//! What `drflow.yaml` promises about its runbooks, checked: each compiles, declares every
//! parameter its trigger passes, and accepts its parameters file.

use std::sync::Arc;

use crate::compile::{Runbook, compile};
use crate::diag::{Diagnostic, Diagnostics, suggest};
use crate::step::Registry;

use super::config::TriggerConfig;

/// Compiles each trigger's runbook with `registry` and checks that every `params` key is a
/// parameter it declares and that its `params_file` resolves against it. Returns the runbooks
/// in trigger order, or every problem: the runbook's own diagnostics (in the runbook's file),
/// the parameters file's (in that file), and unknown parameters (at their key in drflow.yaml).
/// Parameters the trigger passes are not required from the file.
pub fn check_runbooks(
    config: &TriggerConfig,
    registry: &Registry,
) -> Result<Vec<Runbook>, Diagnostics> {
    let file: Arc<str> = Arc::from(config.path.display().to_string());
    let mut errors: Vec<Diagnostic> = Vec::new();
    let mut out = Vec::new();
    for t in &config.triggers {
        let name = t.runbook.display().to_string();
        let source = match std::fs::read_to_string(&t.runbook) {
            Ok(s) => s,
            Err(e) => {
                errors.push(
                    Diagnostic::new(
                        file.clone(),
                        t.sites.runbook,
                        format!(
                            "cannot read the runbook `{name}` of trigger `{}`: {e}",
                            t.name
                        ),
                    )
                    .with_hint("paths are relative to the directory drflow.yaml is in"),
                );
                continue;
            }
        };
        let rb = match compile(&name, &source, registry) {
            Ok(rb) => rb,
            Err(d) => {
                errors.extend(d.0);
                continue;
            }
        };
        let declared: Vec<&str> = rb.params.iter().map(|p| p.name.as_str()).collect();
        for (key, pos) in &t.sites.params {
            if !declared.contains(&key.as_str()) {
                errors.push(
                    Diagnostic::new(
                        file.clone(),
                        *pos,
                        format!(
                            "trigger `{}` passes parameter `{key}`, which runbook `{}` ({name}) does not declare",
                            t.name, rb.name
                        ),
                    )
                    .with_hint(if declared.is_empty() {
                        "the runbook takes no parameters; remove it, or declare it under the runbook's `params:`".to_string()
                    } else {
                        suggest(key, &declared)
                    }),
                );
            }
        }
        if let Some(path) = &t.params_file {
            let shown = path.display().to_string();
            match std::fs::read_to_string(path) {
                Err(e) => errors.push(
                    Diagnostic::new(
                        file.clone(),
                        t.sites.params_file.unwrap_or_default(),
                        format!(
                            "cannot read the parameters file `{shown}` of trigger `{}`: {e}",
                            t.name
                        ),
                    )
                    .with_hint("paths are relative to the directory drflow.yaml is in"),
                ),
                Ok(text) => {
                    if let Err(d) =
                        crate::params::resolve_located(&rb, Some((&shown, &text)), &[], false)
                    {
                        errors.extend(d.0);
                    }
                }
            }
        }
        out.push(rb);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(errors))
    }
}
