//! Headless Chromium for the HTML tests: finding (or installing) it, screenshots, and a probe
//! that measures what the browser drew; plus the checks of a sweep page, which the sweep's own
//! end-to-end test runs on the page of a real sweep.
//!
//! Without Chromium on PATH the tests install Debian's `chromium` where they can (root with
//! apt-get, as on CI and the usual build container); where they cannot, or with
//! SERVEBENCH_NO_BROWSER=1, they say loudly that the browser part was skipped and why.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Map, Value};

/// The window of the screenshots the tests compare.
pub const WINDOW: (u32, u32) = (1280, 2400);

/// Chromium (or Chrome) on PATH, by the names Debian and others give it.
fn find_browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome", "chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// A browser on PATH, or Debian's chromium installed now when this runs as root with apt-get.
pub fn find_or_install_browser() -> Result<PathBuf, String> {
    if let Some(b) = find_browser() {
        return Ok(b);
    }
    if std::env::var("SERVEBENCH_NO_BROWSER").as_deref() == Ok("1") {
        return Err("SERVEBENCH_NO_BROWSER=1".into());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let apt = Path::new("/usr/bin/apt-get").is_file();
    if !(root && apt) {
        return Err(
            "no Chromium on PATH, and this is not root with apt-get to install it \
                    (Debian/Ubuntu: `sudo apt-get install -y chromium`)"
                .into(),
        );
    }
    eprintln!("installing chromium with apt-get (once; about a minute)");
    let installed = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
             chromium >/dev/null",
        ])
        .status()
        .is_ok_and(|s| s.success());
    match (installed, find_browser()) {
        (true, Some(b)) => Ok(b),
        _ => Err("`apt-get install chromium` failed (no package mirror reachable?)".into()),
    }
}

/// The browser, or None after a loud notice that `test`'s browser part was skipped.
pub fn browser_or_skip(test: &str) -> Option<PathBuf> {
    match find_or_install_browser() {
        Ok(b) => Some(b),
        Err(why) => {
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !!! SKIPPED the browser part of {test}: {why}.\n\
                 !!! The page was checked structurally only, not rendered.\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            None
        }
    }
}

/// Headless Chromium with a window of `WINDOW`.
pub fn chromium(browser: &Path, args: &[&str]) -> Output {
    chromium_window(browser, WINDOW, args)
}

pub fn chromium_window(browser: &Path, (w, h): (u32, u32), args: &[&str]) -> Output {
    // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--window-size={w},{h}"))
        .args(args)
        .output()
        .expect("run chromium")
}

