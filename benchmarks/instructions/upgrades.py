"""What the rolling-upgrade rules cost a plain call, paired in one run with the code before them.

``now`` runs warpcall's code; ``before`` runs, as subclass methods of the same classes, the bodies those
methods had before the rules (no trailing-default check in the dispatch client's ``dump_args`` and the
protobuf codec's ``encode_request``, no unknown-field check on the protobuf path of ``decode_request``).
"""

SETUP = r"""
from abc import abstractmethod

from warpcall import Component, Service, component, service
from warpcall.channels.dispatch import DispatchPlan
from warpcall.exceptions import MalformedRequestException, MarshalException
from warpcall.service import service_descriptor
from warpcall.wire import codec_of
from warpcall.wire import protobuf_codec
from warpcall.wire.protobuf_codec import ProtobufMethodCodec, _DECODE_ERRORS, _reason


@service(name="bench")
class Bench(Service):
    @abstractmethod
    def hello(self, name: str, times: int) -> str: ...

    @abstractmethod
    def tags(self, tags: list[str], limit: int) -> int: ...


@component(name="bench", services=[Bench])
class BenchComponent(Component):
    pass


class Before(DispatchPlan):
    __slots__ = ()

    def dump_args(self, args):
        try:
            if len(args) == 1 and len(self.dumpers) == 1:
                return [self.dumpers[0](args[0])]
            return [dump(arg) for dump, arg in zip(self.dumpers, args)]
        except MarshalException as exc:
            raise MarshalException(f"{self.qualified}: argument '{self._culprit(args)}': {exc}") from None


class CodecBefore(ProtobufMethodCodec):
    def encode_request(self, args):
        request = self._request
        if len(args) != len(request.fields):
            raise MarshalException("count")
        body = self._request_wire.encode(args)
        if body is not None:
            return body
        try:
            return request.cls(**request.dump_values(args)).SerializeToString()
        except protobuf_codec._CONVERSION_ERRORS as exc:
            raise self._explain(args, exc) from None

    def decode_request(self, body):
        values = self._request_wire.decode(body)
        if values is not None:
            return values
        try:
            return self._request.load_values(self._request.cls.FromString(body))
        except _DECODE_ERRORS as exc:
            raise MalformedRequestException(f"{_reason(exc)}") from None


methods = service_descriptor(Bench).methods
hello, tags = methods["hello"], methods["tags"]
now_plan, before_plan = DispatchPlan(hello), Before(hello)
ARGS = ("world", 3)
now_hello = codec_of(hello)
before_hello = CodecBefore(hello.qualified, hello.param_names, hello.param_types, hello.return_type)
now_tags = codec_of(tags)
before_tags = CodecBefore(tags.qualified, tags.param_names, tags.param_types, tags.return_type)
TAGS = (["a", "b", "c"], 10)
TAGS_BODY = now_tags.encode_request(TAGS)
TAGS_MESSAGE = now_tags._request.cls.FromString(TAGS_BODY)
"""

CASES = {
    "dispatch dump_args, 2 args (now)": "now_plan.dump_args(ARGS)",
    "dispatch dump_args, 2 args (before)": "before_plan.dump_args(ARGS)",
    "protobuf encode_request, 2 args (now)": "now_hello.encode_request(ARGS)",
    "protobuf encode_request, 2 args (before)": "before_hello.encode_request(ARGS)",
    "protobuf encode_request, a list (now)": "now_tags.encode_request(TAGS)",
    "protobuf encode_request, a list (before)": "before_tags.encode_request(TAGS)",
    "protobuf decode_request, a list (now)": "now_tags.decode_request(TAGS_BODY)",
    "protobuf decode_request, a list (before)": "before_tags.decode_request(TAGS_BODY)",
    "protobuf unknown-field walk": "now_tags._numbers.unknown(TAGS_BODY)",
    "protobuf load_values": "now_tags._request.load_values(TAGS_MESSAGE)",
}
