"""Alerts: named conditions over a run's results, the previous run's results and the data.

A condition is written by the config's author (trusted); the values it reads are not: results come
from the model, row counts from the data, the previous run's results from the history (a file or a
server artifact anyone with access to the server can write). They are data to the expression, never
code. A condition is parsed once at config load, every name in it checked against the vocabulary
below (an unknown one is a config error), each name rewritten to a plain variable, and the tree
evaluated by simpleeval with no attribute access at all, a few pure functions, and simpleeval's own
limits on powers and string sizes. Python's ``eval`` is never involved.

What a condition reads (``Vocabulary.known_names`` lists them for one config):

- ``<result>``: a value of the config's ``results``, as this run submitted it;
- ``previous.<result>``: that value in the previous completed run;
- ``cost_usd``, ``previous.cost_usd``: the model's cost of this run and of the previous one;
- ``status``: this run's status: completed, max_iterations, budget_exceeded, refused, results_invalid,
  failed, or validation_failed (a dataset with ``on_invalid: fail`` failed its schema);
- ``data.rows``: rows over all datasets; ``data.<dataset>.rows`` (``data["north-sales"].rows`` for a
  name that is not an identifier): rows of one;
- ``validation.failed``: a dataset failed its schema (either ``on_invalid``); ``validation.failures``:
  failing values over all datasets.

A value that is not there (no previous run, no valid results) leaves the condition not evaluated, with
the reason, unless ``and``/``or`` never read it. An error while evaluating (comparing a string to a
number) is reported the same way: an alert never fails a run.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simpleeval import DEFAULT_OPERATORS, EvalWithCompoundTypes, NumberTooHigh, safe_power

from tasks.text_safety import printable

NAMESPACES = ("previous", "data", "validation")
RUN_NAMES = ("status", "cost_usd")
FUNCTIONS: dict[str, Callable[..., Any]] = {"abs": abs, "min": min, "max": max, "round": round, "len": len}
_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.Constant, ast.Name, ast.Load, ast.Call, ast.List, ast.Tuple, ast.Subscript, ast.Slice,
)
_HOW = ("comparisons (< <= == != >= >, in, not in), and, or, not, arithmetic (+ - * / // % **), "
        f"lists, and the functions {', '.join(FUNCTIONS)}")
_MAX_RESULT_BITS = 100_000  # of a power of whole numbers: enough for any threshold, far from a stall
_SHOWN_NAMES = 24
_VALUE_CHARS = 200  # of a string value, in the report, the event's payload and the notifications


class ConditionError(ValueError):
    """A condition that cannot be checked: bad syntax, an unknown name, a construct outside the language."""


class NotEvaluable(Exception):
    """A value the condition reads is not there in this run; the message says why."""


@dataclass(frozen=True)
class Vocabulary:
    """The names one config's conditions may read: its results and datasets, and the run's own."""

    results: tuple[str, ...]
    datasets: tuple[str, ...]

    def known_names(self) -> list[str]:
        return [*self.results, *(f"previous.{r}" for r in (*self.results, "cost_usd")), *RUN_NAMES,
                "data.rows", *(f"data.{d}.rows" if d.isidentifier() else f'data["{d}"].rows' for d in self.datasets),
                "validation.failed", "validation.failures"]

    def key(self, parts: list[str]) -> str | None:
        """The variable a dotted name reads (``previous.total_revenue``), or None when it is unknown."""
        head, rest = parts[0], parts[1:]
        known = (
            (not rest and (head in self.results or head in RUN_NAMES))
            or (head == "previous" and len(rest) == 1 and (rest[0] in self.results or rest[0] == "cost_usd"))
            or (head == "data" and (rest == ["rows"] or (len(rest) == 2 and rest[0] in self.datasets
                                                          and rest[1] == "rows")))
            or (head == "validation" and rest in (["failed"], ["failures"]))
        )
        return ".".join(parts) if known else None


@dataclass(frozen=True)
class Condition:
    """A checked condition: the tree simpleeval runs, each name in it a variable of ``reads``."""

    text: str
    tree: ast.expr
    reads: tuple[str, ...]


def compile_condition(text: str, vocabulary: Vocabulary) -> Condition:
    """Parse and check ``text``; ``ConditionError`` (one line) when it is not a condition over ``vocabulary``."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else " at its end"
        raise ConditionError(f"not an expression: {exc.msg}{where}; write e.g. "
                             "'total_revenue < previous.total_revenue * 0.9'") from None
    for node in ast.walk(tree):
        if not isinstance(node, (*_ALLOWED_NODES, ast.Attribute)):  # attributes: the rewriter's to check
            raise ConditionError(f"{type(node).__name__} is not allowed in a condition; use {_HOW}")
    rewriter = _Rewriter(vocabulary)
    body = rewriter.visit(tree.body)
    return Condition(text, body, tuple(dict.fromkeys(rewriter.reads)))


