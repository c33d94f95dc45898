"""TinyStories next-token prediction as a training task (the interface of `lumina.train.ImageTask`).

Examples [ours, SPEC §3]. The training stories become one token stream (each story followed by the EOT id,
`lumina.data.text.encode_corpus`); example k is the window starting at position k:
    x = tokens[k : k+L]   (L = cfg.model.context)      y = tokens[k+L]   (the next token)
Windows may cross a story boundary, like any LM trained on a concatenated stream; the EOT token marks it.
`cfg.data.train_subset` > 0 keeps the first that many windows. A text LuminaNet reads x (one cluster per
position) and predicts y. The GPT-2 baseline (`cfg.model.arch == "gpt2"`) gets the same windows but is
trained on every position of each (y = tokens[k+1 : k+L+1], shape (B, L): standard LM training).

Metrics (`evaluate`), identical for every model. The validation stories form one stream v_0 .. v_{N-1} (with
EOT after each story); the scored tokens are every v_t that has a full context of L previous tokens,
t = L .. N-1 (with `cfg.data.test_subset` = T > 0 only t = L .. L+T-1), each predicted from exactly
(v_{t-L}, ..., v_{t-1}); for the GPT-2 wrapper that is its last position's logits, so both models see the
same context for the same tokens. With p_t the model's softmax probability of v_t:
    loss  = mean_t (-ln p_t)                        (nats per token)
    ppl   = exp(loss)                               validation perplexity
    top1  = 100 * mean_t [argmax logits_t == v_t]   next-token accuracy (%), top5 likewise
    bpb   = sum_t (-ln p_t) / ln 2 / sum_t bytes(v_t)   bits per UTF-8 byte
where bytes(v) is the number of UTF-8 bytes token v decodes to (byte-level BPE: exact, so sum_t bytes(v_t)
is the UTF-8 length of the scored text) and the EOT token counts as 1 byte (the story boundary, as a
newline in a plain-text file). Perplexity depends on the tokenizer; bits per byte does not (up to the
first L tokens, which are not scored), so compare perplexities only under one tokenizer (SPEC §3).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import ExperimentConfig
from .data.common import DataError
from .data.text import EOT, encode_corpus, get_tokenizer, load_stories, token_bytes, train_tokenizer

__all__ = ["TextTask", "evaluate_lm"]


@torch.no_grad()
def evaluate_lm(model, tokens: torch.Tensor, context: int, nbytes: torch.Tensor, batch_size: int = 256) -> dict:
    """The metrics of the module docstring for `model` on the stream `tokens` (N,): every token with a full
    context of `context` previous tokens. `nbytes` (vocab,) holds each token's byte length."""
    L, N = context, len(tokens)
    if N <= L:
        raise ValueError(f"the evaluation stream has {N} tokens, not more than the context {L}: nothing to score")
    windows = tokens.unfold(0, L, 1)  # (N-L+1, L) views: window k = tokens[k:k+L]
    was = model.training
    model.eval()
    nll = 0.0
    c1 = c5 = 0
    try:
        for a in range(0, N - L, batch_size):
            b = min(a + batch_size, N - L)
            x, y = windows[a:b], tokens[a + L:b + L]
            logits = model(x)
            if logits.ndim == 3:  # a full-sequence LM (GPT-2): its last position has the full context
                logits = logits[:, -1]
            logits = logits.float()
            nll += float(F.cross_entropy(logits, y, reduction="sum").double())
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices.eq(y.view(-1, 1))
            c1 += int(top[:, :1].any(1).sum())
            c5 += int(top.any(1).sum())
    finally:
        model.train(was)
    n = N - L
    n_bytes = int(nbytes[tokens[L:]].sum())
    loss = nll / n
    return {"loss": loss, "ppl": math.exp(min(loss, 700.0)), "top1": 100.0 * c1 / n, "top5": 100.0 * c5 / n,
            "bpb": nll / math.log(2) / max(n_bytes, 1), "n_tokens": n}


