"""A bench's runs as a table: the statuses and numbers read as columns are the records', each
record is made once and only when it is read, and the table reads as a list of records does."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import optreg
from optreg.bench import run_table
from optreg.bench.run_table import NUMBER_COLUMNS, LoopCall, RunTable
from optreg.bench.runner import plan_bench
from tests.helpers import run_bench

#: learning rates from too small to explosive, so a sweep ends in several statuses
RATES = [{"learning_rate": lr} for lr in (1e-4, 0.003, 0.02, 0.3, 2.0)]


@pytest.fixture(scope="module")
def table():
    """A bench with stacked runs (sgd, adam), runs in loops of their own (shampoo), seeds,
    problems with and without a known minimum, and one judged against a baseline."""
    plan = plan_bench(
        optreg.registry, ["sgd", "adam", "shampoo"], ["booth", "rastrigin", "mlp-regression"], RATES,
        max_iters=120, seeds=(0, 1),
    )
    return run_bench(plan)


def same(ours, theirs) -> bool:
    """The same records, field by field (a NaN loss is equal to a NaN loss)."""
    return [repr(r) for r in ours] == [repr(r) for r in theirs]


def fresh_copy(table: RunTable) -> RunTable:
    """The same runs from the same loop outcomes, none of their records made yet."""
    sources = [LoopCall(s.problem, s.outcome, s.timing, s.spans, s.seeds) for s in table._sources]
    return RunTable(sources, table._source_of, table._row_of)


def test_the_columns_are_the_records(table, monkeypatch):
    records, fresh = list(table), fresh_copy(table)
    made = []
    record = run_table.run_result
    monkeypatch.setattr(run_table, "run_result", lambda *a, **k: made.append(1) or record(*a, **k))
    statuses = fresh.statuses()  # booth and rastrigin read without a record
    baseline_runs = sum(1 for r in records if r.baseline is not None)
    assert len(made) == baseline_runs > 0  # a baseline judges a run by its record's metrics
    assert statuses == [r.status for r in records]
    assert fresh.statuses() == statuses and len(made) == baseline_runs  # made once, kept
    assert len(set(statuses)) >= 3, statuses  # the sweep is not all one status
    for name in NUMBER_COLUMNS:
        column = fresh.column(name)
        expected = [-1 if getattr(r, name) is None else getattr(r, name) for r in records]
        np.testing.assert_array_equal(column, np.asarray(expected, column.dtype), err_msg=name)


def test_a_record_is_made_once_and_kept(table, monkeypatch):
    """One read makes one record; reading them all makes the rest at once, the garbage
    collector held off meanwhile and restored after."""
    fresh = fresh_copy(table)
    collecting = []  # whether the collector ran while each record was made
    record = run_table.run_result
    monkeypatch.setattr(run_table, "run_result", lambda *a, **k: collecting.append(gc.isenabled()) or record(*a, **k))
    first = fresh[7]
    assert fresh[7] is first and fresh[7 - len(fresh)] is first
    assert collecting == [True]
    assert same(fresh, table) and len(collecting) == len(table)
    assert not any(collecting[1:]) and gc.isenabled()


def test_the_table_reads_as_a_list_does(table):
    records = list(table)
    assert len(table) == len(records) == 3 * 3 * len(RATES) * 2
    assert table == records and table[2:9:3] == records[2:9:3] and table[-1] == records[-1]
    assert same(table + records[:2], records + records[:2]) and same(records[:1] + table, records[:1] + records)
    assert [r.seed for r in records[:4]] == [0, 1, 0, 1]  # each setting's seeds together
    assert [r.problem for r in records[:: len(records) // 3]] == ["booth", "rastrigin", "mlp-regression"]
    with pytest.raises(IndexError, match="run 90 of a table of 90"):
        table[len(table)]
    with pytest.raises(KeyError, match="no column 'status'"):
        table.column("status")


def test_records_made_by_hand_make_a_table(table):
    records = list(table)[:5]
    made = RunTable.of(records)
    assert same(made, records) and made.statuses() == [r.status for r in records]
    np.testing.assert_array_equal(made.column("iterations"), [r.iterations for r in records])
    joined = RunTable.joined([made, RunTable.of(records[:2])])
    assert same(joined, records + records[:2])
    assert joined.statuses() == [r.status for r in records + records[:2]]
