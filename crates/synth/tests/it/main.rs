//! Integration tests of the synthetic population: determinism, the JP-CLINS shape of every
//! generated Bundle, agreement between the ground truth and the Bundles, the dataset files, and the
//! population's make-up.

mod check;
mod determinism;
mod output;
mod population;
mod shape;
mod truth;
mod validator;
