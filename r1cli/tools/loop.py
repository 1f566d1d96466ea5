"""Sampling with tools: a Generator that runs the model's tool calls and lets it go on.

    gen = ToolLoop(load_generator(model), resolve_tools(cfg.tools, cfg), cfg)   # any backend
    outs = gen.generate(prompts, sampling, n=4)          # as Generator.generate
    c = outs[0][0]; c.text                               # the whole trajectory, tool results included
    model_text(c)                                        # what the model wrote: rewards and filters read this
    c.turns                                              # [("assistant", text), ("tool", name, result), ...]

Each round samples every open trajectory once more: a completion whose text holds a `<tool_call>` block
is cut after its first `</tool_call>`, the call runs (ToolRunner: a bad call becomes an error message,
never an exception) and the chat template's text for the result (the end of the assistant turn, the
tool turn, the opening of the next assistant turn) is appended; the trajectory so far becomes the next
round's prompt. `max_new_tokens` bounds the whole trajectory, tool results included (as TRL's
max_completion_length does), so it always fits the context the prompt-length check reserved.
At most max_tool_calls + 1 calls run: the last one answers "no more tool calls" and the model then
writes its answer.

The prompts are chat messages, rendered with the tools' JSON schemas (`tools=` of the chat
template, as TRL renders them), or strings a caller rendered with `render` (reject-sample's pre-filled
`<think>`); the r1zero template cannot show tools and is refused when the recipe is resolved.
"""

from __future__ import annotations

import dataclasses

from r1cli.config import SamplingConfig
from r1cli.errors import UserError
from r1cli.tools.calls import check_template, find_first_call_end, parse_tool_calls, render_tool_result
from r1cli.tools.registry import Tool, ToolSettings
from r1cli.tools.runner import ToolRunner


def round_seed(seed: int, round_: int) -> int:
    """The seed of a round after a call: another stream per round, within 31 bits (GRPO's rollout seeds are
    drawn up to 2**62, and backends multiply a seed again)."""
    return (seed * 1_000_003 + round_ + 1) % 2**31


def model_text(completion) -> str:
    """The model's own text of a completion: its assistant turns joined, tool results left out."""
    turns = getattr(completion, "turns", None)
    if not turns:
        return completion.text
    return "".join(t[1] for t in turns if t[0] == "assistant")


def trajectory_text(turns: list) -> str:
    """The trajectory as the model saw it: its turns, and the template's text around each tool result."""
    return "".join(t[1] if t[0] == "assistant" else t[3] for t in turns)


def trajectory_messages(turns: list, prefilled: bool = False, names: bool = True) -> list[dict]:
    """The trajectory as chat messages (assistant turns, tool turns): an SFT row's reply, whose tool turns
    `r1 sft` masks. `prefilled`: the prompt ended in <think>, which the first turn gets back; `names`: the
    tool turns carry the tool's name (reject-sample's rows keep role and content only)."""
    messages = []
    for t in turns:
        if t[0] == "assistant":
            messages.append({"role": "assistant", "content": f"<think>\n{t[1]}" if prefilled and not messages else t[1]})
        else:
            messages.append({"role": "tool", **({"name": t[1]} if names else {}), "content": t[2]})
    return messages


