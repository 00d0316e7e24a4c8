//! The page `drflow drill --report FILE.html` writes: it parses as HTML, holds the chart and the
//! figures, refers to nothing outside itself, and a real browser (headless Chromium) draws the
//! chart without a console message.
//!
//! The renderer lives in the binary crate, which has no library; its two files are compiled
//! into this test as the same module tree (`drill::model`, `drill::html`), as
//! `tests/live_display.rs` does with the display. That brings `html.rs`'s own unit tests along,
//! so they run here a second time (they are fast).
//!
//! Without Chromium the browser tests skip loudly; with `CI` set they fail instead, since
//! `.ci/run` installs it.

use std::io::{BufReader, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use scraper::{ElementRef, Html, Selector};

#[path = "../src/drill"]
mod drill {
    pub mod html;
    pub mod model;
}

use drill::html::render;
use drill::model::DrillReport;

fn fixture(name: &str) -> DrillReport {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/drill")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text_of(e: ElementRef) -> String {
    e.text().collect::<Vec<_>>().join("")
}

/// The page parsed; a parse error fails the test (the page is written to be valid HTML5).
fn parse(page: &str) -> Html {
    let doc = Html::parse_document(page);
    assert!(doc.errors.is_empty(), "HTML parse errors: {:?}", doc.errors);
    doc
}

/// The cells of the one row of the objectives table with this id: measure, objective,
/// measured, result, what it is.
fn row(doc: &Html, id: &str) -> Vec<String> {
    let rows: Vec<_> = doc.select(&sel(&format!("#objectives tr#{id}"))).collect();
    assert_eq!(rows.len(), 1, "row {id}");
    rows[0].select(&sel("td")).map(text_of).collect()
}

#[test]
fn the_page_parses_and_holds_the_chart_and_the_figures() {
    let r = fixture("region-outage");
    let doc = parse(&render(&r));

    let title = doc.select(&sel("title")).next().unwrap();
    assert_eq!(text_of(title), "drflow drill: region-outage (pass)");
    assert_eq!(
        text_of(doc.select(&sel("#verdict")).next().unwrap()),
        "PASS"
    );

    // The figures, each in its row of the objectives table.
    let cells = |id| row(&doc, id)[..4].to_vec();
    assert_eq!(cells("rto"), ["RTO", "300.0 s", "226.0 s", "met"]);
    assert_eq!(cells("rpo"), ["RPO", "60.0 s", "3.0 s", "met"]);
    assert_eq!(cells("lost-writes"), ["Lost writes", "\u{2014}", "3", ""]);
    assert!(row(&doc, "lost-writes")[4].contains("of 54 the client had acknowledged"));
    assert_eq!(cells("critical-path-total")[2], "225.8 s");
    assert!(
        row(&doc, "critical-path-total")[4].contains("Measured RTO minus critical path: 0.2 s.")
    );
    assert_eq!(cells("engine-share")[2], "0.6 s");

    // The chart: one SVG, one mark per client request, red for each failed one, a bar per
    // step, a block per critical path stage, a marker and a label per timeline event.
    let svgs: Vec<_> = doc.select(&sel("svg")).collect();
    assert_eq!(svgs.len(), 1);
    let svg = svgs[0];
    assert_eq!(svg.value().attr("id"), Some("timeline-chart"));
    let count = |s: &str| svg.select(&sel(s)).count();
    assert_eq!(count("#client-requests rect.req"), r.client.len());
    let failed = r.client.iter().filter(|c| !c.ok).count();
    assert_eq!(count("rect.req.failed"), failed);
    for mark in svg.select(&sel("rect.req.failed")) {
        assert_eq!(mark.value().attr("fill"), Some("#c53030"));
    }
    assert_eq!(count("#steps-gantt rect.step"), r.steps.len());
    assert_eq!(
        count("#critical-path-bar rect.stage"),
        r.critical_path.len()
    );
    assert_eq!(count("#events line.event"), r.timeline.len());
    let labels: Vec<String> = svg.select(&sel("text.event-label")).map(text_of).collect();
    assert_eq!(labels.len(), r.timeline.len());
    // Each label is the event's number in the table and a readable name.
    for needed in [
        "1 fault",
        "2 first failed request",
        "7 trigger",
        "11 promoted",
        "13 DNS changed",
        "14 standby serves",
    ] {
        assert!(
            labels.iter().any(|l| l == needed),
            "no label {needed}: {labels:?}"
        );
    }
    assert!(count("#rto-bar line") >= 1);
    let legend = text_of(svg.select(&sel("#legend")).next().unwrap());
    for needed in [
        "acknowledged by us-east-1",
        "acknowledged by us-east-2",
        "request failed",
        "step succeeded",
        "stage: promotion",
    ] {
        assert!(legend.contains(needed), "legend lacks {needed}: {legend}");
    }

    // The timeline table: every event, in order, at its time.
    let rows: Vec<Vec<String>> = doc
        .select(&sel("#timeline tbody tr"))
        .map(|tr| tr.select(&sel("td")).map(text_of).collect())
        .collect();
    assert_eq!(rows.len(), r.timeline.len());
    for (i, (row, e)) in rows.iter().zip(&r.timeline).enumerate() {
        assert_eq!(
            row,
            &vec![
                (i + 1).to_string(),
                format!("{:.1}", e.at_seconds),
                e.event.clone(),
                e.detail.clone()
            ]
        );
    }
    // The evidence, the steps, the parameters and the version.
    let evidence = text_of(doc.select(&sel("#evidence")).next().unwrap());
    assert!(evidence.contains("Trigger primary-down fired at 100.5 s (require 2 of 2)"));
    assert!(evidence.contains("regional-outage") && evidence.contains("ALARM"));
    let steps = text_of(doc.select(&sel("#steps")).next().unwrap());
    assert!(
        steps.contains("promoterds.promote_global_clustersucceeded101.1161.460.3"),
        "{steps}"
    );
    let params = text_of(doc.select(&sel("#params")).next().unwrap());
    assert!(
        params.contains("drflow 0.1.0") && params.contains("provision.standby_regionus-east-2")
    );
}

/// Event labels on one row must not run into each other. Widths are estimated at 6 px a
/// character (11 px sans-serif averages under that), independently of the renderer's own
/// estimate.
#[test]
fn event_labels_do_not_overlap() {
    for name in ["region-outage", "no-failover"] {
        let doc = parse(&render(&fixture(name)));
        let mut spans: Vec<(String, f64, f64, String)> = Vec::new();
        for t in doc.select(&sel("text.event-label")) {
            let x: f64 = t.value().attr("x").unwrap().parse().unwrap();
            let y = t.value().attr("y").unwrap().to_string();
            let label = text_of(t);
            let w = label.chars().count() as f64 * 6.0;
            let (a, b) = match t.value().attr("text-anchor") {
                Some("end") => (x - w, x),
                _ => (x, x + w),
            };
            for (other, oa, ob, oy) in &spans {
                assert!(
                    *oy != y || b <= *oa || a >= *ob,
                    "{name}: label {label} [{a:.0}, {b:.0}] overlaps {other} [{oa:.0}, {ob:.0}] at y {y}"
                );
            }
            spans.push((label, a, b, y));
        }
        assert!(spans.len() > 10, "{name}: only {} labels", spans.len());
    }
}

#[test]
fn a_drill_without_failover_renders_its_hold_and_no_critical_path() {
    let r = fixture("no-failover");
    let doc = parse(&render(&r));
    assert_eq!(doc.select(&sel("#critical-path-bar rect.stage")).count(), 0);
    let cp = text_of(doc.select(&sel("#critical-path")).next().unwrap());
    assert!(cp.contains("No failover happened"), "{cp}");
    assert!(row(&doc, "critical-path-total")[4].contains("No failover happened."));
    let skipped = doc.select(&sel("#steps-gantt rect.step.skipped")).count();
    assert_eq!(
        skipped,
        r.steps.iter().filter(|s| s.status == "skipped").count()
    );
    assert!(skipped > 0);
    assert!(text_of(doc.select(&sel("header")).next().unwrap()).contains("hold"));
}

/// Nothing the page refers to lies outside it: no attribute that loads something, no
/// `@import` or `url(…)` in its style, no script, and a policy that forbids loads anyway.
#[test]
fn the_page_refers_to_nothing_outside_itself() {
    for name in ["region-outage", "no-failover"] {
        let page = render(&fixture(name));
        let doc = parse(&page);
        for e in doc
            .root_element()
            .descendants()
            .filter_map(ElementRef::wrap)
        {
            let tag = e.value().name();
            assert!(
                !matches!(
                    tag,
                    "script"
                        | "link"
                        | "iframe"
                        | "object"
                        | "embed"
                        | "img"
                        | "image"
                        | "use"
                        | "base"
                        | "a"
                ),
                "{name}: <{tag}> on the page"
            );
            for (attr, value) in e.value().attrs() {
                assert!(
                    !matches!(
                        attr,
                        "src"
                            | "href"
                            | "srcset"
                            | "action"
                            | "formaction"
                            | "data"
                            | "poster"
                            | "background"
                    ) || value.starts_with('#'),
                    "{name}: <{tag} {attr}=\"{value}\">"
                );
                assert!(
                    !value.contains("url("),
                    "{name}: <{tag} {attr}=\"{value}\">"
                );
                if attr != "xmlns" {
                    let scheme = value.split_once(':').is_some_and(|(s, rest)| {
                        rest.starts_with("//") && s.chars().all(|c| c.is_ascii_alphabetic())
                    });
                    assert!(!scheme, "{name}: a URL in <{tag} {attr}=\"{value}\">");
                }
            }
        }
        for style in doc.select(&sel("style")) {
            let css = text_of(style).to_ascii_lowercase();
            assert!(
                !css.contains("@import") && !css.contains("url("),
                "{name}: {css}"
            );
        }
        let lower = page.to_ascii_lowercase();
        for needle in ["src=", "href=", "@import", "url(http", "url(//", "<script"] {
            assert!(!lower.contains(needle), "{name}: {needle} on the page");
        }
        let csp = doc
            .select(&sel("meta[http-equiv=\"Content-Security-Policy\"]"))
            .next()
            .and_then(|m| m.value().attr("content"));
        assert_eq!(csp, Some("default-src 'none'; style-src 'unsafe-inline'"));
    }
}

// ---------------------------------------------------------------------------------------------
// In a real browser
// ---------------------------------------------------------------------------------------------

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 1400;
/// Chromium starts, renders and writes a screenshot in a few seconds; past this it is stuck.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

/// What Chromium made of a page.
struct Shot {
    /// RGBA pixels, `WIDTH` x `HEIGHT`.
    rgba: Vec<u8>,
    /// The page's console messages (Chromium logs each as `…:CONSOLE:LINE] "message", source: …`).
    console: Vec<String>,
}

/// The browser: `DRILL_REPORT_CHROMIUM` when set (a path that does not exist stands for "not
/// installed"), else Debian's `/usr/bin/chromium`, else `chromium` on the `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DRILL_REPORT_CHROMIUM") {
        let path = PathBuf::from(path);
        return path.exists().then_some(path);
    }
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        return Some(path);
    }
    let on_path = std::env::var_os("PATH")?;
    std::env::split_paths(&on_path)
        .map(|d| d.join("chromium"))
        .find(|p| p.exists())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Opens `html` in headless Chromium and takes a screenshot; `None` (after a loud message) when