class _Rewriter(ast.NodeTransformer):
    """Every dotted name becomes one variable (``previous.total_revenue``), checked against the vocabulary."""

    def __init__(self, vocabulary: Vocabulary):
        self.vocabulary = vocabulary
        self.reads: list[str] = []

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return self._variable(node, [node.id])

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        parts = _dotted(node)
        if parts is None:
            raise ConditionError(f"'.{node.attr}': only the names of the vocabulary have dotted parts (no "
                                 f"attributes or methods); use {_HOW}")
        return self._variable(node, parts)

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        parts = _dotted(node)
        if parts is not None and parts[0] in NAMESPACES:
            return self._variable(node, parts)
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            shown = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ConditionError(f"unknown function {shown}(); the functions are {', '.join(FUNCTIONS)}")
        node.args = [self.visit(a) for a in node.args]
        return node

    def _variable(self, node: ast.AST, parts: list[str]) -> ast.AST:
        key = self.vocabulary.key(parts)
        if key is None:
            raise ConditionError(_unknown(".".join(parts), self.vocabulary))
        self.reads.append(key)
        return ast.copy_location(ast.Name(id=key, ctx=ast.Load()), node)


def _dotted(node: ast.AST) -> list[str] | None:
    """``previous.total_revenue`` -> ["previous", "total_revenue"]; ``data["north-sales"].rows`` too; else None."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else [*head, node.attr]
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        head = _dotted(node.value)
        return None if head is None else [*head, node.slice.value]
    return None


def _unknown(name: str, vocabulary: Vocabulary) -> str:
    known = vocabulary.known_names()
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    shown = ", ".join(known[:_SHOWN_NAMES]) + (", ..." if len(known) > _SHOWN_NAMES else "")
    return f"unknown name '{name}'; {hint}known names: {shown}"


@dataclass
class RunFacts:
    """What one run gives the conditions to read. ``previous`` is the previous completed run's record
    (``tasks.run_history.RunRecord.to_dict``), None on a first run."""

    status: str
    results: Mapping[str, Any] | None
    datasets: Sequence[Mapping[str, Any]]  # validation summaries: name, rows, valid, failure_count
    cost_usd: float | None = None
    previous: Mapping[str, Any] | None = None

    def value(self, key: str) -> Any:
        """The value of one variable; ``NotEvaluable`` with the reason when this run has none."""
        head, _, rest = key.partition(".")
        if head == "previous":
            return self._previous(rest)
        if head == "data":
            return self._rows(rest)
        if head == "validation":
            failures = sum(int(d.get("failure_count") or 0) for d in self.datasets)
            return failures if rest == "failures" else any(not d.get("valid", True) for d in self.datasets)
        if key == "status":
            return self.status
        if key == "cost_usd":
            return _known(self.cost_usd, "the cost is unknown (no price for the model)")
        if self.results is None:
            raise NotEvaluable(f"no valid results (the run's status: {self.status})")
        return _known(self.results.get(key), f"no value for {key} in the results")

    def _previous(self, name: str) -> Any:
        if self.previous is None:
            raise NotEvaluable("no previous completed run")
        if name == "cost_usd":
            return _known(self.previous.get("cost_usd"), "the previous run's cost is unknown")
        return _known((self.previous.get("results") or {}).get(name), f"the previous run has no {name}")

    def _rows(self, rest: str) -> int:
        chosen = self.datasets if rest == "rows" else [d for d in self.datasets if d.get("name") == rest[:-5]]
        counts = [c for d in chosen if isinstance(c := d.get("rows"), int)]
        if not chosen or len(counts) < len(chosen):
            raise NotEvaluable(f"no row count for {'every dataset' if rest == 'rows' else rest[:-5]}")
        return sum(counts)


def _power(base: Any, exponent: Any) -> Any:
    """simpleeval allows exponents up to 4,000,000, and 4000000 ** 4000000 takes minutes to compute."""
    if isinstance(base, int) and isinstance(exponent, int) and \
            max(base.bit_length(), 1) * abs(exponent) > _MAX_RESULT_BITS:
        raise NumberTooHigh(f"{base} ** {exponent} is too large to compute")
    return safe_power(base, exponent)


_OPERATORS = {**DEFAULT_OPERATORS, ast.Pow: _power}


def _known(value: Any, why_missing: str) -> Any:
    if value is None:
        raise NotEvaluable(why_missing)
    return value


@dataclass
class AlertOutcome:
    """One alert, evaluated: it fired, it did not, or it could not be evaluated (``reason`` says why)."""

    name: str
    when: str
    message: str  # the config's message; empty when it gives none
    fired: bool = False
    values: dict[str, Any] = field(default_factory=dict)  # what the condition read; untrusted
    reason: str = ""

    def to_record(self) -> dict[str, Any]:
        """The transcript's entry for a fired alert."""
        return {"name": self.name, "message": self.message, "when": self.when, "values": self.values}


