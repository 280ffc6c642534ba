"""Undoing a MariaDB/MySQL run that stopped part way, keeping what other sessions did meanwhile.

A run's committed steps are undone in place first, latest first, by their reverse SQL (an added
column dropped again, an index dropped, a type changed back): the table keeps the rows other sessions
wrote to it during the run or since it died. Only a table that cannot be put back that way (a step
without a reverse, one whose reverse fails, or one half done) is reloaded from the dump taken before
the run, and the report names it: rows written to it after the dump are then replaced by the
dump's. Tables the run created are dropped; tables other sessions created are left alone.

`RestoreReport.sentence()` says exactly that, and nothing it did not do (tester finding F13).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..server.connection import message
from .dump import Dump, RunStep


@dataclass
class RestoreReport:
    """What a restore of a run did, table by table."""
    undone: list[str] = field(default_factory=list)      # "t1 (add column a)": steps reversed in place, rows kept
    reloaded: list[str] = field(default_factory=list)    # tables reloaded from the dump
    why_reloaded: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)     # tables the run had created
    legacy: bool = False  # a dump without the run's steps (an older version's): every table it holds was reloaded
    took_added: list[str] = field(default_factory=list)  # undone steps whose reverse drops what the run added
    remade: list[str] = field(default_factory=list)      # views and triggers the run set aside, made again from the dump
    saved_as: str | None = None  # backup of the state found, taken before reloading
    save_failed: str | None = None  # why that backup could not be taken

    @property
    def changed_anything(self) -> bool:
        return bool(self.undone or self.reloaded or self.dropped)

    def sentence(self, *, saved_as: str | None = None) -> str:
        saved_as = saved_as or self.saved_as
        parts = []
        if self.undone:
            parts.append(f"undone in place by their reverse statements, rows written meanwhile kept: {'; '.join(self.undone)}")
        if self.remade:
            parts.append(f"made again as they were: {', '.join(self.remade)}")
        if self.dropped:
            parts.append(f"tables it had created dropped: {', '.join(self.dropped)}")
        if self.reloaded:
            why = "; ".join(f"{t}: {self.why_reloaded[t]}" for t in self.reloaded if t in self.why_reloaded)
            kept = (f" (the state found was saved as backup {saved_as})" if saved_as else
                    f" (the state found could not be saved first: {self.save_failed})" if self.save_failed else "")
            parts.append(f"restored from the dump taken before the run: {', '.join(self.reloaded)}"
                         + (f" [{why}]" if why else "")
                         + f"; rows other sessions wrote to {'it' if len(self.reloaded) == 1 else 'them'} after that dump "
                           f"were replaced by the dump's{kept}")
        if not parts:
            return "no statement had taken effect; nothing needed undoing and nothing was lost"
        if self.took_added:
            parts.append(f"values written meanwhile into what the run had added went with it: {'; '.join(self.took_added)}")
        if not self.reloaded:
            parts.append("no row lost" if self.took_added else "nothing lost")
        return "; ".join(parts)


def _split(steps: tuple[RunStep, ...], done: int) -> tuple[list[RunStep], RunStep | None, bool]:
    """The steps whose statements all committed, the step in flight (if any) and whether it started with
    the statement in flight (so that it is either wholly done or not at all)."""
    committed, n = [], 0
    for step in steps:
        end = n + len(step.statements)
        if end <= done:
            committed.append(step)
        else:
            return committed, step, n == done and len(step.statements) == 1
        n = end
    return committed, None, False


def undo_in_place(conn, dump: Dump, done: int, *, in_flight_maybe: bool) -> tuple[RestoreReport, set[str]]:
    """Reverse the run's committed steps, latest first. `in_flight_maybe`: the statement after the
    `done` committed ones may have taken effect too (its client died or lost the connection while the
    server ran it); its reverse is then tried, and its failure means it had not. Returns the report so
    far and the tables (lower case) that only the dump can put back."""
    report = RestoreReport()
    committed, flight, whole = _split(dump.steps, done)
    every = {t.name.lower() for t in dump.tables} | {(st.table or "").lower() for st in dump.steps if st.table}
    need_dump: set[str] = set()
    if flight is not None and (in_flight_maybe and not whole):
        need_dump.add((flight.table or "").lower() or "*")  # part of a multi-statement step may have run
    if flight is not None and flight.reverse is None and flight.table:  # shown only if its table had to be reloaded
        report.why_reloaded[flight.table] = f"step '{flight.description}', running when the run stopped, took effect and has no reverse"
    todo = [(st, False) for st in committed]
    if flight is not None and in_flight_maybe and whole and flight.reverse:
        todo.append((flight, True))
    for step, maybe in reversed(todo):
        table = (step.table or "*").lower()
        if table in need_dump or "*" in need_dump:
            continue  # a later step on it could not be undone: the dump puts the whole table back
        if step.reverse is None:
            need_dump.add(table)
            report.why_reloaded[step.table or "*"] = f"step '{step.description}' has no reverse"
            continue
        try:
            for stmt in step.reverse:
                conn.execute(stmt)
        except Exception as exc:  # noqa: BLE001 - a statement the server refused
            if maybe:
                continue  # the statement in flight had not taken effect: nothing to undo
            need_dump.add(table)
            report.why_reloaded[step.table or "*"] = f"the reverse of '{step.description}' failed: {message(exc)}"
            continue
        report.undone.append(f"{step.table or 'schema'} ({step.description})")
        if re.search(r"\bDROP\s+(COLUMN|TABLE)\b", " ".join(step.reverse), re.I):
            report.took_added.append(report.undone[-1])
    if "*" in need_dump:
        need_dump |= every
    return report, need_dump
