"""TinyStories next-token prediction as a training task (the `lumina.tasks.Task` interface).

Examples [ours, book chapter 4]. The training stories become one token stream (each story followed by the EOT id,
`lumina.data.tokenizer.encode_corpus`), cut into non-overlapping windows of L+1 tokens (L = cfg.model.context);
window k gives x = tokens[kL : kL+L] and y = tokens[kL+1 : kL+L+1]: every position t predicts the next token
from the tokens up to t, so one window gives L targets, for LuminaNet (causal by wiring: one slot per
position, edges only forwards in position) and the GPT-2 baseline (causal by its attention mask) alike.
Windows may cross a story boundary, like any LM trained on a concatenated stream; the EOT token marks it.
`cfg.data.train_subset` > 0 keeps the first that many windows. An epoch is one pass over the windows. With
`cfg.data.random_offsets` a window k starts at kL + r, r drawn in [0, L) each time it is read, so a slot (or
position) does not see the same token pairs every epoch [ours].

Dev split [ours]: with `cfg.data.validation` the last `cfg.data.dev_stories` training stories are held out of
the training text and are what `evaluate` scores: every choice (variant, learning rate, width) is made on them.
The V1 validation stories are scored only by runs with `validation=False`, for the reported numbers.

Metrics (`evaluate`), identical for every model: the validation stories (the V1 validation split only) form
one stream, cut into the same non-overlapping windows; every position of every window is scored, position t
from the t+1 tokens of its window up to it. With p the model's probability of the true next token v:
    loss  = mean (-ln p)                        (nats per token); loss_by_pos[t]: the mean at position t
    ppl   = exp(loss)                           validation perplexity
    top1  = 100 * mean [argmax = v]             next-token accuracy (%), top5 likewise
    bpb   = sum (-ln p) / ln 2 / sum bytes(v)   bits per UTF-8 byte
where bytes(v) is the number of UTF-8 bytes token v decodes to (byte-level BPE) and the EOT token counts as
1 byte. Perplexity depends on the tokenizer; bits per byte does not, so compare perplexities only under one
tokenizer (book chapter 4).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import ExperimentConfig
from .data.common import DataError
from .data.stories import EOT, load_stories
from .ngram import KneserNeyLM
from .data.tokenizer import encode_corpus, get_tokenizer, token_bytes, train_tokenizer

__all__ = ["TextTask", "UnigramLM", "evaluate_lm", "windows"]


def windows(tokens: torch.Tensor, L: int) -> torch.Tensor:
    """Non-overlapping windows of L+1 tokens: (n, L+1); inputs [:, :-1], targets [:, 1:]."""
    if len(tokens) < L + 1:
        return tokens.new_zeros(0, L + 1)
    return tokens.unfold(0, L + 1, L).contiguous()  # window k = tokens[kL : kL+L+1]


@torch.no_grad()
def evaluate_lm(model, wins: torch.Tensor, nbytes: torch.Tensor, batch_size: int = 128) -> dict:
    """The metrics of the module docstring for `model` on windows `wins` (n, L+1)."""
    if not len(wins):
        raise ValueError("the evaluation stream is shorter than one window: nothing to score")
    was = model.training
    model.eval()
    nll, c1, c5 = 0.0, 0, 0
    by_pos = torch.zeros(wins.shape[1] - 1, dtype=torch.float64)
    try:
        for a in range(0, len(wins), batch_size):
            w = wins[a:a + batch_size]
            x, y = w[:, :-1], w[:, 1:].reshape(-1)
            logits = model(x).float().flatten(0, 1)  # (B*L, V)
            tok = F.cross_entropy(logits, y, reduction="none").double()  # (B*L,)
            by_pos += tok.view(len(w), -1).sum(0).cpu()
            nll += float(tok.sum())
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices.eq(y.view(-1, 1))
            c1 += int(top[:, :1].any(1).sum())
            c5 += int(top.any(1).sum())
    finally:
        model.train(was)
    n = wins[:, 1:].numel()
    n_bytes = int(nbytes[wins[:, 1:].reshape(-1).cpu()].sum())
    loss = nll / n
    return {"loss": loss, "ppl": math.exp(min(loss, 700.0)), "top1": 100.0 * c1 / n, "top5": 100.0 * c5 / n,
            "bpb": nll / math.log(2) / max(n_bytes, 1), "n_tokens": n,
            "loss_by_pos": (by_pos / len(wins)).tolist()}


POSITION_BUCKETS = ((0, 1), (1, 4), (4, 16), (16, 64))  # positions 0 | 1-3 | 4-15 | 16-63 (book chapter 4)


def bucket_ppl(loss_by_pos: list[float], buckets=POSITION_BUCKETS) -> dict[str, float]:
    """Perplexity per bucket of positions, from the per-position mean losses: {"0": .., "1-3": .., ...}."""
    out = {}
    for a, b in buckets:
        b = min(b, len(loss_by_pos))
        if a < b:
            out[str(a) if b == a + 1 else f"{a}-{b - 1}"] = math.exp(sum(loss_by_pos[a:b]) / (b - a))
    return out


class UnigramLM(torch.nn.Module):
    """The reference a collapsed language model falls back to: the training tokens' frequencies, the same
    prediction at every position (add-one smoothed so no validation token has probability 0). A model whose
    validation perplexity is near this one's has learned no context."""

    def __init__(self, train_tokens: torch.Tensor, vocab_size: int):
        super().__init__()
        counts = torch.bincount(train_tokens.flatten().cpu(), minlength=vocab_size)[:vocab_size].double() + 1.0
        self.register_buffer("log_p", (counts / counts.sum()).log().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_p.expand(*x.shape, -1)


class TextTask:
    """TinyStories: windows of L tokens -> the next token at every position (see the module docstring).

    `stories=(train, validation)` and `tokenizer=` replace the real data and the cached tokenizer (tests,
    notebooks); with `stories` given and no tokenizer, a fresh BPE is trained on the given train stories.
    """

    def __init__(self, cfg: ExperimentConfig, *, stories: tuple[list[str], list[str]] | None = None,
                 tokenizer=None, eval_batch: int = 128):
        d, m = cfg.data, cfg.model
        self.cfg, self.context, self.eval_batch = cfg, m.context, eval_batch
        self.random_offsets = d.random_offsets
        self.smoothing = cfg.train.label_smoothing
        if stories is None:
            train, val = load_stories("train", d.n_stories), load_stories("validation")
        else:
            train, val = (list(s) for s in stories)
            train = train[:d.n_stories] if d.n_stories else train
        if tokenizer is None:
            tokenizer = train_tokenizer(train, d.vocab_size) if stories is not None else get_tokenizer(cfg, train)
        self.tokenizer = tokenizer
        # the dev split (after the tokenizer, so dev runs and reported runs share one tokenizer): the last
        # dev_stories training stories, never trained on
        if d.validation:
            if d.dev_stories >= len(train):
                raise DataError(f"dev_stories={d.dev_stories} leaves no training stories (there are {len(train)})")
            train, val = train[:-d.dev_stories], train[-d.dev_stories:]
        self.eot = tokenizer.token_to_id(EOT)
        if self.eot is None:
            raise ValueError(f"the tokenizer has no {EOT} token")
        if tokenizer.get_vocab_size() > d.vocab_size:
            raise ValueError(f"the {m.tokenizer} tokenizer has {tokenizer.get_vocab_size()} tokens but "
                             f"vocab_size={d.vocab_size}; set vocab_size={tokenizer.get_vocab_size()}")
        self.n_out = d.vocab_size
        self.nbytes = torch.tensor([len(b) for b in token_bytes(tokenizer)] + [1] * (d.vocab_size - tokenizer.get_vocab_size()))
        L = self.context
        self.train_tokens = encode_corpus(tokenizer, train)
        self.val_tokens = encode_corpus(tokenizer, val)
        self.train_windows = windows(self.train_tokens, L)
        self.val_windows = windows(self.val_tokens, L)
        if d.train_subset:
            self.train_windows = self.train_windows[:d.train_subset]
        if d.test_subset:
            self.val_windows = self.val_windows[:max(1, d.test_subset // L)]
        if not len(self.train_windows):
            raise DataError(f"the training text gives {len(self.train_tokens)} tokens, too few for a context of {L}")
        if not len(self.val_windows):
            raise DataError(f"the validation text gives {len(self.val_tokens)} tokens, too few for a context of {L}")

    @property
    def n_train(self) -> int:
        """The number of training windows (examples); each gives `context` targets."""
        return len(self.train_windows)

    def to(self, device) -> "TextTask":
        self.train_windows, self.val_windows = self.train_windows.to(device), self.val_windows.to(device)
        return self

    def batch(self, idx: torch.Tensor, gen: torch.Generator | None = None):
        """Windows `idx`: x (B, L) int64 and y (B, L), the next token at every position. `gen` is unused
        (text has no augmentation); it is accepted for the `Task` interface."""
        idx = torch.as_tensor(idx, dtype=torch.int64)
        if self.random_offsets:  # window k read from kL + r, r in [0, L), clipped to the stream's end
            L = self.context
            start = (idx * L + torch.randint(0, L, idx.shape, generator=gen)).clamp(max=len(self.train_tokens) - L - 1)
            w = self.train_tokens[start.view(-1, 1) + torch.arange(L + 1)].to(self.train_windows.device)
        else:
            w = self.train_windows[idx.to(self.train_windows.device)]
        return w[:, :-1], w[:, 1:]

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.flatten(0, 1), y.flatten(), label_smoothing=self.smoothing)

    def evaluate(self, model) -> dict:
        return evaluate_lm(model, self.val_windows, self.nbytes, self.eval_batch)

    def example(self) -> torch.Tensor:
        return self.val_windows[:1, :-1]

    def reference_metrics(self) -> dict[str, dict]:
        """The n-gram references (unigram, Kneser-Ney bigram and trigram of the training windows' tokens)
        scored on this task's evaluation windows, per-position losses included (`lumina.ngram`)."""
        tokens = self.train_windows[:, 1:].reshape(-1).cpu() if self.cfg.data.train_subset else self.train_tokens
        return {"unigram": self.unigram_metrics(),
                "bigram": self.evaluate(KneserNeyLM(tokens, self.n_out, 2)),
                "trigram": self.evaluate(KneserNeyLM(tokens, self.n_out, 3))}

    def unigram_metrics(self) -> dict:
        """The validation metrics of `UnigramLM` (the training windows' token frequencies): what a model
        that ignores its context scores."""
        return self.evaluate(UnigramLM(self.train_windows[:, 1:], self.n_out))

    # ---- text in and out ---------------------------------------------------------------------------
    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor(self.tokenizer.encode(text, add_special_tokens=False).ids, dtype=torch.int64)

    def decode(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    @torch.no_grad()
    def generate(self, model, prompt: str = "", max_new_tokens: int = 200, temperature: float = 1.0,
                 top_k: int = 0, seed: int = 0, stop_at_eot: bool = True, cache: bool = True) -> str:
        """Sample a continuation of `prompt` (after an EOT, the story boundary seen in training);
        temperature 0 = greedy. The window holds L tokens; when it is full, it slides to its last L/2
        tokens. `cache=True` runs a LuminaNet slot by slot (`LuminaNet.step_slot`: only the new slot's
        clusters per token, recomputing only when the window slides); `cache=False` runs the whole window
        per token (future positions padded with EOT, which causality makes irrelevant)."""
        gen = torch.Generator().manual_seed(seed)
        L, V = self.context, self.tokenizer.get_vocab_size()
        ids = [self.eot] + self.encode(prompt).tolist()
        ids = ids[-L:]
        start = len(ids)
        stepping = cache and hasattr(model, "step_slot")
        was = model.training
        model.eval()
        dev = next(model.parameters()).device
        state, win, fed = {}, 0, 0  # slot cache, window start in ids, tokens of the window fed so far

        def next_logits() -> torch.Tensor:
            nonlocal state, win, fed
            if len(ids) - win > L:  # slide: the window restarts at its last L/2 tokens
                win, state, fed = len(ids) - L // 2, {}, 0
            if stepping:
                while win + fed < len(ids):
                    out = model.step_slot(torch.tensor([ids[win + fed]], device=dev), fed, state)
                    fed += 1
                return out[0]
            w = ids[win:]
            x = torch.tensor([w + [self.eot] * (L - len(w))], device=dev)
            return model(x)[0, len(w) - 1]

        try:
            for _ in range(max_new_tokens):
                logits = next_logits().float()[:V]  # never sample ids the tokenizer lacks
                if temperature <= 0:
                    nxt = int(logits.argmax())
                else:
                    if top_k:
                        kth = logits.topk(min(top_k, len(logits))).values[-1]
                        logits = logits.masked_fill(logits < kth, float("-inf"))
                    nxt = int(torch.multinomial(F.softmax(logits / temperature, -1).cpu(), 1, generator=gen))
                ids.append(nxt)
                if stop_at_eot and nxt == self.eot:
                    break
        finally:
            model.train(was)
        new = ids[start:]
        if stop_at_eot and new and new[-1] == self.eot:
            new = new[:-1]
        return prompt + self.decode(new)
