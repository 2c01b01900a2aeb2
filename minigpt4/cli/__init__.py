"""What people run, as thin functions over the library: `train` (train.py), `evaluate` (eval_scripts/*.py),
`demo_v1` / `demo_v2` (demo.py, demo_v2.py, with `demo_launch` and `gradio_parts`), `quickstart`
(`python -m minigpt4.quickstart`) and `pretrain_encoder`. Nothing in the library imports this package.

The weight and parity tools keep their command lines in `minigpt4/tools/*/command.py` (`python -m minigpt4.tools.X`):
putting them here would make `tools` and `cli` import each other.
"""
