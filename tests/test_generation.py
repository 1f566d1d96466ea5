"""The generation interface and its transformers backend (the vllm backend is tested in tests/vllm_cpu, `make test-vllm`)."""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import pytest
import torch
from tiny_lm import save_tiny, tiny_model, tiny_tokenizer

from r1cli.config import SamplingConfig
from r1cli.errors import UserError
from r1cli.generation import Completion, check_backend, load_generator
from r1cli.generation.hf import HFGenerator, length_sorted_batches

torch.set_num_threads(1)

PROMPTS = [
    [{"role": "user", "content": "What is 2+3?"}],
    "a plain r1zero-style string prompt, quite a bit longer than the others. Assistant:",
    [{"role": "user", "content": "一二三"}],
    [{"role": "system", "content": "be brief"}, {"role": "user", "content": "(4+5)*3 = ?"}],
    "x",
]
GREEDY = SamplingConfig(temperature=0, max_new_tokens=12)


@pytest.fixture(scope="module")
def gen():
    tok = tiny_tokenizer()
    return HFGenerator(tiny_model(tok), tok)


def texts(outs):
    return [[c.text for c in cs] for cs in outs]


# --- shapes, order, n -----------------------------------------------------------------------------


def test_n_completions_per_prompt_in_prompt_order(gen):
    params = SamplingConfig(temperature=1.0, max_new_tokens=8, batch_size=2)
    outs = gen.generate(PROMPTS, params, n=3, seed=1)
    assert len(outs) == len(PROMPTS)
    assert all(len(cs) == 3 and all(isinstance(c, Completion) for c in cs) for cs in outs)
    # prompt order survives the length sort: each prompt's greedy output equals its own run
    greedy = gen.generate(PROMPTS, replace(GREEDY, batch_size=2))
    for p, cs in zip(PROMPTS, greedy):
        assert cs[0].text == gen.generate([p], GREEDY)[0][0].text


def test_empty_prompt_list(gen):
    assert gen.generate([], GREEDY) == []


def test_token_ids_and_counts_agree(gen):
    outs = gen.generate(PROMPTS, SamplingConfig(temperature=1.0, max_new_tokens=10), n=2, seed=3)
    for cs in outs:
        for c in cs:
            assert c.num_tokens == len(c.token_ids) and 1 <= c.num_tokens <= 10
            body = c.token_ids[:-1] if c.finish_reason == "stop" else c.token_ids
            assert gen.tokenizer.decode(body, skip_special_tokens=True) == c.text


# --- determinism ----------------------------------------------------------------------------------


def test_same_seed_same_samples_other_seed_other_samples(gen):
    p = SamplingConfig(temperature=1.0, max_new_tokens=12, batch_size=2)
    a = texts(gen.generate(PROMPTS, p, n=4, seed=7))
    b = texts(gen.generate(PROMPTS, p, n=4, seed=7))
    c = texts(gen.generate(PROMPTS, p, n=4, seed=8))
    assert a == b
    assert a != c
    # n samples of one prompt are not copies of each other when sampling
    assert any(len(set(cs)) > 1 for cs in a)