def evaluate(name: str, condition: Condition, message: str | None, facts: RunFacts) -> AlertOutcome:
    """Evaluate one condition over ``facts``; never raises for what the values are."""
    outcome = AlertOutcome(name, condition.text, message or "")

    def read(node: ast.Name) -> Any:
        value = facts.value(node.id)
        outcome.values[node.id] = _plain(value)
        return value

    evaluator = EvalWithCompoundTypes(operators=_OPERATORS, functions=dict(FUNCTIONS), names=read, allowed_attrs={})
    try:
        outcome.fired = bool(evaluator.eval(condition.text, previously_parsed=condition.tree))
    except NotEvaluable as exc:
        outcome.reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - values decide what fails (a type mismatch, a division by 0)
        outcome.reason = f"{type(exc).__name__}: {_shown(exc, 300)}"
    return outcome


def evaluate_all(alerts: Iterable[Any], vocabulary: Vocabulary, facts: RunFacts) -> list[AlertOutcome]:
    """Every alert of the config (``AlertConfig``: name, when, message), in its order."""
    return [evaluate(a.name, compile_condition(a.when, vocabulary), a.message, facts) for a in alerts]


def alert_line(record: Mapping[str, Any]) -> str:
    """A fired alert (``AlertOutcome.to_record``) as one line, for the run's summary and the notifications:
    ``revenue_drop: Revenue fell 10% (total_revenue=80.0, previous.total_revenue=100.0)``."""
    values = record.get("values")
    read = "" if not isinstance(values, Mapping) else ", ".join(f"{k}={_shown(v)}" for k, v in values.items())
    return f"{record.get('name')}: {record.get('message') or record.get('when')}" + (f" ({read})" if read else "")


def state_message(fired: Sequence[Mapping[str, Any]], limit: int = 500) -> str:
    """The flow run's state message: the alerts' names and the config's messages, never a value (the
    values are untrusted and the message is shown wherever the run is listed)."""
    text = ("Alert" if len(fired) == 1 else f"{len(fired)} alerts") + " fired: " + "; ".join(
        f"{a.get('name')}" + (f" ({a['message']})" if a.get("message") else "") for a in fired)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(value: Any) -> Any:
    """A value as JSON keeps it, strings clipped (a result may be long, and the event has a size cap)."""
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in list(value)[:20]]
    return _shown(value, _VALUE_CHARS)


def _shown(value: Any, limit: int = _VALUE_CHARS) -> str:
    text = " ".join(printable(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