/// Chromium is not installed outside CI. With `DRILL_REPORT_SCREENSHOTS=DIR` the screenshot is
/// also kept as `DIR/<name>.png`, for a person to look at.
fn screenshot(name: &str, html: &str) -> Option<Shot> {
    let Some(chromium) = chromium() else {
        assert!(
            !in_ci(),
            "Chromium is not installed: .ci/run installs it (apt-get install chromium)"
        );
        // Straight to stderr: the test harness captures `eprintln!` of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: the drill report's browser test needs Chromium (/usr/bin/chromium; \
             apt-get install chromium). It fails instead when CI is set. ***\n"
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, html).unwrap();
    let png_path = dir.path().join("screenshot.png");
    // The flags this machine needs (closed network, root, no GPU); a new empty profile.
    let mut child = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", png_path.display()))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));

    // Its log is read to the end on a thread; the end of the log is the end of the browser.
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log);
        let _ = tx.send(log);
    });
    let log = match rx.recv_timeout(CHROMIUM_TIMEOUT) {
        Ok(log) => log,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Chromium did not finish within {CHROMIUM_TIMEOUT:?}");
        }
    };
    let status = child.wait().unwrap();
    assert!(status.success(), "Chromium exited with {status}:\n{log}");
    let bytes = std::fs::read(&png_path)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}\n{log}", png_path.display()));
    if let Some(keep) = std::env::var_os("DRILL_REPORT_SCREENSHOTS") {
        std::fs::write(Path::new(&keep).join(format!("{name}.png")), &bytes).unwrap();
    }
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    Some(Shot {
        rgba: decode_rgba(&bytes),
        console,
    })
}

