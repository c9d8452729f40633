"""``roon graph export --format neo4j-admin``: the CSV files, column by column.

Checks the headers against schema/ (every typed property has the Neo4j type of the
catalogue column it comes from), the data against the headers (every value parses as
its declared type), the ids (unique per ID group; every relationship end exists), the
labels and types (declared in the graph model), the counts (the fixture's known
graph) and the values (weights exactly as in Parquet; the same maps a push sends).
"""

from __future__ import annotations

import csv
import re
import shlex
from pathlib import Path

import pytest
from fixtures import EXPECTED_COUNTS, build_graph_catalogue

from roon.errors import CatalogueError, InvalidArgumentError
from roon.query.neo4j import model as gm
from roon.query.neo4j.export import csv_groups, export_neo4j_admin, import_command
from roon.query.neo4j.push import model_payload

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
PARSERS = {
    "long": int,
    "double": float,
    "boolean": lambda v: {"true": True, "false": False}[v],
    "datetime": lambda v: ISO.match(v).group(0),
    "string": str,
}
# graph property -> "table.column", per node group / relationship group
SOURCES = {
    "models": dict(gm.MODEL_PROPERTIES),
    "layers": dict(gm.LAYER_PROPERTIES),
    "neurons": dict(gm.NEURON_PROPERTIES),
    "signatures": dict(gm.SIGNATURE_PROPERTIES),
    "computes": dict(gm.COMPUTES_PROPERTIES),
    "feeds": dict(gm.FEEDS_PROPERTIES),
    "derived_from": dict(gm.DERIVED_FROM_PROPERTIES),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path, object]:
    base = tmp_path_factory.mktemp("export")
    ids = build_graph_catalogue(base / "cat")
    summary = export_neo4j_admin(base / "cat", base / "out")
    return ids, base / "out", summary


