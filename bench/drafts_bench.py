"""Recipe drafts vs plain decoding vs prompt-lookup decoding on JSON-shaped outputs (see tps.py).

The task: turn a sentence about a contact into ``{"city","company","email","name","phone"}``
(keys sorted, as the runtime renders JSON). 60 examples come from Faker with a fixed seed; the
draft table is ``kolmbuild.recipes.learn_drafts`` over their outputs. Base SmolLM2 (no adapter)
is steered into the format by two worked examples in the prompt, identical for every decoder.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

N_EXAMPLES = 60
N_QUERIES = 6
MAX_TOKENS = 96
DESCRIPTION = "Extract the contact's city, company, email, name and phone from the sentence."


def contacts(n: int, seed: int) -> list[tuple[str, dict[str, str]]]:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    rows = []
    for _ in range(n):
        card = {"city": fake.city(), "company": fake.company(), "email": fake.email(), "name": fake.name(),
                "phone": fake.numerify("###-###-####")}
        text = (f"{card['name']} works at {card['company']} in {card['city']}; write to {card['email']} "
                f"or call {card['phone']}.")
        rows.append((text, card))
    return rows


def render(card: dict[str, str]) -> str:
    from kolmbuild.runtime.shape import input_text

    return input_text(card)  # the runtime's (and training's) JSON rendering: sorted keys


def messages(shots: list[tuple[str, dict[str, str]]], text: str) -> list[dict[str, str]]:
    from kolmbuild.config.models import ShapeSpec
    from kolmbuild.runtime.prompt import system_prompt

    msgs = [{"role": "system", "content": system_prompt(DESCRIPTION, ShapeSpec(output="json"))}]
    for q, a in shots:
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": render(a)}]
    return [*msgs, {"role": "user", "content": text}]


def drafts_vs_plain(rounds: int, threads: int) -> dict[str, Any]:
    from llama_cpp import Llama
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    from kolmbuild.models.resolve import bundled_smollm2
    from kolmbuild.recipes import learn_drafts
    from kolmbuild.runtime import RuntimeOptions
    from kolmbuild.runtime.llm import LlamaRunner, _quiet_stderr

    base = bundled_smollm2()
    data = contacts(N_EXAMPLES + 2 + N_QUERIES, seed=7)
    train, shots, queries = data[:N_EXAMPLES], data[N_EXAMPLES : N_EXAMPLES + 2], data[N_EXAMPLES + 2 :]
    table = learn_drafts([card for _, card in train])
    opts = RuntimeOptions(n_threads=threads)
    plain = LlamaRunner(base, None, opts, with_drafts=False)
    drafted = LlamaRunner(base, None, opts, with_drafts=True)
    with _quiet_stderr():
        lookup = Llama(model_path=str(base), n_ctx=opts.n_ctx, n_batch=opts.n_batch, n_threads=threads,
                       n_threads_batch=threads, seed=opts.seed, verbose=False, logits_all=True,
                       draft_model=LlamaPromptLookupDecoding(max_ngram_size=2, num_pred_tokens=10))
    prompts = [plain.chat_tokens(messages(shots, q)) for q, _ in queries]
    draft = drafted.draft
    assert draft is not None

    oracles: list[Oracle] = []

    def run(name: str) -> tuple[float, int, list[str]]:
        llm = {"plain": plain.llm, "recipe_drafts": drafted.llm, "prompt_lookup": lookup, "oracle_drafts": drafted.llm}[name]
        texts, tokens, seconds = [], 0, 0.0
        for i, toks in enumerate(prompts):
            if name == "recipe_drafts":
                draft.begin(table, len(toks))
            elif name == "oracle_drafts":
                draft.begin(oracles[i], len(toks))
            t0 = time.perf_counter()
            out = llm.create_completion(prompt=toks, max_tokens=MAX_TOKENS, temperature=0.0)
            seconds += time.perf_counter() - t0
            tokens += out["usage"]["completion_tokens"]
            texts.append(out["choices"][0]["text"])
        return seconds, tokens, texts

    names = ["plain", "recipe_drafts", "prompt_lookup"]
    reference = {n: run(n)[2] for n in names}  # warm-up: prompt caches, page cache
    # the ceiling: a draft that always proposes plain decoding's own continuation
    oracles.extend(Oracle(t) for t in reference["plain"])
    names.append("oracle_drafts")
    reference["oracle_drafts"] = run("oracle_drafts")[2]
    tps: dict[str, list[float]] = {n: [] for n in names}
    tokens_seen = 0
    proposed = 0
    for i in range(rounds):
        order = names[i % len(names) :] + names[: i % len(names)]  # rotate so load drift hits each alike
        for n in order:
            proposed0 = draft.proposed_total
            seconds, tokens, texts = run(n)
            if n == "recipe_drafts":
                proposed += draft.proposed_total - proposed0
            tps[n].append(tokens / seconds)
            if n == "plain":
                tokens_seen += tokens
            assert texts == reference[n]
    med = {n: statistics.median(v) for n, v in tps.items()}
    parsed = sum(1 for t in reference["plain"] if _is_json(t))
    exact = sum(1 for t, (_, card) in zip(reference["plain"], queries, strict=True) if _is_json(t) and json.loads(t) == card)
    plain.close()
    drafted.close()
    lookup.close()
    return {
        "queries": len(queries),
        "max_tokens": MAX_TOKENS,
        "draft_table_entries": len(table),
        "plain_outputs_json": parsed,
        "plain_outputs_exact": exact,
        # greedy either way, but batched verification changes llama.cpp's float sums: near-ties may flip
        "same_output_as_plain": {n: sum(a == b for a, b in zip(reference[n], reference["plain"], strict=True))
                                 for n in names if n != "plain"},
        "plain_tokens_per_s": round(med["plain"], 2),
        "recipe_drafts_tokens_per_s": round(med["recipe_drafts"], 2),
        "prompt_lookup_tokens_per_s": round(med["prompt_lookup"], 2),
        "drafts_vs_plain": round(med["recipe_drafts"] / med["plain"], 3),
        "drafts_vs_prompt_lookup": round(med["recipe_drafts"] / med["prompt_lookup"], 3),
        "oracle_drafts_tokens_per_s": round(med["oracle_drafts"], 2),
        "oracle_vs_plain": round(med["oracle_drafts"] / med["plain"], 3),
        "recipe_draft_tokens_proposed_per_output_token": round(proposed / max(1, tokens_seen), 3),
        "target_vs_plain": 1.5,
    }


class Oracle:
    """Proposes the rest of a known output: what a perfect draft table would say."""

    def __init__(self, text: str) -> None:
        self.text = text

    def propose(self, text_so_far: str) -> str:
        return self.text[len(text_so_far) :] if self.text.startswith(text_so_far) else ""


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True
