//! The price chart: the index over a window of time as an SVG line, drawn by
//! the app (no chart library in the bundle), with horizontal lines at the
//! prices a trader cares about (entries, take-profits, stop-losses,
//! liquidations). Lines far outside the prices shown are listed, not drawn,
//! so one distant liquidation cannot flatten the chart.

use contract::Price;
use leptos::prelude::*;

use super::figures::usd;

/// Drawing size; the SVG stretches to its box.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
/// Most points drawn: more would not show on any screen and would cost
/// every tick.
const MAX_POINTS: usize = 320;

/// A price marked across the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub label: String,
    pub price: Price,
    /// `entry`, `takeprofit`, `stoploss` or `liquidation` (its colour).
    pub kind: &'static str,
}

/// About `MAX_POINTS` of `points` (time-ordered): the last point of each
/// bucket of time, the buckets aligned to whole multiples of their length (so
/// that a window sliding with the clock keeps its points in place instead of
/// jittering), always keeping the first and the last point.
pub fn thin(points: &[(i64, Price)]) -> Vec<(i64, Price)> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Vec::new();
    };
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let span = (last.0 - first.0).max(1);
    // Whole seconds per bucket (the history's finest step).
    let bucket = (span / MAX_POINTS as i64 + 1000) / 1000 * 1000;
    let mut kept = vec![*first];
    let mut current = None;
    for &(t, price) in &points[1..] {
        let this = t.div_euclid(bucket);
        if current == Some(this) {
            if let Some(slot) = kept.last_mut() {
                *slot = (t, price);
            }
        } else {
            kept.push((t, price));
            current = Some(this);
        }
    }
    kept
}

/// What the SVG draws: the line's `points` attribute, the levels within reach
/// with their heights, the levels out of reach, and the price range.
#[derive(Debug, Clone, PartialEq)]
struct Drawing {
    line: String,
    levels: Vec<(Level, f64)>,
    beyond: Vec<Level>,
    low: Price,
    high: Price,
}

fn draw(points: &[(i64, Price)], levels: &[Level]) -> Option<Drawing> {
    let (first, last) = (points.first()?.0, points.last()?.0);
    let cents = points.iter().map(|(_, p)| p.cents());
    let (low, high) = (cents.clone().min()?, cents.max()?);
    // Levels within half the shown range (at least 1 %) of it widen the range.
    let reach = ((high - low) / 2).max(high / 100);
    let (near, beyond): (Vec<&Level>, Vec<&Level>) = levels.iter().partition(|level| {
        let at = level.price.cents();
        at + reach >= low && at <= high + reach
    });
    let low = near.iter().map(|l| l.price.cents()).fold(low, u64::min);
    let high = near.iter().map(|l| l.price.cents()).fold(high, u64::max);
    let pad = ((high - low) / 12).max(50);
    let (low, high) = (low.saturating_sub(pad), high + pad);
    let span_t = (last - first).max(1) as f64;
    let span_p = (high - low) as f64;
    let x = |t: i64| (t - first) as f64 / span_t * WIDTH;
    let y = |p: u64| HEIGHT - (p - low) as f64 / span_p * HEIGHT;
    let mut line = String::with_capacity(points.len() * 14);
    for (t, p) in points {
        use std::fmt::Write;
        let _ = write!(line, "{:.1},{:.1} ", x(*t), y(p.cents()));
    }
    Some(Drawing {
        line,
        levels: near
            .into_iter()
            .map(|l| (l.clone(), y(l.price.cents())))
            .collect(),
        beyond: beyond.into_iter().cloned().collect(),
        low: Price::from_cents(low),
        high: Price::from_cents(high),
    })
}

