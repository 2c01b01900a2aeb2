"""The 25 official dataset builders (and three of ours, `vsr`, `hateful_memes` and `vizwiz`), plus the three
MiniGPT-5 formats (`cc3m`, `vist`, `mmdialog`): one builder class per format family and a table of names.

LAVIS API kept: `builder_cls(cfg).build_datasets()` -> {"train": dataset}, where `cfg` is the merged
`datasets.<name>` node (data_type, build_info, vis_processor.train/eval, text_processor.train/eval, ...);
`builder_cls()` with no cfg loads the builder's default YAML (`DATASET_CONFIG_DICT["default"]`).
`registry.get_builder_class(name)` finds them (this module is the "builder" entry of `common/catalog.py`).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any, ClassVar

from omegaconf import DictConfig, OmegaConf

from minigpt4.common.errors import ConfigError, DataError
from minigpt4.common.paths import DATASET_CONFIG_ROOT
from minigpt4.common.registry import registry
from minigpt4.datasets.files import require_dir, require_file
from minigpt4.datasets.formats import (
    caption_folder,
    cc3m_tsv,
    coco_style,
    image_ann,
    judgement,
    mmdialog,
    rec,
    text_only,
    vist,
    visual_genome,
    vizwiz,
)
from minigpt4.datasets.formats.minigpt5 import Chooser, Minigpt5Dataset, TokenizerAdapter
from minigpt4.datasets.formats.webdataset_stream import DEFAULT_SHUFFLE_BUFFER, WebdatasetCaptionStream
from minigpt4.processors import build_processor
from minigpt4.processors.image import Minigpt5InputImageProcessor, Minigpt5OutputImageProcessor

logger = logging.getLogger(__name__)

PLACEHOLDER_PREFIX = "/path/to/"
SPLITS = ("train", "val", "test")


class BaseDatasetBuilder:
    """Builds processors from the config, then the family's datasets. Subclasses implement `build`."""

    train_dataset_cls: type | None = None
    eval_dataset_cls: type | None = None
    DATASET_CONFIG_DICT: ClassVar[dict[str, str]] = {}
    name = ""

    def __init__(self, cfg: Any = None) -> None:
        if cfg is None:
            cfg = self.load_default_config()
        elif isinstance(cfg, (str, Path)):
            cfg = load_dataset_config(cfg)
        elif not isinstance(cfg, DictConfig):
            cfg = OmegaConf.create(cfg)
        self.config = cfg
        self.data_type = cfg.get("data_type", "images")
        self.vis_processors: dict[str, Any] = {"train": None, "eval": None}
        self.text_processors: dict[str, Any] = {"train": None, "eval": None}

    @classmethod
    def default_config_path(cls, type: str = "default") -> Path:
        return DATASET_CONFIG_ROOT / cls.DATASET_CONFIG_DICT[type]

    @classmethod
    def load_default_config(cls, type: str = "default") -> DictConfig:
        return load_dataset_config(cls.default_config_path(type))

    def build_processors(self) -> None:
        for kind, table in (("vis_processor", self.vis_processors), ("text_processor", self.text_processors)):
            node = self.config.get(kind)
            if node is None:
                continue
            for split in ("train", "eval"):
                table[split] = build_processor(node.get(split)) if node.get(split) is not None else None

    def build_datasets(self) -> dict[str, Any]:
        """Official entry point (the official version downloads annotations first; we never touch the network)."""
        self.build_processors()
        datasets = self.build()
        for split, dataset in datasets.items():
            size = len(dataset) if hasattr(dataset, "__len__") else "streaming"
            logger.info("built dataset %s (%s): %s samples", self.name, split, size)
        return datasets

    def build(self) -> dict[str, Any]:
        raise NotImplementedError

    # -- config access with errors that name the key --------------------------------------

    def info(self, key: str) -> Any:
        build_info = self.config.get("build_info")
        if build_info is None or build_info.get(key) is None:
            raise ConfigError(
                f"datasets.{self.name}.build_info.{key} is missing; {self.name} needs "
                f"{', '.join(self.BUILD_INFO_KEYS)}"
            )
        return build_info.get(key)

    def path(self, key: str) -> Path:
        value = str(self.info(key))
        if value.startswith(PLACEHOLDER_PREFIX):
            raise DataError(
                f"datasets.{self.name}.build_info.{key} is still the official placeholder {value!r}; "
                f"set it to your copy (see dataset/README.md)"
            )
        return Path(value)

    BUILD_INFO_KEYS: tuple[str, ...] = ()


