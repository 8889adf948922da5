#!/usr/bin/python3
"""Train loom's small real model: a Llama-architecture model on the King James Bible.

Reproducible from Debian packages only (bible-kjv for the text, python3-torch and
python3-sentencepiece for training). Run with Debian's interpreter:

    /usr/bin/python3 tools/train/train_kjv.py --out models/kjv-llama-6m [--minutes 60]

It writes a Hugging Face folder loom reads (config.json, model.safetensors in bf16,
tokenizer.json, tokenizer_config.json with a chat template, generation_config.json),
the held-out text (heldout.txt), reference.json/reference.safetensors (PyTorch's own
logits for a fixed sequence, computed from the bf16 weights that were written), and
train_log.json (settings, loss curve, validation loss and perplexity).

Seeds are fixed; results are reproducible on one machine with one thread count (CPU
float summation order depends on the thread count).
"""
import argparse
import json
import math
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F

HELDOUT_EVERY = 20  # chapter i is held out when i % 20 == 10 (Genesis 1 stays in training)


# ----------------------------------------------------------------------------- text
def kjv_chapters():
    """[(title, [verse, ...])] in canonical order, from the bible-kjv package."""
    out = subprocess.run(["bible", "-l0", "gen1:1-rev22:21"], check=True, capture_output=True,
                         text=True, cwd="/tmp").stdout
    chapters = []
    for line in out.splitlines():
        if not line.strip():
            continue
        m = re.match(r"^\s+(\d+) (.*)$", line)
        if m:
            chapters[-1][1].append(m.group(2).strip())
        else:
            chapters.append((line.strip(), []))
    if len(chapters) != 1189:
        sys.exit(f"expected 1189 chapters from bible-kjv, got {len(chapters)}")
    return chapters


def chapter_text(verses):
    return "\n".join(verses)


# ----------------------------------------------------------------------------- tokenizer
def train_tokenizer(train_chapters, vocab_size, workdir):
    corpus = os.path.join(workdir, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        for _, verses in train_chapters:
            for v in verses:
                f.write(v + "\n")
    prefix = os.path.join(workdir, "sp")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, model_type="bpe", vocab_size=vocab_size,
        byte_fallback=True, character_coverage=1.0, split_digits=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        input_sentence_size=0, shuffle_input_sentence=False, num_threads=1,
        minloglevel=2)
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


def tokenizer_json(sp):
    """The HF tokenizers form of a SentencePiece BPE model (as transformers converts Llama's):
    Metaspace pre-tokenizer, BPE with byte fallback, merges ranked by the merged piece's score."""
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    score = {sp.id_to_piece(i): sp.get_score(i) for i in range(n)}
    merges = []
    for piece, pid in vocab.items():
        if sp.is_control(pid) or sp.is_unknown(pid) or sp.is_byte(pid) or len(piece) < 2:
            continue
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in vocab and right in vocab:
                merges.append((score[piece], vocab[left], vocab[right], left, right))
    merges.sort(key=lambda m: (-m[0], m[1], m[2]))
    special = lambda i: {"id": i, "content": sp.id_to_piece(i), "single_word": False,
                         "lstrip": False, "rstrip": False, "normalized": False, "special": True}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [special(0), special(1), special(2)],
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",
                          "prepend_scheme": "always", "split": False},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [[m[3], m[4]] for m in merges]},
    }


# A plain chat template: the model only knows scripture, but a chat request renders and runs.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] | trim }}\n\n"
    "{% elif message['role'] == 'user' %}Question: {{ message['content'] | trim }}\n"
    "{% elif message['role'] == 'assistant' %}Answer: {{ message['content'] | trim }}"
    "{{ eos_token }}\n"
    "{% else %}{{ raise_exception('roles are system, user and assistant') }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Answer:{% endif %}")


