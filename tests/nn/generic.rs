//! `nn` over f64: the same layers, losses, optimisers and weights files as over f32.

use backflow::nn::{
    cross_entropy, cross_entropy_typed, from_safetensors, to_safetensors, Adam, Branches, Linear,
    Merge, Module, Optimizer, Sequential, Sgd, Tanh,
};
use backflow::Tensor;

/// Two tanh branches, concatenated, then a head, in element type `T`.
fn model<T: backflow::Element>() -> Sequential<T> {
    Sequential::<T>::default()
        .push_named(
            "branches",
            Branches::<T>::from_fn(Merge::Concat, 2, |i| {
                Sequential::<T>::default()
                    .push(Linear::<T>::new_typed(4, 6, i as u64))
                    .push(Tanh)
            }),
        )
        .push_named("head", Linear::<T>::new_typed(12, 3, 9))
}

fn batch<T: backflow::Element>() -> (Tensor<T>, Vec<usize>) {
    let x: Vec<T> = (0..32)
        .map(|i| T::from_f64(((i * 7) % 11) as f64 / 11.0 - 0.5))
        .collect();
    (
        Tensor::from_vec(x, &[8, 4]).unwrap(),
        vec![0, 1, 2, 0, 1, 2, 0, 1],
    )
}

#[test]
fn an_f64_model_starts_where_the_f32_one_does_and_learns() {
    let (m32, m64) = (model::<f32>(), model::<f64>());
    for ((n32, p32), (n64, p64)) in m32.named_parameters().iter().zip(m64.named_parameters()) {
        assert_eq!(n32, &n64);
        let widened: Vec<f64> = p32.get().data().iter().map(|&v| f64::from(v)).collect();
        assert_eq!(widened, p64.get().to_vec(), "{n32}: same initial values");
    }
    let (x32, y) = batch::<f32>();
    let (x64, _) = batch::<f64>();
    let l32 = cross_entropy(&m32.forward(&x32).unwrap(), &y)
        .unwrap()
        .item();
    let l64 = cross_entropy_typed(&m64.forward(&x64).unwrap(), &y)
        .unwrap()
        .item();
    assert!((f64::from(l32) - l64).abs() < 1e-5, "{l32} vs {l64}");

    let mut opt = Adam::new(m64.parameters(), 0.05);
    let mut losses = Vec::new();
    for _ in 0..30 {
        let loss = cross_entropy_typed(&m64.forward(&x64).unwrap(), &y).unwrap();
        loss.backward().unwrap();
        opt.step().unwrap();
        losses.push(loss.item());
    }
    assert!(
        losses[29] < 0.5 * losses[0],
        "loss {} -> {}",
        losses[0],
        losses[29]
    );
}

#[test]
fn sgd_in_f64_takes_the_textbook_step() {
    let p = backflow::nn::Param::from(Tensor::<f64>::scalar(1.0));
    let mut opt = Sgd::new(vec![p.clone()], 0.1).momentum(0.9);
    (&p.get() * &p.get()).backward().unwrap(); // d(p²)/dp = 2
    opt.step().unwrap();
    assert!((p.get().item() - 0.8).abs() < 1e-15);
}

#[test]
fn f64_weights_round_trip_and_refuse_an_f32_file() {
    let m64 = model::<f64>();
    let bytes = to_safetensors(&m64).unwrap();
    let other = Sequential::<f64>::default()
        .push_named(
            "branches",
            Branches::<f64>::from_fn(Merge::Concat, 2, |i| {
                Sequential::<f64>::default()
                    .push(Linear::<f64>::new_typed(4, 6, 100 + i as u64))
                    .push(Tanh)
            }),
        )
        .push_named("head", Linear::<f64>::new_typed(12, 3, 200));
    from_safetensors(&other, &bytes).unwrap();
    for ((_, a), (_, b)) in m64.named_parameters().iter().zip(other.named_parameters()) {
        assert_eq!(a.get().to_vec(), b.get().to_vec());
    }
    let f32_file = to_safetensors(&model::<f32>()).unwrap();
    let err = from_safetensors(&other, &f32_file).unwrap_err().to_string();
    assert!(err.contains("F32") && err.contains("F64"), "{err}");
}
