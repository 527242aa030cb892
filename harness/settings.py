"""One schema per setting: type, range, allowed values, nullability, default, documentation and
the conditions under which it has an effect, declared once, next to the code that uses it.

Everything else follows from the schemas:

* the YAML of every config group (``conf/backbone``, ``conf/dataset``, ``conf/experiment``,
  ``conf/config.yaml``) is generated from them (:mod:`harness.conf_gen`; a test fails when a
  file is out of date);
* config validation (:func:`harness.config.validate_tree`): an unknown key, a value of the
  wrong type or out of range, a misspelt choice, a missing required value, or a key that has
  no effect in the chosen configuration (a seed without a shuffle) is one
  :class:`~harness.errors.ConfigError` line naming the key, before any run dir exists;
* the factories (:func:`build`): library callers get the same defaults and the same errors as
  the command line;
* the wrong-value probe in the tests (:meth:`Kind.wrong_values`), which covers new keys
  automatically.

A backbone or image source declares ``settings()`` (a classmethod returning a :class:`Schema`,
extending its base class's); an experiment module declares ``SETTINGS`` (an
:class:`ExperimentSettings`).  Nodes that hold a whole config group (``backbone``,
``datasets.<key>``, ``protocol``) are :class:`Node` / :class:`NodeMap` settings: they are
validated by the schema of the component their ``name`` chooses.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import ConfigError
from .scores import SEED_MAX  # the seeds numpy and torch both accept

#: Hydra's "required, no default" marker
MISSING = "???"


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_num(v) -> bool:
    return (_is_int(v) or isinstance(v, (float, np.floating))) and not isinstance(v, bool)


def _show(v) -> str:
    if isinstance(v, str):
        return repr(v)
    return "null" if v is None else str(v).replace("True", "true").replace("False", "false")


# ---------------------------------------------------------------------------------- kinds
class Kind:
    """What values a setting accepts.  ``check`` returns the value (possibly normalised) or
    raises :class:`ConfigError`; ``wrong_values`` lists values it must refuse (the probe)."""

    def describe(self) -> str:
        raise NotImplementedError

    def accepts(self, v) -> bool:
        raise NotImplementedError

    def normalise(self, v):
        return v

    def check(self, v, path: str):
        if not self.accepts(v):
            raise ConfigError(f"{path} must be {self.describe()}, got {_show(v)}{self.hint(v)}")
        return self.normalise(v)

    def hint(self, v) -> str:
        return ""

    def wrong_values(self) -> list:
        return []


@dataclass(frozen=True)
class Bool(Kind):
    def describe(self) -> str:
        return "true or false"

    def accepts(self, v) -> bool:
        return isinstance(v, (bool, np.bool_))

    def wrong_values(self) -> list:
        return ["yes", 1, "", [True]]


@dataclass(frozen=True)
class Int(Kind):
    lo: int | None = None
    hi: int | None = None

    def describe(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"an integer from {self.lo} to {self.hi}"
        if self.lo is not None:
            return f"an integer >= {self.lo}"
        if self.hi is not None:
            return f"an integer <= {self.hi}"
        return "an integer"

    def accepts(self, v) -> bool:
        if not _is_int(v):
            return False
        return (self.lo is None or v >= self.lo) and (self.hi is None or v <= self.hi)

    def normalise(self, v):
        return int(v)

    def wrong_values(self) -> list:
        out = ["abc", 1.5, True, "", [1]]
        if self.lo is not None:
            out.append(self.lo - 1)
        if self.hi is not None:
            out.append(self.hi + 1)
        else:
            out.append(1e20)
        return out


@dataclass(frozen=True)
class Seed(Int):
    """A random seed: numpy's RandomState and torch's generators accept [0, 2**32)."""

    lo: int | None = 0
    hi: int | None = SEED_MAX

    def describe(self) -> str:
        return f"a seed, an integer from 0 to {SEED_MAX} (2**32 - 1)"

    def wrong_values(self) -> list:
        return ["abc", 1.5, True, -1, 2**32, 5e9, 1e20, ""]


@dataclass(frozen=True)
class Float(Kind):
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # lo itself is not allowed
    hi_open: bool = False

    def describe(self) -> str:
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {self.lo:g}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='} {self.hi:g}")
        return "a number" + (" " + " and ".join(parts) if parts else "")

    def accepts(self, v) -> bool:
        if not _is_num(v) or not math.isfinite(float(v)):
            return False
        v = float(v)
        if self.lo is not None and (v < self.lo or (self.lo_open and v == self.lo)):
            return False
        if self.hi is not None and (v > self.hi or (self.hi_open and v == self.hi)):
            return False
        return True

    def normalise(self, v):
        return float(v)

    def wrong_values(self) -> list:
        out = ["abc", True, "", [1.0], float("nan")]
        if self.lo is not None:
            out.append(self.lo if self.lo_open else self.lo - 1)
        if self.hi is not None:
            out.append(self.hi if self.hi_open else self.hi + 1)
        return out


@dataclass(frozen=True)
class Str(Kind):
    """A non-empty string (paths, names, free text)."""

    what: str = "a non-empty string"
    #: a (value, path) check for the form, e.g. a callable spec; raises ConfigError
    form: Callable | None = None

    def describe(self) -> str:
        return self.what

    def accepts(self, v) -> bool:
        return isinstance(v, str) and v.strip() != ""

    def check(self, v, path: str):
        v = super().check(v, path)
        if self.form is not None:
            self.form(v, path)
        return v

    def hint(self, v) -> str:
        if _is_num(v):
            return " (Hydra read it as a number: quote it, e.g. key=\"'0123'\")"
        return ""

    def wrong_values(self) -> list:
        return ["", 12, [1], {"a": 1}]


@dataclass(frozen=True)
class Path(Str):
    what: str = "a path (a non-empty string)"


@dataclass(frozen=True)
class Choice(Kind):
    choices: tuple = ()
    #: values YAML/Hydra turn into something else, mapped back (e.g. 0_1 -> 1)
    aliases: tuple = ()

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.choices))

    def _alias(self, v):
        for a, b in self.aliases:
            if type(a) is type(v) and a == v:
                return b
        return v

    def accepts(self, v) -> bool:
        v = self._alias(v)
        return any(type(v) is type(c) and v == c for c in self.choices)

    def normalise(self, v):
        return self._alias(v)

    def hint(self, v) -> str:
        close = difflib.get_close_matches(str(v), [str(c) for c in self.choices], n=1)
        return f"; did you mean {close[0]}?" if close else ""

    def wrong_values(self) -> list:
        first = str(self.choices[0])
        out = [first + "x", first.upper() + "_", "", 987654321, [first]]
        return [w for w in out if not self.accepts(w)]


@dataclass(frozen=True)
class Fixed(Kind):
    """One allowed value, with the reason (a network with a fixed input size)."""

    value: Any = None
    why: str = ""

    def describe(self) -> str:
        return f"{self.value}" + (f" ({self.why})" if self.why else "")

    def accepts(self, v) -> bool:
        return type(v) is type(self.value) and v == self.value

    def wrong_values(self) -> list:
        return [self.value + 1 if isinstance(self.value, int) else "x", "abc", [self.value]]


@dataclass(frozen=True)
class IntOrAuto(Kind):
    lo: int = 1

    def describe(self) -> str:
        return f"auto or an integer >= {self.lo}"

    def accepts(self, v) -> bool:
        return v == "auto" or (_is_int(v) and v >= self.lo)

    def wrong_values(self) -> list:
        return ["autox", self.lo - 1, 1.5, True, ""]


@dataclass(frozen=True)
class AutoOrBool(Kind):
    def describe(self) -> str:
        return "auto, true or false"

    def accepts(self, v) -> bool:
        return v == "auto" or isinstance(v, (bool, np.bool_))

    def wrong_values(self) -> list:
        return ["yes", "autox", 1, ""]


@dataclass(frozen=True)
class ListOf(Kind):
    item: Kind = field(default_factory=lambda: Int())
    min_len: int = 1
    unique: bool = False

    def describe(self) -> str:
        base = f"a list of {self.item.describe()}"
        return base if self.min_len == 0 else f"a non-empty list of {self.item.describe()}"

    def accepts(self, v) -> bool:
        return isinstance(v, (list, tuple)) and len(v) >= self.min_len

    def check(self, v, path: str):
        if not self.accepts(v):
            raise ConfigError(f"{path} must be {self.describe()}, got {_show(v)}")
        out = [self.item.check(x, f"{path}[{i}]") for i, x in enumerate(v)]
        if self.unique and len({repr(x) for x in out}) != len(out):
            raise ConfigError(f"{path} lists a value twice: {_show(list(v))}")
        return out

    def wrong_values(self) -> list:
        out = ["abc", {"a": 1}]
        if self.min_len:
            out.append([])
        out += [[w] for w in self.item.wrong_values() if not isinstance(w, list)][:3]
        return out


@dataclass(frozen=True)
class OneOrList(ListOf):
    """One value or a non-empty list of them (``n_splits=10`` or ``n_splits=[1,10]``)."""

    def describe(self) -> str:
        return f"{self.item.describe()} or a non-empty list of them"

    def accepts(self, v) -> bool:
        return self.item.accepts(v) or super().accepts(v)

    def check(self, v, path: str):
        if not isinstance(v, (list, tuple)):
            return self.item.check(v, path)
        return super().check(v, path)

    def wrong_values(self) -> list:
        return [w for w in super().wrong_values() if w != "abc"] + self.item.wrong_values()[:2]


@dataclass(frozen=True)
class AnyMapping(Kind):
    """Free-form mapping (a generator's kwargs): keys are the user's own."""

    def describe(self) -> str:
        return "a mapping"

    def accepts(self, v) -> bool:
        return isinstance(v, dict)

    def wrong_values(self) -> list:
        return ["abc", [1]]


@dataclass(frozen=True)
class AnyList(Kind):
    """A free-form list (validated by its consumer, e.g. ``paper.experiments``)."""

    def describe(self) -> str:
        return "a list"

    def accepts(self, v) -> bool:
        return isinstance(v, (list, tuple))

    def wrong_values(self) -> list:
        return ["abc", {"a": 1}]


# ---------------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class When:
    """A condition on sibling settings (the mapping the setting lives in), e.g.
    ``When("shuffle", not_in=("none",))``; ``text`` says it in words for messages."""

    key: str
    is_in: tuple | None = None
    not_in: tuple | None = None
    fn: Callable | None = None  # (siblings dict) -> bool, for conditions on several keys
    text: str = ""

    def holds(self, siblings: dict) -> bool:
        if self.fn is not None:
            return bool(self.fn(siblings))
        v = siblings.get(self.key)
        if self.is_in is not None:
            return v in self.is_in
        return v not in (self.not_in or ())

    def describe(self) -> str:
        if self.text:
            return self.text
        if self.is_in is not None:
            return f"{self.key}={'|'.join(map(_show_bare, self.is_in))}"
        return f"{self.key} other than {'|'.join(map(_show_bare, self.not_in or ()))}"


def _show_bare(v) -> str:
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


# ---------------------------------------------------------------------------------- settings
UNSET = object()


@dataclass(frozen=True)
class Setting:
    """One key: its kind, default, documentation and when it applies.

    ``yaml``: what the YAML default says when it differs from ``default`` (an interpolation such
    as ``${device}``); ``required``: no default (``???`` in YAML); ``applies``: a :class:`When`
    under which a value other than the default has an effect (otherwise: an error);
    ``required_when``: a :class:`When` under which the value may not be null;
    ``in_yaml``: False for library-only parameters (e.g. a backbone's ``cache_dir``, set by the
    run from ``cache.dir``).
    """

    name: str
    kind: Kind
    default: Any = None
    doc: str = ""
    nullable: bool = False
    required: bool = False
    yaml: Any = UNSET
    applies: When | None = None
    required_when: When | None = None
    in_yaml: bool = True

    def yaml_default(self):
        if self.required:
            return MISSING
        return self.default if self.yaml is UNSET else self.yaml

    def check(self, value, path: str):
        if value is None:
            if self.nullable:
                return None
            if self.required:
                raise ConfigError(
                    f"{path} is required: set {path}=<value>"
                    + (f" ({self.doc})" if self.doc else "")
                )
            raise ConfigError(f"{path} must be {self.kind.describe()}, got null")
        if isinstance(value, str) and value == MISSING:
            raise ConfigError(
                f"{path} is required: set {path}=<value>" + (f" ({self.doc})" if self.doc else "")
            )
        return self.kind.check(value, path)

    def wrong_values(self) -> list:
        out = list(self.kind.wrong_values())
        if not self.nullable:
            out.append(None)
        return out


@dataclass(frozen=True)
class Section:
    """A mapping of settings under one key (``kid``, ``splits``, ``cache`` ...)."""

    name: str
    schema: Schema
    doc: str = ""
    nullable: bool = False


@dataclass(frozen=True)
class Node:
    """A key holding one config-group node (``backbone``, ``dataset``, ``reference``).

    ``default``: the group option composed by default (None: no node unless the user adds one
    with ``+group@key=option``); ``overrides``: values the experiment sets in that node.
    """

    name: str
    group: str
    default: str | None = None
    overrides: dict = field(default_factory=dict)
    doc: str = ""
    nullable: bool = False


@dataclass(frozen=True)
class NodeMap:
    """A key holding a mapping of config-group nodes (``backbones.<key>``, ``datasets.<key>``)."""

    name: str
    group: str
    defaults: dict = field(default_factory=dict)  # key -> group option
    doc: str = ""


Entry = Setting | Section | Node | NodeMap


class Schema:
    """An ordered set of entries, plus checks that involve several keys at once."""

    def __init__(self, entries: Iterable[Entry] = (), checks: Iterable[Callable] = ()):
        self.entries: dict[str, Entry] = {}
        for e in entries:
            self.entries[e.name] = e
        self.checks = list(checks)

    # -- composition -------------------------------------------------------------------------
    def extend(self, *entries: Entry, checks: Iterable[Callable] = ()) -> Schema:
        """A copy with entries added (or replaced, keeping their position) and checks added."""
        out = Schema(self.entries.values(), [*self.checks, *checks])
        for e in entries:
            out.entries[e.name] = e
        return out

    def insert_after(self, name: str, *entries: Entry) -> Schema:
        """A copy with ``entries`` placed right after entry ``name`` (the YAML's order)."""
        out = Schema([], self.checks)
        for key, e in self.entries.items():
            out.entries[key] = e
            if key == name:
                for new in entries:
                    out.entries[new.name] = new
        return out

    def with_changes(self, name: str, **changes) -> Schema:
        """A copy in which setting ``name`` has some fields changed (default, kind, doc ...)."""
        out = Schema(self.entries.values(), self.checks)
        out.entries[name] = replace(self.entries[name], **changes)
        return out

    def without(self, *names: str) -> Schema:
        return Schema((e for n, e in self.entries.items() if n not in names), self.checks)

    def __contains__(self, name) -> bool:
        return name in self.entries

    def __getitem__(self, name) -> Entry:
        return self.entries[name]

    def settings(self) -> list[Setting]:
        return [e for e in self.entries.values() if isinstance(e, Setting)]

    # -- defaults and library calls ------------------------------------------------------------
    def defaults(self) -> dict:
        """Python defaults of the plain settings (library calls; no interpolations)."""
        out = {}
        for e in self.entries.values():
            if isinstance(e, Setting) and not e.required:
                out[e.name] = copy.deepcopy(e.default)
            elif isinstance(e, Section):
                out[e.name] = e.schema.defaults()
        return out

    def resolve(self, params: dict, where: str) -> dict:
        """``params`` checked and completed with defaults: what a constructor receives.

        Unknown names, wrong types, missing required values and keys without effect are one
        :class:`ConfigError` line, exactly as for the command line.
        """
        values = {**self.defaults(), **params}
        try:
            return self.validate(values, "", partial_ok=False, library=True)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    # -- validation ----------------------------------------------------------------------------
    def validate(
        self, values: dict, path: str, partial_ok: bool = False, library: bool = False
    ) -> dict:
        """Check one mapping against this schema; return it with values normalised.

        ``path`` is the dotted key of the mapping (for messages); ``partial_ok``: keys of the
        schema may be absent (a node that will get defaults later); ``library``: a library
        call, which may also pass the parameters the run sets itself (``in_yaml=False``).
        """
        if not isinstance(values, dict):
            raise ConfigError(f"{path} must be a mapping of settings, got {_show(values)}")
        prefix = f"{path}." if path else ""
        out = {}
        for key, value in values.items():
            entry = self.entries.get(key)
            if entry is None or (isinstance(entry, Setting) and not entry.in_yaml and not library):
                if library:
                    raise unknown_parameter(key, self)
                raise unknown_key(key, self, path)
            out[key] = validate_entry(entry, value, f"{prefix}{key}")
        if not partial_ok:
            for name, e in self.entries.items():
                if name in out:
                    continue
                if isinstance(e, Setting) and e.required:
                    raise ConfigError(f"{prefix}{name} is required: set {prefix}{name}=<value>")
                if (isinstance(e, Node) and e.default is not None and not e.nullable) or (
                    isinstance(e, Section) and not e.nullable and not library
                ):
                    what = f"{prefix}{name}=<{e.group}>" if isinstance(e, Node) else "it back"
                    raise ConfigError(
                        f"{prefix}{name} is required by this experiment (removed with "
                        f"~{prefix}{name}?); set {what}"
                    )
        self._rules(out, prefix)
        for check in self.checks:
            check(out, prefix)
        return out

    def _rules(self, values: dict, prefix: str) -> None:
        for name, e in self.entries.items():
            if not isinstance(e, Setting) or name not in values:
                continue
            v = values[name]
            if e.required_when is not None and v is None and e.required_when.holds(values):
                raise ConfigError(
                    f"{prefix}{name} is required with {_prefixed(e.required_when, prefix)}: "
                    f"set {prefix}{name}=<{'seed' if isinstance(e.kind, Seed) else 'value'}>"
                )
            if (
                e.applies is not None
                and v is not None
                and not _same(v, e.default)
                and not e.applies.holds(values)
            ):
                raise ConfigError(
                    f"{prefix}{name}={_show_bare(v)} has no effect unless "
                    f"{_prefixed(e.applies, prefix)}; remove it"
                    + (
                        f" (or set {_prefixed(e.applies, prefix)})"
                        if e.applies.fn is None and e.applies.is_in
                        else ""
                    )
                )


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b or (_is_num(a) and _is_num(b) and a == b)


def _prefixed(when: When, prefix: str) -> str:
    text = when.describe()
    if when.text or not prefix:
        return text
    return prefix + text


def unknown_key(key, schema: Schema, path: str) -> ConfigError:
    names = [n for n, e in schema.entries.items() if not (isinstance(e, Setting) and not e.in_yaml)]
    close = difflib.get_close_matches(str(key), names, n=1)
    full = f"{path}.{key}" if path else str(key)
    hint = f"; did you mean '{path + '.' if path else ''}{close[0]}'?" if close else ""
    where = f"under '{path}'" if path else "at the top level"
    return ConfigError(f"unknown config key '{full}' (no such key {where}){hint}")


def unknown_parameter(key, schema: Schema) -> ConfigError:
    """A library call's unknown keyword (e.g. ``backbones.load_backbone(..., resise=...)``)."""
    names = [n for n in schema.entries if n != "name"]
    close = difflib.get_close_matches(str(key), names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown parameter '{key}'{hint} (valid: {', '.join(names)})")


def validate_entry(entry: Entry, value, path: str):
    if isinstance(entry, Setting):
        return entry.check(value, path)
    if isinstance(entry, Section):
        if value is None and entry.nullable:
            return None
        return entry.schema.validate(value, path)
    if isinstance(entry, Node):
        if value is None:
            if entry.nullable or entry.default is None:
                return None
            raise ConfigError(f"{path} must be a {entry.group} (e.g. {path}={entry.default})")
        return validate_node(entry.group, value, path)
    if isinstance(entry, NodeMap):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ConfigError(
                f"{path} must be a mapping of {entry.group} nodes "
                f"(+{entry.group}@{path}.<key>=<option>), got {_show(value)}"
            )
        return {k: validate_node(entry.group, v, f"{path}.{k}") for k, v in value.items()}
    raise TypeError(entry)


# ---------------------------------------------------------------------------------- groups
#: group name -> function(name) -> Schema of that option's component (registered by the layers
#: that own the components, so this module imports none of them)
_GROUP_SCHEMAS: dict[str, Callable[[str], Schema]] = {}
_GROUP_NAMES: dict[str, Callable[[], list]] = {}


def register_group(group: str, schema_of: Callable, names: Callable) -> None:
    _GROUP_SCHEMAS[group] = schema_of
    _GROUP_NAMES[group] = names


def _load_groups() -> None:
    if {"backbone", "dataset", "protocol"} <= set(_GROUP_SCHEMAS):
        return
    import importlib

    for mod in ("harness.backbones", "harness.data", "harness.protocols"):
        importlib.import_module(mod)


def group_schema(group: str, name) -> Schema:
    _load_groups()
    return _GROUP_SCHEMAS[group](name)


def validate_node(group: str, value, path: str) -> dict:
    _load_groups()
    if not isinstance(value, dict):
        raise ConfigError(
            f"{path} must be a {group} node: choose one with {path}=<{group}> "
            f"(valid: {', '.join(map(str, _GROUP_NAMES[group]()))}), got {_show(value)}"
        )
    name = value.get("name")
    valid = _GROUP_NAMES[group]()
    if name not in valid:
        close = difflib.get_close_matches(str(name), list(map(str, valid)), n=1)
        raise ConfigError(
            f"{path}.name: unknown {group} {_show(name)}; valid: {', '.join(map(str, valid))}"
            + (f"; did you mean {close[0]}?" if close else "")
        )
    return group_schema(group, name).validate(value, path)


# ---------------------------------------------------------------------------------- experiments
@dataclass
class ExperimentSettings:
    """An experiment's whole config: its description, its keys, and which run-wide keys it uses.

    ``uses_splits``: the experiment scores IS over splits, so ``n_splits``, ``ddof``,
    ``splits.*`` and ``protocol=`` apply (``n_splits_many``: it sweeps over a list of them).
    """

    description: str
    schema: Schema = field(default_factory=Schema)
    uses_splits: bool = False
    n_splits_default: Any = 10
    n_splits_many: bool = False
    uses_protocol: bool | None = None  # default: uses_splits
    #: the dataset nodes a run with these (validated) values reads, as dotted paths (``dataset``,
    #: ``datasets`` for the whole map, ``datasets.<key>``); None: every dataset node it has.
    #: Missing files of these are reported at validation, before any framework is imported.
    sources: Callable[[dict], Iterable[str]] | None = None
    #: text placed above the keys in the generated YAML
    notes: str = ""


# ---------------------------------------------------------------------------------- factory
@dataclass(frozen=True)
class Registry:
    """The named classes of one config group (``backbone``, ``dataset``): ``lookup(name)`` gives
    the class (an unknown name is one line listing the valid ones); ``example`` is what an error
    shows when a config node has no name."""

    group: str
    lookup: Callable[[str], Any]
    example: str


def node_values(node) -> dict:
    """A config node (OmegaConf or a mapping) as a plain dict, interpolations resolved."""
    from omegaconf import DictConfig, OmegaConf

    return (
        OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    )


def build(registry: Registry, name: str | None, params) -> Any:
    """One factory for every registry: the class ``name`` of ``registry`` (None: the ``name`` in
    ``params``, a config node) with ``params`` checked and completed from its settings (unset
    ones take their defaults; a wrong one is one :class:`ConfigError` line naming it)."""
    values = node_values(params)
    name = values.pop("name", None) if name is None else name
    if name is None:
        raise ConfigError(f"{registry.group} config needs a name (e.g. {registry.example})")
    values.pop("name", None)
    cls = registry.lookup(name)
    resolved = cls.settings().resolve(values, where=f"{registry.group} {name}")
    resolved.pop("name", None)
    return cls(**resolved)


# ---------------------------------------------------------------------------------- walking
def check_path(schema: Schema, values: dict, path: str) -> None:
    """Raise the unknown-key error (with its suggestion) for the first part of the dotted
    ``path`` that no schema declares; return quietly when every part exists."""
    parts, prefix = path.split("."), ""
    i = 0
    while i < len(parts):
        part = parts[i]
        entry = schema.entries.get(part)
        if entry is None or (isinstance(entry, Setting) and not entry.in_yaml):
            raise unknown_key(part, schema, prefix)
        full = f"{prefix}.{part}" if prefix else part
        node = values.get(part) if isinstance(values, dict) else None
        if isinstance(entry, Section):
            schema, values, prefix = entry.schema, node or {}, full
        elif isinstance(entry, Node) and isinstance(node, dict):
            schema, values, prefix = group_schema(entry.group, node.get("name")), node, full
        elif isinstance(entry, Node) and node is None and i + 1 < len(parts):
            # a key inside a node that is not there (reference.root= without a reference)
            raise ConfigError(
                f"'{path}' cannot be set: {full} is not chosen (null); choose it first with "
                f"{add_node_syntax(entry.group, full, stats='reference_stats' in schema)}"
            )
        elif isinstance(entry, NodeMap) and isinstance(node, dict) and i + 1 < len(parts):
            key = parts[i + 1]
            if key not in node:
                return  # a new node of the map: Hydra says how to add one
            sub = node[key]
            schema, values, prefix = (
                group_schema(entry.group, sub.get("name")),
                sub,
                f"{full}.{key}",
            )
            i += 1
        else:
            return
        i += 1


def add_node_syntax(group: str, path: str, stats: bool = False) -> str:
    """How a user adds the node ``path`` of config group ``group`` that is not in the config:
    ``+dataset@reference=folder reference.root=<dir>``, with the ``reference=<dir>`` shorthand
    (:func:`harness.config.expand_shorthands`) and, where the experiment takes one (``stats``),
    ``reference_stats=<file.npz>``."""
    if group != "dataset":
        return f"+{group}@{path}=<{group}>"
    text = f"+dataset@{path}=folder {path}.root=<dir>"
    alternatives = [f"{path}=<dir>"] if path == "reference" else []
    if stats:
        alternatives.append("reference_stats=<file.npz>")
    return text + (f" (or {' or '.join(alternatives)})" if alternatives else "")


def leaves(schema: Schema, values: dict, path: str = ""):
    """(dotted path, Setting, parent mapping) of every plain setting present in ``values``,
    descending into sections and group nodes (the wrong-value probe walks this)."""
    prefix = f"{path}." if path else ""
    for key, value in values.items():
        e = schema.entries.get(key)
        p = f"{prefix}{key}"
        if isinstance(e, Setting):
            yield p, e, values
        elif isinstance(e, Section) and isinstance(value, dict):
            yield from leaves(e.schema, value, p)
        elif isinstance(e, Node) and isinstance(value, dict):
            yield from leaves(group_schema(e.group, value.get("name")), value, p)
        elif isinstance(e, NodeMap) and isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, dict):
                    yield from leaves(group_schema(e.group, v.get("name")), v, f"{p}.{k}")
