"""A protobuf message as the API's JSON (pure)."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message


def to_json(msg: Message) -> dict[str, Any]:
    """A protobuf message as JSON with lowerCamelCase names, enums by name, timestamps as
    RFC 3339, 64-bit integers as numbers (protobuf's own JSON mapping makes them strings) and an
    absent optional field (a value that was not measured) as null."""
    out: dict[str, Any] = {}
    for fd in msg.DESCRIPTOR.fields:
        value = getattr(msg, fd.name)
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            vfd = fd.message_type.fields_by_name["value"]
            out[fd.json_name] = {str(k): _scalar(vfd, v) for k, v in value.items()}
        elif fd.is_repeated:
            out[fd.json_name] = [_scalar(fd, v) for v in value]
        elif fd.type == FieldDescriptor.TYPE_MESSAGE or fd.has_presence:  # absent (not measured): null
            out[fd.json_name] = _scalar(fd, value) if msg.HasField(fd.name) else None
        else:
            out[fd.json_name] = _scalar(fd, value)
    return out


def _scalar(fd: FieldDescriptor, v: Any) -> Any:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        if fd.message_type.full_name == "google.protobuf.Timestamp":
            return v.ToJsonString()
        return to_json(v)
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return fd.enum_type.values_by_number[v].name if v in fd.enum_type.values_by_number else v
    if isinstance(v, float):
        return round(v, 4)
    return v
