//! A small hand-written SVG chart: linear axes with "nice" ticks, lines, steps, points and
//! bars, labelled reference lines, a legend, and `<title>` elements so a browser shows values
//! on hover. Enough for the run report's and the sweep report's plots, without a plotting
//! crate or any script.

use std::fmt::Write;

const WIDTH: f64 = 620.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 18.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 52.0;

/// Colours a reader can tell apart (and that survive greyscale printing reasonably).
pub const PALETTE: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

pub enum Shape {
    /// A step function: each value holds until the next point's x.
    Step,
    /// One circle per point; its hover text is the matching entry of `Series::hover`.
    Points,
    /// Bars from `x` to `x + width` (the point's x and the series' bar width).
    Bars { width: f64 },
    /// A polyline through the points in x order, with a marker at each point that has hover
    /// text (hollow and red where `Series::flagged` says so).
    Line,
    /// A dashed horizontal reference line at the first point's y, labelled with the series'
    /// name; it widens the y range to stay in view and stays out of the legend.
    HRule,
    /// A dashed vertical reference line at the first point's x, labelled likewise.
    VRule,
}

impl Shape {
    fn is_rule(&self) -> bool {
        matches!(self, Shape::HRule | Shape::VRule)
    }
}

/// The colour of failing markers and of limit lines.
pub const ALERT: &str = "#d62728";

pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub shape: Shape,
    pub points: Vec<(f64, f64)>,
    /// Hover text per point (Points and Bars), or empty.
    pub hover: Vec<String>,
    /// Marked points with their own hover text (e.g. percentiles on a CDF).
    pub marks: Vec<((f64, f64), String)>,
    /// Line: draw the line dashed (a guide such as y = x, not data).
    pub dashed: bool,
    /// Line: per point, whether its marker shows a failure (hollow, red).
    pub flagged: Vec<bool>,
}

impl Series {
    pub fn new(name: impl Into<String>, color: &'static str, shape: Shape) -> Self {
        Series {
            name: name.into(),
            color,
            shape,
            points: Vec::new(),
            hover: Vec::new(),
            marks: Vec::new(),
            dashed: false,
            flagged: Vec::new(),
        }
    }
}

pub struct Chart {
    pub id: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Fix the y range to start at 0 (counts, rates) rather than at the data's minimum.
    pub y_from_zero: bool,
    /// Fix the y range's top (e.g. 1 for a CDF).
    pub y_max: Option<f64>,
}

/// An axis mapping data values onto pixels, with tick positions at round numbers.
struct Axis {
    lo: f64,
    hi: f64,
    px_lo: f64,
    px_hi: f64,
    ticks: Vec<f64>,
    step: f64,
}

impl Axis {
    fn new(lo: f64, hi: f64, px_lo: f64, px_hi: f64) -> Axis {
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else if lo == 0.0 {
            (0.0, 1.0)
        } else {
            // One value: give it room on both sides.
            (lo - lo.abs() * 0.5, hi + hi.abs() * 0.5)
        };
        let step = nice_step((hi - lo) / 6.0);
        let lo = (lo / step).floor() * step;
        let hi = (hi / step).ceil() * step;
        let n = ((hi - lo) / step).round() as usize;
        let ticks = (0..=n).map(|i| lo + i as f64 * step).collect();
        Axis {
            lo,
            hi,
            px_lo,
            px_hi,
            ticks,
            step,
        }
    }

    fn px(&self, v: f64) -> f64 {
        self.px_lo + (v - self.lo) / (self.hi - self.lo) * (self.px_hi - self.px_lo)
    }

    fn label(&self, v: f64) -> String {
        tick_label(v, self.step)
    }
}

/// The round step (1, 2 or 5 times a power of ten) nearest above `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// A tick label with as many decimals as the step needs, and k/M for big numbers.
fn tick_label(v: f64, step: f64) -> String {
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    if v.abs() >= 1e6 && step >= 1e5 {
        return format!("{}M", trim(v / 1e6, decimals(step / 1e6)));
    }
    if v.abs() >= 1e4 && step >= 1e3 {
        return format!("{}k", trim(v / 1e3, decimals(step / 1e3)));
    }
    trim(v, decimals(step))
}