# ----------------------------------------------------------------------------- model
class Config:
    def __init__(self, vocab, dim, layers, heads, kv_heads, ffn, ctx, eps=1e-5, theta=10000.0):
        self.vocab, self.dim, self.layers, self.heads, self.kv_heads = vocab, dim, layers, heads, kv_heads
        self.ffn, self.ctx, self.eps, self.theta = ffn, ctx, eps, theta
        self.head_dim = dim // heads


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(cfg, n):
    inv = 1.0 / (cfg.theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float64) / cfg.head_dim))
    ang = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().float(), ang.sin().float()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Block(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        hd = cfg.head_dim
        self.cfg = cfg
        self.input_layernorm = RMSNorm(cfg.dim, cfg.eps)
        self.q_proj = torch.nn.Linear(cfg.dim, cfg.heads * hd, bias=False)
        self.k_proj = torch.nn.Linear(cfg.dim, cfg.kv_heads * hd, bias=False)
        self.v_proj = torch.nn.Linear(cfg.dim, cfg.kv_heads * hd, bias=False)
        self.o_proj = torch.nn.Linear(cfg.heads * hd, cfg.dim, bias=False)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.eps)
        self.gate_proj = torch.nn.Linear(cfg.dim, cfg.ffn, bias=False)
        self.up_proj = torch.nn.Linear(cfg.dim, cfg.ffn, bias=False)
        self.down_proj = torch.nn.Linear(cfg.ffn, cfg.dim, bias=False)

    def forward(self, x, cos, sin, mask):
        cfg, (b, t, _) = self.cfg, x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(b, t, cfg.heads, cfg.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(b, t, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(b, t, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = cfg.heads // cfg.kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(cfg.head_dim) + mask
        o = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, cfg.heads * cfg.head_dim)
        x = x + self.o_proj(o)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = torch.nn.Embedding(cfg.vocab, cfg.dim)
        self.layers = torch.nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.dim, cfg.eps)
        cos, sin = rope_tables(cfg, cfg.ctx)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * cfg.layers) if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
                torch.nn.init.normal_(p, 0.0, std)

    def forward(self, ids):
        t = ids.shape[1]
        mask = torch.full((t, t), float("-inf")).triu(1)
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, self.cos[:t], self.sin[:t], mask)
        return self.norm(x) @ self.embed_tokens.weight.T  # tied output

    def hf_state(self):
        """Tensors under the names transformers' LlamaForCausalLM uses (tied lm_head omitted)."""
        out = {"model.embed_tokens.weight": self.embed_tokens.weight, "model.norm.weight": self.norm.weight}
        for i, l in enumerate(self.layers):
            p = f"model.layers.{i}."
            out[p + "input_layernorm.weight"] = l.input_layernorm.weight
            out[p + "post_attention_layernorm.weight"] = l.post_attention_layernorm.weight
            for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
                out[p + f"self_attn.{n}.weight"] = getattr(l, n).weight
            for n in ("gate_proj", "up_proj", "down_proj"):
                out[p + f"mlp.{n}.weight"] = getattr(l, n).weight
        return out

    def load_hf_state(self, tensors):
        own = self.hf_state()
        with torch.no_grad():
            for name, p in own.items():
                p.copy_(tensors[name].to(torch.float32))


# ----------------------------------------------------------------------------- safetensors
ST_DTYPES = {torch.bfloat16: "BF16", torch.float32: "F32", torch.int32: "I32"}


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        if info["dtype"] == "BF16":
            t = torch.from_numpy(np.frombuffer(data[a:b], dtype=np.int16).copy()).view(torch.bfloat16)
        else:
            t = torch.from_numpy(np.frombuffer(data[a:b], dtype=np.float32).copy())
        out[name] = t.reshape(info["shape"])
    return out


