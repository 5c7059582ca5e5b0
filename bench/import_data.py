"""A CSV of customers with awkward values, and what an import of it must refuse and keep.

Row kinds (by row number modulo 20): a bad phone, an undefined property, an exact duplicate of
the row before, a number that is not one, a blocked identifier; every other row is valid and
carries quotes, commas, CR/LF inside cells, unicode, empty cells and lists both ways.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

DEFINITIONS = (("plan", "STRING"), ("score", "NUMBER"), ("vip", "BOOLEAN"), ("notes", "STRING"))
HEADER = [
    "userId",
    "identity.WHATSAPP",
    "identity.EMAIL",
    "firstName",
    "lastName",
    "plan",
    "score",
    "vip",
    "notes",
    "tags",
    "favouriteColour",
]
_FIRST = ["Asha", "José", "Zoë", "Łukasz", "Nguyễn", "Søren", "Αθηνά", "Анна", "明", "O'Neil"]
_LAST = ["Rao", "O'Brien", "García-López", "Müller", "Đặng", "Ørsted", "Παπάς", "Иванова"]


@dataclass
class Expected:
    """What the import must end with: refused rows (number -> code) and accepted rows by
    userId with the values a profile must hold."""

    refused: dict[int, str] = field(default_factory=dict)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: int = 0


def phone(i: int) -> str:
    return f"+9198{i:08d}"


def awkward_csv(n: int) -> tuple[bytes, Expected]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    expected = Expected(rows=n)
    previous: list[str] = []
    for number in range(1, n + 1):
        kind = number % 20
        if kind == 3 and previous:
            writer.writerow(previous)  # an exact duplicate: accepted, changes nothing new
            continue
        user = f"user-{number}@example.com" if number % 2 else f"crm-{number}"
        cells = {
            "userId": user,
            "identity.WHATSAPP": phone(number) if number % 3 else "",
            "identity.EMAIL": f"mail{number}@example.org" if number % 5 == 0 else "",
            "firstName": _FIRST[number % len(_FIRST)],
            "lastName": _LAST[number % len(_LAST)] if number % 4 else "",
            "plan": f'gold, "annual" №{number}',
            "score": str(number / 4) if number % 7 else "",
            "vip": "true" if number % 2 else "no",
            "notes": f"line one\r\nline two, with «quotes» and 😀 {number}"
            if number % 6 == 0
            else "",
            "tags": '["a,b","vip"]' if number % 2 else "beta;ünïcode",
            "favouriteColour": "",
        }
        refused = None
        if kind == 1:
            cells["identity.WHATSAPP"] = "12345"  # not a phone number
            refused = "VALIDATION_FAILED"
        elif kind == 5:
            cells["favouriteColour"] = "teal"
            refused = "PROPERTY_NOT_DEFINED"
        elif kind == 7:
            cells["score"] = "twelve"
            refused = "VALIDATION_FAILED"
        elif kind == 9:
            cells["userId"] = "undefined"
            refused = "BLOCKED_IDENTIFIER"
        row = [cells[name] for name in HEADER]
        writer.writerow(row)
        previous = row
        if refused is not None:
            expected.refused[number] = refused
            continue
        values: dict[str, Any] = {
            "firstName": cells["firstName"],
            "plan": cells["plan"],
            "vip": number % 2 == 1,
            "tags": ["a,b", "vip"] if number % 2 else ["beta", "ünïcode"],
        }
        if cells["lastName"]:
            values["lastName"] = cells["lastName"]
        if cells["score"]:
            values["score"] = number / 4
        if cells["notes"]:
            values["notes"] = cells["notes"]
        if cells["identity.WHATSAPP"]:
            values["phone"] = phone(number)
            values["country"] = "IN"
        expected.accepted[user] = values
    return out.getvalue().encode(), expected
