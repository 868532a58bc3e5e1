//! Backward functions and accumulation write into a gradient's buffer only when they hold
//! it alone: a gradient that a hook kept, a `.grad()` a caller holds, or a seed the caller
//! passed is never changed behind its holder's back.

use backflow::{backward, BackwardOptions, Scheduler, Tensor};
use std::sync::{Arc, Mutex};

fn opts(s: Scheduler) -> BackwardOptions {
    BackwardOptions::new().scheduler(s).threads(2)
}

#[test]
fn a_gradient_a_hook_kept_is_not_overwritten_downstream() {
    for s in Scheduler::ALL {
        let x = Tensor::<f64>::from_vec(vec![0.5, 1.0, 2.0], &[3])
            .unwrap()
            .requires_grad();
        let y = &x * 3.0;
        let z = y.sin();
        let kept = Arc::new(Mutex::new(Vec::new()));
        let k = Arc::clone(&kept);
        // The gradient flowing into z is ones; sin's backward would scale it in place by
        // cos(y), and `* 3.0`'s backward by 3, if either ignored the hook's copy.
        z.register_hook(move |g| {
            k.lock().unwrap().push(g.clone());
            None
        });
        let w = y.tanh(); // y has two consumers: its gradient is a sum of two
        (z.sum() + w.sum()).backward_with(&opts(s)).unwrap();
        let kept = kept.lock().unwrap();
        assert_eq!(kept[0].to_vec(), vec![1.0; 3], "{s:?}");
        let g = x.grad().unwrap().to_vec();
        for (i, &xv) in [0.5f64, 1.0, 2.0].iter().enumerate() {
            let yv = 3.0 * xv;
            let want = 3.0 * (yv.cos() + 1.0 - yv.tanh().powi(2));
            assert!((g[i] - want).abs() < 1e-12, "{s:?}: {} vs {want}", g[i]);
        }
    }
}

#[test]
fn a_grad_the_caller_holds_keeps_its_values_through_later_passes() {
    for s in Scheduler::ALL {
        let x = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[2])
            .unwrap()
            .requires_grad();
        let loss = (&x * 2.0).sum();
        let retained = opts(s).retain_graph(true);
        loss.backward_with(&retained).unwrap();
        let first = x.grad().unwrap();
        loss.backward_with(&retained).unwrap();
        assert_eq!(first.to_vec(), vec![2.0, 2.0], "{s:?}: held grad changed");
        assert_eq!(x.grad().unwrap().to_vec(), vec![4.0, 4.0], "{s:?}");
        // Nobody holds the sum now: the third pass may add in place, with the same result.
        drop(first);
        loss.backward_with(&retained).unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![6.0, 6.0], "{s:?}");
    }
}

#[test]
fn a_seed_the_caller_passed_is_not_overwritten() {
    for s in Scheduler::ALL {
        let x = Tensor::<f32>::from_vec(vec![1.0, -1.0], &[2])
            .unwrap()
            .requires_grad();
        let y = (&x * 5.0).sin();
        let seed = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
        backward(&[&y], &[&seed], &opts(s)).unwrap();
        assert_eq!(seed.to_vec(), vec![1.0, 2.0], "{s:?}");
        let g = x.grad().unwrap().to_vec();
        assert!((g[0] - 5.0 * 5f32.cos()).abs() < 1e-5, "{s:?}");
        assert!((g[1] - 2.0 * 5.0 * (-5f32).cos()).abs() < 1e-5, "{s:?}");
    }
}

#[test]
fn a_gradient_passed_through_to_two_inputs_is_not_shared_mutably() {
    for s in Scheduler::ALL {
        // a + b hands the same gradient to both; each then flows into an op that would
        // scale it in place if it believed itself the only holder.
        let a = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2])
            .unwrap()
            .requires_grad();
        let b = Tensor::<f64>::from_vec(vec![3.0, 4.0], &[2])
            .unwrap()
            .requires_grad();
        let (ya, yb) = (&a * 2.0, &b * 7.0);
        (&ya + &yb).sum().backward_with(&opts(s)).unwrap();
        assert_eq!(a.grad().unwrap().to_vec(), vec![2.0, 2.0], "{s:?}");
        assert_eq!(b.grad().unwrap().to_vec(), vec![7.0, 7.0], "{s:?}");
    }
}
