"""Model files: trees of records saved as one .npz (.npy members and a JSON manifest); never pickle.

A file is a stored ZIP (see ``stored_zip.py``) whose members are, in this order:

    lamina.json                   the manifest
    model.layers[0].weight.npy    one .npy member per parameter array, named by its path
    ...

The manifest is UTF-8 JSON with sorted keys and no NaN or infinity:

    {"format": "lamina.model_file", "version": 2, "kind": "model",
     "records": {"model": NODE, ...}, "extra": {...}}

and a NODE is one of

    {"record": "Dense", "fields": {"bias": NODE, "weight": NODE}}   a registered class, its init fields
    {"array": {"dtype": "float32", "shape": [784, 128]}}            a parameter; its member is PATH.npy
    {"tuple": [NODE, ...]}                                           a tuple (``Sequence.layers``)
    {"float": "inf" | "-inf" | "nan"}                                a non-finite float field
    {"shared": "model.layers[0]"}                                    a record met before (version 3): the same
                                                                     object as the record at that path
    null, true, false, an int, a finite float, a string             itself

Fields with ``init=False`` are derived by the constructor and not stored. A record holding arrays that
sits at several paths (shared) is stored once, at its first path in field order; loading gives one
object at every path. Array members follow a
walk of the manifest: records and fields by name, tuple items in order.

Loading looks each record's name up in the registry: nothing is imported and nothing named in the
file is called but the registered classes' constructors. Every size is checked against the
manifest before anything is read, and each record is rebuilt through its constructor, so its
validation runs again. The writer runs the same checks on what it is about to write.
"""

from __future__ import annotations

import json
import math
import os
import re

import attrs
import numpy as np

from lamina.layers.files.atomic import write_atomically
from lamina.layers.files.json_budget import too_large
from lamina.layers.errors import ModelFileError
from lamina.layers.records.parameter import FLOAT_DTYPES, is_array_field, is_optional
from lamina.layers.records.tree import holds_arrays
from lamina.layers.records.registry import NAME, registered_class, registered_name, registered_names
from lamina.layers.files.stored_zip import (MAX_ARCHIVE_BYTES, MAX_MEMBERS, archive_size, npy_header,
                                            quote, read_array, read_directory, read_member, write_archive)

FORMAT = "lamina.model_file"
VERSION = 3
"""3 (lamina 0.3): shared records stored once ({"shared": path}); 2 (0.2): buffers and the optimizer-chain
states;
files of versions 1 and 2 still load."""
READABLE = (1, 2, 3)
MANIFEST = "lamina.json"
MAX_MANIFEST_BYTES = 64 << 20
MAX_DEPTH = 64                  # nodes inside nodes: a Sequence level takes two (field, tuple item)
MAX_NDIM = 32
DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}
NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
KIND = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
TOP_KEYS = {"format", "version", "kind", "records", "extra"}


class _Problem(Exception):
    """What is wrong, found deep in a tree; the public functions turn it into a ModelFileError naming the
    file."""


@attrs.frozen
class ArraySpec:
    """A parameter array as the manifest describes it: its path, dtype name and shape."""

    path: str
    dtype: str
    shape: tuple

    @property
    def member(self) -> str:
        return self.path + ".npy"

    @property
    def numpy_dtype(self) -> np.dtype:
        return DTYPES[self.dtype]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.numpy_dtype.itemsize

    @property
    def member_size(self) -> int:
        return len(npy_header(self.numpy_dtype, self.shape)) + self.nbytes


def _type_name(value) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _differ(what: str, expected: set, got: set) -> str:
    parts = []
    if expected - got:
        parts.append(f"lacks {sorted(expected - got)}")
    if got - expected:
        parts.append(f"has unexpected {sorted(got - expected)}")
    return f"{what} " + " and ".join(parts)


# ---- writing: records -> manifest nodes and arrays by path ---------------------------------------

