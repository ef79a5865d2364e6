use leptos::prelude::*;

/// The time in Unix seconds, ticking every second in the browser.
pub fn now_seconds() -> ReadSignal<i64> {
    let (now, set_now) = signal(unix_now());
    #[cfg(feature = "hydrate")]
    if let Ok(ticker) = set_interval_with_handle(
        move || set_now.set(unix_now()),
        std::time::Duration::from_secs(1),
    ) {
        on_cleanup(move || ticker.clear());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = set_now;
    now
}

/// The time in Unix seconds, once.
pub fn unix_now() -> i64 {
    #[cfg(feature = "hydrate")]
    return (js_sys::Date::now() / 1000.0) as i64;
    #[cfg(not(feature = "hydrate"))]
    return std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
}
