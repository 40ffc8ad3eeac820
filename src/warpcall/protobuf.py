"""aspyx-service's protobuf module on warpcall's dispatch-protobuf codecs.

warpcall derives one request and one response message per service method from its
signature (``warpcall.wire.protobuf_codec`` describes the mapping); the dispatch-protobuf
channel (:class:`ProtobufChannel`, aspyx-service's name of
``warpcall.channels.dispatch.DispatchProtobufChannel``) carries them. This module gives
access to those messages as aspyx-service's ``ProtobufManager`` does: the message
classes of a method, and the ``.proto`` text of everything a component's services use
(``report()``, e.g. to write clients in other languages).

google.protobuf is imported on first use, not with this module.
"""

from __future__ import annotations

import threading
import types
import typing
from typing import TYPE_CHECKING, Any, Callable, Union

from warpcall.di import injectable
from warpcall.service import ComponentDescriptor, component_descriptor, service_descriptor

if TYPE_CHECKING:
    from google.protobuf.descriptor_pb2 import (
        DescriptorProto,
        EnumDescriptorProto,
        FieldDescriptorProto,
        FileDescriptorProto,
        ServiceDescriptorProto,
    )

    from warpcall.channels.dispatch import DispatchProtobufChannel as ProtobufChannel
    from warpcall.wire.protobuf_codec import ProtobufMethodCodec
else:
    from warpcall._lazy import export_lazily

    # the channel module loads the HTTP clients: only when the name is used
    __getattr__, __dir__ = export_lazily(
        __name__, {"ProtobufChannel": "warpcall.channels.dispatch:DispatchProtobufChannel"}
    )

__all__ = [
    "ProtobufBuilder",
    "ProtobufChannel",
    "ProtobufDumper",
    "ProtobufManager",
    "defaults_dict",
    "get_inner_type",
]


def get_inner_type(typ: Any) -> Any:
    """The item type of ``list[X]`` and the ``X`` of ``Optional[X]``; any other type unchanged
    (a bare ``list``: ``Any``)."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if typ is list or origin is list:
        return args[0] if args else Any
    if origin is Union or origin is types.UnionType:
        members = [arg for arg in args if arg is not type(None)]
        if len(members) == 1 and len(args) == 2:
            return members[0]
    return typ


def defaults_dict(model_cls: Any) -> dict[str, Any]:
    """The default of every field of a pydantic model class that has one (a ``default_factory`` is called);
    required fields are absent."""
    defaults: dict[str, Any] = {}
    for name, field in model_cls.model_fields.items():
        if field.is_required():
            continue
        defaults[name] = field.get_default(call_default_factory=True)
    return defaults


def _method_name(method: Callable[..., Any] | str) -> str:
    return method if isinstance(method, str) else method.__name__


class ProtobufBuilder:
    """Builds the protobuf messages of services' methods: the codecs the dispatch-protobuf channel and server use.

    A method's messages are built once per process and shared by every channel and server.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        #: the components prepared so far, with their methods' codecs by ``component:service:method``
        self.components: dict[ComponentDescriptor, dict[str, ProtobufMethodCodec]] = {}

    def codec(self, type: type, method: Callable[..., Any] | str) -> ProtobufMethodCodec:
        """The codec of ``method`` (a function of the service class, or its name) of service ``type``."""
        from warpcall.wire import codec_of

        name = _method_name(method)
        methods = service_descriptor(type).qualify()
        if name not in methods:
            from warpcall.exceptions import ServiceException

            raise ServiceException(f"{type.__name__} has no service method {name!r}; it has {sorted(methods)}")
        return codec_of(methods[name])

    def get_request_message(self, type: type, method: Callable[..., Any] | str) -> Any:
        """The generated message class of the method's request (one field per parameter, in order)."""
        return self.codec(type, method).request_type

    def get_response_message(self, type: type, method: Callable[..., Any] | str) -> Any:
        """The generated message class of the method's response (``result`` and ``exception``)."""
        return self.codec(type, method).response_type

    def prepare_component(self, component_descriptor: ComponentDescriptor) -> None:
        """Build the messages of every method of the component's services now rather than on first call."""
        with self.lock:
            if component_descriptor in self.components:
                return
            codecs = {}
            for service in component_descriptor.services:
                for name in service.qualify():
                    codec = self.codec(service.type, name)
                    codecs[codec.qualified] = codec
            self.components[component_descriptor] = codecs

    def prepare(self, component_type: type) -> None:
        """:meth:`prepare_component` for a ``@component`` class."""
        self.prepare_component(component_descriptor(component_type))

    def file_descriptors(self) -> list[FileDescriptorProto]:
        """The ``.proto`` files of every prepared method: one per method, holding its messages."""
        from google.protobuf.descriptor_pb2 import FileDescriptorProto

        files = []
        with self.lock:
            codecs = [codec for codecs in self.components.values() for codec in codecs.values()]
        for codec in codecs:
            proto = FileDescriptorProto()
            message_class: Any = codec.request_type  # a generated message class: its DESCRIPTOR names the file
            message_class.DESCRIPTOR.file.CopyToProto(proto)
            files.append(proto)
        return files


