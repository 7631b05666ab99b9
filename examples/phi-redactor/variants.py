"""Variant sentences for the PHI redactor: the same four entities in surface formats the 200
training examples do not show, and decoy sentences with other number formats, to measure how
the learned recipes generalize (leaks) and what they destroy (over-redaction).

The entities are written with Faker (several locales) in other separators, case, spacing and
word order than ``generate.py`` uses:

* SSN: US numbers (Faker ``en_US``, SSNs and ITINs) with spaces, dots, en dashes, spaced
  dashes, or no separator (``123 45 6789``, ``123.45.6789``, ``123–45–6789``, ``123456789``);
* phone: ``phone_number()`` of thirteen locales (UK, German, French, Spanish, Italian, Dutch,
  Australian, Brazilian, Polish, Swedish, Indian, Canadian, US; extensions dropped) and US
  numbers with spaces, slashes, spaced dashes, no separators;
* email: addresses of several locales, in upper or mixed case (and frames that put them in
  angle brackets or after ``mailto:``);
* date: numeric dates with other separators and field orders (``03-21-2027``, ``2027/03/21``,
  ``21-Mar-2027``), English month names in upper or lower case, ordinals (``21st of March
  2027``), doubled spaces, and day-first dates with German, French, Spanish, Italian, Dutch and
  Portuguese month names (``21. März 2027``, ``21 de marzo de 2027``).

Sentences are the training templates plus new frames (an entity first, last, after a colon,
inside parentheses or quotes, in a list). Labels are right by construction, as in
``generate.py``. Not covered on purpose: obfuscated addresses (``name at domain dot com``),
a month and year without a day, and bare digit runs shorter than 9 digits (``50008063``), which
no shape can tell from other numbers.

    python examples/phi-redactor/variants.py --seed 1 --n 2000 --out /tmp/variants.jsonl

:func:`score` turns (rows, outputs) into per-entity leak and over-redaction rates.
"""

from __future__ import annotations

import argparse
import datetime
import difflib
import json
import random
import re
import runpy
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from faker import Faker

HERE = Path(__file__).resolve().parent
KINDS = ("ssn", "phone", "email", "date")
TOKENS = {"ssn": "[SSN]", "phone": "[PHONE]", "email": "[EMAIL]", "date": "[DATE]"}
PHONE_LOCALES = ("en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "en_AU", "pt_BR", "pl_PL", "sv_SE",
                 "en_IN", "en_CA", "en_US")
EMAIL_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "sv_SE")
MONTH_LOCALES = ("de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR")
_FIRST_DAY, _LAST_DAY = datetime.date(1945, 1, 1), datetime.date(2028, 12, 31)
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


GEN = runpy.run_path(str(HERE / "generate.py"))  # the training generator's templates, fillers and render()

Fakes = dict[str, Faker]


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


# ---------------------------------------------------------------- entity variants


def ssn(fakes: Fakes, rng: random.Random) -> str:
    f = fakes["en_US"]
    raw = f.ssn(taxpayer_identification_number_type=rng.choice(["SSN", "SSN", "ITIN"]))
    a, b, c = raw.split("-")
    return rng.choice([
        f"{a} {b} {c}", f"{a}.{b}.{c}", f"{a}{b}{c}", f"{a}\u2013{b}\u2013{c}", f"{a} - {b} - {c}",
    ])


def phone(fakes: Fakes, rng: random.Random) -> str:
    if rng.random() < 0.35:  # a US number in a format the examples do not use
        a, b, c = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
        return rng.choice([
            f"{a} {b} {c:04d}", f"{a}/{b}-{c:04d}", f"{a} - {b} - {c:04d}", f"{a}{b}{c:04d}",
            f"+1 ({a}) {b}-{c:04d}", f"+1.{a}.{b}.{c:04d}", f"+1{a}{b}{c:04d}", f"1 ({a}) {b}-{c:04d}",
            f"({a}){b}-{c:04d}", f"{a}.{b}-{c:04d}",
        ])
    loc = rng.choice(PHONE_LOCALES)
    number = re.sub(r"\s*x\d+$", "", fakes[loc].phone_number())  # an extension is not the number
    if re.fullmatch(r"\d{1,8}", number):  # a bare run of up to 8 digits: indistinguishable, see above
        return phone(fakes, rng)
    return number


