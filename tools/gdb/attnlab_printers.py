# tools/gdb/attnlab_printers.py — gdb pretty printers for attnlab's Tensor and Variable.
#
# Loaded automatically for build/attnlab (CMake copies this file to build/attnlab-gdb.py) once
# gdb trusts the build directory:
#   gdb -iex "add-auto-load-safe-path $PWD/build" --args build/attnlab inspect grad --variant qq
# or by the repository's .gdbinit when gdb starts in the repository and trusts that file:
#   gdb -iex "add-auto-load-safe-path $PWD" --args build-debug/attnlab inspect grad ...
# or by hand:  (gdb) source tools/gdb/attnlab_printers.py
#
#   (gdb) p e.out->grad        ->  Tensor (3, 2)
#                                  [[0.0123, -0.0456],
#                                   [0.0789, 0.1],
#                                   [-0.2, 0.3]]     (by rows, as numpy prints an array)
#   (gdb) p *e.inputs[0]       ->  Variable 'Q' (tape #0) value Tensor (3, 2) ... grad Tensor (3, 2) ...
#   (gdb) p e.inputs[0]        ->  Var 'Q' (tape #0) value Tensor (3, 2) ...   (a Var is a shared_ptr)
#   (gdb) p e                  ->  TapeEntry matmul 'S' (3, 3) <- 'Q' (3, 2), 'Q' (3, 2) |grad| 0.53
#   (gdb) set attnlab-print-limit 100     up to how many values a tensor shows whole (default 64;
#                                         0: all); a larger one shows 3 at each end of every axis
import math

import gdb
import gdb.printing


class PrintLimit(gdb.Parameter):
    """How many values of a tensor attnlab's printers show (0: all of them)."""

    set_doc = "Set how many values of a tensor attnlab's printers show (0: all)."
    show_doc = "Show how many values of a tensor attnlab's printers show."

    def __init__(self):
        super().__init__("attnlab-print-limit", gdb.COMMAND_DATA, gdb.PARAM_ZUINTEGER)
        self.value = 64

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


EDGE = 3  # values kept at each end of an axis when a tensor is summarised (numpy's edgeitems)


def _nested(data, shape, summarise, offset=0, depth=0):
    """The values as nested lists, row by row (numpy's layout): the last axis on one line, each
    outer axis one more bracket and line break; summarised, every axis longer than 2 * EDGE shows
    its first and last EDGE entries around "..."."""
    n = shape[0]
    stride = 1
    for d in shape[1:]:
        stride *= d
    idx = list(range(n))
    if summarise and n > 2 * EDGE:
        idx = list(range(EDGE)) + [None] + list(range(n - EDGE, n))
    if len(shape) == 1:
        return "[" + ", ".join("..." if i is None else "%.4g" % float((data + offset + i).dereference())
                               for i in idx) + "]"
    sep = "," + "\n" * (len(shape) - 1) + " " * (depth + 1)
    parts = ["..." if i is None else _nested(data, shape[1:], summarise, offset + i * stride, depth + 1) for i in idx]
    return "[" + sep.join(parts) + "]"


def tensor_summary(val, inline=False):
    """"Tensor (3, 2)" and its values by rows on the lines below (inline: on one line)."""
    storage = _shared_get(val["storage_"])
    if int(storage) == 0:
        return "Tensor (undefined)"
    start, rank = _vector_items(val["shape_"])
    shape = [int((start + i).dereference()) for i in range(rank)]
    numel = int(val["numel_"])
    data = storage.dereference()["data"]
    if int(data) == 0:
        return "Tensor %s (released: a training backward frees values once read)" % _dims(shape)
    limit = int(LIMIT.value) or numel
    if rank == 0:
        body = "%.4g" % float(data.dereference())
    else:
        body = _nested(data, shape, numel > limit)
    if inline:
        body = " ".join(line.strip() for line in body.split("\n"))
    return "Tensor %s%s%s" % (_dims(shape), " " if inline or rank == 0 else "\n", body)


def _dims(shape):
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


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
            return "Variable " + variable_summary(self.val)
        except gdb.error as e:
            return "Variable <unreadable: %s>" % e


def variable_summary(val):
    name = val["name"].format_string().strip('"')
    idx = int(val["tape_index"])
    where = ("tape #%d" % idx) if idx >= 0 else "leaf"
    return "'%s' (%s) value %s grad %s" % (name, where, tensor_summary(val["value"], inline=True),
                                            tensor_summary(val["grad"], inline=True))


class VarPrinter:
    """A Var (std::shared_ptr<Variable>): its name, place on the tape, value and grad, instead of
    the shared_ptr's address."""

    def __init__(self, val):
        self.val = val

    def to_string(self):
        try:
            ptr = _shared_get(self.val)
            if int(ptr) == 0:
                return "Var (null)"
            return "Var " + variable_summary(ptr.dereference())
        except gdb.error as e:
            return "Var <unreadable: %s>" % e


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


def _var_lookup(val):
    """Var is std::shared_ptr<attn::Variable>, which libstdc++'s own printers (registered on
    libstdc++'s objfile, and so asked before any global printer) would show as an address:
    this lookup goes first in every objfile's list instead."""
    t = val.type.strip_typedefs().unqualified()
    if t.tag is not None and t.tag.startswith("std::shared_ptr<attn::Variable>"):
        return VarPrinter(val)
    return None


def _put_first(objfile):
    if _var_lookup not in objfile.pretty_printers:
        objfile.pretty_printers.insert(0, _var_lookup)


if not getattr(gdb, "attnlab_printers_registered", False):
    gdb.attnlab_printers_registered = True
    gdb.printing.register_pretty_printer(None, build_printer(), replace=True)
    for objfile in gdb.objfiles():
        _put_first(objfile)
    gdb.events.new_objfile.connect(lambda event: _put_first(event.new_objfile))