fn decode_rgba(bytes: &[u8]) -> Vec<u8> {
    let mut decoder = png::Decoder::new(BufReader::new(Cursor::new(bytes)));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(
        (info.width, info.height),
        (WIDTH, HEIGHT),
        "screenshot size"
    );
    let pixels = buf[..info.buffer_size()].to_vec();
    match info.color_type {
        png::ColorType::Rgba => pixels,
        png::ColorType::Rgb => pixels
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => panic!("screenshot in {other:?}"),
    }
}

fn hex(colour: &str) -> [u8; 3] {
    let v = u32::from_str_radix(colour.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

/// Pixels of `colour` (within a small tolerance for colour conversion) and the span of columns
/// they cover.
fn pixels_of(shot: &Shot, colour: &str) -> (usize, u32) {
    let want = hex(colour);
    let (mut n, mut min_x, mut max_x) = (0, u32::MAX, 0);
    for (i, p) in shot.rgba.chunks_exact(4).enumerate() {
        if (0..3).all(|c| p[c].abs_diff(want[c]) <= 3) {
            n += 1;
            let x = i as u32 % WIDTH;
            min_x = min_x.min(x);
            max_x = max_x.max(x);
        }
    }
    (n, if n == 0 { 0 } else { max_x - min_x + 1 })
}

#[test]
fn a_browser_draws_the_chart_and_logs_nothing() {
    let r = fixture("region-outage");
    let Some(shot) = screenshot("region-outage", &render(&r)) else {
        return;
    };
    assert!(
        shot.console.is_empty(),
        "console messages: {:#?}",
        shot.console
    );

    // Not blank: well under all white, and many colours.
    let white = shot
        .rgba
        .chunks_exact(4)
        .filter(|p| p[..3] == [255, 255, 255])
        .count();
    let total = (WIDTH * HEIGHT) as usize;
    assert!(white < total * 95 / 100, "{white} of {total} pixels white");

    // The client strip is drawn: a long run of failed red, shorter runs of each region's
    // colour (the legend's swatches alone are 140 pixels each). Region outage: 226 s failed
    // out of about 280 s of requests, across a plot about 1100 px wide.
    let (red, red_span) = pixels_of(&shot, "#c53030");
    assert!(
        red > 8_000 && red_span > 500,
        "failed red: {red} px over {red_span} columns"
    );
    let (primary, _) = pixels_of(&shot, "#2b6cb0");
    assert!(primary > 1_000, "primary's ok blue: {primary} px");
    let (standby, _) = pixels_of(&shot, "#2f855a");
    assert!(standby > 1_000, "standby's ok green: {standby} px");
    // The stacked critical path: detection and promotion blocks.
    let (detection, _) = pixels_of(&shot, "#dd6b20");
    let (promotion, _) = pixels_of(&shot, "#805ad5");
    assert!(
        detection > 5_000 && promotion > 3_000,
        "stages: {detection}, {promotion} px"
    );
}

#[test]
fn a_browser_draws_a_drill_without_failover() {
    let Some(shot) = screenshot("no-failover", &render(&fixture("no-failover"))) else {
        return;
    };
    assert!(
        shot.console.is_empty(),
        "console messages: {:#?}",
        shot.console
    );
    let (red, _) = pixels_of(&shot, "#c53030");
    let (ok, _) = pixels_of(&shot, "#2b6cb0");
    assert!(red > 3_000 && ok > 5_000, "failed {red} px, ok {ok} px");
    let (detection, _) = pixels_of(&shot, "#dd6b20");
    assert_eq!(detection, 0, "a critical path drawn without a failover");
}

/// The console check catches what it is there for: a page with a script error, and a page
/// whose policy blocks a script, each log a console message.
#[test]
fn the_console_check_sees_a_script_error() {
    let page = render(&fixture("no-failover"));
    let broken = page
        .replace(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
            "",
        )
        .replace("</body>", "<script>drillReportNoSuchFunction();</script></body>");
    assert_ne!(broken, page);
    let Some(shot) = screenshot("script-error", &broken) else {
        return;
    };
    assert!(
        shot.console
            .iter()
            .any(|l| l.contains("Uncaught ReferenceError: drillReportNoSuchFunction")),
        "the script error was not seen: {:#?}",
        shot.console
    );

    let blocked = page.replace(
        "</body>",
        "<script>drillReportNoSuchFunction();</script></body>",
    );
    let Some(shot) = screenshot("script-blocked", &blocked) else {
        return;
    };
    assert!(
        shot.console
            .iter()
            .any(|l| l.contains("Content Security Policy")),
        "the blocked script was not reported: {:#?}",
        shot.console
    );
}