def test_sampling_leaves_the_callers_rng_alone(gen):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    gen.generate(PROMPTS[:2], SamplingConfig(temperature=1.0, max_new_tokens=5), n=2, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_greedy_is_deterministic_and_n_copies_are_equal(gen):
    p = SamplingConfig(temperature=0, max_new_tokens=12)
    a = texts(gen.generate(PROMPTS, p, n=3, seed=0))
    b = texts(gen.generate(PROMPTS, p, n=3, seed=99))
    assert a == b
    assert all(len(set(cs)) == 1 for cs in a)


def test_left_padded_batch_equals_one_at_a_time(gen):
    params = SamplingConfig(temperature=0, max_new_tokens=16)
    batched = gen.generate(PROMPTS, replace(params, batch_size=len(PROMPTS)))
    single = [gen.generate([p], params)[0] for p in PROMPTS]
    assert [c[0].token_ids for c in batched] == [c[0].token_ids for c in single]
    # and the batch really mixed lengths (so padding was exercised)
    lengths = {len(x) for x in gen.encode(PROMPTS)}
    assert len(lengths) == len(PROMPTS)


# --- stopping -------------------------------------------------------------------------------------


def test_finish_reason_length_then_stop_at_eos():
    tok = tiny_tokenizer()
    model = tiny_model(tok)
    free = HFGenerator(model, tok).generate(PROMPTS[:1], SamplingConfig(temperature=0, max_new_tokens=10))[0][0]
    assert free.finish_reason == "length" and free.num_tokens == 10
    # make the token the model greedily writes 4th its eos: generation must stop there
    stop_tok = free.token_ids[3]
    at = free.token_ids.index(stop_tok)
    model.generation_config.eos_token_id = stop_tok
    c = HFGenerator(model, tok).generate(PROMPTS[:1], SamplingConfig(temperature=0, max_new_tokens=10))[0][0]
    assert c.finish_reason == "stop"
    assert c.token_ids == free.token_ids[:at + 1] and c.num_tokens == at + 1
    assert c.text == tok.decode(free.token_ids[:at], skip_special_tokens=True)


def test_reasoning_tags_survive_decoding(gen):
    tok = gen.tokenizer
    ids = tok("<think>\n3+4=7\n</think>\n答案 \\boxed{7}", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    c = gen._completions([(ids, "stop")])[0]
    assert c.text == "<think>\n3+4=7\n</think>\n答案 \\boxed{7}"
    assert c.finish_reason == "stop" and c.token_ids[-1] == tok.eos_token_id


# --- the decode loop against transformers' generate -----------------------------------------------


def hf_greedy(model, ids: list[int], max_new_tokens: int, eos: list[int]) -> list[int]:
    """transformers' own greedy generate on one unpadded prompt: the reference."""
    x = torch.tensor([ids])
    out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=max_new_tokens,
                         eos_token_id=eos, pad_token_id=0)
    return out[0, len(ids):].tolist()


def stopping_model(max_new_tokens: int = 16):
    """A tiny LM whose eos is a token its greedy outputs write at different steps in some
    prompts and never in others, so a batch has rows stopping early, late and not at all."""
    tok = tiny_tokenizer()
    model = tiny_model(tok)
    free = HFGenerator(model, tok).generate(PROMPTS, SamplingConfig(temperature=0, max_new_tokens=max_new_tokens))
    rows = [cs[0].token_ids for cs in free]
    best = None
    for t in {t for r in rows for t in r}:
        firsts = {r.index(t) for r in rows if t in r}
        absent = sum(t not in r for r in rows)
        if absent and len(firsts) >= 2 and (best is None or (len(firsts), absent) > best[0]):
            best = ((len(firsts), absent), t)
    assert best is not None, "no token stops some rows and not others"
    model.generation_config.eos_token_id = best[1]
    return model, tok


def test_greedy_equals_transformers_generate_token_for_token():
    model, tok = stopping_model()
    gen = HFGenerator(model, tok)
    outs = gen.generate(PROMPTS, SamplingConfig(temperature=0, max_new_tokens=16, batch_size=len(PROMPTS)))
    ids = gen.encode(PROMPTS)
    assert len({len(x) for x in ids}) == len(PROMPTS)  # every prompt a different length: padding is exercised
    reasons = set()
    for x, cs in zip(ids, outs):
        ref = hf_greedy(model, x, 16, gen.eos_ids)  # the chosen eos and the tokenizer's
        assert cs[0].token_ids == ref
        assert cs[0].finish_reason == ("stop" if ref[-1] in gen.eos_ids else "length")
        reasons.add(cs[0].finish_reason)
    assert reasons == {"stop", "length"}  # rows did stop early while others ran on


def test_dropping_stopped_rows_changes_no_other_row(monkeypatch):
    """Rows leave the batch as they stop; the rest must come out exactly as if nobody had left,
    greedy and sampled (each row's random draws do not depend on the batch's size)."""
    from transformers import DynamicCache

    import r1cli.generation.decode as decode

    model, tok = stopping_model()
    gen = HFGenerator(model, tok)
    drops = []
    real = DynamicCache.batch_select_indices
    spy = lambda self, idx: (drops.append(len(idx)), real(self, idx))  # noqa: E731
    monkeypatch.setattr(DynamicCache, "batch_select_indices", spy)
    for params, n, seed in ((SamplingConfig(temperature=0, max_new_tokens=16, batch_size=len(PROMPTS)), 1, 0),
                            (SamplingConfig(temperature=1.0, top_p=0.9, max_new_tokens=16, batch_size=len(PROMPTS)), 3, 5)):
        monkeypatch.setattr(decode, "COMPACT_AT", 0)  # never compact
        kept = gen.generate(PROMPTS, params, n=n, seed=seed)
        assert drops == []
        monkeypatch.setattr(decode, "COMPACT_AT", 10**9)  # compact at every stop
        dropped = gen.generate(PROMPTS, params, n=n, seed=seed)
        assert len(drops) >= 2 and drops == sorted(drops, reverse=True)  # the batch really shrank, more than once
        drops.clear()
        assert [[c.token_ids for c in cs] for cs in kept] == [[c.token_ids for c in cs] for cs in dropped]
        assert {c.finish_reason for cs in kept for c in cs} == {"stop", "length"}


def test_shared_prompt_attention_equals_sdpa_over_repeated_cache():
    """prefix.py: attention over (prompt keys once + each row's generated keys), merged by softmax
    normalizers, equals plain attention over the cache repeated per sample; with grouped-query heads,
    left padding and rows gone from the batch."""
    from r1cli.generation.prefix import Rows, SharedPromptLayer

    g = torch.Generator().manual_seed(0)
    p, n, hkv, hq, d, lp, t = 3, 4, 2, 4, 8, 7, 5
    pad = torch.tensor([0, 3, 6])  # prompt 2 has a single real token
    prompt_mask = torch.arange(lp)[None, :] >= pad[:, None]
    layer = SharedPromptLayer(capacity=16, rows_ref=[Rows(p, n, prompt_mask)])
    pk, pv = torch.randn(p, hkv, lp, d, generator=g), torch.randn(p, hkv, lp, d, generator=g)
    layer.update(pk, pv)
    keep = torch.tensor([0, 2, 3, 5, 8, 11])  # rows that have not stopped
    layer.rows_ref[0].select(keep)
    gk, gv = torch.randn(len(keep), hkv, t, d, generator=g), torch.randn(len(keep), hkv, t, d, generator=g)
    q = torch.randn(len(keep), hq, 1, d, generator=g)
    ours = layer.attend(q, gk, gv, d ** -0.5)  # (B, 1, Hq, D)

    prompt_of = keep // n
    k = torch.cat([pk[prompt_of], gk], 2).repeat_interleave(hq // hkv, 1)
    v = torch.cat([pv[prompt_of], gv], 2).repeat_interleave(hq // hkv, 1)
    mask = torch.cat([prompt_mask[prompt_of], torch.ones(len(keep), t, dtype=torch.bool)], 1)[:, None, None, :]
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2)
    assert ours.shape == ref.shape
    assert torch.allclose(ours, ref, atol=1e-5)


def test_shared_prompt_decoding_samples_what_a_repeated_cache_does(monkeypatch):
    """n > 1: each prompt's keys and values are kept once for its n samples; the samples are the
    ones the repeated cache gives, and the model's attention setting is restored afterwards."""
    import r1cli.generation.prefix as prefix

    model, tok = stopping_model()
    gen = HFGenerator(model, tok)
    calls = []
    real = prefix.attention
    monkeypatch.setattr(prefix, "attention", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    from transformers import AttentionInterface

    AttentionInterface.register(prefix.NAME, prefix.attention)
    params = SamplingConfig(temperature=1.0, top_p=0.9, max_new_tokens=16, batch_size=2)
    shared = gen.generate(PROMPTS, params, n=3, seed=5)
    assert calls and model.config._attn_implementation == "sdpa"
    monkeypatch.setattr(prefix, "new_cache", lambda *a: None)
    repeated = gen.generate(PROMPTS, params, n=3, seed=5)
    assert [[c.token_ids for c in cs] for cs in shared] == [[c.token_ids for c in cs] for cs in repeated]
    AttentionInterface.register(prefix.NAME, real)


def test_top_p_over_the_top_k_draws_what_a_full_sort_does(monkeypatch):
    """sorted_probs sorts only TOP_K candidates when they hold top_p of every row's mass; the draws
    equal the full sort's, and a flat row sends the batch to the full sort."""
    import r1cli.generation.decode as decode

    g = torch.Generator().manual_seed(2)
    peaked = torch.randn(256, 300, generator=g) * 8
    flat = torch.cat([peaked[:255], torch.zeros(1, 300)])  # one row where 16 tokens hold 5% of the mass
    uniform = torch.rand(256, generator=g)
    for logits in (peaked, flat):
        for temperature, top_p in ((0.6, 0.95), (1.0, 0.9)):
            fast = decode.pick(logits, uniform, temperature, top_p)
            with monkeypatch.context() as m:
                m.setattr(decode, "TOP_K", 10**6)  # always the full sort
                full = decode.pick(logits, uniform, temperature, top_p)
            assert torch.equal(fast, full)
    sorted_p, _ = decode.sorted_probs(peaked, 0.6, 0.95)
    assert sorted_p.shape[1] == decode.TOP_K  # the shortcut was taken
    assert decode.sorted_probs(flat, 0.6, 0.95)[0].shape[1] == 300  # and refused


def test_tiny_top_p_is_greedy_for_every_sample(gen):
    greedy = gen.generate(PROMPTS, SamplingConfig(temperature=0, max_new_tokens=12), n=3)
    narrow = gen.generate(PROMPTS, SamplingConfig(temperature=1.0, top_p=1e-6, max_new_tokens=12, batch_size=2),
                          n=3, seed=4)
    # n samples per prompt, and the sample at each place belongs to that prompt (the KV cache was
    # expanded per prompt, results mapped back to prompt order)
    assert [[c.token_ids for c in cs] for cs in narrow] == [[c.token_ids for c in cs] for cs in greedy]


def test_top_p_keeps_the_same_tokens_as_transformers():
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    from r1cli.generation.decode import sorted_probs

    logits = torch.randn(64, 50, generator=torch.Generator().manual_seed(0)) * 3
    for temperature, top_p in ((1.0, 0.5), (0.6, 0.95), (1.3, 0.9), (0.6, 1.0)):
        sorted_p, order = sorted_probs(logits, temperature, top_p)
        ours = torch.zeros_like(logits, dtype=torch.bool).scatter(1, order, sorted_p > 0)
        scores = TemperatureLogitsWarper(temperature)(None, logits.clone())
        if top_p < 1:
            scores = TopPLogitsWarper(top_p)(None, scores)
        assert torch.equal(ours, torch.isfinite(scores))
        # the kept tokens keep their softmax probabilities (renormalized by the draw)
        kept = torch.where(ours, torch.softmax(logits / temperature, -1), 0.0)
        assert torch.allclose(torch.zeros_like(kept).scatter(1, order, sorted_p), kept, atol=1e-6)


def test_draws_follow_the_filtered_distribution():
    from r1cli.generation.decode import pick

    p = torch.tensor([0.5, 0.3, 0.15, 0.05])
    rows = 40_000
    logits = p.log().expand(rows, 4)
    uniform = torch.rand(rows, generator=torch.Generator().manual_seed(1))
    # top_p 0.9: the tokens before the last hold 0.95 >= 0.9, so it is dropped and the rest renormalized
    freq = torch.bincount(pick(logits, uniform, 1.0, 0.9), minlength=4) / rows
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.15, 0.0]) / 0.95, atol=0.01)
    # temperature 0.5 squares the probabilities before renormalizing; top_p 1 drops nothing
    freq = torch.bincount(pick(logits, uniform, 0.5, 1.0), minlength=4) / rows
    assert torch.allclose(freq, p**2 / (p**2).sum(), atol=0.01)
    assert torch.equal(pick(logits[:3], None, 0.0, 1.0), torch.zeros(3, dtype=torch.long))


