"""Generate the support-router examples: customer messages labelled with the queue that owns them.

Deterministic (seeded), so the committed train.jsonl / eval.jsonl are reproducible:

    python examples/support-router/generate.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

QUEUES: dict[str, dict[str, list[str]]] = {
    "billing": {
        "asks": [
            "I was charged twice for {thing}", "why is there a {amount} fee on my invoice",
            "please refund the {amount} you took for {thing}", "my card was declined when paying for {thing}",
            "can I get a receipt for {thing}", "the invoice for {month} shows the wrong amount",
            "how do I change the card you bill for {thing}", "I cancelled {thing} but you still charged me",
        ],
        "things": ["my subscription", "the annual plan", "order 4471", "the premium tier", "last month"],
    },
    "technical": {
        "asks": [
            "the app crashes when I open {feature}", "I get error {code} when I try {feature}",
            "{feature} has been down since this morning", "the page for {feature} will not load",
            "sync stopped working on {device}", "{feature} is very slow on {device}",
            "after the update {feature} shows a blank screen", "I cannot connect {device} to the app",
        ],
        "things": ["the dashboard", "export", "search", "the calendar", "notifications", "uploads"],
    },
    "account": {
        "asks": [
            "I forgot my password and the reset email never came", "how do I change the email on my account",
            "please delete my account and my data", "I am locked out after too many login attempts",
            "can I add a second user to my account", "how do I turn on two-factor login",
            "I want to change my username to {name}", "my account shows someone else's name, {name}",
        ],
        "things": [],
    },
    "shipping": {
        "asks": [
            "where is my package, it was due {day}", "the tracking number for order {order} does not work",
            "my order {order} arrived damaged", "can you ship to {city} instead",
            "order {order} is missing an item", "how long does delivery to {city} take",
            "the courier left my parcel at the wrong address", "I need order {order} by {day}, can you expedite",
        ],
        "things": [],
    },
}
FILL = {
    "amount": ["$12.99", "$40", "$7.50", "€19", "$120"],
    "month": ["March", "June", "October", "December"],
    "code": ["500", "E-1042", "403", "timeout 0x12"],
    "device": ["my iPhone", "Android", "the desktop app", "my tablet"],
    "name": ["Dana Q", "Lee", "Sam Ortiz", "Kim"],
    "day": ["Monday", "yesterday", "last week", "Friday"],
    "order": ["8812", "55-301", "A1093", "77120"],
    "city": ["Lyon", "Toronto", "Austin", "Osaka"],
}
OPENERS = ["", "Hi, ", "Hello team, ", "Urgent: ", "Hey - ", "Good morning. "]
CLOSERS = ["", " Thanks.", " Please help.", " Thank you!", " This is the second time I ask."]


def message(rng: random.Random, queue: str) -> str:
    spec = QUEUES[queue]
    text = rng.choice(spec["asks"])
    fill = {k: rng.choice(v) for k, v in FILL.items()}
    fill["thing"] = rng.choice(spec["things"] or ["my account"])
    fill["feature"] = rng.choice(QUEUES["technical"]["things"])
    body = text.format(**fill)
    return rng.choice(OPENERS) + body[0].upper() + body[1:] + "." + rng.choice(CLOSERS)


def generate(n: int, seed: int, exclude: set[str] = frozenset()) -> list[dict[str, str]]:
    """``n`` distinct messages, round-robin over the queues, none of them in ``exclude``."""
    rng = random.Random(seed)
    rows, seen = [], set(exclude)
    queues = sorted(QUEUES)
    while len(rows) < n:
        q = queues[len(rows) % len(queues)]
        m = message(rng, q)
        if m not in seen:
            seen.add(m)
            rows.append({"input": m, "output": q})
    return rows


def main() -> None:
    train = generate(160, seed=1)
    held_out = generate(60, seed=2, exclude={r["input"] for r in train})  # never seen in training
    for name, rows in (("train", train), ("eval", held_out)):
        with open(HERE / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
