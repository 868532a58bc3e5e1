//! Training on the embedded digits data: the split, the batches, the CSV parser's checks,
//! and a short run of a smaller wide model that must exceed 90% test accuracy.

use backflow::Scheduler;
use backflow_app::data::{digits, Dataset};
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
    let mut last_epoch = Vec::new();
    let (_, report) = train_digits(&config, |p| {
        steps = p.step;
        if p.epoch == 7 {
            last_epoch.push(f64::from(p.loss));
        }
    })
    .unwrap();
    assert_eq!(steps, 8 * 23);
    let mean = last_epoch.iter().sum::<f64>() / last_epoch.len() as f64;
    assert_eq!(last_epoch.len(), 23);
    assert!(
        (f64::from(report.final_loss) - mean).abs() <= 1e-6 * mean.abs().max(1.0),
        "final loss {} is the last epoch's mean {mean}",
        report.final_loss
    );
    assert_eq!(report.steps, steps);
    assert!(
        report.test_accuracy > 0.90,
        "test accuracy {}",
        report.test_accuracy
    );
    assert!(report.backward_time <= report.train_time);
}

#[test]
fn csv_labels_must_be_whole_numbers_from_zero() {
    let ok = Dataset::parse_csv("1,2,3\n4,5,0\n\n7,8,9.0\n", 2).unwrap();
    assert_eq!(ok.labels(), &[3, 0, 9]);
    for bad in ["-1", "nan", "-0.5", "3.7", "1e30", "inf", "x", ""] {
        let text = format!("1,2,3\n4,5,{bad}\n");
        let err = Dataset::parse_csv(&text, 2)
            .expect_err(&format!("label {bad:?} is rejected"))
            .to_string();
        assert!(err.contains("line 2"), "{bad:?}: {err}");
        assert!(err.contains("label"), "{bad:?}: {err}");
    }
    let err = Dataset::parse_csv("1,2\n", 2).unwrap_err().to_string();
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn train_config_rejects_settings_that_cannot_work() {
    let base = TrainConfig {
        threads: 1,
        ..TrainConfig::default()
    };
    assert!(base.validate().is_ok());
    for bad in [
        TrainConfig {
            batch: 0,
            ..base.clone()
        },
        TrainConfig {
            epochs: 0,
            ..base.clone()
        },
        TrainConfig {
            branches: 0,
            ..base.clone()
        },
        TrainConfig {
            lr: f32::NAN,
            ..base.clone()
        },
        TrainConfig {
            lr: -1.0,
            ..base.clone()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
        assert!(train_digits(&bad, |_| {}).is_err(), "{bad:?}");
    }
}