def test_buffer_cache_layer_holds_what_torch_cat_would():
    from r1cli.generation.cache import BufferLayer

    g = torch.Generator().manual_seed(0)
    layer, keys, values = BufferLayer(capacity=400), [], []
    for t in [5] + [1] * 300:  # a prefill, then one token a step: the buffer outgrows its first size
        k, v = torch.randn(3, 2, t, 4, generator=g), torch.randn(3, 2, t, 4, generator=g)
        got_k, got_v = layer.update(k, v)
        keys.append(k)
        values.append(v)
        assert torch.equal(got_k, torch.cat(keys, 2)) and torch.equal(got_v, torch.cat(values, 2))
    assert layer.get_seq_length() == 305 and layer.k_buf.shape[2] <= 400
    layer.batch_select_indices(torch.tensor([2, 0]))
    assert torch.equal(layer.keys, torch.cat(keys, 2)[[2, 0]])
    assert torch.equal(layer.values, torch.cat(values, 2)[[2, 0]])
    layer.batch_repeat_interleave(2)
    assert torch.equal(layer.keys, torch.cat(keys, 2)[[2, 2, 0, 0]])
    k = torch.randn(4, 2, 1, 4, generator=g)
    assert torch.equal(layer.update(k, k)[0][:, :, -1:], k)


