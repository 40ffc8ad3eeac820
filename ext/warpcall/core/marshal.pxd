# C types of src/warpcall/core/marshal.py (Cython reads this file beside the source when compiling it)

cdef object _MISSING
cdef object _object_new
cdef object _object_setattr
cdef object _Mapping

# CPython's per-thread recursion counter (what Python frames count against sys.getrecursionlimit()): the
# plans of recursive types enter it per level, so a value nesting deeper than that raises RecursionError
# where the C stack would otherwise overflow
# (nonzero on failure, RecursionError set: CPython returns 1, the value of a C &&)
cdef extern from "Python.h":
    int Py_EnterRecursiveCall(const char *where) except 1
    void Py_LeaveRecursiveCall()

cdef str _tname(object value)
cdef object _read_attribute(object value, str name)
cdef object _as_float(object value)
cdef object _mark_non_finite(object value, int depth)
cdef object _dump_untyped(object value)

cdef dict _cache
cdef object _build


cdef class TypePlan:
    cdef readonly object tp
    cdef readonly str name

    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class AnyPlan(TypePlan):
    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class NonePlan(TypePlan):
    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class StrPlan(TypePlan):
    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class IntPlan(TypePlan):
    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class FloatPlan(TypePlan):
    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class BoolPlan(TypePlan):
    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class BytesPlan(TypePlan):
    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class _IsoPlan(TypePlan):
    cdef str kind
    cdef object exclude
    cdef object parse

    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class DateTimePlan(_IsoPlan):
    pass


cdef class DatePlan(_IsoPlan):
    pass


cdef class TimePlan(_IsoPlan):
    pass


cdef class UUIDPlan(TypePlan):
    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class DecimalPlan(TypePlan):
    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class EnumPlan(TypePlan):
    cdef dict members
    cdef frozenset value_types
    cdef str choices

    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class LiteralPlan(TypePlan):
    cdef dict load_map
    cdef dict dump_map
    cdef str choices

    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class OptionalPlan(TypePlan):
    cdef TypePlan inner

    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class UnionPlan(TypePlan):
    cdef bint none_ok
    cdef dict load_exact
    cdef dict dump_exact
    cdef tuple others
    cdef tuple subclassed

    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class ListPlan(TypePlan):
    cdef TypePlan item
    cdef object factory
    cdef tuple accept

    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class TuplePlan(TypePlan):
    cdef tuple items

    cdef list _walk(self, object value, bint dumping)
    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class DictPlan(TypePlan):
    cdef TypePlan key
    cdef TypePlan value

    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class IntKeyPlan(TypePlan):
    cdef TypePlan inner

    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class _Field:
    cdef str name
    cdef TypePlan plan
    cdef bint init
    cdef object default
    cdef object factory
    cdef object exact
    cdef object dump_exact


cdef class DataclassPlan(TypePlan):
    cdef object cls
    cdef tuple fields
    cdef dict template
    cdef bint has_dict
    cdef bint post_init
    cdef bint direct

    cdef object _dump(self, object value)
    cdef object _load(self, object data)
    cdef object _construct(self, dict values)


cdef class RecursiveDataclassPlan(DataclassPlan):
    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class PydanticPlan(TypePlan):
    cdef object cls
    cdef tuple fields
    cdef dict template
    cdef tuple convert
    cdef object validate
    cdef bint by_name
    cdef bint extra

    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class RecursivePydanticPlan(PydanticPlan):
    cdef object _dump(self, object value)
    cdef object _load(self, object data)


cdef class AdapterPlan(TypePlan):
    cdef object adapter

    cdef object _dump(self, object value)
    cdef object _load(self, object data)
