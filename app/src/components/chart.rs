//! The price chart: the index over a window of time as an SVG line, drawn by
//! the app (no chart library in the bundle), with horizontal lines at the
//! prices a trader cares about (entries, take-profits, stop-losses,
//! liquidations). Lines far outside the prices shown are listed, not drawn,
//! so one distant liquidation cannot flatten the chart.

use contract::Price;
use leptos::prelude::*;

use super::figures::usd;

/// Drawing size; the SVG scales to its box.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
/// Room on the right for the price labels.
const LABELS: f64 = 72.0;
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

/// At most `MAX_POINTS` of `points` (time-ordered), evenly spread, always
/// keeping the last.
pub fn thin(points: &[(i64, Price)]) -> Vec<(i64, Price)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let step = points.len().div_ceil(MAX_POINTS);
    let mut kept: Vec<_> = points.iter().step_by(step).copied().collect();
    if kept.last() != points.last() {
        kept.extend(points.last().copied());
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
    let x = |t: i64| (t - first) as f64 / span_t * (WIDTH - LABELS);
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
                        <svg
                            viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                            preserveAspectRatio="none"
                            role="img"
                            aria-label=summary
                        >
                            {d.levels
                                .into_iter()
                                .map(|(level, y)| view! {
                                    <g class=format!("level {}", level.kind)>
                                        <line x1="0" x2=WIDTH - LABELS y1=y y2=y />
                                        <text x=WIDTH - LABELS + 4.0 y=y + 4.0>{level.label}</text>
                                    </g>
                                })
                                .collect_view()}
                            <polyline class="index" points=d.line />
                            <text class="axis" x=WIDTH - LABELS + 4.0 y="12">{usd(d.high)}</text>
                            <text class="axis" x=WIDTH - LABELS + 4.0 y=HEIGHT - 4.0>{usd(d.low)}</text>
                        </svg>
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
        let points: Vec<_> = (0..3600)
            .map(|t| (t, Price::from_cents(t as u64 + 1)))
            .collect();
        let thinned = thin(&points);
        assert!(thinned.len() <= MAX_POINTS + 1, "{}", thinned.len());
        assert_eq!(thinned.last(), points.last());
        assert_eq!(thinned.first(), points.first());
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