/// The chart of `points` (time-ordered Unix ms and index) with `levels`.
#[component]
pub fn PriceChart(
    #[prop(into)] points: Signal<Vec<(i64, Price)>>,
    #[prop(into)] levels: Signal<Vec<Level>>,
    /// What the chart shows, for screen readers.
    label: &'static str,
) -> impl IntoView {
    let drawing = Memo::new(move |_| points.with(|p| levels.with(|l| draw(&thin(p), l))));
    // Labels are HTML beside the plot, not SVG text: the plot stretches to
    // its box, and text inside it would stretch with it.
    let top = |y: f64| format!("top: {:.2}%", y / HEIGHT * 100.0);
    view! {
        <figure class="chart">
            {move || match drawing.get() {
                None => view! { <p class="empty">"No prices recorded yet."</p> }.into_any(),
                Some(d) => {
                    let last = points.with(|p| p.last().map(|(_, price)| *price));
                    let summary = format!(
                        "{label}: from {} to {} USD{}",
                        usd(d.low),
                        usd(d.high),
                        last.map(|p| format!(", now {}", usd(p))).unwrap_or_default()
                    );
                    view! {
                        <div class="plot">
                            <svg
                                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                                preserveAspectRatio="none"
                                role="img"
                                aria-label=summary
                            >
                                {d.levels
                                    .iter()
                                    .map(|(level, y)| view! {
                                        <line class=level.kind x1="0" x2=WIDTH y1=*y y2=*y />
                                    })
                                    .collect_view()}
                                <polyline class="index" points=d.line />
                            </svg>
                            <div class="labels" aria-hidden="true">
                                <span class="axis" style="top: 0">{usd(d.high)}</span>
                                {d.levels
                                    .into_iter()
                                    .map(|(level, y)| view! {
                                        <span class=level.kind style=top(y)>{level.label}</span>
                                    })
                                    .collect_view()}
                                <span class="axis" style="top: 100%">{usd(d.low)}</span>
                            </div>
                        </div>
                        {(!d.beyond.is_empty()).then(|| view! {
                            <figcaption class="hint">
                                "Off the chart: "
                                {d.beyond
                                    .iter()
                                    .map(|l| format!("{} {}", l.label, usd(l.price)))
                                    .collect::<Vec<_>>()
                                    .join(" · ")}
                            </figcaption>
                        })}
                    }
                    .into_any()
                }
            }}
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(text: &str) -> Price {
        Price::parse(text).unwrap()
    }

    #[test]
    fn a_long_history_is_thinned_and_keeps_its_last_point() {
        // An hour, a point a second.
        let points: Vec<_> = (0..3600)
            .map(|t| (t * 1000, Price::from_cents(t as u64 + 1)))
            .collect();
        let thinned = thin(&points);
        assert!(thinned.len() <= MAX_POINTS + 2, "{}", thinned.len());
        assert!(thinned.len() >= MAX_POINTS / 2, "{}", thinned.len());
        assert_eq!(thinned.last(), points.last());
        assert_eq!(thinned.first(), points.first());
        // A second later the window slid: the points in between stay put.
        let slid = thin(&[&points[1..], &[(3_600_000, Price::from_cents(1))]].concat());
        let kept: Vec<_> = thinned[2..thinned.len() - 1].to_vec();
        assert!(kept.iter().all(|p| slid.contains(p)));
    }

    #[test]
    fn near_levels_are_drawn_and_distant_ones_listed() {
        let points = [(0, usd("10000")), (1000, usd("10100"))];
        let level = |price: &str, kind: &'static str| Level {
            label: kind.to_string(),
            price: usd(price),
            kind,
        };
        let d = draw(
            &points,
            &[level("10050", "entry"), level("5000", "liquidation")],
        )
        .unwrap();
        assert_eq!(d.levels.len(), 1);
        assert_eq!(d.beyond, vec![level("5000", "liquidation")]);
        assert!(d.low < usd("10000") && d.high > usd("10100"));
        assert_eq!(d.line.split_whitespace().count(), 2);
        assert!(draw(&[], &[]).is_none());
    }
}
