//! The chart of a run, hand-written SVG from the results document (no plotting dependency):
//! latency percentiles per class on a log scale (series `p50`, `p90`, `p99`, `p99_9`, each a
//! `<g id="series-…">` of one marker per class), throughput and errors per second over the
//! measured window (`series-throughput`, `series-errors`), and the server's resident memory
//! (`series-rss`).

use std::fmt::Write as _;

use serde_json::Value;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 190.0;
const RIGHT: f64 = 40.0;
const ROW: f64 = 22.0;
const PANEL_GAP: f64 = 70.0;
const LINE_PANEL: f64 = 180.0;

/// The percentile series: JSON name, label, colour.
/// Drawn from the last to the first, each smaller than the one before, so that equal values
/// stay visible.
const PERCENTILES: [(&str, &str, &str, f64); 4] = [
    ("p50", "p50", "#1b9e77", 3.5),
    ("p90", "p90", "#7570b3", 4.0),
    ("p99", "p99", "#d95f02", 5.0),
    ("p99_9", "p99.9", "#e7298a", 6.0),
];

/// The chart of `results` (the JSON document of [`crate::report::results`]).
pub fn chart(results: &Value) -> String {
    let classes: Vec<&Value> = results["classes"]
        .as_array()
        .map(|classes| classes.iter().collect())
        .unwrap_or_default();
    let latency_height = 60.0 + ROW * classes.len().max(1) as f64;
    let height = 50.0 + latency_height + 2.0 * (PANEL_GAP + LINE_PANEL) + 40.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let config = &results["config"];
    let title = match config["mode"].as_str() {
        Some("open") => format!(
            "tsunagu load driver: open loop, {} operations/s, {} s",
            config["rate_per_s"], config["duration_s"]
        ),
        _ => format!(
            "tsunagu load driver: closed loop, {} connections, {} s",
            config["connections"], config["duration_s"]
        ),
    };
    let _ = writeln!(svg, "<title>{}</title>", escape(&title));
    let _ = writeln!(
        svg,
        r#"<rect width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">{}</text>"#,
        escape(&title)
    );
    let mut top = 50.0;
    latency_panel(&mut svg, &classes, top);
    top += latency_height + PANEL_GAP;
    let timeline = &results["timeline"];
    let throughput = numbers(&timeline["requests_per_s"]);
    let errors = numbers(&timeline["errors_per_s"]);
    let seconds: Vec<f64> = (0..throughput.len())
        .map(|second| second as f64 + 0.5)
        .collect();
    line_panel(
        &mut svg,
        top,
        "Requests completed per second (all classes) and errors per second",
        &[
            Series {
                id: "throughput",
                label: "requests/s",
                colour: "#1f78b4",
                xs: &seconds,
                ys: &throughput,
            },
            Series {
                id: "errors",
                label: "errors/s",
                colour: "#e31a1c",
                xs: &seconds,
                ys: &errors,
            },
        ],
        throughput.len() as f64,
    );
    top += LINE_PANEL + PANEL_GAP;
    let samples = results["server"]["samples"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let times: Vec<f64> = samples
        .iter()
        .map(|sample| sample["t_s"].as_f64().unwrap_or(0.0))
        .collect();
    let rss: Vec<f64> = samples
        .iter()
        .map(|sample| sample["rss_bytes"].as_f64().unwrap_or(0.0) / (1024.0 * 1024.0))
        .collect();
    line_panel(
        &mut svg,
        top,
        "Server resident memory (MiB); time 0 s is the end of the warm-up",
        &[Series {
            id: "rss",
            label: "RSS MiB",
            colour: "#33a02c",
            xs: &times,
            ys: &rss,
        }],
        throughput.len() as f64,
    );
    svg.push_str("</svg>\n");
    svg
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .map(|values| values.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// One row per class: a line from p50 to p99.9 and a marker per percentile, on a log axis.
fn latency_panel(svg: &mut String, classes: &[&Value], top: f64) {
    let plot_width = WIDTH - LEFT - RIGHT;
    let all: Vec<f64> = classes
        .iter()
        .flat_map(|class| {
            PERCENTILES
                .iter()
                .filter_map(|(name, _, _, _)| class["latency_ms"][*name].as_f64())
        })
        .filter(|value| *value > 0.0)
        .collect();
    let low = all
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .min(1.0)
        .log10()
        .floor();
    let high = all
        .iter()
        .copied()
        .fold(0.0, f64::max)
        .max(10.0)
        .log10()
        .ceil()
        .max(low + 1.0);
    let x = |ms: f64| LEFT + (ms.max(10f64.powf(low)).log10() - low) / (high - low) * plot_width;
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="{}" font-weight="bold">Latency per class (ms, log scale): p50, p90, p99, p99.9</text>"#,
        top
    );
    let rows_top = top + 30.0;
    let rows_bottom = rows_top + ROW * classes.len().max(1) as f64;
    // Decade grid lines and labels.
    let mut decade = low;
    while decade <= high {
        let position = x(10f64.powf(decade));
        let _ = writeln!(
            svg,
            r##"<line x1="{position:.1}" y1="{rows_top}" x2="{position:.1}" y2="{rows_bottom}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{position:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            rows_bottom + 16.0,
            format_ms(10f64.powf(decade))
        );
        decade += 1.0;
    }
    let _ = writeln!(svg, r#"<g id="classes">"#);
    for (row, class) in classes.iter().enumerate() {
        let y = rows_top + ROW * row as f64 + ROW / 2.0;
        let name = class["name"].as_str().unwrap_or("?");
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            y + 4.0,
            escape(name)
        );
        let p50 = class["latency_ms"]["p50"].as_f64().unwrap_or(0.0);
        let p999 = class["latency_ms"]["p99_9"].as_f64().unwrap_or(0.0);
        if p50 > 0.0 {
            let _ = writeln!(
                svg,
                r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#999" stroke-width="2"/>"##,
                x(p50),
                x(p999)
            );
        }
    }
    let _ = writeln!(svg, "</g>");
    for (index, (name, label, colour, radius)) in PERCENTILES.iter().enumerate().rev() {
        let _ = writeln!(svg, r#"<g id="series-{name}" fill="{colour}">"#);
        for (row, class) in classes.iter().enumerate() {
            let Some(value) = class["latency_ms"][*name]
                .as_f64()
                .filter(|value| *value > 0.0)
            else {
                continue;
            };
            let y = rows_top + ROW * row as f64 + ROW / 2.0;
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{y:.1}" r="{radius}"><title>{} {}: {} ms</title></circle>"#,
                x(value),
                escape(class["name"].as_str().unwrap_or("?")),
                label,
                value
            );
        }
        let _ = writeln!(svg, "</g>");
        let legend_x = LEFT + 140.0 + 70.0 * index as f64;
        let _ = writeln!(
            svg,
            r#"<circle cx="{legend_x}" cy="{:.1}" r="4" fill="{colour}"/><text x="{:.1}" y="{:.1}">{label}</text>"#,
            rows_bottom + 36.0,
            legend_x + 8.0,
            rows_bottom + 40.0
        );
    }
}

fn format_ms(ms: f64) -> String {
    if ms >= 1.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms} ms")
    }
}