class LavisAnnotationBuilder(BaseDatasetBuilder):
    """coco_caption, coco_vqa, ok_vqa, aok_vqa, gqa: `annotations.<split>.storage` + `images.storage/<split>`."""

    BUILD_INFO_KEYS = ("annotations.train.storage", "images.storage")

    def build(self) -> dict[str, Any]:
        annotations = self.info("annotations")
        images = self.info("images")
        datasets = {}
        for split in annotations:
            if split not in SPLITS:
                continue
            if split != "train":
                logger.warning(
                    "%s: split %r ignored (only train datasets are built, as in the official code "
                    "used for training)",
                    self.name,
                    split,
                )
                continue
            storage = annotations[split].get("storage")
            paths = [storage] if isinstance(storage, str) else list(storage or [])
            urls = annotations[split].get("url")
            urls = [urls] if isinstance(urls, str) else list(urls or [])
            ann_paths = []
            for index, value in enumerate(paths):
                if str(value).startswith(PLACEHOLDER_PREFIX):
                    raise DataError(
                        f"datasets.{self.name}.build_info.annotations.{split}.storage is still the "
                        f"official placeholder {value!r}; set it (see dataset/README.md)"
                    )
                hint = f" (download it from {urls[index]})" if index < len(urls) else ""
                ann_paths.append(
                    require_file(value, f"{self.name} annotations{hint}", self.train_dataset_cls.LAYOUT)
                )
            if images.get("storage") is None or str(images.storage).startswith(PLACEHOLDER_PREFIX):
                raise DataError(f"datasets.{self.name}.build_info.images.storage is not set")
            # official: the split name is appended to images.storage
            vis_root = require_dir(
                Path(images.storage) / split, f"{self.name} images", self.train_dataset_cls.LAYOUT
            )
            datasets[split] = self.train_dataset_cls(
                self.vis_processors["train"],
                self.text_processors["train"],
                vis_root,
                ann_paths,
                name=self.name,
            )
        if "train" not in datasets:
            raise ConfigError(f"datasets.{self.name}.build_info.annotations has no train split")
        return datasets


class ImageAnnBuilder(BaseDatasetBuilder):
    """textcaps_caption, ocrvqa, flickr_*, llava_*, multitask_conversation, vsr, hateful_memes, vizwiz:
    `image_path` + `ann_path`."""

    BUILD_INFO_KEYS = ("image_path", "ann_path")

    def build(self) -> dict[str, Any]:
        layout = self.train_dataset_cls.LAYOUT
        ann_path = require_file(self.path("ann_path"), f"{self.name} annotations", layout)
        image_path = require_dir(self.path("image_path"), f"{self.name} images", layout)
        return {
            "train": self.train_dataset_cls(
                self.vis_processors["train"],
                self.text_processors["train"],
                image_path,
                ann_path,
                name=self.name,
            )
        }


class ReferringExpressionBuilder(BaseDatasetBuilder):
    """refcoco, refcocop, refcocog and their inv* forms: `image_path`, `ann_path`, `dataset`, `splitBy`."""

    BUILD_INFO_KEYS = ("image_path", "ann_path", "dataset", "splitBy")

    def build(self) -> dict[str, Any]:
        layout = self.train_dataset_cls.LAYOUT
        ann_path = require_dir(self.path("ann_path"), f"{self.name} annotations", layout)
        image_path = require_dir(self.path("image_path"), f"{self.name} images", layout)
        dataset = self.train_dataset_cls(
            self.vis_processors["train"],
            self.text_processors["train"],
            image_path,
            ann_path,
            dataset=str(self.info("dataset")),
            splitBy=str(self.info("splitBy")),
            name=self.name,
        )
        return {"train": dataset}