def email(fakes: Fakes, rng: random.Random) -> str:
    f = fakes[rng.choice(EMAIL_LOCALES)]
    addr = rng.choice([f.free_email, f.company_email, f.email])()
    form = rng.randrange(4)
    if form == 0:
        return addr.upper()
    if form == 1:
        local, _, domain = addr.partition("@")
        return local.capitalize() + "@" + domain.capitalize()
    return addr


def date(fakes: Fakes, rng: random.Random) -> str:
    d = fakes["en_US"].date_between(start_date=_FIRST_DAY, end_date=_LAST_DAY)  # fixed: not relative to today
    m, dd, y = d.month, d.day, d.year
    name = MONTHS[m - 1]
    kind = rng.randrange(4)
    if kind == 0:  # numeric, other separators and orders
        return rng.choice([
            f"{m:02d}-{dd:02d}-{y}", f"{m}-{dd}-{y}", f"{y}/{m:02d}/{dd:02d}", f"{y}.{m:02d}.{dd:02d}",
            f"{dd:02d}.{m:02d}.{y}", f"{m:02d}/{dd:02d}/{y % 100:02d}", f"{y}-{m}-{dd}",
            f"{dd:02d}-{name[:3]}-{y}", f"{dd}-{name[:3].upper()}-{y % 100:02d}",
        ])
    if kind == 1:  # English month names: case, ordinals, spacing, word order
        mon = rng.choice([name, name[:3], name[:3] + "."])
        mon = rng.choice([mon, mon.upper(), mon.lower()])
        return rng.choice([
            f"{mon} {dd}, {y}", f"{mon} {dd} {y}", f"{dd} {mon} {y}", f"{mon} {_ordinal(dd)}, {y}",
            f"{_ordinal(dd)} {mon} {y}", f"{_ordinal(dd)} of {mon}, {y}", f"{mon}  {dd},  {y}",
            f"{mon} {dd},{y}", f"{dd} {mon}, {y}",
        ])
    loc = rng.choice(MONTH_LOCALES)
    local = _month_name(fakes[loc], m)
    local = rng.choice([local, local.lower()])
    if loc == "de_DE":
        return f"{dd}. {local} {y}"
    if loc in ("es_ES", "pt_BR"):
        return f"{dd} de {local} de {y}"
    return f"{dd} {local} {y}"


def _month_name(fake: Faker, month: int) -> str:
    """The locale's name of ``month`` (Faker's date provider keeps them by number)."""
    names = getattr(fake.provider("faker.providers.date_time"), "MONTH_NAMES", None)
    if not names:
        raise RuntimeError("this Faker has no localized month names")
    return str(names[f"{month:02d}"])


ENTITY: dict[str, Callable[[Fakes, random.Random], str]] = {"ssn": ssn, "phone": phone, "email": email, "date": date}

# new frames: the entity first or last, after a colon or an equals sign, in parentheses, quotes,
# lists; the training templates' own PHI frames are used too
FRAMES = [
    "{date}: {name} called from {phone}.",
    "{phone} is the number {first} left.",
    "SSN:{ssn}; DOB:{date}; tel:{phone}",
    "Contact ({email}) and ({phone}) on file since {date}.",
    "\"{ssn}\" is the SSN the caller gave.",
    "Callback numbers: {phone}, {phone} and {phone}.",
    "Email {email}, phone {phone}, born {date}, SSN {ssn}",
    "{name}'s record lists {email}!",
    "Was the visit on {date} or on {date}?",
    "DOB = {date} / SSN = {ssn}",
    "{email} wrote on {date} about order {order}.",
    "Please verify SSN {ssn} against the record dated {date}.",
    "{first} (tel. {phone}) asked to move the appointment to {date}.",
    "Ref {invoice}: patient born {date}, reachable at {phone} or {email}.",
    "The referral from {company} ({email}) arrived {date}.",
    "Reply to <{email}> before {date}.",
    "Link: mailto:{email} (office {phone})",
]