def _encode(value, where: str, arrays: dict, depth: int, seen: dict):
    """The manifest node for ``value``; its parameter arrays go into ``arrays`` by path; ``seen``: id ->
    (first
    path, record) of the records holding arrays met so far."""
    if depth > MAX_DEPTH:
        raise _Problem(f"{where} is nested more than {MAX_DEPTH} deep")
    if attrs.has(type(value)):
        if id(value) in seen:
            return {"shared": seen[id(value)][0]}
        if holds_arrays(value):
            seen[id(value)] = (where, value)
        return _encode_record(value, where, arrays, depth, seen)
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return value if math.isfinite(value) else {"float": repr(value)}
    if type(value) is tuple:
        return {"tuple": [_encode(item, f"{where}[{i}]", arrays, depth + 1, seen)
                          for i, item in enumerate(value)]}
    if isinstance(value, np.ndarray):
        raise _Problem(f"{where} holds an array in a field that is neither a parameter nor a buffer; declare "
                       f"the field with layers.param() or layers.buffer()")
    raise _Problem(f"{where} holds a {_type_name(value)}; a model file holds records, parameters "
                   f"(layers.param()), tuples, None, bool, int, float and str")


def _encode_record(record, where: str, arrays: dict, depth: int, seen: dict) -> dict:
    cls = type(record)
    name = registered_name(cls)
    if name is None:
        raise _Problem(f"{where} is a {cls.__qualname__}, which is not registered; decorate the class with "
                       f"@layers.register (above @attrs.frozen) so that model files can name it")
    fields = {}
    for field in attrs.fields(cls):
        if not field.init:                  # derived by the constructor
            continue
        value, at = getattr(record, field.name), f"{where}.{field.name}"
        if is_array_field(field) and value is not None:    # (an optional parameter left out holds None)
            if not isinstance(value, np.ndarray) or value.dtype not in FLOAT_DTYPES:
                raise _Problem(f"{at} is a parameter or buffer holding {_type_name(value)} "
                               f"{getattr(value, 'dtype', '')}; they are float32 or float64 arrays")
            arrays[at] = value
            fields[field.name] = {"array": {"dtype": value.dtype.name, "shape": list(value.shape)}}
        else:
            fields[field.name] = _encode(value, at, arrays, depth + 1, seen)
    return {"record": name, "fields": fields}


def _check_json(value, where: str, depth: int = 0) -> None:
    """Refuse anything in ``extra`` that would not come back from JSON as it went in."""
    if depth > MAX_DEPTH:
        raise _Problem(f"{where} is nested more than {MAX_DEPTH} deep")
    if value is None or type(value) in (bool, int, str):
        return
    if type(value) is float:
        if not math.isfinite(value):
            raise _Problem(f"{where} is {value!r}; model files hold strict JSON, which has no NaN or "
                           f"infinity (store None or a string instead)")
    elif type(value) is list:
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]", depth + 1)
    elif type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise _Problem(f"{where} has the key {key!r}; JSON keys are strings")
            _check_json(item, f"{where}[{key!r}]", depth + 1)
    else:
        numpy = isinstance(value, (np.generic, np.ndarray))
        hint = (" (use a list)" if isinstance(value, tuple) else
                " (convert it with int(), float() or .tolist())" if numpy else "")
        raise _Problem(f"{where} is a {_type_name(value)}{hint}; extra must be JSON: dicts with str keys, "
                       f"lists, str, int, float, bool and None")


def _manifest(records: dict, extra: dict, kind: str) -> tuple[bytes, dict]:
    """(the manifest's bytes, arrays by path) for ``records`` and ``extra``."""
    if type(kind) is not str or not KIND.match(kind):
        raise _Problem(f"kind must be a short lowercase word such as 'model' or 'checkpoint', got {kind!r}")
    if not isinstance(records, dict):
        raise _Problem(f"records must be a dict of name -> record, got {_type_name(records)}")
    if not isinstance(extra, dict):
        raise _Problem(f"extra must be a dict, got {_type_name(extra)}")
    nodes, arrays = {}, {}
    for name, value in records.items():
        if type(name) is not str or not NAME.match(name):
            raise _Problem(f"a record name must be a Python identifier, got {name!r}")
        nodes[name] = _encode(value, name, arrays, 0, {})
    _check_json(extra, "extra")
    manifest = {"format": FORMAT, "version": VERSION, "kind": kind, "records": nodes, "extra": extra}
    try:
        text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise _Problem(f"the manifest cannot be written as JSON: {error}") from None
    return text.encode("ascii"), arrays


