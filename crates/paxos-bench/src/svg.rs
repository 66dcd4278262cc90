//! Line charts as SVG, written by hand: axes (linear or log10), a grid, lines
//! with markers and labels, a legend. Small on purpose: the two plots of the
//! benchmark need nothing more, and a plotting program is one dependency less
//! on every machine that runs it.

use std::fmt::Write as _;

/// The canvas, in pixels.
const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 560.0;
/// Room around the plot area for the title, tick labels and axis labels.
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 60.0;

/// How an axis maps values to pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Axis {
    /// Equal steps for equal differences; the range starts at 0.
    Linear,
    /// Equal steps for equal ratios; the range is whole decades.
    Log,
}

/// One axis: the value range `lo..=hi` onto the pixel range `from..=to`
/// (`to` may be less than `from`, as for y, which grows upwards).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    /// Linear or log10.
    pub axis: Axis,
    /// The value at `from`.
    pub lo: f64,
    /// The value at `to`.
    pub hi: f64,
    /// The pixel of `lo`.
    pub from: f64,
    /// The pixel of `hi`.
    pub to: f64,
}

impl Scale {
    /// A scale whose range holds every value of `values` (the positive ones on
    /// a log axis), rounded out to whole decades (log) or to a nice step
    /// (linear, from 0).
    pub fn fit(axis: Axis, values: impl IntoIterator<Item = f64>, from: f64, to: f64) -> Scale {
        let values: Vec<f64> =
            values.into_iter().filter(|v| v.is_finite() && (axis == Axis::Linear || *v > 0.0)).collect();
        let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
        let (lo, hi) = match axis {
            Axis::Log if values.is_empty() => (1.0, 10.0),
            Axis::Log => {
                let lo = 10f64.powi(min.log10().floor() as i32);
                let hi = 10f64.powi(max.log10().ceil() as i32);
                (lo, if hi > lo { hi } else { lo * 10.0 })
            }
            Axis::Linear => {
                let top = if values.is_empty() { 1.0 } else { max.max(0.0) };
                let step = nice_step(top);
                let hi = ((top / step).ceil() * step).max(step);
                (min.min(0.0), hi)
            }
        };
        Scale { axis, lo, hi, from, to }
    }

    /// The pixel of `v`.
    pub fn map(&self, v: f64) -> f64 {
        let t = match self.axis {
            Axis::Linear => (v - self.lo) / (self.hi - self.lo),
            Axis::Log => (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10()),
        };
        self.from + t * (self.to - self.from)
    }

    /// The labelled ticks: every decade (log), every nice step (linear).
    pub fn ticks(&self) -> Vec<f64> {
        match self.axis {
            Axis::Log => {
                let (a, b) = (self.lo.log10().round() as i32, self.hi.log10().round() as i32);
                (a..=b).map(|e| 10f64.powi(e)).collect()
            }
            Axis::Linear => {
                let step = nice_step(self.hi - self.lo);
                let first = (self.lo / step).ceil() as i64;
                let last = (self.hi / step + 1e-9).floor() as i64;
                (first..=last).map(|k| k as f64 * step).collect()
            }
        }
    }

    /// The unlabelled grid lines between ticks: 2..9 times each decade (log);
    /// none on a linear axis.
    pub fn minor_ticks(&self) -> Vec<f64> {
        match self.axis {
            Axis::Linear => Vec::new(),
            Axis::Log => {
                let ticks = self.ticks();
                ticks.iter().flat_map(|d| (2..10).map(move |k| d * f64::from(k))).filter(|v| *v < self.hi).collect()
            }
        }
    }
}

/// A step of 1, 2 or 5 times a power of ten that cuts `span` into 4 to 10 parts.
pub fn nice_step(span: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / 5.0;
    let decade = 10f64.powf(raw.log10().floor());
    let fraction = raw / decade;
    let nice = if fraction < 1.5 {
        1.0
    } else if fraction < 3.5 {
        2.0
    } else if fraction < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * decade
}

/// A tick label: `0.1`, `1`, `10k`, `2.5M`.
pub fn tick_label(v: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if a >= 1e3 {
        format!("{}k", trim(format!("{:.2}", v / 1e3)))
    } else if a >= 1.0 || a == 0.0 {
        trim(format!("{v:.2}"))
    } else {
        trim(format!("{v:.6}"))
    }
}

/// How a series marks its points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Marker {
    /// A filled circle.
    Circle,
    /// A filled square.
    Square,
    /// No marker.
    None,
}

/// One point, with an optional label written beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// On the x axis.
    pub x: f64,
    /// On the y axis.
    pub y: f64,
    /// Written above the point.
    pub label: Option<String>,
}