class VisualGenomeBuilder(BaseDatasetBuilder):
    BUILD_INFO_KEYS = ("data_dir",)

    def build(self) -> dict[str, Any]:
        layout = self.train_dataset_cls.LAYOUT
        data_dir = require_dir(self.path("data_dir"), f"{self.name} data_dir", layout)
        return {
            "train": self.train_dataset_cls(
                self.vis_processors["train"], self.text_processors["train"], data_dir, name=self.name
            )
        }


class CaptionFolderBuilder(BaseDatasetBuilder):
    BUILD_INFO_KEYS = ("storage",)

    def build(self) -> dict[str, Any]:
        layout = self.train_dataset_cls.LAYOUT
        storage = require_dir(self.path("storage"), f"{self.name} storage", layout)
        ann = require_file(storage / "filter_cap.json", f"{self.name} captions", layout)
        images = require_dir(storage / "image", f"{self.name} images", layout)
        return {
            "train": self.train_dataset_cls(
                self.vis_processors["train"], self.text_processors["train"], images, [ann], name=self.name
            )
        }


class WebdatasetBuilder(BaseDatasetBuilder):
    """laion, cc_sbu: returns the pipeline itself (`inner_dataset`), an IterableDataset, as the official code.
    Extra build_info keys (ours): `shuffle_buffer` (default 1000), `seed` (deterministic shard resampling)."""

    BUILD_INFO_KEYS = ("storage",)

    def build(self) -> dict[str, Any]:
        location = str(self.info("storage"))
        if location.startswith(PLACEHOLDER_PREFIX):
            raise DataError(
                f"datasets.{self.name}.build_info.storage is still the official placeholder "
                f"{location!r}; set it (see dataset/README.md)"
            )
        build_info = self.config.build_info
        stream = self.train_dataset_cls(
            self.vis_processors["train"],
            self.text_processors["train"],
            location,
            name=self.name,
            shuffle_buffer=int(build_info.get("shuffle_buffer", DEFAULT_SHUFFLE_BUFFER)),
            seed=build_info.get("seed"),
        )
        return {"train": stream.inner_dataset}


class TextOnlyBuilder(BaseDatasetBuilder):
    BUILD_INFO_KEYS = ("ann_path",)

    def build(self) -> dict[str, Any]:
        layout = self.train_dataset_cls.LAYOUT
        ann_path = require_file(self.path("ann_path"), f"{self.name} annotations", layout)
        return {"train": self.train_dataset_cls(self.text_processors["train"], ann_path, name=self.name)}


