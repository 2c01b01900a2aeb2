"""Python API: one-line inference, the model zoo, LAVIS-style loaders, and save/load of whole models.

from minigpt4.api import inference_model, list_models, load_model_and_preprocess, save_pretrained
"""

from minigpt4.api.hub import from_pretrained, save_pretrained
from minigpt4.api.inference import MiniGPTInferencer, clear_cache, get_inferencer, inference_model
from minigpt4.api.loaders import load_model, load_model_and_preprocess, load_preprocess, load_zoo_model
from minigpt4.api.locate import WeightsNotFoundError, WeightSpec, locate
from minigpt4.api.zoo import MODEL_ZOO, ZooEntry, get_entry, list_models, register_zoo_entry

__all__ = [
    "MODEL_ZOO",
    "MiniGPTInferencer",
    "WeightSpec",
    "WeightsNotFoundError",
    "ZooEntry",
    "clear_cache",
    "from_pretrained",
    "get_entry",
    "get_inferencer",
    "inference_model",
    "list_models",
    "load_model",
    "load_model_and_preprocess",
    "load_preprocess",
    "load_zoo_model",
    "locate",
    "register_zoo_entry",
    "save_pretrained",
]