/// One line of the chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// In the legend.
    pub name: String,
    /// A CSS colour.
    pub color: String,
    /// Dashed instead of solid.
    pub dashed: bool,
    /// How its points are marked.
    pub marker: Marker,
    /// Joined in this order.
    pub points: Vec<Point>,
}

/// A chart: titles, two axes, some series.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// One or two lines above the plot.
    pub title: Vec<String>,
    /// Under the x axis.
    pub x_label: String,
    /// Beside the y axis.
    pub y_label: String,
    /// How x maps.
    pub x_axis: Axis,
    /// How y maps.
    pub y_axis: Axis,
    /// The lines.
    pub series: Vec<Series>,
}

impl Chart {
    /// The scales that fit every point into the plot area.
    pub fn scales(&self) -> (Scale, Scale) {
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        let x = Scale::fit(self.x_axis, points().map(|p| p.x), LEFT, WIDTH - RIGHT);
        let y = Scale::fit(self.y_axis, points().map(|p| p.y), HEIGHT - BOTTOM, TOP);
        (x, y)
    }

    /// The whole SVG document.
    pub fn svg(&self) -> String {
        let (x, y) = self.scales();
        let mut s = String::new();
        let w = &mut s;
        // The root element, split in two writes to keep the lines short.
        let _ = write!(w, r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" "#);
        let _ = writeln!(w, r#"width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#);
        let _ = writeln!(w, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
        for (i, line) in self.title.iter().enumerate() {
            let size = if i == 0 { 15 } else { 12 };
            let _ = writeln!(
                w,
                r#"<text x="{}" y="{}" text-anchor="middle" font-size="{size}">{}</text>"#,
                WIDTH / 2.0,
                22.0 + 18.0 * i as f64,
                escape(line)
            );
        }
        // Grid: minor lines first, then labelled ticks.
        for v in x.minor_ticks() {
            let px = x.map(v);
            let _ = writeln!(
                w,
                r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#f0f0f0"/>"##,
                HEIGHT - BOTTOM
            );
        }
        for v in y.minor_ticks() {
            let py = y.map(v);
            let _ = writeln!(
                w,
                r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#f0f0f0"/>"##,
                WIDTH - RIGHT
            );
        }
        for v in x.ticks() {
            let px = x.map(v);
            let _ = writeln!(
                w,
                r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#d0d0d0"/>"##,
                HEIGHT - BOTTOM
            );
            let _ = writeln!(
                w,
                r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                HEIGHT - BOTTOM + 18.0,
                tick_label(v)
            );
        }
        for v in y.ticks() {
            let py = y.map(v);
            let _ = writeln!(
                w,
                r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#d0d0d0"/>"##,
                WIDTH - RIGHT
            );
            let _ = writeln!(
                w,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 8.0,
                py + 4.0,
                tick_label(v)
            );
        }
        let _ = writeln!(
            w,
            r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none" stroke="#404040"/>"##,
            WIDTH - LEFT - RIGHT,
            HEIGHT - TOP - BOTTOM
        );
        let _ = writeln!(
            w,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            (LEFT + WIDTH - RIGHT) / 2.0,
            HEIGHT - 16.0,
            escape(&self.x_label)
        );
        let (cx, cy) = (22.0, (TOP + HEIGHT - BOTTOM) / 2.0);
        let _ = writeln!(
            w,
            r#"<text x="{cx}" y="{cy:.1}" text-anchor="middle" transform="rotate(-90 {cx} {cy:.1})">{}</text>"#,
            escape(&self.y_label)
        );
        for series in &self.series {
            series_svg(w, series, &x, &y);
        }
        legend_svg(w, &self.series);
        let _ = writeln!(w, "</svg>");
        s
    }
}

/// One series: its line, its markers, its labels.
fn series_svg(w: &mut String, series: &Series, x: &Scale, y: &Scale) {
    let points: Vec<(f64, f64, &Option<String>)> = series
        .points
        .iter()
        .filter(|p| p.x.is_finite() && p.y.is_finite() && (x.axis == Axis::Linear || p.x > 0.0))
        .filter(|p| y.axis == Axis::Linear || p.y > 0.0)
        .map(|p| (x.map(p.x), y.map(p.y), &p.label))
        .collect();
    let dash = if series.dashed { r#" stroke-dasharray="6 4""# } else { "" };
    if points.len() > 1 {
        let path: Vec<String> = points.iter().map(|(px, py, _)| format!("{px:.1},{py:.1}")).collect();
        let _ = writeln!(
            w,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            path.join(" "),
            series.color
        );
    }
    for (px, py, label) in &points {
        match series.marker {
            Marker::Circle => {
                let _ = writeln!(w, r#"<circle cx="{px:.1}" cy="{py:.1}" r="4" fill="{}"/>"#, series.color);
            }
            Marker::Square => {
                let _ = writeln!(
                    w,
                    r#"<rect x="{:.1}" y="{:.1}" width="7" height="7" fill="{}"/>"#,
                    px - 3.5,
                    py - 3.5,
                    series.color
                );
            }
            Marker::None => {}
        }
        if let Some(label) = label {
            let _ = writeln!(
                w,
                r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="{}">{}</text>"#,
                py - 8.0,
                series.color,
                escape(label)
            );
        }
    }
}

/// The legend, in the top left corner of the plot area.
fn legend_svg(w: &mut String, series: &[Series]) {
    let (x0, y0) = (LEFT + 12.0, TOP + 16.0);
    for (i, s) in series.iter().enumerate() {
        let y = y0 + 18.0 * i as f64;
        let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(
            w,
            r#"<line x1="{x0}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="2"{dash}/>"#,
            x0 + 28.0,
            s.color
        );
        let mid = x0 + 14.0;
        match s.marker {
            Marker::Circle => {
                let _ = writeln!(w, r#"<circle cx="{mid}" cy="{y}" r="4" fill="{}"/>"#, s.color);
            }
            Marker::Square => {
                let _ =
                    writeln!(w, r#"<rect x="{}" y="{}" width="7" height="7" fill="{}"/>"#, mid - 3.5, y - 3.5, s.color);
            }
            Marker::None => {}
        }
        let _ = writeln!(w, r#"<text x="{}" y="{}">{}</text>"#, x0 + 36.0, y + 4.0, escape(&s.name));
    }
}

/// Text safe inside an SVG element.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_log_scale_spans_whole_decades_and_maps_ratios_to_equal_steps() {
        let s = Scale::fit(Axis::Log, [2540.0, 70104.0, -1.0, 0.0], 100.0, 500.0);
        assert_eq!((s.lo, s.hi), (1000.0, 100_000.0));
        assert!(close(s.map(1000.0), 100.0) && close(s.map(100_000.0), 500.0));
        assert!(close(s.map(10_000.0), 300.0), "the middle decade sits in the middle");
        assert_eq!(s.ticks(), vec![1000.0, 10_000.0, 100_000.0]);
        assert_eq!(s.minor_ticks().len(), 16);
    }

    #[test]
    fn a_log_scale_of_one_value_on_a_decade_still_spans_a_decade() {
        let s = Scale::fit(Axis::Log, [10.0], 0.0, 1.0);
        assert_eq!((s.lo, s.hi), (10.0, 100.0));
    }

    #[test]
    fn y_grows_upwards() {
        let s = Scale::fit(Axis::Linear, [0.0, 7.3], 500.0, 70.0);
        assert_eq!((s.lo, s.hi), (0.0, 8.0));
        assert!(close(s.map(0.0), 500.0) && close(s.map(8.0), 70.0) && close(s.map(4.0), 285.0));
        assert_eq!(s.ticks(), vec![0.0, 2.0, 4.0, 6.0, 8.0]);
    }

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(10.0), 2.0);
        assert_eq!(nice_step(1_000_000.0), 200_000.0);
        assert_eq!(nice_step(0.9), 0.2);
        assert_eq!(nice_step(30.0), 5.0);
        assert_eq!(nice_step(0.0), 1.0);
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(100_000.0), "100k");
        assert_eq!(tick_label(2_500_000.0), "2.5M");
        assert_eq!(tick_label(1.0), "1");
        assert_eq!(tick_label(0.1), "0.1");
        assert_eq!(tick_label(0.0), "0");
    }

    #[test]
    fn the_svg_has_a_line_and_a_label_per_point_and_escapes_text() {
        let chart = Chart {
            title: vec!["p50 & p99 <ms>".into()],
            x_label: "values/s".into(),
            y_label: "ms".into(),
            x_axis: Axis::Log,
            y_axis: Axis::Log,
            series: vec![Series {
                name: "ours p50".into(),
                color: "#1b7837".into(),
                dashed: false,
                marker: Marker::Circle,
                points: vec![
                    Point { x: 2540.0, y: 0.34, label: Some("c=1".into()) },
                    Point { x: 53396.0, y: 1.04, label: Some("c=64".into()) },
                ],
            }],
        };
        let svg = chart.svg();
        assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("p50 &amp; p99 &lt;ms&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 3, "two points and the legend's");
        assert!(svg.contains(">c=1</text>") && svg.contains(">c=64</text>"));
    }
}
