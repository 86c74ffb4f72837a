# tools/gdb/attnlab_printers.py — gdb pretty printers for attnlab's Tensor and Variable.
#
# Loaded automatically for build/attnlab (CMake copies this file to build/attnlab-gdb.py) once
# gdb trusts the build directory:
#   gdb -iex "add-auto-load-safe-path $PWD/build" --args build/attnlab inspect grad --variant qq
# or by hand:  (gdb) source tools/gdb/attnlab_printers.py
#
#   (gdb) p e.out->grad        ->  Tensor (3, 3) [0.0123, -0.0456, 0.0789, ...]
#   (gdb) p *e.inputs[0]       ->  Variable 'Q' value Tensor (3, 2) [...] grad Tensor (3, 2) [...]
import gdb
import gdb.printing

LEADING = 8  # values shown


def _vector_items(vec):
    impl = vec["_M_impl"]
    start, finish = impl["_M_start"], impl["_M_finish"]
    n = int(finish - start)
    return start, n


def _shared_get(sp):
    return sp["_M_ptr"]


def tensor_summary(val):
    storage = _shared_get(val["storage_"])
    if int(storage) == 0:
        return "Tensor (undefined)"
    start, rank = _vector_items(val["shape_"])
    shape = [int((start + i).dereference()) for i in range(rank)]
    numel = int(val["numel_"])
    data = storage.dereference()["data"]
    shown = [float((data + i).dereference()) for i in range(min(numel, LEADING))]
    body = ", ".join("%.4g" % x for x in shown)
    more = ", ..." if numel > LEADING else ""
    dims = "(" + ", ".join(str(d) for d in shape) + ("," if rank == 1 else "") + ")"
    return "Tensor %s [%s%s]" % (dims, body, more)


class TensorPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        try:
            return tensor_summary(self.val)
        except gdb.error as e:  # optimised-out or corrupt object
            return "Tensor <unreadable: %s>" % e


class VariablePrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        try:
            name = self.val["name"].format_string().strip('"')
            grad = tensor_summary(self.val["grad"])
            idx = int(self.val["tape_index"])
            where = ("tape #%d" % idx) if idx >= 0 else "leaf"
            return "Variable '%s' (%s) value %s grad %s" % (name, where, tensor_summary(self.val["value"]), grad)
        except gdb.error as e:
            return "Variable <unreadable: %s>" % e


def build_printer():
    pp = gdb.printing.RegexpCollectionPrettyPrinter("attnlab")
    pp.add_printer("Tensor", "^attn::Tensor$", TensorPrinter)
    pp.add_printer("Variable", "^attn::Variable$", VariablePrinter)
    return pp


gdb.printing.register_pretty_printer(gdb.current_objfile(), build_printer(), replace=True)
