//! The data compiled into the service: the MNIST test set vendored under `assets/mnist/`
//! (MNIST by Y. LeCun, C. Cortes and C. Burges, CC BY-SA 3.0; see `assets/README.md`).
//! The engine embeds nothing; it decodes these bytes with [`Dataset::from_idx`].

use std::sync::OnceLock;

use crate::engine::eval::Dataset;

/// The built-in dataset's name.
pub const MNIST_TEST: &str = "mnist-test";

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