class Minigpt5Builder(BaseDatasetBuilder):
    """cc3m, vist, mmdialog (MiniGPT-5): `build_info.storage` (official DATAFOLDER) and `train_data_path`,
    `val_data_path`, `test_data_path` relative to it (official CLI flags; each optional, at least one).

    Splits: train (train transforms, flips), val (train records and normalisation, no flips), test (the
    format's official test mode, eval transforms: no flips, output images in [0, 1]). Dataset-level keys (ours):
    `output_vis_processor` ({train, eval}, like vis_processor), `max_length` (tokens per source and per target;
    default the tokenizer's model_max_length), `seed` (the prompt choices, default 42). build_info extras:
    `check_images` (default true: rows whose image is missing are skipped at build time),
    `instruction_every` (cc3m, 100), `max_turn_tokens` (mmdialog, 50).

    The samples are tokenised here, so the builder needs the model's LLaMA tokenizer (with the MiniGPT-5
    tokens): `builder_cls(cfg, tokenizer=model.llama_tokenizer).build_datasets()`. `choose` (optional) picks each
    prompt from its list instead of the seeded `random.Random(seed).choice` (tests pin the official choices).
    """

    BUILD_INFO_KEYS = ("storage", "train_data_path")
    SPLIT_KEYS = (("train", "train_data_path"), ("val", "val_data_path"), ("test", "test_data_path"))
    train_dataset_cls: type[Minigpt5Dataset]

    def __init__(self, cfg: Any = None, tokenizer: Any = None, choose: Chooser | None = None) -> None:
        super().__init__(cfg)
        self.tokenizer = tokenizer
        self.choose = choose
        self.output_processors: dict[str, Any] = {"train": None, "eval": None}

    def build_processors(self) -> None:
        """Official transforms when a node is absent: train flips; eval keeps output images in [0, 1]."""
        fallback = {
            ("vis_processor", "train"): Minigpt5InputImageProcessor(random_flip=True),
            ("vis_processor", "eval"): Minigpt5InputImageProcessor(),
            ("output_vis_processor", "train"): Minigpt5OutputImageProcessor(random_flip=True),
            ("output_vis_processor", "eval"): Minigpt5OutputImageProcessor(normalize=False),
        }
        for kind, table in (
            ("vis_processor", self.vis_processors),
            ("output_vis_processor", self.output_processors),
        ):
            node = self.config.get(kind) or {}
            for split in ("train", "eval"):
                cfg = node.get(split)
                table[split] = build_processor(cfg) if cfg is not None else fallback[(kind, split)]

    def build(self) -> dict[str, Any]:
        layout = self.train_dataset_cls.LAYOUT
        adapter = TokenizerAdapter(self.tokenizer, self.config.get("max_length"))
        storage = require_dir(self.path("storage"), f"{self.name} storage (official DATAFOLDER)", layout)
        build_info = self.config.build_info
        choose = self.choose or random.Random(int(self.config.get("seed", 42))).choice
        datasets: dict[str, Any] = {}
        for split, key in self.SPLIT_KEYS:
            value = build_info.get(key)
            if value is None:
                continue
            test = split == "test"
            path = require_file(storage / str(value), f"datasets.{self.name}.build_info.{key}", layout)
            records, skipped, units = self.train_dataset_cls.read(
                path, storage, adapter, test=test, choose=choose, build_info=build_info, name=self.name
            )
            skipped.report(len(records), units, self.train_dataset_cls.UNIT)
            if not records:
                raise DataError(
                    f"{self.name}: {path} gave no usable sample ({skipped.total} {self.train_dataset_cls.UNIT} "
                    f"skipped, see the warning above). Expected layout: {layout}"
                )
            inputs = self.vis_processors["eval" if test else "train"]
            outputs = self.output_processors["eval" if test else "train"]
            if split == "val":  # ours: validation without random flips (official validates on flipped images)
                inputs, outputs = inputs.without_flip(), outputs.without_flip()
            datasets[split] = self.train_dataset_cls(records, adapter, inputs, outputs, self.name, skipped)
        if not datasets:
            raise ConfigError(
                f"datasets.{self.name}.build_info sets none of train_data_path, val_data_path, test_data_path"
            )
        return datasets


