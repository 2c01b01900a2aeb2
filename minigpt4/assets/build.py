"""Regenerate the tiny assets shipped in `minigpt4/assets/`: `python -m minigpt4.assets.build`.

* `tiny_llama/tokenizer.model`: a LLaMA-style sentencepiece BPE (byte fallback, unk/bos/eos = 0/1/2, `$$` as a
  user symbol like the parity fixtures, digits split as LLaMA does) trained on shapes-world text generated here;
* `tiny_llama/config.json` + `generation_config.json` + `tokenizer_config.json`: a 2-layer, 64-wide LLaMA with
  no weight file, so `llama_model: assets/tiny_llama` builds a randomly initialised LLM.

The corpus is deterministic (seeded) and sentencepiece runs single-threaded, so the files are reproducible.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

# the LLaMA tokenizer's settings, as the official Vicuna / Llama-2 folders write them
LLAMA_TOKENIZER_CONFIG = {
    "tokenizer_class": "LlamaTokenizer",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "add_bos_token": True,
    "add_eos_token": False,
    "clean_up_tokenization_spaces": False,
}

ASSETS = Path(__file__).resolve().parent
TINY_LLAMA = ASSETS / "tiny_llama"
VOCAB_SIZE = 1000

COLOURS = [
    "red",
    "green",
    "blue",
    "yellow",
    "purple",
    "orange",
    "black",
    "white",
    "gray",
    "pink",
    "brown",
    "cyan",
]
SHAPES = [
    "circle",
    "square",
    "triangle",
    "rectangle",
    "star",
    "ellipse",
    "diamond",
    "hexagon",
    "cross",
    "heart",
]
SIZES = ["small", "large", "big", "tiny", "medium"]
PLACES = ["left", "right", "top", "bottom", "center", "corner", "middle"]
TASKS = ["[vqa]", "[refer]", "[caption]", "[grounding]", "[identify]", "[detection]"]
QUESTIONS = [
    "What color is the {shape}?",
    "What shape is in the image?",
    "How many shapes are there?",
    "Is there a {colour} {shape}?",
    "Where is the {colour} {shape}?",
    "What is in this image?",
    "Describe the image.",
    "Briefly describe this image.",
    "Please provide a detailed description of the picture.",
    "Describe this image in detail.",
    "Take a look at this image and describe what you notice.",
    "Could you describe the contents of this image for me?",
]


def box(rng: random.Random) -> str:
    x1, y1 = rng.randint(0, 60), rng.randint(0, 60)
    return f"{{<{x1}><{y1}><{x1 + rng.randint(5, 39)}><{y1 + rng.randint(5, 39)}>}}"


def corpus_lines(count: int = 6000, seed: int = 0) -> list[str]:
    """Shapes-world captions, questions, answers, boxes and the prompt formats of MiniGPT-4 and MiniGPT-v2."""
    rng = random.Random(seed)
    lines = [" ".join(COLOURS), " ".join(SHAPES), " ".join(TASKS), "0 1 2 3 4 5 6 7 8 9 10 100", "$$ $$"]
    for _ in range(count):
        colour, shape = rng.choice(COLOURS), rng.choice(SHAPES)
        thing = f"{rng.choice(SIZES)} {colour} {shape}"
        question = rng.choice(QUESTIONS).format(colour=colour, shape=shape)
        task = rng.choice(TASKS)
        kind = rng.randrange(9)
        if kind == 0:
            lines.append(f"a {thing} on the {rng.choice(PLACES)}.")
        elif kind == 1:
            lines.append(f"###Human: <Img><ImageHere></Img> {question} ###Assistant: a {thing}###")
        elif kind == 2:
            lines.append(f"[INST] <Img><ImageHere></Img> {question} [/INST] There is a {thing}.</s>")
        elif kind == 3:
            lines.append(f"<s>[INST] <Img><ImageHere></Img> {task} {question} [/INST] {colour}</s>")
        elif kind == 4:
            lines.append(f"[refer] where is the {thing}? {box(rng)}")
        elif kind == 5:
            lines.append(f"[grounding] describe this image <p>a {thing}</p> {box(rng)}<delim>{box(rng)}")
        elif kind == 6:
            lines.append(f"[identify] what object is in this location {box(rng)} a {thing}")
        elif kind == 7:
            lines.append(f"[detection] {shape} <p>{colour} {shape}</p> {box(rng)}")
        else:
            lines.append(
                f"There are {rng.randint(1, 9)} shapes: {thing} and {rng.choice(COLOURS)} {rng.choice(SHAPES)}."
            )
    return lines


def train_tokenizer(out_dir: Path, vocab_size: int = VOCAB_SIZE) -> None:
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(corpus_lines()) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(Path(tmp) / "tok"),
            vocab_size=vocab_size,
            model_type="bpe",
            character_coverage=1.0,
            byte_fallback=True,
            split_digits=True,
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=-1,
            user_defined_symbols=["$$"],
            normalization_rule_name="identity",
            add_dummy_prefix=True,
            remove_extra_whitespaces=False,
            hard_vocab_limit=False,
            num_threads=1,
            minloglevel=2,
        )
        (out_dir / "tokenizer.model").write_bytes(_without_paths((Path(tmp) / "tok.model").read_bytes()))
    tokenizer_config = {**LLAMA_TOKENIZER_CONFIG, "model_max_length": 2048}
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")


def _without_paths(model: bytes) -> bytes:
    """Drop the temporary corpus / prefix paths that sentencepiece records, so rebuilds are byte-identical."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto.FromString(model)
    proto.trainer_spec.ClearField("input")
    proto.trainer_spec.ClearField("model_prefix")
    return proto.SerializeToString()


def write_llm_config(out_dir: Path) -> None:
    import sentencepiece as spm

    vocab = spm.SentencePieceProcessor(model_file=str(out_dir / "tokenizer.model")).get_piece_size()
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": 64,
        "intermediate_size": 172,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 512,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-6,
        "initializer_range": 0.02,
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
        "use_cache": True,
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    generation = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    (out_dir / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minigpt4.assets.build", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--out", type=Path, default=TINY_LLAMA, help="directory to write (default: the shipped one)"
    )
    args = parser.parse_args(argv)
    train_tokenizer(args.out)
    write_llm_config(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