class ToolLoop:
    """A Generator (r1cli/generation) whose completions may call tools; wraps any backend's generator."""

    def __init__(self, generator, tools: list[Tool], settings: ToolSettings):
        self.inner = generator
        self.tokenizer = generator.tokenizer
        check_template(self.tokenizer)
        self.schemas = [t.schema for t in tools]
        self.runner = ToolRunner(tools, settings)
        self.settings = settings

    @property
    def stats(self):
        return self.runner.stats

    def render(self, prompt) -> str:
        """Chat messages rendered with the tools' schemas; a string is a prompt its caller rendered (reject-sample's
        pre-filled `<think>`) and is used as it is (the r1zero template, which shows no tools, is refused in the config)."""
        if isinstance(prompt, str):
            return prompt
        messages = [prompt] if isinstance(prompt, dict) else list(prompt)
        return self.tokenizer.apply_chat_template(messages, tools=self.schemas, add_generation_prompt=True, tokenize=False)

    def generate(self, prompts: list, sampling: SamplingConfig, n: int = 1, seed: int = 0, progress=None) -> list:
        texts = [self.render(p) for p in prompts]
        outs = self.inner.generate(texts, sampling, n=n, seed=seed, progress=progress)
        budget = sampling.max_new_tokens
        open_ = []
        for i, comps in enumerate(outs):
            for j, c in enumerate(comps):
                comps[j] = dataclasses.replace(c, turns=[("assistant", c.text)])
                open_.append((i, j))
        self.runner.stats.samples += sum(len(cs) for cs in outs)
        for round_ in range(self.settings.max_tool_calls + 1):
            open_ = [(i, j) for i, j in open_ if self._call(outs[i][j], budget)]
            if not open_:
                break
            rest = [budget - outs[i][j].num_tokens for i, j in open_]
            more = self.inner.generate([texts[i] + outs[i][j].text for i, j in open_],
                                       dataclasses.replace(sampling, max_new_tokens=max(rest)), n=1,
                                       seed=round_seed(seed, round_))
            for (i, j), left, [c] in zip(open_, rest, more):
                self._extend(outs[i][j], c, left)
        return outs

    # --- one trajectory ------------------------------------------------------------------------

    def _call(self, c, budget: int) -> bool:
        """Run the call that ends the last assistant turn, if any: True when the model should go on."""
        last = c.turns[-1][1]
        end = find_first_call_end(last)
        if end is None or c.finish_reason == "length":
            return False
        [call] = parse_tool_calls(last[:end])[-1:] or [None]
        if call is None:  # cannot happen: find_first_call_end found a closing tag of a block
            return False
        calls = sum(1 for t in c.turns if t[0] == "tool")
        result, ok = self.runner.run(call, calls_before=calls)
        glue = render_tool_result(self.tokenizer, [(call.name or "tool", result)])
        c.tool_calls += 1
        c.tool_failures += not ok
        turns = c.turns[:-1] + [("assistant", last[:end]), ("tool", call.name or "tool", result, glue)]
        text = trajectory_text(turns)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) >= budget:  # no room for the result and an answer: the sample ends at its call
            c.finish_reason = "length"
            return False
        c.turns, c.text, c.token_ids, c.num_tokens = turns, text, list(ids), len(ids)
        return True

    def _extend(self, c, new, left: int) -> None:
        """Append the model's next turn (cut to the tokens it had left)."""
        text, reason = new.text, new.finish_reason
        if new.num_tokens > left:
            text = self.tokenizer.decode(new.token_ids[:left], skip_special_tokens=True)
            reason = "length"
        c.turns.append(("assistant", text))
        c.text += text
        c.token_ids = c.token_ids + list(new.token_ids[:left])
        c.num_tokens += min(new.num_tokens, left)
        c.finish_reason = reason


# --- GRPO's rollouts, in token ids ---------------------------------------------------------------


class TokenToolLoop:
    """The same loop on token ids, for GRPO's decode-loop rollouts (r1cli/training/rollouts.py): a
    completion is cut after its first `</tool_call>` token, the call runs, the template's text for the
    result is appended as tokens the model did not write (env_mask 0: TRL gives them no loss), and the
    model samples on within `max_completion_length`. `</tool_call>` must be one token (it is in Qwen's
    vocabulary and the toy's), which `check` makes sure of before the model loads."""

    def __init__(self, tokenizer, tools: list[Tool], settings: ToolSettings):
        check_template(tokenizer)
        self.tokenizer = tokenizer
        self.call_end = self.check(tokenizer)
        self.runner = ToolRunner(tools, settings)
        self.settings = settings

    @staticmethod
    def check(tokenizer) -> int:
        from r1cli.tools.calls import CALL_END

        ids = tokenizer(CALL_END, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise UserError(f"tools in GRPO's decode loop need {CALL_END} to be one token of the tokenizer (it is "
                            f"{len(ids)}): add it as a token, or set decode_loop: false")
        return ids[0]

    def run(self, prompts: list[list[int]], completions: list[list[int]], budget: int, sample, seed: int):
        """(completion ids, env_mask): `sample(prompt ids, max_new_tokens, seed)` continues each prompt once."""
        masks = [[1] * len(c) for c in completions]
        turn_start = [0] * len(completions)  # where each completion's last assistant turn begins
        calls = [0] * len(completions)
        self.runner.stats.samples += len(completions)
        open_ = list(range(len(completions)))
        for round_ in range(self.settings.max_tool_calls + 1):
            go = []
            for i in open_:
                c = completions[i]
                try:
                    end = c.index(self.call_end, turn_start[i]) + 1
                except ValueError:
                    continue
                text = self.tokenizer.decode(c[turn_start[i]:end], skip_special_tokens=False)
                [call] = parse_tool_calls(text)[-1:] or [None]
                if call is None:
                    continue
                result, _ = self.runner.run(call, calls_before=calls[i])
                calls[i] += 1
                glue = self.tokenizer(render_tool_result(self.tokenizer, [(call.name or "tool", result)]),
                                      add_special_tokens=False)["input_ids"]
                if end + len(glue) >= budget:  # no room for the result and an answer: the completion ends at its call
                    completions[i], masks[i] = c[:end], masks[i][:end]
                    continue
                completions[i] = c[:end] + glue
                masks[i] = masks[i][:end] + [0] * len(glue)
                turn_start[i] = len(completions[i])
                go.append(i)
            if not go:
                break
            more = sample([prompts[i] + completions[i] for i in go], max(budget - len(completions[i]) for i in go),
                          round_seed(seed, round_))
            for i, new in zip(go, more):
                new = new[:budget - len(completions[i])]
                completions[i] += new
                masks[i] += [1] * len(new)
            open_ = go
        return completions, masks
