//! The data compiled into the service: the MNIST test set and a 5,000-sample slice of the MNIST
//! training set, vendored under `assets/mnist/` (MNIST by Y. LeCun, C. Cortes and C. Burges,
//! CC BY-SA 3.0; see `assets/README.md`). The engine embeds nothing; it decodes these bytes with
//! [`Dataset::from_idx`].

use std::sync::OnceLock;

use crate::engine::eval::Dataset;

/// The built-in test set's name.
pub const MNIST_TEST: &str = "mnist-test";
/// The built-in calibration set's name: the first 5,000 samples of the MNIST training set.
pub const MNIST_TRAIN_5K: &str = "mnist-train-5k";

/// The built-in MNIST test set (10,000 images of `[1, 28, 28]`), decoded once per process.
pub fn mnist_test() -> Dataset {
    static MNIST: OnceLock<Dataset> = OnceLock::new();
    MNIST
        .get_or_init(|| {
            Dataset::from_idx(
                MNIST_TEST,
                include_bytes!("../assets/mnist/t10k-images.idx3-ubyte.gz"),
                include_bytes!("../assets/mnist/t10k-labels.idx1-ubyte.gz"),
            )
            .expect("the vendored MNIST test set is valid")
        })
        .clone()
}

/// The first 5,000 images of `[1, 28, 28]` of the MNIST *training* set (never scored: the
/// default calibration data of methods that run the models), decoded once per process.
pub fn mnist_train_5k() -> Dataset {
    static MNIST: OnceLock<Dataset> = OnceLock::new();
    MNIST
        .get_or_init(|| {
            Dataset::from_idx(
                MNIST_TRAIN_5K,
                include_bytes!("../assets/mnist/train-5k-images.idx3-ubyte.gz"),
                include_bytes!("../assets/mnist/train-5k-labels.idx1-ubyte.gz"),
            )
            .expect("the vendored MNIST training slice is valid")
        })
        .clone()
}

/// The built-in dataset called `name`.
pub fn builtin(name: &str) -> Option<Dataset> {
    match name {
        MNIST_TEST => Some(mnist_test()),
        MNIST_TRAIN_5K => Some(mnist_train_5k()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_training_slice_holds_the_first_5000_training_samples() {
        let d = mnist_train_5k();
        assert_eq!((d.len(), d.shape), (5000, [1, 28, 28]));
        // Label counts of the first 5,000 training labels (scripts/mnist-train-slice.py).
        let mut counts = [0; 10];
        for &l in &d.labels {
            counts[l as usize] += 1;
        }
        assert_eq!(counts, [479, 563, 488, 493, 535, 434, 501, 550, 462, 495]);
        // MNIST's first training label is 5, its second 0.
        assert_eq!(&d.labels[..2], &[5, 0]);
    }
}