def _payload(array: np.ndarray) -> np.ndarray:
    """The array's bytes in C order, little-endian (no copy for a contiguous native array)."""
    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return array.reshape(-1).view(np.uint8)


# ---- reading: manifest -> array specs -> records -------------------------------------------------

def _unique_keys(pairs) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice")
        result[key] = value
    return result


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is not finite")
    return value


def _no_constant(text: str):
    raise ValueError(f"{text} is not JSON")


def _array_spec(desc, where: str) -> ArraySpec:
    if type(desc) is not dict or set(desc) != {"dtype", "shape"}:
        raise _Problem(f"{where}: an array is described by a dtype and a shape, got {str(desc)[:100]}")
    dtype, shape = desc["dtype"], desc["shape"]
    if type(dtype) is not str or dtype not in DTYPES:
        raise _Problem(f"{where} has dtype {str(dtype)[:40]!r}; only float32 and float64 parameters "
                       f"(little-endian) are loaded")
    if (type(shape) is not list or len(shape) > MAX_NDIM
            or any(type(s) is not int or not 0 <= s <= MAX_ARCHIVE_BYTES for s in shape)):
        raise _Problem(f"{where} has shape {str(shape)[:100]}; expected a list of at most {MAX_NDIM} sizes, "
                       f"each an int from 0 to {MAX_ARCHIVE_BYTES}")
    spec = ArraySpec(where, dtype, tuple(shape))
    if spec.nbytes > MAX_ARCHIVE_BYTES:
        raise _Problem(f"{where} has shape {spec.shape}: {spec.nbytes:,} bytes, more than a model file holds")
    return spec


def _walk(node, where: str, specs: list, depth: int) -> None:
    """Check ``node`` against the grammar of manifest nodes and collect its arrays' specs, in file order."""
    if depth > MAX_DEPTH:
        raise _Problem(f"{where} is nested more than {MAX_DEPTH} deep")
    if node is None or type(node) in (bool, int, str, float):
        return
    if type(node) is not dict:
        raise _Problem(f"{where} holds a JSON {_type_name(node)}, which is not a node of a model file")
    keys = set(node)
    if keys == {"record", "fields"} and type(node["record"]) is str and type(node["fields"]) is dict:
        for key in sorted(node["fields"]):
            if not NAME.match(key):
                raise _Problem(f"{where} has a field named {key[:80]!r}, which is not an identifier")
            _walk(node["fields"][key], f"{where}.{key}", specs, depth + 1)
    elif keys == {"array"}:
        specs.append(_array_spec(node["array"], where))
    elif keys == {"tuple"} and type(node["tuple"]) is list:
        for i, item in enumerate(node["tuple"]):
            _walk(item, f"{where}[{i}]", specs, depth + 1)
    elif keys == {"float"} and type(node["float"]) is str and node["float"] in NONFINITE:
        pass
    elif keys == {"shared"} and type(node["shared"]) is str:
        pass
    else:
        raise _Problem(f"{where} holds an unknown node: {json.dumps(node)[:100]}")


