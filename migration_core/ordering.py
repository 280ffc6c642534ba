"""Order a plan's steps by what each needs from the engine, not by a fixed list of phases.

Each step names the schema objects it provides, requires, releases and removes (`plan.Step`).
Three rules make the edges of a small dependency graph:

1. a step that provides an object runs before every step that requires it (a foreign key after the
   column and the unique key it references; a new table's foreign key after both tables exist);
2. a step that releases an object runs before the step that removes it (drop a foreign key before
   the unique key it references; drop an index before the column it covers);
3. a step that removes an object runs before a step that provides it again (replace an index under
   the same name, a unique key over the same columns).

The steps arrive in a natural order (renames, drops, types, columns, tables, keys, foreign keys,
dropped tables), which breaks ties: the result is that order wherever the graph allows it (Kahn's
algorithm with the original position as priority). A cycle means no order can work; it is reported
with the steps in it, so the plan is refused up front instead of failing half way.
"""

from __future__ import annotations

import heapq
from collections import defaultdict

from .errors import PlanningError
from .plan import Step


def order_steps(steps: list[Step] | tuple[Step, ...]) -> list[Step]:
    """`steps` in an order every engine accepts; raises PlanningError on a dependency cycle."""
    n = len(steps)
    providers: dict[tuple, list[int]] = defaultdict(list)
    removers: dict[tuple, list[int]] = defaultdict(list)
    for i, s in enumerate(steps):
        for r in s.provides:
            providers[r].append(i)
        for r in s.removes - s.provides:
            removers[r].append(i)
    after: list[set[int]] = [set() for _ in range(n)]  # after[i]: steps that must run after i

    def edge(a: int, b: int) -> None:
        if a != b:
            after[a].add(b)

    for i, s in enumerate(steps):
        for r in s.requires:
            for p in providers.get(r, ()):
                edge(p, i)
        for r in s.releases:
            for d in removers.get(r, ()):
                edge(i, d)
    for r, ds in removers.items():
        for d in ds:
            for p in providers.get(r, ()):
                edge(d, p)
    indegree = [0] * n
    for i in range(n):
        for j in after[i]:
            indegree[j] += 1
    ready = [i for i in range(n) if indegree[i] == 0]
    heapq.heapify(ready)
    out: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        out.append(i)
        for j in after[i]:
            indegree[j] -= 1
            if indegree[j] == 0:
                heapq.heappush(ready, j)
    if len(out) < n:
        stuck = [steps[i].description for i in range(n) if indegree[i] > 0]
        raise PlanningError("no order of the plan's steps works on this database (they depend on each other in a cycle): "
                            + "; ".join(stuck[:6]))
    return [steps[i] for i in out]


def strongly_connected(nodes: list[str], edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of a small graph (tables and their foreign keys)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            out.append(comp)

    for v in nodes:
        if v not in index:
            visit(v)
    return out
