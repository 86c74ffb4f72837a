# tools/gdb/attnlab_printers.py — gdb pretty printers for attnlab tensors and variables.
# (filled in below)