def _parse_manifest(data: bytes) -> tuple[dict, dict[str, list[ArraySpec]]]:
    """(the manifest, array specs by record name), checked against the format."""
    if too_large(data):
        raise _Problem(f"the manifest is too large to load: {too_large(data)}")
    try:
        manifest = json.loads(data.decode("utf-8"), object_pairs_hook=_unique_keys,
                              parse_float=_finite, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise _Problem("the manifest is not UTF-8 text") from None
    except (ValueError, RecursionError) as error:
        raise _Problem(f"the manifest is not valid JSON ({str(error)[:200]})") from None
    if type(manifest) is not dict:
        raise _Problem("the manifest is not a JSON object")
    if manifest.get("format") != FORMAT:
        raise _Problem(f"not a lamina model file: the manifest's format is "
                       f"{str(manifest.get('format'))[:40]!r}, "
                       f"expected {FORMAT!r}")
    version = manifest.get("version")
    if type(version) is not int:
        raise _Problem(f"the manifest's format version is {str(version)[:40]!r}, expected an int")
    if version > VERSION:
        raise _Problem(f"the file is in format version {version}, newer than this lamina reads "
                       f"(version {VERSION}); upgrade lamina to load it")
    if version not in READABLE:
        raise _Problem(f"unknown format version {version}; this lamina reads versions {list(READABLE)}")
    if set(manifest) != TOP_KEYS:
        raise _Problem(_differ("the manifest", TOP_KEYS, set(manifest)))
    kind, records, extra = manifest["kind"], manifest["records"], manifest["extra"]
    if type(kind) is not str or not KIND.match(kind):
        raise _Problem(f"the manifest's kind is {str(kind)[:40]!r}, expected a short lowercase word")
    if type(records) is not dict or type(extra) is not dict:
        raise _Problem("the manifest's records and extra must be JSON objects")
    specs = {}
    for name in sorted(records):
        if not NAME.match(name):
            raise _Problem(f"the record name {name[:80]!r} is not an identifier")
        specs[name] = []
        _walk(records[name], name, specs[name], 0)
    return manifest, specs


def _build(node, where: str, arrays: dict, built: dict):
    """The value of a checked manifest node; records through their registered constructors (``built``: path ->
    record, for the shared ones)."""
    if node is None or type(node) in (bool, int, str, float):
        return node
    if "float" in node:
        return NONFINITE[node["float"]]
    if "shared" in node:
        if node["shared"] not in built:
            raise _Problem(f"{where} is the record at {node['shared'][:80]!r}, but no record was built "
                           f"there before")
        return built[node["shared"]]
    if "tuple" in node:
        return tuple(_build(item, f"{where}[{i}]", arrays, built) for i, item in enumerate(node["tuple"]))
    if "array" in node:
        raise _Problem(f"{where} holds an array, but only a parameter or buffer field (layers.param(), "
                       f"layers.buffer()) may")
    built[where] = _build_record(node, where, arrays, built)
    return built[where]


def _build_record(node: dict, where: str, arrays: dict, built: dict):
    name = node["record"]
    cls = registered_class(name)
    if cls is None:
        known = ", ".join(registered_names())
        if not NAME.match(name):
            raise _Problem(f"{where} names the kind {name[:80]!r}, which is not a registered class name; "
                           f"lamina "
                           f"never imports or calls what a file names (registered: {known})")
        raise _Problem(f"{where} is a {name}, which is not registered; if it is your own layer, decorate its "
                       f"class with @layers.register before loading (registered: {known})")
    init = [field for field in attrs.fields(cls) if field.init]
    stored = node["fields"]
    later = {field.name for field in init if field.default is not attrs.NOTHING} - set(stored)
    init = [field for field in init if field.name not in later]   # added since the file was written: defaults
    if set(stored) != {field.name for field in init}:
        expected = {field.name for field in init}
        raise _Problem(f"{where}: " + _differ(f"the {name} in the file", expected, set(stored)))
    kwargs = {}
    for field in init:
        child, at = stored[field.name], f"{where}.{field.name}"
        holds_array = type(child) is dict and set(child) == {"array"}
        if is_array_field(field) and not holds_array and not (child is None and is_optional(field)):
            raise _Problem(f"{at} is a parameter or buffer of {name}, but the file holds no array there")
        array = holds_array and is_array_field(field)
        kwargs[field.alias] = arrays[at] if array else _build(child, at, arrays, built)
    try:
        return cls(**kwargs)
    except Exception as error:  # any refusal by the class's own validation
        raise _Problem(f"{where}: {name} refuses the stored values "
                       f"({type(error).__name__}: {error})") from None


def _check_finite(arrays: dict) -> None:
    """A parameter or buffer holding NaN or inf is a damaged model (fit never returns one)."""
    for where, array in arrays.items():
        if not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise _Problem(f"the array {where} holds {bad} NaN or infinite value(s); "
                           f"model files hold finite parameters and buffers")


def _check_members(members, specs: list[ArraySpec]) -> dict:
    """The members by array path, once names, order and sizes agree with the manifest."""
    expected = [MANIFEST] + [spec.member for spec in specs]
    actual = [member.name for member in members]
    if actual != expected:
        missing = [n for n in expected if n not in set(actual)]
        unexpected = [n for n in actual if n not in set(expected)]
        if not missing and not unexpected:
            raise _Problem("the members are not in the order the manifest gives")
        parts = [f"lacks the member(s) [{', '.join(map(quote, missing[:5]))}]"] if missing else []
        if unexpected:
            parts.append(f"has unexpected member(s) [{', '.join(map(quote, unexpected[:5]))}]")
        raise _Problem("the archive " + " and ".join(parts))
    for spec, member in zip(specs, members[1:]):
        if member.size != spec.member_size:
            raise _Problem(f"the member {quote(member.name)} holds {member.size:,} bytes, but the manifest's "
                           f"{spec.dtype} {spec.shape} takes {spec.member_size:,}")
    return {spec.path: member for spec, member in zip(specs, members[1:])}


# ---- the public functions ------------------------------------------------------------------------

def write_records(path, records: dict, extra: dict | None = None, kind: str = "model") -> None:
    """Write ``records`` (name -> record tree) and the JSON dict ``extra`` to ``path``, atomically, as one
    model file.

    Anything the reader would refuse (an unregistered class, a float16 array, NaN in ``extra``, a
    file of 4 GiB or more) is a ModelFileError before anything is written.
    """
    path = os.fspath(path)
    try:
        data, arrays = _manifest(records, {} if extra is None else extra, kind)
        if len(data) > MAX_MANIFEST_BYTES:
            raise _Problem(f"the manifest would take {len(data):,} bytes; at most {MAX_MANIFEST_BYTES:,} are "
                           f"read")
        manifest, specs = _parse_manifest(data)            # what the reader will check, checked now
        for name, node in manifest["records"].items():
            _build(node, name, arrays, {})
        _check_finite(arrays)
        members = [(MANIFEST, [data])] + [
            (spec.member, [npy_header(spec.numpy_dtype, spec.shape), _payload(arrays[spec.path])])
            for name in sorted(specs) for spec in specs[name]]
        size = archive_size(members)
        if size > MAX_ARCHIVE_BYTES or len(members) > MAX_MEMBERS:
            raise _Problem(f"the file would take {size:,} bytes in {len(members)} members; a model file "
                           f"holds "
                           f"less than 4 GiB in fewer than {MAX_MEMBERS + 1} members (a ZIP without ZIP64)")
    except _Problem as problem:
        raise ModelFileError(path, f"cannot save: {problem}") from None
    write_atomically(path, lambda file: write_archive(file, members))


def read_records(path, names=None) -> tuple[dict, dict, str]:
    """(records by name, extra, kind) from the model file at ``path``; ``names`` picks the records to rebuild
    (all by default).

    Arrays of the records not picked are not read. A missing file is a FileNotFoundError; a
    damaged, foreign or unloadable one a ModelFileError naming it.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        members = read_directory(file, path, first=MANIFEST)
        try:
            if members[0].size > MAX_MANIFEST_BYTES:
                raise _Problem(f"the manifest takes {members[0].size:,} bytes; at most "
                               f"{MAX_MANIFEST_BYTES:,} are read")
            manifest, specs = _parse_manifest(read_member(file, path, members[0]))
            records = manifest["records"]
            wanted = sorted(records) if names is None else list(names)
            for name in wanted:
                if name not in records:
                    raise _Problem(f"the file holds no {name!r} record (it holds {sorted(records)})")
            by_path = _check_members(members, [spec for name in sorted(specs) for spec in specs[name]])
            arrays = {spec.path: read_array(file, path, by_path[spec.path], spec.numpy_dtype, spec.shape)
                      for name in wanted for spec in specs[name]}
            _check_finite(arrays)
            built = {name: _build(records[name], name, arrays, {}) for name in wanted}
        except _Problem as problem:
            raise ModelFileError(path, str(problem)) from None
    return built, manifest["extra"], manifest["kind"]


def save(path, model, **extra) -> None:
    """Save ``model`` (a layer record, e.g. a Sequence) and the JSON ``extra`` to ``path`` as one .npz,
    atomically."""
    if not attrs.has(type(model)):
        raise ModelFileError(os.fspath(path), f"cannot save: the model must be a layer record, got "
                                              f"{_type_name(model)}")
    write_records(path, {"model": model}, extra, kind="model")


def load(path):
    """The model in the model file (or checkpoint) at ``path``, rebuilt through its constructors."""
    return read_records(path, names=["model"])[0]["model"]


def load_extra(path) -> dict:
    """The ``extra`` JSON saved with the model at ``path`` (no array is read)."""
    return read_records(path, names=[])[1]