def _phi_templates() -> list[str]:
    return [t for t in GEN["TEMPLATES"] if any("{" + k + "}" in t for k in KINDS)] + FRAMES


# ---------------------------------------------------------------- decoys (negatives)


def _decoy_values(fake: Faker, rng: random.Random) -> dict[str, str]:
    return {
        "euro": rng.choice([f"\u20ac{rng.randint(1, 2999)},{rng.randint(0, 99):02d}",
                            f"{rng.randint(1, 999)}.{rng.randint(0, 999):03d},{rng.randint(0, 99):02d} EUR"]),
        "pound": f"\u00a3{rng.randint(1, 999)}.{rng.randint(0, 99):02d}",
        "time": rng.choice([f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}", f"{rng.randint(1, 12)}.{rng.choice(['15', '30', '45'])}pm",
                            f"{rng.randint(7, 20)}h{rng.choice(['00', '30'])}", f"{rng.randint(8, 11)}:00-{rng.randint(12, 18)}:00"]),
        "bp": f"{rng.randint(95, 160)}/{rng.randint(55, 100)}",
        "dose": rng.choice([f"{rng.randint(1, 4)} x {rng.choice([5, 10, 250, 500])} mg", f"{rng.randint(1, 9)}.{rng.randint(0, 9)} mmol/L",
                            f"1/{rng.randint(2, 4)} tablet"]),
        "year": str(rng.randint(1950, 2030)),
        "range": f"{rng.randint(2000, 2015)}-{rng.randint(2016, 2030)}",
        "zip": rng.choice([f"{rng.randint(10000, 99999)}", f"{rng.randint(10000, 99999)}-{rng.randint(1000, 9999)}"]),
        "count": f"{rng.randint(1, 999):,}" if rng.random() < 0.5 else f"{rng.randint(1000, 999999):,}",
        "ver": f"v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}",
        "lot": rng.choice([f"LOT {rng.randint(1000, 9999)}-{rng.randint(100, 999)}", f"batch {rng.randint(10, 99)}-{rng.randint(10, 99)}",
                           f"#{rng.randint(100000, 999999)}"]),
        "score": f"{rng.randint(1, 10)}/10",
        "name": fake.name(),
        "city": fake.city(),
    }


DECOY_FRAMES = [
    "Blood pressure was {bp} at {time}; dose {dose}.",
    "The invoice of {euro} (about {pound}) is due; ref {lot}.",
    "Between {range} the clinic served {count} patients in ZIP {zip}.",
    "{name} from {city} rated the visit {score} in {year}.",
    "Update the scanner to {ver} before {time}.",
    "Pick up {dose} from {lot}; {count} left in stock.",
    "Office hours {time}; parking costs {euro}.",
    "Since {year} the ward has {count} beds and a {score} rating.",
]


def _fill(template: str, fake: Faker, fakes: Fakes, rng: random.Random, decoys: dict[str, str] | None = None
          ) -> tuple[str, str, list[tuple[str, str]]]:
    entities: list[tuple[str, str]] = []

    def slot(name: str) -> tuple[str, str]:
        if name in ENTITY:
            value = ENTITY[name](fakes, rng)
            entities.append((name, value))
            return value, TOKENS[name]
        value = decoys[name] if decoys and name in decoys else GEN["FILLERS"][name](fake, rng)
        return value, value

    text, redacted = GEN["render"](template, fake, rng, slot)
    return text, redacted, entities


def _fakes(seed: int) -> Fakes:
    out: Fakes = {}
    for i, loc in enumerate(sorted({*PHONE_LOCALES, *EMAIL_LOCALES, *MONTH_LOCALES, "en_US"})):
        f = Faker(loc)
        f.seed_instance(seed * 1000 + i)
        out[loc] = f
    return out


