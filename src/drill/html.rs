//! `--report FILE.html`: one self-contained page of a drill. A placeholder until the report
//! page lands (branch `report`): the figures as text, no chart.

use super::model::DrillReport;

/// The page of one drill, with no network resources.
pub fn render(report: &DrillReport) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>drflow drill {}</title></head>\n<body><pre>{}</pre></body></html>\n",
        escape(&report.scenario),
        escape(&super::render::text(report))
    )
}
