"""What must hold of the stored profiles once no operation is under way, and the report of a
check against it (the scan itself is the store's: store.check).

Each kind of problem has a severity: an error breaks a rule the service relies on (a key that
leads nowhere, a record on a profile that no longer holds records, a summary that lies); a
warning wastes something without breaking a rule (a reserved place in a key ledger that no
identity fills). A report is clean when it holds no errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

# How long an operation may stay half-done before recovery takes it over (the server's own
# periodic recovery uses the same window).
RECOVERY_WINDOW_SECONDS = 30.0
MAX_EXAMPLES = 5


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class ProblemKind(StrEnum):
    """One rule a stored profile, identity key, event or conversation can break."""

    KEY_WITHOUT_PROFILE = "key_without_profile"
    USER_ID_KEY_MISMATCH = "user_id_key_mismatch"
    USER_ID_WITHOUT_KEY = "user_id_without_key"
    RECORD_ON_MERGED = "record_on_merged"
    RECORD_ON_ERASED = "record_on_erased"
    RECORD_WITHOUT_PROFILE = "record_without_profile"
    STALLED_OPERATION = "stalled_operation"
    UNSETTLED_EVENT = "unsettled_event"
    SUMMARY_MISMATCH = "summary_mismatch"
    REDIRECT_CYCLE = "redirect_cycle"
    BROKEN_REDIRECT = "broken_redirect"
    REDIRECT_TO_ERASED = "redirect_to_erased"
    GHOST_PROFILE = "ghost_profile"
    KEY_NOT_IN_LEDGER = "key_not_in_ledger"
    LEAKED_RESERVATION = "leaked_reservation"

    @property
    def severity(self) -> Severity:
        return Severity.WARNING if self is ProblemKind.LEAKED_RESERVATION else Severity.ERROR

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self]


DESCRIPTIONS: Mapping[ProblemKind, str] = {
    ProblemKind.KEY_WITHOUT_PROFILE: "an identity key whose profile does not exist",
    ProblemKind.USER_ID_KEY_MISMATCH: "a userId key whose profile has another userId, or none",
    ProblemKind.USER_ID_WITHOUT_KEY: "an active profile whose userId key is not bound to it",
    ProblemKind.RECORD_ON_MERGED: "an identity key, event or conversation on a merged profile",
    ProblemKind.RECORD_ON_ERASED: "an identity key, event or conversation on an erased profile",
    ProblemKind.RECORD_WITHOUT_PROFILE: "an event or conversation whose profile does not exist",
    ProblemKind.STALLED_OPERATION: "a birth, merge, unmerge or erasure half-done for over 30 s",
    ProblemKind.UNSETTLED_EVENT: "an event still pending after 30 s",
    ProblemKind.SUMMARY_MISMATCH: "an active profile whose event summaries differ from its events",
    ProblemKind.REDIRECT_CYCLE: "a merged profile whose redirects loop (or outrun 16 hops)",
    ProblemKind.BROKEN_REDIRECT: "a merged profile whose chain of redirects ends in no profile",
    ProblemKind.REDIRECT_TO_ERASED: "a merged profile whose chain ends in an erased profile",
    ProblemKind.GHOST_PROFILE: "an active profile that holds no identity key",
    ProblemKind.KEY_NOT_IN_LEDGER: "an identity key its active profile's key ledger lacks",
    ProblemKind.LEAKED_RESERVATION: "a key ledger entry that no identity bound to it fills",
}


@dataclass
class Report:
    """How many problems of each kind a scan found, with a few example ids of each."""

    counts: dict[ProblemKind, int] = field(default_factory=dict)
    examples: dict[ProblemKind, list[str]] = field(default_factory=dict)

    def add(self, kind: ProblemKind, example: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < MAX_EXAMPLES:
            shown.append(example)

    def count(self, kind: ProblemKind) -> int:
        return self.counts.get(kind, 0)

    def found(self) -> dict[ProblemKind, int]:
        """The kinds found at least once, with their counts."""
        return {kind: n for kind, n in self.counts.items() if n}

    @property
    def problems(self) -> int:
        return sum(n for kind, n in self.counts.items() if kind.severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(n for kind, n in self.counts.items() if kind.severity is Severity.WARNING)

    @property
    def clean(self) -> bool:
        return self.problems == 0

    def lines(self) -> list[str]:
        """One line per kind (its count, up to five example ids), then `clean` or `N problems`."""
        lines = []
        for kind in ProblemKind:
            n = self.count(kind)
            line = f"{kind.value:<24} {n:>7}"
            if kind.severity is Severity.WARNING:
                line += "  (warning)"
            if n:
                line += "  e.g. " + ", ".join(self.examples.get(kind, ()))
            lines.append(line)
        warnings = f" ({_plural(self.warnings, 'warning')})" if self.warnings else ""
        verdict = "clean" if self.clean else _plural(self.problems, "problem")
        lines.append(verdict + warnings)
        return lines


@dataclass(frozen=True, slots=True)
class Repaired:
    """What a repair pass changed."""

    births: int = 0
    merges: int = 0
    erasures: int = 0
    unmerges: int = 0
    events_settled: int = 0
    records_moved: int = 0
    records_deleted: int = 0
    user_ids: int = 0
    summaries: int = 0
    ledgers: int = 0

    def line(self) -> str:
        """What was done, in one line (only what happened)."""
        parts = [
            (self.births, _plural(self.births, "birth") + " finished or abandoned"),
            (self.merges, _plural(self.merges, "merge") + " finished or released"),
            (self.erasures, _plural(self.erasures, "erasure") + " finished"),
            (self.unmerges, _plural(self.unmerges, "unmerge") + " finished"),
            (self.events_settled, _plural(self.events_settled, "event") + " settled"),
            (self.records_moved, _plural(self.records_moved, "record") + " moved to a survivor"),
            (self.records_deleted, _plural(self.records_deleted, "record") + " deleted"),
            (self.user_ids, _plural(self.user_ids, "userId key") + " settled"),
            (self.summaries, f"event summaries of {_plural(self.summaries, 'profile')} recomputed"),
            (self.ledgers, _plural(self.ledgers, "key ledger") + " rebuilt"),
        ]
        done = [text for n, text in parts if n]
        return "repaired: " + ("; ".join(done) if done else "nothing")


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"
