"""CloudFormation templates as data: short-form intrinsics and a YAML dump through PyYAML.

Templates are built as dicts and lists and written by a YAML library, never by hand-formatted
strings, so quoting and nesting are always valid YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

# CloudFormation's limits on a template's size (API reference, CreateStack/ValidateTemplate):
# sent in the request (TemplateBody, what `aws cloudformation deploy` does without --s3-bucket),
# at most 51,200 bytes; from S3 (TemplateURL), at most 460,800 (the API reference's figure; the
# quotas page now says 1 MB: the smaller is checked).
TEMPLATE_BODY_MAX_BYTES = 51_200
TEMPLATE_URL_MAX_BYTES = 460_800


@dataclass(frozen=True)
class Tag:
    """A CloudFormation short-form intrinsic such as ``!Ref X`` or ``!If [c, a, b]``."""

    name: str
    value: Any


class _Dumper(yaml.SafeDumper):
    """Block style, keys in the order written, intrinsics as tags."""


def _represent_tag(dumper: yaml.SafeDumper, tag: Tag) -> Any:
    if isinstance(tag.value, list):
        return dumper.represent_sequence(f"!{tag.name}", tag.value, flow_style=True)
    if isinstance(tag.value, dict):
        return dumper.represent_mapping(f"!{tag.name}", tag.value)
    return dumper.represent_scalar(f"!{tag.name}", str(tag.value))


def _represent_str(dumper: yaml.SafeDumper, text: str) -> Any:
    # Multi-line text (SQL, JSON documents) as a literal block, readable in a review.
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(Tag, _represent_tag)
_Dumper.add_representer(str, _represent_str)


def dump_yaml(template: dict[str, Any]) -> str:
    text: str = yaml.dump(
        template, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100
    )
    return text


class _Loader(yaml.SafeLoader):
    """Reads templates back with their intrinsics as ``Tag`` values (for tests and merges)."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tag:
    value: Any
    if isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        value = loader.construct_scalar(node)  # type: ignore[arg-type]
    return Tag(suffix, value)


_Loader.add_multi_constructor("!", _construct_tag)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)