def generate(seed: int, n: int, negatives: float = 0.2) -> list[dict[str, Any]]:
    """``n`` rows ``{"input", "output", "entities": [[kind, value], …]}``; a share ``negatives``
    of them are decoy sentences (no entity, output = input)."""
    rng = random.Random(seed)
    fakes = _fakes(seed)
    fake = fakes["en_US"]
    phi = _phi_templates()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(rows) < n:
        if rng.random() < negatives:
            decoys = _decoy_values(fake, rng)
            text, redacted, ents = _fill(rng.choice(DECOY_FRAMES), fake, fakes, rng, decoys)
        else:
            text, redacted, ents = _fill(rng.choice(phi), fake, fakes, rng)
        if text in seen:
            continue
        seen.add(text)
        rows.append({"input": text, "output": redacted, "entities": [list(e) for e in ents]})
    return rows


# ---------------------------------------------------------------- scoring

_WORD = re.compile(r"\[[A-Z]+\]|[^\W_]+|[^\w\s]", re.UNICODE)
_PIECE = re.compile(r"[^\W_]+", re.UNICODE)


def _pieces(value: str) -> list[str]:
    """The parts of an entity that would identify it if left in the output: runs of two or more
    digits, and words of three or more letters (a single-digit day, or a two-letter TLD such as
    "de" that the sentence may hold as a word, identifies nothing)."""
    return [p for p in _PIECE.findall(value) if len(p) >= (2 if p.isdigit() else 3)]


def _leaked(value: str, output: str, expected: str) -> bool:
    """Some identifying piece of ``value`` is in ``output`` more often than the expected output has it."""
    have = Counter(_PIECE.findall(output))
    want = Counter(_PIECE.findall(expected))
    return any(have[p] > want[p] for p in _pieces(value))


def _over(output: str, expected: str) -> set[str]:
    """Placeholders in ``output`` that stand where the expected output keeps text."""
    out, exp = _WORD.findall(output), _WORD.findall(expected)
    found: set[str] = set()
    placeholders = set(TOKENS.values())
    ops = difflib.SequenceMatcher(None, exp, out, autojunk=False).get_opcodes()  # short sentences only
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            continue
        kept_text = any(t not in placeholders and _PIECE.fullmatch(t) for t in exp[i1:i2])
        extra = Counter(t for t in out[j1:j2] if t in placeholders) - Counter(t for t in exp[i1:i2] if t in placeholders)
        if kept_text or extra:
            found.update(k for k, tok in TOKENS.items() if tok in out[j1:j2] and (kept_text or extra[tok]))
    return found


def score(rows: Sequence[dict[str, Any]], outputs: Sequence[str | None]) -> dict[str, Any]:
    """Per entity kind: sentences holding it, the share where it was left (partly) in clear, and
    the share of all sentences where its placeholder replaced text that is not that entity."""
    holding: Counter[str] = Counter()
    leaked: Counter[str] = Counter()
    over: Counter[str] = Counter()
    examples: dict[str, list[str]] = {k: [] for k in KINDS}
    negatives = wrong_negatives = 0
    for row, out in zip(rows, outputs, strict=True):
        got = out if isinstance(out, str) else row["input"]  # no answer: the input stays in clear
        kinds = {k for k, _ in row["entities"]}
        holding.update(kinds)
        for kind in kinds:
            if any(_leaked(v, got, row["output"]) for k, v in row["entities"] if k == kind):
                leaked[kind] += 1
                if len(examples[kind]) < 5:
                    examples[kind].append(got)
        over.update(_over(got, row["output"]))
        if not row["entities"]:
            negatives += 1
            wrong_negatives += got != row["input"]
    n = len(rows)
    per = {
        k: {
            "sentences": holding[k],
            "leaked": leaked[k],
            "leak_rate": round(leaked[k] / holding[k], 4) if holding[k] else 0.0,
            "over_redacted": over[k],
            "over_rate": round(over[k] / n, 4) if n else 0.0,
            "leak_examples": examples[k],
        }
        for k in KINDS
    }
    return {"rows": n, "negatives": negatives, "negatives_changed": wrong_negatives, "entities": per}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    rows = generate(args.seed, args.n)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} variant sentences to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
