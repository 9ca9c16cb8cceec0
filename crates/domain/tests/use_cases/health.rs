use crate::harness::taskflow;

#[tokio::test]
async fn memory_adapters_are_ready() {
    let (flow, _clock) = taskflow();
    let health = flow.health().await;
    assert!(health.is_ready());
    let names: Vec<&str> = health.checks.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["database", "sessionStore"]);
    assert!(health.checks.iter().all(|(_, result)| result.is_ok()));
}