def _read(out: Path, name: str) -> tuple[list[str], list[dict[str, str]]]:
    header = (out / f"{name}.header.csv").read_text().strip().split(",")
    with open(out / f"{name}.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert all(len(r) == len(header) for r in rows), name
    return header, [dict(zip(header, r, strict=True)) for r in rows]


def _field(column: str) -> tuple[str, str]:
    """'weight:double' -> ('weight', 'double'); ':LABEL' -> ('', 'LABEL')."""
    name, _, kind = column.partition(":")
    return name, kind


def test_headers_follow_schema_types(exported) -> None:
    _, out, _ = exported
    for group in csv_groups():
        header, _ = _read(out, group.name)
        assert header == list(group.header)
        ids = [c for c in header if re.fullmatch(r"\w*:ID\(\w+\)", c)]
        if group.kind == "nodes":
            assert len(ids) == 1 and header[-1] == ":LABEL", group.name
        else:
            assert header[0].startswith(":START_ID(") and header[1].startswith(":END_ID(")
            assert header[-1] == ":TYPE" and not ids
        for column in header:
            name, kind = _field(column)
            if not name or kind.startswith("ID("):
                continue
            assert kind in PARSERS, column  # every property is typed
            if (group.name, name) in {("models", "feeds_min_weight"), ("models", "pushed")}:
                continue  # set by the push itself, not copied from a table
            source = SOURCES[group.name][name]
            assert kind == gm.neo4j_type(gm.property_type(source)), (group.name, column)
    # fire_count may exceed 64 bits: a string, never a long
    assert "fire_count:string" in _read(out, "signatures")[0]


def test_values_parse_ids_are_unique_and_every_end_exists(exported) -> None:
    _, out, _ = exported
    groups: dict[str, set[str]] = {}
    label_counts: dict[str, int] = {}
    type_counts: dict[str, int] = {}
    for group in csv_groups():
        header, rows = _read(out, group.name)
        for row in rows:
            for column, value in row.items():
                name, kind = _field(column)
                if name and kind in PARSERS and value != "":
                    PARSERS[kind](value)
            if group.kind == "nodes":
                id_col = next(c for c in header if ":ID(" in c)
                space = id_col.split("(")[1].rstrip(")")
                assert row[id_col] not in groups.setdefault(space, set()), row[id_col]
                groups[space].add(row[id_col])
                labels = row[":LABEL"].split(";")
                assert set(labels) <= set(gm.LABELS) and labels[0] == space
                for label in labels:
                    label_counts[label] = label_counts.get(label, 0) + 1
    for group in csv_groups():
        if group.kind != "relationships":
            continue
        header, rows = _read(out, group.name)
        start = header[0].split("(")[1].rstrip(")")
        end = header[1].split("(")[1].rstrip(")")
        for row in rows:
            assert row[header[0]] in groups[start], (group.name, row)
            assert row[header[1]] in groups[end], (group.name, row)
            assert row[":TYPE"] in gm.RELATIONSHIP_TYPES
            type_counts[row[":TYPE"]] = type_counts.get(row[":TYPE"], 0) + 1
    assert {**label_counts, **type_counts} == EXPECTED_COUNTS


def test_required_columns_are_filled_for_catalogue_rows(exported) -> None:
    from roon.schema import table_spec

    _, out, _ = exported
    for name in ("models", "layers", "neurons", "signatures", "feeds", "computes"):
        _, rows = _read(out, name)
        nullable = {}
        for prop, source in SOURCES[name].items():
            table, column = source.split(".")
            spec = next(c for c in table_spec(table)["columns"] if c["name"] == column)
            nullable[prop] = spec["nullable"]
        for row in rows:
            if (
                "Input" in row.get(":LABEL", "")
                or row.get(":LABEL") == "Model"
                and not row.get("name:string")
            ):
                continue  # input nodes and bare lineage models carry only their ids
            for column, value in row.items():
                prop = _field(column)[0]
                if prop in nullable and not nullable[prop]:
                    assert value != "", (name, column, row)


def test_weights_and_timestamps_survive_exactly(exported) -> None:
    from roon.store import read_table

    ids, out, _ = exported
    edges = read_table(out.parent / "cat", "edges").to_pylist()
    _, feeds = _read(out, "feeds")
    written = {
        (r[":START_ID(Neuron)"], r[":END_ID(Neuron)"]): float(r["weight:double"]) for r in feeds
    }
    assert written == {(e["source_id"], e["target_id"]): e["weight"] for e in edges}
    _, derived = _read(out, "derived_from")
    assert {r["created_at:datetime"] for r in derived} == {"2025-01-02T03:04:05.678901Z"}
    scale = next(r for r in derived if r["rule:string"] == "scale")
    assert scale[":START_ID(Model)"] == ids["D"] and scale[":END_ID(Model)"] == ids["C"]
    assert scale["params:string"] == '{"factor": 2.0}'


def test_export_holds_what_a_push_sends(exported) -> None:
    """Same properties, same values: the two roads give the same graph."""
    ids, out, _ = exported
    root = out.parent / "cat"
    nodes = {}
    for name in ("models", "layers", "neurons", "signatures"):
        header, rows = _read(out, name)
        for row in rows:
            props = {}
            for column, value in row.items():
                prop, kind = _field(column)
                if prop and value != "":
                    props[prop] = PARSERS.get(kind, str)(value)
            nodes[props.get("id", props.get("hash"))] = props
    for model_id in ids.values():
        payload = model_payload(root, model_id)
        model = {k: v for k, v in payload["models"][0].items() if v is not None}
        model["ingested_at"] = model["ingested_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        expected = {**model, "feeds_min_weight": 0.0, "pushed": True}
        assert nodes[model_id] == expected
        for row in payload["layers"] + payload["input_layers"]:
            assert nodes[row["id"]] == row
        for row in payload["neurons"] + payload["input_neurons"]:
            assert nodes[row["props"]["id"]] == row["props"]
            assert row["layer_id"] == f"{model_id}:{row['props']['layer']}"
        for row in payload["signatures"]:
            signature = {k: v for k, v in row["signature"].items() if v is not None}
            assert nodes[signature["hash"]] == signature
            assert set(row["computes"]) == set(SOURCES["computes"])


def test_min_weight_filters_feeds_and_is_recorded(tmp_path: Path) -> None:
    build_graph_catalogue(tmp_path / "cat")
    summary = export_neo4j_admin(tmp_path / "cat", tmp_path / "out", min_weight=0.1)
    assert summary.rows["feeds"] == EXPECTED_COUNTS["FEEDS"] - 1  # tiny3's 0.05 input
    _, models = _read(tmp_path / "out", "models")
    assert {r["feeds_min_weight:double"] for r in models if r["name:string"]} == {"0.1"}
    assert "with |weight| >= 0.1" in (tmp_path / "out" / "README.md").read_text()


def test_readme_holds_the_exact_import_command(exported) -> None:
    _, out, summary = exported
    readme = (out / "README.md").read_text()
    assert summary.command in readme
    assert summary.command.startswith("neo4j-admin database import full neo4j \\\n")
    for group in csv_groups():
        flag = f"--{group.kind}={out / group.name}.header.csv,{out / group.name}.csv"
        assert flag in summary.command
        assert f"--{group.kind}=/import/roon/{group.name}.header.csv" in readme
    assert summary.rows == {g.name: summary.rows[g.name] for g in csv_groups()}


def test_empty_catalogue_exports_empty_files(tmp_path: Path) -> None:
    from roon.store import open_catalogue

    open_catalogue(tmp_path / "cat", create=True)
    summary = export_neo4j_admin(tmp_path / "cat", tmp_path / "out")
    assert set(summary.rows.values()) == {0}
    assert (tmp_path / "out" / "feeds.csv").read_text() == ""


def test_export_refuses_bad_targets(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    build_graph_catalogue(tmp_path / "cat")
    with pytest.raises(CatalogueError, match="is a file"):
        export_neo4j_admin(tmp_path / "cat", tmp_path / "file")
    with pytest.raises(CatalogueError, match="no roon catalogue"):
        export_neo4j_admin(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(InvalidArgumentError, match="min weight"):
        export_neo4j_admin(tmp_path / "cat", tmp_path / "out", min_weight=-1.0)


def test_golden_headers() -> None:
    """Pinned by hand: `double` (not the 32-bit `float`), `long` for every integer."""
    headers = {g.name: ",".join(g.header) for g in csv_groups()}
    assert headers["feeds"] == ":START_ID(Neuron),:END_ID(Neuron),weight:double,:TYPE"
    assert headers["neurons"] == (
        "id:ID(Neuron),model_id:string,layer:long,index:long,fan_in:long,bias:double,"
        "weight_norm:double,activation:string,:LABEL"
    )
    assert headers["signatures"] == (
        "hash:ID(Signature),domain:string,fan_in:long,fire_count:string,"
        "fire_fraction:double,exact:boolean,chow:string,truth_table:string,:LABEL"
    )
    assert headers["computes"] == (
        ":START_ID(Neuron),:END_ID(Signature),method:string,fragile:boolean,margin:double,"
        "relevant:long,:TYPE"
    )
    assert headers["derived_from"].endswith("created_at:datetime,:TYPE")


def test_import_command_survives_a_directory_with_spaces(tmp_path: Path) -> None:
    where = tmp_path / "neo4j import (v1)"
    args = shlex.split(import_command(where).replace("\\\n", " "))
    assert args[:6] == [
        "neo4j-admin",
        "database",
        "import",
        "full",
        "neo4j",
        "--overwrite-destination=true",
    ]
    files = [a.split("=", 1) for a in args[6:]]
    assert [(kind, g.kind) for (kind, _), g in zip(files, csv_groups(), strict=True)] == [
        (f"--{g.kind}", g.kind) for g in csv_groups()
    ]
    for (_, listed), group in zip(files, csv_groups(), strict=True):
        assert listed.split(",") == [
            str(where / f"{group.name}.header.csv"),
            str(where / f"{group.name}.csv"),
        ]


def test_export_readme_quotes_the_mount_and_refuses_commas(tmp_path: Path) -> None:
    build_graph_catalogue(tmp_path / "cat")
    out = tmp_path / "my export"
    summary = export_neo4j_admin(tmp_path / "cat", out)
    readme = (out / "README.md").read_text()
    assert summary.command in readme
    assert f"-v '{out}:/import/roon:ro'" in readme
    with pytest.raises(CatalogueError, match="comma"):
        export_neo4j_admin(tmp_path / "cat", tmp_path / "a,b")
    assert not (tmp_path / "a,b").exists()
