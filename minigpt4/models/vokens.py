"""MiniGPT-5's generative vokens `[IMG0]`..`[IMG7]`: tokens, new vocabulary rows, label masking, voken states.

Official behaviour (spec `minigpt5_anatomy.md` §2.2) kept here as small pure functions:
* 9 special tokens (`[IMG0]`..`[IMG7]`, `<ImageHere>`) appended to the LLaMA vocabulary in that order; the new
  rows of `embed_tokens` and `lm_head` start as the mean of the old rows and are the only rows that learn;
* labels of `[IMG1]`..`[IMG6]` are -100 (`[IMG0]`, `[IMG7]` and what follows stay supervised);
* the 8 voken states start one position BEFORE `[IMG0]`: the states whose next-token targets are the vokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

IGNORE_INDEX = -100
NUM_VOKENS = 8
IMAGE_TOKEN = "<ImageHere>"


def voken_tokens(num_vokens: int = NUM_VOKENS) -> list[str]:
    """`["[IMG0]", ..., "[IMG{n-1}]"]`."""
    return [f"[IMG{i}]" for i in range(num_vokens)]


def new_tokens(num_vokens: int = NUM_VOKENS) -> list[str]:
    """The tokens MiniGPT-5 adds, in the official order (their ids are V .. V+n)."""
    return [*voken_tokens(num_vokens), IMAGE_TOKEN]


def voken_text(num_vokens: int = NUM_VOKENS) -> str:
    """The vokens as they appear in a target, contiguous: `[IMG0][IMG1]...[IMG7]`."""
    return "".join(voken_tokens(num_vokens))


def add_voken_tokens(tokenizer, num_vokens: int = NUM_VOKENS) -> dict[str, int]:
    """Official tokenizer set-up: pad = eos, then the new special tokens. Returns {token: id}."""
    tokenizer.pad_token = tokenizer.eos_token
    tokens = new_tokens(num_vokens)
    ids = tokenizer.add_stripping_special_tokens(tokens)
    return dict(zip(tokens, ids))


@torch.no_grad()
def resize_with_mean_rows(llm: nn.Module, new_vocab_size: int) -> int:
    """Grow `embed_tokens` and `lm_head` of a LlamaForCausalLM to `new_vocab_size` rows, the new rows set to the
    mean of the old rows (official; transformers 5's own mean+covariance sampling is overwritten). Both matrices
    are kept in fp32 (official: trainable precision). Returns the number of new rows."""
    old = llm.get_input_embeddings().weight.shape[0]
    added = new_vocab_size - old
    if added < 0:
        raise ValueError(f"cannot shrink the vocabulary from {old} to {new_vocab_size} rows")
    llm.resize_token_embeddings(new_vocab_size, mean_resizing=False)
    for module in (llm.get_input_embeddings(), llm.get_output_embeddings()):
        module.to(torch.float32)
        weight = module.weight
        if added and not weight.is_meta:
            weight[old:] = weight[:old].mean(dim=0, keepdim=True)
    return added


def row_mask(num_rows: int, num_new: int, device: torch.device | None = None) -> Tensor:
    """(num_rows, 1) float mask: 1 on the last `num_new` rows (the new tokens), 0 elsewhere."""
    mask = torch.zeros(num_rows, 1, device=device)
    if num_new:
        mask[-num_new:] = 1.0
    return mask


def mask_gradient_rows(weight: nn.Parameter, num_new: int) -> None:
    """Only the last `num_new` rows of `weight` receive gradient (official grad masks, applied as a hook so the
    masked gradient is what every optimizer and gradient clipping see)."""
    if weight.is_meta:
        return
    mask = row_mask(weight.shape[0], num_new, weight.device).to(weight.dtype)
    weight.register_hook(lambda grad: grad * mask)


class NewRowsOnlyDecay:
    """Fix for the official AdamW decaying the frozen vocabulary rows (spec §7): the vocabulary matrices go to a
    param group with weight_decay 0 and this applies AdamW's decoupled decay to the new rows only.

    AdamW: p <- p * (1 - lr * wd) - lr * adam_update. With wd=0 in the group, p_after = p - lr * adam_update,
    so the new rows get p_after - lr * wd * p_before, exactly what AdamW with wd would give them.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, weights: Iterable[Tensor], num_new: int,
                 weight_decay: float) -> None:  # fmt: skip
        self.weights = [w for w in weights if not w.is_meta]
        self.num_new = int(num_new)
        self.weight_decay = float(weight_decay)
        self._lr: dict[int, float] = {}
        self._before: list[Tensor] = []
        for group in optimizer.param_groups:
            for param in group["params"]:
                if any(param is w for w in self.weights):
                    if group.get("weight_decay", 0.0) != 0.0:
                        raise ValueError(
                            "NewRowsOnlyDecay needs the vocabulary matrices in a group with weight_decay 0"
                        )
                    self._lr[id(param)] = group["lr"]
        self._groups = optimizer.param_groups
        optimizer.register_step_pre_hook(self._pre)
        optimizer.register_step_post_hook(self._post)

    def _pre(self, optimizer, args, kwargs) -> None:
        self._before = [w.detach()[-self.num_new :].clone() for w in self.weights]
        for group in self._groups:  # the scheduler may have changed lr since the last step
            for param in group["params"]:
                if id(param) in self._lr:
                    self._lr[id(param)] = group["lr"]

    @torch.no_grad()
    def _post(self, optimizer, args, kwargs) -> None:
        for weight, before in zip(self.weights, self._before):
            if weight.grad is None:
                continue
            weight[-self.num_new :] -= self._lr[id(weight)] * self.weight_decay * before
        self._before = []