# --- batching helper ------------------------------------------------------------------------------


def test_length_sorted_batches_cover_every_prompt_once():
    lengths = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10, 11]
    batches = list(length_sorted_batches(lengths, batch_size=2, window=4))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(1 <= len(b) <= 2 for b in batches)
    # within a window (4 prompts), longest first; windows keep their order
    assert flat[:4] == [2, 0, 3, 1] and sorted(flat[4:8]) == [4, 5, 6, 7]


# --- loading --------------------------------------------------------------------------------------


def test_load_generator_from_a_checkpoint_dir(tmp_path, capsys):
    save_tiny(tmp_path / "m")
    g = load_generator(tmp_path / "m")
    assert g.model.dtype == torch.float32 and not g.model.training
    outs = g.generate(PROMPTS[:2], SamplingConfig(temperature=0.6, max_new_tokens=4), n=2, progress=True)
    assert [len(cs) for cs in outs] == [2, 2]
    assert "samples/s" in capsys.readouterr().err


def test_bad_model_dirs_are_user_errors(tmp_path):
    save_tiny(tmp_path / "m")
    with pytest.raises(UserError, match="does not exist"):
        load_generator(tmp_path / "missing")
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((tmp_path / "m" / "config.json").read_text())
    with pytest.raises(UserError, match="no weights"):
        load_generator(no_weights)
    no_tok = tmp_path / "no_tok"
    no_tok.mkdir()
    for f in ("config.json", "model.safetensors"):
        (no_tok / f).write_bytes((tmp_path / "m" / f).read_bytes())
    with pytest.raises(UserError, match="tokenizer"):
        load_generator(no_tok)
    with pytest.raises(UserError, match="is a file"):
        load_generator(tmp_path / "m" / "config.json")


