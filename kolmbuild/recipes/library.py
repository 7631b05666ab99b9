"""Known entity shapes, offered to the span learner as hypotheses next to the induced ones.

The learner keeps a library shape for a placeholder only when it explains that placeholder's
observed spans and the resulting recipe reproduces the examples (and later verifies on held-out
cases); otherwise induced shapes win. A library shape generalizes past what ~200 examples show
(a month name or an email domain never seen in training).

Two libraries: :data:`LIBRARY` holds each entity in the formats a US-centric example set
usually shows (``123-45-6789``, ``(415) 555-0199``, ``March 3, 2027``), and :data:`BROAD` the
same entities in every surface format we know: other separators, spacing, case, field order and
locales (``123 45 6789``, ``+44 (0)20 7946 0958``, ``MARCH 3 2027``, ``3. März 2027``). Under
``recipes.generalize: broad`` the learner offers the broad shape first and keeps it unless it
makes a mistake the narrower one does not (see :func:`kolmbuild.recipes.span.candidates_for`).

Shapes are written in the form the span executor compiles (see :mod:`kolmbuild.recipes.shape`):
alternatives ``(first, rest)`` whose ``first`` is one bracketed character class, or an anchored
shape (``left`` class run, ``anchor`` character, ``right`` regex) for emails. No shape matches a
newline, so recipes can run over newline-joined batches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from kolmbuild.recipes.shape import Alt, Anchored, Rare, Shape

_MONTH_TAILS = {
    "J": "(?:an(?:uary|)|une?|uly?)",
    "F": "eb(?:ruary|)",
    "M": "(?:ar(?:ch|)|ay)",
    "A": "(?:pr(?:il|)|ug(?:ust|))",
    "S": "ep(?:t(?:ember|)|)",
    "O": "ct(?:ober|)",
    "N": "ov(?:ember|)",
    "D": "ec(?:ember|)",
}
MONTH_PATTERN = "(?:" + "|".join(k + v for k, v in _MONTH_TAILS.items()) + ")"
MONTH_WORDS = frozenset(
    w
    for m in ("January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December")
    for w in (m, m[:3], "Sept" if m == "September" else m[:3])
)


_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LONG = {"Jan": "uary", "Feb": "ruary", "Mar": "ch", "Apr": "il", "Jun": "e", "Jul": "y", "Aug": "ust",
         "Sep": "t(?:ember|)", "Oct": "ober", "Nov": "ember", "Dec": "ember"}


def month_alts(tail: str) -> list[Alt]:
    """A month name (full or abbreviated) followed by ``tail``: one alternative whose first class
    is the months' initials. The next two letters are a branch of literals (each checked in one
    step), a three-letter lookbehind confirms the abbreviation, and the long form is added only
    after a real month (so a capitalized word costs a couple of character checks)."""
    seconds = sorted({m[1:] for m in _ABBR})
    longs = "|".join(f"(?<={k}){v}" for k, v in _LONG.items())
    rest = f"(?:{'|'.join(seconds)})(?<={'|'.join(_ABBR)})(?:{longs}|)"
    return [Alt("[" + "".join(sorted({m[0] for m in _ABBR})) + "]", rest + tail)]


_D = "[0-9]"
_AREA_REST = rf"(?:\({_D}{{3}}\) ?|{_D}{{3}}[ .-]){_D}{{3}}[ .-]{_D}{{4}}"

# Latin letters beyond ASCII (Latin-1 Supplement and Latin Extended-A/B, without × and ÷): an
# address such as josé.garcía@correo.es is one email, not "josé" left in clear before a match.
_LATIN = "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"

LIBRARY: dict[str, Shape] = {
    "ssn": Shape((Alt(_D, rf"{_D}{{2}}-{_D}{{2}}-{_D}{{4}}"),)),
    "phone-us": Shape((
        Alt("[+]", rf"1[ .-]{_AREA_REST}"),
        Alt("[1]", rf"[ .-]{_AREA_REST}"),
        Alt("[(]", rf"{_D}{{3}}\) ?{_D}{{3}}[ .-]{_D}{{4}}"),
        Alt(_D, rf"{_D}{{2}}[ .-]{_D}{{3}}[ .-]{_D}{{4}}"),
    )),
    "email": Shape(anchored=Anchored(rf"[\w.%+{_LATIN}-]", "@", rf"[A-Za-z0-9{_LATIN}-]+(?:\.[A-Za-z0-9{_LATIN}-]+)*\.[A-Za-z]{{2,}}")),
    "date-numeric": Shape((
        Alt(_D, rf"(?:{_D}?/{_D}{{1,2}}/(?:{_D}{{4}}|{_D}{{2}})|{_D}{{3}}-{_D}{{2}}-{_D}{{2}}|{_D}?\.{_D}{{1,2}}\.{_D}{{4}})"),
    )),
    "date-month": Shape((
        *month_alts(rf"\.? {_D}{{1,2}}(?:st|nd|rd|th|),? {_D}{{4}}"),
        Alt(_D, rf"{_D}? {MONTH_PATTERN}\.? {_D}{{4}}"),
    )),
    "zip-us": Shape((Alt(_D, rf"{_D}{{4}}(?:-{_D}{{4}}|)"),)),
    "ipv4": Shape((Alt(_D, rf"{_D}{{0,2}}(?:\.{_D}{{1,3}}){{3}}"),)),
    "card": Shape((Alt(_D, rf"{_D}{{3}}[ -]{_D}{{4}}[ -]{_D}{{4}}[ -]{_D}{{4}}"),)),
    "url": Shape((Alt("[h]", r"ttps?://[A-Za-z0-9.-]+(?:/[A-Za-z0-9._~%/?#=&+-]*|)"),)),
}

# ---------------------------------------------------------------- the broad library

# Optional parts are written (?:x|) rather than (?:x)?: re runs a "?" on a group through its
# general repeat machinery (which allocates), an empty alternative costs one branch.
_SEP = "(?: ?[-\u2013] ?|[ .])"  # a separator inside an SSN: hyphen or en dash (spaced or not), space, dot
_PSEP = "(?: ?[-\u2013] ?|[ ./])"  # between the groups of a phone number (a slash too)
_PSEP_OPT = "(?: ?[-\u2013] ?|[ ./]|)"
_US_REST = rf"{_D}{{3}}{_PSEP_OPT}{_D}{{4}}"
_US_AREA = rf"(?:\({_D}{{3}}\) ?|{_D}{{3}}{_PSEP_OPT})"
# at least n more digits ahead, at most a few separators apart: a "+" or a trunk "0" starts a
# phone number only when enough digits follow
_DIGITS_AHEAD = "(?=(?:[ .()-]{{0,4}}[0-9]){{{n}}})"


def _char(ch: str, fold: bool) -> str:
    """One character as a regex; with ``fold``, a letter matches in either case (as a class, which
    ``re`` checks in one step where an ignore-case literal costs more)."""
    if fold and ch.lower() != ch.upper():
        return "[" + "".join(sorted({ch.lower(), ch.upper()})) + "]"
    return re.escape(ch)


def trie(words: Iterable[str], fold: bool = False) -> str:
    """A regex matching exactly ``words``, factored by shared prefixes so that ``re`` picks the
    branch by one character check per level instead of trying every word (a word that is a prefix
    of another becomes an optional tail, longest first). Written here because no maintained
    library emits Python regexes with case-folded classes."""
    tree: dict[str, Any] = {}
    for word in words:
        node = tree
        for ch in word.lower() if fold else word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        parts = [_char(ch, fold) + emit(sub) for ch, sub in sorted(node.items()) if ch]
        if not parts:
            return ""
        body = parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"
        if "" not in node:
            return body
        return f"(?:{body}|)" if len(parts) > 1 or len(body) > 1 else body + "?"

    return emit(tree)


_EN_MONTHS = ("jan january feb february mar march apr april may jun june jul july aug august sep sept "
              "september oct october nov november dec december").split()
_EN_MONTH = trie(_EN_MONTHS, fold=True)  # any case: MARCH, march, March, mAr
# day-first month names of other locales (as Faker's de_DE, fr_FR, es_ES, it_IT, nl_NL and pt_BR
# date providers spell them), in any case
_LOCALE_MONTHS = (
    "Januar Februar März April Mai Juni Juli August September Oktober November Dezember "
    "janvier février mars avril mai juin juillet août septembre octobre novembre décembre "
    "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre "
    "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre "
    "januari februari maart april mei juni juli augustus september oktober november december "
    "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro"
).split()
_LOCALE_MONTH = trie(_LOCALE_MONTHS, fold=True)
_ORD = "(?:st|nd|rd|th|)"
_DAY_YEAR = rf" {{1,2}}{_D}{{1,2}}{_ORD}(?:,? {{1,2}}|,){_D}{{4}}"  # " 3, 2027" after a month name
_MONTH_FIRST_CI = rf"{_EN_MONTH}\.?{_DAY_YEAR}"


def _month_first_upper() -> list[Alt]:
    """A month name with a capital initial (``March``, ``MAR``, ``Sept.``) followed by day and
    year, the rest of the name in any case. One alternative whose first class is the initials:
    the next two letters are a small trie (checked a character at a time), a look-behind confirms
    initial and letters spell a month, and the long form is tried only after a real month, so a
    capitalized word that is no month costs a few character checks."""
    seconds = trie(sorted({m[1:3] for m in _EN_MONTHS}), fold=True)
    confirm = "|".join(m[0].upper() + _fold(m[1:3]) for m in sorted({m[:3] for m in _EN_MONTHS}))
    longs = "|".join(
        f"(?<={m[0].upper()}{_fold(m[1:3])}){trie([f[3:] for f in _EN_MONTHS if f[:3] == m and len(f) > 3], fold=True)}"
        for m in sorted({m[:3] for m in _EN_MONTHS if any(f[:3] == m and len(f) > 3 for f in _EN_MONTHS)})
    )
    initials = "[" + "".join(sorted({m[0].upper() for m in _EN_MONTHS})) + "]"
    return [Alt(initials, f"{seconds}(?<={confirm})(?:{longs}|)\\.?{_DAY_YEAR}")]


def _fold(text: str) -> str:
    return "".join(_char(ch, True) for ch in text)


# Digit-first alternatives are written so that each begins with a character class or a literal
# for the character after the first digit: at a digit, re then rejects an alternative with one
# character check instead of entering it (a number in text, "12 items", passes all of them by).

# a lower-case month name cannot start a fast scan; its day and year can (after a letter and one
# or two spaces, or a dot and a space): that is the trigger for the second, case-insensitive pass
def _after_month(width: int) -> str:
    """Look-behinds: a lower-case letter, then one space, a dot and a space, or two spaces, then
    ``width`` characters (the day read so far)."""
    dots = "." * width
    return f"(?:(?<=[a-z] {dots})|(?<=[a-z]\\. {dots})|(?<=[a-z]  {dots}))"


_YEAR_AFTER_DAY = rf"(?:,? {{1,2}}|,){_D}{{4}}"


def _gated(gate: str, alternatives: Iterable[str]) -> str:
    """Alternatives behind one look-ahead every one of them needs: at a digit that fails the gate
    (most numbers in text), re skips them all for the cost of one check."""
    return f"(?={gate})(?:" + "|".join(alternatives) + ")"


# a day (and ordinal), then the year: what follows a lower-case month name. The look-behinds
# then confirm a lower-case word before the day, at the day's start.
_LOWER_MONTH_TRIGGER = Alt(_D, _gated(rf"{_D}?+(?:[nrst][dht],? {{1,2}}|, {{0,2}}| {{1,2}}){_D}{{4}}(?![0-9A-Za-z_])", [
    rf"{_D}{_after_month(2)}{_ORD}{_YEAR_AFTER_DAY}",  # march 13, 2027 / march 13th 2027
    rf"[nrst][dht]{_after_month(3)}{_YEAR_AFTER_DAY}",  # march 3rd, 2027
    rf"[, ]{_after_month(2)}(?:(?<=,) {{1,2}}|(?<=,)|(?<= ) ?){_D}{{4}}",  # march 3, 2027 / march 3 2027
]))

# every digit-first phone number: digits, 1 to 3 separators, a digit or "("; or 9 more digits
_PHONE_GATE = r"[0-9]*+[ ./()\u2013-]{1,3}+[0-9(]|[0-9]{8}"
# after the first digit, alternatives that share their next character are grouped under it, so
# re tries a group only when that character fits (one check instead of one per alternative)
_PHONE_DIGIT_FIRST = _gated(_PHONE_GATE, [
    rf"{_D}(?:"
    rf"{_D}{{8,10}}"  # 10 to 12 digits: 4155550199, 08124158683
    rf"|{_D}(?:{_PSEP_OPT}{_US_REST}"  # 415-555-0199, 415 555 0199, 415/555-0199
    rf"| {_D}{{3}} {_D}{{3}}"  # 609 141 777
    rf"|{_D}[ .]{_D}{{4}})"  # 7457 6488 (not with a hyphen: 2019-2021 is a range)
    rf"| (?:{_D}{{3}} {_D}{{2}} {_D}{{2}}|{_D}{{4}}-{_D}{{4}})"  # 22 831 38 65, 12 3915-0008
    # a trunk "0" and digit groups, at least 9 digits, not written like an SSN: 0121 496 0000,
    # 04 15 39 15 00, 0353-37 40 68; and Swedish 08-22 63 90
    rf"|(?<=0.)(?:(?={_D}{{0,3}}+[ .-]{_D}{{2}})(?!{_D}{_SEP}{_D}{{2}}{_SEP}{_D}{{4}}(?![0-9]))"  # the cheap check first
    rf"{_DIGITS_AHEAD.format(n=7)}{_D}{{0,3}}(?:[ .-]{_D}{{2,}}){{1,4}}"
    rf"|{_D}{{0,2}}-{_D}{{2,3}} {_D}{{2}} {_D}{{2}}))",
    rf" {_D}{{4}}-{_D}{{4}}",  # 1 3915-0008
    rf"[-\u2013 ./](?<=1.)(?:(?<= )[-\u2013] ?|(?<=[-\u2013]) |){_US_AREA}{_US_REST}",  # 1-800-555-0199
])

# every digit-first date: up to 3 more digits, then a separator and a digit or letter, or an
# ordinal, "of", a dot, spaces or a hyphen, "de", and a letter that can begin a month name
_MONTH_INITIALS = "".join(sorted({c for m in (*_EN_MONTHS, *_LOCALE_MONTHS) for c in (m[0].lower(), m[0].upper())}))
_MI = f"[{_MONTH_INITIALS}]"
_DATE_GATE = rf"{_D}{{0,3}}+(?:[-/][0-9A-Za-z]|\.(?:[0-9]| {_MI})|[nrst][dht](?: of|)(?: {{1,2}}|-){_MI}| (?:of |de | |){_MI})"
_EN_DAY_MONTH = rf"{_EN_MONTH}\.?(?:,? {{1,2}}{_D}{{4}}|-(?:{_D}{{4}}|{_D}{{2}}))"  # after "21 " or "21st of "
_LOCALE_DAY_MONTH = rf"(?:de |){_LOCALE_MONTH} (?:de |){_D}{{4}}"  # after "21 " or "21. "
_DATE_DIGIT_FIRST = _gated(_DATE_GATE, [
    rf"{_D}(?:"  # a day or month of two digits, or a year
    # numeric: 03/21/2027, 12-21-27, 21.03.2027 (dots only with a four-digit year: 2.14.30 is a version)
    rf"/{_D}{{1,2}}/(?:{_D}{{4}}|{_D}{{2}})|-{_D}{{1,2}}-(?:{_D}{{4}}|{_D}{{2}})|\.{_D}{{1,2}}\.{_D}{{4}}"
    # year first: 2027-3-21, 2027/03/21, 2027.03.21
    rf"|{_D}{{2}}(?:-{_D}{{1,2}}-{_D}{{1,2}}|/{_D}{{1,2}}/{_D}{{1,2}}|\.{_D}{{1,2}}\.{_D}{{1,2}})"
    # then a month name: 21st of March 2027, 21 MAR, 2027, 21-Mar-27, 21. März 2027, 21 de marzo de 2027
    rf"|[nrst][dht](?<=st|nd|rd|th)(?: of|)(?: {{1,2}}|-){_EN_DAY_MONTH}"
    rf"| (?:(?:of |)(?: |){_EN_DAY_MONTH}|{_LOCALE_DAY_MONTH})"
    rf"|-{_EN_DAY_MONTH}"
    rf"|\. {_LOCALE_DAY_MONTH})",
    # the same after a one-digit day or month: 3/21/2027, 3-21-27, 3.03.2027, 3rd of March, 3 März
    rf"/{_D}{{1,2}}/(?:{_D}{{4}}|{_D}{{2}})",
    rf"-(?:{_D}{{1,2}}-(?:{_D}{{4}}|{_D}{{2}})|{_EN_DAY_MONTH})",
    rf"\.(?:{_D}{{1,2}}\.{_D}{{4}}| {_LOCALE_DAY_MONTH})",
    rf"[nrst][dht](?<=st|nd|rd|th)(?: of|)(?: {{1,2}}|-){_EN_DAY_MONTH}",
    rf" (?:(?:of |)(?: |){_EN_DAY_MONTH}|{_LOCALE_DAY_MONTH})",
])

BROAD: dict[str, Shape] = {
    "ssn": Shape((Alt(_D, rf"{_D}{_D}(?:{_SEP}{_D}{{2}}{_SEP}|{_D}{{2}}){_D}{{4}}"),)),  # separated twice, or not at all
    "phone": Shape((
        Alt("[+]", rf"1{_PSEP_OPT}{_US_AREA}{_US_REST}"),
        Alt("[+]", _DIGITS_AHEAD.format(n=8) + rf"{_D}{{1,3}}(?: ?\(0\)|)(?:[ .-]?\({_D}{{1,5}}\)|)[ .-]?{_D}+(?:[ .-]{_D}+){{0,5}}"),
        Alt("[(]", rf"{_D}{{3}}\) ?{_US_REST}"),
        Alt("[(]", rf"0{_D}{{1,4}}\)(?:{_SEP}|){_D}{{2,}}(?:[ .-]{_D}{{2,}}){{0,3}}"),
        Alt(_D, _PHONE_DIGIT_FIRST),
    )),
    "email": LIBRARY["email"],
    "date": Shape(
        (
            *_month_first_upper(),
            Alt(_D, _DATE_DIGIT_FIRST),
        ),
        rare=(Rare(_LOWER_MONTH_TRIGGER, _MONTH_FIRST_CI),),
    ),
    "zip-us": LIBRARY["zip-us"],
    "ipv4": LIBRARY["ipv4"],
    "card": LIBRARY["card"],
    "url": LIBRARY["url"],
}
