# .gdbinit — attnlab's gdb printers (Tensor, Variable, TapeEntry; `set attnlab-print-limit N`)
# for a gdb started in this directory. gdb reads a directory's .gdbinit only when trusted:
#   gdb -iex "add-auto-load-safe-path $PWD" --args build-debug/attnlab inspect grad --variant qq
# (trusting the folder trusts the builds' attnlab-gdb.py too: no "auto-loading declined" warning)
# or once for good, in ~/.gdbinit:  add-auto-load-safe-path /path/to/attnlab
source tools/gdb/attnlab_printers.py
set print pretty off
set pagination off
