mod common;
use std::time::Duration;
use common::Cloud;
use drflow_steps::SimBackend;
use drflow_steps::backend::{FailoverApi, GLOBAL, Kind};

#[tokio::test]
async fn debug() {
    let cloud = Cloud::new();
    cloud.run("provision.yaml", "us-east.yaml").await;
    let w = cloud.world();
    let sim = SimBackend::scratch(w.clone());
    for i in 0..15 {
        let w = sim.snapshot().unwrap();
        for hc in w.list(Some(GLOBAL), Some(Kind::HealthCheck)) {
            let s = sim.get_health_check_status(&hc.id).await.unwrap();
            let fq = hc.spec["fully_qualified_domain_name"].as_str().unwrap();
            let a = drflow_steps::sim::app::http_get(&w, GLOBAL, fq, "/health/trading");
            println!("t+{i}m {} healthy={} up={} changed={:?} answer={:?} {:?}", hc.name, s.healthy, s.checkers_healthy, s.changed_at_ms.map(|c| c as i64 - w.clock_ms as i64), a.status, a.body);
        }
        if i % 5 == 4 { println!("{}", drflow_steps::sim::render_status(&drflow_steps::sim::world_status(&w))); }
        sim.advance(Duration::from_secs(60)).unwrap();
    }
}
