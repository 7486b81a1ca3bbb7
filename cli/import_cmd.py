"""``wangge import``: a file into a layer, all or nothing (also ``wangge cadres import``)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import JsonOpt, console, emit, fail
from layers.importer import import_file
from layers.ledger import import_ledger


def import_cmd(
    layer: Annotated[str, typer.Argument(help="buildings, grids, communities, cameras, facilities, roads, cadres, assignments, subdistricts (or 楼栋, 网格 …)")],
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, Shapefile, CSV or Excel")],
    crs: Annotated[str | None, typer.Option(help="source CRS: EPSG:4490, 4547, gcj02, bd09 …")] = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="SRC=DEST column mapping, repeatable")] = None,
    encoding: Annotated[str | None, typer.Option(help="text encoding if not detected (gbk, utf-8)")] = None,
    source_layer: Annotated[str | None, typer.Option("--layer", help="layer inside a GeoPackage")] = None,
    district: Annotated[str | None, typer.Option(help="6-digit district code for rows that carry none")] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="import the valid rows, list the rest")] = False,
    repair: Annotated[bool, typer.Option("--repair", help="repair self-intersecting polygons (each repair is reported)")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="the file replaces the layer in its districts")] = False,
    key: Annotated[str, typer.Option("--key", help="households ledger only: match rows by address, source_id or building_code")] = "address",
    as_json: JsonOpt = False,
) -> None:
    """Import a file into a layer, all or nothing. ``wangge import households 楼栋台账.xlsx --key address``
    sets surveyed households and residents on existing buildings (replacing estimates)."""
    if layer.casefold() in ("households", "户数", "台账", "ledger"):
        ledger = import_ledger(file, key=key)
        emit({"ok": True, **ledger.to_dict()}, as_json,
             f"{ledger.file}: {ledger.updated} 栋楼的户数已更新为台账数 / buildings updated from the ledger "
             f"({ledger.replaced_estimates} estimates replaced)" + "".join(f"\n  note: {n}" for n in ledger.notes))
        return
    mapping: dict[str, str] = {}
    for item in map_ or []:
        if "=" not in item:
            raise typer.BadParameter(f"--map takes SRC=DEST, got {item!r}")
        src, dest = item.split("=", 1)
        mapping[src.strip()] = dest.strip()
    try:
        with console.status(f"importing {file.name} into {layer}"):
            report = import_file(layer, file, crs=crs, mapping=mapping, encoding=encoding, source_layer=source_layer,
                                 district_code=district, skip_invalid=skip_invalid, repair=repair, replace=replace)
    except KeyError as exc:  # an unknown layer name: rejected input (exit 1), like any other
        fail(str(exc.args[0]))
    emit({"ok": True, **report.to_dict()}, as_json, human_report(report))


def human_report(report) -> str:
    lines = [f"{report.file} → {report.layer}: {report.rows} rows ({report.crs}, {report.seconds:.2f} s)"]
    lines += [f"  skipped: {p}" for p in report.skipped]
    lines += [f"  repaired: {p}" for p in report.repaired]
    lines += [f"  note: {n}" for n in report.notes]
    return "\n".join(lines)
