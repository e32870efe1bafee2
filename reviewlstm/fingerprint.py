"""Content hashes and stage keys: what decides whether a stage's output can be reused.

A stage's key hashes the content digests of its inputs, its own parameters and the source of the
code it runs (comments and docstrings ignored), so a changed input, setting or function reruns
the stage and what follows, and nothing else does. Finding a module's source does not import it.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

CHUNK = 1 << 20


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def dir_digest(path: str | Path, skip: Iterable[str] = ()) -> str:
    """One digest over every file's relative name and content, in name order."""
    root, skip = Path(path), set(skip)
    h = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in skip):
        h.update(file.relative_to(root).as_posix().encode() + b"\0" + file_digest(file).encode())
    return h.hexdigest()


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@lru_cache(maxsize=256)
def _source_digest(origin: str, mtime_ns: int, size: int) -> str:
    tree = _strip_docstrings(ast.parse(Path(origin).read_text(encoding="utf-8")))
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def module_digest(name: str) -> str:
    """Digest of a module's code as the parser sees it: editing a comment changes nothing."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ValueError(f"cannot find the source of module {name!r}")
    stat = Path(spec.origin).stat()
    return _source_digest(spec.origin, stat.st_mtime_ns, stat.st_size)


def code_digest(modules: Iterable[str]) -> str:
    h = hashlib.sha256()
    for name in sorted(set(modules)):
        h.update(f"{name}={module_digest(name)};".encode())
    return h.hexdigest()


def _canonical(value: Any) -> Any:
    """Inputs as JSON-able data: a stage record stands for its content digest only."""
    if hasattr(value, "model_dump"):  # a pydantic config section
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        if "digest" in value and "stage" in value:
            return {"digest": value["digest"]}
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def stage_key(stage: str, modules: Iterable[str], inputs: dict[str, Any]) -> str:
    """The key naming a stage's output folder: inputs' digests + parameters + code."""
    payload = {"stage": stage, "code": code_digest(modules), "inputs": _canonical(inputs)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
