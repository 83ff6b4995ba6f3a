//! The HTML report: one self-contained page (no scripts, no external files)
//! with two inline SVG plots: latency by percentile, HdrHistogram style (x is
//! the percentile on a log scale of 1/(1-p), y the latency), and completed
//! requests per second over time; one line per series (a run, or a peer in a
//! scenario), and a table of figures.

use super::PercentilePoint;
use std::fmt::Write;

/// One line on each plot.
pub struct Series<'a> {
    pub label: &'a str,
    pub percentiles: &'a [PercentilePoint],
    pub per_second: &'a [u64],
    /// How long the run lasted: the last second's bucket is usually partial.
    pub elapsed_s: f64,
}

/// A whole page.
pub struct Page<'a> {
    pub title: &'a str,
    /// Paragraphs under the title (plain text, escaped here).
    pub notes: Vec<String>,
    /// Table header and rows (plain text cells, escaped here).
    pub table: (Vec<String>, Vec<Vec<String>>),
    pub series: Vec<Series<'a>>,
}

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 60.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 50.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// Renders the page.
pub fn render(page: &Page) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n\
         <style>body{{font-family:sans-serif;margin:24px;color:#222;background:#fff}}\
         table{{border-collapse:collapse;margin:12px 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
         th:first-child,td:first-child{{text-align:left}}svg{{display:block;margin:8px 0 24px}}\
         .axis{{stroke:#444;stroke-width:1}}.grid{{stroke:#ddd;stroke-width:1}}text{{font-size:12px;fill:#222}}</style>\n\
         </head><body>\n<h1>{}</h1>\n",
        escape(page.title),
        escape(page.title)
    );
    for note in &page.notes {
        let _ = writeln!(s, "<p>{}</p>", escape(note));
    }
    table(&mut s, &page.table.0, &page.table.1);
    s.push_str("<h2>Latency by percentile</h2>\n");
    latency_plot(&mut s, &page.series);
    s.push_str("<h2>Requests per second over time</h2>\n");
    rate_plot(&mut s, &page.series);
    s.push_str("</body></html>\n");
    s
}

fn table(s: &mut String, header: &[String], rows: &[Vec<String>]) {
    if header.is_empty() {
        return;
    }
    s.push_str("<table><tr>");
    for cell in header {
        let _ = write!(s, "<th>{}</th>", escape(cell));
    }
    s.push_str("</tr>\n");
    for row in rows {
        s.push_str("<tr>");
        for cell in row {
            let _ = write!(s, "<td>{}</td>", escape(cell));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
}

/// Position of percentile `p` (0–100, below 100) on the x axis, in decades of 1/(1-p).
fn decades(p: f64) -> f64 {
    let tail = (1.0 - p / 100.0).max(1e-9);
    -tail.log10()
}

fn latency_plot(s: &mut String, series: &[Series]) {
    let points: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|one| {
            one.percentiles
                .iter()
                .filter(|p| p.percentile < 100.0)
                .map(|p| (decades(p.percentile), p.latency_ms))
                .collect()
        })
        .collect();
    let x_max = points
        .iter()
        .flatten()
        .map(|p| p.0)
        .fold(1.0f64, f64::max)
        .ceil();
    let y_max = nice_ceiling(points.iter().flatten().map(|p| p.1).fold(0.0, f64::max));
    let x_ticks: Vec<(f64, String)> = (0..=x_max as usize)
        .map(|d| (d as f64, percentile_label(d)))
        .collect();
    plot(
        s,
        "latency-plot",
        "percentile",
        "latency (ms)",
        (x_max, y_max),
        &x_ticks,
        &points,
        series,
    );
}

fn percentile_label(decade: usize) -> String {
    match decade {
        0 => "0%".to_string(),
        1 => "90%".to_string(),
        d => format!("99.{}%", "9".repeat(d - 2)).replace("99.%", "99%"),
    }
}

fn rate_plot(s: &mut String, series: &[Series]) {
    let points: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|one| rate_points(one.per_second, one.elapsed_s))
        .collect();
    let x_max = points.iter().flatten().map(|p| p.0).fold(1.0f64, f64::max);
    let y_max = nice_ceiling(points.iter().flatten().map(|p| p.1).fold(0.0, f64::max));
    let step = (x_max / 10.0).ceil().max(1.0);
    let x_ticks: Vec<(f64, String)> = (0..=(x_max / step) as usize)
        .map(|i| (i as f64 * step, format!("{}s", i as f64 * step)))
        .collect();
    plot(
        s,
        "rate-plot",
        "time since start",
        "requests per second",
        (x_max, y_max),
        &x_ticks,
        &points,
        series,
    );
}

/// Requests per second at the end of each second: whole seconds as counted;
/// a last, partial second is scaled to its length (a run that ended 0.3 s
/// into it did not slow down to 30%), and left out when it is too short to
/// give a rate (under half a second).
fn rate_points(per_second: &[u64], elapsed_s: f64) -> Vec<(f64, f64)> {
    per_second
        .iter()
        .enumerate()
        .filter_map(|(second, n)| {
            let start = second as f64;
            let covered = (elapsed_s - start).clamp(0.0, 1.0);
            if covered >= 1.0 || elapsed_s <= 0.0 {
                Some((start + 1.0, *n as f64))
            } else if covered >= 0.5 {
                Some((start + covered, *n as f64 / covered))
            } else {
                None
            }
        })
        .collect()
}

/// A round number at or above `v` (1, 2 or 5 times a power of ten).
fn nice_ceiling(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * power)
}

#[allow(clippy::too_many_arguments)]
fn plot(
    s: &mut String,
    class: &str,
    x_label: &str,
    y_label: &str,
    (x_max, y_max): (f64, f64),
    x_ticks: &[(f64, String)],
    lines: &[Vec<(f64, f64)>],
    series: &[Series],
) {
    let (w, h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |v: f64| LEFT + v / x_max * w;
    let y = |v: f64| TOP + h - v / y_max * h;
    let _ = writeln!(
        s,
        "<svg class=\"{class}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\"><rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#fff\"/>"
    );
    for i in 0..=5 {
        let v = y_max * i as f64 / 5.0;
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + w,
            y(v),
            y(v),
            LEFT - 6.0,
            y(v) + 4.0,
            short_number(v)
        );
    }
    for (v, label) in x_ticks {
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x(*v),
            x(*v),
            TOP + h,
            x(*v),
            TOP + h + 16.0,
            escape(label)
        );
    }
    let _ = writeln!(
        s,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{:.1}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
         <text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        TOP + h,
        LEFT + w,
        TOP + h,
        TOP + h,
        LEFT + w / 2.0,
        HEIGHT - 8.0,
        escape(x_label),
        TOP + h / 2.0,
        escape(y_label)
    );
    for (i, (line, one)) in lines.iter().zip(series).enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut points = String::new();
        for (px, py) in line {
            let _ = write!(points, "{:.1},{:.1} ", x(*px), y(py.min(y_max)));
        }
        let _ = writeln!(
            s,
            "<polyline class=\"series\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\
             <rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            points.trim_end(),
            LEFT + 10.0,
            TOP + 6.0 + 18.0 * i as f64,
            LEFT + 28.0,
            TOP + 16.0 + 18.0 * i as f64,
            escape(one.label)
        );
    }
    s.push_str("</svg>\n");
}

fn short_number(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    // A partial last second is scaled to its length, or left out when shorter
    // than half a second; whole seconds are plotted as counted.
    #[test]
    fn partial_last_second_is_not_a_drop() {
        assert_eq!(
            (
                rate_points(&[100, 100, 50], 2.5),
                rate_points(&[100, 100, 20], 2.2),
                rate_points(&[100, 100], 2.0),
            ),
            (
                vec![(1.0, 100.0), (2.0, 100.0), (2.5, 100.0)],
                vec![(1.0, 100.0), (2.0, 100.0)],
                vec![(1.0, 100.0), (2.0, 100.0)],
            )
        );
    }

    // The x axis is labelled 0%, 90%, 99%, 99.9%, ...
    #[test]
    fn percentile_labels() {
        assert_eq!(
            (0..5).map(percentile_label).collect::<Vec<_>>(),
            ["0%", "90%", "99%", "99.9%", "99.99%"]
        );
    }

    // Round ceilings are 1, 2 or 5 times a power of ten.
    #[test]
    fn nice_ceilings() {
        assert_eq!([0.7, 3.0, 120.0].map(nice_ceiling), [1.0, 5.0, 200.0]);
    }
}
