fn main() {
    let _ = drflow_steps::registry();
}
