//! Training on the embedded digits data: the split, the batches, and a short run of a
//! smaller wide model that must exceed 90% test accuracy.

use backflow::Scheduler;
use backflow_app::data::digits;
use backflow_app::train::{train_digits, TrainConfig};

#[test]
fn digits_load_split_and_batch() {
    let data = digits().unwrap();
    assert_eq!((data.len(), data.width()), (1797, 64));
    assert!(data.labels().iter().all(|&l| l < 10));
    let (train, test) = data.split(0.8, 0);
    assert_eq!((train.len(), test.len()), (1437, 360));
    assert_eq!(
        data.split(0.8, 0),
        (train.clone(), test.clone()),
        "the split is seeded"
    );
    let batches: Vec<_> = train.batches(64, 1).collect();
    assert_eq!(batches.len(), 23);
    assert_eq!(batches[22].y.len(), 1437 - 22 * 64);
    assert_eq!(batches[0].x.shape(), &[64, 64]);
    let pixels = batches.iter().flat_map(|b| b.x.to_vec());
    assert!(
        pixels.into_iter().all(|v| (0.0..=1.0).contains(&v)),
        "pixels are scaled by 1/16"
    );
    let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.y.clone()).collect();
    let mut all = train.labels().to_vec();
    seen.sort_unstable();
    all.sort_unstable();
    assert_eq!(seen, all, "each row once per epoch");
}

#[test]
fn a_small_wide_model_learns_the_digits() {
    let config = TrainConfig {
        branches: 4,
        hidden: 32,
        epochs: 8,
        threads: 2,
        scheduler: Scheduler::Parallel,
        ..TrainConfig::default()
    };
    let mut steps = 0;
    let (_, report) = train_digits(&config, |p| steps = p.step).unwrap();
    assert_eq!(steps, 8 * 23);
    assert_eq!(report.steps, steps);
    assert!(
        report.test_accuracy > 0.90,
        "test accuracy {}",
        report.test_accuracy
    );
    assert!(report.backward_time <= report.train_time);
}