/// Width and height from a PNG's IHDR chunk.
pub fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG"
    );
    assert_eq!(&png[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

pub fn screenshot(browser: &Path, page: &Path, png: &Path) -> Vec<u8> {
    screenshot_window(browser, WINDOW, page, png)
}

pub fn screenshot_window(browser: &Path, window: (u32, u32), page: &Path, png: &Path) -> Vec<u8> {
    let url = format!("file://{}", page.display());
    let shot = format!("--screenshot={}", png.display());
    let out = chromium_window(browser, window, &[&shot, &url]);
    std::fs::read(png).unwrap_or_else(|e| {
        panic!(
            "chromium wrote no screenshot ({e}); its stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Screenshot `html` (written to `dir/page.html`) at `WINDOW`, and check that it has that
/// size and is far from blank: a blank page of the same size compresses to a small fraction
/// of a page of plots.
pub fn assert_screenshot_not_blank(browser: &Path, dir: &Path, html: &str) -> Vec<u8> {
    let page = dir.join("page.html");
    std::fs::write(&page, html).unwrap();
    let shot = screenshot(browser, &page, &dir.join("page.png"));
    assert_eq!(png_size(&shot), WINDOW);
    let blank = dir.join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();
    let blank_shot = screenshot(browser, &blank, &dir.join("blank.png"));
    assert!(
        shot.len() > 5 * blank_shot.len(),
        "the screenshot ({} bytes) looks blank (an empty page: {} bytes)",
        shot.len(),
        blank_shot.len()
    );
    shot
}

/// Run `script` (JavaScript that sets `probe.textContent` to a JSON text; `probe` is a `<pre>`
/// already in the body) at the end of a copy of `html`, and return that JSON: the page itself
/// has no script, so this is how a test reads what the browser laid out and drew.
pub fn probe(browser: &Path, dir: &Path, html: &str, script: &str) -> Value {
    let probe = format!(
        "<pre id=\"probe\"></pre><script>const probe = document.getElementById('probe');\n\
         {script}\n</script>"
    );
    let probed = dir.join("probed.html");
    std::fs::write(&probed, html.replace("</body>", &format!("{probe}</body>"))).unwrap();
    let out = chromium(
        browser,
        &["--dump-dom", &format!("file://{}", probed.display())],
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom
        .find("<pre id=\"probe\">")
        .unwrap_or_else(|| panic!("the probe did not run; DOM:\n{dom}"))
        + "<pre id=\"probe\">".len();
    let end = start + dom[start..].find("</pre>").expect("closed probe");
    let json = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("probe output ({e}): {json}"))
}

// ---- the sweep page ----

const METRICS: [&str; 4] = ["ttft", "tpot", "itl", "e2el"];

type Obj = Map<String, Value>;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn finite(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64).filter(|v| v.is_finite())
}

/// What a sweep summary says its page must show.
struct Expect {
    points: usize,
    /// Metrics with a latency chart, each with the markers its p50/p90/p99 lines must have
    /// at least, the failing points among them, and its SLO limit lines.
    latency: Vec<(String, usize, usize, usize)>,
    /// Markers against the offered load: achieved (and goodput) of points with a finite x.
    load_markers: usize,
    /// Vertical answer lines: max_passing, min_failing.
    vrules: usize,
    answer: Option<String>,
    result_files: Vec<String>,
}

impl Expect {
    fn from(summary: &Map<String, Value>) -> Expect {
        let points: Vec<&Map<String, Value>> = summary
            .get("points")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_object).collect())
            .unwrap_or_default();
        let slo = summary.get("slo").and_then(Value::as_object);
        let constraints: Vec<&str> = slo
            .and_then(|s| s.get("constraints"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.get("metric").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let answer = slo.and_then(|s| s.get("answer")).and_then(Value::as_object);
        let latency = METRICS
            .iter()
            .filter_map(|m| {
                let with: Vec<(&Obj, &Obj)> = points
                    .iter()
                    .filter_map(|p| {
                        let l = p.get("latency_ms")?.get(*m)?.as_object()?;
                        Some((*p, l))
                    })
                    .collect();
                if with.is_empty() {
                    return None;
                }
                let (mut markers, mut fails) = (0, 0);
                for (p, l) in &with {
                    if finite(p.get("request_throughput")).is_none() {
                        continue;
                    }
                    let n = ["p50", "p90", "p99"]
                        .iter()
                        .filter(|s| finite(l.get(**s)).is_some())
                        .count();
                    markers += n;
                    if p.get("meets_slo") == Some(&Value::Bool(false)) {
                        fails += n;
                    }
                }
                let limits = constraints.iter().filter(|c| *c == m).count();
                Some((m.to_string(), markers, fails, limits))
            })
            .collect();
        let load_markers = points
            .iter()
            .filter(|p| finite(p.get("x")).is_some())
            .map(|p| {
                ["request_throughput", "request_goodput"]
                    .iter()
                    .filter(|k| finite(p.get(**k)).is_some())
                    .count()
            })
            .sum();
        let vrules = ["max_passing", "min_failing"]
            .iter()
            .filter(|k| finite(answer.and_then(|a| a.get(**k))).is_some())
            .count();
        Expect {
            points: points.len(),
            latency,
            load_markers,
            vrules,
            answer: answer
                .and_then(|a| a.get("text"))
                .and_then(Value::as_str)
                .map(String::from),
            result_files: points
                .iter()
                .filter_map(|p| p.get("result_file").and_then(Value::as_str))
                .map(String::from)
                .collect(),
        }
    }
}

/// The `<svg class="plot" id=ID ...>...</svg>` element of one chart.
pub fn plot<'a>(html: &'a str, id: &str) -> &'a str {
    let open = format!("<svg class=\"plot\" id=\"{id}\"");
    let start = html
        .find(&open)
        .unwrap_or_else(|| panic!("no plot {id} in the page"));
    let len = html[start..].find("</svg>").expect("closed svg");
    &html[start..start + len]
}

/// Checks of a sweep page that need no browser, against what its summary holds.
pub fn check_sweep_structure(html: &str, summary: &Map<String, Value>) {
    let want = Expect::from(summary);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script") && !html.contains(" src="));
    if want.points == 0 {
        assert!(html.contains("no points"), "an empty sweep says so");
        return;
    }
    for (m, markers, _, limits) in &want.latency {
        let svg = plot(html, &format!("latency-{m}"));
        assert!(
            svg.matches("<circle").count() >= *markers,
            "latency-{m}: fewer markers than the points' p50/p90/p99 ({markers})"
        );
        assert_eq!(
            svg.matches("class=\"rule hrule\"").count(),
            *limits,
            "latency-{m}: SLO lines"
        );
    }
    for m in METRICS {
        if !want.latency.iter().any(|l| l.0 == m) {
            assert!(
                !html.contains(&format!("id=\"latency-{m}\"")),
                "{m}: no data, no chart"
            );
        }
    }
    let load = plot(html, "throughput-vs-load");
    assert_eq!(load.matches("<circle").count(), want.load_markers);
    assert_eq!(load.matches("class=\"rule vrule\"").count(), want.vrules);
    plot(html, "output-vs-load");
    if let Some(a) = &want.answer {
        assert!(
            html.contains(&esc(a)),
            "the answer {a:?} is not on the page"
        );
    } else {
        assert!(!html.contains("id=\"answer\""));
    }
    let table = &html[html.find("<table id=\"points\"").expect("the points table")..];
    let table = &table[..table.find("</table>").expect("closed table")];
    assert_eq!(
        table.matches("<tr").count(),
        want.points + 1,
        "one row per point"
    );
    for f in &want.result_files {
        assert!(
            table.contains(&format!(">{}</a>", esc(f))),
            "no link to {f}"
        );
    }
}

const SWEEP_PROBE: &str = r#"
const plots = [...document.querySelectorAll('svg.plot')].map(svg => {
  let length = 0;
  svg.querySelectorAll('g.series polyline').forEach(p => { length += p.getTotalLength(); });
  const drawn = [...svg.querySelectorAll('g.series circle')].filter(c => {
    const b = c.getBBox(); return b.width > 0 && b.height > 0; });
  const rules = sel => [...svg.querySelectorAll(sel)].map(g => ({
    name: g.dataset.name, length: g.querySelector('line').getTotalLength() }));
  const box = svg.getBoundingClientRect();
  return { id: svg.id, width: box.width, height: box.height,
           polylines: svg.querySelectorAll('g.series polyline').length, length,
           circles: drawn.length, fails: drawn.filter(c => c.classList.contains('fail')).length,
           hrules: rules('g.hrule'), vrules: rules('g.vrule'),
           ticks: svg.querySelectorAll('text.tick').length,
           nodata: svg.querySelector('.no-data') !== null };
});
const answer = document.getElementById('answer');
probe.textContent = JSON.stringify({ plots, answer: answer ? answer.textContent : null,
  rows: document.querySelectorAll('#points tbody tr').length });
"#;

/// Render a sweep page in headless Chromium and check what it drew against its summary:
/// a full-size, non-blank screenshot; every chart laid out wide with ticks; the latency
/// charts' lines and markers (failing ones hollow) and SLO lines; the load charts' markers
/// and answer lines; the answer's words; one table row per point. Structural checks first.
/// Returns false when the browser part was skipped (loudly).
pub fn check_sweep_page(dir: &Path, html: &str, summary: &Map<String, Value>) -> bool {
    check_sweep_structure(html, summary);
    let Some(browser) = browser_or_skip("the sweep page check") else {
        return false;
    };
    let want = Expect::from(summary);
    // An empty sweep's page is nearly blank by design: only its probe is checked.
    if want.points > 0 {
        assert_screenshot_not_blank(&browser, dir, html);
    }
    let got = probe(&browser, dir, html, SWEEP_PROBE);
    let plots = got["plots"].as_array().expect("plots");
    let by_id = |id: &str| {
        plots
            .iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("no chart {id} in the DOM: {got}"))
    };
    let n = |p: &Value, k: &str| p[k].as_f64().unwrap_or(0.0);
    for p in plots {
        let id = &p["id"];
        assert!(n(p, "width") > 400.0, "{id} laid out narrow: {p}");
        assert!(n(p, "height") > 200.0, "{id}: {p}");
        assert!(n(p, "ticks") >= 4.0, "{id} has no axis ticks: {p}");
    }
    if want.points == 0 {
        assert!(plots.is_empty());
        return true;
    }
    for (m, markers, fails, limits) in &want.latency {
        let p = by_id(&format!("latency-{m}"));
        if *markers > 0 {
            assert!(
                n(p, "length") > 0.0 || *markers <= 3,
                "latency-{m} drew no line: {p}"
            );
            assert!(n(p, "circles") >= *markers as f64, "latency-{m}: {p}");
        }
        assert!(
            n(p, "fails") >= *fails as f64,
            "latency-{m}: failing markers: {p}"
        );
        if *fails == 0 {
            assert_eq!(n(p, "fails"), 0.0, "latency-{m}: {p}");
        }
        let hrules = p["hrules"].as_array().unwrap();
        assert_eq!(hrules.len(), *limits, "latency-{m}: SLO lines: {p}");
        for r in hrules {
            assert!(n(r, "length") > 300.0, "the SLO line spans the plot: {p}");
            assert!(r["name"].as_str().unwrap().starts_with("SLO"), "{p}");
        }
    }
    let load = by_id("throughput-vs-load");
    assert_eq!(n(load, "circles"), want.load_markers as f64, "{load}");
    if want.load_markers > 1 {
        assert!(n(load, "length") > 0.0, "{load}");
    }
    let vrules = load["vrules"].as_array().unwrap();
    assert_eq!(vrules.len(), want.vrules, "{load}");
    for r in vrules {
        assert!(
            n(r, "length") > 150.0,
            "an answer line spans the plot: {load}"
        );
    }
    by_id("output-vs-load");
    match &want.answer {
        Some(a) => {
            let shown = got["answer"].as_str().expect("an answer element");
            assert!(shown.contains(a.as_str()), "answer {shown:?} lacks {a:?}");
        }
        None => assert!(got["answer"].is_null(), "{got}"),
    }
    assert_eq!(got["rows"].as_u64(), Some(want.points as u64), "table rows");

    true
}

/// A screenshot of the whole page, 1280 wide and as tall as the page, written to `png` (how
/// docs/img/sweep-report.png is made); its size, or None without a browser.
pub fn full_page_screenshot(dir: &Path, html: &str, png: &Path) -> Option<(u32, u32)> {
    let browser = browser_or_skip("the full-page screenshot")?;
    let got = probe(
        &browser,
        dir,
        html,
        // The body's bottom and its margin: the document is never shorter than the window.
        "probe.textContent = JSON.stringify(document.body.getBoundingClientRect().bottom + 24);",
    );
    let height = got.as_f64().expect("the page height").ceil() as u32;
    let page = dir.join("full.html");
    std::fs::write(&page, html).unwrap();
    let shot = screenshot_window(&browser, (1280, height), &page, &dir.join("full.png"));
    std::fs::write(png, &shot).unwrap();
    Some(png_size(&shot))
}
