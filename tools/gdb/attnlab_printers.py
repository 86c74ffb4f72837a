# tools/gdb/attnlab_printers.py — gdb pretty printers for attnlab's Tensor and Variable.
#
# Loaded automatically for build/attnlab (CMake copies this file to build/attnlab-gdb.py) once
# gdb trusts the build directory:
#   gdb -iex "add-auto-load-safe-path $PWD/build" --args build/attnlab inspect grad --variant qq
# or by the repository's .gdbinit when gdb starts in the repository and trusts that file:
#   gdb -iex "add-auto-load-safe-path $PWD/.gdbinit" --args build-debug/attnlab inspect grad ...
# or by hand:  (gdb) source tools/gdb/attnlab_printers.py
#
#   (gdb) p e.out->grad        ->  Tensor (3, 3) [0.0123, -0.0456, 0.0789, ...]
#   (gdb) p *e.inputs[0]       ->  Variable 'Q' value Tensor (3, 2) [...] grad Tensor (3, 2) [...]
#   (gdb) p e                  ->  TapeEntry matmul 'S' (3, 3) <- 'Q' (3, 2), 'Q' (3, 2) |grad| 0.53
#   (gdb) set attnlab-print-limit 100     how many values a tensor shows (default 16; 0: all)
import math

import gdb
import gdb.printing


class PrintLimit(gdb.Parameter):
    """How many values of a tensor attnlab's printers show (0: all of them)."""

    set_doc = "Set how many values of a tensor attnlab's printers show (0: all)."
    show_doc = "Show how many values of a tensor attnlab's printers show."

    def __init__(self):
        super().__init__("attnlab-print-limit", gdb.COMMAND_DATA, gdb.PARAM_ZUINTEGER)
        self.value = 16

    def get_show_string(self, svalue):
        return "attnlab's printers show %s values of a tensor" % (svalue if svalue != "0" else "all")


# Loaded once per gdb session, whichever way comes first (the repository's .gdbinit, the build
# directory's auto-load file, `source`): a second load would make a second print-limit setting
# that the printers registered first do not read. The printers and the setting live in gdb's
# own module, so every load sees the first one's.
if not hasattr(gdb, "attnlab_print_limit"):
    gdb.attnlab_print_limit = PrintLimit()
LIMIT = gdb.attnlab_print_limit


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
    limit = int(LIMIT.value) or numel
    shown = [float((data + i).dereference()) for i in range(min(numel, limit))]
    body = ", ".join("%.4g" % x for x in shown)
    more = ", ..." if numel > limit else ""
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


def _var(sp):
    return _shared_get(sp).dereference()


def _shape(tensor):
    if int(_shared_get(tensor["storage_"])) == 0:
        return "(undefined)"
    start, rank = _vector_items(tensor["shape_"])
    dims = [str(int((start + i).dereference())) for i in range(rank)]
    return "(" + ", ".join(dims) + ("," if rank == 1 else "") + ")"


def _norm(tensor):
    storage = _shared_get(tensor["storage_"])
    if int(storage) == 0:
        return None
    data = storage.dereference()["data"]
    return math.sqrt(sum(float((data + i).dereference()) ** 2 for i in range(int(tensor["numel_"]))))


class TapeEntryPrinter:
    """One entry of the tape: op, output name and shape, inputs, and |grad| of the output."""

    def __init__(self, val):
        self.val = val

    def to_string(self):
        try:
            out = _var(self.val["out"])
            start, n = _vector_items(self.val["inputs"])
            ins = []
            for i in range(n):
                v = _var((start + i).dereference())
                ins.append("'%s' %s" % (v["name"].format_string().strip('"'), _shape(v["value"])))
            g = _norm(out["grad"])
            grad = "|grad| %.4g" % g if g is not None else "grad not yet reached"
            return "TapeEntry %s '%s' %s <- %s %s" % (self.val["op"].format_string().strip('"'),
                                                      out["name"].format_string().strip('"'), _shape(out["value"]),
                                                      ", ".join(ins), grad)
        except gdb.error as e:
            return "TapeEntry <unreadable: %s>" % e


def build_printer():
    pp = gdb.printing.RegexpCollectionPrettyPrinter("attnlab")
    pp.add_printer("Tensor", "^attn::Tensor$", TensorPrinter)
    pp.add_printer("Variable", "^attn::Variable$", VariablePrinter)
    pp.add_printer("TapeEntry", "^attn::TapeEntry$", TapeEntryPrinter)
    return pp


if not getattr(gdb, "attnlab_printers_registered", False):
    gdb.attnlab_printers_registered = True
    gdb.printing.register_pretty_printer(None, build_printer(), replace=True)