# name -> (family builder, dataset class); the default YAML is configs/datasets/<name>/default.yaml
BUILDERS: dict[str, tuple[type[BaseDatasetBuilder], type]] = {
    "laion": (WebdatasetBuilder, WebdatasetCaptionStream),
    "cc_sbu": (WebdatasetBuilder, WebdatasetCaptionStream),
    "cc_sbu_align": (CaptionFolderBuilder, caption_folder.CaptionFolderDataset),
    "coco_caption": (LavisAnnotationBuilder, coco_style.CocoCaptionDataset),
    "coco_vqa": (LavisAnnotationBuilder, coco_style.CocoVQADataset),
    "ok_vqa": (LavisAnnotationBuilder, coco_style.CocoVQADataset),
    "aok_vqa": (LavisAnnotationBuilder, coco_style.AOKVQADataset),
    "gqa": (LavisAnnotationBuilder, coco_style.GQADataset),
    "textcaps_caption": (ImageAnnBuilder, image_ann.TextCapsDataset),
    "ocrvqa": (ImageAnnBuilder, image_ann.OCRVQADataset),
    "refcoco": (ReferringExpressionBuilder, rec.ReferCOCODataset),
    "refcocop": (ReferringExpressionBuilder, rec.ReferCOCODataset),
    "refcocog": (ReferringExpressionBuilder, rec.ReferCOCODataset),
    "invrefcoco": (ReferringExpressionBuilder, rec.InvReferCOCODataset),
    "invrefcocop": (ReferringExpressionBuilder, rec.InvReferCOCODataset),
    "invrefcocog": (ReferringExpressionBuilder, rec.InvReferCOCODataset),
    "refvg": (VisualGenomeBuilder, visual_genome.ReferVisualGenomeDataset),
    "flickr_grounded_caption": (ImageAnnBuilder, image_ann.GroundedCaptionDataset),
    "flickr_CaptionToPhrase": (ImageAnnBuilder, image_ann.CaptionToPhraseDataset),
    "flickr_ObjectToPhrase": (ImageAnnBuilder, image_ann.PhraseToObjectDataset),
    "llava_detail": (ImageAnnBuilder, image_ann.LlavaSingleTurnDataset),
    "llava_reason": (ImageAnnBuilder, image_ann.LlavaSingleTurnDataset),
    "llava_conversation": (ImageAnnBuilder, image_ann.MultiTurnConversationDataset),
    "multitask_conversation": (ImageAnnBuilder, image_ann.MultiTurnConversationDataset),
    "unnatural_instruction": (TextOnlyBuilder, text_only.UnnaturalInstructionDataset),
    # ours: training splits of three benchmarks the paper evaluates zero-shot
    "vsr": (ImageAnnBuilder, judgement.VSRDataset),
    "hateful_memes": (ImageAnnBuilder, judgement.HatefulMemesDataset),
    "vizwiz": (ImageAnnBuilder, vizwiz.VizWizDataset),
    # MiniGPT-5: stage 1 (CC3M TSV) and stage 2 (VIST stories, MMDialog conversations)
    "cc3m": (Minigpt5Builder, cc3m_tsv.CC3MDataset),
    "vist": (Minigpt5Builder, vist.VISTDataset),
    "mmdialog": (Minigpt5Builder, mmdialog.MMDialogDataset),
}


def load_dataset_config(path: str | Path) -> DictConfig:
    """The single `datasets.<name>` node of a dataset YAML (official `load_dataset_config`)."""
    node = OmegaConf.load(require_file(path, "dataset config", "a YAML with datasets: {<name>: {...}}")).get(
        "datasets"
    )
    if not node or len(node) != 1:
        raise ConfigError(f"{path}: expected exactly one entry under `datasets:`")
    return node[next(iter(node))]


def _register_all() -> None:
    for name, (family, dataset_cls) in BUILDERS.items():
        camel = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
        builder = type(
            f"{camel}Builder",
            (family,),
            {
                "name": name,
                "train_dataset_cls": dataset_cls,
                "DATASET_CONFIG_DICT": {"default": f"{name}/default.yaml"},
                "__module__": __name__,
            },
        )
        globals()[builder.__name__] = builder
        registry.register_builder(name)(builder)


_register_all()


def build_dataset(name: str, cfg: Any = None, **builder_kwargs: Any) -> dict[str, Any]:
    """`registry.get_builder_class(name)(cfg).build_datasets()` (an unknown name lists the known ones);
    `builder_kwargs` go to the builder (MiniGPT-5 builders take `tokenizer=`)."""
    return registry.get_builder_class(name)(cfg, **builder_kwargs).build_datasets()
