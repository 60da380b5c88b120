"""``artbias models list|pull|verify``: what models exist, fetching them, checking them."""

from __future__ import annotations

import argparse
import json


def register(commands) -> None:
    commands.describe("models", "list, download and verify model weights (generators, CLIP, classifiers)", [
        "artbias models list --kind generator",
        "artbias models pull biggan-deep-256",
        "artbias models verify",
    ])
    listing = commands.add("models list", _list, "list known models, present or not, with licences")
    listing.add_argument("--kind", choices=("generator", "clip", "classifier"), help="only this kind")
    listing.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    pull = commands.add("models pull", _pull, "download a published model into the artbias cache")
    pull.add_argument("name", help="catalogue name, e.g. biggan-deep-256")
    verify = commands.add("models verify", _verify, "check present model files against the catalogue's sha256")
    verify.add_argument("name", nargs="?", help="one model (default: every present model)")


def _human_size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return "?"


def _size_on_disk(path) -> int:
    """Bytes of a present model: its file, or every file in its folder."""
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _list(args: argparse.Namespace) -> int:
    from data.weights.catalog import list_models
    from data.weights.resolve import cache_dir, locate

    rows = []
    for entry in list_models(args.kind):
        found = locate(entry)
        rows.append({
            "name": entry.name,
            "kind": entry.kind,
            "family": entry.family,
            "present": found is not None or entry.builtin,
            "where": found.place if found else ("built in" if entry.builtin else None),
            "path": str(found.path) if found else None,
            "size": _size_on_disk(found.path) if found else entry.size,
            "licence": entry.licence,
            "non_commercial": entry.non_commercial,
            "source": entry.where_from,
            "image_size": entry.image_size,
        })
    if args.format == "json":
        print(json.dumps({"cache": str(cache_dir()), "models": rows}, indent=2))
        return 0
    header = ("NAME", "KIND", "FAMILY", "STATUS", "SIZE", "LICENCE")
    table = [header] + [
        (
            r["name"], r["kind"], r["family"],
            f"present ({r['where']})" if r["present"] else "absent",
            _human_size(r["size"]),
            ("NON-COMMERCIAL: " if r["non_commercial"] else "") + r["licence"],
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
    print(f"\ncache: {cache_dir()}  (set ARTBIAS_CACHE to move it; 'artbias models pull NAME' fills it)")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from data.weights.catalog import get_entry
    from data.weights.resolve import download, locate

    entry = get_entry(args.name)
    if entry.builtin:
        print(f"{entry.name}: built into artbias, nothing to download")
        return 0
    if entry.non_commercial:
        print(f"note: {entry.name} is under a non-commercial licence: {entry.licence}")
    found = locate(entry)
    if found is not None and found.place in ("cache", "zoo"):
        print(f"{entry.name}: already present at {found.path}")
        return 0
    path = download(entry)
    print(f"{entry.name}: downloaded to {path}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from data.weights.catalog import get_entry, list_models
    from data.weights.resolve import locate, verify_model

    if args.name:
        entries = [get_entry(args.name)]
        if entries[0].builtin:
            print(f"{args.name}: built into artbias, no weights to verify")
            return 0
    else:
        entries = [e for e in list_models() if locate(e) is not None]
        if not entries:
            print("no catalogue model is present on this machine")
            return 0
    failed = False
    for entry in entries:
        for check in verify_model(entry):
            print(f"{entry.name}: {check.status:9} {check.path}" + (f"  ({check.detail})" if check.detail else ""))
            failed |= check.status in ("mismatch", "missing")
    return 1 if failed else 0
