"""Regular expressions for decimal integers in a range: how a JSON Schema ``pattern`` states the
bounds of a number sent as text, so that the OpenAPI schema shows the limit the server enforces
(with the same expression)."""

from __future__ import annotations


def integers_up_to(maximum: int, *, zero: bool = True) -> str:
    """A regular expression, without anchors, for the decimal integers from 0 (1 when not
    ``zero``) to ``maximum`` written without leading zeros."""
    digits = str(maximum)
    alternatives = ["0"] if zero else []
    if len(digits) > 1:  # every number of fewer digits
        alternatives.append(f"[1-9][0-9]{{0,{len(digits) - 2}}}")
    for position, digit in enumerate(digits):
        lowest = 1 if position == 0 else 0
        if int(digit) > lowest:  # the same digits up to here, then a smaller one, then any
            rest = len(digits) - position - 1
            tail = f"[0-9]{{{rest}}}" if rest else ""
            alternatives.append(f"{digits[:position]}[{lowest}-{int(digit) - 1}]{tail}")
    alternatives.append(digits)
    return f"(?:{'|'.join(alternatives)})"
