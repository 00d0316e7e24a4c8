mod common;
use common::Cloud;
use drflow_steps::SimBackend;
use std::time::{Duration, Instant};

#[tokio::test]
async fn perf() {
    let cloud = Cloud::new();
    let t = Instant::now();
    cloud.run("provision.yaml", "us-east.yaml").await;
    println!("provision {:?}", t.elapsed());
    let sim = SimBackend::scratch(cloud.world());
    let t = Instant::now();
    sim.advance(Duration::from_secs(600)).unwrap();
    println!("advance 10 min {:?}", t.elapsed());
    let t = Instant::now();
    sim.advance(Duration::from_secs(86_400)).unwrap();
    println!("advance 1 day {:?}", t.elapsed());
    let w = sim.snapshot().unwrap();
    println!(
        "world json {} bytes, agenda {}",
        serde_json::to_vec(&w).unwrap().len(),
        w.agenda.len()
    );
}