def mask_voken_labels(labels: Tensor, first_voken_id: int, num_vokens: int = NUM_VOKENS) -> Tensor:
    """labels: (B, T). After each `[IMG0]` at t, positions t+1 .. t+num_vokens-2 (`[IMG1]`..`[IMG6]`) become -100
    (official `dataloader.py` quirk: `[IMG0]`, `[IMG7]` and the end symbol stay supervised)."""
    starts = labels == first_voken_id  # (B, T)
    spread = torch.zeros_like(starts)
    for offset in range(
        1, num_vokens - 1
    ):  # num_vokens - 2 shifted copies of the mask, not a loop over tokens
        spread[:, offset:] |= starts[:, :-offset]
    return labels.masked_fill(spread, IGNORE_INDEX)


def voken_start_index(labels: Tensor, first_voken_id: int) -> Tensor:
    """labels: (B, L) of the LLM call. Returns (N, 2) rows (b, p - 1) for every `[IMG0]` label at (b, p): where
    the voken states start (official `special_token_index`)."""
    index = (labels == first_voken_id).nonzero()
    index[:, 1] -= 1
    return index


def gather_voken_states(hidden: Tensor, start_index: Tensor, num_vokens: int = NUM_VOKENS) -> Tensor:
    """hidden: (B, L, D); start_index: (N, 2) rows (b, p). Returns (N, num_vokens, D) = hidden[b, p : p+n]."""
    offsets = torch.arange(num_vokens, device=hidden.device)
    positions = start_index[:, 1:2].to(hidden.device) + offsets  # (N, n)
    return hidden[start_index[:, 0:1].to(hidden.device), positions]


def drop_conditions(states: Tensor, draws: Tensor, drop_prob: float) -> tuple[Tensor, Tensor]:
    """Classifier-free-guidance drop. states: (N, n, D); draws: (N,) uniform [0, 1) values, one per row in
    voken order (official `random.random() < 0.1`). Returns (states with dropped rows zeroed, dropped (N,))."""
    dropped = draws.to(states.device) < drop_prob
    return states.masked_fill(dropped[:, None, None], 0.0), dropped


def expand_image_placeholders(
    input_ids: Tensor, placeholder_id: int, tokens_per_image: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Where each token and image slot lands once a BOS is prepended and every placeholder becomes
    `tokens_per_image` rows (official `input_warp`).

    input_ids: (B, T). Returns token_position (B, T): the output position of each token (a placeholder's is the
    first of its image rows); is_image (B, L) bool: image rows; lengths (B,): 1 + T + n_placeholders*(P-1)."""
    is_placeholder = input_ids == placeholder_id
    width = torch.where(is_placeholder, tokens_per_image, 1)  # (B, T)
    end = width.cumsum(dim=1)
    token_position = 1 + end - width
    lengths = 1 + end[:, -1] if input_ids.shape[1] else torch.ones(input_ids.shape[0], dtype=torch.long)
    longest = int(lengths.max()) if len(lengths) else 1
    is_image = torch.zeros(input_ids.shape[0], longest, dtype=torch.bool, device=input_ids.device)
    offsets = torch.arange(tokens_per_image, device=input_ids.device)
    rows, cols = is_placeholder.nonzero(as_tuple=True)
    image_rows = token_position[rows, cols][:, None] + offsets  # (N_img, P)
    is_image[rows[:, None].expand_as(image_rows), image_rows] = True
    return token_position, is_image, lengths


def placeholder_counts(input_ids: Tensor, placeholder_id: int) -> list[int]:
    return (input_ids == placeholder_id).sum(dim=1).tolist()


def select_images(images: Sequence[Tensor], counts: Sequence[int]) -> Tensor | None:
    """The first counts[b] images of each sample, in sample order: (sum counts, 3, H, W), or None if none."""
    chosen = []
    for b, (imgs, count) in enumerate(zip(images, counts)):
        if count == 0:
            continue
        if imgs is None or imgs.shape[0] < count:
            have = 0 if imgs is None else imgs.shape[0]
            raise ValueError(f"sample {b} has {count} {IMAGE_TOKEN} placeholder(s) but {have} input image(s)")
        chosen.append(imgs[:count])
    return torch.cat(chosen) if chosen else None