fn decimals(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    }
}

fn trim(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

/// Escape text for SVG/HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Chart {
    /// The chart as an `<svg>` element; a chart with no data says so in its plot area.
    pub fn render(&self) -> String {
        let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
        let has_data = self
            .series
            .iter()
            .filter(|s| !s.shape.is_rule())
            .any(|s| s.points.iter().any(|p| finite(&p)));
        let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for s in self.series.iter().filter(|s| !s.shape.is_rule()) {
            for &(x, y) in s.points.iter().filter(finite) {
                let x_end = match s.shape {
                    Shape::Bars { width } => x + width,
                    _ => x,
                };
                x_lo = x_lo.min(x);
                x_hi = x_hi.max(x_end);
                y_lo = y_lo.min(y);
                y_hi = y_hi.max(y);
            }
        }
        if !has_data {
            (x_lo, x_hi, y_lo, y_hi) = (0.0, 1.0, 0.0, 1.0);
        }
        // A limit line far from the data is still worth seeing: the axes stretch to it.
        if has_data {
            for s in &self.series {
                match (&s.shape, s.points.first()) {
                    (Shape::HRule, Some(&(_, y))) if y.is_finite() => {
                        y_lo = y_lo.min(y);
                        y_hi = y_hi.max(y);
                    }
                    (Shape::VRule, Some(&(x, _))) if x.is_finite() => {
                        x_lo = x_lo.min(x);
                        x_hi = x_hi.max(x);
                    }
                    _ => {}
                }
            }
        }
        if self.y_from_zero {
            y_lo = y_lo.min(0.0);
        }
        if let Some(m) = self.y_max {
            y_hi = m;
        }
        let x = Axis::new(x_lo, x_hi, LEFT, WIDTH - RIGHT);
        let y = Axis::new(y_lo, y_hi, HEIGHT - BOTTOM, TOP);

        let mut o = String::new();
        let _ = write!(
            o,
            r#"<svg class="plot" id="{id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}">"#,
            id = esc(&self.id),
            title = esc(&self.title)
        );
        let _ = write!(o, "<title>{}</title>", esc(&self.title));
        let _ = write!(
            o,
            r#"<text class="chart-title" x="{}" y="20" text-anchor="middle">{}</text>"#,
            WIDTH / 2.0,
            esc(&self.title)
        );
        self.render_axes(&mut o, &x, &y);
        if has_data {
            let mut nth_vrule = 0;
            for s in self.series.iter().filter(|s| s.shape.is_rule()) {
                render_rule(&mut o, s, &x, &y, &mut nth_vrule);
            }
            for s in self.series.iter().filter(|s| !s.shape.is_rule()) {
                render_series(&mut o, s, &x, &y);
            }
        } else {
            let _ = write!(
                o,
                r#"<text class="no-data" x="{}" y="{}" text-anchor="middle">no data</text>"#,
                (LEFT + WIDTH - RIGHT) / 2.0,
                (TOP + HEIGHT - BOTTOM) / 2.0
            );
        }
        self.render_legend(&mut o);
        o.push_str("</svg>");
        o
    }

    fn render_axes(&self, o: &mut String, x: &Axis, y: &Axis) {
        let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP);
        o.push_str(r#"<g class="grid">"#);
        for &t in &y.ticks {
            let py = y.px(t);
            let _ = write!(
                o,
                r#"<line x1="{x0}" y1="{py:.1}" x2="{x1}" y2="{py:.1}"/>"#
            );
        }
        o.push_str("</g>");
        let _ = write!(
            o,
            r#"<g class="axis"><line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}"/><line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}"/>"#
        );
        for &t in &x.ticks {
            let px = x.px(t);
            let _ = write!(
                o,
                r#"<line x1="{px:.1}" y1="{y0}" x2="{px:.1}" y2="{}"/><text class="tick" x="{px:.1}" y="{}" text-anchor="middle">{}</text>"#,
                y0 + 5.0,
                y0 + 18.0,
                x.label(t)
            );
        }
        for &t in &y.ticks {
            let py = y.px(t);
            let _ = write!(
                o,
                r#"<line x1="{}" y1="{py:.1}" x2="{x0}" y2="{py:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                x0 - 5.0,
                x0 - 8.0,
                py + 4.0,
                y.label(t)
            );
        }
        let _ = write!(
            o,
            r#"<text class="axis-label" x="{}" y="{}" text-anchor="middle">{}</text>"#,
            (x0 + x1) / 2.0,
            HEIGHT - 12.0,
            esc(&self.x_label)
        );
        let _ = write!(
            o,
            r#"<text class="axis-label" x="16" y="{mid}" text-anchor="middle" transform="rotate(-90 16 {mid})">{}</text></g>"#,
            esc(&self.y_label),
            mid = (y0 + y1) / 2.0,
        );
    }

    fn render_legend(&self, o: &mut String) {
        let in_legend = || self.series.iter().filter(|s| !s.shape.is_rule());
        if in_legend().count() < 2 {
            return;
        }
        o.push_str(r#"<g class="legend">"#);
        let mut px = LEFT + 10.0;
        for s in in_legend() {
            let _ = write!(
                o,
                r#"<rect x="{px:.1}" y="{}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{}">{}</text>"#,
                TOP - 26.0,
                s.color,
                px + 16.0,
                TOP - 16.0,
                esc(&s.name)
            );
            px += 30.0 + 6.5 * s.name.chars().count() as f64;
        }
        o.push_str("</g>");
    }
}

fn render_series(o: &mut String, s: &Series, x: &Axis, y: &Axis) {
    let pts: Vec<(f64, f64)> = s
        .points
        .iter()
        .copied()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    let name = esc(&s.name);
    let _ = write!(o, r#"<g class="series" data-name="{name}">"#);
    match s.shape {
        Shape::Step => {
            let mut d = String::with_capacity(pts.len() * 16);
            let mut prev_y = None;
            for (i, &(vx, vy)) in pts.iter().enumerate() {
                let (px, py) = (x.px(vx), y.px(vy));
                if i == 0 {
                    let _ = write!(d, "M{px:.1},{py:.1}");
                } else {
                    if let Some(ly) = prev_y {
                        let _ = write!(d, "L{px:.1},{ly:.1}");
                    }
                    let _ = write!(d, "L{px:.1},{py:.1}");
                }
                prev_y = Some(py);
            }
            let _ = write!(
                o,
                r#"<path d="{d}" fill="none" stroke="{}" stroke-width="1.8"><title>{name}</title></path>"#,
                s.color
            );
        }
        Shape::Points => {
            for (i, &(vx, vy)) in pts.iter().enumerate() {
                let _ = write!(
                    o,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.2" fill="{}" fill-opacity="0.6">"#,
                    x.px(vx),
                    y.px(vy),
                    s.color
                );
                if let Some(h) = s.hover.get(i) {
                    let _ = write!(o, "<title>{}</title>", esc(h));
                }
                o.push_str("</circle>");
            }
        }
        Shape::Line => render_line(o, s, x, y),
        // Drawn by render_rule.
        Shape::HRule | Shape::VRule => {}
        Shape::Bars { width } => {
            let base = y.px(0f64.max(y.lo));
            for (i, &(vx, vy)) in pts.iter().enumerate() {
                let (px0, px1, py) = (x.px(vx), x.px(vx + width), y.px(vy));
                let _ = write!(
                    o,
                    r#"<rect x="{px0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}" fill-opacity="0.8">"#,
                    py.min(base),
                    (px1 - px0 - 0.5).max(0.5),
                    (base - py).abs(),
                    s.color
                );
                if let Some(h) = s.hover.get(i) {
                    let _ = write!(o, "<title>{}</title>", esc(h));
                }
                o.push_str("</rect>");
            }
        }
    }
    for ((vx, vy), h) in &s.marks {
        if vx.is_finite() && vy.is_finite() {
            let _ = write!(
                o,
                r#"<circle class="mark" cx="{:.1}" cy="{:.1}" r="4" fill="white" stroke="{}" stroke-width="2"><title>{}</title></circle>"#,
                x.px(*vx),
                y.px(*vy),
                s.color,
                esc(h)
            );
        }
    }
    o.push_str("</g>");
}

/// A polyline in x order; hover, flags and points stay paired through the sort.
fn render_line(o: &mut String, s: &Series, x: &Axis, y: &Axis) {
    let mut idx: Vec<usize> = (0..s.points.len())
        .filter(|&i| s.points[i].0.is_finite() && s.points[i].1.is_finite())
        .collect();
    idx.sort_by(|&a, &b| s.points[a].0.total_cmp(&s.points[b].0));
    let mut coords = String::with_capacity(idx.len() * 12);
    for &i in &idx {
        let (vx, vy) = s.points[i];
        let _ = write!(coords, "{:.1},{:.1} ", x.px(vx), y.px(vy));
    }
    let dash = if s.dashed {
        r#" stroke-dasharray="5 4""#
    } else {
        ""
    };
    let _ = write!(
        o,
        r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.8"{dash}><title>{}</title></polyline>"#,
        coords.trim_end(),
        s.color,
        esc(&s.name)
    );
    for &i in &idx {
        let Some(h) = s.hover.get(i) else { continue };
        let (vx, vy) = s.points[i];
        let (cx, cy) = (x.px(vx), y.px(vy));
        if s.flagged.get(i).copied().unwrap_or(false) {
            let _ = write!(
                o,
                r#"<circle class="fail" cx="{cx:.1}" cy="{cy:.1}" r="4" fill="white" stroke="{ALERT}" stroke-width="2">"#
            );
        } else {
            let _ = write!(
                o,
                r#"<circle class="ok" cx="{cx:.1}" cy="{cy:.1}" r="3" fill="{}">"#,
                s.color
            );
        }
        let _ = write!(o, "<title>{}</title></circle>", esc(h));
    }
}

/// A dashed reference line across the plot area with its label at the line's start (a limit
/// line's label sits left, where latencies are usually low and the line is clear of data).
/// `nth_vrule` staggers the labels of vertical lines that may stand close together.
fn render_rule(o: &mut String, s: &Series, x: &Axis, y: &Axis, nth_vrule: &mut usize) {
    let Some(&(vx, vy)) = s.points.first() else {
        return;
    };
    let name = esc(&s.name);
    let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP);
    match s.shape {
        Shape::HRule if vy.is_finite() => {
            let py = y.px(vy);
            let _ = write!(
                o,
                r#"<g class="rule hrule" data-name="{name}"><line x1="{x0}" y1="{py:.1}" x2="{x1}" y2="{py:.1}" stroke="{c}" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" text-anchor="start" fill="{c}">{name}</text><title>{name}</title></g>"#,
                x0 + 6.0,
                py - 5.0,
                c = s.color
            );
        }
        Shape::VRule if vx.is_finite() => {
            let px = x.px(vx);
            // Labels read left of a line in the right half, right of it otherwise.
            let (tx, anchor) = if px > (x0 + x1) / 2.0 {
                (px - 4.0, "end")
            } else {
                (px + 4.0, "start")
            };
            let ty = y1 + 12.0 + 14.0 * (*nth_vrule % 3) as f64;
            *nth_vrule += 1;
            let _ = write!(
                o,
                r#"<g class="rule vrule" data-name="{name}"><line x1="{px:.1}" y1="{y0}" x2="{px:.1}" y2="{y1}" stroke="{c}" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="{anchor}" fill="{c}">{name}</text><title>{name}</title></g>"#,
                c = s.color
            );
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_round() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(1200.0), 2000.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
    }

    #[test]
    fn axis_covers_the_data_with_round_ticks() {
        let a = Axis::new(0.3, 9.7, 0.0, 100.0);
        assert!(a.lo <= 0.3 && a.hi >= 9.7);
        assert_eq!(a.ticks.first(), Some(&a.lo));
        assert!((a.px(a.hi) - 100.0).abs() < 1e-9);
        assert_eq!(tick_label(0.25, 0.05), "0.25");
        assert_eq!(tick_label(20000.0, 5000.0), "20k");
        // A single value still gets a range.
        let one = Axis::new(5.0, 5.0, 0.0, 100.0);
        assert!(one.lo < 5.0 && one.hi > 5.0);
    }

    #[test]
    fn chart_escapes_text_and_draws_each_shape() {
        let mut line = Series::new("a<b", PALETTE[0], Shape::Step);
        line.points = vec![(0.0, 0.0), (1.0, 1.0)];
        line.marks = vec![((1.0, 1.0), "p50 & more".into())];
        let mut bars = Series::new("bars", PALETTE[1], Shape::Bars { width: 0.5 });
        bars.points = vec![(0.0, 2.0), (0.5, 3.0)];
        bars.hover = vec!["first".into(), "second".into()];
        let c = Chart {
            id: "t".into(),
            title: "T".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![line, bars],
            y_from_zero: true,
            y_max: None,
        };
        let svg = c.render();
        assert!(svg.contains("a&lt;b") && !svg.contains("a<b"));
        assert!(svg.contains("p50 &amp; more"));
        assert_eq!(
            svg.matches("<rect").count(),
            2 + 2,
            "two bars and two legend swatches"
        );
        assert_eq!(svg.matches("<path").count(), 1);
        let empty = Chart {
            series: vec![],
            ..c
        };
        assert!(empty.render().contains("no data"));
    }

    #[test]
    fn lines_sort_by_x_and_rules_widen_the_axes() {
        let mut line = Series::new("p99", PALETTE[0], Shape::Line);
        // Out of x order, as a search runs its points; one point is not finite.
        line.points = vec![(3.0, 30.0), (1.0, 10.0), (f64::NAN, 5.0), (2.0, 20.0)];
        line.hover = vec!["three".into(), "one".into(), "nan".into(), "two".into()];
        line.flagged = vec![true, false, false, false];
        let mut slo = Series::new("SLO 500 ms", ALERT, Shape::HRule);
        slo.points = vec![(0.0, 500.0)];
        let mut answer = Series::new("max passing", PALETTE[2], Shape::VRule);
        answer.points = vec![(9.0, 0.0)];
        let c = Chart {
            id: "l".into(),
            title: "L".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![line, slo, answer],
            y_from_zero: true,
            y_max: None,
        };
        let svg = c.render();
        assert_eq!(svg.matches("<polyline").count(), 1);
        let coords: Vec<f64> = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .split_whitespace()
            .map(|p| p.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(coords.len(), 3, "the NaN point is left out");
        assert!(
            coords.windows(2).all(|w| w[0] < w[1]),
            "x order: {coords:?}"
        );
        // Markers keep their own hover text and flag through the sort.
        assert_eq!(svg.matches("class=\"fail\"").count(), 1);
        assert!(svg.contains("<title>three</title></circle>"));
        let fail = svg.find("class=\"fail\"").unwrap();
        assert!(svg[fail..].starts_with("class=\"fail\"") && svg[fail..].contains("three"));
        assert_eq!(svg.matches("class=\"ok\"").count(), 2);
        // The rules are drawn and reach past the data (y to 500, x to 9).
        assert!(svg.contains("class=\"rule hrule\" data-name=\"SLO 500 ms\""));
        assert!(svg.contains("class=\"rule vrule\" data-name=\"max passing\""));
        let y_ticks: Vec<&str> = svg
            .match_indices("text-anchor=\"end\">")
            .map(|(i, m)| &svg[i + m.len()..])
            .map(|t| t.split('<').next().unwrap())
            .collect();
        assert!(y_ticks.contains(&"500"), "y ticks {y_ticks:?}");
        // Rules stay out of the legend: one data series, no legend.
        assert!(!svg.contains("class=\"legend\""));
        // Rules alone are not data.
        let mut only = Series::new("SLO", ALERT, Shape::HRule);
        only.points = vec![(0.0, 1.0)];
        let empty = Chart {
            series: vec![only],
            ..c
        };
        assert!(empty.render().contains("no data"));
    }
}
