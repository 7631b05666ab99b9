"""Generate the PHI redactor's labeled examples, deterministically (Faker, seeded).

Each sentence is assembled from a template whose slots are filled twice at once: the input gets
the fake value, the output gets its placeholder, so the labels are right by construction.

* PHI (redacted): US social security numbers, phone numbers in six formats, email addresses,
  calendar dates in six formats  ->  [SSN] [PHONE] [EMAIL] [DATE].
* Decoys (kept as they are): order / invoice / ticket numbers, prices, clock times, versions,
  room numbers, quantities, percentages; names and places are not redacted either.

    python examples/phi-redactor/generate.py                 # writes train.jsonl and eval.jsonl here
    python examples/phi-redactor/generate.py --seed 7 --train 0 --eval 500 --out /tmp/fresh
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

from faker import Faker
from faker.providers.date_time import Provider as DateTimeProvider

# ---------------------------------------------------------------- PHI values

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def ssn(fake: Faker, rng: random.Random) -> str:
    return f"{rng.randint(100, 899):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def phone(fake: Faker, rng: random.Random) -> str:
    a, b, c = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
    return rng.choice([
        f"({a}) {b}-{c:04d}",
        f"{a}-{b}-{c:04d}",
        f"{a}.{b}.{c:04d}",
        f"+1 {a} {b} {c:04d}",
        f"+1-{a}-{b}-{c:04d}",
        f"1-{a}-{b}-{c:04d}",
    ])


def email(fake: Faker, rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return fake.free_email()
    if kind == 1:
        return fake.company_email()
    if kind == 2:
        first, last = fake.first_name().lower(), fake.last_name().lower()
        return f"{first}.{last}{rng.randint(1, 99)}@{fake.domain_name()}"
    if kind == 3:
        return f"{fake.user_name()}+{rng.choice(['billing', 'news', 'rx', 'appt'])}@{fake.free_email_domain()}"
    return fake.email()


# dates lie between 80 years before and 2 years after this day (pinned, so that the files do not
# change with the day they are generated on; it is the day train.jsonl and eval.jsonl were written)
REFERENCE_DAY = datetime.date(2026, 11, 24)
FIRST_DAY = REFERENCE_DAY + datetime.timedelta(**DateTimeProvider._parse_date_string("-80y"))
LAST_DAY = REFERENCE_DAY + datetime.timedelta(**DateTimeProvider._parse_date_string("+2y"))


def date(fake: Faker, rng: random.Random) -> str:
    d = fake.date_between(start_date=FIRST_DAY, end_date=LAST_DAY)
    month = MONTHS[d.month - 1]
    return rng.choice([
        f"{d.month:02d}/{d.day:02d}/{d.year}",
        f"{d.month}/{d.day}/{d.year}",
        d.isoformat(),
        f"{month} {d.day}, {d.year}",
        f"{month[:3]} {d.day}, {d.year}",
        f"{d.day} {month} {d.year}",
    ])


PHI: dict[str, tuple[str, Callable[[Faker, random.Random], str]]] = {
    "ssn": ("[SSN]", ssn),
    "phone": ("[PHONE]", phone),
    "email": ("[EMAIL]", email),
    "date": ("[DATE]", date),
}

# ---------------------------------------------------------------- decoys and plain fillers


def order(fake: Faker, rng: random.Random) -> str:
    return rng.choice([
        f"#{rng.randint(10000, 99999)}",
        f"ORD-{rng.randint(100000, 999999)}",
        f"{rng.randint(1000, 9999)}-{rng.randint(10, 99)}",
        f"A{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
    ])


def invoice(fake: Faker, rng: random.Random) -> str:
    return rng.choice([f"INV-{rng.randint(2015, 2027)}-{rng.randint(1, 99999):05d}", f"#{rng.randint(100, 9999)}"])


def price(fake: Faker, rng: random.Random) -> str:
    return rng.choice([f"${rng.randint(1, 2999):,}.{rng.randint(0, 99):02d}", f"${rng.randint(5, 500)}"])


def clock(fake: Faker, rng: random.Random) -> str:
    return rng.choice([f"{rng.randint(1, 12)}:{rng.choice(['00', '15', '30', '45'])} {rng.choice(['AM', 'PM'])}",
                       f"{rng.randint(7, 19):02d}:{rng.choice(['00', '10', '30', '50'])}"])


def version(fake: Faker, rng: random.Random) -> str:
    return f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}"


def room(fake: Faker, rng: random.Random) -> str:
    return rng.choice([f"{rng.randint(100, 999)}", f"{rng.randint(1, 9)}{rng.choice('ABCD')}"])


def count(fake: Faker, rng: random.Random) -> str:
    return str(rng.randint(2, 40))


def percent(fake: Faker, rng: random.Random) -> str:
    return f"{rng.randint(1, 99)}%"


FILLERS: dict[str, Callable[[Faker, random.Random], str]] = {
    "name": lambda f, r: f.name(),
    "first": lambda f, r: f.first_name(),
    "city": lambda f, r: f.city(),
    "company": lambda f, r: f.company(),
    "order": order,
    "invoice": invoice,
    "price": price,
    "clock": clock,
    "version": version,
    "room": room,
    "count": count,
    "percent": percent,
}

TEMPLATES = [
    # PHI
    "Patient {name} (SSN {ssn}) was admitted on {date}.",
    "Please call {name} back at {phone} before {clock}.",
    "You can reach me at {email} or {phone}.",
    "My social security number is {ssn} and my date of birth is {date}.",
    "Send the lab results for {first} to {email} by {date}.",
    "DOB: {date}. SSN: {ssn}. Contact: {phone}.",
    "{name} updated the emergency contact to {phone} on {date}.",
    "Hi, this is {first}; my new email is {email}.",
    "The appointment on {date} was rescheduled; confirm via {email}.",
    "Verify the caller's SSN ({ssn}) before discussing the claim.",
    "Fax the referral to {phone} and copy {email}.",
    "{first} was born {date} in {city} and lists {phone} as a mobile number.",
    "Reminder: {name}'s follow-up is on {date} at {clock} in room {room}.",
    "The form shows SSN {ssn}, phone {phone}, and email {email}.",
    "Discharge date {date}; pharmacy line {phone}.",
    "Insurance for {name} expires {date}, policyholder SSN {ssn}.",
    "Please email {email} the signed consent dated {date}.",
    "Order {order} for {name} ships to the address on file; questions to {phone}.",
    "Invoice {invoice} ({price}) was sent to {email} on {date}.",
    "Between {date} and {date} the patient called {count} times from {phone}.",
    "{company} billing called from {phone} about invoice {invoice}.",
    "Lab {company} emailed {email} with the results at {clock}.",
    # no PHI (decoys and plain text)
    "Order {order} was shipped with {count} items for {price}.",
    "Invoice {invoice} totals {price}, a {percent} discount included.",
    "The clinic opens at {clock} and closes at {clock}.",
    "Room {room} needs {count} more chairs before the meeting.",
    "Upgrade the portal to version {version} before the audit.",
    "{name} from {city} asked about order {order}.",
    "Ticket {order} was closed after {count} replies.",
    "{company} raised prices by {percent} this quarter.",
    "The shift change is at {clock}; {first} covers room {room}.",
    "No personal details were shared in this conversation.",
    "{first} prefers morning appointments in {city}.",
    "Please restock aisle {room}: {count} boxes of gloves at {price} each.",
]


Slot = Callable[[str], tuple[str, str]]  # slot name -> (input text, output text)


def render(template: str, fake: Faker, rng: random.Random, slot: Slot | None = None) -> tuple[str, str]:
    """(input, output): slots filled with fake values in the input and placeholders in the output
    (``slot`` decides how, when given; ``variants.py`` uses it)."""

    def default(name: str) -> tuple[str, str]:
        if name in PHI:
            token, make = PHI[name]
            return make(fake, rng), token
        value = FILLERS[name](fake, rng)
        return value, value

    fill = slot or default
    src: list[str] = []
    dst: list[str] = []
    rest = template
    while "{" in rest:
        head, _, tail = rest.partition("{")
        name, _, rest = tail.partition("}")
        value, shown = fill(name)
        src += [head, value]
        dst += [head, shown]
    src.append(rest)
    dst.append(rest)
    return "".join(src), "".join(dst)


def generate(seed: int, n: int, avoid: set[str] | None = None) -> list[dict[str, str]]:
    """``n`` distinct examples for ``seed``; inputs in ``avoid`` are skipped."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    seen = set(avoid or ())
    rows: list[dict[str, str]] = []
    attempt = 0
    while len(rows) < n:
        # every template once first (so small sets cover them all), then at random
        template = TEMPLATES[attempt] if attempt < len(TEMPLATES) else rng.choice(TEMPLATES)
        attempt += 1
        if attempt > 50 * (n + len(TEMPLATES)):
            raise RuntimeError(f"cannot find {n} distinct sentences")
        text, redacted = render(template, fake, rng)
        if text in seen:
            continue
        seen.add(text)
        rows.append({"input": text, "output": redacted})
    return rows


def write(path: Path, rows: list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--eval", type=int, default=60)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    train = generate(args.seed, args.train)
    evals = generate(args.seed + 1_000_003, args.eval, avoid={r["input"] for r in train})
    if args.train:
        write(args.out / "train.jsonl", train)
    if args.eval:
        write(args.out / "eval.jsonl", evals)
    print(f"wrote {len(train)} train and {len(evals)} eval examples to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
