//! `GET /metrics`: Prometheus text.
//!
//! - HTTP: responses by status class, orders submitted, requests refused by the rate limit.
//! - Latency per stage of an order's life, from the runtime's HDR histograms since start: `ring`
//!   and `match_risk` from the shards (handed over every `latency_interval_ms`), `egress` and
//!   `round_trip` from the gateway core's submitter. Quantiles in nanoseconds, as a summary.
//! - The read model's last folded sequence per shard (how far history and market data have come).
//! - Ring occupancy: slots in use and capacity of every (submitter, shard) inbound ring and every
//!   outbound ring (responses, taps, journal), from counters beside the rings (no lock).
//! - The PostgreSQL projection's lag per shard, in records and venue seconds, when it runs.

use super::AppState;
use crate::runtime::{RingGauge, Runtime, Stage, StageHistograms};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Counters the handlers and the middleware bump.
#[derive(Default)]
pub struct Metrics {
    /// Responses by status class: index 1 is 1xx ... 5 is 5xx.
    pub responses_by_class: [AtomicU64; 6],
    pub orders: AtomicU64,
    pub rate_limited: AtomicU64,
}

/// Where the latency histograms come from: the runtime (shard stages) and the gateway core
/// (submitter stages, merged in by the core as it runs).
#[derive(Clone)]
pub struct LatencySources {
    pub runtime: Arc<Mutex<Runtime>>,
    pub submitter: Arc<Mutex<StageHistograms>>,
    /// Every ring's occupancy gauge.
    pub rings: Vec<RingGauge>,
}

const QUANTILES: [f64; 5] = [0.5, 0.99, 0.999, 0.9999, 1.0];

/// Counts every response by its status class.
pub async fn count_responses(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let class = usize::from(response.status().as_u16() / 100).min(5);
    state.metrics.responses_by_class[class].fetch_add(1, Ordering::Relaxed);
    response
}

pub async fn render(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let mut text = String::new();
    let _ = writeln!(text, "# HELP simex_http_responses_total HTTP responses by status class.");
    let _ = writeln!(text, "# TYPE simex_http_responses_total counter");
    for (class, count) in state.metrics.responses_by_class.iter().enumerate().skip(1) {
        let _ = writeln!(text, "simex_http_responses_total{{class=\"{class}xx\"}} {}", count.load(Ordering::Relaxed));
    }
    let counters = [
        ("simex_http_orders_total", "Orders submitted over HTTP.", &state.metrics.orders),
        ("simex_http_rate_limited_total", "Requests refused by the rate limit.", &state.metrics.rate_limited),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Ordering::Relaxed));
    }
    let _ = writeln!(text, "# HELP simex_read_model_sequence Last event sequence folded into the read model.");
    let _ = writeln!(text, "# TYPE simex_read_model_sequence gauge");
    for (shard, seq) in state.model.read().last_seqs() {
        let _ = writeln!(text, "simex_read_model_sequence{{shard=\"{shard}\"}} {seq}");
    }
    if let Some(sources) = &state.latency {
        render_rings(&mut text, &sources.rings);
    }
    if let Some((postgres, memory)) = state.history.reads_by_store() {
        let _ = writeln!(text, "# HELP simex_history_reads_total History reads by the store that answered.");
        let _ = writeln!(text, "# TYPE simex_history_reads_total counter");
        let _ = writeln!(text, "simex_history_reads_total{{store=\"postgres\"}} {postgres}");
        let _ = writeln!(text, "simex_history_reads_total{{store=\"memory\"}} {memory}");
    }
    if let Some(lag) = &state.projection_lag {
        text.push_str(&lag.get().to_prometheus());
    }
    if let Some(sources) = &state.latency {
        let mut total = StageHistograms::default();
        {
            let mut runtime = sources.runtime.lock().unwrap_or_else(|p| p.into_inner());
            for shard in runtime.collect_latency() {
                total.add(shard);
            }
        }
        total.add(&sources.submitter.lock().unwrap_or_else(|p| p.into_inner()));
        let _ = writeln!(text, "# HELP simex_stage_latency_ns Latency of each stage of a command's life since start.");
        let _ = writeln!(text, "# TYPE simex_stage_latency_ns summary");
        for stage in Stage::ALL {
            let histogram = total.get(stage);
            for quantile in QUANTILES {
                let value = histogram.value_at_quantile(quantile);
                let _ = writeln!(
                    text,
                    "simex_stage_latency_ns{{stage=\"{}\",quantile=\"{quantile}\"}} {value}",
                    stage.name()
                );
            }
            let _ = writeln!(text, "simex_stage_latency_ns_count{{stage=\"{}\"}} {}", stage.name(), histogram.len());
        }
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// `simex_ring_occupied_slots` and `simex_ring_capacity_slots`, labelled by ring kind, shard and
/// peer (the submitter id, the tap's name or `journal`).
pub fn render_rings(text: &mut String, rings: &[RingGauge]) {
    let readings: Vec<_> = rings.iter().map(RingGauge::read).collect();
    let _ = writeln!(text, "# HELP simex_ring_occupied_slots Slots in use in each runtime ring.");
    let _ = writeln!(text, "# TYPE simex_ring_occupied_slots gauge");
    for r in &readings {
        let _ = writeln!(
            text,
            "simex_ring_occupied_slots{{ring=\"{}\",shard=\"{}\",peer=\"{}\"}} {}",
            r.kind.name(),
            r.shard,
            r.peer,
            r.occupied_slots
        );
    }
    let _ = writeln!(text, "# HELP simex_ring_capacity_slots Slots in each runtime ring.");
    let _ = writeln!(text, "# TYPE simex_ring_capacity_slots gauge");
    for r in &readings {
        let _ = writeln!(
            text,
            "simex_ring_capacity_slots{{ring=\"{}\",shard=\"{}\",peer=\"{}\"}} {}",
            r.kind.name(),
            r.shard,
            r.peer,
            r.capacity_slots
        );
    }
}
