"""Known entity shapes, offered to the span learner as hypotheses next to the induced ones.

The learner keeps a library shape for a placeholder only when it explains that placeholder's
observed spans and the resulting recipe reproduces the examples (and later verifies on held-out
cases); otherwise induced shapes win. A library shape generalizes past what ~200 examples show
(a month name or an email domain never seen in training).

Shapes are written in the form the span executor compiles (see :mod:`kolmbuild.recipes.shape`):
alternatives ``(first, rest)`` whose ``first`` is one bracketed character class, or an anchored
shape (``left`` class run, ``anchor`` character, ``right`` regex) for emails. No shape matches a
newline, so recipes can run over newline-joined batches.
"""

from __future__ import annotations

from kolmbuild.recipes.shape import Alt, Anchored, Shape

_MONTH_TAILS = {
    "J": "(?:an(?:uary)?|une?|uly?)",
    "F": "eb(?:ruary)?",
    "M": "(?:ar(?:ch)?|ay)",
    "A": "(?:pr(?:il)?|ug(?:ust)?)",
    "S": "ep(?:t(?:ember)?)?",
    "O": "ct(?:ober)?",
    "N": "ov(?:ember)?",
    "D": "ec(?:ember)?",
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
         "Sep": "t(?:ember)?", "Oct": "ober", "Nov": "ember", "Dec": "ember"}


def month_alts(tail: str) -> list[Alt]:
    """A month name (full or abbreviated) followed by ``tail``: one alternative whose first class
    is the months' initials. The next two letters are a branch of literals (each checked in one
    step), a three-letter lookbehind confirms the abbreviation, and the long form is added only
    after a real month (so a capitalized word costs a couple of character checks)."""
    seconds = sorted({m[1:] for m in _ABBR})
    longs = "|".join(f"(?<={k}){v}" for k, v in _LONG.items())
    rest = f"(?:{'|'.join(seconds)})(?<={'|'.join(_ABBR)})(?:{longs})?"
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
        *month_alts(rf"\.? {_D}{{1,2}}(?:st|nd|rd|th)?,? {_D}{{4}}"),
        Alt(_D, rf"{_D}? {MONTH_PATTERN}\.? {_D}{{4}}"),
    )),
    "zip-us": Shape((Alt(_D, rf"{_D}{{4}}(?:-{_D}{{4}})?"),)),
    "ipv4": Shape((Alt(_D, rf"{_D}{{0,2}}(?:\.{_D}{{1,3}}){{3}}"),)),
    "card": Shape((Alt(_D, rf"{_D}{{3}}[ -]{_D}{{4}}[ -]{_D}{{4}}[ -]{_D}{{4}}"),)),
    "url": Shape((Alt("[h]", r"ttps?://[A-Za-z0-9.-]+(?:/[A-Za-z0-9._~%/?#=&+-]*)?"),)),
}