@injectable()
class ProtobufManager(ProtobufBuilder):
    """The protobuf messages of an environment's services (aspyx-service's injectable of that name)."""

    def report(self) -> str:
        """The ``.proto`` text of every prepared component's messages."""
        return "\n".join(ProtobufDumper.dump_proto(proto) for proto in self.file_descriptors())


class ProtobufDumper:
    """Writes a file descriptor as ``.proto`` source text."""

    #: protobuf's scalar type names by FieldDescriptorProto.TYPE_* number
    SCALARS = {
        1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64", 7: "fixed32", 8: "bool",
        9: "string", 12: "bytes", 13: "uint32", 15: "sfixed32", 16: "sfixed64", 17: "sint32", 18: "sint64",
    }

    @classmethod
    def dump_proto(cls, fd: FileDescriptorProto) -> str:
        """The source text of ``fd``: syntax, package, imports, enums, messages and services."""
        lines = [f'syntax = "{fd.syntax or "proto2"}";', ""]
        if fd.package:
            lines += [f"package {fd.package};", ""]
        lines += [f'import "{dependency}";' for dependency in fd.dependency]
        if fd.dependency:
            lines.append("")
        proto3 = fd.syntax == "proto3"
        for enum in fd.enum_type:
            lines += cls._enum(enum, "")
        for message in fd.message_type:
            lines += cls._message(message, "", proto3)
        for service in fd.service:
            lines += cls._service(service)
        return "\n".join(lines)

    @classmethod
    def _enum(cls, enum: EnumDescriptorProto, indent: str) -> list[str]:
        body = [f"{indent}  {value.name} = {value.number};" for value in enum.value]
        return [f"{indent}enum {enum.name} {{", *body, f"{indent}}}", ""]

    @classmethod
    def _message(cls, message: DescriptorProto, indent: str, proto3: bool) -> list[str]:
        entries = {nested.name: nested for nested in message.nested_type if nested.options.map_entry}
        lines = [f"{indent}message {message.name} {{"]
        for enum in message.enum_type:
            lines += cls._enum(enum, indent + "  ")
        for nested in message.nested_type:
            if nested.name not in entries:
                lines += cls._message(nested, indent + "  ", proto3)
        for field in message.field:
            lines.append(f"{indent}  {cls._field(field, entries, proto3)};")
        lines += [f"{indent}}}", ""]
        return lines

    @classmethod
    def _field(cls, field: FieldDescriptorProto, entries: dict[str, DescriptorProto], proto3: bool) -> str:
        entry = entries.get(field.type_name.rsplit(".", 1)[-1]) if field.type_name else None
        if entry is not None and field.label == 3:  # a map: its synthetic entry message says key and value types
            key, value = entry.field[0], entry.field[1]
            return f"map<{cls._type(key)}, {cls._type(value)}> {field.name} = {field.number}"
        if field.label == 3:
            label = "repeated "
        elif field.label == 2:
            label = "required "
        elif not proto3 or field.proto3_optional:
            label = "optional "
        else:
            label = ""
        return f"{label}{cls._type(field)} {field.name} = {field.number}"

    @classmethod
    def _type(cls, field: FieldDescriptorProto) -> str:
        if field.type_name:
            return field.type_name  # fully qualified (".pkg.Message"), as .proto source may name it
        return cls.SCALARS.get(field.type, f"TYPE_{field.type}")

    @classmethod
    def _service(cls, service: ServiceDescriptorProto) -> list[str]:
        lines = [f"service {service.name} {{"]
        for method in service.method:
            request = ("stream " if method.client_streaming else "") + method.input_type
            response = ("stream " if method.server_streaming else "") + method.output_type
            lines.append(f"  rpc {method.name} ({request}) returns ({response});")
        return [*lines, "}", ""]
