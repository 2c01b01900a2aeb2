"""Datasets: the 25 official builders over seven format families, processors' callers, mixing, the shapes world.

* `builders.py`: `registry.get_builder_class(name)(cfg).build_datasets()` -> {"train": dataset} (LAVIS API).
* `formats/`: one module per file layout (webdataset_stream, caption_folder, coco_style, image_ann, rec,
  visual_genome, text_only); `files.py` reads files with errors naming path, record and expected layout.
* `mixing.py`: `build_train_loader(...)` -> `MultiIterLoader` (one dataset per step, by sample_ratio).
* `collate.py`: the batch dict the models consume.
* `shapes/`: `python -m minigpt4.datasets.shapes --out DIR` writes a synthetic world in every format.
"""
