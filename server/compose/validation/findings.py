"""A rule violation found in a composed invoice, before it is tied to an input path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    path: str  # model path, e.g. "lines[2].vat_rate", "seller.vat_id", "" (the document)
    rule: str  # e.g. "BR-CO-25", "PEPPOL-EN16931-R003", "SE-R-006"
    text: str

    def __str__(self) -> str:
        return f"{self.path or '$'}: [{self.rule}] {self.text}"


class Collector:
    """Appends findings; `at(prefix)` gives a collector writing below a path prefix."""

    def __init__(self, out: list[Finding] | None = None, prefix: str = ""):
        self.out = out if out is not None else []
        self.prefix = prefix

    def __call__(self, path: str, rule: str, text: str) -> None:
        full = f"{self.prefix}.{path}" if self.prefix and path else (self.prefix or path)
        self.out.append(Finding(full, rule, text))

    def at(self, prefix: str) -> Collector:
        full = f"{self.prefix}.{prefix}" if self.prefix else prefix
        return Collector(self.out, full)