# ----------------------------------------------------------------------------- training
def evaluate(model, data, ctx, max_windows=None):
    """Mean next-token loss over non-overlapping windows of the held-out stream."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        starts = list(range(0, len(data) - ctx - 1, ctx))
        if max_windows:
            starts = starts[:max_windows]
        for i in range(0, len(starts), 8):
            xs = torch.stack([data[s:s + ctx] for s in starts[i:i + 8]])
            ys = torch.stack([data[s + 1:s + ctx + 1] for s in starts[i:i + 8]])
            loss = F.cross_entropy(model(xs).reshape(-1, model.cfg.vocab), ys.reshape(-1), reduction="sum")
            total += loss.item()
            count += ys.numel()
    model.train()
    return total / count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=60.0, help="training time budget")
    ap.add_argument("--max-steps", type=int, default=100000)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=768)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=1611)
    ap.add_argument("--bench", action="store_true", help="time 5 steps and exit")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)

    chapters = kjv_chapters()
    train_ch = [c for i, c in enumerate(chapters) if i % HELDOUT_EVERY != HELDOUT_EVERY // 2]
    held_ch = [c for i, c in enumerate(chapters) if i % HELDOUT_EVERY == HELDOUT_EVERY // 2]
    with tempfile.TemporaryDirectory() as work:
        sp = train_tokenizer(train_ch, args.vocab, work)
    bos, eos = sp.bos_id(), sp.eos_id()

    def stream(chs):
        ids = []
        for _, verses in chs:
            ids += [bos] + sp.encode(chapter_text(verses)) + [eos]
        return torch.tensor(ids, dtype=torch.long)

    train_ids, held_ids = stream(train_ch), stream(held_ch)
    print(f"chapters: {len(train_ch)} train, {len(held_ch)} held out; tokens: "
          f"{len(train_ids)} train, {len(held_ids)} held out", flush=True)

    cfg = Config(args.vocab, args.dim, args.layers, args.heads, args.kv_heads, args.ffn, args.ctx)
    def fresh_start():
        """The model, its optimizer and the batch sampler, from the seed."""
        torch.manual_seed(args.seed)
        m = Llama(cfg)
        decay = [p for p in m.parameters() if p.dim() == 2]
        no_decay = [p for p in m.parameters() if p.dim() < 2]
        o = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                               {"params": no_decay, "weight_decay": 0.0}],
                              lr=args.lr, betas=(0.9, 0.95))
        return m, o, torch.Generator().manual_seed(args.seed)

    model, opt, gen = fresh_start()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params}", flush=True)

    def batch():
        starts = torch.randint(0, len(train_ids) - cfg.ctx - 1, (args.batch,), generator=gen)
        return (torch.stack([train_ids[s:s + cfg.ctx] for s in starts]),
                torch.stack([train_ids[s + 1:s + cfg.ctx + 1] for s in starts]))

    # Time a few steps to turn the time budget into a step count (so the LR schedule ends on time).
    t0 = time.time()
    probe = 3
    for _ in range(probe):
        x, y = batch()
        F.cross_entropy(model(x).reshape(-1, cfg.vocab), y.reshape(-1)).backward()
        opt.zero_grad(set_to_none=True)
    per_step = (time.time() - t0) / probe
    steps = min(args.max_steps, max(10, int(args.minutes * 60 / per_step * 0.93)))
    print(f"{per_step:.3f} s/step ({args.batch * cfg.ctx / per_step:.0f} tok/s): {steps} steps", flush=True)
    if args.bench:
        return
    # Restart from the same initial state: the probe steps only timed.
    model, opt, gen = fresh_start()

    warmup = max(1, steps // 20)
    log, t0 = [], time.time()
    for step in range(steps):
        lr = args.lr * (step + 1) / warmup if step < warmup else \
            args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup))))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch()
        loss = F.cross_entropy(model(x).reshape(-1, cfg.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            entry = {"step": step, "loss": round(loss.item(), 4), "lr": lr,
                     "seconds": round(time.time() - t0, 1)}
            if step % 500 == 0 or step == steps - 1:
                entry["val_loss"] = round(evaluate(model, held_ids, cfg.ctx, max_windows=32), 4)
            log.append(entry)
            print(json.dumps(entry), flush=True)

    export(args, cfg, model, sp, held_ch, held_ids, log, n_params, steps, time.time() - t0,
           len(train_ids))


def export(args, cfg, model, sp, held_ch, held_ids, log, n_params, steps, seconds, train_tokens):
    out = args.out
    state = {k: v.detach().to(torch.bfloat16) for k, v in model.hf_state().items()}
    write_safetensors(os.path.join(out, "model.safetensors"), state, {"format": "pt"})
    # Everything below is computed from the bf16 weights just written, read back as float32:
    # exactly the numbers loom computes from the same file.
    ref_model = Llama(cfg)
    ref_model.load_hf_state(read_safetensors(os.path.join(out, "model.safetensors")))
    ref_model.eval()
    val_loss = evaluate(ref_model, held_ids, cfg.ctx)

    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False,
        "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2, "head_dim": cfg.head_dim,
        "hidden_act": "silu", "hidden_size": cfg.dim, "initializer_range": 0.02,
        "intermediate_size": cfg.ffn, "max_position_embeddings": cfg.ctx, "mlp_bias": False,
        "num_attention_heads": cfg.heads, "num_hidden_layers": cfg.layers,
        "num_key_value_heads": cfg.kv_heads, "pretraining_tp": 1, "rms_norm_eps": cfg.eps,
        "rope_theta": cfg.theta, "rope_scaling": None, "tie_word_embeddings": True,
        "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": cfg.vocab}
    dump = lambda name, obj: json.dump(obj, open(os.path.join(out, name), "w"), indent=2, ensure_ascii=False)
    dump("config.json", config)
    dump("generation_config.json", {"bos_token_id": 1, "eos_token_id": 2})
    dump("tokenizer.json", tokenizer_json(sp))
    dump("tokenizer_config.json", {
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "pad_token": None, "clean_up_tokenization_spaces": False,
        "model_max_length": cfg.ctx, "tokenizer_class": "LlamaTokenizer",
        "chat_template": CHAT_TEMPLATE})
    with open(os.path.join(out, "heldout.txt"), "w", encoding="utf-8") as f:
        for title, verses in held_ch:
            f.write(chapter_text(verses) + "\n\n")

    # Reference: the prompt, PyTorch's greedy continuation and the logits at every position.
    prompt_text = "In the beginning"
    prompt_ids = [1] + sp.encode(prompt_text)
    seq = list(prompt_ids)
    with torch.no_grad():
        for _ in range(24):
            seq.append(int(ref_model(torch.tensor([seq]))[0, -1].argmax()))
        logits = ref_model(torch.tensor([seq]))[0]
    greedy = seq[len(prompt_ids):]
    # Tokenizer cases: SentencePiece's own ids for held-out text loom must reproduce. (Not text
    # that starts with a space: there HF's Metaspace, which loom follows, adds no second "▁"
    # and SentencePiece does.)
    samples = [v for _, verses in held_ch[:40] for v in verses[:2]] + [
        "Hello, world! 1611 and 2026.", "naïve café — “quoted” text", "two  spaces\tand a tab\n",
        "ἐν ἀρχῇ ἦν ὁ λόγος", "שָׁלוֹם"]
    write_safetensors(os.path.join(out, "reference.safetensors"), {
        "logits": logits.contiguous(),
        "argmax_per_position": logits.argmax(-1).to(torch.int32),
        "logsumexp_per_position": torch.logsumexp(logits, -1)})
    dump("reference.json", {
        "model": os.path.basename(os.path.normpath(out)), "class": "LlamaForCausalLM",
        "weights_dtype": "bfloat16", "compute_dtype": "float32", "made_by": "tools/train/train_kjv.py",
        "prompt_text": prompt_text, "prompt_ids": prompt_ids, "greedy_ids": greedy,
        "greedy_text": sp.decode(greedy), "sequence_ids": seq,
        "tokenizer_cases": [{"text": s, "ids": sp.encode(s)} for s in samples],
        "tensors": {"logits": list(logits.shape), "argmax_per_position": [len(seq)],
                    "logsumexp_per_position": [len(seq)]}})
    dump("train_log.json", {
        "source": "King James Bible (bible-kjv-text 4.38, public domain), 1189 chapters; "
                  f"chapter i held out when i % {HELDOUT_EVERY} == {HELDOUT_EVERY // 2}",
        "args": vars(args), "parameters": n_params, "steps": steps, "train_seconds": round(seconds),
        "train_tokens_per_epoch": train_tokens, "tokens_seen": steps * args.batch * cfg.ctx,
        "heldout_tokens": len(held_ids), "val_loss": round(val_loss, 4),
        "val_perplexity": round(math.exp(val_loss), 3), "torch": torch.__version__,
        "sentencepiece": spm.__version__, "log": log})
    print(f"validation loss {val_loss:.4f} (perplexity {math.exp(val_loss):.2f}); "
          f"greedy: {prompt_text!r} -> {sp.decode(greedy)!r}", flush=True)


if __name__ == "__main__":
    main()
