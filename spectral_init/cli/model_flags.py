"""A pydantic model's fields as a command's flags, made by pydantic-settings' CLI source.

Every field becomes ``--path.to.field`` (kebab case; nested models by their field's name, a nested
model also whole as a JSON object), with the field's description, type, allowed values and default
as its help; a field added to the model is a flag without a line here. Shorter names a command has
always taken (the reference's ``--N``, ``--nepochs``) are shortcuts. Only the flags given come back
(``given``), as the nested dict the model validates, so that they override a config file field by
field; values arrive as text and pydantic checks them with the rest of the config, whose message
names the field.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic_settings import CliSettingsSource

__all__ = ["ModelFlags"]


class ModelFlags:
    """The fields of ``model`` added to ``parser`` in a group of their own.

    ``shortcuts`` maps a field's flag (``"data.N"``, ``"model.fno-width"``) to the other names it also
    takes, without dashes (``"N"``, ``["nepochs", "torch-epochs"]``); every name is long (``--N``).
    """

    def __init__(self, parser: argparse.ArgumentParser, model: type[BaseModel], *, title: str,
                 description: str, shortcuts: Mapping[str, str | Sequence[str]] | None = None) -> None:
        group = parser.add_argument_group(title, description)

        def add_argument(target: Any, *names: str, **options: Any) -> argparse.Action:
            # pydantic-settings gives one-letter names one dash (-N); this project's flags have two
            names = tuple(f"-{n}" if len(n) == 2 and n[0] == "-" != n[1] else n for n in names)
            if options.get("metavar") == "JSON":  # a table whole; pydantic-settings' "(default: {})" is not its default
                options["help"] = f"the {names[0].lstrip('-')} table whole, as a JSON object"
            elif "help" in options:
                options["help"] = options["help"].replace("(ifdef: required)", "(required with the table)")
            return (group if target is parser else target).add_argument(*names, **options)

        self._source: CliSettingsSource[Any] = CliSettingsSource(
            model,  # type: ignore[arg-type] - a BaseModel's fields serve as well as a BaseSettings'
            root_parser=parser,
            cli_kebab_case=True,
            cli_hide_none_type=True,
            cli_implicit_flags=True,  # a bool field is --name / --no-name
            cli_shortcuts={k: [v] if isinstance(v, str) else list(v) for k, v in (shortcuts or {}).items()},
            add_argument_method=add_argument,
            formatter_class=parser.formatter_class,
        )

    def given(self, args: argparse.Namespace) -> dict[str, Any]:
        """The fields set by flags in ``args`` (parsed by the parser given), nested as the model's."""
        return dict(self._source(parsed_args=args)())