class TextTask:
    """TinyStories: windows of L tokens -> the next token (see the module docstring).

    `stories=(train, validation)` and `tokenizer=` replace the real data and the cached tokenizer (tests,
    notebooks); with `stories` given and no tokenizer, a fresh BPE is trained on the given train stories
    (and not cached).
    """

    def __init__(self, cfg: ExperimentConfig, *, stories: tuple[list[str], list[str]] | None = None,
                 tokenizer=None, eval_batch: int = 256):
        d, m = cfg.data, cfg.model
        self.cfg, self.context, self.eval_batch = cfg, m.context, eval_batch
        self.smoothing = cfg.train.label_smoothing
        self.full_sequence = m.arch == "gpt2"  # the baseline learns from every position of the window
        if stories is None:
            train, val = load_stories("train", d.n_stories), load_stories("validation")
        else:
            train, val = (list(s) for s in stories)
            train = train[:d.n_stories] if d.n_stories else train
        if tokenizer is None:
            tokenizer = train_tokenizer(train, d.vocab_size) if stories is not None else get_tokenizer(cfg, train)
        self.tokenizer = tokenizer
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
        if d.test_subset:
            self.val_tokens = self.val_tokens[:L + d.test_subset]
        n_windows = len(self.train_tokens) - L
        if n_windows < 1:
            raise DataError(f"the training text gives {len(self.train_tokens)} tokens, too few for a context of {L}")
        if len(self.val_tokens) <= L:
            raise DataError(f"the validation text gives {len(self.val_tokens)} tokens, too few for a context of {L}")
        self._n_train = min(n_windows, d.train_subset) if d.train_subset else n_windows
        self._windows = self.train_tokens.unfold(0, L + 1, 1)  # (n_windows, L+1): inputs and next token

    @property
    def n_train(self) -> int:
        """The number of training windows (examples)."""
        return self._n_train

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x  # token ids are the model's input

    def batch(self, idx: torch.Tensor, gen: torch.Generator | None = None):
        """Windows `idx` (start positions): x (B, L) int64, y (B,) the next token, or (B, L) for GPT-2.
        `gen` is unused (text has no augmentation); it is accepted for the ImageTask interface."""
        idx = torch.as_tensor(idx, dtype=torch.int64)
        if idx.numel() and (idx.min() < 0 or idx.max() >= self._n_train):
            raise IndexError(f"window index out of range [0, {self._n_train})")
        w = self._windows[idx]
        return w[:, :-1].contiguous(), (w[:, 1:].contiguous() if self.full_sequence else w[:, -1].contiguous())

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if logits.ndim == 3:  # (B, L, vocab) against (B, L)
            return F.cross_entropy(logits.flatten(0, 1), y.flatten(), label_smoothing=self.smoothing)
        return F.cross_entropy(logits, y, label_smoothing=self.smoothing)

    def evaluate(self, model) -> dict:
        return evaluate_lm(model, self.val_tokens, self.context, self.nbytes, self.eval_batch)

    def example(self) -> torch.Tensor:
        return self.val_tokens[:self.context].unsqueeze(0)

    # ---- text in and out ---------------------------------------------------------------------------
    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor(self.tokenizer.encode(text, add_special_tokens=False).ids, dtype=torch.int64)

    def decode(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    @torch.no_grad()
    def generate(self, model, prompt: str = "", max_new_tokens: int = 200, temperature: float = 1.0,
                 top_k: int = 0, seed: int = 0, stop_at_eot: bool = True) -> str:
        """Sample a continuation of `prompt` by sliding the window of L tokens (left-padded with EOT, the
        story boundary the model saw in training). temperature 0 = greedy."""
        gen = torch.Generator().manual_seed(seed)
        L = self.context
        ids = [self.eot] * L + self.encode(prompt).tolist()
        start = len(ids)
        was = model.training
        model.eval()
        try:
            for _ in range(max_new_tokens):
                logits = model(torch.tensor([ids[-L:]], dtype=torch.int64))
                logits = (logits[:, -1] if logits.ndim == 3 else logits)[0].float()
                logits = logits[:self.tokenizer.get_vocab_size()]  # never sample ids the tokenizer lacks
                if temperature <= 0:
                    nxt = int(logits.argmax())
                else:
                    if top_k:
                        kth = logits.topk(min(top_k, len(logits))).values[-1]
                        logits = logits.masked_fill(logits < kth, float("-inf"))
                    nxt = int(torch.multinomial(F.softmax(logits / temperature, -1), 1, generator=gen))
                ids.append(nxt)
                if stop_at_eot and nxt == self.eot:
                    break
        finally:
            model.train(was)
        new = ids[start:]
        if stop_at_eot and new and new[-1] == self.eot:
            new = new[:-1]
        return prompt + self.decode(new)