def test_chat_prompt_without_chat_template_is_a_user_error():
    tok = tiny_tokenizer()
    tok.chat_template = None
    g = HFGenerator(tiny_model(tok), tok)
    with pytest.raises(UserError, match="chat template"):
        g.generate(PROMPTS[:1], GREEDY)
    assert len(g.generate(["plain text works"], GREEDY)[0]) == 1


def test_bad_sampling_params_are_user_errors(gen):
    for bad in (dict(temperature=-1), dict(top_p=0), dict(top_p=1.5), dict(max_new_tokens=0)):
        with pytest.raises(UserError):
            gen.generate(PROMPTS[:1], SamplingConfig(**bad))
    with pytest.raises(UserError, match="samples per prompt"):
        gen.generate(PROMPTS[:1], GREEDY, n=0)
    with pytest.raises(UserError, match="batch_size"):
        gen.generate(PROMPTS[:1], replace(GREEDY, batch_size=0))


# --- vllm -----------------------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_missing_is_a_clear_user_error(tmp_path):
    save_tiny(tmp_path / "m")
    with pytest.raises(UserError, match=r"vllm is not installed: pip install 'r1cli\[vllm\]'"):
        load_generator(tmp_path / "m", backend="vllm")
    with pytest.raises(UserError, match="unknown backend"):
        check_backend("tensorrt")



# --- prompts that fill the context (r1cli/generation/lengths.py) ---------------------------------------


def test_fit_prompts_counts_tokens_as_the_backend_encodes_them(gen):
    from r1cli.generation.lengths import count_tokens

    assert count_tokens(gen.tokenizer, PROMPTS) == [len(x) for x in gen.encode(PROMPTS)]


def test_fit_prompts_refuses_names_drops_or_says_lower_the_budget():
    from r1cli.generation.lengths import count_tokens, fit_prompts

    tok = tiny_tokenizer()
    prompts = ["short", "x" * 100, "a bit longer", "y" * 90]
    ids = ["a", "long1", "c", "long2"]
    lengths = count_tokens(tok, prompts)
    context, budget = 64, 32
    kw = dict(budget_name="max_new_tokens", lower="--max-new-tokens {n}", model="M", data="D")
    with pytest.raises(UserError) as e:
        fit_prompts(prompts, ids, tok, budget=budget, context=context, drop=False, **kw)
    msg = str(e.value)
    assert "2 of 4 prompts" in msg and "ids long1, long2" in msg and "--set drop_long_prompts=true" in msg
    assert f"r1 data filter D --max-prompt-tokens {context - budget} --model M" in msg
    kept, dropped = fit_prompts(prompts, ids, tok, budget=budget, context=context, drop=True, **kw)
    assert kept == [0, 2] and dropped == 2
    # nothing fits: only a smaller budget helps, and the message says how small
    big = 2 * context
    with pytest.raises(UserError, match=f"--max-new-tokens {big - min(lengths[1], lengths[3])}"):
        fit_prompts(prompts[1::2], ids[1::2], tok, budget=big - 10, context=big, drop=True, **kw)
    with pytest.raises(UserError, match="leaves no room"):
        fit_prompts(prompts, ids, tok, budget=context, context=context, drop=True, **kw)
    # a config without max_position_embeddings: nothing to check against
    assert fit_prompts(prompts, ids, tok, budget=budget, context=None, drop=False, **kw) == ([0, 1, 2, 3], 0)


def test_model_context_reads_config_json(tmp_path):
    import json

    from r1cli.generation.lengths import model_context

    (tmp_path / "config.json").write_text(json.dumps({"text_config": {"max_position_embeddings": 4096}}))
    assert model_context(tmp_path) == 4096
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "x"}))
    assert model_context(tmp_path) is None
