# tools/gdb/check_locals.py — stops in every backward function of autograd that a command
# reaches and checks that `info args` and `info locals` show no <optimized out>: what a person
# stepping through backprop in the debug build (make debug, -O0 -g) should be able to read.
#
#   gdb -batch -nx -x tools/gdb/check_locals.py --args build-debug/attnlab train --task reverse ...
# Prints the backward functions reached and exits gdb with status 1 if any hid a variable.
import glob
import os
import re

import gdb

# Every op's backward, as autograd/*.cpp defines them ("static void matmul_backward(TapeEntry& e").
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
names = set()
for path in glob.glob(os.path.join(root, "autograd", "*.cpp")):
    names.update(re.findall(r"^static void (\w+_backward)\(TapeEntry&", open(path).read(), re.M))
gdb.execute("set pagination off")
gdb.execute("set breakpoint pending on")
for n in sorted(names):
    gdb.execute("break attn::" + n, to_string=True)
gdb.execute("run", to_string=True)
reached, hidden = {}, {}
while True:
    try:
        frame = gdb.selected_frame()
    except gdb.error:
        break  # the program has exited
    name = frame.name() or "?"
    if name.endswith("_backward"):
        shown = gdb.execute("info args", to_string=True) + gdb.execute("info locals", to_string=True)
        reached[name] = reached.get(name, 0) + 1
        if "<optimized out>" in shown:
            hidden.setdefault(name, shown)
    try:
        gdb.execute("continue", to_string=True)
    except gdb.error:
        break
for name in sorted(reached):
    print("%-40s reached %4d times%s" % (name, reached[name], "  <optimized out> variables" if name in hidden else ""))
for name, shown in hidden.items():
    print("\n%s:\n%s" % (name, shown))
print("backward functions reached: %d of %d; with variables optimized out: %d" % (len(reached), len(names), len(hidden)))
gdb.execute("quit %d" % (1 if hidden or not reached else 0))