/// One line of a line chart: its id (`series-<id>`), label, colour, x values (seconds) and y
/// values.
struct Series<'a> {
    id: &'a str,
    label: &'a str,
    colour: &'a str,
    xs: &'a [f64],
    ys: &'a [f64],
}

/// A line chart of `series` over at least `0..span` s.
fn line_panel(svg: &mut String, top: f64, title: &str, series: &[Series<'_>], span: f64) {
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_top = top + 20.0;
    let plot_bottom = top + LINE_PANEL;
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="{top}" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let x_low = series
        .iter()
        .flat_map(|line| line.xs.iter().copied())
        .fold(0.0, f64::min);
    let x_high = series
        .iter()
        .flat_map(|line| line.xs.iter().copied())
        .fold(span.max(1.0), f64::max);
    let y_high = nice_ceiling(
        series
            .iter()
            .flat_map(|line| line.ys.iter().copied())
            .fold(0.0, f64::max),
    );
    let x =
        |seconds: f64| LEFT + (seconds - x_low) / (x_high - x_low).max(f64::EPSILON) * plot_width;
    let y = |value: f64| plot_bottom - value / y_high * (plot_bottom - plot_top);
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{plot_top}" width="{plot_width}" height="{}" fill="none" stroke="#ccc"/>"##,
        plot_bottom - plot_top
    );
    for step in 0..=4 {
        let value = y_high * f64::from(step) / 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            y(value) + 4.0,
            format_number(value)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="{:.1}">{} s</text><text x="{:.1}" y="{:.1}" text-anchor="end">{} s</text>"#,
        plot_bottom + 16.0,
        format_number(x_low),
        LEFT + plot_width,
        plot_bottom + 16.0,
        format_number(x_high)
    );
    for (index, line) in series.iter().enumerate() {
        let Series {
            id,
            label,
            colour,
            xs,
            ys,
        } = line;
        let points: Vec<String> = xs
            .iter()
            .zip(ys.iter())
            .map(|(px, py)| format!("{:.1},{:.1}", x(*px), y(*py)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline id="series-{id}" fill="none" stroke="{colour}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
            points.join(" "),
            escape(label)
        );
        let legend_x = LEFT + 10.0 + 120.0 * index as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{legend_x}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            plot_bottom + 34.0,
            legend_x + 20.0,
            plot_bottom + 34.0,
            legend_x + 26.0,
            plot_bottom + 38.0,
            escape(label)
        );
    }
    if series.iter().all(|line| line.xs.is_empty()) {
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#888">no data</text>"##,
            LEFT + plot_width / 2.0,
            (plot_top + plot_bottom) / 2.0
        );
    }
}

/// 1, 2 or 5 times a power of ten, at least `value` (1 for nothing).
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * magnitude)
        .find(|candidate| *candidate >= value)
        .unwrap_or(10.0 * magnitude)
}

fn format_number(value: f64) -> String {
    if value.fract().abs() < 1e-9 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// Text for XML content and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
