"""The affinity model: 3D U-Net (valid convolutions), training targets, augmentation,
training loop with exact resume, and block-invariant inference. Numpy in, numpy out."""

from axonseg.model.checkpoint import load_model, save_model
from axonseg.model.config import DEFAULT_OFFSETS, NEAREST_OFFSETS, ModelConfig
from axonseg.model.predict import Predictor, normalize_raw, predict_volume
from axonseg.model.shapes import context, shape_step, valid_input_shape, valid_output_shape
from axonseg.model.unet import AffinityNet, build_model

__all__ = [
    "DEFAULT_OFFSETS",
    "NEAREST_OFFSETS",
    "AffinityNet",
    "ModelConfig",
    "Predictor",
    "build_model",
    "context",
    "load_model",
    "normalize_raw",
    "predict_volume",
    "save_model",
    "shape_step",
    "valid_input_shape",
    "valid_output_shape",
]
