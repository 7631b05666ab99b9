"""Known entity shapes, offered to the span learner as hypotheses next to the induced ones.

The learner keeps a library shape for a placeholder only when it explains that placeholder's
observed spans and the resulting recipe reproduces the examples (and later verifies on held-out
cases); otherwise induced shapes win. A library shape generalizes past what ~200 examples show
(a month name or an email domain never seen in training). Every shape is non-capturing and
matches no newline, so recipes can run over newline-joined batches.
"""

from __future__ import annotations

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)

LIBRARY: dict[str, str] = {
    "ssn": r"\d{3}-\d{2}-\d{4}",
    "phone-us": r"(?:\+?1[ .-])?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}",
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    "date-numeric": r"(?:\d{1,2}/\d{1,2}/(?:\d{4}|\d{2})|\d{4}-\d{2}-\d{2}|\d{1,2}\.\d{1,2}\.\d{4})",
    "date-month": rf"(?:{_MONTH}\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}|\d{{1,2}} {_MONTH}\.? \d{{4}})",
    "zip-us": r"\d{5}(?:-\d{4})?",
    "ipv4": r"(?:\d{1,3}\.){3}\d{1,3}",
    "card": r"\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}",
    "url": r"https?://[A-Za-z0-9.-]+(?:/[A-Za-z0-9._~%/?#=&+-]*)?",
}

MONTH_WORDS = frozenset(
    w
    for m in ("January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December")
    for w in (m, m[:3], "Sept" if m == "September" else m[:3])
)
MONTH_PATTERN = _MONTH
